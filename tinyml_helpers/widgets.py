"""Interactive widgets for the notebooks (presentation layer: computation modules never import it).

One section per notebook, each owned by that notebook's engineer. Every widget prints or
plots its default state when created, so a headless run shows it too.
"""
from __future__ import annotations

from typing import Any


# =============================================================================
# Notebook 02: pruning (owned by the pruning engineer)
# =============================================================================
def _nearest_row(rows: "list[dict[str, float]]", level: float) -> "dict[str, float]":
    return min(rows, key=lambda r: abs(r["level"] - level))


def describe_pruning_point(grid: "dict[str, list[dict[str, float]]]", kind: str, level: float) -> str:
    """One paragraph describing a precomputed grid point (used by the explorer and headless).

    ``grid[kind]`` is a list of rows with ``level`` (sparsity or channel ratio), ``accuracy``,
    ``dense_bytes``, ``stored_bytes`` (what you would actually ship), ``macs`` and ``params``;
    the first row (level 0) is the unpruned model.

    Example:
        >>> rows = [dict(level=0.0, accuracy=.9, dense_bytes=100, stored_bytes=100, macs=10, params=25),
        ...         dict(level=0.5, accuracy=.8, dense_bytes=100, stored_bytes=80, macs=10, params=25)]
        >>> print(describe_pruning_point({"unstructured": rows}, "unstructured", 0.45))  # doctest: +ELLIPSIS
        unstructured pruning at 50 %: accuracy 80.0 % (unpruned 90.0 %) ...
    """
    if kind not in grid:
        raise ValueError(f"kind must be one of {sorted(grid)}, got {kind!r}")
    rows = grid[kind]
    base, row = rows[0], _nearest_row(rows, level)
    return (f"{kind} pruning at {100 * row['level']:.0f} %: accuracy {100 * row['accuracy']:.1f} % "
            f"(unpruned {100 * base['accuracy']:.1f} %) | weights stored dense "
            f"{row['dense_bytes'] / 1024:.1f} KiB, as shipped {row['stored_bytes'] / 1024:.1f} KiB "
            f"({row['stored_bytes'] / base['stored_bytes']:.2f}x) | MACs {row['macs'] / 1e6:.2f} M "
            f"({row['macs'] / base['macs']:.2f}x) | params {row['params']:,.0f}")


def pruning_explorer(grid: "dict[str, list[dict[str, float]]]", level: float = 0.8, kind: str = "unstructured") -> "Any":
    """Slider over precomputed pruning levels (instant), unstructured vs structured.

    Shows accuracy, storage and MACs relative to the unpruned model. The default state is
    printed at once, so a headless run shows it too.

    Example:
        >>> rows = [dict(level=0.0, accuracy=.9, dense_bytes=100, stored_bytes=100, macs=10, params=25),
        ...         dict(level=0.5, accuracy=.8, dense_bytes=100, stored_bytes=80, macs=10, params=25)]
        >>> w = pruning_explorer({"unstructured": rows}, level=0.5)  # doctest: +ELLIPSIS
        unstructured pruning at 50 %: ...
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    if kind not in grid:
        raise ValueError(f"kind must be one of {sorted(grid)}, got {kind!r}")
    levels = sorted({r["level"] for rows in grid.values() for r in rows})
    step = min(b - a for a, b in zip(levels, levels[1:])) if len(levels) > 1 else 0.05
    slider = widgets.FloatSlider(value=level, min=levels[0], max=levels[-1], step=step,
                                 description="pruned", readout_format=".0%", continuous_update=True)
    toggle = widgets.ToggleButtons(options=list(grid), value=kind, description="kind")
    out = widgets.Output()

    def update(*_: Any) -> None:
        rows = grid[toggle.value]
        base, row = rows[0], _nearest_row(rows, slider.value)
        with out:
            out.clear_output(wait=True)
            print(describe_pruning_point(grid, toggle.value, slider.value))
            fig, ax = plt.subplots(figsize=(6.0, 2.6))
            names = ["accuracy", "size as shipped", "MACs"]
            values = [row["accuracy"] / base["accuracy"], row["stored_bytes"] / base["stored_bytes"],
                      row["macs"] / base["macs"]]
            bars = ax.barh(names, values, color=["tab:green", "tab:blue", "tab:orange"])
            ax.bar_label(bars, labels=[f"{v:.2f}x" for v in values], fontsize=8)
            ax.axvline(1.0, color="grey", lw=0.8)
            ax.set_xlim(0, 1.25)
            ax.set_title(f"{toggle.value}, {100 * row['level']:.0f} % pruned (relative to unpruned)")
            plt.show()

    slider.observe(update, names="value")
    toggle.observe(update, names="value")
    print(describe_pruning_point(grid, kind, level))
    update()
    box = widgets.VBox([widgets.HBox([toggle, slider]), out])
    return box


# =============================================================================
# Notebook 00: why TinyML (owned by the cost-model engineer)
# =============================================================================
def describe_fits(costs: "Sequence[Any]", mcu: str) -> str:
    """One text table: each model's fit on ``mcu`` and its binding resource.

    Example:
        >>> from tinyml_helpers import cost
        >>> print(describe_fits([cost.ModelCost(1, 10**6, 30_000, 16_000, name="m")], "nRF52840"))  # doctest: +ELLIPSIS
        nRF52840: ...
    """
    from .cost import fits, get_mcu

    m = get_mcu(mcu)
    lines = [m.summary(), f"  {'model':<22} {'fits?':<7} {'binding':<8} {'flash':>7} {'RAM':>7} {'MACs':>7}"]
    for c in costs:
        r = fits(c, m)
        lines.append(f"  {c.name[:22]:<22} {'yes' if r.fits else 'NO':<7} {r.binding:<8} "
                     f"{r.fraction('flash'):>7.0%} {r.fraction('ram'):>7.0%} {r.fraction('macs'):>7.0%}")
    lines.append("  (percent of the MCU's flash, SRAM and MAC budget per inference; "
                 + ("MAC budget from the source)" if m.mac_budget_per_inference else
                    "MAC budget derived from the clock, assumed MACs/cycle and 0.5 s)"))
    return "\n".join(lines)


def mcu_fit_explorer(costs: "Sequence[Any]", mcu: str = "seed example") -> "Any":
    """Dropdown over the MCU catalog: which models fit, and which resource binds.

    ``costs`` are :class:`tinyml_helpers.cost.ModelCost`. The default MCU's table is printed
    at once, so a headless run shows it too.

    Example:
        >>> from tinyml_helpers import cost
        >>> w = mcu_fit_explorer([cost.ModelCost(1, 10**6, 30_000, 16_000, name="m")], "RP2040")  # doctest: +ELLIPSIS
        RP2040: ...
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from .cost import MCU_CATALOG, fits, get_mcu
    from .plots import plot_fit_fractions

    default = get_mcu(mcu).name
    dropdown = widgets.Dropdown(options=list(MCU_CATALOG), value=default, description="MCU")
    out = widgets.Output()

    def update(*_: Any) -> None:
        with out:
            out.clear_output(wait=True)
            print(describe_fits(costs, dropdown.value))
            plot_fit_fractions([fits(c, dropdown.value) for c in costs])
            plt.show()

    dropdown.observe(update, names="value")
    print(describe_fits(costs, default))
    update()
    return widgets.VBox([dropdown, out])
