"""The workshop deck builds offline into one self-contained HTML with every section."""
from __future__ import annotations

import re

import nbformat
import pytest

from tinyml_helpers import slides

SECTIONS = ["Hands-on TinyML for IoT", "Why AI at the edge", "Shrinking SoTA models: knowledge distillation",
            "Shrinking SoTA models: pruning", "Bottom-up: ad-hoc pipelines", "Putting it together: PhiNets",
            "Hands-on 1: design and train", "Hands-on 2: convert and deploy", "References"]
CITED = ["Hinton", "Gou", "Valerio", "Fan, Grave, Joulin", "Zaiem", "Cerutti", "MCUNet", "EfficientNet", "PhiNets"]


@pytest.fixture(scope="module")
def deck_html(tmp_path_factory):
    path = slides.build_deck(out_dir=tmp_path_factory.mktemp("slides"))
    return path.read_text()


def test_deck_has_every_section_in_order(deck_html):
    titles = slide_titles = slides.slide_titles(deck_html)
    positions = [titles.index(s) if s in titles else -1 for s in SECTIONS]
    assert -1 not in positions, f"missing sections: {[s for s, p in zip(SECTIONS, positions) if p < 0]}"
    assert positions == sorted(positions), f"sections out of order: {slide_titles}"


def test_deck_is_self_contained(deck_html):
    remote = re.findall(r'(?:src|href)="(https?://[^"]+)"', deck_html)
    assert not remote, f"the deck loads remote files: {remote[:5]}"
    assert "Reveal.initialize" in deck_html and "REVEAL_LOCAL" not in deck_html
    assert deck_html.count("data:image/svg+xml") >= 5, "formulas should be embedded as SVG images"


def test_deck_cites_the_seed_papers(deck_html):
    missing = [c for c in CITED if c not in deck_html]
    assert not missing, f"references missing: {missing}"


def test_deck_source_is_clean_and_slide_tagged():
    nb = nbformat.read(slides.DECK_SOURCE, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "store the deck without outputs"
    assert all("slideshow" in c.metadata for c in nb.cells), "every deck cell needs slide metadata"


def test_inline_reveal_rejects_unknown_reference(tmp_path):
    with pytest.raises(FileNotFoundError):
        slides.inline_reveal('<script src="REVEAL_LOCAL/dist/nope.js"></script>')


def test_formula_reports_bad_tex():
    with pytest.raises(ValueError, match="cannot render formula"):
        slides.formula(r"\frac{1}{")


def test_deck_markdown_has_no_dollar_math():
    # Offline HTML has no MathJax: inline $...$ would show raw. Use Unicode or slides.formula.
    nb = nbformat.read(slides.DECK_SOURCE, as_version=4)
    raw = [c.source[:60] for c in nb.cells if c.cell_type == "markdown" and re.search(r"\$[^$\n]+\$", c.source)]
    assert not raw, f"markdown cells with $math$: {raw}"


def test_recorded_table_uses_the_audience_labels(tmp_path, monkeypatch):
    from tinyml_helpers import results

    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path))
    results.record("size.ratio", 2.5912, unit="ratio", lesson="99_demo", show=False)
    results.record("size.int8_onnx", 119_810, unit="bytes", lesson="99_demo", show=False)
    table = slides.recorded_table("99_demo", {"size.ratio": "fp32 / int8 file size",
                                              "missing.key": "never shown"}).data
    assert "fp32 / int8 file size</td><td>2.591</td>" in table
    assert "size.ratio" not in table and "never shown" not in table and "119,810" not in table
    assert "119,810 B" in slides.recorded_table("99_demo").data, "no keys: every recorded figure"


# --- figures, diagrams and a readable layout ------------------------------------------------

def _slide_text_lines(source: str) -> list[str]:
    lines = [ln for ln in source.splitlines() if ln.strip() and not re.match(r"^\|[-| :]+\|$", ln.strip())]
    return [ln for ln in lines if not ln.lstrip().startswith("#")]      # titles do not count


def test_deck_slides_are_short():
    nb = nbformat.read(slides.DECK_SOURCE, as_version=4)
    long = [c.source[:50] for c in nb.cells if c.cell_type == "markdown" and not c.source.startswith("* Hinton")
            and len(_slide_text_lines(c.source)) > 6]
    assert not long, f"slides with more than six lines of text: {long}"


def test_deck_has_diagrams_and_notebook_figures():
    nb = nbformat.read(slides.DECK_SOURCE, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for diagram in ("cloud_vs_edge", "kd_teacher_student", "inverted_residual_block", "mcu_memory_map"):
        assert f"diagrams.{diagram}()" in code, f"the deck does not show the {diagram} diagram"
    lessons = set(re.findall(r'notebook_figure\("(\d\d)_', code))
    assert {"00", "02", "03", "05"} <= lessons, f"figures from notebooks: {sorted(lessons)}"


def test_notebook_figure_reads_an_executed_copy(tmp_path, monkeypatch):
    import base64
    import json

    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path))
    png = base64.b64encode(b"\x89PNG fake").decode()
    executed = slides.executed_notebook_dirs()[0]
    cell = {"cell_type": "code", "source": "plot_demo(x)\nplt.show()", "metadata": {},
            "outputs": [{"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}]}
    (executed / "99_demo.ipynb").write_text(json.dumps({"cells": [cell]}))
    assert png in slides.notebook_figure("99_demo", "plot_demo(").data
    assert "make bench" in slides.notebook_figure("99_demo", "plot_other(").data


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def test_every_slide_fits_its_frame(deck_html, tmp_path):
    """Render each slide in headless Chromium; none may be taller or wider than the frame."""
    import os

    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("no system Chromium")
    page_path = tmp_path / "deck.html"
    page_path.write_text(deck_html)
    overflowing, shots = [], 0
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 880})
            page.goto(page_path.as_uri())
            page.wait_for_function("window.Reveal && Reveal.isReady()")
            page.evaluate("Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
            for i in range(page.evaluate("Reveal.getTotalSlides()")):
                page.evaluate(f"(() => {{ const s = Reveal.getSlides()[{i}]; const k = Reveal.getIndices(s); "
                              f"Reveal.slide(k.h, k.v); }})()")
                page.wait_for_timeout(50)
                size = page.evaluate("(() => { const s = Reveal.getCurrentSlide(), c = Reveal.getConfig(); "
                                     "return [s.scrollHeight, s.scrollWidth, c.height, c.width, "
                                     "(s.querySelector('h1,h2') || {}).textContent || '']; })()")
                page.screenshot(path=str(tmp_path / f"slide{i:02d}.png"))
                shots += 1
                if size[0] > size[2] or size[1] > size[3]:
                    overflowing.append(f"slide {i} ({size[4].strip('¶ ')}): {size[0]}x{size[1]} px")
        finally:
            browser.close()
    assert shots >= len(SECTIONS), "fewer slides rendered than sections"
    assert not overflowing, f"slides overflow the {1100}x{760} frame: {overflowing}"
