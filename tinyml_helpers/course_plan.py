"""Core path and deep dives: read the notebooks' section markers, so the guide can agree.

A workshop half day cannot run every cell of every notebook. Each notebook therefore has a
**core path** (what the room runs together, ending in its hands-on exercise) and **deep
dives** (sections a learner opens at home). A deep dive starts at a markdown heading cell that

* carries the cell tag ``deep-dive``,
* has a title starting with ``Deep dive:``, and
* is stored collapsed: ``"jp-MarkdownHeadingCollapsed": true`` (JupyterLab 4) and
  ``"heading_collapsed": true`` (classic Notebook's collapsible headings),

and runs until the next heading of the same or a higher level. Everything else is core.
The instructor guide (``slides/README.md``) lists each notebook's deep dives by title;
``tests/test_course_plan.py`` checks that the two agree.

Example:
    >>> cells = [{"cell_type": "markdown", "source": "# 02 · Pruning", "metadata": {}},
    ...          {"cell_type": "code", "source": "x = 1", "metadata": {}},
    ...          {"cell_type": "markdown", "source": "## Deep dive: LayerDrop",
    ...           "metadata": {"tags": ["deep-dive"]}},
    ...          {"cell_type": "code", "source": "y = 2", "metadata": {}}]
    >>> [(s.title, s.deep, s.n_cells) for s in sections(cells)]
    [('02 · Pruning', False, 2), ('Deep dive: LayerDrop', True, 2)]
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

DEEP_DIVE_TAG = "deep-dive"
DEEP_DIVE_PREFIX = "Deep dive:"
COLLAPSED_KEYS = ("jp-MarkdownHeadingCollapsed", "heading_collapsed")
_HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")

__all__ = ["DEEP_DIVE_TAG", "DEEP_DIVE_PREFIX", "Section", "sections", "deep_dives", "notebook_cells",
           "heading_of", "mark_deep_dive", "in_deep_dive", "cell_seconds", "core_path_seconds"]


@dataclass(frozen=True)
class Section:
    """A run of cells under one heading: its title, level, whether it is a deep dive, and size."""

    title: str
    level: int
    deep: bool
    n_cells: int
    n_code: int
    has_exercise: bool


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def heading_of(cell: dict[str, Any]) -> tuple[int, str] | None:
    """``(level, title)`` of a markdown cell that starts with a heading, else None.

    Example:
        >>> heading_of({"cell_type": "markdown", "source": "## Deep dive: X\\ntext"})
        (2, 'Deep dive: X')
    """
    if cell.get("cell_type") != "markdown":
        return None
    lines = _source(cell).strip().splitlines()
    m = _HEADING.match(lines[0]) if lines else None
    return (len(m.group(1)), m.group(2)) if m else None


def notebook_cells(path: str | Path) -> list[dict[str, Any]]:
    """The cells of a stored notebook (plain JSON: no Jupyter import needed)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


def in_deep_dive(cells: Sequence[dict[str, Any]]) -> list[bool]:
    """For each cell, whether it belongs to a deep dive (same rule as :func:`sections`).

    Example:
        >>> in_deep_dive([{"cell_type": "markdown", "source": "## Deep dive: X", "metadata": {"tags": ["deep-dive"]}},
        ...               {"cell_type": "code", "source": "1", "metadata": {}},
        ...               {"cell_type": "markdown", "source": "## Summary", "metadata": {}}])
        [True, True, False]
    """
    flags, deep, level = [], False, 0
    for cell in cells:
        head = heading_of(cell)
        if head is not None and not (deep and head[0] > level):
            level = head[0]
            deep = DEEP_DIVE_TAG in cell.get("metadata", {}).get("tags", [])
        flags.append(deep)
    return flags


def cell_seconds(cell: dict[str, Any]) -> float | None:
    """How long an executed code cell ran, from the timing nbclient stores (None if absent).

    Example:
        >>> cell_seconds({"cell_type": "code", "metadata": {"execution": {
        ...     "iopub.execute_input": "2026-11-29T10:00:00.000Z", "shell.execute_reply": "2026-11-29T10:00:02.500Z"}}})
        2.5
    """
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if cell.get("cell_type") != "code" or not (start and end):
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(end) - parse(start)).total_seconds(), 3)


def core_path_seconds(cells: Sequence[dict[str, Any]]) -> float | None:
    """Summed run time of an executed notebook's core-path code cells (None if it has no timing).

    The benchmark reports it beside the wall time, so the guide's core-path times are measured.
    """
    times = [cell_seconds(c) for c, deep in zip(cells, in_deep_dive(cells)) if not deep]
    known = [t for t in times if t is not None]
    return round(sum(known), 1) if known else None


def sections(cells: Sequence[dict[str, Any]]) -> list[Section]:
    """Split cells into sections at headings; a deep dive swallows its deeper sub-headings."""
    out: list[Section] = []
    title, level, deep, n, n_code, ex = "(before the first heading)", 0, False, 0, 0, False
    for cell in cells:
        head = heading_of(cell)
        inside_deep_child = deep and head is not None and head[0] > level
        if head is not None and not inside_deep_child:
            if n:
                out.append(Section(title, level, deep, n, n_code, ex))
            level, title = head
            deep = DEEP_DIVE_TAG in cell.get("metadata", {}).get("tags", [])
            n = n_code = 0
            ex = False
        n += 1
        if cell.get("cell_type") == "code":
            n_code += 1
            ex = ex or "exercise" in cell.get("metadata", {}).get("tags", [])
    if n:
        out.append(Section(title, level, deep, n, n_code, ex))
    return out


def deep_dives(path_or_cells: str | Path | Iterable[dict[str, Any]]) -> list[str]:
    """Titles of a notebook's deep dives, in order."""
    cells = notebook_cells(path_or_cells) if isinstance(path_or_cells, (str, Path)) else list(path_or_cells)
    return [s.title for s in sections(cells) if s.deep]


def mark_deep_dive(cell: dict[str, Any]) -> dict[str, Any]:
    """Tag a heading cell as a deep dive and store it collapsed (returns the same cell).

    Example:
        >>> c = mark_deep_dive({"cell_type": "markdown", "source": "## Deep dive: X", "metadata": {}})
        >>> c["metadata"]["tags"], c["metadata"]["jp-MarkdownHeadingCollapsed"]
        (['deep-dive'], True)
    """
    head = heading_of(cell)
    if head is None or not head[1].startswith(DEEP_DIVE_PREFIX):
        raise ValueError(f"a deep dive starts at a heading titled '{DEEP_DIVE_PREFIX} ...', got {_source(cell)[:60]!r}")
    meta = cell.setdefault("metadata", {})
    tags = meta.setdefault("tags", [])
    if DEEP_DIVE_TAG not in tags:
        tags.append(DEEP_DIVE_TAG)
    for key in COLLAPSED_KEYS:
        meta[key] = True
    return cell
