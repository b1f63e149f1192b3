"""Shared test setup: every test writes artifacts to a temp folder and runs offline."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TINYML_SMOKE", "1")


@pytest.fixture(autouse=True)
def _isolated_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path / "artifacts"))
    yield
