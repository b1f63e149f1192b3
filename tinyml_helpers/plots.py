"""Plots for the notebooks (presentation layer: computation modules never import it).

One section per notebook, each owned by that notebook's engineer.
"""
from __future__ import annotations

from typing import Any, Sequence


# =============================================================================
# Notebook 02: pruning (owned by the pruning engineer)
# =============================================================================
def plot_accuracy_vs_sparsity(curves: "dict[str, tuple[list[float], list[float]]]", baseline: float | None = None,
                              target: float | None = None, ax: "Any" = None, title: str = "Accuracy vs sparsity") -> "Any":
    """Accuracy (y) against sparsity (x) for several pruning variants.

    ``curves`` maps a label to ``(sparsities, accuracies)``; ``baseline`` draws the unpruned
    accuracy, ``target`` the accuracy floor of incremental pruning.

    Example:
        >>> ax = plot_accuracy_vs_sparsity({"global": ([0, .5, .9], [.9, .88, .6])}, baseline=.9)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, (xs, ys) in curves.items():
        ax.plot([100 * x for x in xs], [100 * y for y in ys], marker="o", ms=3, label=label)
    if baseline is not None:
        ax.axhline(100 * baseline, color="grey", ls=":", lw=1, label="unpruned")
    if target is not None:
        ax.axhline(100 * target, color="tab:red", ls="--", lw=1, label="accuracy floor")
    ax.set_xlabel("weights set to zero (%)")
    ax.set_ylabel("test accuracy (%)")
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
    ax.set_xticks(x + width * (len(names) - 1) / 2, [k.replace("_", " ") for k in keys])
    ax.set_ylabel(f"relative to {reference}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.legend(fontsize=8)
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
