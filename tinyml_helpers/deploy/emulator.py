"""Run the firmware on an emulated Cortex-M4 (``unicorn``) and count what it executes.

``unicorn`` (QEMU's CPU core as a library, from pip on every OS) emulates the ARMv7E-M
instruction set of a Cortex-M4 (``UC_CPU_ARM_CORTEX_M4``). It does not model a particular
chip: no peripherals, no flash wait states, no pipeline timing. So what it measures exactly
is the **number of instructions executed**. Cycles come from a model on top of it
(:mod:`tinyml_helpers.deploy.timing`: the Cortex-M4 TRM's instruction timings, taken-branch
refills and the MCU's flash wait states, applied per executed block), so time and energy on
a real chip remain estimates, with the margin stated there.

How we count: a basic-block hook adds the number of Thumb-2 instructions in each block that
runs (16- and 32-bit encodings decoded once per block and cached), which is exact and much
cheaper than a hook per instruction. Per-layer counts come from a hook on
``tm_layer_mark(i)``, which the generated code calls before each layer. Peak stack is
measured by painting: the stack region is filled with a pattern before the run, and the
deepest overwritten word afterwards is the high-water mark.

Runs that only need outputs (the whole test split) switch the hooks off and run at
unicorn's full speed.

Written for this course on top of unicorn (no maintained package runs bare-metal ELF images
with instruction accounting).

Example:
    >>> # fw = Firmware("artifacts/firmware/kws/model.elf", manifest)
    >>> # y = fw.infer(x_int8)            # fast, outputs only
    >>> # y, stats = fw.infer(x_int8, count=True)   # stats.instructions, stats.cycles
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Firmware", "RunStats", "EmulatorError", "thumb_instruction_count", "run_strided"]

STACK_PAINT = 0xA5
SCS_BASE = 0xE000E000


class EmulatorError(RuntimeError):
    """The emulated CPU faulted or ran away; the message says where."""


def thumb_instruction_count(code: bytes) -> int:
    """Number of Thumb-2 instructions in a block of code.

    A halfword whose top five bits are 0b11101, 0b11110 or 0b11111 starts a 32-bit
    instruction; anything else is a 16-bit one.

    Example:
        >>> thumb_instruction_count(bytes.fromhex("01202de90f00"))  # movs r0,#1 ; push.w {...}
        2
    """
    n = i = 0
    length = len(code) - 1
    while i < length:
        hw = code[i] | (code[i + 1] << 8)
        i += 4 if (hw >> 11) >= 0b11101 else 2
        n += 1
    return n


@dataclass
class RunStats:
    """What one counted inference executed."""

    instructions: int
    per_layer: list[int] = field(default_factory=list)
    peak_stack_bytes: int = 0
    cycles: int = 0          # from the timing model (deploy.timing), not a measurement
    per_layer_cycles: list[int] = field(default_factory=list)


class Firmware:
    """A linked firmware image loaded into an emulated Cortex-M4 with flash and RAM mapped.

    Args:
        elf_path: the ELF from :func:`tinyml_helpers.deploy.toolchain.compile_firmware`.
        manifest: the dict (or path to ``model.json``) from the code generator: where the
            input and output live in the arena.
    """

    def __init__(self, elf_path: str | Path, manifest: dict[str, Any] | str | Path | None = None,
                 timing: Any = None):
        from elftools.elf.elffile import ELFFile
        from unicorn import Uc, UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB
        from unicorn.arm_const import UC_CPU_ARM_CORTEX_M4

        self.elf_path = Path(elf_path)
        if not self.elf_path.exists():
            raise FileNotFoundError(f"{self.elf_path} does not exist; build it with "
                                    "deploy.toolchain.compile_firmware")
        if isinstance(manifest, (str, Path)):
            manifest = json.loads(Path(manifest).read_text())
        self.manifest = manifest or {}
        from .timing import CortexM4Timing

        # The cycle model of counted runs; set it to the target MCU's (timing.timing_for_mcu).
        self.timing = timing if timing is not None else CortexM4Timing()
        with open(self.elf_path, "rb") as fh:
            elf = ELFFile(fh)
            self.symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()
                            if s.name}
            segments = [(seg["p_paddr"], seg.data()) for seg in elf.iter_segments()
                        if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]
        for needed in ("tm_model_run", "tm_done", "Reset_Handler", "tm_idle", "_sstack", "_estack"):
            if needed not in self.symbols:
                raise EmulatorError(f"symbol {needed} is missing from {self.elf_path.name}; was it linked "
                                    "with deploy.toolchain.compile_firmware?")
        from .toolchain import FLASH_ORIGIN, RAM_ORIGIN

        self.flash_origin, self.ram_origin = FLASH_ORIGIN, RAM_ORIGIN
        flash_size = _round_up(max(a + len(d) for a, d in segments) - FLASH_ORIGIN, 1 << 16)
        ram_size = _round_up(self.symbols["_estack"] - RAM_ORIGIN, 1 << 12)
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        self.uc.mem_map(FLASH_ORIGIN, flash_size)
        self.uc.mem_map(RAM_ORIGIN, ram_size)
        # The System Control Space (where the startup code's CPACR write lands) is plain memory
        # here; the FPU itself is switched on through unicorn's registers below.
        self.uc.mem_map(SCS_BASE, 0x1000)
        self._enable_fpu()
        self.flash = bytearray(flash_size)
        for addr, data in segments:
            if not FLASH_ORIGIN <= addr < FLASH_ORIGIN + flash_size:
                raise EmulatorError(f"a load segment at 0x{addr:08x} lies outside flash")
            self.flash[addr - FLASH_ORIGIN: addr - FLASH_ORIGIN + len(data)] = data
        self.uc.mem_write(FLASH_ORIGIN, bytes(self.flash))
        self._block_len: dict[tuple[int, int], int] = {}
        self._reset()

    def _enable_fpu(self) -> None:
        from unicorn.arm_const import UC_ARM_REG_C1_C0_2, UC_ARM_REG_FPEXC

        try:
            self.uc.reg_write(UC_ARM_REG_C1_C0_2, self.uc.reg_read(UC_ARM_REG_C1_C0_2) | (0xF << 20))
            self.uc.reg_write(UC_ARM_REG_FPEXC, 0x40000000)
        except Exception:  # pragma: no cover - older unicorn builds
            pass

    # -- low level -------------------------------------------------------------------
    def _call(self, symbol: str, max_instructions: int = 0) -> None:
        from unicorn import UcError
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_SP

        entry = self.symbols[symbol] & ~1
        done = self.symbols["tm_done"] & ~1
        self.uc.reg_write(UC_ARM_REG_SP, self.symbols["_estack"])
        self.uc.reg_write(UC_ARM_REG_LR, done | 1)
        try:
            self.uc.emu_start(entry | 1, done, count=max_instructions)
        except UcError as exc:
            from unicorn.arm_const import UC_ARM_REG_PC

            pc = self.uc.reg_read(UC_ARM_REG_PC)
            raise EmulatorError(f"the emulated CPU stopped with '{exc}' at pc=0x{pc:08x} while running "
                                f"{symbol}: {self._where(pc)}") from exc

    def _where(self, pc: int) -> str:
        funcs = sorted((a & ~1, n) for n, a in self.symbols.items() if self.flash_origin <= a < self.ram_origin)
        name = "?"
        for addr, n in funcs:
            if addr <= pc:
                name = n
        return f"inside {name}"

    def _reset(self) -> None:
        """Run the reset handler (copy .data, zero .bss) up to the idle loop."""
        from unicorn import UcError
        from unicorn.arm_const import UC_ARM_REG_SP

        self.uc.reg_write(UC_ARM_REG_SP, self.symbols["_estack"])
        try:
            self.uc.emu_start(self.symbols["Reset_Handler"] | 1, self.symbols["tm_idle"] & ~1, count=50_000_000)
        except UcError as exc:
            raise EmulatorError(f"the reset handler faulted: {exc}") from exc

    def read(self, address: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(address, size))

    def write(self, address: int, data: bytes) -> None:
        self.uc.mem_write(address, bytes(data))

    def symbol(self, name: str) -> int:
        if name not in self.symbols:
            raise KeyError(f"no symbol {name!r} in {self.elf_path.name}")
        return self.symbols[name]

    # -- inference -------------------------------------------------------------------
    @property
    def arena_address(self) -> int:
        return self.symbol("tm_arena")

    def infer(self, x_q: np.ndarray, count: bool = False) -> Any:
        """Write one int8 input (channels-last bytes), run ``tm_model_run``, read the int8 output.

        With ``count=True`` also returns :class:`RunStats` (instructions in total and per
        layer, peak stack); this is ~20x slower, so count on a few inputs only.
        """
        inp, out = self.manifest["input"], self.manifest["output"]
        x_q = np.asarray(x_q, dtype=np.int8).reshape(-1)
        if x_q.size != inp["size"]:
            raise ValueError(f"the model takes {inp['size']} int8 values, got {x_q.size}; use "
                             "Int8Model.quantize_input to prepare a feature map")
        self.write(self.arena_address + inp["offset"], x_q.tobytes())
        stats = self.call("tm_model_run", count=count) if count else None
        if not count:
            self._call("tm_model_run")
        y = np.frombuffer(self.read(self.arena_address + out["offset"], out["size"]), dtype=np.int8).copy()
        return (y, stats) if count else y

    def call(self, symbol: str, count: bool = True) -> RunStats:
        """Run a function ``void f(void)`` to completion, counting instructions and cycles
        (``self.timing``), per layer (marks) and the peak stack depth."""
        from unicorn import UC_HOOK_CODE
        from unicorn.arm_const import UC_ARM_REG_R0

        from .timing import CycleCounter

        marks: list[tuple[int, int, int]] = []
        flash = self.flash
        base = self.flash_origin
        counter = CycleCounter(self.uc, lambda a, n: bytes(flash[a - base:a - base + n]), self.timing,
                               (base, base + len(flash)))

        def on_mark(uc: Any, address: int, size: int, _: Any) -> None:
            marks.append((uc.reg_read(UC_ARM_REG_R0), counter.instructions, counter.cycles))

        sstack, estack = self.symbols["_sstack"], self.symbols["_estack"]
        self.write(sstack, bytes([STACK_PAINT]) * (estack - sstack))
        counter.install()
        hooks = []
        if "tm_layer_mark" in self.symbols:
            mark = self.symbols["tm_layer_mark"] & ~1
            hooks.append(self.uc.hook_add(UC_HOOK_CODE, on_mark, begin=mark, end=mark))
        # Code translated while no hook was installed carries no callbacks: drop the
        # translation cache so every block is re-translated with the hooks (and again after,
        # so the fast path runs hook-free).
        self.uc.ctl_flush_tb()
        try:
            self._call(symbol)
        finally:
            counter.remove()
            for h in hooks:
                self.uc.hook_del(h)
            self.uc.ctl_flush_tb()
        stack = self.read(sstack, estack - sstack)
        untouched = len(stack) - len(stack.lstrip(bytes([STACK_PAINT])))
        per_layer = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
        per_layer_cycles = [b[2] - a[2] for a, b in zip(marks, marks[1:])]
        if [m[0] for m in marks] != list(range(len(marks))):
            # patch-based firmware marks a layer once per patch (and per crop or paste it
            # needs): add up each layer's stretches; the last mark is the layer count
            n = max(m[0] for m in marks)
            per_layer, per_layer_cycles = [0] * n, [0] * n
            for a, b in zip(marks, marks[1:]):
                if 0 <= a[0] < n:
                    per_layer[a[0]] += b[1] - a[1]
                    per_layer_cycles[a[0]] += b[2] - a[2]
        return RunStats(instructions=counter.instructions, per_layer=per_layer,
                        peak_stack_bytes=(estack - sstack) - untouched, cycles=counter.cycles,
                        per_layer_cycles=per_layer_cycles)


def _round_up(value: int, step: int) -> int:
    return max(step, (value + step - 1) // step * step)


def run_strided(work: Callable[[Any, range], None], emulators: Sequence[Any], n: int) -> None:
    """Share items ``0..n-1`` among ``emulators``: ``work(emulators[k], range(k, n, len(emulators)))``.

    One emulator runs inline; several each get a thread (unicorn releases Python's GIL while
    it emulates, so the threads use the cores). Each emulator must be its own instance.

    Example:
        >>> seen = []
        >>> run_strided(lambda em, items: seen.extend((em, i) for i in items), ["a", "b"], 3)
        >>> sorted(seen)
        [('a', 0), ('a', 2), ('b', 1)]
    """
    if len(emulators) <= 1:
        work(emulators[0], range(n))
        return
    import threading

    threads = [threading.Thread(target=work, args=(em, range(k, n, len(emulators))))
               for k, em in enumerate(emulators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
