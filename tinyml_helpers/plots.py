"""Plots for the notebooks (presentation layer: computation modules never import it).

One section per notebook, each owned by that notebook's engineer.
"""
from __future__ import annotations

from typing import Any, Sequence


def format_history(history: "Sequence[dict[str, float]]", name: str = "") -> str:
    """One printed line per training epoch (loss, accuracies, time), for saved notebook copies.

    A tqdm bar renders only its first state in a notebook saved by a headless run; these
    lines show how training went in any copy.

    Example:
        >>> print(format_history([dict(epoch=1, train_loss=0.5, train_accuracy=0.8, val_accuracy=0.75, seconds=2.0)], "cnn"))
        cnn epoch  1: train loss 0.500, train acc 80.0 %, val acc 75.0 %  (2 s)
    """
    lines = []
    for h in history:
        parts = [f"{name + ' ' if name else ''}epoch {int(h['epoch']):>2}:"]
        if "train_loss" in h:
            parts.append(f"train loss {h['train_loss']:.3f},")
        if "train_accuracy" in h:
            parts.append(f"train acc {100 * h['train_accuracy']:.1f} %,")
        if "val_accuracy" in h:
            parts.append(f"val acc {100 * h['val_accuracy']:.1f} %")
        line = " ".join(parts).rstrip(",")
        if "seconds" in h:
            line += f"  ({h['seconds']:.0f} s)"
        lines.append(line)
    return "\n".join(lines)


# =============================================================================
# Notebook 02: pruning (owned by the pruning engineer)
# =============================================================================
def plot_accuracy_vs_sparsity(curves: "dict[str, tuple[list[float], list[float]]]", baseline: float | None = None,
                              target: float | None = None, ax: "Any" = None, title: str = "Accuracy vs sparsity",
                              split: str = "test") -> "Any":
    """Accuracy (y) against sparsity (x) for several pruning variants.

    ``curves`` maps a label to ``(sparsities, accuracies)``; ``baseline`` draws the unpruned
    accuracy, ``target`` the accuracy floor of incremental pruning. ``split`` names the data
    the accuracies were measured on (``"test"`` or ``"validation"``), in the axis label.

    Example:
        >>> ax = plot_accuracy_vs_sparsity({"global": ([0, .5, .9], [.9, .88, .6])}, baseline=.9)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, (xs, ys) in curves.items():
        ax.plot([100 * x for x in xs], [100 * y for y in ys], marker="o", ms=3, label=label)
    if baseline is not None:
        ax.axhline(100 * baseline, color="grey", ls=":", lw=1, label=f"unpruned ({split})")
    if target is not None:
        ax.axhline(100 * target, color="tab:red", ls="--", lw=1, label="accuracy floor")
    ax.set_xlabel("weights set to zero (%)")
    ax.set_ylabel(f"{split} accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_storage_crossover(sparsities: "Sequence[float]", dense_bytes: "Sequence[float]",
                           csr_bytes: "Sequence[float]", analytic: float, empirical: float | None = None,
                           ax: "Any" = None, label: str = "CSR") -> "Any":
    """Dense vs CSR storage against sparsity, with the crossover sparsity marked.

    Example:
        >>> ax = plot_storage_crossover([0, .5, 1], [100, 100, 100], [150, 75, 1], analytic=1/3)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    xs = [100 * s for s in sparsities]
    ax.plot(xs, [b / 1024 for b in dense_bytes], label="dense (zeros stored)", lw=2)
    ax.plot(xs, [b / 1024 for b in csr_bytes], label=label, lw=2)
    ax.axvline(100 * analytic, color="tab:red", ls="--", lw=1, label=f"crossover (formula) {100 * analytic:.1f} %")
    if empirical is not None:
        ax.axvline(100 * empirical, color="k", ls=":", lw=1, label=f"crossover (measured) {100 * empirical:.1f} %")
    ax.set_xlabel("weights set to zero (%)")
    ax.set_ylabel("weight storage (KiB)")
    ax.set_title("When does a sparse format pay off?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_cost_bars(costs: "dict[str, dict[str, float]]", keys: "Sequence[str]" = ("onnx_bytes", "latency_s", "macs", "params"),
                   reference: str | None = None, ax: "Any" = None) -> "Any":
    """Grouped bars of deployment costs relative to ``reference`` (default: the first model).

    Example:
        >>> ax = plot_cost_bars({"dense": {"macs": 10, "params": 5}, "small": {"macs": 4, "params": 2}},
        ...                     keys=("macs", "params"))
    """
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(costs)
    reference = reference or names[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / len(names)
    x = np.arange(len(keys))
    for i, name in enumerate(names):
        ratios = [costs[name][k] / costs[reference][k] for k in keys]
        bars = ax.bar(x + i * width, ratios, width, label=name)
        ax.bar_label(bars, labels=[f"{r:.2f}" for r in ratios], fontsize=7)
    readable = {"onnx_bytes": "ONNX file size", "latency_s": "latency (1 thread)",
                "macs": "MACs", "params": "parameters"}
    ax.set_xticks(x + width * (len(names) - 1) / 2, [readable.get(k, k.replace("_", " ")) for k in keys])
    ax.set_ylabel(f"relative to {reference} (1 = same)")
    ax.set_ylim(0, 1.25)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.legend(fontsize=8, loc="upper right", ncol=len(names))
    ax.set_title("Zeros alone save nothing; removing channels does")
    return ax


def plot_sparsity_schedule(trace: "Sequence[tuple[int, float]]", ax: "Any" = None) -> "Any":
    """The gradual (cubic) pruning schedule as it was applied: sparsity per optimizer step.

    Example:
        >>> ax = plot_sparsity_schedule([(0, 0.0), (10, 0.5), (20, 0.8)])
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.2))
    steps, levels = zip(*trace)
    ax.step(steps, [100 * s for s in levels], where="post")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("sparsity (%)")
    ax.set_title("Gradual magnitude pruning (Zhu & Gupta 2017)")
    ax.grid(alpha=0.3)
    return ax


def plot_layerdrop(kept: "Sequence[int]", accuracies: "dict[str, Sequence[float]]", macs: "Sequence[float]",
                   ax: "Any" = None) -> "Any":
    """Accuracy against the number of kept encoder layers, one line per training recipe.

    Example:
        >>> ax = plot_layerdrop([4, 2], {"plain": [.9, .3], "LayerDrop": [.88, .8]}, [4e6, 2e6])
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, accs in accuracies.items():
        ax.plot(list(kept), [100 * a for a in accs], marker="o", label=label)
    ax.set_xlabel("encoder layers kept at inference")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(list(kept), [f"{k}\n{m / 1e6:.1f} M" for k, m in zip(kept, macs)])
    ax.set_title("Removing layers at inference (x labels: layers, MACs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


# =============================================================================
# Notebook 05: conversion and int8 quantization (owned by the conversion engineer)
# =============================================================================
def plot_weight_int8_grid(weights: "Any", scale: float, zero_point: int = 0, zoom_steps: int = 6,
                          title: str = "one layer's weights on the int8 grid") -> "Any":
    """Histogram of a float weight tensor with its int8 grid: full range, and a zoom near 0.

    Left: every weight, with the representable range ``[(-128 - zp) * scale, (127 - zp) *
    scale]`` shaded. Right: ``zoom_steps`` grid steps either side of 0, each int8 level a
    vertical line, so you see weights snap to the nearest level. Returns the figure.

    Example:
        >>> import numpy as np
        >>> fig = plot_weight_int8_grid(np.random.default_rng(0).normal(0, .1, 500), 0.4 / 127)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    w = np.asarray(weights, dtype=float).ravel()
    fig, (ax_full, ax_zoom) = plt.subplots(1, 2, figsize=(10, 3.4))
    lo, hi = (-128 - zero_point) * scale, (127 - zero_point) * scale
    ax_full.hist(w, bins=80, color="tab:blue", alpha=0.8)
    ax_full.axvspan(lo, hi, color="tab:green", alpha=0.08, label="int8 range")
    for edge in (lo, hi):
        ax_full.axvline(edge, color="tab:green", lw=1)
    ax_full.set(xlabel="weight value", ylabel="count", title=title)
    ax_full.legend(loc="upper right", fontsize=8)
    span = zoom_steps * scale
    near = w[np.abs(w) <= span]
    ax_zoom.hist(near, bins=max(20, 8 * zoom_steps), color="tab:blue", alpha=0.8)
    for level in range(-zoom_steps, zoom_steps + 1):
        ax_zoom.axvline(level * scale, color="tab:red", lw=0.8, alpha=0.7)
    ax_zoom.set(xlabel=f"weight value (red: int8 levels, step = scale = {scale:.3g})",
                title=f"zoom: {zoom_steps} steps either side of 0")
    fig.tight_layout()
    return fig


def plot_latency_bars(latency: "dict[str, dict[str, float]]", ax: "Any" = None,
                      title: str = "latency at batch 1 (median, p10-p90)") -> "Any":
    """Horizontal bars of median latency (ms) with p10-p90 whiskers, one per contender.

    ``latency`` is the output of ``export.benchmark_latency``.

    Example:
        >>> ax = plot_latency_bars({"a": {"median": 1e-3, "p10": 9e-4, "p90": 2e-3}})
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 0.6 + 0.5 * len(latency)))
    names = list(latency)
    med = np.array([latency[n]["median"] for n in names]) * 1e3
    err = np.array([[latency[n]["median"] - latency[n]["p10"], latency[n]["p90"] - latency[n]["median"]]
                    for n in names]).T * 1e3
    ax.barh(names, med, xerr=err, color=["tab:grey", "tab:blue", "tab:orange", "tab:green"][:len(names)],
            capsize=3)
    for y, (v, up) in enumerate(zip(med, err[1])):
        ax.text(v + up, y, f"  {v:.3f} ms", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="milliseconds per clip", title=title)
    ax.set_xlim(0, (med + err[1]).max() * 1.3)
    return ax


def plot_size_breakdown(breakdowns: "dict[str, dict[str, int]]", ax: "Any" = None,
                        title: str = "where the bytes of each ONNX file go") -> "Any":
    """Stacked horizontal bars (KiB) of ``export.size_breakdown`` results, one bar per file.

    Example:
        >>> ax = plot_size_breakdown({"fp32": {"float tensors": 4000, "graph and names": 500, "total": 4500}})
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.8 + 0.45 * len(breakdowns)))
    parts = ["float tensors", "int8 tensors", "int32 tensors", "other tensors", "graph and names"]
    colours = ["tab:blue", "tab:green", "tab:olive", "tab:purple", "tab:grey"]
    names = list(breakdowns)
    left = [0.0] * len(names)
    for part, colour in zip(parts, colours):
        vals = [breakdowns[n].get(part, 0) / 1024 for n in names]
        if any(vals):
            ax.barh(names, vals, left=left, color=colour, label=part)
            left = [a + b for a, b in zip(left, vals)]
    for y, n in enumerate(names):
        ax.text(left[y], y, f"  {breakdowns[n]['total'] / 1024:.1f} KiB", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel="KiB", title=title)
    ax.set_xlim(0, max(left) * 1.2)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, frameon=False)
    return ax


# =============================================================================
# Notebook 00: why TinyML (owned by the cost-model engineer)
# =============================================================================
def plot_data_rates(rates: "dict[str, float]", capacities: "dict[str, float] | None" = None,
                    ax: "Any" = None) -> "Any":
    """Horizontal bars of bytes per second (log scale); dashed lines for link capacities.

    Example:
        >>> ax = plot_data_rates({"raw audio": 32000, "keyword events": 0.1}, {"LoRa SF7": 683.6})
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.5 + 0.45 * len(rates)))
    names, values = list(rates), [max(v, 1e-6) for v in rates.values()]
    bars = ax.barh(names, values, color="tab:blue")
    ax.bar_label(bars, labels=[_bytes_rate_text(v) for v in rates.values()], fontsize=8, padding=3)
    for (label, cap), color in zip((capacities or {}).items(), ("tab:red", "tab:orange", "tab:green", "tab:purple")):
        ax.axvline(cap, color=color, ls="--", lw=1, label=f"{label}: {_bytes_rate_text(cap)}")
    ax.set_xscale("log")
    ax.set_xlabel("bytes per second (log scale)")
    ax.invert_yaxis()
    ax.set_xlim(right=max([*values, *(capacities or {}).values()]) * 30)
    if capacities:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title("What leaves the device: raw data vs events")
    return ax


def _bytes_rate_text(value: float) -> str:
    for scale, unit in ((1e6, "MB/s"), (1e3, "kB/s")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} B/s"


def plot_energy_per_byte_vs_mac(radio_j_per_byte: "dict[str, float]", mac_j: float, mcu_name: str = "MCU",
                                ax: "Any" = None) -> "Any":
    """Energy to send one byte over each radio vs energy of one MAC on an MCU (log scale),
    labelled with how many MACs one radio byte buys.

    Example:
        >>> ax = plot_energy_per_byte_vs_mac({"BLE": 1.15e-7}, 3.1e-10, "nRF52840")
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 2.8))
    names = [f"send 1 byte: {k}" for k in radio_j_per_byte] + [f"1 int8 MAC on {mcu_name}"]
    values = list(radio_j_per_byte.values()) + [mac_j]
    colors = ["tab:red"] * len(radio_j_per_byte) + ["tab:green"]
    bars = ax.barh(names, values, color=colors)
    labels = [f"{v * 1e9:.3g} nJ = {v / mac_j:,.0f} MACs" for v in radio_j_per_byte.values()] + [f"{mac_j * 1e12:.3g} pJ"]
    ax.bar_label(bars, labels=labels, fontsize=8, padding=3)
    ax.set_xscale("log")
    ax.set_xlim(right=max(values) * 200)
    ax.invert_yaxis()
    ax.set_xlabel("energy (J, log scale)")
    ax.set_title("Radio energy per byte vs compute energy per MAC")
    return ax


_MCU_COLORS = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
               "tab:olive", "tab:cyan")  # no orange: models are drawn in orange


def plot_mcus_vs_models(mcus: "Sequence[Any]", costs: "Sequence[Any]", mac_budgets: "dict[str, float]",
                        axes: "Any" = None) -> "Any":
    """Left: MCUs (SRAM vs flash) with models (peak RAM vs int8 flash) on the same log axes,
    over the TinyML target region (KB to MB). Right: MAC budgets vs model MACs.

    ``mcus`` are :class:`tinyml_helpers.cost.MCU`, ``costs`` are :class:`ModelCost`.

    Example:
        >>> from tinyml_helpers import cost
        >>> axes = plot_mcus_vs_models([cost.get_mcu("nRF52840")], [cost.ModelCost(1, 10**6, 30_000, 16_000, name="m")],
        ...                            {"nRF52840": 16e6})
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), gridspec_kw={"width_ratios": [1.25, 1]})
    ax, bx = axes
    kb = 1024
    ax.add_patch(Rectangle((1, 1), 1024 - 1, 4096 - 1, color="tab:green", alpha=0.08, zorder=0))
    ax.text(1.3, 2500, "TinyML target:\nKBs of working memory,\nKBs-MBs of storage", fontsize=8, color="darkgreen",
            va="top")
    markers = "sD^vP*Xph<>"
    for i, m in enumerate(mcus):  # a legend, not labels: several MCUs share a flash size
        ax.scatter(m.sram_bytes / kb, m.flash_bytes / kb, marker=markers[i % len(markers)], s=50,
                   color=_MCU_COLORS[i % len(_MCU_COLORS)], zorder=3, label=m.name, edgecolor="black",
                   linewidth=0.4)
    for c in costs:
        ax.scatter(c.peak_ram_bytes / kb, c.flash_bytes / kb, marker="o", s=45, color="tab:orange", zorder=3)
        ax.annotate(c.name, (c.peak_ram_bytes / kb, c.flash_bytes / kb), fontsize=7, color="tab:orange",
                    xytext=(4, -9), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, 4096)
    ax.set_ylim(1, 16384)
    ax.set_xlabel("RAM: MCU SRAM / model peak activations (KB)")
    ax.set_ylabel("flash: MCU flash / model int8 weights (KB)")
    ax.set_title("Memory: MCUs (markers) vs models (orange dots)")
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    names = list(mac_budgets)
    bx.barh(names, [mac_budgets[n] / 1e6 for n in names], color="tab:blue", alpha=0.7)
    for c, color in zip(costs, ("tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink")):
        bx.axvline(c.macs / 1e6, color=color, ls="--", lw=1.2, label=f"{c.name}: {c.macs / 1e6:.3g} M")
    bx.set_xscale("log")
    bx.invert_yaxis()
    bx.set_xlabel("MACs per inference (millions, log scale)")
    bx.set_title("Compute: MAC budget per inference vs model MACs")
    bx.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    plt.tight_layout()
    return axes


def plot_fit_fractions(reports: "Sequence[Any]", ax: "Any" = None) -> "Any":
    """Grouped bars: fraction of flash / RAM / MAC budget each model uses on one MCU.

    ``reports`` are :class:`tinyml_helpers.cost.FitReport` for the same MCU.

    Example:
        >>> from tinyml_helpers import cost
        >>> ax = plot_fit_fractions([cost.fits(cost.ModelCost(1, 10**6, 30_000, 16_000, name="m"), "nRF52840")])
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.0))
    resources = ["flash", "ram", "macs"]
    colors = {"flash": "tab:blue", "ram": "tab:orange", "macs": "tab:green"}
    x = np.arange(len(reports))
    width = 0.26
    for i, res in enumerate(resources):
        vals = [r.fraction(res) for r in reports]
        ax.bar(x + (i - 1) * width, vals, width, label=res, color=colors[res])
    ax.axhline(1.0, color="tab:red", lw=1, ls="--")
    ax.set_xticks(x, [f"{r.model}\n{'fits' if r.fits else 'too big'} ({r.binding})" for r in reports], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("used / available (log)")
    ax.set_title(f"Which models fit {reports[0].mcu if reports else ''}? (above the red line: too big)")
    ax.legend(fontsize=8)
    return ax


def plot_live_memory(per_step: "dict[str, Sequence[int]]", ax: "Any" = None) -> "Any":
    """Bytes of activations live at each step of each model's graph, with each peak marked.

    ``per_step`` maps a model name to ``cost.live_bytes_per_step(lifetimes)``.

    Example:
        >>> ax = plot_live_memory({"toy": [400, 500, 210]})
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.0))
    for name, values in per_step.items():
        values = list(values)
        steps = [i / max(len(values) - 1, 1) for i in range(len(values))]
        line, = ax.plot(steps, [v / 1024 for v in values], lw=1.2, label=name)
        peak = max(range(len(values)), key=lambda i: values[i])
        ax.scatter([steps[peak]], [values[peak] / 1024], color=line.get_color(), zorder=3)
        ax.annotate(f"peak {values[peak] / 1024:,.1f} KB", (steps[peak], values[peak] / 1024), fontsize=7,
                    xytext=(4, 4), textcoords="offset points", color=line.get_color())
    ax.set_yscale("log")
    ax.set_xlabel("position in the graph (0 = first op, 1 = last op)")
    ax.set_ylabel("live activations (KB, log)")
    ax.set_title("Working memory along the graph (int8, tensor lifetimes)")
    ax.grid(alpha=0.3, lw=0.4)
    ax.legend(fontsize=8)
    return ax


# =============================================================================
# Notebook 01: knowledge distillation (owned by the training/KD engineer)
# =============================================================================
def plot_log_mel(features: "Any", ax: "Any" = None, title: str = "log-mel features") -> "Any":
    """Show one clip's (frames x bands) log-mel features as an image, time running left to right.

    Accepts ``(49, 40)`` or ``(1, 49, 40)`` arrays/tensors.

    Example:
        >>> import numpy as np
        >>> ax = plot_log_mel(np.zeros((1, 49, 40)))
    """
    import matplotlib.pyplot as plt
    import numpy as np

    feats = np.asarray(features.detach().cpu() if hasattr(features, "detach") else features, dtype=float)
    feats = feats.reshape(feats.shape[-2], feats.shape[-1])
    if ax is None:
        _, ax = plt.subplots(figsize=(4.0, 2.6))
    frames, bands = feats.shape
    # 20 ms hop: frame k starts at 20*k ms
    ax.imshow(feats.T, origin="lower", aspect="auto", cmap="magma",
              extent=(0, frames * 0.02, 0, bands))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band")
    ax.set_title(title, fontsize=9)
    return ax


def plot_soft_labels(probs_by_temperature: "dict[float, Sequence[float]]", classes: "Sequence[str]",
                     true_label: int | None = None, ax: "Any" = None, title: str = "teacher's soft labels") -> "Any":
    """Grouped bars: the teacher's class probabilities at several temperatures.

    Example:
        >>> ax = plot_soft_labels({1.0: [0.9, 0.1], 4.0: [0.6, 0.4]}, ["yes", "no"], true_label=0)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 2.8))
    n = len(probs_by_temperature)
    width = 0.8 / max(n, 1)
    xs = np.arange(len(classes))
    for k, (T, probs) in enumerate(sorted(probs_by_temperature.items())):
        ax.bar(xs + (k - (n - 1) / 2) * width, np.asarray(probs, dtype=float), width, label=f"T = {T:g}")
    ax.set_xticks(xs, [c.strip("_") for c in classes], rotation=45, ha="right", fontsize=8)
    if true_label is not None:
        ax.get_xticklabels()[true_label].set_fontweight("bold")
        ax.get_xticklabels()[true_label].set_color("tab:green")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_learning_curves(histories: "dict[str, Sequence[Sequence[dict[str, float]]]]", key: str = "val_accuracy",
                         reference: "dict[str, float] | None" = None, ax: "Any" = None,
                         title: str = "Validation accuracy during training") -> "Any":
    """Mean (line) and min-max over seeds (band) of one history column, per variant.

    ``histories`` maps a variant name to a list (one per seed) of per-epoch dicts as in
    ``TrainResult.history``; ``reference`` draws horizontal lines (e.g. the teacher).

    Example:
        >>> h = [{"epoch": 1, "val_accuracy": .5}, {"epoch": 2, "val_accuracy": .7}]
        >>> ax = plot_learning_curves({"scratch": [h, h]}, reference={"teacher": .9})
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    scale = 100.0 if "accuracy" in key else 1.0
    for name, runs in histories.items():
        values = np.array([[row[key] for row in run] for run in runs], dtype=float) * scale
        epochs = [row["epoch"] for row in runs[0]]
        line, = ax.plot(epochs, values.mean(axis=0), marker="o", ms=3, label=f"{name} (mean of {len(runs)})")
        if len(runs) > 1:
            ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    for name, value in (reference or {}).items():
        ax.axhline(value * scale, ls="--", lw=1, color="grey")
        ax.annotate(name, (ax.get_xlim()[0], value * scale), fontsize=8, color="grey",
                    xytext=(2, 3), textcoords="offset points")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key.replace("_", " ") + (" (%)" if scale == 100.0 else ""))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_variant_accuracies(accuracies: "dict[str, Sequence[float]]", reference: "dict[str, float] | None" = None,
                            ax: "Any" = None, title: str = "Test accuracy per training recipe") -> "Any":
    """Mean +- std per recipe (a marker with error bars) and each seed's accuracy as a dot.

    Markers, not bars: the axis is zoomed on the accuracies, and a bar cut off at 80 %
    would make a one-point gap look like a large one.

    Example:
        >>> ax = plot_variant_accuracies({"scratch": [.7, .72], "KD": [.75, .74]}, reference={"teacher": .9})
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.2))
    names = list(accuracies)
    means = [100 * float(np.mean(accuracies[n])) for n in names]
    stds = [100 * float(np.std(accuracies[n])) for n in names]
    colors = ["tab:grey", "tab:blue", "tab:purple", "tab:green"]
    for i, n in enumerate(names):
        ax.errorbar([i], [means[i]], yerr=[stds[i]], fmt="D", ms=8, capsize=6, color=colors[i % len(colors)],
                    label="mean ± std over seeds" if i == 0 else None)
        ax.scatter([i + 0.12] * len(accuracies[n]), [100 * a for a in accuracies[n]], color="k", s=12, zorder=3,
                   label="one seed" if i == 0 else None)
        ax.annotate(f"{means[i]:.1f}", (i, means[i]), xytext=(-28, 0), textcoords="offset points", fontsize=8,
                    va="center")
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    for name, value in (reference or {}).items():
        ax.axhline(100 * value, ls="--", lw=1, color="grey")
        ax.annotate(name, (-0.55, 100 * value), fontsize=8, color="grey", xytext=(0, 3), textcoords="offset points")
    low = min(min(accuracies[n]) for n in names)
    ax.set_ylim(max(0, 100 * low - 15), 100)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_ylabel("test accuracy (%, axis zoomed)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return ax


# =============================================================================
# Notebook 03: ad-hoc pipelines (owned by the ad-hoc pipelines engineer)
# =============================================================================
_CLASS_COLORS = ("tab:green", "tab:blue")  # person, car


def draw_detections(gray: "Any", mask: "Any", gt_boxes: "Sequence[Sequence[int]]", gt_labels: "Sequence[int]",
                    det_boxes: "Sequence[Sequence[int]]" = (), det_labels: "Sequence[int]" = (),
                    classes: "Sequence[str]" = ("person", "car"), axes: "Any" = None, title: str = "") -> "Any":
    """Frame (left) with ground-truth boxes and the sensor's mask (right) with detected blobs.

    Ground truth is drawn dashed, detections solid, both coloured by class (green = person,
    blue = car). Returns the two axes.

    Example:
        >>> import numpy as np
        >>> axes = draw_detections(np.zeros((8, 8)), np.zeros((8, 8)), [(1, 1, 3, 5)], [0], [(1, 1, 3, 4)], [0])
        >>> len(axes)
        2
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    axes[0].imshow(gray, cmap="gray", vmin=0, vmax=255)
    axes[1].imshow(mask, cmap="gray", vmin=0, vmax=255)
    for (x, y, w, h), lab in zip(gt_boxes, gt_labels):
        axes[0].add_patch(Rectangle((x - .5, y - .5), w, h, fill=False, ls="--", lw=1.2, ec=_CLASS_COLORS[int(lab)]))
    for (x, y, w, h), lab in zip(det_boxes, det_labels):
        axes[1].add_patch(Rectangle((x - .5, y - .5), w, h, fill=False, lw=1.5, ec=_CLASS_COLORS[int(lab)]))
        axes[1].text(x, y - 1, classes[int(lab)], color=_CLASS_COLORS[int(lab)], fontsize=7)
    axes[0].set_title(title or "frame + ground truth (dashed)", fontsize=9)
    axes[1].set_title("sensor mask + detected blobs (SVM label)" if len(det_boxes) else
                      "sensor mask (what the MCU receives)", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    return axes


def plot_accuracy_vs_cost(points: "dict[str, tuple[float, float]]", xlabel: str = "operations per frame",
                          ax: "Any" = None, title: str = "Accuracy vs cost") -> "Any":
    """Scatter of accuracy (y, fractions) against a cost (x, log scale), one labelled point each.

    Example:
        >>> ax = plot_accuracy_vs_cost({"SVM": (1e5, 0.97), "CNN": (1e6, 0.98)})
        >>> ax.get_xscale()
        'log'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (name, (cost, acc)) in enumerate(points.items()):
        ax.scatter([cost], [100 * acc], s=60, color=f"C{i}", zorder=3)
        ax.annotate(name, (cost, 100 * acc), textcoords="offset points",  # alternate: close points stay legible
                    xytext=(6, 4 if i % 2 == 0 else -11), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"{xlabel} (log scale)")
    ax.set_ylabel("test accuracy (%)")
    accs = [100 * a for _, a in points.values()]
    ax.set_ylim(max(0.0, min(accs) - 5), min(100.5, max(accs) + 2))
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return ax


def plot_ops_breakdown(breakdown: "dict[str, float]", cnn_ops: "float | None" = None, ax: "Any" = None,
                       title: str = "Where the operations go (mean per frame)") -> "Any":
    """Horizontal bars of operations per stage of the classical pipeline (and the CNN's, if given).

    Example:
        >>> ax = plot_ops_breakdown({"closing": 1e5, "svm": 5e3}, cnn_ops=4e5)
        >>> len(ax.patches)
        3
    """
    import matplotlib.pyplot as plt

    names = list(breakdown) + (["CNN on the blobs (MACs)"] if cnn_ops is not None else [])
    values = list(breakdown.values()) + ([cnn_ops] if cnn_ops is not None else [])
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.3 * len(names) + 1.2))
    colors = ["C0"] * len(breakdown) + (["C3"] if cnn_ops is not None else [])
    ax.barh(names, values, color=colors)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("operations (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3, which="both")
    return ax


def plot_breaking_point(rows: "Sequence[dict[str, Any]]", size: float, ax: "Any" = None,
                        noise: "float | None" = None, min_samples: int = 10) -> "Any":
    """Blob recall and precision, SVM and CNN accuracy against sensor noise, at one object size.

    Accuracies carry 95 % Wilson intervals when the rows count their matched blobs
    (``n_matched``, ``svm_correct``, ``cnn_correct``); a noise level with fewer than
    ``min_samples`` matched blobs is drawn as a grey hatched band labelled with its n instead
    of a percentage (2 blobs can only give 0, 50 or 100 %).

    Example:
        >>> rows = [dict(noise=n, size=1.0, recall=.9 - n / 10, precision=.9, accuracy=.95, cnn_accuracy=.9)
        ...         for n in (0.0, 1.0, 2.0)]
        >>> len(plot_breaking_point(rows, 1.0).lines)
        4
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .stats import wilson_interval

    sel = sorted((r for r in rows if abs(r["size"] - size) < 1e-9), key=lambda r: r["noise"])
    if not sel:
        raise ValueError(f"no grid rows at size {size}; sizes present: {sorted({r['size'] for r in rows})}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    xs = np.array([r["noise"] for r in sel], dtype=float)
    counted = all("n_matched" in r for r in sel)
    few = np.array([counted and r["n_matched"] < min_samples for r in sel])
    for key, label, style in (("recall", "blob recall (objects found)", "-o"),
                              ("precision", "blob precision (blobs that are objects)", "-s")):
        ax.plot(xs, [100 * r[key] for r in sel], style, label=label, ms=4)
    for key, correct, label, style in (("accuracy", "svm_correct", "SVM accuracy on matched blobs", "-^"),
                                       ("cnn_accuracy", "cnn_correct", "CNN accuracy on the same blobs", "--v")):
        ys = np.array([100 * r[key] if not f else np.nan for r, f in zip(sel, few)], dtype=float)
        line, = ax.plot(xs, ys, style, label=label, ms=4)
        if counted:   # 95 % Wilson interval of each accuracy, from its matched-blob count
            bounds = [wilson_interval(r[correct], r["n_matched"]) if not f else (np.nan, np.nan)
                      for r, f in zip(sel, few)]
            ax.fill_between(xs, [100 * b[0] for b in bounds], [100 * b[1] for b in bounds],
                            color=line.get_color(), alpha=0.15, lw=0)
    step = float(np.min(np.diff(xs))) if len(xs) > 1 else 1.0
    for x, r, f in zip(xs, sel, few):
        if f:
            ax.axvspan(x - step / 3, x + step / 3, facecolor="0.85", edgecolor="0.5", hatch="//", lw=0, zorder=0)
            ax.text(x, 50, f"too few\nblobs\n(n={r['n_matched']})", ha="center", va="center", fontsize=6.5,
                    color="0.25")
    if noise is not None:
        ax.axvline(noise, color="gray", lw=1, ls=":")
    ax.set_xlabel("sensor noise (x the default sensor)")
    ax.set_ylabel("percent (bands: 95 % interval)" if counted else "percent")
    ax.set_ylim(0, 102)
    ax.set_title(f"blob stage and classifiers vs noise (object size x{size:g})", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    return ax


# =============================================================================
# Notebook 06: deployment (owned by the deployment engineer)
# =============================================================================
def plot_memory_map(memory: "dict[str, int]", flash_budget: int, ram_budget: int, arena_bytes: int = 0,
                    scratch_bytes: int = 0, mcu_name: str = "MCU", ax: "Any" = None) -> "Any":
    """Flash and RAM of a firmware as stacked bars against an MCU's budget (fraction of it).

    ``memory`` is :func:`tinyml_helpers.deploy.measure.memory_report`'s dict.

    Example:
        >>> ax = plot_memory_map({"text_bytes": 9000, "rodata_bytes": 40000, "data_bytes": 0,
        ...     "bss_bytes": 30000, "stack_bytes": 400}, 1 << 20, 256 << 10, arena_bytes=29000)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 2.6))
    other_bss = max(memory.get("bss_bytes", 0) - arena_bytes - scratch_bytes, 0)
    bars = {
        "flash": [("code (.text)", memory.get("text_bytes", 0), "tab:blue"),
                  ("weights & constants (.rodata)", memory.get("rodata_bytes", 0), "tab:cyan"),
                  (".data init", memory.get("data_bytes", 0), "tab:gray")],
        "RAM": [("activation arena", arena_bytes, "tab:orange"),
                ("im2col scratch", scratch_bytes, "gold"),
                ("other .bss/.data", other_bss + memory.get("data_bytes", 0), "tab:gray"),
                ("stack (measured peak)", memory.get("stack_bytes", 0), "tab:red")],
    }
    budgets = {"flash": flash_budget, "RAM": ram_budget}
    for row, (name, parts) in enumerate(bars.items()):
        left = 0.0
        for label, size, color in parts:
            width = 100.0 * size / budgets[name]
            ax.barh(row, width, left=left, color=color, edgecolor="white",
                    label=f"{name}: {label} ({size / 1024:.1f} KiB)")
            left += width
        ax.text(left + 0.5, row, f"{left:.1f} % of {budgets[name] / 1024:.0f} KiB", va="center", fontsize=8)
    ax.set_yticks([0, 1], ["flash", "RAM"])
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"share of the {mcu_name}'s memory (%)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(f"Firmware memory map vs {mcu_name}")
    return ax


def plot_arena_plan(plan: "Any", ax: "Any" = None, max_labels: int = 12) -> "Any":
    """The activation arena over time: each buffer is a box from its first to its last step
    (x) at its byte offset (y). Boxes never overlap when the plan is valid.

    Example:
        >>> from tinyml_helpers.cost import TensorLifetime, plan_arena
        >>> ax = plot_arena_plan(plan_arena([TensorLifetime("a", 10, 0, 1), TensorLifetime("b", 6, 1, 2)]))
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.4))
    cmap = plt.get_cmap("tab20")
    items = sorted(plan.lifetimes, key=lambda t: t.first)
    big = sorted(items, key=lambda t: -t.size_bytes)[:max_labels]
    for i, t in enumerate(items):
        off = plan.offsets[t.name]
        ax.add_patch(Rectangle((t.first - 0.45, off / 1024), t.last - t.first + 0.9, t.size_bytes / 1024,
                               facecolor=cmap(i % 20), edgecolor="black", lw=0.5, alpha=0.85))
        if t in big and t.size_bytes / max(plan.total_bytes, 1) > 0.06:
            ax.text(t.first - 0.4, (off + t.size_bytes / 2) / 1024, f"{t.size_bytes / 1024:.1f}K",
                    fontsize=6, va="center")
    last = max((t.last for t in items), default=0)
    ax.axhline(plan.total_bytes / 1024, color="black", ls="--", lw=1,
               label=f"arena {plan.total_bytes / 1024:.1f} KiB")
    ax.set_xlim(-0.8, last + 0.8)
    ax.set_ylim(0, plan.total_bytes / 1024 * 1.08 + 0.01)
    ax.set_xlabel("step (layer index)")
    ax.set_ylabel("offset in arena (KiB)")
    ax.set_title("Activation arena plan: buffers over time")
    ax.legend(fontsize=8, loc="upper right")
    return ax


def plot_layer_instructions(rows: "Sequence[dict[str, Any]]", ax: "Any" = None) -> "Any":
    """Instructions per layer (bars, coloured by kind) and instructions per MAC (dots).

    ``rows`` come from :func:`tinyml_helpers.deploy.pipeline.layer_table`.

    Example:
        >>> ax = plot_layer_instructions([{"index": 0, "kind": "conv", "instructions": 900, "macs": 300,
        ...                                "instr_per_mac": 3.0}])
    """
    import math

    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 3.4))
    colors = {"conv": "tab:blue", "dwconv": "tab:green", "dense": "tab:purple", "add": "tab:orange",
              "gap": "tab:brown", "maxpool": "tab:gray", "pad": "tab:gray", "clamp": "tab:gray"}
    idx = [r["index"] for r in rows]
    ax.bar(idx, [r["instructions"] / 1e3 for r in rows], color=[colors.get(r["kind"], "k") for r in rows])
    ax.set_xlabel("layer")
    ax.set_ylabel("instructions (thousands)")
    ax2 = ax.twinx()
    ipm = [(r["index"], r["instr_per_mac"]) for r in rows if r["macs"] and not math.isnan(r["instr_per_mac"])]
    ax2.plot([i for i, _ in ipm], [v for _, v in ipm], "k.", ms=6)
    ax2.set_ylabel("instructions per MAC (dots)")
    ax2.set_yscale("log")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in colors.items() if k in {r["kind"] for r in rows}]
    ax.legend(handles, [k for k in colors if k in {r["kind"] for r in rows}], fontsize=7, loc="upper right")
    ax.set_title("Where the instructions go, layer by layer")
    return ax


def plot_stream_detections(wave: "Any", sample_rate: int, truth: "Sequence[tuple[float, float, str]]",
                           times: "Any", confidence: "Any", detections: "Sequence[tuple[float, str, float]]",
                           threshold: float | None = None, ax: "Any" = None) -> "Any":
    """A recording with its true keywords (shaded), and the firmware's per-window keyword
    confidence and detections on top.

    Example:
        >>> import numpy as np
        >>> ax = plot_stream_detections(np.zeros(32000), 16000, [(0.5, 1.5, "yes")], np.array([1.0]),
        ...                             np.array([0.9]), [(1.0, "yes", 0.9)])
    """
    import numpy as np
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9.0, 3.2))
    t = np.arange(len(wave)) / sample_rate
    peak = float(np.max(np.abs(wave))) or 1.0
    ax.plot(t, np.asarray(wave) / peak, color="0.6", lw=0.4)
    for start, end, word in truth:
        ax.axvspan(start, end, color="tab:green", alpha=0.15)
        ax.text((start + end) / 2, 1.05, word, ha="center", color="tab:green", fontsize=9)
    ax.plot(times, confidence, color="tab:blue", marker=".", lw=1, label="keyword confidence (firmware)")
    if threshold is not None:
        ax.axhline(threshold, color="tab:blue", ls=":", lw=1)
    for when, word, prob in detections:
        ax.annotate(word, (when, prob), xytext=(0, -16), textcoords="offset points", ha="center",
                    color="tab:red", fontsize=9, arrowprops=dict(arrowstyle="-", color="tab:red"))
    ax.set_ylim(-1.05, 1.2)
    ax.set_xlabel("time (s)")
    ax.set_title("Streaming keyword spotting on the emulated MCU (green: truth, red: detections)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


# =============================================================================
# Notebook 04: PhiNets and hardware-aware scaling (owned by the PhiNet engineer)
# =============================================================================
def plot_family_generalisation(groups: "dict[str, dict[str, tuple[float, float, float]]]", ax: "Any" = None,
                               title: str = "accuracy on a speech-engine family the model never heard") -> "Any":
    """Grouped bars: per engine family, one bar per training setup, with its 95 % interval.

    ``groups[setup][family] = (accuracy, low, high)``; a family a setup has no value for is left blank.

    Example:
        >>> ax = plot_family_generalisation({"other four": {"pico": (0.9, 0.87, 0.92)}})
        >>> tuple(float(v) for v in ax.get_ylim())
        (0.0, 100.0)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.4))
    families = list(dict.fromkeys(f for rows in groups.values() for f in rows))  # first-seen order
    width = 0.8 / max(len(groups), 1)
    for i, (setup, rows) in enumerate(groups.items()):
        xs = [j + (i - (len(groups) - 1) / 2) * width for j, f in enumerate(families) if f in rows]
        vals = [rows[f] for f in families if f in rows]
        acc = np.array([v[0] for v in vals])
        err = np.array([[v[0] - v[1] for v in vals], [v[2] - v[0] for v in vals]])
        ax.bar(xs, 100 * acc, width, yerr=100 * err, capsize=3, label=setup)
        for x, a in zip(xs, acc):
            ax.text(x, 100 * a + 2, f"{100 * a:.0f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(families)), families)
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlabel("engine family tested (all of its clips)")
    ax.axhline(100 / 12, color="grey", lw=0.8, ls=":", label="chance (12 classes)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_voice_curve(points: "dict[int, Sequence[float]]", fit: "tuple[float, float] | None" = None,
                     target: "float | None" = None, ax: "Any" = None) -> "Any":
    """Accuracy on unseen voices against the number of training voices (log scale): every seed's run
    and the mean of each point; optionally a fitted line ``acc = intercept + slope * log2(voices)``
    (``fit = (intercept, slope)``) drawn out to ``target``.

    Example:
        >>> ax = plot_voice_curve({25: [0.71, 0.72], 92: [0.83, 0.84]}, fit=(0.5, 0.05), target=0.95)
        >>> ax.get_xscale()
        'log'
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    voices = sorted(points)
    for v in voices:
        ax.scatter([v] * len(points[v]), 100 * np.asarray(points[v]), color="tab:blue", alpha=0.4, s=18)
    means = [100 * float(np.mean(points[v])) for v in voices]
    ax.plot(voices, means, "o-", color="tab:blue", label="mean of the seeds")
    for v, m in zip(voices, means):
        ax.annotate(f"{m:.1f}", (v, m), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    right = max(voices)
    if fit is not None and target is not None and fit[1] > 0:
        right = max(right, 2 ** ((target - fit[0]) / fit[1]))
    if fit is not None:
        xs = np.geomspace(min(voices), right, 50)
        ax.plot(xs, 100 * (fit[0] + fit[1] * np.log2(xs)), "--", color="grey", lw=1, label="log-linear fit")
    if target is not None:
        ax.axhline(100 * target, color="tab:red", lw=0.8, ls=":", label=f"target {100 * target:.0f} %")
    ax.set_xscale("log")
    doublings = [max(voices) * 2 ** k for k in range(1, 12) if max(voices) * 2 ** k <= right * 1.05]
    ax.set_xticks(voices + doublings, [str(round(v)) for v in voices + doublings])
    ax.minorticks_off()
    ax.set_xlabel("training voices (log scale)")
    ax.set_ylabel("accuracy on unseen voices (%)")
    ax.set_title("accuracy on voices never heard, by the number of voices trained on", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_knob_effects(rows: "Sequence[dict[str, float]]", base: "dict[str, float]",
                      axes: "Any" = None) -> "Any":
    """How measured MACs, peak RAM and params move when ONE knob changes (others at ``base``).

    ``rows`` come from ``scaling.cost_grid``; ``base`` is ``{"alpha":..,"beta":..,"t0":..}``.
    Every curve is relative to the base network. Each panel has its own y-axis: alpha's
    several-fold growth would otherwise flatten the smaller, distinct effects of t0 (RAM)
    and beta (flash) that the lesson is about; each curve's end is labelled with its ratio
    (``x2.3``) so the panels still compare by number.

    Example:
        >>> # axes = plot_knob_effects(scaling.cost_grid(KWS_SHAPE, 12, **GRID), dict(alpha=0.5, beta=1.0, t0=4.0))
    """
    import matplotlib.pyplot as plt

    knobs = ("alpha", "t0", "beta")
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=False)
    key = {k: base[k] for k in knobs}
    ref = next((r for r in rows if all(r[k] == key[k] for k in knobs)), None)
    if ref is None:
        raise ValueError(f"the grid has no row at the base point {key}")
    metrics = (("macs", "MACs", "tab:orange"), ("peak_ram_bytes", "peak RAM", "tab:blue"),
               ("flash_bytes", "flash (params)", "tab:green"))
    for ax, knob in zip(axes, knobs):
        line = sorted((r for r in rows if all(r[k] == key[k] for k in knobs if k != knob)),
                      key=lambda r: r[knob])
        xs = [r[knob] for r in line]
        ends = []
        for metric, label, color in metrics:
            ys = [r[metric] / ref[metric] for r in line]
            ax.plot(xs, ys, "o-", color=color, label=label, ms=4)
            ends.append((ys[-1], color))
        lo, hi = ax.get_ylim()
        placed: list[float] = []   # label heights in axes fractions, kept >= 0.07 apart
        for y, color in sorted(ends):
            frac = (y - lo) / (hi - lo)
            frac = max(frac, placed[-1] + 0.07) if placed else frac
            placed.append(frac)
            ax.annotate(f"x{y:.2f}", (xs[-1], y), xytext=(4, (frac - (y - lo) / (hi - lo)) * ax.bbox.height * 72 / ax.figure.dpi),
                        textcoords="offset points", va="center", fontsize=7, color=color)
        ax.axhline(1.0, color="grey", lw=0.6)
        ax.set_xlabel(knob)
        ax.set_title(f"vary {knob} (own y-axis)", fontsize=10)
        ax.grid(alpha=0.3, lw=0.4)
        ax.margins(x=0.18)
        ax.set_ylabel("relative to the base network")
    axes[0].legend(fontsize=8)
    return axes


def plot_closed_form_vs_measured(rows: "Sequence[dict[str, float]]", color_by: str = "t0",
                                 axes: "Any" = None) -> "Any":
    """Scatter of measured vs closed-form params, MACs and RAM (log-log, with y = x)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    pairs = (("cf_params", "params", "params"), ("cf_macs", "macs", "MACs"),
             ("cf_ram", "peak_ram_bytes", "RAM (bytes)"))
    values = sorted({r[color_by] for r in rows})
    cmap = plt.get_cmap("viridis", max(len(values), 2))
    for ax, (cf, meas, label) in zip(axes, pairs):
        for i, v in enumerate(values):
            pts = [r for r in rows if r[color_by] == v]
            ax.scatter([r[cf] for r in pts], [r[meas] for r in pts], s=18, color=cmap(i),
                       label=f"{color_by}={v:g}")
        lo = min(min(r[cf] for r in rows), min(r[meas] for r in rows))
        hi = max(max(r[cf] for r in rows), max(r[meas] for r in rows))
        line = np.geomspace(lo * 0.8, hi * 1.25, 10)
        ax.plot(line, line, color="grey", lw=0.8, ls="--", label="y = x")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"closed form {label}")
        ax.set_ylabel(f"measured {label}")
        ax.grid(alpha=0.3, lw=0.4, which="both")
    axes[0].legend(fontsize=7)
    return axes


def plot_per_block_costs(rows: "Sequence[dict[str, Any]]", ax: "Any" = None) -> "Any":
    """Grouped bars per network part: closed-form vs measured MACs (strided blocks marked)."""
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["cf_macs"] / 1e6 for r in rows], 0.4, label="closed form", color="tab:gray")
    ax.bar(x + 0.2, [r["macs"] / 1e6 for r in rows], 0.4, label="measured", color="tab:orange")
    ax.set_xticks(x, [r["part"] + (" (s2)" if r.get("stride") == 2 else "") for r in rows],
                  rotation=30, fontsize=8)
    ax.set_ylabel("MMACs")
    ax.set_title("Where the MAC closed form deviates, part by part")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, lw=0.4, axis="y")
    return ax


def plot_budget_use(named_costs: "dict[str, Any]", limits: "dict[str, float]", ax: "Any" = None) -> "Any":
    """Horizontal bars: fraction of each budget (flash, RAM, MACs) each network uses.

    ``named_costs`` maps a label to an object with ``flash_bytes``, ``peak_ram_bytes`` and
    ``macs`` attributes (``scaling.PhiNetCosts`` or ``cost.ModelCost``); ``limits`` maps
    those attribute names to the budget. Bars beyond 1.0 (red line) do not fit.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    keys = [k for k in ("flash_bytes", "peak_ram_bytes", "macs") if k in limits]
    labels = {"flash_bytes": "flash", "peak_ram_bytes": "RAM", "macs": "MACs"}
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.6 + 0.55 * len(named_costs) * len(keys) / 2))
    height = 0.8 / max(len(named_costs), 1)
    y = np.arange(len(keys))
    for i, (name, c) in enumerate(named_costs.items()):
        fractions = [getattr(c, k) / limits[k] for k in keys]
        bars = ax.barh(y + i * height, fractions, height, label=name)
        ax.bar_label(bars, labels=[f"{f:.0%}" for f in fractions], fontsize=7, padding=2)
    ax.axvline(1.0, color="red", lw=1.0)
    ax.set_yticks(y + height * (len(named_costs) - 1) / 2, [labels[k] for k in keys])
    ax.set_xlabel("fraction of the budget")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, lw=0.4, axis="x")
    return ax


def plot_patch_tradeoff(rows: "Sequence[dict[str, Any]]", ram_budget: float, whole_peak: float,
                        ax: "Any" = None) -> "Any":
    """Peak activation RAM (bars, left axis) and recomputed MACs (line, right axis) against the
    number of patches of a patch-based schedule (MCUNetV2); the whole-tensor peak and the RAM
    budget as horizontal lines. ``rows`` have ``patches``, ``peak_bytes`` and ``mac_overhead``.

    Example:
        >>> ax = plot_patch_tradeoff([dict(patches=1, peak_bytes=700e3, mac_overhead=0.0),
        ...                           dict(patches=4, peak_bytes=300e3, mac_overhead=0.01)], 392 * 1024, 700e3)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 3.2))
    x = np.arange(len(rows))
    peaks = [r["peak_bytes"] / 1024 for r in rows]
    colors = ["tab:green" if r["peak_bytes"] <= ram_budget else "tab:gray" for r in rows]
    bars = ax.bar(x, peaks, color=colors, width=0.6)
    ax.bar_label(bars, labels=[f"{p:.0f}" for p in peaks], fontsize=7, padding=2)
    ax.axhline(ram_budget / 1024, color="red", lw=1.0, label=f"RAM budget ({ram_budget / 1024:.0f} KiB)")
    ax.axhline(whole_peak / 1024, color="black", ls="--", lw=0.8,
               label=f"whole tensors ({whole_peak / 1024:.0f} KiB)")
    ax.set_xticks(x, [str(r["patches"]) for r in rows])
    ax.set_xlabel("number of patches (1 = whole-tensor execution)")
    ax.set_ylabel("peak activation RAM (KiB)")
    ax.set_ylim(0, max(peaks + [whole_peak / 1024]) * 1.15)
    twin = ax.twinx()
    twin.plot(x, [100 * r["mac_overhead"] for r in rows], "o-", color="tab:purple", label="recomputed MACs")
    twin.set_ylabel("recomputed MACs (% of the network)", color="tab:purple")
    twin.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper center")
    ax.grid(alpha=0.3, lw=0.4, axis="y")
    return ax


def plot_model_comparison(table: "dict[str, dict[str, float]]",
                          keys: "Sequence[str]" = ("accuracy", "params", "macs", "peak_ram_bytes", "flash_bytes"),
                          axes: "Any" = None) -> "Any":
    """One small bar panel per metric, one bar per model (e.g. PhiNet vs DS-CNN)."""
    import matplotlib.pyplot as plt

    titles = {"accuracy": "test accuracy", "params": "parameters", "macs": "MACs",
              "peak_ram_bytes": "peak RAM (int8, bytes)", "flash_bytes": "flash (int8, bytes)"}
    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(2.3 * len(keys), 2.8))
    names = list(table)
    colors = plt.get_cmap("tab10").colors
    for ax, key in zip(axes, keys):
        vals = [table[n][key] for n in names]
        bars = ax.bar(range(len(names)), vals, color=[colors[i % 10] for i in range(len(names))])
        fmt = (lambda v: f"{v:.1%}") if key == "accuracy" else (lambda v: f"{v / 1e3:,.0f}k" if v < 1e6 else f"{v / 1e6:.2f}M")
        ax.bar_label(bars, labels=[fmt(v) for v in vals], fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
        ax.set_title(titles.get(key, key), fontsize=9)
        ax.margins(y=0.15)
    return axes


# =============================================================================
# Notebook 02 (continued): L0 gates (owned by the pruning engineer)
# =============================================================================
def plot_l0_channels(channels_by_lambda: "dict[str, Sequence[int]]", layers: "Sequence[str]", full: int,
                     accuracy: "dict[str, float] | None" = None, params_ratio: "dict[str, float] | None" = None,
                     dense_accuracy: float | None = None, axes: "Any" = None) -> "Any":
    """Channels kept per layer for several L0 weights (left), accuracy vs parameters (right).

    ``channels_by_lambda`` maps a label (e.g. ``"lambda=0.02"``) to the channels kept in
    each of ``layers``; ``full`` is the unpruned width. The right panel is drawn when
    ``accuracy`` and ``params_ratio`` (same labels) are given.

    Example:
        >>> axes = plot_l0_channels({"a": [60, 40], "b": [30, 10]}, ["stem", "pw0"], 64,
        ...                         {"a": .95, "b": .8}, {"a": .7, "b": .2}, dense_accuracy=.96)
    """
    import matplotlib.pyplot as plt
    import numpy as np

    two = accuracy is not None and params_ratio is not None
    if axes is None:
        _, axes = plt.subplots(1, 2 if two else 1, figsize=(11 if two else 6.4, 3.6), squeeze=False)
        axes = axes[0]
    ax = axes[0]
    labels = list(channels_by_lambda)
    width = 0.8 / max(1, len(labels))
    xs = np.arange(len(layers))
    for i, label in enumerate(labels):
        ax.bar(xs + (i - (len(labels) - 1) / 2) * width, list(channels_by_lambda[label]), width, label=label,
               color=f"C{i}")
    ax.axhline(full, color="grey", ls=":", lw=1, label="unpruned")
    ax.set_xticks(xs, list(layers), fontsize=8)
    ax.set_ylabel("channels kept")
    ax.set_ylim(0, 1.45 * full)
    ax.set_title("Channels whose test-time gate is open")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    ax.grid(alpha=0.3, axis="y")
    if two:
        ax = axes[1]
        for i, label in enumerate(labels):
            ax.scatter(100 * params_ratio[label], 100 * accuracy[label], s=40, color=f"C{i}")
            ax.annotate(label, (100 * params_ratio[label], 100 * accuracy[label]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        if dense_accuracy is not None:
            ax.scatter([100], [100 * dense_accuracy], marker="*", s=90, color="black")
            ax.annotate("dense", (100, 100 * dense_accuracy), fontsize=8, xytext=(-12, -14), textcoords="offset points")
        ax.set_xlim(0, 115)
        ax.set_xlabel("parameters of the smaller model (% of dense)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("After removing the closed channels")
        ax.grid(alpha=0.3)
    return axes
