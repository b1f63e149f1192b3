"""Notebooks are stored without outputs, run the lesson's start-up, and never import each other."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name} has outputs in cells {dirty}; clear them with "
                       f"`jupyter nbconvert --clear-output --inplace {path}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_its_lesson(path):
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert f'start_lesson("{path.stem}"' in code, (
        f"{path.name} must call start_lesson(\"{path.stem}\") so its results land in the right file")
    assert "%run" not in code and "import notebooks" not in code, "notebooks must not import each other"
    assert "!pip" not in code and "%pip" not in code, "notebooks must not install packages"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_carries_slide_metadata(path):
    # Instructors present notebooks live with JupyterLab RISE; it reads this metadata.
    nb = json.loads(path.read_text())
    untagged = [i for i, c in enumerate(nb["cells"]) if "slide_type" not in c.get("metadata", {}).get("slideshow", {})]
    assert not untagged, f"{path.name}: cells {untagged} lack slideshow.slide_type metadata"
    assert nb["cells"][0]["metadata"]["slideshow"]["slide_type"] in {"slide", "skip", "-"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_two_checked_exercises(path):
    nb = json.loads(path.read_text())
    exercises = [c for c in nb["cells"] if c["cell_type"] == "code" and "exercise" in c["metadata"].get("tags", [])]
    assert len(exercises) >= 2, f"{path.name} has {len(exercises)} exercise cells; every lesson needs at least 2"
    for cell in exercises:
        source = "".join(cell["source"])
        assert source.startswith("# EXERCISE "), f"{path.name}: exercise cell must start with '# EXERCISE <id>'"
        assert "check" in source.splitlines()[-1], f"{path.name}: exercise cell must end with its check call"
