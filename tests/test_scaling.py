"""Closed-form PhiNet costs and the hardware-aware-scaling solver."""
from __future__ import annotations

import math

import pytest

from tinyml_helpers import scaling as sc
from tinyml_helpers.models.phinet import build_phinet


def test_expansion_factor_follows_micromind():
    from micromind.networks.phinet import get_xpansion_factor

    for t0, beta, block, n in [(4.0, 0.66, 1, 7), (6.0, 1.5, 7, 7), (3.0, 0.5, 4, 9)]:
        assert sc.expansion_factor(t0, beta, block, n) == pytest.approx(get_xpansion_factor(t0, beta, block, n))
    with pytest.raises(ValueError, match="block must be in 1..num_layers"):
        sc.expansion_factor(4.0, 1.0, 0, 7)


def test_block_specs_match_the_built_network():
    """Channels, expansions and resolutions derived from micromind's construction."""
    model = build_phinet((3, 160, 160), 10, alpha=1.0, beta=0.66, t0=4.0, num_layers=7)
    blocks = sc.phinet_blocks((3, 160, 160), 0.66, 4.0, 7)
    assert [b.in_channels for b in blocks] == [24, 24, 24, 48, 48, 96, 96]
    assert [b.out_channels for b in blocks] == [24, 24, 48, 48, 96, 96, 192]
    assert [b.stride for b in blocks] == [2, 1, 2, 1, 2, 1, 2]
    assert blocks[0].in_hw == (80, 80) and blocks[-1].out_hw == (5, 5)
    # the expand conv of each expansion block (micromind's _layers[3:]) has int(t_B * C_B) outputs
    expand = [blk._layers[0] for blk in list(model._layers)[3:]]
    assert [c.out_channels for c in expand] == [int(b.expansion * b.in_channels) for b in blocks]


def test_odd_non_square_resolution_rounds_up():
    blocks = sc.phinet_blocks((1, 49, 40), 1.0, 4.0, 7)
    assert blocks[0].in_hw == (25, 20) and blocks[-1].out_hw == (2, 2)


def test_closed_forms_by_hand():
    # one block, alpha 0.5, t 6, C 24, K 3: 2*0.25*6*576 + 0.5*6*24*9 = 1728 + 648
    assert sc.block_params(0.5, 6.0, 24, 3) == pytest.approx(2376.0)
    assert sc.block_macs(0.5, 6.0, 24, 10, 10, 3) == pytest.approx(237600.0)
    assert sc.closed_form_ram((3, 160, 160), 1.0, 4.0, "int8") == 160 * 160 * (4 + 4 + 3)
    assert sc.closed_form_ram((3, 160, 160), 1.0, 4.0, "fp32") == 4 * 160 * 160 * 11
    blocks = sc.phinet_blocks((3, 160, 160), 0.66, 4.0, 7)
    want = sum(b.in_hw[0] * b.in_hw[1] * sc.block_params(1.0, b.expansion, b.in_channels) for b in blocks)
    assert sc.closed_form_macs((3, 160, 160), 1.0, 0.66, 4.0, 7) == pytest.approx(want)
    with pytest.raises(ValueError, match="dtype must be one of"):
        sc.closed_form_ram((3, 32, 32), 1.0, 4.0, "int4")


def test_closed_forms_scale_with_alpha_as_stated():
    p1 = sc.closed_form_params((3, 96, 96), 1.0, 1.0, 4.0)
    p2 = sc.closed_form_params((3, 96, 96), 2.0, 1.0, 4.0)
    assert 2.0 < p2 / p1 < 4.0  # between linear (depthwise) and quadratic (1x1 convs)


def test_alpha_for_macs_inverts_the_mac_formula():
    alpha = sc.alpha_for_macs(4e6, (1, 49, 40), 1.0, 4.0)
    assert sc.closed_form_macs((1, 49, 40), alpha, 1.0, 4.0) == pytest.approx(4e6, rel=1e-9)
    with pytest.raises(ValueError, match="mac_budget must be positive"):
        sc.alpha_for_macs(0, (1, 49, 40), 1.0, 4.0)


def test_seed_example_measures_as_the_deck_says():
    """alpha 1, beta 0.66, t0 4 at 160x160x3, 7 blocks (micromind 0.2.1, no head, full mode)."""
    from micromind.networks import PhiNet
    from torchinfo import summary
    import torch

    net = PhiNet((3, 160, 160), num_layers=7, alpha=1.0, beta=0.66, t_zero=4.0, include_top=False)
    s = summary(net, input_data=torch.zeros(1, 3, 160, 160), verbose=0)
    assert s.total_params == 259_944
    assert abs(s.total_mult_adds - 62.9e6) < 0.05e6


# ----------------------------------------------------------------------------- solver

def fake_measure(shape, num_classes, alpha, beta, t0, num_layers, compatibility, dtype):
    """Deterministic, monotone stand-in for measured costs (keeps solver tests fast)."""
    cf = sc.closed_form_costs(shape, alpha, beta, t0, num_layers, dtype)
    ram = shape[1] * shape[2] / 4 * alpha * (24 * t0 + 24) * sc.BYTES_PER_ELEMENT[dtype]
    return sc.PhiNetCosts(params=int(cf["params"] * 1.1 + 100 * num_classes),
                          macs=int(cf["macs"] * 0.8),
                          flash_bytes=int(cf["flash_bytes"] * 1.1 + 100 * num_classes),
                          peak_ram_bytes=int(ram), dtype=dtype)


def test_solver_returns_a_fitting_network_that_uses_the_budget():
    budget = sc.Budget(flash_bytes=200_000, ram_bytes=60_000, macs=5e6)
    sol = sc.solve_phinet(budget, (1, 49, 40), 12, measure=fake_measure)
    assert sol.costs.flash_bytes <= 200_000 and sol.costs.peak_ram_bytes <= 60_000 and sol.costs.macs <= 5e6
    assert max(sol.utilization.values()) > 0.9, sol.summary()
    assert sol.binding in ("flash", "RAM", "MACs")
    # one alpha_refine step more would not fit (the solver maximised alpha)
    bigger = fake_measure((1, 49, 40), 12, sol.alpha + 0.01, sol.beta, sol.t0, 7, True, "int8")
    assert not (bigger.flash_bytes <= 200_000 and bigger.peak_ram_bytes <= 60_000 and bigger.macs <= 5e6)
    assert "binding resource" in sol.summary()


def test_solver_is_exhaustive_enough():
    """The solver's pick is at least as good as the best fitting point of a brute-force grid."""
    budget = sc.Budget(flash_bytes=300_000, ram_bytes=80_000, macs=3e6)
    sol = sc.solve_phinet(budget, (1, 49, 40), 12, betas=(0.5, 1.0, 1.5), t0s=(2.0, 4.0, 6.0),
                          max_candidates=9, measure=fake_measure)
    limits = budget.limits()
    best = 0.0
    for b in (0.5, 1.0, 1.5):
        for t in (2.0, 4.0, 6.0):
            for i in range(2, 301, 5):
                c = fake_measure((1, 49, 40), 12, i / 100, b, t, 7, True, "int8")
                if all(getattr(c, k) <= v for k, v in limits.items()):
                    best = max(best, math.exp(sum(math.log(getattr(c, k) / v) for k, v in limits.items()) / 3))
    assert sol.score >= best - 1e-9


def test_solver_searches_resolution_and_depth():
    budget = sc.Budget(flash_bytes=2e6, ram_bytes=150_000, macs=20e6)
    sol = sc.solve_phinet(budget, (3, 160, 160), 10, resolutions=[(64, 64), (96, 96)],
                          num_layers=(5, 7), measure=fake_measure)
    assert sol.input_shape[1:] in ((64, 64), (96, 96)) and sol.num_layers in (5, 7)
    assert sol.costs.peak_ram_bytes <= 150_000


def test_infeasible_budget_names_the_binding_constraint():
    with pytest.raises(sc.InfeasibleBudgetError, match=r"RAM binds: even the smallest PhiNet .* raise the RAM "
                                                        r"budget to >= .* lower the input resolution") as info:
        sc.solve_phinet(sc.Budget(1e6, 500, 1e9), (1, 49, 40), 12, measure=fake_measure)
    assert info.value.binding == "RAM" and info.value.needed > 500
    with pytest.raises(sc.InfeasibleBudgetError, match="MACs binds"):
        sc.solve_phinet(sc.Budget(1e6, 1e6, 1000), (1, 49, 40), 12, measure=fake_measure)


def test_budget_validation():
    with pytest.raises(ValueError, match="must be a positive number or None"):
        sc.Budget(flash_bytes=-1, ram_bytes=1, macs=1)
    with pytest.raises(ValueError, match="sets no limit at all"):
        sc.Budget(None, None, None)
    with pytest.raises(ValueError, match="dtype must be one of"):
        sc.Budget(1, 1, 1, dtype="int4")
    with pytest.raises(TypeError, match="budget must be a Budget"):
        sc.solve_phinet({"flash": 1}, (1, 49, 40), 12)
    b = sc.Budget.from_mcu("seed example")
    assert (b.flash_bytes, b.ram_bytes, b.macs) == (1024 * 1024, 392 * 1024, 63e6)
    # a Cortex-M4 with a target latency gets a cycle budget (measured kernel costs), no MAC budget
    half = sc.Budget.from_mcu("nRF52840", ram_fraction=0.5, target_latency_s=0.1)
    assert half.ram_bytes == 128 * 1024 and half.macs is None
    assert half.cycles == pytest.approx(64e6 * 0.1 / (1 + sc.CYCLE_PREDICTION_MARGIN))
    assert "cycles" in half.limits()
    # other cores keep the assumed MACs per cycle
    assert sc.Budget.from_mcu("RP2040", target_latency_s=0.1).macs == pytest.approx(133e6 * 0.125 * 0.1)
    with pytest.raises(ValueError, match="ram_fraction must be in"):
        sc.Budget.from_mcu("nRF52840", ram_fraction=0)


def test_budget_accepts_numpy_scalars_and_refuses_non_finite_values():
    np = pytest.importorskip("numpy")
    b = sc.Budget(np.int64(65536), np.float32(32768.0), np.int32(2_000_000), cycles=np.float64(3e6))
    assert b.limits() == {"flash_bytes": 65536.0, "peak_ram_bytes": 32768.0, "macs": 2e6, "cycles": 3e6}
    assert all(type(v) is float for v in (b.flash_bytes, b.ram_bytes, b.macs, b.cycles))
    for bad in (float("nan"), float("inf"), True, "1000", 0):
        with pytest.raises(ValueError, match="must be a positive number or None"):
            sc.Budget(flash_bytes=bad, ram_bytes=1, macs=1)


@pytest.mark.parametrize("alpha", [-0.5, 0.0, float("nan"), float("inf")])
def test_closed_forms_refuse_non_positive_or_non_finite_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a positive finite number"):
        sc.closed_form_costs((1, 49, 40), alpha, 1.0, 4.0)


def test_solver_refuses_an_oversized_alpha_grid_before_measuring_anything():
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("nothing should be measured")

    budget = sc.Budget(1e6, 1e6, 1e7)
    with pytest.raises(ValueError, match="alpha grid .* points"):
        sc.solve_phinet(budget, (1, 49, 40), 12, alpha_step=1e-6, measure=spy)
    with pytest.raises(ValueError, match="alpha grid .* points"):
        sc.solve_phinet(budget, (1, 49, 40), 12, alpha_range=(0.1, 1e6), measure=spy)
    with pytest.raises(ValueError, match="alpha grid .* points"):
        sc.solve_phinet(budget, (1, 49, 40), 12, alpha_refine=1e-9, measure=spy)
    with pytest.raises(ValueError, match="positive finite"):
        sc.solve_phinet(budget, (1, 49, 40), 12, alpha_step=float("nan"), measure=spy)
    assert calls == []


def test_cycle_budget_solution_fits_its_predicted_cycles():
    """The solver with a cycle budget (the keyword target) returns a network whose cycles,
    predicted from the measured kernel costs, fit; tighter latency, smaller network."""
    sols = []
    for latency in (0.05, 0.1):
        budget = sc.Budget.from_mcu("nRF52840", flash_fraction=0.25, ram_fraction=0.25, target_latency_s=latency)
        sol = sc.solve_phinet(budget, (1, 49, 40), 12, betas=(1.0,), t0s=(4.0,), max_candidates=1,
                              alpha_step=0.05, alpha_refine=0.05)
        assert 0 < sol.costs.cycles <= budget.cycles
        assert "cycles" in sol.summary()
        sols.append(sol)
    assert sols[0].alpha < sols[1].alpha


def test_measured_solver_never_returns_a_network_that_does_not_fit():
    """End to end with the real cost module on the keyword input (small search space)."""
    budget = sc.Budget(flash_bytes=64 * 1024, ram_bytes=32 * 1024, macs=2e6)
    sol = sc.solve_phinet(budget, (1, 49, 40), 12, betas=(1.0,), t0s=(3.0,), max_candidates=1,
                          alpha_step=0.1, alpha_refine=0.1)
    from tinyml_helpers import cost

    measured = cost.measure(sol.build(), (1, 49, 40))
    assert measured.flash_bytes == sol.costs.flash_bytes <= budget.flash_bytes
    assert measured.peak_ram_bytes == sol.costs.peak_ram_bytes <= budget.ram_bytes
    assert measured.macs == sol.costs.macs <= budget.macs


def test_cost_grid_and_per_block_costs_agree_with_the_cost_module():
    from tinyml_helpers import cost

    rows = sc.cost_grid((1, 49, 40), 12, [0.25], [1.0], [2.0])
    assert len(rows) == 1 and rows[0]["cf_params"] > 0 and rows[0]["macs"] > 0
    parts = sc.per_block_costs((1, 49, 40), 0.25, 1.0, 2.0, num_layers=7, num_classes=12)
    model = build_phinet((1, 49, 40), 12, 0.25, 1.0, 2.0, 7)
    assert sum(p["macs"] for p in parts) == cost.count_macs(model, (1, 49, 40)) == rows[0]["macs"]
    assert sum(p["params"] for p in parts) == rows[0]["params"]
    with pytest.raises(ValueError, match="the grid is empty"):
        sc.cost_grid((1, 49, 40), 12, [], [1.0], [2.0])


def test_notebook_04_plots_and_widget(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyml_helpers import plots, widgets

    rows = []
    for a in (0.5, 1.0):
        for b in (1.0, 1.5):
            for t in (2.0, 4.0):
                c = fake_measure((1, 49, 40), 12, a, b, t, 7, True, "int8")
                cf = sc.closed_form_costs((1, 49, 40), a, b, t)
                rows.append(dict(alpha=a, beta=b, t0=t, cf_params=cf["params"], cf_macs=cf["macs"],
                                 cf_ram=cf["peak_ram_bytes"], **{k: v for k, v in c.as_dict().items() if k != "dtype"}))
    assert len(plots.plot_knob_effects(rows, dict(alpha=0.5, beta=1.0, t0=2.0))) == 3
    with pytest.raises(ValueError, match="no row at the base point"):
        plots.plot_knob_effects(rows, dict(alpha=0.7, beta=1.0, t0=2.0))
    assert len(plots.plot_closed_form_vs_measured(rows)) == 3
    parts = [dict(part="stem", cf_macs=0.0, macs=10, stride=None), dict(part="block 1", cf_macs=20.0, macs=12, stride=2)]
    assert plots.plot_per_block_costs(parts) is not None
    costs = fake_measure((1, 49, 40), 12, 0.5, 1.0, 4.0, 7, True, "int8")
    assert plots.plot_budget_use({"net": costs}, sc.Budget(1e6, 1e5, 1e7).limits()) is not None
    table = {"a": dict(accuracy=0.9, params=10, macs=100, peak_ram_bytes=5, flash_bytes=12)}
    assert len(plots.plot_model_comparison(table)) == 5
    plt.close("all")
    box = widgets.phinet_budget_explorer((1, 49, 40), 12, mcu="nRF52840",
                                         search=dict(betas=(1.0,), t0s=(4.0,), max_candidates=1,
                                                     measure=fake_measure))
    assert "PhiNet alpha=" in capsys.readouterr().out and box is not None
    text = widgets.describe_phinet_solution(sc.Budget(1e6, 10, 1e9), (1, 49, 40), 12, measure=fake_measure)
    assert text.startswith("No PhiNet fits. RAM binds")
    plt.close("all")


def test_knob_effects_panels_each_have_their_own_y_axis():
    # A shared y-axis let alpha's several-fold growth flatten the t0 and beta effects the text cites.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyml_helpers import plots

    rows = [dict(alpha=a, beta=b, t0=t, **{k: v for k, v in fake_measure((1, 49, 40), 12, a, b, t, 7, True, "int8")
                                          .as_dict().items() if k != "dtype"})
            for a in (0.5, 2.0) for b in (1.0, 1.5) for t in (2.0, 4.0)]
    axes = plots.plot_knob_effects(rows, dict(alpha=0.5, beta=1.0, t0=2.0))
    spans = [ax.get_ylim()[1] - ax.get_ylim()[0] for ax in axes]
    assert not any(ax.get_shared_y_axes().joined(axes[0], ax) for ax in axes[1:])
    assert spans[0] > 2 * min(spans[1:]), f"the y-axis of each panel should fit its own curves: {spans}"
    assert all(any(t.get_text().startswith("x") for t in ax.texts) for ax in axes), "curve ends carry their ratio"
    plt.close("all")


def test_patch_memory_model_lowers_ram_adds_macs_and_drives_the_solver():
    """memory_model="patch" (MCUNetV2 schedules, deploy.schedule) vs the default whole-tensor model."""
    shape = (3, 48, 48)
    whole = sc.measure_phinet(shape, 4, 0.5, 1.0, 4.0, num_layers=5, downsampling_layers=(5,))
    patch = sc.measure_with_patch_ram(shape, 4, 0.5, 1.0, 4.0, num_layers=5, downsampling_layers=(5,))
    assert patch.peak_ram_bytes < whole.peak_ram_bytes        # the early tensors no longer live whole
    assert whole.macs < patch.macs <= whole.macs * (1 + sc.MAX_PATCH_MAC_OVERHEAD)  # halos recomputed
    assert (patch.params, patch.flash_bytes) == (whole.params, whole.flash_bytes)
    # a RAM budget only the patch model meets: the default solver refuses, the patch one answers
    budget = sc.Budget(flash_bytes=1e6, ram_bytes=(patch.peak_ram_bytes + whole.peak_ram_bytes) // 2,
                       macs=patch.macs * 1.02)
    kw = dict(betas=(1.0,), t0s=(4.0,), num_layers=5, alpha_range=(0.45, 0.5), max_candidates=1)
    with pytest.raises(sc.InfeasibleBudgetError, match="RAM"):
        sc.solve_phinet(budget, shape, 4, **kw)
    sol = sc.solve_phinet(budget, shape, 4, memory_model="patch", **kw)
    assert sol.costs.peak_ram_bytes <= budget.ram_bytes and sol.costs.macs <= budget.macs
    with pytest.raises(ValueError, match="memory_model must be one of"):
        sc.solve_phinet(budget, shape, 4, memory_model="fused")
    with pytest.raises(ValueError, match="not both"):
        sc.solve_phinet(budget, shape, 4, memory_model="patch", measure=fake_measure)
