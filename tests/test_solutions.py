"""Run every notebook with its exercise cells replaced by the worked solutions."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from tinyml_helpers.notebook_exec import notebook_runner
from tinyml_helpers.solutions import solution_blocks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISE_HEADER = re.compile(r"^# EXERCISE (\S+)", re.MULTILINE)


def exercise_cells(nb):
    for cell in nb.cells:
        if cell.cell_type == "code" and "exercise" in cell.metadata.get("tags", []):
            match = EXERCISE_HEADER.search(cell.source)
            assert match, f"exercise cell without '# EXERCISE <id>' header:\n{cell.source[:200]}"
            yield match.group(1), cell


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_solution(path):
    nb = nbformat.read(path, as_version=4)
    ids = [eid for eid, _ in exercise_cells(nb)]
    missing = sorted(set(ids) - set(solution_blocks(path.stem)))
    assert not missing, f"{path.name}: no solution block for {missing} in tinyml_helpers/solutions/{path.stem}.py"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if solution_blocks(p.stem)], ids=lambda p: p.name)
def test_notebook_runs_with_solutions(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    solutions = solution_blocks(path.stem)
    for eid, cell in exercise_cells(nb):
        cell.source = solutions[eid]
    monkeypatch.setenv("TINYML_SMOKE", "1")
    monkeypatch.setenv("TINYML_EXPECT_SOLVED", "1")
    notebook_runner(nb, path.parent, timeout=600).execute()
