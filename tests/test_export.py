"""ONNX export, operator flagging, parity, int8 quantization and the notebook-06 handoff."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tinyml_helpers import export as ex
from tinyml_helpers.models.phinet import build_phinet

SHAPE = (1, 16, 12)


def tiny_phinet(compatibility: bool = True):
    return build_phinet(SHAPE, 4, alpha=0.25, beta=1.0, t0=2, num_layers=4,
                        compatibility=compatibility, seed=0).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    model = tiny_phinet()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, *SHAPE)).astype(np.float32)
    fp32 = ex.export_onnx(model, folder / "m.onnx")
    int8 = ex.quantize_onnx(fp32, folder / "m_int8.onnx", X[:24])
    return {"model": model, "X": X, "fp32": fp32, "int8": int8, "folder": folder}


def test_export_names_opset_and_dynamic_batch(files):
    info = ex.describe_onnx(files["fp32"])
    assert info["opset"] == ex.DEFAULT_OPSET
    assert info["inputs"] == {"features": ["batch", *SHAPE]}
    assert list(info["outputs"]) == ["logits"]
    assert info["data_files"] == [] and info["total_bytes"] == files["fp32"].stat().st_size
    assert "GlobalAveragePool" in info["operators"] and "BatchNormalization" not in info["operators"]
    # dynamic batch: the same file runs 1 and 5 clips
    assert ex.onnx_logits(files["fp32"], files["X"][:1]).shape == (1, 4)
    assert ex.onnx_logits(files["fp32"], files["X"][:5]).shape == (5, 4)


def test_export_external_data(tmp_path):
    model = tiny_phinet()
    p = ex.export_onnx(model, tmp_path / "ext.onnx", external_data=True)
    info = ex.describe_onnx(p)
    assert info["data_files"] == ["ext.onnx.data"] and info["total_bytes"] > info["file_bytes"]
    x = np.zeros((2, *SHAPE), np.float32)
    np.testing.assert_allclose(ex.onnx_logits(p, x), ex.torch_logits(model, x), atol=1e-4)
    # exporting again over the same files must not grow the data file (onnx appends to it)
    first = info["total_bytes"]
    p = ex.export_onnx(model, tmp_path / "ext.onnx", external_data=True)
    assert ex.describe_onnx(p)["total_bytes"] == first
    np.testing.assert_allclose(ex.onnx_logits(p, x), ex.torch_logits(model, x), atol=1e-4)


def test_export_dynamo_exporter(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(3, 2)).eval()
    p = ex.export_onnx(net, tmp_path / "d.onnx", SHAPE, exporter="dynamo", opset=18)
    info = ex.describe_onnx(p)
    assert info["opset"] == 18 and list(info["inputs"]) == ["features"]
    assert isinstance(info["inputs"]["features"][0], str), "batch axis should be symbolic"
    x = np.random.default_rng(0).normal(size=(3, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(ex.onnx_logits(p, x), ex.torch_logits(net, x), atol=1e-5)


def test_export_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="exporter must be"):
        ex.export_onnx(tiny_phinet(), tmp_path / "a.onnx", exporter="tflite")
    with pytest.raises(ValueError, match="input_shape is needed"):
        ex.export_onnx(torch.nn.Linear(2, 2), tmp_path / "a.onnx")
    with pytest.raises(ValueError, match="without the batch"):
        ex.export_onnx(torch.nn.Linear(2, 2), tmp_path / "a.onnx", (1, 2, 2, 2))
    with pytest.raises(ValueError, match="end in .onnx"):
        ex.export_onnx(tiny_phinet(), tmp_path / "a.pt")
    with pytest.raises(TypeError, match="nn.Module"):
        ex.export_onnx("model", tmp_path / "a.onnx", SHAPE)
    with pytest.raises(FileNotFoundError, match="export the model first"):
        ex.describe_onnx(tmp_path / "missing.onnx")


def test_flags_non_compatible_phinet(tmp_path):
    compat = ex.flag_mcu_unsupported(ex.export_onnx(tiny_phinet(True), tmp_path / "c.onnx"))
    assert compat == []
    path = ex.export_onnx(tiny_phinet(False), tmp_path / "nc.onnx")
    flags = ex.flag_mcu_unsupported(path)
    kinds = {f.op_type for f in flags}
    assert {"HardSigmoid", "Mul"} <= kinds
    assert all("compatibility=True" in f.fix for f in flags)
    with pytest.raises(ValueError, match="(?s)no MCU int8 kernel.*/_layers.*compatibility=True"):
        ex.assert_mcu_compatible(path)
    ex.assert_mcu_compatible(tmp_path / "c.onnx")


def test_parity_report_and_accuracy(files):
    X = files["X"]
    pt = ex.torch_logits(files["model"], X)
    ort = ex.onnx_logits(files["fp32"], X, batch_size=7)
    y = pt.argmax(1)
    rep = ex.parity_report(pt, ort, y)
    assert rep["max_abs_diff"] < 1e-4 and rep["top1_agreement"] == 1.0
    assert rep["accuracy_reference"] == 1.0 and rep["accuracy_drop"] == 0.0
    assert ex.accuracy(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 1])) == 0.5
    with pytest.raises(ValueError, match="same shape"):
        ex.parity_report(pt, ort[:3])
    with pytest.raises(ValueError, match="batch"):
        ex.onnx_logits(files["fp32"], X[0])


def test_micromind_export(tmp_path):
    model = tiny_phinet()
    written = ex.export_with_micromind(model, tmp_path / "mm.onnx")
    assert written[0].exists()
    info = ex.describe_onnx(written[0])
    assert list(info["inputs"]) == ["input"] and info["inputs"]["input"][0] == 1
    np.testing.assert_allclose(ex.onnx_logits(written[0], np.zeros((3, *SHAPE), np.float32)),
                               ex.torch_logits(model, np.zeros((3, *SHAPE), np.float32)), atol=1e-4)


def test_quantized_qoperator_graph(files):
    ops = ex.operator_counts(files["int8"])
    assert {"QLinearConv", "QuantizeLinear", "DequantizeLinear"} <= set(ops)
    assert not {"Conv", "Clip", "Gemm"} & set(ops)
    assert ex.flag_mcu_unsupported(files["int8"]) == []
    rep = ex.parity_report(ex.onnx_logits(files["fp32"], files["X"]),
                           ex.onnx_logits(files["int8"], files["X"]))
    assert rep["top1_agreement"] >= 0.8
    info = ex.layer_qparams(files["int8"], files["fp32"], index=0)
    assert info["weight_int8"].dtype == np.int8 and np.all(info["weight_zero_point"] == 0)
    assert info["weight_fp32"] is not None
    scale = np.asarray(info["weight_scale"]).reshape(-1, *[1] * (info["weight_int8"].ndim - 1))
    assert np.abs(info["weight_int8"] * scale - info["weight_fp32"]).max() <= scale.max() / 2 + 1e-6


@pytest.mark.parametrize("fmt,per_channel", [("qdq", False), ("qoperator", False)])
def test_quantize_formats(files, fmt, per_channel, tmp_path):
    out = ex.quantize_onnx(files["fp32"], tmp_path / "q.onnx", files["X"][:8], fmt=fmt,
                           per_channel=per_channel, activation_type="uint8")
    ops = ex.operator_counts(out)
    assert ("Conv" in ops) == (fmt == "qdq")
    assert ex.onnx_logits(out, files["X"][:4]).shape == (4, 4)


def test_quantize_bad_inputs(files, tmp_path):
    with pytest.raises(ValueError, match="fmt must be one of"):
        ex.quantize_onnx(files["fp32"], tmp_path / "q.onnx", files["X"], fmt="int4")
    with pytest.raises(ValueError, match="real training clips"):
        ex.quantize_onnx(files["fp32"], tmp_path / "q.onnx", files["X"][:0])
    with pytest.raises(FileNotFoundError, match="export the float model first"):
        ex.quantize_onnx(tmp_path / "none.onnx", tmp_path / "q.onnx", files["X"])
    with pytest.raises(ValueError, match="no QGemm|QOperator"):
        ex.layer_qparams(files["fp32"])


def test_calibration_reader_and_subset():
    X = np.arange(10 * 4, dtype=np.float32).reshape(10, 1, 2, 2)
    y = np.array([0] * 8 + [1] * 2)
    sub = ex.calibration_subset(X, y, 4, seed=1)
    labels = {int(v // 4) for v in sub[:, 0, 0, 0]}
    assert len(sub) == 4 and any(i >= 8 for i in labels)  # the rare class is represented
    assert np.array_equal(sub, ex.calibration_subset(X, y, 4, seed=1))
    reader = ex.FeatureCalibrationReader(X, batch_size=4)
    shapes = []
    while (b := reader.get_next()) is not None:
        shapes.append(b["features"].shape[0])
    assert shapes == [4, 4, 2] and len(reader) == 3
    reader.rewind()
    assert reader.get_next() is not None
    with pytest.raises(ValueError, match="labels"):
        ex.calibration_subset(X, y[:3], 2)
    with pytest.raises(ValueError, match="at least one clip"):
        ex.FeatureCalibrationReader(X[:0])


def test_quantize_dequantize_arithmetic():
    q = ex.quantize_tensor(np.array([-1.0, 0.0, 0.26, 5.0]), 0.5, 3)
    assert q.dtype == np.int8 and q.tolist() == [1, 3, 4, 13]
    assert ex.quantize_tensor(np.array([1000.0]), 0.1, 0).tolist() == [127]
    assert ex.quantize_tensor(np.array([-5.0]), 0.1, 0, dtype="uint8").tolist() == [0]
    t = ex.quantize_tensor(torch.tensor([0.25]), 0.5, 0)
    assert isinstance(t, torch.Tensor) and t.tolist() == [0]  # round half to even
    x = ex.dequantize_tensor(q, 0.5, 3)
    assert x.dtype == np.float32 and x.tolist() == [-1.0, 0.0, 0.5, 5.0]
    with pytest.raises(ValueError, match="scale must be a positive"):
        ex.quantize_tensor(np.zeros(2), 0.0, 0)
    with pytest.raises(ValueError, match="outside the int8 range"):
        ex.quantize_tensor(np.zeros(2), 1.0, 200)


def test_affine_qparams():
    scale, zp = ex.affine_qparams(-2.0, 6.0, "int8")
    assert scale == pytest.approx(8 / 255) and zp == round(-128 + 2 / scale)
    assert ex.affine_qparams(0.5, 2.0, "uint8") == (pytest.approx(2 / 255), 0)  # widened to 0
    assert ex.affine_qparams(-0.5, 0.25, symmetric=True) == (pytest.approx(0.5 / 127), 0)
    with pytest.raises(ValueError, match="swap"):
        ex.affine_qparams(1.0, -1.0)
    with pytest.raises(ValueError, match="symmetric"):
        ex.affine_qparams(-1.0, 1.0, "uint8", symmetric=True)


def test_expected_weight_bytes():
    assert ex.expected_weight_bytes(1000, 10) == 1040
    assert ex.expected_weight_bytes(1001, 0, bits=4) == 501
    with pytest.raises(ValueError, match="non-negative"):
        ex.expected_weight_bytes(-1)
    with pytest.raises(ValueError, match="bits must be one of"):
        ex.expected_weight_bytes(10, bits=3)


def test_size_breakdown_and_compact(files, tmp_path):
    raw = ex.size_breakdown(files["int8"])
    assert raw["total"] == files["int8"].stat().st_size and raw["int8 tensors"] > 0
    assert sum(v for k, v in raw.items() if k != "total") == raw["total"]
    small = ex.compact_onnx(files["int8"], tmp_path / "small.onnx")
    assert small.stat().st_size < files["int8"].stat().st_size
    assert ex.describe_onnx(small)["inputs"] == ex.describe_onnx(files["int8"])["inputs"]
    np.testing.assert_array_equal(ex.onnx_logits(small, files["X"]), ex.onnx_logits(files["int8"], files["X"]))


def test_benchmark_latency():
    calls = []
    r = ex.benchmark_latency({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                             runs=4, warmup=2, threads=1)
    assert calls.count("a") == 6 and r["a"]["runs"] == 4 and r["b"]["median"] >= 0
    assert calls[:4] == ["a", "b", "b", "a"]  # rotating order
    with pytest.raises(ValueError, match="at least one"):
        ex.benchmark_latency({})
    with pytest.raises(ValueError, match="threads"):
        ex.make_session("x.onnx", threads=0)


def test_build_handoff_artifacts(files, tmp_path):
    X = files["X"]
    y = np.arange(len(X)) % 4
    paths = ex.build_kws_onnx_artifacts(files["model"], X[:16], X[:20], y[:20], tmp_path,
                                        classes=["a", "b", "c", "d"], source={"weights_sha256": "x"})
    assert set(paths) == set(ex.ARTIFACT_NAMES)
    assert all(p.exists() and p.name == ex.ARTIFACT_NAMES[k] for k, p in paths.items())
    test = np.load(paths["test_inputs"])
    assert test["features"].shape == (20, *SHAPE) and test["labels"].dtype == np.int64
    ref = np.load(paths["int8_reference"])
    np.testing.assert_allclose(ref["logits"], ex.onnx_logits(paths["int8"], test["features"]))
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["quantization"]["format"] == "qoperator"
    assert manifest["files"]["int8"]["sha256"] and manifest["source"] == {"weights_sha256": "x"}
    assert ex._artifacts_fresh(paths, {"weights_sha256": "x"})
    assert not ex._artifacts_fresh(paths, {"weights_sha256": "y"})
    with pytest.raises(ValueError, match="labels"):
        ex.build_kws_onnx_artifacts(files["model"], X[:4], X[:5], y[:4], tmp_path)


def test_kws_onnx_artifacts_builds_reuses_and_rebuilds(monkeypatch):
    import tinyml_helpers.data as data
    import tinyml_helpers.models.phinet as phinet

    model = tiny_phinet()
    cfg = {"weights_sha256": "abc", "feature_kind": "logmel", "classes": list("abcd")}
    rng = np.random.default_rng(1)
    fake = {s: (rng.normal(size=(n, *SHAPE)).astype(np.float32), np.arange(n) % 4)
            for s, n in (("train", 40), ("test", 12))}
    calls = []

    def fake_features(split, kind="logmel"):
        calls.append(split)
        return fake[split]

    monkeypatch.setattr(phinet, "load_kws_phinet", lambda source="auto": (model, dict(cfg)))
    monkeypatch.setattr(data, "keyword_features", fake_features)
    paths = ex.kws_onnx_artifacts(calibration_clips=8, model_source="shipped")
    assert paths["int8"].exists() and calls == ["train", "test"]
    stamp = paths["int8"].stat().st_mtime_ns
    assert ex.kws_onnx_artifacts(calibration_clips=8) == paths and len(calls) == 2  # reused
    cfg["weights_sha256"] = "new weights"  # notebook 04 retrained: stale, rebuild
    ex.kws_onnx_artifacts(calibration_clips=8)
    assert len(calls) == 4
    ex.kws_onnx_artifacts(rebuild=True, calibration_clips=8)
    assert len(calls) == 6 and paths["int8"].stat().st_mtime_ns >= stamp
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["quantization"]["calibration_clips"] == 8 and manifest["test_clips"] == 12


def test_kws_onnx_artifacts_deploys_the_shipped_model_unless_told_and_keeps_the_choice(monkeypatch):
    # The workshop's notebook 04 trains its PhiNet on a subset for a few epochs; 05 and 06 must not
    # silently deploy that copy instead of the pretrained one, and 06 must keep what 05 chose.
    import tinyml_helpers.data as data
    import tinyml_helpers.models.phinet as phinet

    models = {name: (tiny_phinet(), {"weights_sha256": name, "feature_kind": "logmel", "classes": list("abcd")})
              for name in ("shipped", "artifacts")}
    asked = []

    def fake_load(source="auto"):
        asked.append(source)
        return models["artifacts" if source == "auto" else source]

    rng = np.random.default_rng(2)
    fake = {s: (rng.normal(size=(n, *SHAPE)).astype(np.float32), np.arange(n) % 4) for s, n in (("train", 40), ("test", 12))}
    monkeypatch.setattr(phinet, "load_kws_phinet", fake_load)
    monkeypatch.setattr(data, "keyword_features", lambda split, kind="logmel": fake[split])
    paths = ex.kws_onnx_artifacts(calibration_clips=8)
    assert asked == ["shipped"]
    ex.kws_onnx_artifacts(calibration_clips=8, model_source="artifacts")
    ex.kws_onnx_artifacts(calibration_clips=8)  # what notebook 06 calls: keeps 05's choice
    assert asked == ["shipped", "artifacts", "artifacts"]
    assert json.loads(paths["manifest"].read_text())["source"]["model_source"] == "artifacts"
    with pytest.raises(ValueError, match="model_source must be one of"):
        ex.kws_onnx_artifacts(model_source="mine")
