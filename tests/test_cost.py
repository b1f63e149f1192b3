"""Unit tests of tinyml_helpers.cost: counts, lifetimes, peak RAM, arena plans, MCU catalog, fits."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tinyml_helpers import cost
from tinyml_helpers.cost import TensorLifetime


# ---------------------------------------------------------------- counts

def test_counts_on_a_small_net():
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.Linear(8 * 26 * 26, 10))
    assert cost.count_params(net) == 72 + 8 + 54080 + 10
    # conv: 72 weights x 26*26 positions; linear: 54080 weights x 1 row
    assert cost.count_macs(net, (1, 28, 28)) == 72 * 676 + 54080
    assert cost.flash_bytes(net, "int8") == 72 + 8 * 4 + 54080 + 10 * 4
    assert cost.flash_bytes(net, "fp32") == 4 * cost.count_params(net)
    assert cost.flash_bytes(net, "fp16") == 2 * cost.count_params(net)


def test_depthwise_and_batchnorm_rules():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    assert cost.count_macs(net, (4, 5, 5)) == 4 * 9 * 25  # depthwise: 9 MACs per output element
    # BN folds into the conv: 36 int8 weights + 4 int32 biases
    assert cost.flash_bytes(net, "int8") == 36 + 16
    assert cost.count_params(net) == 36 + 8


def test_count_macs_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match="without the batch dimension|WITHOUT the batch"):
        cost.count_macs(nn.Conv2d(1, 4, 3), (1, 1, 28, 28, 3))
    with pytest.raises(ValueError, match="positive"):
        cost.count_macs(nn.Conv2d(1, 4, 3), (1, -28, 28))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cost.count_params("not a model")


def test_unknown_dtype_is_explained():
    with pytest.raises(ValueError, match="unknown dtype 'int4'.*int8"):
        cost.flash_bytes(nn.Linear(2, 2), "int4")
    assert cost.dtype_bytes("float32") == 4


# ---------------------------------------------------------------- lifetimes on hand-made graphs

def test_chain_peak_is_the_largest_neighbouring_pair():
    # x(100) -> a(300) -> b(200) -> y(10): each step holds its input and output only
    lts = [TensorLifetime("x", 100, 0, 0), TensorLifetime("a", 300, 0, 1),
           TensorLifetime("b", 200, 1, 2), TensorLifetime("y", 10, 2, 2)]
    assert cost.live_bytes_per_step(lts) == [400, 500, 210]
    assert cost.peak_live_bytes(lts) == (500, 1, ("a", "b"))


def test_residual_skip_stays_live():
    # x -> a -> b ; add(a, b) -> y : a is still needed at step 2, so steps 1 and 2 hold a, b
    lts = [TensorLifetime("x", 50, 0, 0), TensorLifetime("a", 100, 0, 2),
           TensorLifetime("b", 100, 1, 2), TensorLifetime("y", 100, 2, 2)]
    peak, step, names = cost.peak_live_bytes(lts)
    assert (peak, step, set(names)) == (300, 2, {"a", "b", "y"})


def test_lifetime_validation():
    with pytest.raises(ValueError, match="non-negative"):
        TensorLifetime("x", -1, 0, 0)
    with pytest.raises(ValueError, match="first <= last"):
        TensorLifetime("x", 1, 3, 2)
    with pytest.raises(ValueError, match="unique"):
        cost.peak_live_bytes([TensorLifetime("x", 1, 0, 0), TensorLifetime("x", 1, 0, 0)])
    with pytest.raises(TypeError, match="TensorLifetime"):
        cost.peak_live_bytes([("x", 1, 0, 0)])


def test_torch_chain_and_residual_graphs():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 4, 3, padding=1)
            self.b = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            a = self.a(x)
            return a + self.b(a)

    # 8x8 maps; int8: x=64, a=256, b=256, sum=256 -> add step holds a, b, sum
    assert cost.peak_activation_bytes(Residual(), (1, 8, 8)) == 3 * 256
    assert cost.peak_activation_bytes(Residual(), (1, 8, 8), dtype="fp32") == 4 * 3 * 256
    chain = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1), nn.Flatten())
    lts = cost.lifetimes_from_torch(chain, (1, 8, 8))
    # ReLU works in place and Flatten aliases: 3 buffers (input, conv1, conv2)
    assert sorted(t.size_bytes for t in lts) == [64, 128, 256]
    assert cost.peak_live_bytes(lts)[0] == 256 + 128
    no_inplace = cost.lifetimes_from_torch(chain, (1, 8, 8), inplace_activations=False)
    assert cost.peak_live_bytes(no_inplace)[0] == 256 + 256  # relu output beside its input


def test_inplace_is_refused_when_the_input_is_read_later():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)
            self.relu = nn.ReLU()

        def forward(self, x):
            a = self.conv(x)
            return a + self.relu(a)  # relu(a) cannot overwrite a: the add reads a afterwards

    assert cost.peak_activation_bytes(Skip(), (1, 4, 4)) == 3 * 16


def test_tuple_outputs_share_one_buffer():
    class Halves(nn.Module):
        def forward(self, x):
            a, b = torch.chunk(x * 2, 2, dim=1)   # mul: 32 B; chunk: one 32 B buffer; a, b alias it
            return a + b                          # add: 16 B

    lts = cost.lifetimes_from_torch(Halves(), (32,))
    assert sorted(t.size_bytes for t in lts) == [16, 32, 32, 32]
    assert cost.live_bytes_per_step(lts)[1] == 64           # chunk reads mul and writes its buffer
    assert cost.live_bytes_per_step(lts)[-1] == 32 + 16   # the add reads the chunk buffer (aliases)


def test_untraceable_model_falls_back_to_onnx():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 5)

        def forward(self, x):
            if bool(x.sum() > 1e9):  # data-dependent control flow: torch.fx cannot trace it
                return x
            return self.fc(x)

    with pytest.warns(RuntimeWarning, match="falling back"):
        assert cost.peak_activation_bytes(Branchy(), (10,)) == 15


def test_wrong_shape_for_lifetimes_is_explained():
    with pytest.raises(ValueError, match="cannot run on an input of shape"):
        cost.lifetimes_from_torch(nn.Linear(10, 2), (7,))


# ---------------------------------------------------------------- ONNX front end

def _onnx_model(nodes, inputs, outputs, value_info=(), initializers=()):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers),
                              value_info=list(value_info))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_residual_graph_and_aliases():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    vi = lambda n, s: helper.make_tensor_value_info(n, f, s)
    shape = numpy_helper.from_array(np.array([1, 16], dtype=np.int64), "shape")
    nodes = [helper.make_node("Relu", ["x"], ["a"]),          # x is a graph input: no in-place
             helper.make_node("Sigmoid", ["a"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["c"]),
             helper.make_node("Reshape", ["c", "shape"], ["y"])]
    model = _onnx_model(nodes, [vi("x", [1, 4, 2, 2])], [vi("y", [1, 16])], initializers=[shape])
    lts = {t.name: t for t in cost.lifetimes_from_onnx(model)}
    assert set(lts) == {"x", "a", "b", "c"}            # y aliases c; shape is a constant
    assert lts["c"].aliases == ("c", "y") and lts["c"].last == 3  # graph output: live to the end
    assert lts["a"].last == 2                          # the skip tensor lives until the add
    assert cost.peak_live_bytes(lts.values())[0] == 3 * 64
    assert cost.peak_live_bytes(cost.lifetimes_from_onnx(model, bytes_per_element=1))[0] == 3 * 16


def test_onnx_qdq_graph_is_costed_at_int8():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    scale = numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, dtype=np.int8), "z")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             helper.make_node("Sigmoid", ["xf"], ["yf"]),
             helper.make_node("QuantizeLinear", ["yf", "s", "z"], ["yq"])]
    model = _onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 100])],
                        [helper.make_tensor_value_info("yq", TensorProto.INT8, [1, 100])],
                        initializers=[scale, zp])
    lts = cost.lifetimes_from_onnx(model)
    assert sorted(t.size_bytes for t in lts) == [100, 100]  # x and y, both as int8 buffers
    assert cost.peak_live_bytes(lts)[0] == 200


def test_onnx_export_agrees_with_fx(tmp_path):
    from tinyml_helpers.models.dscnn import DSCNN

    model = DSCNN().eval()
    path = tmp_path / "dscnn.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 49, 10),), str(path), dynamo=False)
    from_onnx = cost.peak_live_bytes(cost.lifetimes_from_onnx(path, bytes_per_element=1))[0]
    assert from_onnx == cost.peak_activation_bytes(model, (1, 49, 10)) == 2 * 64 * 25 * 5


def test_onnx_bad_inputs():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cost.lifetimes_from_onnx("/nonexistent/model.onnx")
    with pytest.raises(TypeError, match="ONNX file path"):
        cost.lifetimes_from_onnx(42)


# ---------------------------------------------------------------- arena planner

def test_arena_reuses_memory_of_dead_tensors():
    lts = [TensorLifetime("x", 100, 0, 0), TensorLifetime("a", 300, 0, 1),
           TensorLifetime("b", 200, 1, 2), TensorLifetime("y", 10, 2, 2)]
    plan = cost.plan_arena(lts)
    assert plan.validate()
    assert plan.total_bytes == 500 == plan.peak_bytes
    assert plan.offsets["a"] == 0 and plan.offsets["y"] == 0  # y reuses a's bytes


def test_arena_alignment_and_aliases():
    lts = [TensorLifetime("x", 3, 0, 1, aliases=("x", "x_flat")), TensorLifetime("y", 5, 1, 1)]
    plan = cost.plan_arena(lts, alignment=8)
    assert plan.validate() and plan.total_bytes == 16
    assert plan.offset_of("x_flat") == plan.offsets["x"]
    with pytest.raises(KeyError, match="no tensor named"):
        plan.offset_of("nope")
    with pytest.raises(ValueError, match="alignment"):
        cost.plan_arena(lts, alignment=0)


def test_validate_catches_an_overlap():
    plan = cost.plan_arena([TensorLifetime("a", 8, 0, 1), TensorLifetime("b", 8, 1, 2)])
    plan.offsets["b"] = plan.offsets["a"]
    with pytest.raises(AssertionError, match="overlap in memory"):
        plan.validate()


def test_arena_on_a_real_model_is_valid():
    from tinyml_helpers.models.dscnn import DSCNN

    plan = cost.plan_arena(cost.lifetimes_from_torch(DSCNN(), (1, 49, 10)))
    assert plan.validate() and plan.total_bytes >= plan.peak_bytes
    assert "arena" in plan.table()


# ---------------------------------------------------------------- MCUs and fits

def test_catalog_figures():
    assert {"seed example", "STM32F746", "STM32H743", "STM32L4R5", "nRF52840", "RP2040", "ESP32-S3"} <= set(
        cost.MCU_CATALOG)
    seed = cost.get_mcu("Seed Example")
    assert (seed.flash_bytes, seed.sram_bytes, cost.mac_budget(seed)) == (2**20, 392 * 1024, 63_000_000)
    f7 = cost.get_mcu("stm32f746")
    assert (f7.flash_bytes, f7.sram_bytes, f7.clock_hz, f7.core) == (2**20, 320 * 1024, 216e6, "Cortex-M7")
    assert cost.get_mcu("esp32s3").name == "ESP32-S3"
    for mcu in cost.MCU_CATALOG.values():
        assert mcu.source, f"{mcu.name} has no source"
    assert cost.mac_budget("STM32F746", target_latency_s=1.0, macs_per_cycle=1.0) == 216_000_000
    assert cost.get_mcu("nRF52840").energy_per_cycle_j() == pytest.approx(52e-12 * 3.0)


def test_unknown_mcu_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown MCU 'atmega328'.*STM32F746"):
        cost.get_mcu("atmega328")
    with pytest.raises(ValueError, match="no clock"):
        cost.mac_budget("seed example", target_latency_s=1.0)
    with pytest.raises(ValueError, match="use_cores"):
        cost.mac_budget("nRF52840", use_cores=2)


def test_fits_names_the_binding_resource():
    big_ram = cost.ModelCost(params=1, macs=1_000_000, flash_bytes=100_000, peak_ram_bytes=500 * 1024)
    report = cost.fits(big_ram, "seed example")
    assert not report.fits and report.binding == "ram"
    assert report.fraction("ram") == pytest.approx(500 / 392)
    assert "DOES NOT FIT" in str(report) and "<-- over" in str(report)
    ok = cost.fits(cost.ModelCost(1, 63_000_000, 1000, 1000), "seed example")
    assert ok.fits and ok.binding == "macs" and ok.fraction("macs") == 1.0
    assert cost.fits(big_ram, "STM32H743", mac_budget=10).binding == "macs"
    assert set(report.as_dict()["resources"]) == {"flash", "ram", "macs"}


def test_fits_measures_a_module_and_checks_inputs():
    from tinyml_helpers.models.dscnn import DSCNN

    report = cost.fits(DSCNN(), "nRF52840", input_shape=(1, 49, 10))
    assert report.fits
    with pytest.raises(ValueError, match="needs input_shape"):
        cost.fits(DSCNN(), "nRF52840")
    with pytest.raises(ValueError, match="mac_budget must be a positive number"):
        cost.fits(cost.ModelCost(1, 1, 1, 1), "nRF52840", mac_budget=-5)
    with pytest.raises(ValueError, match="cannot be negative"):
        cost.ModelCost(params=1, macs=1, flash_bytes=-1, peak_ram_bytes=1)
    with pytest.raises(TypeError, match="ModelCost or a torch.nn.Module"):
        cost.fits({"macs": 1}, "nRF52840")


def test_measure_bundles_everything():
    c = cost.measure(nn.Sequential(nn.Linear(100, 10)), (100,), dtype="fp32", name="fc")
    assert (c.params, c.macs, c.flash_bytes, c.peak_ram_bytes, c.dtype) == (1010, 1000, 4040, 440, "fp32")
    assert c.as_dict()["name"] == "fc"


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_int8_onnx_graphs_match_the_torch_int8_estimate(tmp_path, fmt):
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from tinyml_helpers.models.dscnn import DSCNN

    class Calibration(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"x": rng.standard_normal((1, 1, 49, 10), dtype=np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    model = DSCNN().eval()
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 49, 10),), str(fp32), dynamo=False, input_names=["x"])
    quantize_static(str(fp32), str(int8), Calibration(), quant_format=getattr(QuantFormat, fmt),
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    lts = cost.lifetimes_from_onnx(int8)  # QOperator: QLinearGlobalAveragePool shapes come from onnxruntime
    assert cost.peak_live_bytes(lts)[0] == cost.peak_activation_bytes(model, (1, 49, 10), dtype="int8") == 16_000
    assert cost.plan_arena(lts).validate()
