"""Worked solutions to the notebooks' exercises, one module per notebook.

Each ``<notebook-stem>.py`` holds ``# SOLUTION <id>`` blocks; each block is the full text
of the exercise cell with the same ``# EXERCISE <id>`` header, solved. ``tests/test_solutions.py``
runs every notebook with its exercise cells replaced by these blocks and
``TINYML_EXPECT_SOLVED=1``, so a solution that stops matching its check fails CI.

Example:
    >>> from tinyml_helpers.solutions import solution_blocks
    >>> isinstance(solution_blocks("00_why_tinyml"), dict)
    True
"""
from __future__ import annotations

import re
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_MARK = re.compile(r"^# SOLUTION (\S+)\s*$", re.MULTILINE)


def solution_blocks(notebook_stem: str) -> dict[str, str]:
    """Map exercise id -> solved cell source for one notebook (empty if it has none)."""
    path = _HERE / f"{notebook_stem}.py"
    if not path.exists():
        return {}
    text = path.read_text()
    marks = list(_MARK.finditer(text))
    blocks = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        blocks[m.group(1)] = text[m.end():end].strip("\n") + "\n"
    return blocks


def show_solution(exercise_id: str) -> str:
    """Return (and print) the worked solution of an exercise, e.g. ``"01.soft_labels"``."""
    for path in sorted(_HERE.glob("[0-9]*.py")):
        block = solution_blocks(path.stem).get(exercise_id)
        if block:
            print(block)
            return block
    raise KeyError(f"no solution named {exercise_id!r}; ids look like '01.soft_labels'")
