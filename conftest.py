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
def _isolated_artifacts(request, tmp_path, monkeypatch):
    if type(request.node).__name__ != "IPyNbCell":
        monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path / "artifacts"))
    yield


@pytest.fixture(autouse=True)
def _close_figures(request):
    # Plot doctests open a figure each; close them so a test run does not hold dozens at once.
    yield
    if type(request.node).__name__ != "IPyNbCell" and "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close("all")
