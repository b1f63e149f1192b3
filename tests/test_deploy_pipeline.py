"""End to end: a tiny torch CNN -> ONNX -> onnxruntime int8 (QOperator) -> C -> Cortex-M4 ELF
-> unicorn, compared with onnxruntime; plus code generation errors, memory and estimates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from tinyml_helpers.deploy import codegen, emulator, measure, pipeline, toolchain  # noqa: E402


class TinyNet(nn.Module):
    """Every layer kind the firmware supports: conv (strided, padded), depthwise, pointwise,
    ReLU6 (fused), residual add, max-pool, global average pool, flatten, dense."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU6())
        self.pw = nn.Conv2d(8, 8, 1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(12, classes))

    def forward(self, x):
        x = self.stem(x)
        x = x + self.pw(self.dw(x))
        return self.head(self.pool(x))


class MeanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def _export_int8(model: nn.Module, folder, shape=(1, 1, 13, 11), n_cal: int = 16, seed: int = 0):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    torch.manual_seed(seed)
    model.eval()
    fp32, pre, int8 = folder / "fp32.onnx", folder / "pre.onnx", folder / "int8.onnx"
    torch.onnx.export(model, torch.randn(*shape), str(fp32), input_names=["x"], output_names=["y"],
                      dynamo=False, opset_version=13)
    quant_pre_process(str(fp32), str(pre))
    rng = np.random.default_rng(seed)
    cal = [{"x": rng.normal(size=shape).astype(np.float32)} for _ in range(n_cal)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(cal)

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return int8


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    int8 = _export_int8(TinyNet(), folder)
    return int8, pipeline.deploy_onnx(int8, folder / "fw", layout=toolchain.MemoryLayout(
        flash_bytes=64 * 1024, ram_bytes=32 * 1024, stack_bytes=4 * 1024))


def test_firmware_matches_onnxruntime_and_numpy(deployed):
    import onnxruntime as ort

    int8, dep = deployed
    sess = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    X = rng.normal(size=(12, 1, 13, 11)).astype(np.float32)
    ref = np.concatenate([sess.run(None, {"x": X[i:i + 1]})[0] for i in range(len(X))])
    q, logits = pipeline.run_firmware(dep, X, progress=False)
    for i in range(len(X)):  # the NumPy simulation uses the firmware's exact arithmetic
        sim, _ = codegen.simulate(dep.model, dep.model.quantize_input(X[i:i + 1]), requant=dep.generated.requant)
        np.testing.assert_array_equal(q[i], sim)
    report = pipeline.compare_with_reference(logits, ref, dep.model.tensors[dep.model.output].scale)
    assert dep.generated.requant == "float"
    assert report["max_lsb"] == 0, report  # onnxruntime's own rescale on the FPU: bit-exact
    assert report["top1_agreement"] == 1.0
    assert {l.kind for l in dep.model.layers} >= {"conv", "dwconv", "add", "maxpool", "gap", "dense"}


def test_fixed_point_firmware_matches_its_simulation(deployed, tmp_path):
    int8, _ = deployed
    dep = pipeline.deploy_onnx(int8, tmp_path / "fixed", requant="fixed", layout=toolchain.MemoryLayout(
        flash_bytes=64 * 1024, ram_bytes=32 * 1024, stack_bytes=4 * 1024))
    assert "L00_s" in dep.generated.c_path.read_text()
    X = np.random.default_rng(6).normal(size=(4, 1, 13, 11)).astype(np.float32)
    q, _ = pipeline.run_firmware(dep, X, progress=False, workers=2)
    for i in range(len(X)):
        sim, _ = codegen.simulate(dep.model, dep.model.quantize_input(X[i:i + 1]), requant="fixed")
        np.testing.assert_array_equal(q[i], sim)
    with pytest.raises(ValueError, match="requant must be"):
        codegen.generate_c(dep.model, tmp_path / "bad", requant="double")


def test_counts_memory_and_arena(deployed):
    _, dep = deployed
    stats = dep.stats
    assert stats.instructions > dep.model.macs  # at least one instruction per MAC
    assert len(stats.per_layer) == len(dep.model.layers)
    assert sum(stats.per_layer) <= stats.instructions
    assert 0 < stats.peak_stack_bytes < dep.layout.stack_bytes
    # counting is deterministic and does not change the outputs
    x = dep.model.quantize_input(np.ones(dep.model.input_shape_nchw, np.float32))
    y1, s1 = dep.firmware.infer(x, count=True)
    y2 = dep.firmware.infer(x)
    np.testing.assert_array_equal(y1, y2)
    assert s1.instructions == stats.instructions
    # the cycle model: at least a cycle per instruction, split by layer like the instructions
    assert stats.cycles > stats.instructions and len(stats.per_layer_cycles) == len(dep.model.layers)
    assert sum(stats.per_layer_cycles) <= stats.cycles and s1.cycles == stats.cycles
    mem = dep.memory
    assert mem["flash_bytes"] >= sum(l.weight_bytes for l in dep.model.layers)
    assert mem["ram_bytes"] >= dep.arena_bytes + dep.generated.col_bytes
    plan = dep.generated.plan
    plan.validate()
    # the arena never needs more than the two largest buffers live at any step (a chain + skip)
    from tinyml_helpers.cost import live_bytes_per_step
    assert dep.arena_bytes <= max(live_bytes_per_step(plan.lifetimes)) + 4 * len(plan.lifetimes)
    sizes = measure.symbol_sizes(dep.elf_path, "tm_arena")
    assert sizes["tm_arena"] == dep.arena_bytes


def test_generated_source_mentions_every_layer(deployed):
    _, dep = deployed
    text = dep.generated.c_path.read_text()
    for i in range(len(dep.model.layers)):
        assert f"tm_layer_mark({i});" in text
    assert "static const int8_t L00_w" in text
    assert "tm_conv2d" in dep.generated.layer_source(0)


def test_float_island_is_rejected_with_a_fix(tmp_path):
    int8 = _export_int8(MeanNet(), tmp_path, shape=(1, 1, 6, 6), n_cal=4)
    with pytest.raises(codegen.UnsupportedOperatorError, match="ReduceMean.*AdaptiveAvgPool2d"):
        codegen.parse_int8_onnx(int8)


def test_unknown_operator_names_the_node_and_the_phinet_fix(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
             helper.make_tensor("z", TensorProto.INT8, [], [0])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("HardSwish", ["xq"], ["h"], name="block3_hswish"),
             helper.make_node("DequantizeLinear", ["h", "s", "z"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits))
    with pytest.raises(codegen.UnsupportedOperatorError, match="block3_hswish.*compatibility=True"):
        codegen.parse_int8_onnx(model)
    path = tmp_path / "missing.onnx"
    with pytest.raises(FileNotFoundError, match="notebook 05"):
        codegen.parse_int8_onnx(path)
    assert onnx  # imported for the helper


def test_thumb_instruction_count_and_emulator_errors(tmp_path):
    assert emulator.thumb_instruction_count(bytes.fromhex("0120")) == 1           # movs r0, #1
    assert emulator.thumb_instruction_count(bytes.fromhex("2de90f000120")) == 2   # push.w; movs
    with pytest.raises(FileNotFoundError, match="compile_firmware"):
        emulator.Firmware(tmp_path / "nope.elf")


def test_memory_layout_and_toolchain_validation():
    with pytest.raises(ValueError, match="multiple of 1024"):
        toolchain.MemoryLayout(flash_bytes=1000)
    with pytest.raises(ValueError, match="smaller than ram_bytes"):
        toolchain.MemoryLayout(ram_bytes=8192, stack_bytes=8192)
    with pytest.raises(ValueError, match="opt must be"):
        toolchain.compile_firmware([], "/tmp/x.elf", opt="-O9")
    assert "ORIGIN = 0x20000000" in toolchain.linker_script()


def test_memory_report():
    mem = measure.memory_report({".text": 100, ".rodata": 50, ".data": 8, ".bss": 40}, peak_stack_bytes=12)
    assert mem["flash_bytes"] == 158 and mem["ram_bytes"] == 60
    with pytest.raises(ValueError, match="peak_stack_bytes"):
        measure.memory_report({}, -1)


def test_no_flat_cpi_estimate_is_left():
    # Latency and energy come from the timing model (timing.latency_energy); the flat
    # cycles-per-instruction range it replaced must not linger as dead code anyone could call.
    assert not hasattr(pipeline, "estimate_latency_energy") and not hasattr(pipeline, "DEFAULT_CPI")
    root = Path(__file__).resolve().parents[1]
    sources = [*root.joinpath("tinyml_helpers").rglob("*.py"), *root.joinpath("notebooks").glob("*.ipynb")]
    users = [str(p.relative_to(root)) for p in sources
             if any(name in p.read_text() for name in ("estimate_latency_energy", "DEFAULT_CPI"))]
    assert not users, users


def test_compare_with_reference_counts_lsbs():
    ref = np.array([[0.0, 1.0, 0.5], [0.2, 0.1, 0.0]])
    fw = ref + np.array([[0.0, 0.1, 0.0], [0.0, 0.0, 0.2]])
    r = pipeline.compare_with_reference(fw, ref, scale=0.1, labels=np.array([1, 0]))
    assert r["max_lsb"] == 2 and r["top1_agreement"] == 1.0 and r["firmware_accuracy"] == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        pipeline.compare_with_reference(fw[:1], ref, 0.1)


def test_streaming_helpers():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, (6, 16000)).astype(np.float32)
    classes = ["silence", "unknown", "yes", "no"]
    wave, truth = pipeline.make_stream(audio, np.array([2, 3, 2, 3, 0, 1]), classes, n_keywords=3, seed=1)
    assert len(truth) == 3 and all(w in ("yes", "no") for _, _, w in truth)
    assert len(wave) == int(0.6 * 16000) + 3 * (16000 + int(0.6 * 16000))
    windows, times = pipeline.sliding_windows(wave, hop_s=0.5)
    assert windows.shape[1] == 16000 and len(times) == len(windows)
    logits = np.full((len(times), 4), -5.0)
    logits[2, 2] = 5.0
    dets = pipeline.detect_keywords(logits, times, classes)
    assert [d[1] for d in dets] == ["yes"]
    with pytest.raises(ValueError, match="need 5"):
        pipeline.make_stream(audio, np.array([2, 3, 2, 3, 0, 1]), classes, n_keywords=5)


def test_every_entry_point_defaults_to_the_rescale_notebook_06_measured(deployed, tmp_path):
    # deploy_onnx defaulted to float32 while generate_c and simulate defaulted to fixed point:
    # calling the code generator directly built another firmware than the notebook describes.
    import inspect

    _, dep = deployed
    assert codegen.DEFAULT_REQUANT == "float"
    for fn in (codegen.generate_c, codegen.simulate, codegen.layer_c_source, pipeline.deploy_onnx):
        assert inspect.signature(fn).parameters["requant"].default == codegen.DEFAULT_REQUANT, fn.__name__
    gen = codegen.generate_c(dep.model, tmp_path / "gen")
    text = gen.c_path.read_text()
    assert gen.requant == "float" and "L00_f" in text and "L00_s" not in text
    x = dep.model.quantize_input(np.zeros(dep.model.input_shape_nchw, np.float32))
    np.testing.assert_array_equal(codegen.simulate(dep.model, x)[0], codegen.simulate(dep.model, x, requant="float")[0])
