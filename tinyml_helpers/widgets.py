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


# =============================================================================
# Notebook 01: knowledge distillation (owned by the training/KD engineer)
# =============================================================================
def describe_soft_labels(logits: "Any", classes: "Sequence[str]", temperature: float,
                         true_label: int | None = None, top: int = 3) -> str:
    """One line: the top classes of ``softmax(logits / T)`` and how spread out it is.

    Example:
        >>> import torch
        >>> print(describe_soft_labels(torch.tensor([3.0, 1.0, 0.0]), ["yes", "no", "up"], 1.0, true_label=0))
        T = 1: yes 84.4 %, no 11.4 %, up 4.2 % | entropy 0.52 of max 1.10 nats | true class: yes
    """
    import torch

    from .distillation import soft_labels

    q = soft_labels(torch.as_tensor(logits, dtype=torch.float32), temperature)
    order = torch.argsort(q, descending=True)[:top].tolist()
    entropy = float(-(q * q.clamp_min(1e-12).log()).sum())
    text = f"T = {temperature:g}: " + ", ".join(f"{classes[i]} {100 * float(q[i]):.1f} %" for i in order)
    text += f" | entropy {entropy:.2f} of max {torch.log(torch.tensor(float(len(classes)))):.2f} nats"
    if true_label is not None:
        text += f" | true class: {classes[true_label]}"
    return text


def temperature_explorer(logits: "Any", features: "Any", classes: "Sequence[str]", labels: "Any",
                         audio: "Any" = None, index: int = 0, temperature: float = 4.0,
                         sample_rate: int = 16000) -> "Any":
    """Slide the temperature, pick a clip: see the teacher's soft labels, the clip's log-mel
    features, and (with ``audio``) listen to it. The default state is printed and plotted at
    once, so a headless run shows it too.

    ``logits`` (N, C) are the teacher's outputs for the N clips of ``features`` (N, 1, 49, F).

    Example:
        >>> import torch
        >>> w = temperature_explorer(torch.tensor([[2.0, 0.0]]), torch.zeros(1, 1, 49, 40), ["yes", "no"], [0])  # doctest: +ELLIPSIS
        clip 0: true 'yes', teacher says 'yes'...
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from IPython.display import Audio, display

    from .distillation import soft_labels
    from .plots import plot_log_mel, plot_soft_labels

    logits = torch.as_tensor(logits, dtype=torch.float32)
    labels = [int(v) for v in np.asarray(labels).reshape(-1)]
    n = len(logits)
    if not 0 <= index < n:
        raise ValueError(f"index must be in [0, {n - 1}], got {index}")
    clip = widgets.IntSlider(value=index, min=0, max=n - 1, description="clip")
    temp = widgets.FloatLogSlider(value=temperature, base=2, min=-1, max=5, step=0.25, description="T",
                                  readout_format=".2f")
    out = widgets.Output()

    def headline(i: int, T: float) -> str:
        pred = int(torch.argmax(logits[i]))
        return (f"clip {i}: true '{classes[labels[i]]}', teacher says '{classes[pred]}'\n  "
                + describe_soft_labels(logits[i], classes, T, labels[i]))

    def update(*_: Any) -> None:
        i, T = clip.value, temp.value
        with out:
            out.clear_output(wait=True)
            print(headline(i, T))
            fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1, 2.2]})
            plot_log_mel(features[i], ax=ax1, title=f"clip {i}: '{classes[labels[i]]}'")
            probs = {1.0: soft_labels(logits[i], 1.0).numpy(), float(T): soft_labels(logits[i], T).numpy()}
            plot_soft_labels(probs, classes, true_label=labels[i], ax=ax2,
                             title="teacher's soft labels: T = 1 (plain softmax) vs the slider's T")
            fig.tight_layout()
            plt.show()
            if audio is not None:
                display(Audio(np.asarray(audio[i], dtype=np.float32), rate=sample_rate))

    clip.observe(update, names="value")
    temp.observe(update, names="value")
    print(headline(index, temperature))
    update()
    return widgets.VBox([widgets.HBox([clip, temp]), out])


# =============================================================================
# Notebook 03: ad-hoc pipelines (owned by the ad-hoc pipelines engineer)
# =============================================================================
def describe_breaking_point(rows: "list[dict[str, Any]]", noise: float, size: float) -> str:
    """One line describing a precomputed (noise, size) cell of the classical pipeline grid.

    Example:
        >>> rows = [dict(noise=1.0, size=1.0, recall=.8, precision=.9, accuracy=.95, cnn_accuracy=.96,
        ...              n_gt=10, n_det=9)]
        >>> describe_breaking_point(rows, 1.0, 1.0)
        'noise x1, size x1: blob recall 80.0 %, precision 90.0 %, SVM accuracy 95.0 %, CNN accuracy 96.0 % (10 objects, 9 blobs)'
    """
    matches = [r for r in rows if abs(r["noise"] - noise) < 1e-9 and abs(r["size"] - size) < 1e-9]
    if not matches:
        raise ValueError(f"no precomputed cell at noise={noise}, size={size}; noises "
                         f"{sorted({r['noise'] for r in rows})}, sizes {sorted({r['size'] for r in rows})}")
    r = matches[0]

    def pct(v: float) -> str:  # nan: no blob matched, so there was nothing to classify
        return "n/a" if v != v else f"{100 * v:.1f} %"

    return (f"noise x{noise:g}, size x{size:g}: blob recall {pct(r['recall'])}, precision "
            f"{pct(r['precision'])}, SVM accuracy {pct(r['accuracy'])}, CNN accuracy "
            f"{pct(r['cnn_accuracy'])} ({r['n_gt']} objects, {r['n_det']} blobs)")


def classical_breakdown_explorer(rows: "list[dict[str, Any]]", noise: float = 1.0, size: float = 1.0) -> "Any":
    """Sliders for sensor noise and object size over a precomputed grid (instant).

    Shows an example frame with ground truth and detections, and the recall / precision /
    accuracy curves against noise at the chosen size. The default state is printed and
    drawn at creation, so a headless run shows it too.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from .plots import draw_detections, plot_breaking_point

    noises = sorted({r["noise"] for r in rows})
    sizes = sorted({r["size"] for r in rows})
    if noise not in noises or size not in sizes:
        raise ValueError(f"default noise/size must be grid values: noises {noises}, sizes {sizes}")
    noise_w = widgets.SelectionSlider(options=noises, value=noise, description="noise x")
    size_w = widgets.SelectionSlider(options=sizes, value=size, description="size x")
    out = widgets.Output()

    def update(*_: Any) -> None:
        n, s = noise_w.value, size_w.value
        row = next(r for r in rows if r["noise"] == n and r["size"] == s)
        ex = row["example"]
        with out:
            out.clear_output(wait=True)
            fig = plt.figure(figsize=(11, 3.3))
            grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.15])
            axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])]
            draw_detections(ex["gray"], ex["mask"], ex["gt_boxes"], ex["gt_labels"], ex["det_boxes"],
                            ex["det_labels"], axes=axes)
            plot_breaking_point(rows, s, ax=fig.add_subplot(grid[0, 2]), noise=n)
            fig.tight_layout()
            plt.show()
            print(describe_breaking_point(rows, n, s))

    noise_w.observe(update, names="value")
    size_w.observe(update, names="value")
    print(describe_breaking_point(rows, noise, size))
    update()
    return widgets.VBox([widgets.HBox([noise_w, size_w]), out])


# =============================================================================
# Notebook 04: PhiNets and hardware-aware scaling (owned by the PhiNet engineer)
# =============================================================================
def describe_phinet_solution(budget: "Any", input_shape: "Any", num_classes: int, **search: "Any") -> str:
    """Solve a budget and return the readable answer (or the infeasibility message).

    Example:
        >>> from tinyml_helpers import scaling
        >>> text = describe_phinet_solution(scaling.Budget(1e6, 300, 1e9), (1, 49, 40), 12)
        >>> text.startswith("No PhiNet fits")
        True
    """
    from . import scaling

    try:
        solution = scaling.solve_phinet(budget, input_shape, num_classes, **search)
    except scaling.InfeasibleBudgetError as exc:
        return f"No PhiNet fits. {exc}"
    return solution.summary()


def phinet_budget_explorer(input_shape: "Any" = (1, 49, 40), num_classes: int = 12,
                           mcu: str = "nRF52840", dtype: str = "int8",
                           search: "dict[str, Any] | None" = None) -> "Any":
    """MCU preset dropdown + budget sliders -> the PhiNet the solver picks, with measured costs.

    Picking an MCU loads its flash, SRAM and MAC budget (``scaling.Budget.from_mcu``); the
    sliders then override them. Each change re-solves (measurements are cached, so going
    back to a budget seen before is instant) and shows the choice, its measured flash / RAM
    / MACs against the budget and the binding resource. ``search`` is passed to
    ``scaling.solve_phinet`` (default: a small (beta, t0) grid so each solve takes seconds).
    The default state is printed when the widget is created.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from . import cost, plots, scaling

    search = dict(search or {"betas": (0.5, 1.0, 1.5), "t0s": (2.0, 4.0, 6.0), "max_candidates": 3,
                             "alpha_refine": 0.05})
    start = scaling.Budget.from_mcu(mcu, dtype=dtype)
    dropdown = widgets.Dropdown(options=cost.mcu_names(), value=cost.get_mcu(mcu).name, description="MCU")
    style = {"description_width": "110px"}
    flash = widgets.FloatLogSlider(value=start.flash_bytes / 1024, base=2, min=3, max=14, step=0.25,
                                   description="flash (KB)", continuous_update=False, style=style,
                                   readout_format=".0f")
    ram = widgets.FloatLogSlider(value=start.ram_bytes / 1024, base=2, min=2, max=11, step=0.25,
                                 description="RAM (KB)", continuous_update=False, style=style,
                                 readout_format=".0f")
    macs = widgets.FloatLogSlider(value=start.macs / 1e6, base=2, min=-3, max=9, step=0.25,
                                  description="MACs (M)", continuous_update=False, style=style,
                                  readout_format=".2f")
    precision = widgets.ToggleButtons(options=["int8", "fp32"], value=dtype, description="dtype")
    out = widgets.Output()
    syncing = {"on": False}

    def current_budget() -> "scaling.Budget":
        return scaling.Budget(flash_bytes=flash.value * 1024, ram_bytes=ram.value * 1024,
                              macs=macs.value * 1e6, dtype=precision.value)

    def render() -> str:
        budget = current_budget()
        try:
            solution = scaling.solve_phinet(budget, input_shape, num_classes, **search)
        except scaling.InfeasibleBudgetError as exc:
            return f"No PhiNet fits. {exc}"
        plots.plot_budget_use({"solved PhiNet": solution.costs}, budget.limits())
        plt.title(f"{dropdown.value}: alpha={solution.alpha:g}, beta={solution.beta:g}, "
                  f"t0={solution.t0:g} ({solution.binding} binds)", fontsize=9)
        plt.tight_layout()
        return solution.summary()

    def update(*_: "Any") -> None:
        if syncing["on"]:
            return
        with out:
            out.clear_output(wait=True)
            print(render())
            plt.show()

    def load_mcu(change: "Any") -> None:
        b = scaling.Budget.from_mcu(change["new"], dtype=precision.value)
        syncing["on"] = True
        try:
            flash.value, ram.value, macs.value = b.flash_bytes / 1024, b.ram_bytes / 1024, b.macs / 1e6
        finally:
            syncing["on"] = False
        update()

    dropdown.observe(load_mcu, names="value")
    for w in (flash, ram, macs, precision):
        w.observe(update, names="value")
    # the default state goes to the cell's own output, so a headless run shows it too
    print(render())
    plt.show()
    return widgets.VBox([widgets.HBox([dropdown, precision]), widgets.HBox([flash, ram, macs]), out])
