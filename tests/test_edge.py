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


def test_compute_energy_and_latency():
    assert edge.energy_per_mac_j("nRF52840", macs_per_cycle=1.0) == pytest.approx(52e-12 * 3.0)
    assert edge.inference_energy_j(2e6, "nRF52840") == pytest.approx(2e6 * 52e-12 * 3.0 / 0.5)
    assert edge.inference_latency_s(64e6, "nRF52840", macs_per_cycle=1.0) == pytest.approx(1.0)
    assert edge.cloud_latency_s(125_000, "BLE", network_rtt_s=0.05, server_s=0.01) == pytest.approx(1.06)
    assert edge.macs_per_radio_byte("BLE") == pytest.approx(
        edge.RADIOS["BLE"].energy_per_byte_j / edge.energy_per_mac_j("nRF52840"))


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="sample_rate_hz must be positive"):
        edge.raw_data_rate(-16_000, 2)
    with pytest.raises(ValueError, match="channels"):
        edge.video_data_rate(96, 96, fps=10, channels=0)
    with pytest.raises(KeyError, match="unknown radio 'zigbee'.*BLE"):
        edge.airtime_s(10, "zigbee")
    with pytest.raises(ValueError, match="no datasheet run current.*nRF52840"):
        edge.energy_per_mac_j("STM32F746")
    with pytest.raises(ValueError, match="no clock"):
        edge.inference_latency_s(1e6, "seed example")
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
