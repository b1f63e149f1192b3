"""The benchmark runs a notebook in a fresh kernel, measures it, and writes its report."""
from __future__ import annotations

import json

import nbformat
import pytest

from tinyml_helpers import bench


def _notebook(tmp_path, source: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    path = tmp_path / "99_bench_probe.ipynb"
    nbformat.write(nb, path)
    return path


def test_bench_measures_and_reports(tmp_path):
    path = _notebook(tmp_path, "import tinyml_helpers as th\nth.start_lesson('99_bench_probe')\n"
                               "x = bytearray(50_000_000)\nth.record('probe.value', 3, unit='count')")
    run = bench.run_notebook(path, smoke=True)
    assert run.ok and run.results == {"probe.value": {"value": 3, "unit": "count"}}
    assert run.peak_rss_bytes > 50_000_000, "the 50 MB buffer should show in the kernel's peak RSS"
    report = bench.write_report([run])
    assert "99_bench_probe" in report.read_text() and "`probe.value`: 3" in report.read_text()
    data = json.loads((report.parent / "report.json").read_text())
    assert data["runs"][0]["within_targets"] is True


def test_bench_reports_a_failing_cell(tmp_path):
    run = bench.run_notebook(_notebook(tmp_path, "raise ValueError('boom')"), smoke=True)
    assert not run.ok and "boom" in run.error and not run.within_targets


def test_bench_missing_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook"):
        bench.run_notebook(tmp_path / "nope.ipynb")


def test_bench_sets_the_mode_for_the_kernel_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_SMOKE", "1")
    path = _notebook(tmp_path, "import tinyml_helpers as th\nth.start_lesson('99_bench_probe')\n"
                               "th.record('probe.mode', th.run_mode())")
    assert bench.run_notebook(path, smoke=False).results["probe.mode"]["value"] == "workshop"
    import os
    assert os.environ["TINYML_SMOKE"] == "1"


def test_bench_reads_results_from_the_kernels_mode_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYML_ARTIFACTS", raising=False)
    monkeypatch.setenv("TINYML_SMOKE", "0")
    monkeypatch.setattr("tinyml_helpers.config.REPO_ROOT", tmp_path)
    path = _notebook(tmp_path, "import os, tinyml_helpers as th\n"
                               f"th.config.REPO_ROOT = __import__('pathlib').Path({str(tmp_path)!r})\n"
                               "th.start_lesson('99_bench_probe')\nth.record('probe.mode', th.run_mode())")
    assert bench.run_notebook(path, smoke=True).results["probe.mode"]["value"] == "smoke"
    assert (tmp_path / "artifacts" / "smoke" / "results" / "99_bench_probe.json").exists()


def test_bench_times_the_core_path_without_the_deep_dives(tmp_path):
    # The guide's core-path times were estimates; the bench now measures them from cell timing.
    nb = nbformat.v4.new_notebook()
    deep = nbformat.v4.new_markdown_cell("## Deep dive: slow extras")
    deep.metadata["tags"] = ["deep-dive"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Probe"), nbformat.v4.new_code_cell("import time; time.sleep(0.3)"),
                deep, nbformat.v4.new_code_cell("import time; time.sleep(1.5)"),
                nbformat.v4.new_markdown_cell("## Summary"), nbformat.v4.new_code_cell("time.sleep(0.2)")]
    path = tmp_path / "98_core_probe.ipynb"
    nbformat.write(nb, path)
    run = bench.run_notebook(path, smoke=True)
    assert run.ok and 0.45 <= run.core_path_seconds < 1.4, run.core_path_seconds
    assert f"{run.core_path_seconds:.1f} s" in bench.write_report([run]).read_text()
