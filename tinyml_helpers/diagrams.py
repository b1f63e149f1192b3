"""Explanatory diagrams for the workshop deck, drawn with matplotlib (presentation layer).

Each function returns a matplotlib Figure of boxes and arrows; nothing is measured here.
The deck shows them as inline SVG (:func:`tinyml_helpers.slides.figure_svg`), so the
built HTML stays one offline file.

* :func:`cloud_vs_edge`: where the raw signal goes, and what leaves the device;
* :func:`kd_teacher_student`: knowledge distillation's two losses;
* :func:`inverted_residual_block`: the block PhiNets (and MobileNetV2) stack, with the
  knob that sets each part's width;
* :func:`mcu_memory_map`: what lives in flash and what in RAM on a microcontroller.

Example:
    >>> fig = kd_teacher_student()
    >>> len(fig.axes)
    1
"""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["cloud_vs_edge", "kd_teacher_student", "inverted_residual_block", "mcu_memory_map"]

_BLUE, _ORANGE, _GREEN, _GREY, _RED = "#dbe9f6", "#fde3c8", "#dcefd9", "#eeeeee", "#f7d4d4"


def _canvas(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, color: str = _BLUE,
         fontsize: float = 11, bold: bool = False) -> tuple[float, float, float, float]:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#444444", lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
            fontweight="bold" if bold else "normal")
    return x, y, w, h


def _arrow(ax: Any, start: Sequence[float], end: Sequence[float], text: str = "", color: str = "#333333",
           fontsize: float = 10, offset: float = 0.18, style: str = "-|>") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color=color, lw=1.6))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + offset, text, ha="center", va="bottom",
                fontsize=fontsize, color=color)


def cloud_vs_edge() -> Any:
    """Two rows: a sensor streaming raw data to the cloud, and a node sending only events.

    Example:
        >>> cloud_vs_edge().get_size_inches().tolist()
        [10.0, 4.2]
    """
    fig, ax = _canvas(10.0, 4.2)
    ax.text(0.1, 3.95, "cloud: the model runs on a server", fontsize=12, fontweight="bold", va="top")
    _box(ax, 0.2, 2.4, 1.9, 1.0, "sensor\n(mic, camera)", _GREY)
    _box(ax, 4.0, 2.4, 1.7, 1.0, "radio", _RED)
    _box(ax, 7.6, 2.4, 2.2, 1.0, "server:\nmodel", _BLUE)
    _arrow(ax, (2.1, 2.9), (4.0, 2.9), "raw signal, 32 kB/s")
    _arrow(ax, (5.7, 2.9), (7.6, 2.9), "every byte, every second", color="#b03030")
    ax.text(0.1, 1.85, "edge: the model runs on the node", fontsize=12, fontweight="bold", va="top")
    _box(ax, 0.2, 0.3, 1.9, 1.0, "sensor", _GREY)
    _box(ax, 3.0, 0.3, 2.2, 1.0, "MCU:\nmodel (KBs)", _GREEN, bold=True)
    _box(ax, 6.3, 0.3, 1.5, 1.0, "radio", _RED)
    _box(ax, 8.6, 0.3, 1.2, 1.0, "cloud", _BLUE)
    _arrow(ax, (2.1, 0.8), (3.0, 0.8), "raw")
    _arrow(ax, (5.2, 0.8), (6.3, 0.8), "events")
    _arrow(ax, (7.8, 0.8), (8.6, 0.8), "bytes/min", color="#2a7a2a")
    fig.tight_layout()
    return fig


def kd_teacher_student() -> Any:
    """The teacher's softened outputs and the true labels both train the small student.

    Example:
        >>> kd_teacher_student().get_size_inches().tolist()
        [10.0, 4.0]
    """
    fig, ax = _canvas(10.0, 4.0)
    _box(ax, 0.1, 1.5, 1.4, 1.0, "input x", _GREY)
    _box(ax, 2.2, 2.6, 2.3, 1.1, "teacher\n(large, trained,\nfrozen)", _BLUE)
    _box(ax, 2.2, 0.3, 2.3, 1.1, "student\n(small: the\nmodel we ship)", _GREEN, bold=True)
    _arrow(ax, (1.5, 2.1), (2.2, 3.1))
    _arrow(ax, (1.5, 1.9), (2.2, 0.9))
    _box(ax, 5.1, 2.75, 1.8, 0.8, "softmax(z / T)", _BLUE, fontsize=10)
    _box(ax, 5.1, 1.45, 1.8, 0.8, "softmax(z / T)", _GREEN, fontsize=10)
    _arrow(ax, (4.5, 3.15), (5.1, 3.15))
    _arrow(ax, (4.5, 1.1), (5.1, 1.75))
    _box(ax, 7.7, 2.1, 2.2, 0.8, "T² · KL(teacher ‖ student)", _ORANGE, fontsize=9.5, bold=True)
    _arrow(ax, (6.9, 3.15), (7.7, 2.7))
    _arrow(ax, (6.9, 1.85), (7.7, 2.3))
    _box(ax, 7.7, 0.3, 2.2, 0.8, "α · CE(y, student)", _ORANGE, fontsize=9.5)
    _arrow(ax, (4.5, 0.7), (7.7, 0.7), "student logits   +   true labels y", fontsize=9, offset=0.05)
    ax.text(8.8, 3.75, "loss = T²·KL + α·CE (+ β·embedding)", ha="center", va="center", fontsize=10,
            fontweight="bold")
    fig.tight_layout()
    return fig


def inverted_residual_block() -> Any:
    """Expand (1x1) -> depthwise (k x k) -> project (1x1), with a skip connection.

    Example:
        >>> inverted_residual_block().get_size_inches().tolist()
        [10.0, 3.6]
    """
    fig, ax = _canvas(10.0, 3.6)
    widths = [("input\nC channels", 0.8, _GREY), ("1x1 conv\nexpand to t·C", 1.8, _BLUE),
              ("k x k depthwise\nt·C channels", 1.8, _ORANGE), ("1x1 conv\nproject to C", 0.8, _BLUE),
              ("output\nC channels", 0.8, _GREY)]
    x = 0.2
    centres = []
    for text, h, color in widths:
        _box(ax, x, 1.6 - h / 2, 1.6, h, text, color, fontsize=9.5)
        centres.append((x, x + 1.6))
        x += 2.0
    for (_, right), (left, _) in zip(centres, centres[1:]):
        _arrow(ax, (right, 1.6), (left, 1.6))
    ax.annotate("", xy=(centres[-1][0] + 0.8, 2.1), xytext=(centres[0][0] + 0.8, 2.1),
                arrowprops=dict(arrowstyle="-|>", color="#2a7a2a", lw=1.4, connectionstyle="arc3,rad=-0.25"))
    ax.text(5.0, 3.45, "skip connection (when shapes match)", ha="center", fontsize=9.5, color="#2a7a2a")
    ax.text(5.0, 0.15, "PhiNet knobs: α scales every C (MACs),  t₀ sets the expansion t (RAM),  "
            "β grows C with depth (flash)", ha="center", fontsize=10)
    fig.tight_layout()
    return fig


def mcu_memory_map(flash_kb: float = 1024, ram_kb: float = 392) -> Any:
    """Flash holds code and weights; RAM holds the activation arena, buffers and stack.

    Example:
        >>> mcu_memory_map().get_size_inches().tolist()
        [10.0, 3.8]
    """
    fig, ax = _canvas(10.0, 3.8)
    ax.text(0.2, 3.6, f"flash ({flash_kb:g} KB): read-only, kept without power", fontsize=11, fontweight="bold",
            va="top")
    parts = [("code +\nkernels", 1.6, _GREY), ("int8 weights\n(1 B each)", 3.0, _GREEN),
             ("int32 biases,\nscales", 1.4, _ORANGE), ("free", 3.6, "white")]
    x = 0.2
    for text, w, color in parts:
        _box(ax, x, 2.0, w - 0.05, 1.0, text, color, fontsize=9.5)
        x += w
    ax.text(0.2, 1.65, f"SRAM ({ram_kb:g} KB): read-write, lost without power", fontsize=11, fontweight="bold",
            va="top")
    parts = [("activation arena:\nlive tensors at the peak", 4.4, _BLUE), ("input /\naudio buffer", 1.8, _GREY),
             ("stack,\nruntime", 1.4, _RED), ("free", 2.0, "white")]
    x = 0.2
    for text, w, color in parts:
        _box(ax, x, 0.05, w - 0.05, 1.0, text, color, fontsize=9.5)
        x += w
    fig.tight_layout()
    return fig
