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
