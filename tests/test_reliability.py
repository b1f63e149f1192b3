"""Regression tests of issue #17: a fault and bad-input probe of ``tinyml_helpers``.

Two kinds of test live here:

* fault tests (concurrent writers, killed writes, damaged files), one per finding;
* :data:`BAD_INPUTS`, a table of bad inputs with the category of the answer each gets --
  ``clear error`` (an exception whose message names the problem), ``converted`` (accepted and
  turned into the right value) or ``refused`` (a non-finite / implausible number is not
  passed on as a result). The next probe can compare its counts with :func:`test_bad_input_counts`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinyml_helpers import config, results

REPO = Path(__file__).resolve().parent.parent


def _python(code: str, **env: str) -> subprocess.Popen:
    """Start a separate Python process running ``code`` with this checkout importable."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            env={**os.environ, "PYTHONPATH": str(REPO), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# --------------------------------------------------------------------------- results JSON

def test_concurrent_record_keeps_every_entry(tmp_path):
    # Two real processes record 200 keys each into one lesson: none may be lost.
    code = """
        import sys
        from tinyml_helpers import results
        for i in range(200):
            results.record(f"{sys.argv[1]}.k{i}", i, unit="count", lesson="99_race", show=False)
    """
    env = {"TINYML_ARTIFACTS": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), tag],
                              env={**os.environ, "PYTHONPATH": str(REPO), **env},
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    (path,) = tmp_path.rglob("99_race.json")
    doc = json.loads(path.read_text())
    assert len(doc["results"]) == 400


def test_a_new_run_does_not_keep_the_previous_runs_figures(monkeypatch, tmp_path):
    config.start_lesson("99_stale")
    results.record("old.only", 1, unit="count")
    results.record("both", 1, unit="count")
    config.start_lesson("99_stale")  # a re-run of the notebook
    results.record("both", 2, unit="count")
    assert results.load_results("99_stale") == {"both": 2}
    # ... and the previous run's file is kept beside it, not thrown away.
    previous = results.results_path("99_stale").with_name("99_stale.previous.json")
    assert json.loads(previous.read_text())["results"]["old.only"]["value"] == 1


def test_corrupt_results_file_names_the_file_and_record_recovers(capsys):
    path = results.results_path("99_corrupt")
    path.write_text('{"results": {"a": ')
    with pytest.raises(ValueError, match=r"99_corrupt\.json.*(delete|re-run)"):
        results.load_results("99_corrupt")
    # record() sets the damaged file aside (it is kept for a look) and carries on.
    results.record("a", 1, unit="count", lesson="99_corrupt", show=False)
    assert results.load_results("99_corrupt") == {"a": 1}
    assert list(path.parent.glob("99_corrupt.corrupt-*.json"))
    assert "99_corrupt.json" in capsys.readouterr().err


# --------------------------------------------------------------------------- artifacts folder

def test_smoke_and_workshop_stay_apart_under_the_artifacts_override(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path))
    monkeypatch.setenv("TINYML_SMOKE", "1")
    smoke = config.artifacts_dir()
    monkeypatch.setenv("TINYML_SMOKE", "0")
    workshop = config.artifacts_dir()
    assert workshop == tmp_path and smoke == tmp_path / "smoke"


# --------------------------------------------------------------------------- feature cache

def _cache_once(n: int = 3, calls: list | None = None):
    from tinyml_helpers.data.features import cached_features

    def load():
        if calls is not None:
            calls.append(1)
        return np.zeros((n, 16000), np.float32), np.arange(n) % 2
    return cached_features("mfcc", True, "probe", "train", "tiny", load)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "wrong_clip_count"])
def test_damaged_feature_cache_is_recomputed(damage):
    from tinyml_helpers.data.features import feature_cache_dir

    _cache_once()
    (path,) = feature_cache_dir().glob("mfcc_train_tiny_*.npz")
    raw = bytearray(path.read_bytes())
    if damage == "flip_byte":
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    else:  # a well-formed file holding a different number of clips
        with np.load(path) as stored:
            arrays = {k: stored[k] for k in stored.files}
        arrays["X"], arrays["y"] = arrays["X"][:2], arrays["y"][:2]
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
    calls: list = []
    X, y = _cache_once(calls=calls)
    assert calls == [1], "the damaged entry was not recomputed"
    assert X.shape == (3, 1, 49, 10) and y.tolist() == [0, 1, 0]
    X2, _ = _cache_once(calls=calls)  # ... and the recomputed entry is good again
    assert calls == [1] and X2.shape == X.shape


# --------------------------------------------------------------------------- training folder

@pytest.mark.parametrize("run_name", ["../escape", "/tmp/abs-run", "a/../../b"])
def test_run_name_cannot_leave_the_checkpoints_folder(run_name, tmp_path):
    import torch
    from tinyml_helpers.training import make_loader, train_classifier

    victim = tmp_path / "victim" / "save"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("precious")
    dl = make_loader(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), batch_size=2)
    name = str(tmp_path / "victim") if run_name.startswith("/tmp") else run_name
    with pytest.raises(ValueError, match="run_name"):
        train_classifier(torch.nn.Linear(3, 2), {"train": dl, "val": dl}, epochs=1, run_name=name,
                         progress=False)
    assert (victim / "keep.txt").read_text() == "precious"


# --------------------------------------------------------------------------- ONNX export

def test_external_data_export_never_rewrites_the_good_file_in_place(tmp_path, monkeypatch):
    import onnx
    import torch
    from tinyml_helpers import export

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    target = tmp_path / "m.onnx"
    export.export_onnx(net, target, (1, 5, 5), external_data=True)
    good = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def killed(*args, **kwargs):  # the process dies half way through writing
        Path(args[1]).write_bytes(b"half")
        raise KeyboardInterrupt
    monkeypatch.setattr(onnx, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        export.export_onnx(net, target, (1, 5, 5), external_data=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")} == good


# --------------------------------------------------------------------------- int8 calibration

@pytest.fixture(scope="module")
def kws_float(tmp_path_factory):
    """The shipped keyword PhiNet exported to ONNX, with real train and test features."""
    from tinyml_helpers import export as ex
    from tinyml_helpers.data import keyword_features
    from tinyml_helpers.models.phinet import load_kws_phinet

    model, cfg = load_kws_phinet("shipped")
    kind = cfg.get("feature_kind", cfg.get("kind", "logmel"))
    X_train, y_train = keyword_features("train", kind=kind, smoke=True)
    X_test, y_test = keyword_features("test", kind=kind, smoke=True)
    folder = tmp_path_factory.mktemp("kws")
    fp32 = ex.export_onnx(model, folder / "kws_fp32.onnx", X_test.shape[1:])
    return {"fp32": fp32, "X_cal": ex.calibration_subset(X_train, y_train, 32), "X_train": X_train,
            "X_test": X_test, "y_test": y_test}


def _spoil(X: np.ndarray, how: str) -> np.ndarray:
    X = X.copy()
    if how == "one 1e6":
        X.flat[5] = 1e6
    elif how == "one inf":
        X.flat[5] = np.inf
    elif how == "all zero":
        X[:] = 0
    elif how == "all NaN":
        X[:] = np.nan
    return X


@pytest.mark.parametrize("how,match", [("one 1e6", "outlier|range"), ("one inf", "non-finite"),
                                       ("all zero", "constant|degenerate"), ("all NaN", "non-finite")])
def test_bad_calibration_is_refused_not_quantized(kws_float, how, match, tmp_path):
    from tinyml_helpers import export as ex

    with pytest.raises(ValueError, match=match):
        ex.quantize_onnx(kws_float["fp32"], tmp_path / "q.onnx", _spoil(kws_float["X_cal"], how))
    assert not (tmp_path / "q.onnx").exists()


def test_calibration_outside_the_training_range_is_refused(kws_float, tmp_path):
    from tinyml_helpers import export as ex

    X = kws_float["X_cal"] * 40  # finite, varied, self-consistent, but nothing like training
    train = kws_float["X_train"]
    with pytest.raises(ValueError, match="training"):
        ex.quantize_onnx(kws_float["fp32"], tmp_path / "q.onnx", X,
                         expected_range=(float(train.min()), float(train.max())))


def test_int8_model_that_disagrees_with_the_float_one_is_refused(kws_float, tmp_path):
    from tinyml_helpers import export as ex

    narrow = kws_float["X_cal"] * 1e-3  # passes the input checks, ranges far too narrow
    with pytest.raises(ValueError, match="int8 model disagrees"):
        ex.quantize_onnx(kws_float["fp32"], tmp_path / "q.onnx", narrow,
                         check_features=kws_float["X_test"])
    assert not (tmp_path / "q.onnx").exists()
    good = ex.quantize_onnx(kws_float["fp32"], tmp_path / "q.onnx", kws_float["X_cal"],
                            check_features=kws_float["X_test"])
    assert ex.accuracy(ex.onnx_logits(good, kws_float["X_test"]), kws_float["y_test"]) > 0.8


# --------------------------------------------------------------------------- firmware folder

SMALL_MCU = dict(flash_bytes=64 * 1024, ram_bytes=32 * 1024, stack_bytes=4 * 1024)


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    import torch
    from test_deploy_pipeline import TinyNet, _export_int8

    folder = tmp_path_factory.mktemp("tiny_int8")
    torch.manual_seed(0)
    a = _export_int8(TinyNet(), folder)
    (folder / "b").mkdir()
    b = _export_int8(TinyNet(classes=3), folder / "b")  # another model, same input
    return a, b


def test_crash_before_the_elf_build_leaves_the_previous_firmware_whole(tiny_int8, tmp_path, monkeypatch):
    from tinyml_helpers.deploy import pipeline, toolchain

    a, b = tiny_int8
    out = tmp_path / "fw"
    pipeline.deploy_onnx(a, out, layout=toolchain.MemoryLayout(**SMALL_MCU))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed after generate_c, before the ELF is linked
    monkeypatch.setattr(toolchain, "compile_firmware", crash)
    with pytest.raises(KeyboardInterrupt):
        pipeline.deploy_onnx(b, out, layout=toolchain.MemoryLayout(**SMALL_MCU))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert pipeline.load_firmware(out).manifest["macs"] == json.loads((out / "model.json").read_text())["macs"]


def test_manifest_beside_another_elf_is_refused(tiny_int8, tmp_path):
    from tinyml_helpers.deploy import pipeline, toolchain

    a, b = tiny_int8
    pipeline.deploy_onnx(a, tmp_path / "a", layout=toolchain.MemoryLayout(**SMALL_MCU))
    pipeline.deploy_onnx(b, tmp_path / "b", layout=toolchain.MemoryLayout(**SMALL_MCU))
    (tmp_path / "a" / "model.json").replace(tmp_path / "b" / "model.json")  # new manifest, old ELF
    with pytest.raises(ValueError, match="does not match"):
        pipeline.load_firmware(tmp_path / "b")


def test_elf_replaced_during_a_deployment_is_not_the_one_run(tiny_int8, tmp_path, monkeypatch):
    from tinyml_helpers.deploy import pipeline, toolchain

    a, b = tiny_int8
    other = pipeline.deploy_onnx(b, tmp_path / "other", layout=toolchain.MemoryLayout(**SMALL_MCU))
    out = tmp_path / "fw"
    real_compile = toolchain.compile_firmware

    def compile_then_race(sources, out_elf, **kwargs):
        path = real_compile(sources, out_elf, **kwargs)
        # another process deploys into the same folder right after our link step
        (out / "model.elf").parent.mkdir(parents=True, exist_ok=True)
        (out / "model.elf").write_bytes(other.elf_path.read_bytes())
        return path
    monkeypatch.setattr(toolchain, "compile_firmware", compile_then_race)
    dep = pipeline.deploy_onnx(a, out, layout=toolchain.MemoryLayout(**SMALL_MCU))
    assert dep.firmware.symbols != other.firmware.symbols, "ran the other deployment's firmware"
    X = np.random.default_rng(0).normal(size=(2, 1, 13, 11)).astype(np.float32)
    q1, _ = pipeline.run_firmware(dep, X, progress=False)
    q2, _ = pipeline.run_firmware(dep, X, progress=False, workers=2)
    np.testing.assert_array_equal(q1, q2)


def test_firmware_refuses_non_finite_inputs(tiny_int8, tmp_path):
    from tinyml_helpers.deploy import pipeline, toolchain

    dep = pipeline.deploy_onnx(tiny_int8[0], tmp_path / "fw", layout=toolchain.MemoryLayout(**SMALL_MCU))
    X = np.zeros((2, 1, 13, 11), np.float32)
    X[1, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        pipeline.run_firmware(dep, X, progress=False)


# --------------------------------------------------------------------------- which PhiNet notebook 06 gets

def _run_copy_of_the_shipped_phinet():
    from tinyml_helpers.models.phinet import load_kws_phinet, save_kws_phinet

    model, cfg = load_kws_phinet("shipped")
    cfg = {k: v for k, v in cfg.items() if k not in ("weights_file", "weights_sha256")}
    return save_kws_phinet(model, cfg)  # as notebook 04 does, into artifacts/models/


@pytest.mark.parametrize("damage", ["json missing", "json from an older run"])
def test_half_saved_phinet_falls_back_to_the_shipped_one_and_says_so(damage):
    import torch
    from tinyml_helpers.models.phinet import load_kws_phinet

    pt = _run_copy_of_the_shipped_phinet()
    if damage == "json missing":
        pt.with_suffix(".json").unlink()
    else:  # killed after the new .pt was written, before its .json
        state = torch.load(pt, weights_only=True)
        state = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
        torch.save(state, pt)
    with pytest.warns(UserWarning, match=r"kws_phinet.*shipped.*notebook 04") as caught:
        model, cfg = load_kws_phinet()
    assert "git checkout" not in str(caught[0].message)
    assert cfg["weights_sha256"] == load_kws_phinet("shipped")[1]["weights_sha256"]
    with pytest.raises((FileNotFoundError, ValueError), match="notebook 04") as err:
        load_kws_phinet("artifacts")
    assert "git checkout" not in str(err.value)


def test_notebook_06_uses_the_stand_in_only_when_the_shipped_checkpoint_is_missing(monkeypatch):
    from tinyml_helpers import export
    from tinyml_helpers.deploy import pipeline

    def other_file_missing(*args, **kwargs):
        raise FileNotFoundError("data/keywords/speech_test.flac is missing")
    monkeypatch.setattr(export, "kws_onnx_artifacts", other_file_missing)
    monkeypatch.setattr(pipeline, "_standin_artifacts", lambda: pytest.fail("stand-in trained"))
    with pytest.raises(FileNotFoundError, match="speech_test"):
        pipeline.kws_int8_artifacts()
