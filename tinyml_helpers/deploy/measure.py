"""Flash and RAM of a linked firmware image, read from its ELF section headers (pyelftools).

* **flash** = ``.isr_vector`` + ``.text`` (code) + ``.rodata`` (constant weights, biases,
  multipliers, layer parameters) + ``.ARM.exidx`` + the initial values of ``.data`` (stored
  in flash, copied to RAM at reset);
* **RAM** = ``.data`` + ``.bss`` (the activation arena and the im2col scratch live here) +
  the peak stack depth measured by stack painting in the emulator (the linker reserves a
  fixed stack region; only the part actually used counts).

Example:
    >>> # sizes = section_sizes("artifacts/firmware/kws/model.elf")
    >>> # memory_report(sizes, peak_stack_bytes=300)["flash_bytes"]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["section_sizes", "symbol_sizes", "memory_report"]

_FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.exidx")


def section_sizes(elf_path: str | Path) -> dict[str, int]:
    """Size in bytes of every allocated section of an ELF (``{".text": 1234, ...}``)."""
    from elftools.elf.elffile import ELFFile

    path = Path(elf_path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; build the firmware first")
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        return {s.name: int(s["sh_size"]) for s in elf.iter_sections()
                if s["sh_flags"] & 0x2 and s.name}  # SHF_ALLOC


def symbol_sizes(elf_path: str | Path, prefix: str = "") -> dict[str, int]:
    """Sizes of the ELF's data/function symbols (e.g. ``tm_arena``), optionally by prefix."""
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as fh:
        elf = ELFFile(fh)
        return {s.name: int(s["st_size"]) for s in elf.get_section_by_name(".symtab").iter_symbols()
                if s.name and s.name.startswith(prefix) and s["st_size"]}


def memory_report(sizes: dict[str, int], peak_stack_bytes: int = 0) -> dict[str, int]:
    """Flash and RAM totals from :func:`section_sizes` and a measured stack depth.

    Example:
        >>> memory_report({".text": 1000, ".rodata": 5000, ".data": 8, ".bss": 300, ".stack": 8192}, 200)
        {'text_bytes': 1000, 'rodata_bytes': 5000, 'data_bytes': 8, 'bss_bytes': 300, 'flash_bytes': 6008, 'ram_bytes': 508, 'stack_bytes': 200}
    """
    if peak_stack_bytes < 0:
        raise ValueError(f"peak_stack_bytes must be >= 0, got {peak_stack_bytes}")
    text = sizes.get(".text", 0) + sizes.get(".isr_vector", 0) + sizes.get(".ARM.exidx", 0)
    rodata = sizes.get(".rodata", 0)
    data = sizes.get(".data", 0)
    bss = sizes.get(".bss", 0)
    return {"text_bytes": text, "rodata_bytes": rodata, "data_bytes": data, "bss_bytes": bss,
            "flash_bytes": text + rodata + data, "ram_bytes": data + bss + int(peak_stack_bytes),
            "stack_bytes": int(peak_stack_bytes)}
