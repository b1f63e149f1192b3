"""A cycle-approximate timing model of the Cortex-M4 for the emulator.

``unicorn`` executes instructions but has no clock. This module gives each executed basic
block a cycle cost from the instruction timings of the **Arm Cortex-M4 Technical Reference
Manual** (ARM DDI 0439, r0p1: Table 3-1 "Cortex-M4 instruction set summary" and Table 7-1
"FPU instruction set"), so that a run yields cycles, not a guessed cycles-per-instruction:

* data processing, multiply and every multiply-accumulate (MUL, MLA, SMLAD, SMLABB, SMULL,
  SMLAL, SMMUL, ...): 1 cycle; SDIV/UDIV: 2-12 (data dependent; ``divide_cycles``);
* LDR/STR (single): 2 cycles, but a load or store right after a load pipelines its address
  phase and costs 1 ("neighboring load and store single instructions can pipeline their
  address and data phases"); LDRD/STRD: 3; LDM/STM/PUSH/POP of N registers: 1 + N;
* branches: 1 + P when taken (P = pipeline refill, 1-3 cycles: ``branch_refill``), 1 when
  a conditional branch is not taken; POP/LDM/LDR that load the PC: as a load + P;
* FPU: VADD/VSUB/VMUL/VCVT/VMOV/VCMP 1, VMLA/VMLS/VFMA 3, VDIV/VSQRT 14, VLDR/VSTR 2,
  VLDM/VSTM/VPUSH/VPOP 1 + N;
* IT: 1 (the core can fold it into the previous 16-bit instruction for 0; we do not);
* flash wait states: each data load from flash that leaves the current flash line (the
  prefetch/line buffer, ``flash_line_bytes``) stalls ``flash_wait_states`` cycles.
  Instruction fetches are assumed to hit the MCU's instruction cache / prefetch buffer
  (the kernels' loops are a few hundred bytes).

What it leaves out: register-dependency stalls (an address computed by the instruction just
before a load), unaligned accesses split in two, bus contention (DMA, the radio), the
instruction fetch of code not in the cache, interrupts. Report latencies with a margin
(:data:`MODEL_MARGIN`).

Decoding is our own minimal Thumb-2 classifier (no disassembler dependency): it only needs
the instruction *class*, which the top bits of each encoding give (Arm v7-M Architecture
Reference Manual, "Thumb instruction set encoding").

Example:
    >>> t = CortexM4Timing()
    >>> block_cost(bytes.fromhex("0868" "1168"), t).cycles   # ldr r0,[r1]; ldr r1,[r2]
    3
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CortexM4Timing", "BlockCost", "classify", "block_cost", "CycleCounter", "MODEL_MARGIN",
           "timing_for_mcu", "latency_energy"]

# What the model leaves out (see the module docstring), as a fraction of the modelled cycles:
# an upper allowance, stated with every latency the course reports from it.
MODEL_MARGIN = 0.15


@dataclass(frozen=True)
class CortexM4Timing:
    """Cycle costs that depend on the chip or on data (see the module docstring).

    Example:
        >>> CortexM4Timing(flash_wait_states=5).flash_wait_states
        5
    """

    branch_refill: int = 2        # P in the TRM: 1-3 cycles; 2 is its middle
    divide_cycles: int = 7        # SDIV/UDIV: 2-12 depending on the operands
    flash_wait_states: int = 0
    flash_line_bytes: int = 16
    it_cycles: int = 1

    def __post_init__(self) -> None:
        for name in ("branch_refill", "divide_cycles", "flash_wait_states", "it_cycles"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not 1 <= self.branch_refill <= 3:
            raise ValueError(f"branch_refill must be 1-3 cycles (Cortex-M4 TRM), got {self.branch_refill}")
        if not 2 <= self.divide_cycles <= 12:
            raise ValueError(f"divide_cycles must be 2-12 (Cortex-M4 TRM), got {self.divide_cycles}")
        if self.flash_line_bytes not in (4, 8, 16, 32, 64):
            raise ValueError(f"flash_line_bytes must be 4, 8, 16, 32 or 64, got {self.flash_line_bytes}")


def _popcount(v: int) -> int:
    return bin(v).count("1")


def classify(code: bytes) -> list[tuple[str, int]]:
    """The class of each Thumb-2 instruction in ``code``: ``(kind, n)`` with kind one of
    ``alu mul div load store ldm stm ldrd branch cbranch it fpu fpu3 fpu14 vldr vstr vldm
    loadpc`` and n the number of registers transferred (LDM/STM/VLDM) else 0.

    Example:
        >>> classify(bytes.fromhex("0868" "10b5" "fee7"))  # ldr r0,[r1]; push {r4,lr}; b .
        [('load', 0), ('stm', 2), ('branch', 0)]
    """
    out: list[tuple[str, int]] = []
    i, n = 0, len(code) - 1
    while i < n:
        hw = code[i] | (code[i + 1] << 8)
        if (hw >> 11) >= 0b11101 and i + 3 < len(code):
            hw2 = code[i + 2] | (code[i + 3] << 8)
            out.append(_classify32(hw, hw2))
            i += 4
        else:
            out.append(_classify16(hw))
            i += 2
    return out


def _classify16(hw: int) -> tuple[str, int]:
    top5, top4 = hw >> 11, hw >> 12
    if top5 == 0b01001:
        return ("load", 0)                                   # LDR literal
    if top4 == 0b0101:
        return ("store", 0) if ((hw >> 9) & 7) <= 2 else ("load", 0)
    if top4 in (0b0110, 0b0111, 0b1000, 0b1001):
        return ("load", 0) if hw & 0x0800 else ("store", 0)
    if (hw & 0xFE00) == 0xB400:
        return ("stm", _popcount(hw & 0xFF) + ((hw >> 8) & 1))          # PUSH
    if (hw & 0xFE00) == 0xBC00:
        if hw & 0x0100:
            return ("loadpc", _popcount(hw & 0xFF) + 1)                 # POP {..., pc}
        return ("ldm", _popcount(hw & 0xFF))
    if top5 in (0b11000, 0b11001):
        return ("ldm" if hw & 0x0800 else "stm", _popcount(hw & 0xFF))
    if top4 == 0b1101:
        cond = (hw >> 8) & 0xF
        if cond == 0xF:
            return ("alu", 0)                                # SVC
        if cond == 0xE:
            return ("alu", 0)                                # UDF
        return ("cbranch", 0)
    if top5 == 0b11100:
        return ("branch", 0)
    if (hw & 0xF500) == 0xB100:
        return ("cbranch", 0)                                # CBZ / CBNZ
    if (hw & 0xFF00) == 0x4700:
        return ("branch", 0)                                 # BX / BLX
    if (hw & 0xFC00) == 0x4400 and (hw & 0x87) == 0x87 and ((hw >> 8) & 3) != 1:
        return ("branch", 0)                                 # ADD/MOV pc, Rm
    if (hw & 0xFF00) == 0xBF00 and hw & 0x000F:
        return ("it", 0)
    if (hw & 0xFFC0) == 0x4340:
        return ("mul", 0)                                    # MULS
    return ("alu", 0)


def _classify32(hw1: int, hw2: int) -> tuple[str, int]:
    op1 = (hw1 >> 11) & 3
    if op1 == 0b01:
        if (hw1 & 0xFE40) == 0xE800:                         # load/store multiple
            regs = _popcount(hw2)
            if hw1 & 0x0010:
                return ("loadpc", regs) if hw2 & 0x8000 else ("ldm", regs)
            return ("stm", regs)
        if (hw1 & 0xFE40) == 0xE840:                         # dual, exclusive, table branch
            if (hw1 & 0xFFF0) == 0xE8D0 and (hw2 & 0xFFE0) == 0xF000:
                return ("loadpc", 1)                             # TBB / TBH
            if (hw1 & 0xFE50) in (0xE840, 0xE850) and not (hw1 & 0x0120):
                return ("load" if hw1 & 0x10 else "store", 0)    # LDREX / STREX
            return ("ldrd", 2)
        if (hw1 & 0xEE00) == 0xEA00:
            return ("alu", 0)                                # data processing (shifted register)
        return _classify_coproc(hw1, hw2)
    if op1 == 0b10:
        if not hw2 & 0x8000:
            return ("alu", 0)                                # data processing (immediate)
        kind = (hw2 >> 12) & 0b101
        if kind in (0b001, 0b101, 0b100):
            return ("branch", 0)                             # B.W, BL (BLX not in Thumb-only)
        if (hw1 & 0x0380) != 0x0380:
            return ("cbranch", 0)                            # B<c>.W
        return ("alu", 0)                                    # MSR, MRS, hints, barriers
    # op1 == 0b11
    if (hw1 & 0xFE00) == 0xF800:                             # load / store single
        if hw1 & 0x0010:
            return ("loadpc", 1) if (hw2 >> 12) == 0xF and (hw1 & 0x0060) == 0x0040 else ("load", 0)
        return ("store", 0)
    if (hw1 & 0xFF00) == 0xFA00:
        return ("alu", 0)                                    # data processing (register), SIMD
    if (hw1 & 0xFF80) == 0xFB00:
        return ("mul", 0)                                    # multiply, MAC, SMLAD, SMMUL
    if (hw1 & 0xFF80) == 0xFB80:
        return ("div", 0) if ((hw1 >> 4) & 7) in (0b001, 0b011) and ((hw2 >> 4) & 0xF) == 0xF else ("mul", 0)
    return _classify_coproc(hw1, hw2)


def _classify_coproc(hw1: int, hw2: int) -> tuple[str, int]:
    """FPU instructions (coprocessors 10 and 11); anything else costs one cycle."""
    if (hw2 & 0x0E00) != 0x0A00:
        return ("alu", 0)
    if (hw1 & 0xEF00) == 0xEE00:                             # FP data processing or register transfer
        if hw2 & 0x0010:
            return ("fpu", 0)                                # VMOV core<->single, VMRS/VMSR
        opc1 = ((hw1 >> 4) & 0x8) | ((hw1 >> 4) & 0x3)
        if opc1 in (0b0000, 0b0001, 0b1010, 0b1001):
            return ("fpu3", 0)                               # VMLA/VMLS, VNMLA/VNMLS, VFMA/VFNMA
        if opc1 == 0b1000:
            return ("fpu14", 0)                              # VDIV
        if opc1 == 0b1011 and (hw1 & 0xF) == 0b0001 and ((hw2 >> 6) & 3) == 3:
            return ("fpu14", 0)                              # VSQRT
        return ("fpu", 0)                                    # VADD, VSUB, VMUL, VCVT, VCMP, VMOV ...
    if (hw1 & 0xFF30) == 0xED10:
        return ("vldr", 0)
    if (hw1 & 0xFF30) == 0xED00:
        return ("vstr", 0)
    if (hw1 & 0xEFE0) == 0xEC40:
        return ("fpu", 2)                                    # VMOV two core registers
    words = hw2 & 0xFF
    return ("vldm" if hw1 & 0x10 else "vstm", words if words else 1)


@dataclass(frozen=True)
class BlockCost:
    """Cycles of a basic block assuming its final branch (if any) is not taken, and how it
    ends: ``"none"`` (falls through), ``"cond"`` (a conditional branch: +P when taken) or
    ``"always"`` (always taken: its P is already in ``cycles``)."""

    cycles: int
    instructions: int
    ends: str
    flash_loads: int = 0


_SIMPLE = {"alu": 1, "mul": 1, "it": None, "fpu": 1, "fpu3": 3, "fpu14": 14, "vldr": 2, "vstr": 2}


def block_cost(code: bytes, timing: CortexM4Timing) -> BlockCost:
    """Static cycle cost of one basic block (see :class:`BlockCost`).

    Example:
        >>> t = CortexM4Timing(branch_refill=2)
        >>> block_cost(bytes.fromhex("0138" "fdd1"), t)   # subs r0,#1; bne (not taken)
        BlockCost(cycles=2, instructions=2, ends='cond', flash_loads=0)
    """
    cycles = 0
    prev_load = False
    ends = "none"
    kinds = classify(code)
    p = timing.branch_refill
    for k, (kind, regs) in enumerate(kinds):
        last = k == len(kinds) - 1
        if kind in ("load", "store"):
            cycles += 1 if prev_load else 2
            prev_load = kind == "load"
            continue
        prev_load = False
        if kind == "it":
            cycles += timing.it_cycles
        elif kind in _SIMPLE:
            cycles += _SIMPLE[kind] + (1 if kind == "fpu" and regs == 2 else 0)
        elif kind == "div":
            cycles += timing.divide_cycles
        elif kind in ("ldm", "stm", "vldm", "vstm"):
            cycles += 1 + regs
        elif kind == "ldrd":
            cycles += 3
        elif kind == "loadpc":
            cycles += 1 + regs + p
            ends = "always" if last else ends
        elif kind == "branch":
            cycles += 1 + p
            ends = "always" if last else ends
        elif kind == "cbranch":
            cycles += 1
            ends = "cond" if last else ends
        else:  # pragma: no cover - classify returns only the kinds above
            raise AssertionError(kind)
    return BlockCost(cycles, len(kinds), ends)


class CycleCounter:
    """Adds a timing model to a ``unicorn`` Cortex-M4: per-block cycle costs (cached),
    taken-branch refills found from where the next block starts, and flash wait states on
    data loads from flash.

    Args:
        uc: the unicorn engine.
        read_code: ``(address, size) -> bytes`` of code (the emulator's flash image).
        timing: the :class:`CortexM4Timing`.
        flash: ``(start, end)`` addresses of flash (for wait states on data loads).

    Example:
        >>> # cc = CycleCounter(uc, fw.read, CortexM4Timing()); cc.install(); ...; cc.cycles
    """

    def __init__(self, uc: Any, read_code: Any, timing: CortexM4Timing, flash: tuple[int, int] = (0, 0)):
        self.uc, self.read_code, self.timing, self.flash = uc, read_code, timing, flash
        self.cycles = 0
        self.instructions = 0
        self._cache: dict[tuple[int, int], BlockCost] = {}
        self._hooks: list[Any] = []
        self._fallthrough = -1
        self._cond = False
        self._line = -1

    def _on_block(self, uc: Any, address: int, size: int, _: Any) -> None:
        key = (address, size)
        cost = self._cache.get(key)
        if cost is None:
            cost = self._cache[key] = block_cost(self.read_code(address, size), self.timing)
        extra = self.timing.branch_refill if self._cond and address != self._fallthrough else 0
        self.cycles += cost.cycles + extra
        self.instructions += cost.instructions
        self._fallthrough = address + size
        self._cond = cost.ends == "cond"

    def _on_read(self, uc: Any, access: int, address: int, size: int, value: int, _: Any) -> None:
        line = address // self.timing.flash_line_bytes
        if line != self._line:
            self._line = line
            self.cycles += self.timing.flash_wait_states

    def install(self) -> None:
        """Add the hooks (flush unicorn's translation cache afterwards so they take effect)."""
        from unicorn import UC_HOOK_BLOCK, UC_HOOK_MEM_READ

        self._hooks.append(self.uc.hook_add(UC_HOOK_BLOCK, self._on_block))
        if self.timing.flash_wait_states and self.flash[1] > self.flash[0]:
            self._hooks.append(self.uc.hook_add(UC_HOOK_MEM_READ, self._on_read,
                                                begin=self.flash[0], end=self.flash[1] - 1))

    def remove(self) -> None:
        for h in self._hooks:
            self.uc.hook_del(h)
        self._hooks.clear()


def timing_for_mcu(mcu: Any) -> CortexM4Timing:
    """The timing model for a catalog MCU (``cost.get_mcu`` name or entry): its flash wait
    states at its catalog clock. Only Cortex-M4 cores: the firmware's kernels use the DSP
    extension (SMLAD, SXTB16) and the FPU, which other cores lack or time differently.

    Example:
        >>> timing_for_mcu("STM32L4R5").flash_wait_states
        5
    """
    from ..cost import get_mcu

    m = get_mcu(mcu)
    if m.core not in ("Cortex-M4", "Cortex-M4F"):
        raise ValueError(f"{m.name} has a {m.core} core: the course firmware and this timing model are for a "
                         "Cortex-M4 with the DSP extension (SMLAD, SXTB16) and, for requant='float', an FPU. "
                         "Pick a Cortex-M4F from the catalog (e.g. nRF52840, STM32L4R5).")
    return CortexM4Timing(flash_wait_states=int(m.flash_wait_states or 0))


def latency_energy(cycles: float, mcu: Any, margin: float = MODEL_MARGIN) -> dict[str, Any]:
    """Latency and energy of ``cycles`` (from the timing model) on a catalog MCU, as the model's
    figure and an upper bound with ``margin`` for what the model leaves out.

    Returns ``latency_s`` and ``energy_j`` as ``(model, model x (1 + margin))`` (energy only
    when the catalog has the MCU's run current), ``inferences_per_s`` and ``active_power_w``.

    Example:
        >>> e = latency_energy(3_200_000, "nRF52840")
        >>> round(e["latency_s"][0] * 1e3, 1), round(e["latency_s"][1] * 1e3, 1)
        (50.0, 57.5)
    """
    from ..cost import get_mcu

    m = get_mcu(mcu)
    if not m.clock_hz:
        raise ValueError(f"{m.name} has no clock frequency in the catalog: cycles cannot become seconds")
    if not cycles > 0 or not margin >= 0:
        raise ValueError(f"cycles must be positive and margin >= 0, got {cycles!r}, {margin!r}")
    lat = (cycles / m.clock_hz, cycles * (1 + margin) / m.clock_hz)
    out: dict[str, Any] = {"cycles": float(cycles), "clock_hz": float(m.clock_hz), "margin": float(margin),
                           "latency_s": lat, "inferences_per_s": (1 / lat[0], 1 / lat[1])}
    per_cycle = m.energy_per_cycle_j()
    if per_cycle is not None:
        out["energy_j"] = (cycles * per_cycle, cycles * (1 + margin) * per_cycle)
        out["active_power_w"] = per_cycle * m.clock_hz
    return out
