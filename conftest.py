"""Shared test set-up: unit tests and doctests write artifacts to a temp folder and run in smoke mode.

Notebook cells run by nbval keep the real run folder, so the notebooks of one test run
share the feature cache and the handoff files, as they do for a learner.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TINYML_SMOKE", "1")


@pytest.fixture(autouse=True)
def _isolated_artifacts(request, tmp_path, monkeypatch):
    if type(request.node).__name__ != "IPyNbCell":
        monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path / "artifacts"))
    yield
