"""The notebooks' deep-dive markers and the instructor guide's schedule agree."""
from __future__ import annotations

from pathlib import Path

import pytest

from tinyml_helpers import course_plan as cp

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "slides" / "README.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WITH_CORE_AND_DEEP = ["00_why_tinyml", "01_knowledge_distillation", "02_pruning", "03_adhoc_pipelines", "04_phinets",
                      "05_conversion", "06_deployment"]


def _guide_row(stem: str) -> str:
    number = stem[:2]
    rows = [line for line in GUIDE.splitlines() if line.startswith(f"| {number} |")]
    assert rows, f"the guide's core/deep table has no row for notebook {number}"
    return rows[-1]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_guide_lists_exactly_the_notebook_deep_dives(nb):
    dives = cp.deep_dives(nb)
    if not dives:
        return
    row = _guide_row(nb.stem)
    listed = [t.strip() for t in row.split("|")[3].split(";") if t.strip()]
    assert listed == dives, f"{nb.stem}: guide lists {listed}, notebook has {dives}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_deep_dive_headings_are_titled_tagged_and_collapsed(nb):
    for cell in cp.notebook_cells(nb):
        head = cp.heading_of(cell)
        tagged = cp.DEEP_DIVE_TAG in cell.get("metadata", {}).get("tags", [])
        titled = head is not None and head[1].startswith(cp.DEEP_DIVE_PREFIX)
        assert tagged == titled, f"{nb.stem}: tag and title disagree on {head}"
        if tagged:
            assert all(cell["metadata"].get(k) is True for k in cp.COLLAPSED_KEYS), f"{head} is not stored collapsed"


@pytest.mark.parametrize("stem", WITH_CORE_AND_DEEP)
def test_core_path_ends_in_hands_on_and_deep_dives_come_last(stem):
    secs = cp.sections(cp.notebook_cells(ROOT / "notebooks" / f"{stem}.ipynb"))
    core, deep = [s for s in secs if not s.deep], [s for s in secs if s.deep]
    assert deep, f"{stem} has no deep dive"
    assert any(s.has_exercise for s in core), f"{stem}: the core path has no hands-on exercise"
    first_deep = secs.index(deep[0])
    assert all(s.deep for s in secs[first_deep:] if s.level <= deep[0].level), \
        f"{stem}: a core section follows a deep dive; move deep dives after the core path"
    assert sum(s.n_cells for s in core) > sum(s.n_cells for s in deep), f"{stem}: the core should be most of it"
