"""Cloud versus edge, in numbers: data rates, radio energy per byte, compute energy per MAC,
and latency (notebook 00).

Everything here is arithmetic on stated figures. Radio figures come from datasheets and
are *on-air* costs: transmit current x supply voltage x time on air at the PHY bit rate.
Real links add headers, acknowledgements, connection events, retries and wake-up time,
so the true energy per useful byte is higher: these are lower bounds for the cloud side.

Compute energy is **cycles x energy per cycle**: the MCU's datasheet run current times its
supply voltage per clock cycle (see :mod:`tinyml_helpers.cost.mcus`), times cycles that
come from measurements, not from an assumed MACs per cycle:

* a network's cycles are predicted from the kernel cost table (``deploy/kernel_costs.json``:
  cycles per MAC, per output, per layer of each layer kind, fitted to the course firmware's
  layers on the emulated Cortex-M4 with its cycle model, :mod:`tinyml_helpers.deploy.timing`)
  by :func:`network_cycles`, the same table the PhiNet solver budgets with, so notebook 00's
  figures agree with notebook 06's cycle model (within the table's fit error);
* the keyword spotter's on-chip log-mel front end runs every 20 ms
  (``deploy/frontend_costs.json``, measured on the emulated chip:
  :mod:`tinyml_helpers.deploy.frontend_costs`), see :func:`frontend_power_w`.

Both were measured without flash wait states (the nRF52840's catalog figure) and leave out
what the cycle model leaves out (``deploy.timing.MODEL_MARGIN``); idle and sleep currents,
the microphone and the radio's connection overhead are left out on both sides.

Radios (``RADIOS``):

* **BLE 1 Mbps** on the nRF52840: 4.8 mA radio TX at 0 dBm, 3 V, DC/DC (Nordic nRF52840
  Product Specification, radio current consumption).
* **LoRa SF7 / 125 kHz** on the Semtech SX1276: 29 mA transmit at +13 dBm (RFO pin), 3.3 V;
  5469 bit/s nominal LoRa bit rate at SF7, 125 kHz bandwidth (Semtech SX1276/77/78/79
  datasheet, power consumption and LoRa modem bit-rate tables).
* **Wi-Fi 802.11n MCS7, 20 MHz** on an ESP32-S2-WROOM module: 135 mA average TX at 3.3 V
  (Espressif ESP32-S2-WROOM datasheet v1.1, Table 7 "Current consumption depending on RF
  modes"; the datasheet measures it at a 50 % transmit duty cycle, with a 200 mA peak, so
  this understates the current while the radio transmits: one more reason it is a lower
  bound); 65 Mbit/s PHY rate of MCS7 at 20 MHz with the 800 ns guard interval (IEEE
  802.11n-2009 modulation and coding scheme table).

Example:
    >>> raw_data_rate(16_000, 2)      # 16 kHz, 16-bit mono audio
    32000.0
    >>> round(RADIOS["BLE"].energy_per_byte_j * 1e9, 1)   # nJ per byte on air
    115.2
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

from .cost.mcus import MCU, get_mcu
from .deploy.frontend_costs import load_frontend_costs
from .deploy.kernel_costs import load_cost_table, predict_cycles, torch_layer_costs

__all__ = [
    "RadioLink",
    "RADIOS",
    "raw_data_rate",
    "video_data_rate",
    "event_data_rate",
    "airtime_s",
    "transmit_energy_j",
    "energy_per_cycle_j",
    "energy_per_mac_j",
    "NetworkCycles",
    "network_cycles",
    "frontend_power_w",
    "cycles_per_radio_byte",
    "inference_energy_j",
    "inference_latency_s",
    "cloud_latency_s",
    "macs_per_radio_byte",
    "listening_power_w",
    "break_even_hop_s",
    "frame_budget",
    "DEFAULT_NETWORK_RTT_S",
]

# Assumption, not a measurement: a typical internet round trip from a gateway to a cloud
# region and back; change it to see how much it matters.
DEFAULT_NETWORK_RTT_S = 0.1

def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    # numbers.Real: NumPy scalars (np.float32, np.int64 from an array) are numbers too.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got {value}")
    return float(value)


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RadioLink:
    """A radio's transmit current, supply voltage and PHY bit rate, with the source."""

    name: str
    tx_current_a: float
    supply_v: float
    bit_rate_bps: float
    source: str

    @property
    def tx_power_w(self) -> float:
        """Electrical power drawn while transmitting (W)."""
        return self.tx_current_a * self.supply_v

    @property
    def bytes_per_second(self) -> float:
        """Raw PHY capacity in bytes per second (an upper bound on useful throughput)."""
        return self.bit_rate_bps / 8

    @property
    def energy_per_byte_j(self) -> float:
        """On-air energy per byte (J): TX power x 8 bits / bit rate (a lower bound)."""
        return self.tx_power_w * 8 / self.bit_rate_bps


RADIOS: dict[str, RadioLink] = {
    "BLE": RadioLink("BLE 1 Mbps (nRF52840, 0 dBm)", tx_current_a=4.8e-3, supply_v=3.0, bit_rate_bps=1e6,
                     source="Nordic nRF52840 Product Specification: TX 0 dBm 4.8 mA (DC/DC, 3 V); BLE 1 Mbps PHY"),
    "LoRa": RadioLink("LoRa SF7/125 kHz (SX1276, +13 dBm)", tx_current_a=29e-3, supply_v=3.3, bit_rate_bps=5469,
                      source="Semtech SX1276 datasheet: TX +13 dBm 29 mA; SF7, 125 kHz: 5469 bit/s"),
    "Wi-Fi": RadioLink("Wi-Fi 802.11n MCS7 (ESP32-S2-WROOM)", tx_current_a=135e-3, supply_v=3.3, bit_rate_bps=65e6,
                       source="Espressif ESP32-S2-WROOM datasheet v1.1 Table 7: 802.11n HT20 MCS7 TX 135 mA avg "
                              "at 3.3 V; IEEE 802.11n MCS7 HT20 = 65 Mbit/s"),
}


def raw_data_rate(sample_rate_hz: float, bytes_per_sample: float, channels: int = 1) -> float:
    """Bytes per second of an uncompressed sampled signal.

    Example:
        >>> raw_data_rate(16_000, 2, channels=2)
        64000.0
    """
    rate = _positive("sample_rate_hz", sample_rate_hz)
    size = _positive("bytes_per_sample", bytes_per_sample)
    return rate * size * _count("channels", channels)


def video_data_rate(width: int, height: int, fps: float, channels: int = 3, bytes_per_value: int = 1) -> float:
    """Bytes per second of uncompressed video (``width x height x channels x fps``).

    Example:
        >>> video_data_rate(96, 96, fps=10, channels=1)   # a 96x96 grayscale sensor at 10 fps
        92160.0
    """
    values = [_count(key, value) for key, value in (("width", width), ("height", height),
                                                    ("channels", channels), ("bytes_per_value", bytes_per_value))]
    return float(math.prod(values)) * _positive("fps", fps)


def event_data_rate(events_per_hour: float, bytes_per_event: float) -> float:
    """Average bytes per second when the device only reports events.

    Example:
        >>> event_data_rate(3600, 8)
        8.0
    """
    _positive("events_per_hour", events_per_hour, allow_zero=True)
    _positive("bytes_per_event", bytes_per_event)
    return events_per_hour * bytes_per_event / 3600.0


def _radio(radio: str | RadioLink) -> RadioLink:
    if isinstance(radio, RadioLink):
        return radio
    if radio in RADIOS:
        return RADIOS[radio]
    raise KeyError(f"unknown radio {radio!r}; known radios: {', '.join(RADIOS)}")


def airtime_s(nbytes: float, radio: str | RadioLink) -> float:
    """Seconds on air to send ``nbytes`` at the radio's PHY bit rate (no protocol overhead).

    Example:
        >>> airtime_s(125_000, "BLE")
        1.0
    """
    _positive("nbytes", nbytes, allow_zero=True)
    return nbytes * 8 / _radio(radio).bit_rate_bps


def transmit_energy_j(nbytes: float, radio: str | RadioLink) -> float:
    """On-air energy (J) to send ``nbytes`` (a lower bound: no headers, no retries).

    Example:
        >>> round(transmit_energy_j(1000, "BLE") * 1e6, 1)   # uJ for 1 kB over BLE
        115.2
    """
    _positive("nbytes", nbytes, allow_zero=True)
    return nbytes * _radio(radio).energy_per_byte_j


def energy_per_cycle_j(mcu: str | MCU = "nRF52840") -> float:
    """Energy (J) of one clock cycle of a busy core: datasheet run current per MHz x supply voltage.

    Example:
        >>> round(energy_per_cycle_j("nRF52840") * 1e12)    # pJ: 52 uA/MHz x 3 V
        156
    """
    m = get_mcu(mcu)
    per_cycle = m.energy_per_cycle_j()
    if per_cycle is None:
        with_figures = [x.name for x in _catalog_with_energy()]
        raise ValueError(f"{m.name} has no datasheet run current in the catalog; use one of {with_figures}")
    return per_cycle


def _catalog_with_energy() -> list[MCU]:
    from .cost.mcus import MCU_CATALOG

    return [m for m in MCU_CATALOG.values() if m.energy_per_cycle_j() is not None]


def _clock_hz(mcu: str | MCU) -> float:
    m = get_mcu(mcu)
    if m.clock_hz is None:
        raise ValueError(f"{m.name} has no clock frequency in its source; pick a catalog MCU with a clock")
    return float(m.clock_hz)


def energy_per_mac_j(cycles_per_mac: float, mcu: str | MCU = "nRF52840") -> float:
    """Energy (J) of one int8 MAC that takes ``cycles_per_mac`` cycles (measured: e.g.
    :attr:`NetworkCycles.cycles_per_mac`; no default, because it depends on the layers).

    Example:
        >>> round(energy_per_mac_j(2.0, "nRF52840") * 1e12)    # pJ at 2 cycles per MAC
        312
    """
    return _positive("cycles_per_mac", cycles_per_mac) * energy_per_cycle_j(mcu)


# Layer kinds whose "MACs" in the cost table are multiply-accumulates; the others (residual
# add, average pool, ...) count element operations there, which MAC counts leave out.
_MAC_KINDS = ("conv1x1", "conv1x1c1", "conv", "dw3x3s1", "dw3x3s2", "dwconv", "dense")


@dataclass(frozen=True)
class NetworkCycles:
    """Predicted cycles of one inference of a network on the course firmware, with its MACs."""

    cycles: float
    macs: int
    source: str

    @property
    def cycles_per_mac(self) -> float:
        """Cycles per MAC of the whole network (element-wise layers included in the cycles)."""
        return self.cycles / self.macs if self.macs else float("nan")


def network_cycles(model: Any, input_shape: Sequence[int], table: dict[str, Any] | None = None) -> NetworkCycles:
    """Cycles of one inference of a PyTorch model on the emulated Cortex-M4, predicted from the
    measured kernel cost table (``deploy.kernel_costs``; no emulator run, milliseconds).

    This is the estimate the PhiNet solver budgets with; notebook 06 measures the deployed
    networks on the emulator, and the table's fit agrees with them to a few percent.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1), torch.nn.ReLU())
        >>> est = network_cycles(net, (8, 10, 10))
        >>> est.macs, est.cycles > est.macs
        (12800, True)
    """
    table = table if table is not None else load_cost_table()
    rows = torch_layer_costs(model, input_shape)
    macs = sum(r.macs for r in rows if r.kind in _MAC_KINDS)
    return NetworkCycles(cycles=float(predict_cycles(rows, table)), macs=int(macs),
                         source="kernel cost table, deploy/kernel_costs.json: " + table.get("timing", "timing model"))


def frontend_power_w(mcu: str | MCU = "nRF52840", costs: dict[str, Any] | None = None) -> float:
    """Average power (W) of the keyword spotter's on-chip log-mel front end: one 20 ms frame's
    **measured** cycles (``deploy/frontend_costs.json``) x frames per second x energy per cycle.

    The cycles were measured with the nRF52840's timing (no flash wait states); on a chip with
    wait states they would be higher.

    Example:
        >>> round(frontend_power_w("nRF52840", {"frontend_cycles_per_frame": 64_000, "frame_hop_samples": 320,
        ...                                     "sample_rate": 16_000}) * 1e3, 3)   # 50 frames/s x 10 ms of CPU
        0.499
    """
    costs = costs if costs is not None else load_frontend_costs()
    frames_per_s = costs["sample_rate"] / costs["frame_hop_samples"]
    return costs["frontend_cycles_per_frame"] * frames_per_s * energy_per_cycle_j(mcu)


def cycles_per_radio_byte(radio: str | RadioLink, mcu: str | MCU = "nRF52840") -> float:
    """How many CPU cycles cost as much energy as sending one byte over ``radio``.

    Example:
        >>> round(cycles_per_radio_byte("BLE"))    # 115.2 nJ / 156 pJ
        738
    """
    return _radio(radio).energy_per_byte_j / energy_per_cycle_j(mcu)


def inference_energy_j(cycles: float, mcu: str | MCU = "nRF52840") -> float:
    """Compute energy (J) of one inference of ``cycles`` cycles (e.g. :func:`network_cycles`).

    Example:
        >>> round(inference_energy_j(1_000_000, "nRF52840") * 1e6, 1)   # uJ per million cycles
        156.0
    """
    return _positive("cycles", cycles, allow_zero=True) * energy_per_cycle_j(mcu)


def inference_latency_s(cycles: float, mcu: str | MCU) -> float:
    """Seconds for ``cycles`` cycles on one core at the MCU's catalog clock.

    Example:
        >>> inference_latency_s(32_000_000, "nRF52840")    # at 64 MHz
        0.5
    """
    return _positive("cycles", cycles, allow_zero=True) / _clock_hz(mcu)


def cloud_latency_s(payload_bytes: float, radio: str | RadioLink, network_rtt_s: float = DEFAULT_NETWORK_RTT_S,
                    server_s: float = 0.0) -> float:
    """Time from "data captured" to "answer back": uplink air time + network round trip +
    server compute (the short downlink answer is neglected).

    Example:
        >>> round(cloud_latency_s(32_000, "BLE", network_rtt_s=0.1), 3)   # 1 s of audio over BLE
        0.356
    """
    _positive("network_rtt_s", network_rtt_s, allow_zero=True)
    _positive("server_s", server_s, allow_zero=True)
    return airtime_s(payload_bytes, radio) + network_rtt_s + server_s


def macs_per_radio_byte(radio: str | RadioLink, cycles_per_mac: float, mcu: str | MCU = "nRF52840") -> float:
    """How many MACs, at ``cycles_per_mac`` (measured), cost as much energy as one radio byte.

    Example:
        >>> round(macs_per_radio_byte("BLE", cycles_per_mac=2.0))
        369
    """
    return _radio(radio).energy_per_byte_j / energy_per_mac_j(cycles_per_mac, mcu)


def _frontend_w(frontend_w: float | None, mcu: str | MCU) -> float:
    return frontend_power_w(mcu) if frontend_w is None else _positive("frontend_w", frontend_w, allow_zero=True)


def listening_power_w(inference_cycles: float, hop_s: float, mcu: str | MCU = "nRF52840",
                      frontend_w: float | None = None, events_per_hour: float = 0.0, event_bytes: float = 16,
                      radio: str | RadioLink = "BLE", margin: float = 0.0) -> dict[str, float]:
    """Average power (W = J/s) of a node that computes features every 20 ms, classifies a window
    every ``hop_s`` seconds and sends only events, split into ``inference``, ``frontend``,
    ``radio`` and ``total``.

    A keyword spotter does not classify once per second: it slides a 1 s window every hop
    (notebook 06 uses 250 ms, i.e. 4 inferences per second), so its compute power is
    energy per inference / hop. ``frontend_w`` None = the measured on-chip front end
    (:func:`frontend_power_w`); 0 leaves it out. ``margin`` scales the compute cycles up for
    what the cycle model leaves out (``deploy.timing.MODEL_MARGIN`` for an upper bound).
    Idle and sleep currents are left out.

    Example:
        >>> p = listening_power_w(2_000_000, hop_s=0.25, frontend_w=0.0)   # 2 M cycles, 4 inferences/s
        >>> round(p["inference"] * 1e3, 2), p["frontend"]
        (1.25, 0.0)
    """
    _positive("hop_s", hop_s)
    scale = 1.0 + _positive("margin", margin, allow_zero=True)
    inference = inference_energy_j(inference_cycles, mcu) * scale / hop_s
    frontend = _frontend_w(frontend_w, mcu) * scale
    radio_w = transmit_energy_j(event_data_rate(events_per_hour, event_bytes), radio) if events_per_hour else 0.0
    return {"inference": inference, "frontend": frontend, "radio": radio_w,
            "total": inference + frontend + radio_w}


def break_even_hop_s(inference_cycles: float, stream_power_w: float, mcu: str | MCU = "nRF52840",
                     frontend_w: float | None = None) -> float:
    """The hop (s) at which classifying on the node (front end + one inference per hop) costs as
    much power as streaming the raw signal (``stream_power_w``): shorter hops make the edge the
    more expensive side. ``inf`` when the front end alone costs as much as streaming.

    Example:
        >>> round(break_even_hop_s(2_000_000, stream_power_w=0.001, frontend_w=0.0), 3)   # 312 uJ vs 1 mW
        0.312
    """
    _positive("stream_power_w", stream_power_w)
    spare = stream_power_w - _frontend_w(frontend_w, mcu)
    if spare <= 0:
        return math.inf
    return inference_energy_j(inference_cycles, mcu) / spare


def frame_budget(params: float, macs: float, joules_per_frame: float, fps: float) -> dict[str, float]:
    """What a vision model's published figures imply: average power, int8 weight bytes,
    energy per MAC and MACs per second (the whole board's energy, spread over the MACs).

    Example:
        >>> b = frame_budget(params=984_000, macs=62e6, joules_per_frame=28e-3, fps=9)
        >>> round(b["power_w"], 3), int(b["int8_weight_bytes"]), round(b["j_per_mac"] * 1e9, 2)
        (0.252, 984000, 0.45)
    """
    for name, value in (("params", params), ("macs", macs), ("joules_per_frame", joules_per_frame), ("fps", fps)):
        _positive(name, value)
    return {"power_w": joules_per_frame * fps, "int8_weight_bytes": float(params),
            "j_per_mac": joules_per_frame / macs, "macs_per_second": macs * fps}
