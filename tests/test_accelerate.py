"""The shipped training scripts run unchanged under `accelerate launch` with two CPU processes.

micromind trains through Hugging Face accelerate, so a learner with more cores (or GPUs) can
spread the training scripts over several processes. This runs each script on the smoke-sized
corpus for one epoch in two real CPU processes (gloo) and checks that exactly one checkpoint,
loadable and sha256-checked, comes out.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ACCELERATE = Path(sys.executable).with_name("accelerate")


def _free_port() -> int:
    """A port nobody listens on now: the two launches (possibly on two pytest-xdist workers at
    once) must not both bind torchrun's rendezvous to one fixed port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(module: str, out: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYML_SMOKE": "1", "TINYML_ARTIFACTS": str(tmp_path / "artifacts"),
           # accelerate 0.23 reaches multi-process CPU training through its torchrun launcher + this switch.
           "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1",
           "--main_process_port", str(_free_port()), "-m", module, "--epochs", "1", "--out", str(out), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate's launcher is not installed")
def test_keyword_phinet_script_under_accelerate_launch(tmp_path):
    from tinyml_helpers.models.phinet import _load_from

    out = tmp_path / "kws_phinet.pt"
    # one virtual-speaker copy keeps the recipe's data path while sparing the test three more copies
    done = _launch("tinyml_helpers.scripts.train_kws_phinet", out, tmp_path, "--no-manifest", "--voice-copies", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test accuracy") == 1, "only the main process reports and writes"
    model, _ = _load_from(out, out.with_suffix(".json"))  # sha256-checked, weights_only
    assert json.loads(out.with_suffix(".json").read_text())["epochs"] == 1
    assert sum(p.numel() for p in model.parameters()) > 10_000


@pytest.mark.skipif(not ACCELERATE.exists(), reason="accelerate's launcher is not installed")
def test_teacher_script_under_accelerate_launch(tmp_path):
    from tinyml_helpers.models.kws_cnn import load_kws_teacher

    out = tmp_path / "teacher.pt"
    done = _launch("tinyml_helpers.scripts.train_teacher", out, tmp_path, "--augment-copies", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"test_accuracy"') == 1, "only the main process reports and writes"
    assert load_kws_teacher(out, verify=False).classifier.out_features == 12
