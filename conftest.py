"""Shared test set-up: unit tests and doctests write artifacts to a temp folder and run in smoke mode.

Notebook cells run by nbval keep the real run folder, so the notebooks of one test run
share the feature cache and the handoff files, as they do for a learner.
"""
from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("TINYML_SMOKE", "1")


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


# The slowest test files first. pytest-xdist (`make test`, --dist loadfile) hands whole files to its
# workers in collection order, so a heavy file collected last (test_solutions.py sorts late) keeps
# one worker busy long after the other has finished. Notebook cells keep their order: the sort is
# stable and they are not in this list.
SLOW_FILES_FIRST = ("tests/test_solutions.py", "tests/test_accelerate.py", "tests/test_loeo.py",
                    "tests/test_browser_launch.py", "tests/test_voice_curve.py", "tests/test_browser_say_keyword.py")


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
