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
