"""Measured kernel costs: cycles of each layer kind on the emulated Cortex-M4, as a small table.

A layer's cycles are modelled as a line in what its kernel loops over (``cycles_per_mac x
MACs + cycles_per_output x outputs + cycles_per_pixel x output positions + cycles_per_input x
input elements + cycles_per_channel x channels + ... + cycles_per_layer``), one line per kind (the firmware's kernels: pointwise
conv, pointwise conv of a one-channel input (``conv1x1c1``: one MAC per output, its own kernel), general conv, depthwise 3x3 at stride 1 and 2, other depthwise, dense, residual add,
global average pool). The coefficients are **measured**: :func:`measure_cost_table` deploys
representative networks (random-weight PhiNets of several widths and the DS-CNN, int8 through
onnxruntime) on the emulator, reads each layer's cycles from the timing model
(:mod:`tinyml_helpers.deploy.timing`) and fits the lines by non-negative least squares. The
table ships as ``kernel_costs.json`` next to this module, so the solver
(:mod:`tinyml_helpers.scaling`) and the notebooks read it instead of re-measuring;
``python -m tinyml_helpers.scripts.measure_kernel_costs`` rebuilds it after a kernel change.

:func:`torch_layer_costs` lists the same layer kinds for an (untrained) PyTorch model, so a
network's cycles can be predicted before it is trained or exported (:func:`predict_cycles`).

Example:
    >>> table = load_cost_table()
    >>> sorted(table["kinds"])[:3]
    ['add', 'conv', 'conv1x1']
    >>> predict_cycles([LayerCost("conv1x1", macs=64_000, outputs=4_000)], table) > 64_000
    True
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = ["LayerCost", "COST_TABLE_PATH", "layer_kind", "deployed_layer_costs", "torch_layer_costs",
           "fit_cost_table", "load_cost_table", "predict_cycles", "measure_cost_table", "KINDS", "FEATURES",
           "KIND_FALLBACK"]

COST_TABLE_PATH = Path(__file__).resolve().parent / "kernel_costs.json"
KINDS = ("conv1x1", "conv1x1c1", "conv", "dw3x3s1", "dw3x3s2", "dwconv", "dense", "add", "gap", "maxpool", "pad", "clamp")


@dataclass(frozen=True)
class LayerCost:
    """One layer as the cost table sees it: its kind (:data:`KINDS`), MACs and output elements
    (and, when measured, its cycles)."""

    kind: str
    macs: int
    outputs: int
    cycles: int = 0
    pixels: int = 0       # output positions (H x W); per-pixel work (im2col, pointers)
    inputs: int = 0       # input elements: the depthwise kernel widens each once
    channels: int = 0     # output channels: per-channel set-up
    odd_macs: int = 0     # MACs of an odd last output channel, which takes the slow single-row path

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        for name in ("macs", "outputs", "cycles", "pixels", "inputs", "channels", "odd_macs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def features(self) -> list[float]:
        """The regressors of the cost line, in :data:`FEATURES` order."""
        return [float(self.macs), float(self.outputs), float(self.pixels), float(self.inputs),
                float(self.channels), float(self.odd_macs), 1.0]


FEATURES = ("cycles_per_mac", "cycles_per_output", "cycles_per_pixel", "cycles_per_input",
            "cycles_per_channel", "cycles_per_odd_channel_mac", "cycles_per_layer")


def layer_kind(layer: Any) -> str:
    """The cost-table kind of a parsed firmware layer (``codegen.Layer``).

    Example:
        >>> from tinyml_helpers.deploy.codegen import Layer
        >>> layer_kind(Layer("c", "QLinearConv", "conv", [], "y", dict(kernel=(1, 1))))
        'conv1x1'
    """
    from .codegen import dw3x3_fast_path

    if layer.kind == "conv":
        if tuple(layer.params["kernel"]) != (1, 1):
            return "conv"
        w = layer.params.get("w")
        one_channel = (w is not None and w.shape[-1] == 1 and tuple(layer.params["stride"]) == (1, 1)
                       and not any(layer.params["pads"]))
        return "conv1x1c1" if one_channel else "conv1x1"   # tm_conv1x1_c1 runs the one-channel case
    if layer.kind == "dwconv":
        if dw3x3_fast_path(layer):
            return f"dw3x3s{layer.params['stride'][0]}"
        return "dwconv"
    return layer.kind


def deployed_layer_costs(dep: Any) -> list[LayerCost]:
    """Every layer of a deployment (``pipeline.deploy_onnx``) with its measured cycles.

    Example:
        >>> # rows = deployed_layer_costs(dep); sum(r.cycles for r in rows) <= dep.stats.cycles
    """
    stats = dep.stats
    if len(stats.per_layer_cycles) != len(dep.model.layers):
        raise ValueError("the deployment has no per-layer cycles: count one inference with the timing model "
                         "(Firmware.infer(x, count=True))")
    rows = []
    for l, c in zip(dep.model.layers, stats.per_layer_cycles):
        t_out, t_in = dep.model.tensors[l.output], dep.model.tensors[l.inputs[0]]
        channels = t_out.shape[0]
        pixels = t_out.size // max(channels, 1)
        odd = pixels * (l.macs // max(t_out.size, 1)) if l.kind == "conv" and channels % 2 else 0
        rows.append(LayerCost(layer_kind(l), int(l.macs), int(t_out.size), int(c), pixels=int(pixels),
                              inputs=int(t_in.size), channels=int(channels), odd_macs=int(odd)))
    return rows


def torch_layer_costs(model: Any, input_shape: Sequence[int]) -> list[LayerCost]:
    """The firmware's layer kinds, MACs and output sizes of a PyTorch model, from one forward
    pass with hooks: Conv2d (depthwise when groups == channels, or a one-channel conv, as
    ``codegen`` deploys it), Linear, residual adds (micromind blocks with ``skip_conn``) and
    global average pooling. BatchNorm and ReLU/ReLU6 fold into the convolutions on export.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, stride=2, padding=1), torch.nn.Conv2d(8, 4, 1))
        >>> [(c.kind, c.macs) for c in torch_layer_costs(net, (1, 8, 8))]
        [('conv', 1152), ('conv1x1', 512)]
    """
    import torch
    from torch import nn

    rows: list[LayerCost] = []

    def conv_hook(m: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
        outputs = int(out[0].numel())
        channels = int(out.shape[1])
        pixels, inputs = outputs // channels, int(inp[0][0].numel())
        kh, kw = m.kernel_size
        depthwise = (m.groups == m.in_channels == m.out_channels) or (m.groups == 1 and m.in_channels == m.out_channels == 1)
        if depthwise:
            ok = (kh, kw) == (3, 3) and tuple(m.dilation) == (1, 1) and m.stride[0] == m.stride[1] and m.stride[0] in (1, 2)
            kind = f"dw3x3s{m.stride[0]}" if ok else "dwconv"
            rows.append(LayerCost(kind, outputs * kh * kw, outputs, pixels=pixels, inputs=inputs, channels=channels))
        elif m.groups == 1:
            kind = "conv1x1" if (kh, kw) == (1, 1) else "conv"
            no_pad = isinstance(m.padding, str) or not any(m.padding)   # "same"/"valid": no pad at 1x1
            if kind == "conv1x1" and m.in_channels == 1 and tuple(m.stride) == (1, 1) and no_pad:
                kind = "conv1x1c1"
            k = kh * kw * m.in_channels
            rows.append(LayerCost(kind, outputs * k, outputs, pixels=pixels, inputs=inputs, channels=channels,
                                  odd_macs=pixels * k if channels % 2 else 0))
        else:
            raise ValueError(f"grouped convolution (groups={m.groups}) has no firmware kernel")

    def linear_hook(m: nn.Linear, inp: Any, out: torch.Tensor) -> None:
        n = int(m.out_features)
        rows.append(LayerCost("dense", int(m.in_features) * n, n, pixels=1, inputs=int(m.in_features), channels=n,
                              odd_macs=int(m.in_features) if n % 2 else 0))

    def gap_hook(m: nn.Module, inp: Any, out: torch.Tensor) -> None:
        n = int(out[0].numel())
        rows.append(LayerCost("gap", int(inp[0][0].numel()), n, pixels=1, inputs=int(inp[0][0].numel()), channels=n))

    def add_hook(m: nn.Module, inp: Any, out: torch.Tensor) -> None:
        if getattr(m, "skip_conn", False):
            n = int(out[0].numel())
            c = int(out.shape[1])
            rows.append(LayerCost("add", n, n, pixels=n // c, inputs=2 * n, channels=c))

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (nn.AdaptiveAvgPool2d,)) and m.output_size in (1, (1, 1)):
            hooks.append(m.register_forward_hook(gap_hook))
        elif hasattr(m, "skip_conn"):
            hooks.append(m.register_forward_hook(add_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *[int(v) for v in input_shape]))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def fit_cost_table(rows: Iterable[LayerCost], source: str = "") -> dict[str, Any]:
    """Fit the cost line (:data:`FEATURES`) per kind by non-negative least squares, weighting
    each layer by 1 / its cycles (relative errors matter).

    Returns ``{"kinds": {kind: {<FEATURES>, "layers", "max_rel_error"}}, "source": ...}``;
    ``max_rel_error`` is the largest relative error of the fit on the layers it was fitted to.

    Example:
        >>> rows = [LayerCost("add", n, n, 3 * n + 40) for n in (100, 400, 900)]
        >>> k = fit_cost_table(rows)["kinds"]["add"]
        >>> round(predict_cycles([LayerCost("add", 200, 200)], {"kinds": {"add": k}}))
        640
    """
    import numpy as np
    from scipy.optimize import nnls

    by_kind: dict[str, list[LayerCost]] = {}
    for r in rows:
        by_kind.setdefault(r.kind, []).append(r)
    if not by_kind:
        raise ValueError("no measured layers to fit")
    kinds: dict[str, Any] = {}
    for kind, rs in sorted(by_kind.items()):
        A = np.array([r.features() for r in rs], dtype=np.float64)
        y = np.array([r.cycles for r in rs], dtype=np.float64)
        scale = np.maximum(y, 1.0)  # relative errors matter: weight each layer by 1 / its cycles
        coef, _ = nnls(A / scale[:, None], y / scale)
        pred = A @ coef
        kinds[kind] = {**{name: float(v) for name, v in zip(FEATURES, coef)}, "layers": len(rs),
                       "max_rel_error": float(np.max(np.abs(pred - y) / scale))}
    return {"kinds": kinds, "source": source}


@functools.lru_cache(maxsize=4)
def _load(path: str) -> str:
    return Path(path).read_text()


def load_cost_table(path: str | Path | None = None) -> dict[str, Any]:
    """The shipped (or a given) cost table.

    Example:
        >>> "dw3x3s1" in load_cost_table()["kinds"]
        True
    """
    p = Path(path) if path is not None else COST_TABLE_PATH
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist: run python -m tinyml_helpers.scripts.measure_kernel_costs")
    return json.loads(_load(str(p)))


# A kind newer than a table falls back to the kind its layers were measured under before it had
# a kernel of its own (the one-channel 1x1 conv went through the general pointwise kernel), so a
# table measured before the kernel existed predicts what it did then.
KIND_FALLBACK = {"conv1x1c1": "conv1x1"}


def predict_cycles(layers: Iterable[LayerCost], table: dict[str, Any] | None = None) -> float:
    """Predicted cycles of a list of layers from a cost table (default: the shipped one).
    A kind the table lacks uses :data:`KIND_FALLBACK` when it names one.

    Example:
        >>> t = {"kinds": {"add": {"cycles_per_mac": 0.0, "cycles_per_output": 3.0, "cycles_per_layer": 40.0}}}
        >>> predict_cycles([LayerCost("add", 100, 100)], t)
        340.0
    """
    table = table if table is not None else load_cost_table()
    total = 0.0
    for r in layers:
        k = table["kinds"].get(r.kind)
        if k is None and r.kind in KIND_FALLBACK:
            k = table["kinds"].get(KIND_FALLBACK[r.kind])
        if k is None:
            raise KeyError(f"the cost table has no entry for layer kind {r.kind!r}; re-measure it with "
                           "python -m tinyml_helpers.scripts.measure_kernel_costs")
        total += sum(k.get(name, 0.0) * x for name, x in zip(FEATURES, r.features()))
    return total


def _random_int8_onnx(model: Any, input_shape: Sequence[int], folder: Path, name: str) -> Path:
    import numpy as np

    from .. import export

    fp32 = export.export_onnx(model, folder / f"{name}.onnx", input_shape)
    cal = np.random.default_rng(0).normal(size=(8, *input_shape)).astype(np.float32)
    return export.quantize_onnx(fp32, folder / f"{name}_int8.onnx", cal)


def measure_cost_table(folder: str | Path, out_path: str | Path | None = COST_TABLE_PATH,
                       phinets: Sequence[tuple[float, float, float]] = (
                           (0.1, 1.0, 2.0), (0.15, 1.5, 4.0), (0.2, 1.0, 3.0), (0.25, 0.5, 2.0),
                           (0.35, 1.5, 6.0), (0.5, 0.75, 4.0)),
                       input_shape: Sequence[int] = (1, 49, 40), num_classes: int = 12,
                       with_dscnn: bool = True) -> dict[str, Any]:
    """Deploy representative networks on the emulator and fit the cost table; write it to
    ``out_path`` (None: only return it). Random weights: the kernels' cycles do not depend on
    the weight values (no data-dependent branches on the hot paths).

    Example:
        >>> # table = measure_cost_table("/tmp/costs")   # about a minute
    """
    import torch

    from ..files import atomic_write_json
    from ..models.phinet import build_phinet
    from . import pipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[LayerCost] = []
    names = []
    nets: list[tuple[str, Any, Sequence[int]]] = []
    for alpha, beta, t0 in phinets:
        torch.manual_seed(0)
        nets.append((f"phinet_a{alpha}_b{beta}_t{t0}",
                     build_phinet(tuple(input_shape), num_classes, alpha, beta, t0, 7, True, seed=0).eval(),
                     input_shape))
    if with_dscnn:
        from ..models.dscnn import DSCNN, MLPERF_KWS_INPUT_SHAPE

        torch.manual_seed(0)
        nets.append(("dscnn", DSCNN().eval(), MLPERF_KWS_INPUT_SHAPE))
    for name, net, shape in nets:
        int8 = _random_int8_onnx(net, shape, folder, name)
        dep = pipeline.deploy_onnx(int8, folder / f"fw_{name}")
        rows += deployed_layer_costs(dep)
        names.append(name)
    table = fit_cost_table(rows, source="measured by deploy.kernel_costs.measure_cost_table on: " + ", ".join(names))
    table["timing"] = "deploy.timing.CortexM4Timing() (no flash wait states), requant='float'"
    if out_path is not None:
        atomic_write_json(Path(out_path), table)
        _load.cache_clear()
    return table
