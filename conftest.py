"""Shared test set-up: unit tests and doctests write artifacts to a temp folder and run in smoke mode.

Notebook cells run by nbval keep the real run folder, so the notebooks of one test run
share the feature cache and the handoff files, as they do for a learner. Under pytest-xdist
(`make test` runs the notebooks with ``-n 2 --dist loadgroup``) every notebook stays whole on
one worker, and the notebooks that hand files to each other stay on one worker in course order.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TINYML_SMOKE", "1")


# Notebook 04 saves the PhiNet it trains, 05 converts a PhiNet and writes the ONNX handoff,
# 06 deploys that handoff: run in parallel, 06 could read (or rebuild) the handoff while 05
# rewrites it. These run one after the other, in order, on one worker.
HANDOFF_CHAIN = ("04_", "05_", "06_")


def notebook_group(path: str | os.PathLike) -> str:
    """The pytest-xdist group of a notebook's cells: the hand-off chain, or the notebook itself.

    Example:
        >>> notebook_group("notebooks/05_conversion.ipynb"), notebook_group("notebooks/02_pruning.ipynb")
        ('handoff-04-06', '02_pruning')
    """
    stem = Path(path).stem
    return "handoff-04-06" if stem.startswith(HANDOFF_CHAIN) else stem


# Under pytest-xdist (`make test`: -n 2 --dist loadgroup --no-loadscope-reorder) a group runs on
# one worker, in order: a notebook's cells, the hand-off chain above, and a test file's tests
# (its module-scoped fixtures, e.g. compiled firmware, are then built once). The tests of the
# files listed here share nothing and take 10-50 s each, so the two workers split them.
INDEPENDENT_TESTS = ("tests/test_solutions.py",)
# Each test here takes 20-50 s (notebooks with solutions, accelerate launches, Chromium): they
# are handed out first, so the two workers end together instead of one waiting for a late one.
LONGEST_FIRST = ("tests/test_solutions.py", "tests/test_accelerate.py", "tests/test_browser_launch.py",
                 "tests/test_browser_say_keyword.py")


def _join_xdist_group(item, group: str) -> None:
    """Put ``item`` in pytest-xdist group ``group`` (honoured with ``--dist loadgroup``).

    pytest-xdist 3.8 marks a group by appending ``@group`` to ``item._nodeid``, but pytest 9
    derives ``item.nodeid`` from ``item._id``, so its ``xdist_group`` mark has no effect and a
    notebook's cells would be spread over both workers (and both kernels). Write the suffix
    where pytest 9 reads it; the pins in requirements.txt fix both versions.
    """
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9: pytest-xdist's own mark works
        item.add_marker(pytest.mark.xdist_group(group))
        return
    if "@" not in item.nodeid.rsplit("]", 1)[-1]:
        item._id = NodeId.parse(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if config.getvalue("loadgroup"):
        for item in items:
            if type(item).__name__ == "IPyNbCell":  # a notebook's cells share one kernel: never split them
                _join_xdist_group(item, notebook_group(item.path))
                continue
            relpath = Path(item.path).relative_to(config.rootpath).as_posix()
            if relpath not in INDEPENDENT_TESTS:  # one group per file, as --dist loadfile: module fixtures built once
                _join_xdist_group(item, relpath)

    def rank(item):
        if type(item).__name__ == "IPyNbCell":  # the hand-off chain is the longest notebook group
            return 0 if notebook_group(item.path).startswith("handoff") else 1
        relpath = Path(item.path).relative_to(config.rootpath).as_posix()
        return LONGEST_FIRST.index(relpath) if relpath in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable, and alike on every worker, so their collections agree


@pytest.fixture(autouse=True)
def _isolated_unit_tests(request, tmp_path, monkeypatch):
    in_notebook = type(request.node).__name__ == "IPyNbCell"
    if not in_notebook:
        monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path / "artifacts"))
    yield
    # Plot doctests open a figure each; close them so a test run does not hold dozens at once.
    if not in_notebook and "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close("all")
