"""Bundle a model's costs (:class:`ModelCost`) and check them against an MCU (:func:`fits`).

A model fits an MCU when its int8 (or chosen dtype) weights fit in flash, its peak
activation RAM (from tensor lifetimes) fits in SRAM, and its MACs per inference fit the
MAC budget. The **binding resource** is the one with the highest used/available fraction:
the first one you run out of when the model grows, and the one to shrink first.

The available figures are whole-chip datasheet numbers: the firmware, the inference
runtime, the stack and I/O buffers also need flash and RAM, so a fraction close to 1
does not fit in practice (aim well below, e.g. 0.7-0.8).

Example:
    >>> cost = ModelCost(params=23_756, macs=2_656_768, flash_bytes=26_000, peak_ram_bytes=16_490)
    >>> fits(cost, "nRF52840").fits
    True
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from .counts import count_macs, count_params, flash_bytes, normalize_dtype, normalize_input_shape
from .memory import peak_activation_bytes
from .mcus import MCU, get_mcu, mac_budget as _mac_budget

__all__ = ["ModelCost", "measure", "ResourceUse", "FitReport", "fits"]


@dataclass(frozen=True)
class ModelCost:
    """The static costs of one model at one input shape and deployment dtype.

    Example:
        >>> ModelCost(params=10, macs=100, flash_bytes=20, peak_ram_bytes=30).macs
        100
    """

    params: int
    macs: int
    flash_bytes: int
    peak_ram_bytes: int
    dtype: str = "int8"
    input_shape: tuple[int, ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        for key in ("params", "macs", "flash_bytes", "peak_ram_bytes"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
                raise TypeError(f"ModelCost.{key} must be an integer, got {value!r}")
            if value < 0:
                raise ValueError(f"ModelCost.{key} must be >= 0, got {value} (sizes and counts cannot be negative)")
        normalize_dtype(self.dtype)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON / tables)."""
        return asdict(self)


def measure(model: Any, input_shape: Sequence[int], dtype: str = "int8", name: str = "") -> ModelCost:
    """Params, MACs, flash (at ``dtype``) and lifetime-based peak activation RAM of a model.

    ``input_shape`` excludes the batch dimension.

    Example:
        >>> import torch
        >>> measure(torch.nn.Sequential(torch.nn.Linear(100, 10)), (100,)).peak_ram_bytes
        110
    """
    shape = normalize_input_shape(input_shape)
    key = normalize_dtype(dtype)
    macs = count_macs(model, shape)  # runs the model first: a wrong shape fails here, clearly
    return ModelCost(params=count_params(model), macs=macs, flash_bytes=flash_bytes(model, key),
                     peak_ram_bytes=peak_activation_bytes(model, shape, key), dtype=key,
                     input_shape=shape, name=name or type(model).__name__)


@dataclass(frozen=True)
class ResourceUse:
    """One resource: what the model needs, what the MCU has, and the fraction used."""

    resource: str
    used: float
    available: float
    unit: str

    @property
    def fraction(self) -> float:
        return self.used / self.available if self.available else float("inf")

    @property
    def fits(self) -> bool:
        return self.used <= self.available


def _fmt(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1024:,.1f} KB"
    return f"{value / 1e6:,.2f} M"


@dataclass(frozen=True)
class FitReport:
    """Per-resource use of a model on an MCU; ``binding`` is the highest fraction.

    ``str(report)`` is a small table; ``report.fits`` says whether every resource fits.
    """

    model: str
    mcu: str
    dtype: str
    resources: tuple[ResourceUse, ...]
    mac_budget_note: str = ""

    @property
    def fits(self) -> bool:
        return all(r.fits for r in self.resources)

    @property
    def binding(self) -> str:
        return max(self.resources, key=lambda r: r.fraction).resource

    def fraction(self, resource: str) -> float:
        """Used/available of one resource (``"flash"``, ``"ram"`` or ``"macs"``)."""
        for r in self.resources:
            if r.resource == resource:
                return r.fraction
        raise KeyError(f"no resource {resource!r}; have {[r.resource for r in self.resources]}")

    def table(self) -> str:
        lines = [f"{self.model} on {self.mcu} ({self.dtype}): "
                 f"{'FITS' if self.fits else 'DOES NOT FIT'}, binding resource: {self.binding}",
                 f"  {'resource':<8} {'used':>12} {'available':>12} {'fraction':>9}"]
        for r in self.resources:
            flag = "" if r.fits else "  <-- over"
            lines.append(f"  {r.resource:<8} {_fmt(r.used, r.unit):>12} {_fmt(r.available, r.unit):>12} "
                         f"{r.fraction:>8.1%}{flag}")
        if self.mac_budget_note:
            lines.append(f"  ({self.mac_budget_note})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "mcu": self.mcu, "dtype": self.dtype, "fits": self.fits,
                "binding": self.binding,
                "resources": {r.resource: {"used": r.used, "available": r.available, "fraction": r.fraction}
                              for r in self.resources}}


def fits(model_or_cost: Any, mcu: str | MCU, dtype: str = "int8", mac_budget: int | None = None,
         input_shape: Sequence[int] | None = None) -> FitReport:
    """Does a model (or its :class:`ModelCost`) fit an MCU's flash, SRAM and MAC budget?

    Args:
        model_or_cost: a :class:`ModelCost`, or a ``torch.nn.Module`` with ``input_shape``.
        mcu: catalog name (case-insensitive) or an :class:`MCU`.
        dtype: deployment dtype used when measuring a module (a ModelCost keeps its own).
        mac_budget: MACs per inference allowed; default the MCU's published budget or the
            derived ``clock x assumed MACs/cycle x 0.5 s`` (see ``mcus.mac_budget``).
        input_shape: per-sample input shape, needed when passing a module.

    Example:
        >>> print(fits(ModelCost(1, 70_000_000, 900_000, 100_000), "seed example").binding)
        macs
    """
    if isinstance(model_or_cost, ModelCost):
        cost = model_or_cost
    else:
        import torch

        if not isinstance(model_or_cost, torch.nn.Module):
            raise TypeError(f"fits() takes a ModelCost or a torch.nn.Module, got {type(model_or_cost).__name__}")
        if input_shape is None:
            raise ValueError("fits() needs input_shape (without the batch dimension) to measure a module, "
                             "e.g. fits(model, 'nRF52840', input_shape=(1, 49, 10))")
        cost = measure(model_or_cost, input_shape, dtype)
    m = get_mcu(mcu)
    if mac_budget is None:
        budget = _mac_budget(m)
        note = ("MAC budget from the source" if m.mac_budget_per_inference is not None else
                f"MAC budget derived: {m.clock_hz / 1e6:.0f} MHz x {m.macs_per_cycle} MAC/cycle (assumed) x 0.5 s")
    else:
        if isinstance(mac_budget, bool) or mac_budget <= 0:
            raise ValueError(f"mac_budget must be a positive number of MACs per inference, got {mac_budget!r}")
        budget, note = int(mac_budget), "MAC budget given by the caller"
    resources = (ResourceUse("flash", cost.flash_bytes, m.flash_bytes, "bytes"),
                 ResourceUse("ram", cost.peak_ram_bytes, m.sram_bytes, "bytes"),
                 ResourceUse("macs", cost.macs, budget, "MACs"))
    return FitReport(model=cost.name or "model", mcu=m.name, dtype=cost.dtype, resources=resources,
                     mac_budget_note=note)
