"""Cloud-vs-edge arithmetic of notebook 00."""
from __future__ import annotations

import pytest

from tinyml_helpers import edge


def test_data_rates():
    assert edge.raw_data_rate(16_000, 2) == 32_000
    assert edge.video_data_rate(160, 120, fps=15, channels=3) == 160 * 120 * 3 * 15
    assert edge.event_data_rate(60, 16) == pytest.approx(16 / 60)


def test_radio_energy_per_byte():
    ble = edge.RADIOS["BLE"]
    assert ble.energy_per_byte_j == pytest.approx(4.8e-3 * 3.0 * 8 / 1e6)
    assert edge.RADIOS["LoRa"].energy_per_byte_j > 1000 * ble.energy_per_byte_j
    assert edge.transmit_energy_j(0, "BLE") == 0
    assert edge.airtime_s(5469 / 8, "LoRa") == pytest.approx(1.0)
    for radio in edge.RADIOS.values():
        assert radio.source


def test_compute_energy_and_latency_come_from_cycles():
    per_cycle = 52e-12 * 3.0   # nRF52840: 52 uA/MHz at 3 V
    assert edge.energy_per_cycle_j("nRF52840") == pytest.approx(per_cycle)
    assert edge.energy_per_mac_j(2.5, "nRF52840") == pytest.approx(2.5 * per_cycle)
    assert edge.inference_energy_j(2e6, "nRF52840") == pytest.approx(2e6 * per_cycle)
    assert edge.inference_latency_s(64e6, "nRF52840") == pytest.approx(1.0)
    assert edge.cloud_latency_s(125_000, "BLE", network_rtt_s=0.05, server_s=0.01) == pytest.approx(1.06)
    assert edge.cycles_per_radio_byte("BLE") == pytest.approx(edge.RADIOS["BLE"].energy_per_byte_j / per_cycle)
    assert edge.macs_per_radio_byte("BLE", 2.0) == pytest.approx(edge.cycles_per_radio_byte("BLE") / 2.0)


def test_network_cycles_use_the_measured_kernel_costs_not_a_flat_mac_rate():
    # Regression (#15): edge assumed 0.5 MAC/cycle for every network; notebook 00's latency and
    # energy must come from the kernel cost table notebook 06's cycle model was fitted to.
    import inspect

    from tinyml_helpers import cost
    from tinyml_helpers.deploy import kernel_costs
    from tinyml_helpers.models.dscnn import DSCNN

    assert "macs_per_cycle" not in inspect.getsource(edge)
    net = DSCNN().eval()
    est = edge.network_cycles(net, (1, 49, 10))
    assert est.cycles == pytest.approx(kernel_costs.predict_cycles(kernel_costs.torch_layer_costs(net, (1, 49, 10))))
    assert est.macs == cost.count_macs(net, (1, 49, 10))
    assert 1.5 < est.cycles_per_mac < 3.5 and est.cycles_per_mac != pytest.approx(2.0, abs=0.05)
    assert "kernel_costs.json" in est.source
    assert edge.inference_latency_s(est.cycles, "nRF52840") == pytest.approx(est.cycles / 64e6)


def test_listening_counts_the_measured_front_end():
    # Regression (#14): the front end's energy was a hook set to 0, so the edge looked cheaper.
    from tinyml_helpers.deploy.frontend_costs import load_frontend_costs

    fe = load_frontend_costs()
    expected = fe["frontend_cycles_per_frame"] * 50 * edge.energy_per_cycle_j("nRF52840")
    assert edge.frontend_power_w("nRF52840") == pytest.approx(expected)
    assert not hasattr(edge, "FRONTEND_J_PER_WINDOW")
    p = edge.listening_power_w(2e6, hop_s=0.25)
    assert p["frontend"] == pytest.approx(expected) and expected > 0
    assert p["total"] == pytest.approx(p["inference"] + p["frontend"])
    upper = edge.listening_power_w(2e6, hop_s=0.25, margin=0.15)
    assert upper["total"] == pytest.approx(1.15 * p["total"])
    # break-even: inference energy / (streaming power - front-end power)
    stream = 3.0 * expected
    hop = edge.break_even_hop_s(2e6, stream)
    assert edge.listening_power_w(2e6, hop)["total"] == pytest.approx(stream)
    assert edge.break_even_hop_s(2e6, 0.5 * expected) == float("inf")   # the front end alone costs more


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="sample_rate_hz must be positive"):
        edge.raw_data_rate(-16_000, 2)
    with pytest.raises(ValueError, match="channels"):
        edge.video_data_rate(96, 96, fps=10, channels=0)
    with pytest.raises(KeyError, match="unknown radio 'zigbee'.*BLE"):
        edge.airtime_s(10, "zigbee")
    with pytest.raises(ValueError, match="no datasheet run current.*nRF52840"):
        edge.energy_per_cycle_j("STM32F746")
    with pytest.raises(ValueError, match="no clock"):
        edge.inference_latency_s(1e6, "seed example")
    with pytest.raises(ValueError, match="cycles_per_mac must be positive"):
        edge.energy_per_mac_j(0.0)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        edge.listening_power_w(1e6, 0.25, margin=-0.1)
    with pytest.raises(TypeError, match="must be a number"):
        edge.event_data_rate("many", 8)


# ---------------------------------------------------------------- notebook 00 presentation and checks

def test_notebook00_checks_explain_common_mistakes(capsys):
    from tinyml_helpers.checks.cost import check_audio_rate, check_conv_macs, check_int8_flash

    assert check_audio_rate(lambda sr, bits, channels=1: sr * bits / 8 * channels)
    assert not check_audio_rate(lambda sr, bits, channels=1: sr * bits * channels)
    assert "bits per second" in capsys.readouterr().out
    assert check_conv_macs(lambda ci, co, k, o, groups=1: o[0] * o[1] * co * ci // groups * k[0] * k[1])
    assert not check_conv_macs(lambda ci, co, k, o, groups=1: o[0] * o[1] * co * ci * k[0] * k[1])
    assert "c_in / groups" in capsys.readouterr().out
    assert not check_conv_macs(lambda ci, co, k, o, groups=1: o[0] * o[1] * co * (ci // groups * k[0] * k[1] + 1))
    assert "bias" in capsys.readouterr().out
    assert not check_int8_flash(lambda ci, co, k, groups=1: co * ci // groups * k[0] * k[1] + co)
    assert "int32" in capsys.readouterr().out
    assert not check_int8_flash(lambda ci, co, k, groups=1: None)
    assert "not attempted" in capsys.readouterr().out


def test_notebook00_checks_raise_when_solutions_are_expected(monkeypatch):
    from tinyml_helpers.checks import ExerciseNotSolved
    from tinyml_helpers.checks.cost import check_conv_macs

    monkeypatch.setenv("TINYML_EXPECT_SOLVED", "1")
    with pytest.raises(ExerciseNotSolved, match="00.conv_macs"):
        check_conv_macs(lambda *a, **k: None)


def test_notebook00_plots_and_widget(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyml_helpers import cost, plots, widgets

    costs = [cost.ModelCost(10, 2_000_000, 30_000, 16_000, name="small"),
             cost.ModelCost(10, 90_000_000, 3_000_000, 900_000, name="big")]
    plots.plot_data_rates({"audio": 32_000, "events": 0.27}, {"LoRa": 683.6})
    plots.plot_energy_per_byte_vs_mac({"BLE": 1.15e-7}, 3.1e-10, "nRF52840")
    plots.plot_mcus_vs_models(list(cost.MCU_CATALOG.values()), costs, {m: cost.mac_budget(m) for m in cost.mcu_names()})
    plots.plot_fit_fractions([cost.fits(c, "RP2040") for c in costs])
    plots.plot_live_memory({"toy": [400, 500, 210]})
    plt.close("all")
    table = widgets.describe_fits(costs, "seed example")
    assert "small" in table and "NO" in table
    box = widgets.mcu_fit_explorer(costs, "stm32f746")
    assert box.children[0].value == "STM32F746"
    assert "STM32F746" in capsys.readouterr().out
    box.children[0].value = "RP2040"  # the dropdown re-renders without error
    plt.close("all")
    with pytest.raises(KeyError, match="unknown MCU"):
        widgets.mcu_fit_explorer(costs, "z80")
