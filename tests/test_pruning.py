"""Unit tests of tinyml_helpers.pruning and tinyml_helpers.sparse (random tensors, tiny models)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tinyml_helpers import pruning as P
from tinyml_helpers import sparse as S


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 3)).eval()


def toy_loader(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 5, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    return [(x[i:i + 8], y[i:i + 8]) for i in range(0, n, 8)]


# ---------------------------------------------------------------- tensors
def test_magnitude_prune_zeroes_the_smallest():
    w = torch.tensor([[0.3, -0.1], [2.0, -0.05]])
    out = P.magnitude_prune(w, 0.5)
    assert torch.equal(out, torch.tensor([[0.3, 0.0], [2.0, 0.0]]))
    assert w[0, 1] == -0.1, "input must be left untouched"


def test_magnitude_threshold_matches_quantile_and_zero_sparsity():
    w = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    theta = P.magnitude_threshold(w, 0.9)
    assert (w.abs() <= theta).float().mean().item() == pytest.approx(0.9, abs=1e-3)
    assert P.magnitude_threshold(w, 0.0) < 0
    assert torch.equal(P.magnitude_prune(w, 0.0), w)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "half", True])
def test_bad_sparsity_is_explained(bad):
    with pytest.raises(ValueError, match="fraction in \\[0, 1\\)"):
        P.magnitude_prune(torch.randn(4), bad)


def test_magnitude_threshold_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        P.magnitude_threshold(torch.zeros(0), 0.5)


# ---------------------------------------------------------------- unstructured
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_prune_unstructured_reaches_target_and_copies(scope):
    net = tiny_cnn()
    pruned = P.prune_unstructured(net, 0.7, scope=scope)
    assert P.weight_sparsity(pruned) == pytest.approx(0.7, abs=0.02)
    assert P.weight_sparsity(net) == 0.0
    assert hasattr(pruned[0], "weight_mask")
    if scope == "layerwise":
        assert all(abs(s - 0.7) < 0.07 for s in P.layer_sparsities(pruned).values())


def test_global_scope_is_uneven_across_layers():
    net = nn.Sequential(nn.Linear(50, 50), nn.Linear(50, 4))
    with torch.no_grad():
        net[1].weight.mul_(100)  # big weights in the last layer: global ranking spares them
    spars = P.layer_sparsities(P.prune_unstructured(net, 0.5, scope="global"))
    assert spars["0"] > 0.5 and spars["1"] < 0.05


def test_reprune_gives_the_asked_sparsity_not_compounded():
    net = P.prune_unstructured(tiny_cnn(), 0.5)
    assert P.weight_sparsity(P.prune_unstructured(net, 0.6)) == pytest.approx(0.6, abs=0.02)


def test_make_permanent_keeps_zeros_and_removes_masks():
    net = P.make_permanent(P.prune_unstructured(tiny_cnn(), 0.5))
    assert not any(hasattr(m, "weight_mask") for m in net.modules())
    assert P.weight_sparsity(net) == pytest.approx(0.5, abs=0.02)
    assert all(not k.endswith("_orig") for k in net.state_dict())


def test_prune_unstructured_bad_scope_and_non_module():
    with pytest.raises(ValueError, match="'global' or 'layerwise'"):
        P.prune_unstructured(tiny_cnn(), 0.5, scope="blocks")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        P.prunable_layers("not a model")
    with pytest.raises(ValueError, match="no Conv1d/Conv2d/Linear"):
        P.prunable_layers(nn.ReLU())


def test_incremental_prune_stops_before_the_target_is_broken():
    net = nn.Linear(20, 5)
    result = P.incremental_prune(net, lambda m: 1.0 - P.weight_sparsity(m), min_accuracy=0.55, step=0.1)
    assert result.sparsity == pytest.approx(0.4)
    assert result.accuracy >= 0.55
    assert result.history[-1][1] < 0.55
    with pytest.raises(ValueError, match="lower the target"):
        P.incremental_prune(net, lambda m: 0.3, min_accuracy=0.5)
    with pytest.raises(ValueError, match="step"):
        P.incremental_prune(net, lambda m: 1.0, min_accuracy=0.5, step=0)


# ---------------------------------------------------------------- structured
def test_prune_structured_makes_a_smaller_dense_model_with_same_outputs_shape():
    net = tiny_cnn()
    x = torch.randn(2, 1, 6, 5)
    small = P.prune_structured(net, x[:1], 0.5)
    assert P.count_params(small) < 0.5 * P.count_params(net)
    assert small(x).shape == net(x).shape == (2, 3)
    assert small[0].out_channels == 4 and small[3].groups == 4 and small[6].out_channels == 8
    assert net[0].out_channels == 8, "the original must be untouched"
    assert P.count_macs(small, (1, 6, 5)) < P.count_macs(net, (1, 6, 5))


def test_prune_structured_keeps_largest_norm_channels():
    net = nn.Sequential(nn.Conv2d(1, 4, 1), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 5.0, 0.1, 3.0]).view(4, 1, 1, 1))
    small = P.prune_structured(net, torch.randn(1, 1, 1, 1), 0.5)
    assert sorted(small[0].weight.flatten().tolist()) == [3.0, 5.0]


def test_prune_structured_zero_ratio_and_bad_input():
    net = tiny_cnn()
    assert P.count_params(P.prune_structured(net, torch.randn(1, 6, 5), 0.0)) == P.count_params(net)
    with pytest.raises(TypeError, match="example_input"):
        P.prune_structured(net, [1, 2], 0.5)


# ---------------------------------------------------------------- costs: the warning
def test_zeros_stored_dense_cost_the_same_bytes_but_csr_is_smaller():
    net = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    sparse = P.make_permanent(P.prune_unstructured(net, 0.9))
    dense_size, sparse_size = P.onnx_bytes(net, (128,)), P.onnx_bytes(sparse, (128,))
    assert abs(dense_size - sparse_size) < 0.01 * dense_size
    assert S.csr_model_bytes(sparse) < 0.3 * S.dense_model_bytes(sparse)


def test_onnx_bytes_to_path_and_latency(tmp_path):
    target = tmp_path / "m.onnx"
    size = P.onnx_bytes(nn.Linear(8, 2), (8,), path=target)
    assert target.stat().st_size == size
    assert 0 < P.onnx_latency(nn.Linear(8, 2), (8,), repeats=2, warmup=0) < 1
    with pytest.raises(ValueError, match="repeats"):
        P.onnx_latency(nn.Linear(8, 2), (8,), repeats=0)


class _BusyClock:
    """A fake perf_counter and onnxruntime session: every run takes 1 tick, 3 during a busy spell."""

    def __init__(self, busy_runs: int):
        self.now, self.runs, self.busy_runs = 0.0, 0, busy_runs

    def perf_counter(self) -> float:
        return self.now

    def session(self, *args, **kwargs):
        clock = self

        class Session:
            def run(self, *_):
                clock.runs += 1
                clock.now += 3.0 if clock.runs <= clock.busy_runs else 1.0

        return Session()


def test_latency_ratio_is_not_skewed_by_a_busy_spell(monkeypatch):
    # Regression: notebook 02 timed the dense and the pruned model one after the other, and a busy
    # spell during one of them alone (another test worker) pushed their ratio out of its bounds.
    import types

    import onnxruntime

    clock = _BusyClock(busy_runs=30)  # busy for the warm-up and the first repeats of whatever runs first
    monkeypatch.setattr(P, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(onnxruntime, "InferenceSession", clock.session)
    costs = P.deployment_costs(nn.Linear(8, 2), (8,), repeats=20, reference=nn.Linear(8, 2))
    assert costs["latency_ratio"] == pytest.approx(1.0)
    assert costs["latency_s"] == costs["reference_latency_s"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no models"):
        P.onnx_latencies([], (8,))


def test_deployment_costs_keys():
    c = P.deployment_costs(tiny_cnn(), (1, 6, 5), repeats=2)
    assert set(c) == {"params", "macs", "onnx_bytes", "latency_s", "sparsity", "csr_bytes"}
    assert c["sparsity"] == 0.0 and c["params"] > 0


# ---------------------------------------------------------------- during training
def test_cubic_schedule_shape():
    values = [P.cubic_sparsity_schedule(t, 0.9, 100) for t in range(0, 101, 10)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.9)
    steps = np.diff(values)
    assert np.all(steps >= 0) and steps[0] > steps[-1], "fast first, slow at the end"
    assert P.cubic_sparsity_schedule(500, 0.9, 100) == pytest.approx(0.9)
    assert P.cubic_sparsity_schedule(5, 0.9, 100, start_step=10) == 0.0
    with pytest.raises(ValueError, match="total_steps"):
        P.cubic_sparsity_schedule(1, 0.5, 0)


def test_train_epochs_calls_hooks_and_rejects_negative():
    calls = []
    P.train_epochs(nn.Linear(30, 3), [(torch.randn(4, 30), torch.tensor([0, 1, 2, 0]))] * 3, 2,
                   on_step=lambda m, s: calls.append(("step", s)),
                   on_epoch_end=lambda m, e: calls.append(("epoch", e)))
    assert calls.count(("epoch", 0)) == 1 and calls[-1] == ("epoch", 1) and ("step", 6) in calls
    with pytest.raises(ValueError, match="epochs"):
        P.train_epochs(nn.Linear(2, 2), [], -1)


def test_accuracy_and_empty_loader():
    assert 0.0 <= P.accuracy(tiny_cnn(), toy_loader()) <= 1.0
    with pytest.raises(ValueError, match="no samples"):
        P.accuracy(tiny_cnn(), [])


def test_hard_keeps_zeros_soft_lets_them_regrow():
    torch.manual_seed(0)
    loader = toy_loader(64)
    net = tiny_cnn()
    hard = P.fine_tune_hard(net, loader, 0.6, epochs=2, lr=0.05)
    before = P.make_permanent(P.prune_unstructured(net, 0.6))
    for (_, a), (_, b) in zip(P.prunable_layers(before), P.prunable_layers(hard)):
        assert torch.all(b.weight[a.weight == 0] == 0), "hard pruning must never revive a weight"
    soft, regrown = P.fine_tune_soft(net, loader, 0.6, epochs=3, lr=0.05, remask_every=4)
    assert P.weight_sparsity(soft) == pytest.approx(0.6, abs=0.02)
    assert regrown > 0.0
    assert not any(hasattr(m, "weight_mask") for m in soft.modules()), "the mask is baked in at the end"
    with pytest.raises(ValueError, match="remask_every"):
        P.fine_tune_soft(net, loader, 0.6, epochs=1, remask_every=0)
    with pytest.raises(ValueError, match="freeze_fraction"):
        P.fine_tune_soft(net, loader, 0.6, epochs=1, freeze_fraction=1.0)


def test_soft_mask_passes_gradients_to_masked_weights():
    lin = P.prune_unstructured(nn.Linear(4, 2), 0.5)
    P._make_soft(lin)
    lin(torch.randn(3, 4)).sum().backward()
    masked = lin.weight_mask == 0
    assert torch.all(lin.weight_orig.grad[masked] != 0), "straight-through: masked weights still learn"
    assert torch.all(lin.weight[masked] == 0), "but the forward pass uses the masked weights"


def test_gradual_pruning_follows_the_schedule():
    loader = toy_loader(64)
    net, trace = P.train_gradual_pruning(tiny_cnn(), loader, 0.8, epochs=4, prune_every=2)
    assert P.weight_sparsity(net) == pytest.approx(0.8, abs=0.02)
    levels = [s for _, s in trace]
    assert levels == sorted(levels) and len(levels) > 3
    with pytest.raises(ValueError, match="prune_every"):
        P.train_gradual_pruning(tiny_cnn(), loader, 0.8, epochs=1, prune_every=0)


def test_l0_has_no_gradient():
    d = P.l0_gradient_demo(torch.tensor([1.0, -2.0, 0.0, 0.3]))
    assert d["l0"] == 3.0 and all(g == 0 for g in d["gradient"])


# ---------------------------------------------------------------- sparse storage
def test_index_widths():
    assert [S.index_bytes_for(v) for v in (0, 255, 256, 65535, 65536)] == [1, 1, 2, 2, 4]
    with pytest.raises(ValueError, match="non-negative"):
        S.index_bytes_for(-1)


def test_csr_formula_matches_real_arrays():
    rng = np.random.default_rng(0)
    for rows, cols, s in [(10, 300, 0.8), (64, 64, 0.5), (3, 7, 0.0)]:
        m = rng.standard_normal((rows, cols)).astype(np.float32)
        m[rng.random(m.shape) < s] = 0
        arrays = S.to_csr_arrays(m)
        assert arrays.nbytes == S.csr_bytes(rows, cols, int(np.count_nonzero(m)))
        np.testing.assert_array_equal(arrays.to_dense(), m)


def test_crossover_is_where_sizes_meet():
    rows, cols = 64, 200
    s_star = S.crossover_sparsity(rows, cols, value_bytes=4)
    dense = S.dense_bytes(rows, cols, 4)
    nnz_at = lambda s: int(round((1 - s) * rows * cols))  # noqa: E731
    assert S.csr_bytes(rows, cols, nnz_at(s_star - 0.02)) > dense > S.csr_bytes(rows, cols, nnz_at(s_star + 0.02))
    assert S.crossover_sparsity(128, 128, 4, index_bytes=4) == pytest.approx(0.5, abs=0.01)
    assert S.crossover_sparsity(64, 64, 1) > S.crossover_sparsity(64, 64, 4), "int8 needs more sparsity"


def test_sparse_bad_inputs():
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        S.dense_bytes(0, 4)
    with pytest.raises(ValueError, match="value_bytes"):
        S.csr_bytes(4, 4, 2, value_bytes=3)
    with pytest.raises(ValueError, match="nnz must be"):
        S.csr_bytes(4, 4, 17)
    with pytest.raises(ValueError, match="index_bytes"):
        S.csr_bytes(4, 4, 2, index_bytes=3)
    with pytest.raises(ValueError, match="matrix"):
        S.to_csr_arrays(np.zeros(3))
    with pytest.raises(ValueError, match="no Conv or Linear"):
        S.dense_model_bytes(nn.ReLU())


def test_model_bytes():
    lin = nn.Linear(8, 4)
    assert S.dense_model_bytes(lin) == 128 and S.dense_model_bytes(lin, value_bytes=1) == 32
    with torch.no_grad():
        lin.weight.zero_()
    assert S.csr_model_bytes(lin) == 5


def test_model_crossover_matches_measured_csr():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 12))
    s_star = S.model_crossover_sparsity(net)
    below = P.make_permanent(P.prune_unstructured(net, s_star - 0.05, scope="layerwise"))
    above = P.make_permanent(P.prune_unstructured(net, s_star + 0.05, scope="layerwise"))
    assert S.csr_model_bytes(below) > S.dense_model_bytes(net) > S.csr_model_bytes(above)


def test_pruning_grid_rows():
    net = tiny_cnn()
    grid = P.pruning_grid(net, lambda m: 0.5, torch.randn(1, 1, 6, 5), [0.5, 0.9])
    assert [r["level"] for r in grid["unstructured"]] == [0.0, 0.5, 0.9]
    un, st = grid["unstructured"], grid["structured"]
    assert un[2]["dense_bytes"] == un[0]["dense_bytes"] and un[2]["stored_bytes"] < un[0]["stored_bytes"]
    assert un[2]["macs"] == un[0]["macs"] and st[2]["macs"] < st[0]["macs"]


def test_load_pruning_model_unknown_name():
    with pytest.raises(ValueError, match="choose one of"):
        P.load_pruning_model("resnet")


def test_checks_pass_the_reference_and_explain_slips(capsys):
    from tinyml_helpers.checks import pruning as C

    assert C.check_magnitude_prune(P.magnitude_prune)
    assert C.check_csr_bytes(lambda r, c, n, v, i, p: n * (v + i) + (r + 1) * p)

    def signed_slip(w, s):
        k = round(s * w.numel())
        if k == 0:
            return w.clone()
        theta = w.abs().flatten().kthvalue(k).values
        return torch.where(w <= theta, torch.zeros_like(w), w)

    assert not C.check_magnitude_prune(signed_slip)
    assert "magnitude" in capsys.readouterr().out

    def in_place(w, s):
        w[w.abs() <= P.magnitude_threshold(w, s)] = 0.0
        return w

    assert not C.check_magnitude_prune(in_place)
    assert "prune a copy" in capsys.readouterr().out
    assert not C.check_csr_bytes(lambda r, c, n, v, i, p: n * (v + i) + r * p)
    assert "rows + 1" in capsys.readouterr().out
    assert not C.check_csr_bytes(lambda r, c, n, v, i, p: n * v + (r + 1) * p)
    assert "column indices" in capsys.readouterr().out

    def unsolved(w, s):
        raise NotImplementedError

    assert not C.check_magnitude_prune(unsolved)
    assert "not attempted" in capsys.readouterr().out


def test_shipped_checkpoints_load_and_run():
    for name, info in P.CHECKPOINTS.items():
        model = P.load_pruning_model(name)
        shape = P.DSCNN_INPUT_SHAPE if info["kind"] == "mfcc" else P.TRANSFORMER_INPUT_SHAPE
        assert not model.training and model(torch.zeros(2, *shape)).shape == (2, 12)


# ---------------------------------------------------------------- L0 hard-concrete gates
from tinyml_helpers.models.dscnn import DSCNN  # noqa: E402


@pytest.fixture
def one_thread():
    # as start_lesson does: on a shared 2-core machine, 2 torch threads make tiny steps ~10x slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_hard_concrete_samples_in_unit_interval_with_exact_0_and_1():
    torch.manual_seed(0)
    gate = P.HardConcreteGate(2000, init_open=0.5).train()
    z = gate.sample()
    assert z.shape == (2000,) and z.min().item() >= 0.0 and z.max().item() <= 1.0
    # the stretch beyond [0, 1] plus the clamp puts real probability mass on exact 0 and 1
    assert int((z == 0).sum()) > 50 and int((z == 1).sum()) > 50
    assert int(((z > 0) & (z < 1)).sum()) > 50


def test_sample_is_differentiable_in_log_alpha():
    torch.manual_seed(0)
    gate = P.HardConcreteGate(100, init_open=0.5).train()
    gate.sample().sum().backward()
    assert gate.log_alpha.grad is not None and float(gate.log_alpha.grad.abs().sum()) > 0


def test_expected_l0_formula_gradient_and_monotone():
    gate = P.HardConcreteGate(3)
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor([-3.0, 0.0, 3.0]))
    l0 = gate.expected_l0()
    beta, gamma, zeta = 2 / 3, -0.1, 1.1
    expect = sum(1 / (1 + np.exp(-(a - beta * np.log(-gamma / zeta)))) for a in (-3.0, 0.0, 3.0))
    assert l0.item() == pytest.approx(expect, rel=1e-6)
    l0.backward()
    assert bool((gate.log_alpha.grad > 0).all()), "lowering log_alpha must lower the expected L0"
    values = []
    for a in (2.0, 0.0, -2.0, -6.0):
        with torch.no_grad():
            gate.log_alpha.fill_(a)
        values.append(gate.expected_l0().item())
    assert all(b < a for a, b in zip(values, values[1:]))
    # the sampled gates agree with the formula: P(z > 0) estimated by Monte Carlo
    torch.manual_seed(1)
    mc = P.HardConcreteGate(20000, init_open=0.5).train()
    assert (mc.sample() > 0).float().mean().item() == pytest.approx(mc.expected_l0().item() / 20000, abs=0.02)


def test_deterministic_gate_at_test_time():
    gate = P.HardConcreteGate(4)
    with torch.no_grad():
        gate.log_alpha.copy_(torch.tensor([-5.0, 0.0, 0.5, 5.0]))
    gate.eval()
    x = torch.ones(3, 4, 2, 2)
    a, b = gate(x), gate(x)
    assert torch.equal(a, b), "evaluation mode must not sample"
    z = gate.deterministic().detach()
    assert float(z[0]) == 0.0 and float(z[3]) == 1.0
    assert float(z[1]) == pytest.approx(0.5 * 1.2 - 0.1)
    assert gate.open_mask().tolist() == [False, True, True, True]
    torch.manual_seed(0)
    gate.train()
    assert not torch.equal(gate(x), gate(x)), "training mode samples a new gate each time"


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_gates=0), "num_gates must be a positive integer"),
    (dict(num_gates=2.5), "num_gates must be a positive integer"),
    (dict(num_gates=4, temperature=0.0), "temperature"),
    (dict(num_gates=4, limits=(0.0, 1.1)), "gamma < 0 < 1 < zeta"),
    (dict(num_gates=4, limits=(-0.1,)), "pair"),
    (dict(num_gates=4, init_open=1.0), "init_open"),
])
def test_gate_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        P.HardConcreteGate(**kwargs)


def test_gate_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="dimension 1"):
        P.HardConcreteGate(4)(torch.ones(2, 3, 5))


def test_attach_gates_to_dscnn_and_bad_inputs():
    model = DSCNN(channels=8, num_blocks=2).eval()
    gated = P.attach_channel_gates(model)
    assert P.dscnn_gate_points(model) == ["blocks.0.0", "blocks.1.0", "blocks.1.1"]
    assert P.open_channels(gated) == {"blocks.0.0": 8, "blocks.1.0": 8, "blocks.1.1": 8}
    assert not P.channel_gates(model), "the original model is left untouched"
    x = torch.randn(2, 1, 49, 10)
    with torch.no_grad():  # gates start nearly open: deterministic gate 1, same function
        assert torch.allclose(gated.eval()(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="no submodule named"):
        P.attach_channel_gates(model, names=["blocks.7.0"])
    with pytest.raises(ValueError, match="no BatchNorm2d"):
        P.attach_channel_gates(model, names=["classifier"])
    with pytest.raises(ValueError, match="only ReLU/Dropout may follow"):
        P.ChannelGated(nn.Sequential(nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.ReLU6()))
    with pytest.raises(ValueError, match="already gated"):
        P.attach_channel_gates(gated, names=["blocks.0.0"])
    with pytest.raises(ValueError, match="attach_channel_gates"):
        P.dscnn_gate_points(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no channel gates"):
        P.expected_l0_penalty(model)
    with pytest.raises(ValueError, match="l0_weight"):
        P.train_l0_gates(gated, toy_loader(), l0_weight=-1.0, epochs=1)


def test_remove_closed_channels_is_exact_and_smaller():
    torch.manual_seed(0)
    model = DSCNN(channels=8, num_blocks=2)
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for _ in range(3):
            model(torch.randn(16, 1, 49, 10))
    gated = P.attach_channel_gates(model.eval())
    gates = P.channel_gates(gated)
    with torch.no_grad():
        gates["blocks.0.0"].log_alpha[[1, 4, 6]] = -8.0     # closed
        gates["blocks.0.0"].log_alpha[2] = 0.3              # open, partly (z = 0.62): folded into BN
        gates["blocks.1.1"].log_alpha[:5] = -8.0
    assert P.open_channels(gated) == {"blocks.0.0": 5, "blocks.1.0": 8, "blocks.1.1": 3}
    small = P.remove_closed_channels(gated, torch.zeros(1, 1, 49, 10))
    assert not P.channel_gates(small)
    assert small.stem[0].out_channels == 5 and small.blocks[0][0][0].out_channels == 5
    assert small.blocks[0][1][0].in_channels == 5 and small.classifier.in_features == 3
    x = torch.randn(4, 1, 49, 10)
    with torch.no_grad():
        assert torch.allclose(small.eval()(x), gated.eval()(x), atol=1e-5)
    assert P.count_params(small) < P.count_params(model)
    with torch.no_grad():
        gates["blocks.1.0"].log_alpha[:] = -8.0
    with pytest.raises(ValueError, match="every channel of 'blocks.1.0' is closed"):
        P.remove_closed_channels(gated, torch.zeros(1, 1, 49, 10))


def test_l0_penalty_closes_gates_on_a_toy_problem(one_thread):
    # 6 input channels, only channel 0 carries the label: the penalty closes most of the 8
    # gates and keeps a useful path open.
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, 1, 1, generator=g)
    y = (x[:, 0, 0, 0] > 0).long()
    data = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)]
    net = nn.Sequential(nn.Sequential(nn.Conv2d(6, 8, 1), nn.BatchNorm2d(8), nn.ReLU()),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    gated = P.attach_channel_gates(net, names=["0"])
    before = P.expected_l0_penalty(gated).item()
    P.train_l0_gates(gated, data, l0_weight=0.05, epochs=15, lr=1e-2, gate_lr=0.1)
    after = P.expected_l0_penalty(gated).item()
    assert after < before - 4, (before, after)
    assert 1 <= P.open_channels(gated)["0"] <= 4
    assert P.accuracy(gated, data) > 0.9, "the useful channels stay open"
    small = P.remove_closed_channels(gated, torch.zeros(1, 6, 1, 1))
    assert small[0][0].out_channels == P.open_channels(gated)["0"]
    assert P.accuracy(small, data) == P.accuracy(gated, data)
    # lambda = 0: no pressure, the gates stay open
    torch.manual_seed(0)
    free = P.attach_channel_gates(net, names=["0"])
    P.train_l0_gates(free, data, l0_weight=0.0, epochs=3, lr=1e-2, gate_lr=0.1)
    assert P.open_channels(free)["0"] == 8


def test_settle_epochs_freeze_the_gates(one_thread):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 1, 49, 10, generator=g), torch.randint(0, 12, (8,), generator=g)) for _ in range(2)]
    gated = P.attach_channel_gates(DSCNN(channels=4, num_blocks=1))
    seen = []

    def snapshot(model, epoch):
        seen.append(torch.cat([gate.log_alpha.detach().clone() for gate in P.channel_gates(model).values()]))

    P.train_l0_gates(gated, data, l0_weight=0.1, epochs=3, gate_lr=0.1, settle_epochs=2, on_epoch_end=snapshot)
    assert not torch.equal(seen[0], torch.cat([torch.full((4,), float(np.log(0.95 / 0.05)))] * 2)), "epoch 1 moves the gates"
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[1], seen[2]), "settle epochs keep the gates fixed"
    assert all(gate.log_alpha.requires_grad for gate in P.channel_gates(gated).values())
    with pytest.raises(ValueError, match="settle_epochs must be an integer between 0 and epochs"):
        P.train_l0_gates(gated, data, l0_weight=0.1, epochs=1, settle_epochs=2)


# ---------------------------------------------------------------- progress that survives a saved notebook
def test_pruning_training_loops_print_one_line_per_epoch(capsys):
    # tqdm bars keep only their first state (0 %) in a notebook saved by a headless run: each
    # epoch must also print a line, and nothing is printed without a progress label.
    P.train_epochs(tiny_cnn(), toy_loader(), epochs=2, progress="hard 50 %")
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("hard 50 %: epoch")]
    assert [l.split(",")[0] for l in lines] == ["hard 50 %: epoch 1/2", "hard 50 %: epoch 2/2"]
    assert all("train loss" in l for l in lines)
    P.fine_tune_soft(tiny_cnn(), toy_loader(), 0.5, epochs=2, progress="soft")
    assert capsys.readouterr().out.count("soft: epoch") == 2
    P.train_epochs(tiny_cnn(), toy_loader(), epochs=2)
    assert capsys.readouterr().out == ""


def test_l0_gate_training_prints_epochs_with_open_channels(capsys):
    from tinyml_helpers.models.dscnn import DSCNN

    torch.manual_seed(0)
    net = P.attach_channel_gates(DSCNN(channels=8, num_blocks=1, num_classes=3))
    P.train_l0_gates(net, toy_loader(), l0_weight=0.01, epochs=2, settle_epochs=1, progress="L0")
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("L0: epoch")]
    assert len(lines) == 2 and all("channels open" in l for l in lines), lines
    assert "gates settled" in lines[1] and "gates settled" not in lines[0]
