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
import re
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
    float_accuracy = ex.accuracy(ex.onnx_logits(kws_float["fp32"], kws_float["X_test"]), kws_float["y_test"])
    assert ex.accuracy(ex.onnx_logits(good, kws_float["X_test"]), kws_float["y_test"]) > float_accuracy - 0.05


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


# --------------------------------------------------------------------------- stale temporaries

def test_stale_temporaries_of_killed_writes_are_cleaned_on_the_next_run(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("TINYML_ARTIFACTS", str(tmp_path))
    root = config.artifacts_dir()
    target = root / "cache" / "downloads" / "speech.tar.gz"
    target.parent.mkdir(parents=True)
    # kill -9 skips atomic_path's clean-up: recreate such leftovers by hand, old and fresh
    old = target.with_name(".speech.tar.gz.ab12cd34.tmp")
    old.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    old_dir = root / "onnx" / ".kws_fp32.onnx.zz99yy88.tmp"
    old_dir.mkdir(parents=True)
    os.utime(old_dir, (time.time() - 7200, time.time() - 7200))
    fresh = target.with_name(".speech.tar.gz.qq11ww22.tmp")  # a write in progress elsewhere
    fresh.write_bytes(b"y")
    mine = target.with_name(".my_notes.txt")  # not our naming: never touched
    mine.write_text("keep")
    os.utime(mine, (0, 0))
    config.start_lesson("99_sweep")
    assert not old.exists() and not old_dir.exists()
    assert fresh.exists() and mine.exists()


# --------------------------------------------------------------------------- the bad-input table

CLEAR, CONVERTED, REFUSED = "clear error", "converted", "refused"


def _bad_onnx(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.onnx"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not an ONNX model\n" * 20)
    else:  # truncated: the first half of a real export
        import torch
        from tinyml_helpers.export import export_onnx

        good = export_onnx(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()),
                           tmp / "good.onnx", (1, 5, 5))
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


def _onnx_helpers():
    from tinyml_helpers import export as ex
    from tinyml_helpers.cost.memory import lifetimes_from_onnx
    from tinyml_helpers.deploy import pipeline
    from tinyml_helpers.deploy.codegen import parse_int8_onnx

    X = np.zeros((2, 1, 5, 5), np.float32)
    return {
        "describe_onnx": ex.describe_onnx,
        "operator_counts": ex.operator_counts,
        "flag_mcu_unsupported": ex.flag_mcu_unsupported,
        "assert_mcu_compatible": ex.assert_mcu_compatible,
        "quantize_onnx": lambda p: ex.quantize_onnx(p, p.with_name("q.onnx"), X),
        "onnx_logits": lambda p: ex.onnx_logits(p, X),
        "size_breakdown": ex.size_breakdown,
        "layer_qparams": ex.layer_qparams,
        "compact_onnx": lambda p: ex.compact_onnx(p, p.with_name("c.onnx")),
        "lifetimes_from_onnx": lifetimes_from_onnx,
        "deploy_onnx": lambda p: pipeline.deploy_onnx(p, p.parent / "fw"),
        "parse_int8_onnx": parse_int8_onnx,
    }


ONNX_CASES = [(f"{helper}: {kind} .onnx", CLEAR, helper, kind)
              for helper in ("describe_onnx", "operator_counts", "flag_mcu_unsupported",
                             "assert_mcu_compatible", "quantize_onnx", "onnx_logits", "size_breakdown",
                             "layer_qparams", "compact_onnx", "lifetimes_from_onnx", "deploy_onnx",
                             "parse_int8_onnx")
              for kind in ("empty", "text", "truncated")]


@pytest.mark.parametrize("case,category,helper,kind", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_bad_onnx_files_get_one_message_naming_the_file(case, category, helper, kind, tmp_path):
    path = _bad_onnx(tmp_path, kind)
    with pytest.raises(ValueError) as err:
        _onnx_helpers()[helper](path)
    assert str(path) in str(err.value) and "Re-export" in str(err.value), str(err.value)


def _corrupt(relpath: str, monkeypatch, tmp_path, how: str = "garbage") -> Path:
    """A private copy of data/ with one file damaged; TINYML_DATA points at it."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(config.REPO_ROOT / "data", data, ignore=shutil.ignore_patterns("*.flac", "*.npz"))
    for flac in (config.REPO_ROOT / "data").rglob("*.flac"):  # large: link, do not copy
        (data / flac.relative_to(config.REPO_ROOT / "data")).symlink_to(flac)
    target = data / relpath
    if how == "delete":
        target.unlink()
    elif how == "edit dropout":
        doc = json.loads(target.read_text())
        doc["model"]["dropout"] = 0.9
        target.write_text(json.dumps(doc))
    else:
        target.write_text('{"files": {"a": ')
    monkeypatch.setenv("TINYML_DATA", str(data))
    return target


def _case_corrupt_results(tmp, mp):
    results.results_path("99_bad").write_text("{not json")
    results.load_results("99_bad")


def _case_corrupt_teacher_json(tmp, mp):
    from tinyml_helpers.models.kws_cnn import load_kws_teacher

    _corrupt("checkpoints/kws_teacher.json", mp, tmp)
    load_kws_teacher()


def _case_edited_teacher_json(tmp, mp):
    from tinyml_helpers.models.kws_cnn import load_kws_teacher

    _corrupt("checkpoints/kws_teacher.json", mp, tmp, how="edit dropout")
    load_kws_teacher()


def _case_corrupt_manifest(tmp, mp):
    from tinyml_helpers.data.manifest import verify_file

    _corrupt("manifest.json", mp, tmp)
    verify_file("keywords/clips.csv")


def _case_deleted_manifest(tmp, mp):
    from tinyml_helpers.data.manifest import verify_file

    _corrupt("manifest.json", mp, tmp, how="delete")
    verify_file("keywords/clips.csv")


def _case_read_only_checkout(tmp, mp):
    ro = tmp / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    mp.delenv("TINYML_ARTIFACTS", raising=False)
    mp.setattr(config, "REPO_ROOT", ro)
    if os.access(ro, os.W_OK):  # root ignores permissions: make mkdir fail as on EROFS
        import errno

        def erofs(*a, **k):
            raise OSError(errno.EROFS, "Read-only file system")
        mp.setattr(Path, "mkdir", erofs)
    config.start_lesson("99_ro")


def _case_get_teacher_typo(tmp, mp):
    from tinyml_helpers.models.kws_cnn import get_teacher

    get_teacher("speechcommands")


def _case_get_teacher_typo_script(tmp, mp):
    from tinyml_helpers.scripts.train_teacher import get_teacher

    get_teacher("speechcommands")


def _case_features_batch(size):
    def case(tmp, mp):
        from tinyml_helpers.data.features import compute_features

        return compute_features(np.zeros((3, 16000), np.float32), "mfcc", batch_size=size)
    return case


def _case_features_int16(tmp, mp):
    from tinyml_helpers.data.features import compute_features

    rng = np.random.default_rng(0)
    pcm = (rng.normal(0, 0.1, (2, 16000)) * 32767).clip(-32768, 32767).astype(np.int16)
    got = compute_features(pcm, "logmel")
    want = compute_features(pcm.astype(np.float32) / 32768, "logmel")
    np.testing.assert_allclose(got, want, atol=1e-5)


def _case_features_nan(tmp, mp):
    from tinyml_helpers.data.features import compute_features

    audio = np.zeros((1, 16000), np.float32)
    audio[0, 7] = np.nan
    compute_features(audio, "logmel")


def _case_parity_nan(tmp, mp):
    from tinyml_helpers.export import parity_report

    nan = np.full((3, 4), np.nan)
    parity_report(nan, nan)


def _case_compare_scale(scale):
    def case(tmp, mp):
        from tinyml_helpers.deploy.pipeline import compare_with_reference

        compare_with_reference(np.ones((2, 3)), np.ones((2, 3)), scale=scale)
    return case


def _case_compare_nan(tmp, mp):
    from tinyml_helpers.deploy.pipeline import compare_with_reference

    compare_with_reference(np.full((2, 3), np.nan), np.ones((2, 3)), scale=0.1)


def _case_make_loader_np_int(tmp, mp):
    from tinyml_helpers.training import make_loader

    dl = make_loader(np.zeros((10, 3), np.float32), np.arange(10), batch_size=np.int64(4))
    assert [len(b[0]) for b in dl] == [4, 4, 2]


def _case_keyword_loaders_np_int(tmp, mp):
    from tinyml_helpers.data import keyword_loaders

    x, _ = next(iter(keyword_loaders(batch_size=np.int64(16), smoke=True)["val"]))
    assert len(x) == 16


def _case_lr_np_float(tmp, mp):
    import torch
    from tinyml_helpers.training import make_loader, train_classifier

    dl = make_loader(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), batch_size=np.int64(2))
    r = train_classifier(torch.nn.Linear(3, 2), {"train": dl, "val": dl}, epochs=np.int64(1),
                         lr=np.float32(1e-2), progress=False, save_checkpoint=False)
    assert r.history


def _case_edge(fn, *args, expect=None):
    def case(tmp, mp):
        from tinyml_helpers import edge

        got = getattr(edge, fn)(*args)
        assert got == pytest.approx(expect), got
    return case


def _case_edge_nan(tmp, mp):
    from tinyml_helpers import edge

    edge.airtime_s(float("nan"), "BLE")


BAD_INPUTS = [
    # (case, category, call(tmp_path, monkeypatch), error message regex or None)
    ("corrupt results JSON", CLEAR, _case_corrupt_results, r"99_bad\.json.*damaged"),
    ("corrupt kws_teacher.json", CLEAR, _case_corrupt_teacher_json, r"kws_teacher\.json.*(corrupt|damaged)"),
    ("edited kws_teacher.json (dropout)", CLEAR, _case_edited_teacher_json, r"kws_teacher\.json.*corrupted"),
    ("corrupt data/manifest.json", CLEAR, _case_corrupt_manifest, r"manifest\.json.*damaged.*git checkout"),
    ("deleted data/manifest.json", CLEAR, _case_deleted_manifest, r"manifest\.json is missing.*[Rr]estore"),
    ("read-only checkout, no TINYML_ARTIFACTS", CLEAR, _case_read_only_checkout, r"TINYML_ARTIFACTS"),
    ("get_teacher('speechcommands')", CLEAR, _case_get_teacher_typo, r"unknown dataset 'speechcommands'"),
    ("scripts get_teacher('speechcommands')", CLEAR, _case_get_teacher_typo_script,
     r"unknown dataset 'speechcommands'"),
    ("compute_features batch_size=-1", CLEAR, _case_features_batch(-1), r"batch_size must be a positive"),
    ("compute_features batch_size=0", CLEAR, _case_features_batch(0), r"batch_size must be a positive"),
    ("compute_features batch_size=np.int64(2)", CONVERTED, _case_features_batch(np.int64(2)), None),
    ("compute_features int16 PCM", CONVERTED, _case_features_int16, None),
    ("compute_features NaN sample", REFUSED, _case_features_nan, r"NaN/inf"),
    ("parity_report NaN logits", REFUSED, _case_parity_nan, r"non-finite"),
    ("compare_with_reference scale=0", REFUSED, _case_compare_scale(0.0), r"scale must be"),
    ("compare_with_reference scale=nan", REFUSED, _case_compare_scale(float("nan")), r"scale must be"),
    ("compare_with_reference NaN logits", REFUSED, _case_compare_nan, r"non-finite"),
    ("make_loader batch_size=np.int64", CONVERTED, _case_make_loader_np_int, None),
    ("keyword_loaders batch_size=np.int64", CONVERTED, _case_keyword_loaders_np_int, None),
    ("train_classifier lr=np.float32, epochs=np.int64", CONVERTED, _case_lr_np_float, None),
    ("edge.raw_data_rate(np.float32, np.int64, channels=np.int64)", CONVERTED,
     _case_edge("raw_data_rate", np.float32(16000), np.int64(2), np.int64(2), expect=64000.0), None),
    ("edge.video_data_rate(np.int64 sizes)", CONVERTED,
     _case_edge("video_data_rate", np.int64(96), np.int64(96), np.float32(10), np.int64(1), expect=92160.0), None),
    ("edge.airtime_s(np.int64 bytes)", CONVERTED,
     _case_edge("airtime_s", np.int64(125), "BLE", expect=1e-3), None),
    ("edge.airtime_s(nan bytes)", REFUSED, _case_edge_nan, r"finite"),
]


@pytest.mark.parametrize("case,category,call,match", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs(case, category, call, match, tmp_path, monkeypatch):
    if category == CONVERTED:
        call(tmp_path, monkeypatch)
        return
    with pytest.raises(Exception) as err:
        call(tmp_path, monkeypatch)
    # A clear error is an ordinary exception saying what was wrong, never argparse's
    # SystemExit, a bare protobuf DecodeError or an AssertionError.
    assert isinstance(err.value, (ValueError, OSError, TypeError, KeyError)), repr(err.value)
    assert re.search(match, str(err.value), re.S), str(err.value)


def test_bad_input_counts():
    """The table's size per category, for the next probe to compare with."""
    counts = {c: sum(1 for row in BAD_INPUTS if row[1] == c) for c in (CLEAR, CONVERTED, REFUSED)}
    counts[CLEAR] += len(ONNX_CASES)
    assert counts == {CLEAR: 10 + len(ONNX_CASES), CONVERTED: 8, REFUSED: 6}, counts


def test_manifest_updates_from_parallel_scripts_keep_every_entry(tmp_path, monkeypatch):
    # Teacher, PhiNet and leave-one-out scripts run side by side; an unlocked read-modify-write of
    # data/manifest.json could drop the entry another process had just added.
    import json
    import threading

    from tinyml_helpers.data import manifest as mf

    monkeypatch.setenv("TINYML_DATA", str(tmp_path))
    (tmp_path / "manifest.json").write_text(json.dumps({"files": {}}))
    names = [f"file{i}.bin" for i in range(8)]
    for name in names:
        (tmp_path / name).write_bytes(name.encode())
    real_load = mf.load_manifest

    def slow_load(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        threading.Event().wait(0.02)  # widen the window between read and write
        return loaded

    monkeypatch.setattr(mf, "load_manifest", slow_load)
    threads = [threading.Thread(target=mf.update_manifest, args=({name: None}, "test", "MIT")) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(json.loads((tmp_path / "manifest.json").read_text())["files"]) == names
