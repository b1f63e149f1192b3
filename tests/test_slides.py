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
