"""The README's promises match the repository: two commands, the course map, the Binder link."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def test_two_commands_exist_and_ci_runs_the_test_command():
    for target in ("lab", "test"):
        assert f"make {target}" in README, f"README must show `make {target}`"
        assert re.search(rf"^{target}:", MAKEFILE, re.M), f"Makefile has no `{target}` target"
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert ci[-1].strip() == "make test", ".ci/run must end with the README's test command"


def test_course_map_lists_every_notebook():
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    listed = re.findall(r"`(\d\d_[a-z_]+\.ipynb)`", README)
    assert notebooks and sorted(set(listed)) == notebooks, f"README lists {listed}, notebooks/ has {notebooks}"


def test_binder_badge_opens_notebook_00():
    match = re.search(r"mybinder\.org/v2/gh/[^)]*urlpath=lab/tree/([^)\s]+)", README)
    assert match and (ROOT / match.group(1)).exists(), "the Binder badge must open notebooks/00_why_tinyml.ipynb"


def test_instructor_guide_has_the_schedule_and_timings():
    guide = (ROOT / "slides/README.md").read_text()
    for heading in ("Half-day schedule", "Before the workshop", "Common learner problems",
                    "Real datasets", "Training on GPUs"):
        assert heading in guide, f"instructor guide lacks '{heading}'"
