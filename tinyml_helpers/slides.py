"""Build the workshop deck (``slides/workshop_deck.ipynb``) into one self-contained HTML file.

The deck is itself a slide-tagged notebook, so an instructor can present it live in
JupyterLab (RISE) or build it with ``make slides`` into
``artifacts/slides/workshop_deck.html``: nbconvert's reveal exporter with a small offline
template (``slides/template/offline_reveal``), then reveal.js is inlined so the file opens
with no network. reveal.js 5 comes from the ``sphinx-revealjs`` wheel, which ships its
``dist/`` folder; we only read those static files. Formulas are drawn with matplotlib's
mathtext (no MathJax download), and data-driven slides read the figures that the lesson
notebooks recorded in ``artifacts/results/``.

Example:
    $ python -m tinyml_helpers.slides          # same as `make slides`
"""
from __future__ import annotations

import argparse
import html
import io
import re
import sys
from importlib import resources as _resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import config
from .files import atomic_write_text
from .results import format_value

DECK_SOURCE = config.REPO_ROOT / "slides" / "workshop_deck.ipynb"
TEMPLATE_DIR = config.REPO_ROOT / "slides" / "template"
_LOCAL_PREFIX = "REVEAL_LOCAL"


def reveal_dist_root() -> Path:
    """Folder holding reveal.js's ``dist/`` and ``plugin/`` (from the sphinx-revealjs wheel)."""
    try:
        root = Path(str(_resources.files("sphinx_revealjs") / "_static" / "revealjs"))
    except ModuleNotFoundError as exc:
        raise RuntimeError("reveal.js is not installed: run `make setup` (it comes from the "
                           "sphinx-revealjs package in requirements.txt)") from exc
    if not (root / "dist" / "reveal.js").exists():
        raise RuntimeError(f"reveal.js not found under {root}; reinstall sphinx-revealjs")
    return root


def inline_reveal(page: str, reveal_root: Path | None = None) -> str:
    """Replace the deck's references to local reveal.js files by their inlined content.

    Example:
        >>> "REVEAL_LOCAL" in inline_reveal('<script src="REVEAL_LOCAL/dist/reveal.js"></script>')
        False
    """
    root = reveal_root or reveal_dist_root()

    def css(match: re.Match) -> str:
        return f"<style>\n{(root / match.group(1)).read_text(encoding='utf-8')}\n</style>"

    def js(match: re.Match) -> str:
        source = (root / match.group(1)).read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>\n{source}\n</script>"

    page = re.sub(rf'<link[^>]*href="{_LOCAL_PREFIX}/([^"]+)"[^>]*>', css, page)
    page = re.sub(rf'<script[^>]*src="{_LOCAL_PREFIX}/([^"]+)"[^>]*></script>', js, page)
    if _LOCAL_PREFIX in page:
        raise RuntimeError("a reveal.js reference was left un-inlined; check the slide template")
    return page


def build_deck(source: Path | str = DECK_SOURCE, out_dir: Path | str | None = None,
               execute: bool = True, timeout: int = 600) -> Path:
    """Execute the deck notebook and export it to one self-contained reveal.js HTML file.

    Returns the HTML path (``artifacts/slides/<name>.html`` by default).

    Example:
        >>> build_deck()  # doctest: +SKIP
        PosixPath('.../artifacts/slides/workshop_deck.html')
    """
    import nbformat
    from nbconvert import SlidesExporter

    from .notebook_exec import notebook_runner

    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"no deck at {source}")
    nb = nbformat.read(source, as_version=4)
    if execute:
        notebook_runner(nb, source.parent, timeout).execute()
    exporter = SlidesExporter(template_name="offline_reveal", extra_template_basedirs=[str(TEMPLATE_DIR)],
                              reveal_url_prefix=_LOCAL_PREFIX, exclude_input=True, exclude_input_prompt=True,
                              exclude_output_prompt=True, reveal_scroll=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": source.stem}})
    page = inline_reveal(body)
    target = Path(out_dir) if out_dir else config.artifacts_dir("slides")
    return atomic_write_text(target / f"{source.stem}.html", page)


def slide_titles(page: str) -> list[str]:
    """The h1/h2 titles in a built deck, in order (used by the tests to check every section).

    Example:
        >>> slide_titles('<h1 id="a">Why TinyML<a class="anchor-link" href="#a">¶</a></h1>')
        ['Why TinyML']
    """
    titles = re.findall(r"<h[12][^>]*>(.*?)</h[12]>", page, flags=re.S)
    return [html.unescape(re.sub(r"<[^>]+>|¶", "", t)).strip() for t in titles]


# --- helpers the deck's (hidden) code cells call -------------------------------------------

def formula(tex: str, fontsize: int = 24) -> Any:
    """Render a LaTeX-style formula with matplotlib mathtext as an inline SVG (no MathJax).

    Example:
        >>> svg = formula(r"q_i = \\frac{e^{z_i/T}}{\\sum_j e^{z_j/T}}")
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from IPython.display import SVG

    fig = plt.figure(figsize=(0.01, 0.01))
    fig.text(0, 0, f"${tex}$", fontsize=fontsize)
    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.05, transparent=True)
    except ValueError as exc:  # mathtext parse error: say which formula
        raise ValueError(f"cannot render formula {tex!r}: {exc}") from exc
    finally:
        plt.close(fig)
    return SVG(buffer.getvalue())


def figure_svg(fig: Any) -> Any:
    """A matplotlib figure as an inline SVG for a slide (closed afterwards; no file, no network).

    Example:
        >>> import matplotlib.pyplot as plt
        >>> fig, ax = plt.subplots(); _ = ax.plot([0, 1])
        >>> "<svg" in figure_svg(fig).data
        True
    """
    import matplotlib.pyplot as plt
    from IPython.display import SVG

    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.05)
    finally:
        plt.close(fig)
    return SVG(buffer.getvalue())


def executed_notebook_dirs() -> list[Path]:
    """Where executed copies of the lesson notebooks are looked for, in order.

    ``make bench`` keeps them in ``artifacts/bench/executed/``; a copy saved by hand into
    ``artifacts/executed/`` works too.
    """
    return [config.artifacts_dir("bench", "executed"), config.artifacts_dir("executed")]


def notebook_figure(lesson: str, marker: str, index: int = 0, width: int = 860) -> Any:
    """The figure a lesson notebook drew in a workshop run, for a slide.

    Finds the code cell of ``lesson``'s executed copy whose source contains ``marker``
    (e.g. ``"plot_storage_crossover("``) and returns its ``index``-th PNG output, inlined
    as base64 (the built HTML stays one offline file). Without an executed copy, a note
    says which command makes one.

    Example:
        >>> notebook_figure("99_none", "plot(")  # doctest: +ELLIPSIS
        <IPython.core.display.HTML object>
    """
    import json

    from IPython.display import HTML

    for folder in executed_notebook_dirs():
        path = folder / f"{lesson}.ipynb"
        if not path.exists():
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            source = "".join(cell.get("source", ""))
            if cell.get("cell_type") != "code" or marker not in source:
                continue
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            if len(pngs) > index:
                data = "".join(pngs[index]).replace("\n", "")
                return HTML(f'<img src="data:image/png;base64,{data}" style="width:{width}px; height:auto; object-fit:contain" '
                            f'alt="figure from notebook {html.escape(lesson)}">')
    return HTML(f"<p><em>This figure comes from a workshop run of notebook {html.escape(lesson)}: "
                "run <code>make bench</code>, then <code>make slides</code>.</em></p>")


def recorded_table(lesson: str, keys: Iterable[str] | Mapping[str, str] | None = None,
                   title: str | None = None) -> Any:
    """An HTML table of figures a lesson notebook recorded (or a note to run it first).

    ``keys`` picks the figures; a mapping gives each one the label the audience reads (a plain
    list shows the result keys themselves). Figures the lesson has not recorded are skipped.

    Example:
        >>> recorded_table("00_why_tinyml", {"audio.raw_bytes_per_second": "raw audio, bytes/s"})  # doctest: +SKIP
    """
    from IPython.display import HTML

    from .results import load_entries

    entries = load_entries(lesson)
    if not entries:
        return HTML(f"<p><em>Figures appear here once notebook {html.escape(lesson)} has run "
                    f"(<code>make bench</code> runs them all).</em></p>")
    labelled = dict(keys) if isinstance(keys, Mapping) else {key: key for key in (entries if keys is None else keys)}
    rows = [f"<tr><td>{html.escape(label)}</td>"
            f"<td>{html.escape(format_value(entries[key]['value'], entries[key].get('unit')))}</td></tr>"
            for key, label in labelled.items() if key in entries]
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return HTML(f"<table>{caption}<tr><th>figure</th><th>value ({config.run_mode()} run)</th></tr>"
                + "".join(rows) + "</table>")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the workshop deck to self-contained HTML.")
    parser.add_argument("--source", type=Path, default=DECK_SOURCE)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    path = build_deck(args.source, args.out_dir)
    print(f"deck: {path} ({path.stat().st_size / 2**20:.1f} MiB, {len(slide_titles(path.read_text()))} titled slides)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
