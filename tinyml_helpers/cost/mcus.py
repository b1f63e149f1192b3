"""A small catalog of microcontrollers with datasheet figures, and "does my model fit?".

Each entry gives on-chip (or, where stated, on-board) flash, SRAM, maximum core clock and
core, with the datasheet it comes from. ``KB``/``MB`` follow the datasheets' binary
convention (1 KB = 1024 bytes). The seed deck's example MCU (1 MB flash, 392 KB RAM,
63 M MACs per inference) is included under ``"seed example"`` with exactly those figures.

**MAC budgets are not datasheet figures.** A MAC budget per inference depends on the
kernels and on how long an inference may take. For the real chips we derive it, in the
open, as ``clock_hz x assumed MACs per cycle x target latency`` (:func:`mac_budget`).
The assumed MACs per cycle of int8 convolution kernels (``ASSUMED_MACS_PER_CYCLE``) are
round, order-of-magnitude figures chosen for this course, not measurements: Cortex-M4/M7
have 2-way 16-bit SIMD multiply-accumulate instructions (``SMLAD``; Arm Cortex-M4/M7
Technical Reference Manuals) that CMSIS-NN builds on (Lai, Suda, Chandra, "CMSIS-NN:
Efficient Neural Network Kernels for Arm Cortex-M CPUs", arXiv:1801.06601, 2018), and the
M7 dual-issues; the M0+ has neither. Replace them with the throughput you measure: for a
Cortex-M4 with a target latency, ``scaling.Budget.from_mcu`` does, budgeting cycles against the
course firmware's measured kernel costs (``deploy.kernel_costs``) instead.

``flash_wait_states`` (with ``flash_source``) is the number of cycles a flash read stalls the
core at the catalog clock; the emulator's timing model (``deploy.timing``) charges it on data
loads from flash.

Where the datasheet states a run-mode current, ``run_current_ua_per_mhz`` and
``supply_v`` give an energy-per-cycle estimate (:meth:`MCU.energy_per_cycle_j`).

Example:
    >>> get_mcu("nrf52840").sram_bytes // 1024
    256
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MCU",
    "MCU_CATALOG",
    "ASSUMED_MACS_PER_CYCLE",
    "DEFAULT_TARGET_LATENCY_S",
    "get_mcu",
    "mcu_names",
    "mac_budget",
]

KB = 1024
MB = 1024 * 1024

# int8 conv MACs per core clock cycle: course ASSUMPTIONS (see module docstring).
ASSUMED_MACS_PER_CYCLE = {
    "Cortex-M7": 1.0,
    "Cortex-M4": 0.5,
    "Cortex-M4F": 0.5,
    "Cortex-M0+": 0.125,
    "Xtensa LX7": 0.5,
}
DEFAULT_TARGET_LATENCY_S = 0.5


@dataclass(frozen=True)
class MCU:
    """One microcontroller: memories, clock, core, citation, optional energy figures.

    ``mac_budget_per_inference`` is set only when a source gives it (the seed example);
    otherwise :func:`mac_budget` derives one.
    """

    name: str
    core: str
    flash_bytes: int
    sram_bytes: int
    clock_hz: float | None
    source: str
    cores: int = 1
    notes: str = ""
    mac_budget_per_inference: int | None = None
    run_current_ua_per_mhz: float | None = None
    supply_v: float | None = None
    energy_source: str = ""
    # Flash wait states at clock_hz (cycles a flash read stalls the core); None = not given.
    flash_wait_states: int | None = None
    flash_source: str = ""

    def __post_init__(self) -> None:
        for key in ("flash_bytes", "sram_bytes"):
            value = getattr(self, key)
            if value is None or value <= 0:
                raise ValueError(f"MCU {self.name!r}: {key} must be positive, got {value!r}")
        if self.flash_wait_states is not None and (not isinstance(self.flash_wait_states, int)
                                                   or self.flash_wait_states < 0):
            raise ValueError(f"MCU {self.name!r}: flash_wait_states must be a non-negative int or None, "
                             f"got {self.flash_wait_states!r}")
        if self.clock_hz is not None and self.clock_hz <= 0:
            raise ValueError(f"MCU {self.name!r}: clock_hz must be positive or None, got {self.clock_hz!r}")

    @property
    def macs_per_cycle(self) -> float:
        """The course's assumed int8 conv MACs per cycle for this core (one core)."""
        return ASSUMED_MACS_PER_CYCLE.get(self.core, 0.25)

    def energy_per_cycle_j(self) -> float | None:
        """Joules per core clock cycle from the datasheet run current (None if not given).

        ``uA/MHz`` is charge per cycle (1 uA/MHz = 1 pC per cycle); times the supply voltage
        it is energy per cycle.
        """
        if self.run_current_ua_per_mhz is None or self.supply_v is None:
            return None
        return self.run_current_ua_per_mhz * 1e-12 * self.supply_v

    def summary(self) -> str:
        """One line: name, core, flash, SRAM, clock."""
        clock = f"{self.clock_hz / 1e6:.0f} MHz" if self.clock_hz else "clock not given"
        return (f"{self.name}: {self.cores}x {self.core} @ {clock}, "
                f"flash {self.flash_bytes / KB:,.0f} KB, SRAM {self.sram_bytes / KB:,.0f} KB")


_CATALOG = [
    MCU("seed example", core="unspecified", flash_bytes=1 * MB, sram_bytes=392 * KB, clock_hz=None,
        mac_budget_per_inference=63_000_000,
        source="Workshop deck (the seed), slide 'MCU specs': Flash 1 MB, RAM 392 KB, MACC 63 M "
               "(PhiNet alpha 1.0, beta 0.66, t0 4 was scaled for it)",
        notes="The deck gives no part number, core or clock; its MAC budget is the deck's own 63 M."),
    MCU("STM32F746", core="Cortex-M7", flash_bytes=1 * MB, sram_bytes=320 * KB, clock_hz=216e6,
        source="ST DS10916 STM32F745xx/STM32F746xx datasheet: up to 1 MB flash, 320 KB RAM "
               "(incl. 64 KB DTCM) + 16 KB ITCM + 4 KB backup SRAM, Cortex-M7 up to 216 MHz",
        flash_wait_states=7,
        flash_source="ST RM0385 (STM32F75xxx/74xxx reference manual), flash access latency: 7 wait states "
                     "at 210-216 MHz, 2.7-3.6 V; the ART accelerator and L1 caches hide most of them",
        notes="MLPerf Tiny reference board (NUCLEO/DISCO-F746)."),
    MCU("STM32H743", core="Cortex-M7", flash_bytes=2 * MB, sram_bytes=1 * MB, clock_hz=480e6,
        source="ST DS12110 STM32H742/743/753 datasheet: up to 2 MB flash, 1 MB RAM "
               "(192 KB TCM + 864 KB user SRAM, 4 KB backup), Cortex-M7 up to 480 MHz",
        notes="The 1 MB is spread over several RAM blocks; one arena must fit in one block "
              "(the largest AXI SRAM block is 512 KB)."),
    MCU("STM32L4R5", core="Cortex-M4F", flash_bytes=2 * MB, sram_bytes=640 * KB, clock_hz=120e6,
        source="ST DS12023 STM32L4R5xx/L4R7xx/L4R9xx datasheet: 2 MB flash, 640 KB SRAM, "
               "Cortex-M4 with FPU up to 120 MHz",
        flash_wait_states=5,
        flash_source="ST RM0432 (STM32L4+ reference manual), flash read access latency: 5 wait states "
                     "at 120 MHz in range 1 boost mode; the ART accelerator's prefetch and caches hide "
                     "most of them for code",
        notes="Ultra-low-power line; MLPerf Tiny's NUCLEO-L4R5ZI reference board."),
    MCU("nRF52840", core="Cortex-M4F", flash_bytes=1 * MB, sram_bytes=256 * KB, clock_hz=64e6,
        run_current_ua_per_mhz=52.0, supply_v=3.0,
        source="Nordic nRF52840 Product Specification v1.x: 1 MB flash, 256 KB RAM, "
               "Cortex-M4F at 64 MHz, BLE 5 radio",
        energy_source="nRF52840 Product Specification: 52 uA/MHz running CoreMark from flash "
                      "(DC/DC regulator, 3 V supply)",
        flash_wait_states=0,
        flash_source="ASSUMPTION: the nRF52840 Product Specification gives no flash wait-state figure "
                     "for the CPU at 64 MHz (its NVMC instruction cache reduces wait cycles for code); "
                     "the timing model's margin covers data loads that stall",
        notes="BLE SoC: radio and CPU on one die."),
    MCU("RP2040", core="Cortex-M0+", cores=2, flash_bytes=2 * MB, sram_bytes=264 * KB, clock_hz=133e6,
        source="Raspberry Pi RP2040 datasheet: dual Cortex-M0+ up to 133 MHz, 264 KB on-chip SRAM, "
               "no internal flash (external QSPI); Raspberry Pi Pico datasheet: 2 MB QSPI flash on board",
        notes="Flash is the Pico board's external 2 MB chip (executed in place through a cache)."),
    MCU("ESP32-S3", core="Xtensa LX7", cores=2, flash_bytes=8 * MB, sram_bytes=512 * KB, clock_hz=240e6,
        source="Espressif ESP32-S3 Series datasheet: dual-core Xtensa LX7 up to 240 MHz, 512 KB SRAM, "
               "external flash; ESP32-S3-WROOM-1 module datasheet: N8 variant with 8 MB flash",
        notes="Flash assumed 8 MB (ESP32-S3-WROOM-1-N8 module); optional PSRAM not counted as RAM."),
]

MCU_CATALOG: dict[str, MCU] = {m.name: m for m in _CATALOG}


def mcu_names() -> list[str]:
    """Names of the catalog's MCUs, in catalog order.

    Example:
        >>> mcu_names()[0]
        'seed example'
    """
    return list(MCU_CATALOG)


def get_mcu(name: str | MCU) -> MCU:
    """Look up an MCU by name, case-insensitively (an :class:`MCU` is returned as is).

    Example:
        >>> get_mcu("stm32f746").clock_hz
        216000000.0
    """
    if isinstance(name, MCU):
        return name
    if not isinstance(name, str):
        raise TypeError(f"MCU name must be a string, got {type(name).__name__}")
    wanted = name.strip().lower().replace("_", " ").replace("-", "")
    for key, mcu in MCU_CATALOG.items():
        if key.lower().replace("-", "") == wanted:
            return mcu
    raise KeyError(f"unknown MCU {name!r}; known MCUs: {', '.join(MCU_CATALOG)}")


def mac_budget(mcu: str | MCU, target_latency_s: float | None = None,
               macs_per_cycle: float | None = None, use_cores: int = 1) -> int:
    """MACs per inference an MCU can afford: the source's figure, or a derived one.

    If the catalog entry carries a published budget (the seed example) and no override is
    given, that figure is returned. Otherwise: ``clock_hz x macs_per_cycle x
    target_latency_s x use_cores`` with the course's assumed MACs/cycle for the core and
    ``DEFAULT_TARGET_LATENCY_S`` (0.5 s) as defaults.

    Example:
        >>> mac_budget("seed example")
        63000000
        >>> mac_budget("STM32F746", target_latency_s=0.1, macs_per_cycle=1.0)
        21600000
    """
    m = get_mcu(mcu)
    if m.mac_budget_per_inference is not None and target_latency_s is None and macs_per_cycle is None:
        return int(m.mac_budget_per_inference)
    if m.clock_hz is None:
        raise ValueError(f"{m.name} has no clock frequency in its source, so no MAC budget can be derived; "
                         "pass mac_budget explicitly or use its published budget")
    latency = DEFAULT_TARGET_LATENCY_S if target_latency_s is None else target_latency_s
    per_cycle = m.macs_per_cycle if macs_per_cycle is None else macs_per_cycle
    if latency <= 0 or per_cycle <= 0:
        raise ValueError(f"target_latency_s and macs_per_cycle must be positive, got {latency}, {per_cycle}")
    if not isinstance(use_cores, int) or not 1 <= use_cores <= m.cores:
        raise ValueError(f"use_cores must be between 1 and {m.cores} for {m.name}, got {use_cores!r}")
    return int(m.clock_hz * per_cycle * latency * use_cores)
