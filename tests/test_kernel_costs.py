"""The measured kernel cost table (deploy.kernel_costs): fitting, prediction, layer kinds."""
from __future__ import annotations

import pytest

from tinyml_helpers.deploy import kernel_costs as kc
from tinyml_helpers.deploy.kernel_costs import LayerCost

torch = pytest.importorskip("torch")


def test_fit_recovers_a_known_cost_line():
    rows = [LayerCost("conv1x1", macs=m, outputs=o, cycles=int(1.5 * m + 20 * o + 300), pixels=o // 4)
            for m, o in [(1000, 100), (5000, 200), (20000, 800), (64000, 4000), (3000, 1500)]]
    table = kc.fit_cost_table(rows)
    k = table["kinds"]["conv1x1"]
    assert k["max_rel_error"] < 1e-6 and k["layers"] == 5
    assert kc.predict_cycles([LayerCost("conv1x1", 10_000, 500, pixels=125)], table) == pytest.approx(
        1.5 * 10_000 + 20 * 500 + 300, rel=1e-6)


def test_shipped_table_covers_every_layer_kind_of_a_phinet_and_the_dscnn():
    from tinyml_helpers.models.dscnn import DSCNN
    from tinyml_helpers.models.phinet import build_phinet

    table = kc.load_cost_table()
    for net, shape in [(build_phinet((1, 49, 40), 12, 0.3, 1.0, 4.0, seed=0), (1, 49, 40)), (DSCNN(), (1, 49, 10))]:
        rows = kc.torch_layer_costs(net, shape)
        assert {kc.KIND_FALLBACK.get(r.kind, r.kind) if r.kind not in table["kinds"] else r.kind
                for r in rows} <= set(table["kinds"])
        assert kc.predict_cycles(rows, table) > sum(r.macs for r in rows)  # more than a cycle per MAC
    assert {"add", "dw3x3s1", "dw3x3s2", "conv1x1"} <= {r.kind for r in kc.torch_layer_costs(
        build_phinet((1, 49, 40), 12, 0.3, 1.0, 4.0, seed=0), (1, 49, 40))}


def test_torch_kinds_match_what_codegen_deploys():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, stride=2, padding=1),          # one-channel: depthwise
                              torch.nn.Conv2d(1, 6, 1),                                  # one input channel
                              torch.nn.Conv2d(6, 6, 3, padding=1, groups=6),            # dw3x3 s1
                              torch.nn.Conv2d(6, 6, 5, padding=2, groups=6),            # general depthwise
                              torch.nn.Conv2d(6, 4, 3, padding=1),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    kinds = [r.kind for r in kc.torch_layer_costs(net, (1, 9, 8))]
    assert kinds == ["dw3x3s2", "conv1x1c1", "dw3x3s1", "dwconv", "conv", "gap", "dense"]
    odd = [r for r in kc.torch_layer_costs(torch.nn.Conv2d(4, 5, 1), (4, 3, 3))][0]
    assert odd.odd_macs == 9 * 4 and odd.channels == 5 and odd.pixels == 9


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown layer kind"):
        LayerCost("lstm", 1, 1)
    with pytest.raises(ValueError, match="macs must be >= 0"):
        LayerCost("add", -1, 1)
    with pytest.raises(KeyError, match="no entry for layer kind"):
        kc.predict_cycles([LayerCost("pad", 0, 10)], {"kinds": {}})
    with pytest.raises(ValueError, match="no measured layers"):
        kc.fit_cost_table([])
    with pytest.raises(ValueError, match="grouped convolution"):
        kc.torch_layer_costs(torch.nn.Conv2d(4, 4, 3, groups=2), (4, 5, 5))
    with pytest.raises(FileNotFoundError, match="measure_kernel_costs"):
        kc.load_cost_table("/nonexistent/costs.json")


def test_benchmarks_helpers_validate_inputs():
    import numpy as np

    from tinyml_helpers.deploy import benchmarks

    ref = benchmarks.MLPERF_TINY_KWS["X-CUBE-AI 10.2 (STM32L4R5)"]
    assert benchmarks.cycles_per_mac(ref["latency_s"], ref["clock_hz"], benchmarks.DSCNN_MACS) == pytest.approx(1.96, abs=0.01)
    with pytest.raises(ValueError, match="must be positive"):
        benchmarks.cycles_per_mac(0.0, 1e6, 1e6)
    with pytest.raises(ValueError, match="calibration must be"):
        benchmarks.deploy_torch(torch.nn.Conv2d(1, 2, 1), (1, 4, 4), np.zeros((3, 1, 5, 4), np.float32), "/tmp/x")


def test_a_kind_newer_than_the_table_falls_back_to_the_kind_it_was_measured_under():
    old = {"kinds": {"conv1x1": {"cycles_per_mac": 2.0, "cycles_per_output": 0.0, "cycles_per_layer": 10.0}}}
    assert kc.predict_cycles([LayerCost("conv1x1c1", 100, 100)], old) == kc.predict_cycles(
        [LayerCost("conv1x1", 100, 100)], old) == 210.0
    new = {"kinds": {**old["kinds"], "conv1x1c1": {"cycles_per_mac": 5.0, "cycles_per_layer": 0.0}}}
    assert kc.predict_cycles([LayerCost("conv1x1c1", 100, 100)], new) == 500.0
    with pytest.raises(KeyError, match="no entry for layer kind 'dense'"):
        kc.predict_cycles([LayerCost("dense", 10, 1)], old)
