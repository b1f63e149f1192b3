"""Benchmark the course: run every notebook in workshop mode, measure time and memory.

``make bench`` (``python -m tinyml_helpers.bench``) executes each notebook in
``notebooks/`` headless with nbclient, samples the resident memory of its kernel (and the
kernel's child processes, e.g. the compiler) every 0.1 s with psutil, and writes one report
to ``artifacts/bench/report.json`` and ``report.md`` with, per notebook: wall time, peak
RSS, pass/fail against the course targets, and the figures the notebook recorded with
:func:`tinyml_helpers.record`. Executed copies are kept in ``artifacts/bench/executed/``.

Example:
    $ python -m tinyml_helpers.bench notebooks/00_why_tinyml.ipynb
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import config
from .files import atomic_write_json, atomic_write_text
from .results import format_value

# Course targets per notebook (issue budgets): minutes on 2 cores and memory in bytes.
TIME_TARGET_SECONDS = {"04_phinets": 240.0, "03_adhoc_pipelines": 120.0,
                       "05_conversion": 120.0, "06_deployment": 120.0}
DEFAULT_TIME_TARGET_SECONDS = 180.0
MEMORY_TARGET_BYTES = int(1.5 * 2**30)


@dataclass
class NotebookRun:
    """What one notebook run measured."""

    notebook: str
    mode: str
    seconds: float
    peak_rss_bytes: int
    ok: bool
    error: str | None = None
    time_target_seconds: float = DEFAULT_TIME_TARGET_SECONDS
    memory_target_bytes: int = MEMORY_TARGET_BYTES
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {"value", "unit", ...}
    core_path_seconds: float | None = None  # summed time of the cells outside the deep dives

    @property
    def within_targets(self) -> bool:
        return self.ok and self.seconds <= self.time_target_seconds and \
            self.peak_rss_bytes <= self.memory_target_bytes


class _RssSampler(threading.Thread):
    """Poll the kernel's process tree for resident memory; keep the peak of the sum."""

    def __init__(self, client: Any, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.client, self.period, self.peak = client, period, 0
        self._stop_event = threading.Event()

    def _kernel_pid(self) -> int | None:
        # nbclient creates the kernel manager inside execute(); wait for its process.
        km = getattr(self.client, "km", None)
        process = getattr(getattr(km, "provisioner", None), "process", None)
        return getattr(process, "pid", None)

    def run(self) -> None:
        import psutil

        while (pid := self._kernel_pid()) is None:
            if self._stop_event.wait(0.02):
                return
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                return
            self.peak = max(self.peak, total)
            self._stop_event.wait(self.period)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=2)
        return self.peak


def run_notebook(path: Path, smoke: bool = False, timeout: int = 1200) -> NotebookRun:
    """Execute one notebook in a fresh kernel and measure it.

    Example:
        >>> run = run_notebook(Path("notebooks/00_why_tinyml.ipynb"), smoke=True)  # doctest: +SKIP
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from .notebook_exec import notebook_runner

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}")
    kernel_env = {**os.environ, config.SMOKE_ENV: "1" if smoke else "0"}
    nb = nbformat.read(path, as_version=4)
    client = notebook_runner(nb, path.parent, timeout)
    error = None
    start = time.perf_counter()
    sampler = _RssSampler(client)
    sampler.start()
    try:
        client.execute(env=kernel_env)
    except CellExecutionError as exc:
        error = _last_error_line(str(exc))
    except Exception as exc:  # a timeout or a dead kernel is a failed run, not a crash of the bench
        error = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        peak = sampler.stop()
    seconds = time.perf_counter() - start
    out_dir = config.artifacts_dir("bench", "executed")
    atomic_write_text(out_dir / path.name, nbformat.writes(nb))
    from .course_plan import core_path_seconds

    return NotebookRun(notebook=path.stem, mode="smoke" if smoke else "workshop", seconds=seconds,
                       peak_rss_bytes=peak, ok=error is None, error=error,
                       core_path_seconds=core_path_seconds(nb.cells),
                       time_target_seconds=TIME_TARGET_SECONDS.get(path.stem, DEFAULT_TIME_TARGET_SECONDS),
                       results=_recorded_results(path.stem, smoke))


def _recorded_results(lesson: str, smoke: bool) -> dict[str, Any]:
    # The kernel wrote its results under the folder of *its* mode (artifacts/smoke/ for smoke).
    from .results import load_entries

    saved = os.environ.get(config.SMOKE_ENV)
    os.environ[config.SMOKE_ENV] = "1" if smoke else "0"
    try:
        return load_entries(lesson)
    finally:
        if saved is None:
            os.environ.pop(config.SMOKE_ENV, None)
        else:
            os.environ[config.SMOKE_ENV] = saved


def _last_error_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    return (errors or lines or ["cell error"])[-1][:500]


def write_report(runs: list[NotebookRun]) -> Path:
    """Write report.json and report.md under artifacts/bench/ and return the markdown path."""
    out = config.artifacts_dir("bench")
    atomic_write_json(out / "report.json", {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
                                            "runs": [asdict(r) | {"within_targets": r.within_targets}
                                                     for r in runs]})
    lines = ["# Course benchmark", "", f"Machine: {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}.", "",
             "| notebook | mode | wall time | core path (cell time) | peak RSS | targets | status |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        target = f"<= {r.time_target_seconds:.0f} s, <= {r.memory_target_bytes / 2**30:.1f} GiB"
        status = "ok" if r.within_targets else ("over target" if r.ok else f"error: {r.error}")
        core = "-" if r.core_path_seconds is None else f"{r.core_path_seconds:.1f} s"
        lines.append(f"| {r.notebook} | {r.mode} | {r.seconds:.1f} s | {core} | {r.peak_rss_bytes / 2**20:.0f} MiB "
                     f"| {target} | {status} |")
    for r in runs:
        lines += ["", f"## {r.notebook}", ""]
        if not r.results:
            lines.append("(no recorded results)")
        lines += [f"- `{k}`: {format_value(e['value'], e.get('unit'))}" for k, e in r.results.items()]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the course notebooks and report time and memory.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all)")
    parser.add_argument("--smoke", action="store_true", help="run in smoke mode instead of workshop mode")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((config.REPO_ROOT / "notebooks").glob("*.ipynb"))
    runs = []
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        run = run_notebook(path, smoke=args.smoke)
        print(f"  {run.seconds:.1f} s, peak {run.peak_rss_bytes / 2**20:.0f} MiB, "
              f"{'ok' if run.ok else 'ERROR: ' + str(run.error)}", flush=True)
        runs.append(run)
    report = write_report(runs)
    print(f"report: {report}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
