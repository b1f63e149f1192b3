"""Unit tests of the foundation: run mode, seeding, folders, offline guard, recorder, files."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

from tinyml_helpers import config, results
from tinyml_helpers.files import ChecksumError, atomic_path, atomic_write_json, sha256_file, verify_sha256


def test_run_mode_follows_environment(monkeypatch):
    monkeypatch.setenv("TINYML_SMOKE", "1")
    assert config.is_smoke() and config.run_mode() == "smoke"
    assert config.by_mode(workshop=10, smoke=1) == 1
    monkeypatch.setenv("TINYML_SMOKE", "0")
    assert config.run_mode() == "workshop" and config.by_mode(workshop=10, smoke=1) == 10


def test_seed_everything_repeats_random_streams():
    config.seed_everything(7)
    a = (np.random.rand(3), torch.rand(3))
    config.seed_everything(7)
    b = (np.random.rand(3), torch.rand(3))
    assert np.allclose(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(bad)


def test_device_defaults_to_cpu_and_rejects_unknown():
    assert str(config.get_device()) == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        config.get_device("tpu")


def test_artifacts_dir_is_overridable(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path / "run"))
    monkeypatch.setenv("TINYML_SMOKE", "0")  # smoke runs add smoke/ (test_reliability)
    assert config.artifacts_dir("x") == tmp_path / "run" / "x"
    assert (tmp_path / "run" / "x").is_dir()


def test_missing_data_dir_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_DATA", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="TINYML_DATA"):
        config.data_dir()


def test_start_lesson_rejects_paths():
    with pytest.raises(ValueError, match="plain notebook name"):
        config.start_lesson("notebooks/00_why_tinyml.ipynb")


def test_network_guard_blocks_outside_but_not_loopback(monkeypatch):
    monkeypatch.setenv("TINYML_BLOCK_NETWORK", "1")
    assert config.maybe_block_network()
    with socket.socket() as s, pytest.raises(config.NetworkBlockedError, match="offline"):
        s.connect(("8.8.8.8", 53))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.socket() as client:
        client.connect(server.getsockname())  # loopback stays allowed (Jupyter kernels use it)
    server.close()


def test_record_writes_json_and_returns_value(capsys):
    config.start_lesson("99_test")
    assert results.record("model.params", 1234, unit="count") == 1234
    results.record("model.accuracy", np.float32(0.5), unit="fraction", note="half")
    assert "model.params: 1.23 k (1,234)" in capsys.readouterr().out
    doc = json.loads(results.results_path("99_test").read_text())
    assert doc["results"]["model.accuracy"] == {"value": 0.5, "unit": "fraction", "note": "half"}
    assert results.load_results("99_test") == {"model.params": 1234, "model.accuracy": 0.5}


@pytest.mark.parametrize("key,value,unit,match", [
    ("bad key", 1, None, "dotted name"),
    ("acc", 87.5, "fraction", "outside"),
    ("acc", float("nan"), "fraction", "non-finite"),
    ("size", 1, "kilobytes", "unknown unit"),
])
def test_record_rejects_bad_input(key, value, unit, match):
    with pytest.raises(ValueError, match=match):
        results.record(key, value, unit=unit, lesson="99_test")


def test_format_value_units():
    assert results.format_value(3_500_000, "MACs") == "3.50 M MACs (3,500,000)"
    assert results.format_value(0.0021, "seconds") == "2.10 ms"
    assert results.format_value(-0.012, "points") == "-1.20 points"


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_checksum_mismatch_and_missing_file(tmp_path):
    path = atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert verify_sha256(path, sha256_file(path)) == path
    with pytest.raises(ChecksumError, match="corrupted"):
        verify_sha256(path, "0" * 64)
    with pytest.raises(FileNotFoundError, match="missing"):
        verify_sha256(tmp_path / "gone", "0" * 64)


def test_smoke_runs_never_share_the_workshop_artifacts(monkeypatch):
    monkeypatch.delenv("TINYML_ARTIFACTS", raising=False)
    monkeypatch.setenv("TINYML_SMOKE", "1")
    smoke = config.artifacts_dir()
    monkeypatch.setenv("TINYML_SMOKE", "0")
    workshop = config.artifacts_dir()
    assert smoke == workshop / "smoke" and workshop == config.REPO_ROOT / "artifacts"


def test_start_lesson_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        config.start_lesson("99_test", torch_threads=1)
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="positive integer"):
            config.start_lesson("99_test", torch_threads=0)
    finally:
        torch.set_num_threads(before)


def test_format_value_power_energy_frequency_with_si_prefixes():
    # watts showed as "0.0083 watts" and a figure typed in mW could not be shown in mW
    assert results.format_value(0.0083, "watts") == "8.30 mW"
    assert results.format_value(8.3, "mW") == "8.30 mW"
    assert results.format_value(250, "uW") == results.format_value(250, "µW") == "250 µW"
    assert results.format_value(830e-6, "joules") == "830 µJ"
    assert results.format_value([0.0021, 0.0031], "joules") == "2.10 mJ to 3.10 mJ"
    assert results.format_value(64e6, "hertz") == "64.0 MHz"
    assert results.format_value(0.99996, "watts") == "1.00 W"       # rounding moves to the next prefix
    assert results.format_value(0, "watts") == "0 W"
    assert results.format_value(-0.004, "watts") == "-4.00 mW"


def test_record_names_the_base_unit_for_a_prefixed_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path))
    with pytest.raises(ValueError, match=r"in watts.*8\.3 \* 0\.001, unit='watts'.*'8\.30 mW'"):
        results.record("power", 8.3, unit="mW", lesson="99_test")
    assert results.record("power", 0.0083, unit="watts", lesson="99_test", show=False) == 0.0083


def test_atomic_writes_get_an_ordinary_files_mode_not_the_temporary_files_private_one(tmp_path):
    # Regression: atomic writes renamed mkstemp's 0600 file into place, so results written by one
    # user of a shared install (JupyterHub, a lab machine) were unreadable for the others.
    import os
    import stat

    from tinyml_helpers.files import atomic_write_text

    mask = os.umask(0o022)
    os.umask(mask)
    fresh = atomic_write_text(tmp_path / "fresh.json", "{}")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o640)
    atomic_write_text(kept, "new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new"
