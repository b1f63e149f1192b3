"""Memory-saving schedules for the code generator: patch-based execution of the first layers.

Layer-by-layer execution keeps every tensor whole, so the peak RAM of a CNN is set by its
first, high-resolution layers (at 160x160 input, an 80x80 tensor of 91 channels alone is
582 KB). MCUNetV2 (Lin, Chen, Lin, Gan, Han, *MCUNetV2: Memory-Efficient Patch-based
Inference for Tiny Deep Learning*, NeurIPS 2021, Fig. 2-3) runs those layers **patch by
patch** instead: the output of the first stages (the *split tensor*) is cut into a grid of
spatial tiles; each tile is computed from its receptive field in the input, through every
layer of the *patch region*, in small per-patch buffers, and written into the whole split
tensor; the rest of the network then runs layer by layer. Neighbouring receptive fields
overlap (the *halo*), and the overlap is computed once per patch that needs it: memory is
bought with recomputed MACs.

This module plans such a schedule from the graph alone (a :class:`~tinyml_helpers.cost.SpatialGraph`,
built from the int8 ONNX graph by :func:`graph_from_int8`), generic over kernel size, stride,
dilation and padding:

* :func:`window_span` / :func:`input_box`: the receptive-field (halo) arithmetic of one
  operator: which input rows/columns an output box reads, and the padding that is really
  padding (only at the tensor's borders);
* :func:`plan_patches`: which layers form the patch region (a prefix of the graph that ends
  at a tensor nothing else crosses), the tiles, each layer's box per patch, the per-patch
  buffers and the MACs the halos recompute;
* :func:`choose_patch_schedule`: the schedule with the fewest extra MACs that fits a RAM
  budget, or an error naming the smallest peak found;
* :func:`simulate_schedule`: the schedule run in NumPy with the firmware's arithmetic (a fast
  bit-exactness check before the emulator).

Peak RAM and MAC overhead come from the cost model (:func:`tinyml_helpers.cost.patch_schedule_peak`),
C emission from :mod:`.codegen`. A graph the planner cannot split (a global operator in the
region, a split tensor smaller than the grid) gives a schedule that falls back to whole-tensor
execution and says why (:attr:`PatchSchedule.reason`).

Example:
    >>> from tinyml_helpers.cost import SpatialGraph, SpatialOp
    >>> g = SpatialGraph("x", {"x": (1, 8, 8), "y": (8, 8, 8), "z": (8, 4, 4), "o": (8, 1, 1)}, [
    ...     SpatialOp("conv", "window", ("x",), "y", (3, 3), pads=(1, 1, 1, 1), macs=4608),
    ...     SpatialOp("dw", "window", ("y",), "z", (3, 3), (2, 2), (1, 1, 1, 1), macs=1152),
    ...     SpatialOp("gap", "global", ("z",), "o", macs=128)])
    >>> s = plan_patches(g, (2, 2))   # conv and dw patch by patch, split after dw
    >>> s.split, s.n_patches, s.peak_bytes, s.whole_tensor_peak_bytes, s.extra_macs
    (1, 4, 428, 640, 1224)
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..cost.memory import SpatialGraph, SpatialOp, patch_schedule_peak, whole_tensor_peak

__all__ = ["Box", "window_span", "input_box", "tile_boxes", "Action", "PatchSchedule", "plan_patches",
           "choose_patch_schedule", "smallest_peak_schedule", "graph_from_int8", "simulate_schedule", "PatchFallbackWarning",
           "ScheduleBudgetError"]


class PatchFallbackWarning(UserWarning):
    """The planner could not split the graph into patches; the firmware runs whole tensors."""


class ScheduleBudgetError(ValueError):
    """No schedule meets the RAM budget; ``smallest_peak`` and ``best`` name the closest one."""

    def __init__(self, message: str, smallest_peak: int, best: "PatchSchedule"):
        super().__init__(message)
        self.smallest_peak = smallest_peak
        self.best = best


@dataclass(frozen=True)
class Box:
    """Rows ``y0:y1`` and columns ``x0:x1`` (half-open) of a tensor, in its own coordinates.

    Example:
        >>> Box(0, 4, 2, 5).union(Box(3, 6, 0, 1)), Box(0, 4, 2, 5).area
        (Box(y0=0, y1=6, x0=0, x1=5), 12)
    """

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def area(self) -> int:
        return self.h * self.w

    def union(self, other: "Box | None") -> "Box":
        # The bounding box: receptive fields of one tile are contiguous, so their union is too
        # (the residual branch and the main branch read overlapping windows).
        if other is None:
            return self
        return Box(min(self.y0, other.y0), max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1))


def window_span(o0: int, o1: int, size: int, kernel: int, stride: int, pad_before: int,
                dilation: int = 1) -> tuple[int, int, int, int]:
    """Input span ``[i0, i1)`` that outputs ``[o0, o1)`` of a sliding window read along one
    axis of length ``size``, and the padding ``(before, after)`` left at the borders.

    Output ``o`` reads inputs ``o*stride - pad_before + k*dilation`` for ``k < kernel``; the
    part of that span outside ``[0, size)`` is padding, anything inside is real input (the
    halo shared with the neighbouring tile).

    Example:
        >>> window_span(0, 10, 80, 3, 2, 1)    # first tile of a 3x3 stride-2 conv: one row of padding
        (0, 20, 1, 0)
        >>> window_span(10, 20, 80, 3, 2, 1)   # an inner tile: 21 input rows, one shared with its neighbour
        (19, 40, 0, 0)
    """
    start = o0 * stride - pad_before
    end = (o1 - 1) * stride - pad_before + (kernel - 1) * dilation + 1
    i0, i1 = max(0, start), min(size, end)
    return i0, i1, i0 - start, end - i1


def input_box(op: SpatialOp, out_box: Box, in_shape: Sequence[int]) -> tuple[Box, tuple[int, int, int, int]]:
    """The box of the input an operator reads to produce ``out_box``, and its per-side
    padding (top, left, bottom, right): the receptive field of the tile.

    Example:
        >>> from tinyml_helpers.cost import SpatialOp
        >>> dw = SpatialOp("dw", "window", ("x",), "y", (3, 3), (1, 1), (1, 1, 1, 1))
        >>> input_box(dw, Box(0, 4, 4, 8), (8, 8, 8))
        (Box(y0=0, y1=5, x0=3, x1=8), (1, 0, 0, 1))
    """
    _, h, w = in_shape[-3:]
    if op.kind == "elementwise":
        return out_box, (0, 0, 0, 0)
    if op.kind == "pad":
        top, left = op.pads[0], op.pads[1]
        y0, y1, pt, pb = window_span(out_box.y0, out_box.y1, h, 1, 1, top)
        x0, x1, pl, pr = window_span(out_box.x0, out_box.x1, w, 1, 1, left)
        return Box(y0, y1, x0, x1), (pt, pl, pb, pr)
    if op.kind == "window":
        y0, y1, pt, pb = window_span(out_box.y0, out_box.y1, h, op.kernel[0], op.stride[0], op.pads[0],
                                     op.dilation[0])
        x0, x1, pl, pr = window_span(out_box.x0, out_box.x1, w, op.kernel[1], op.stride[1], op.pads[1],
                                     op.dilation[1])
        return Box(y0, y1, x0, x1), (pt, pl, pb, pr)
    raise ValueError(f"op {op.name!r} is {op.kind}: it needs the whole tensor, not a window of it")


def tile_boxes(h: int, w: int, grid: tuple[int, int]) -> list[Box]:
    """Cut an ``h x w`` tensor into a ``grid`` (rows, columns) of near-equal tiles, row-major.

    Example:
        >>> [(b.y0, b.y1, b.x0, b.x1) for b in tile_boxes(5, 4, (2, 2))]
        [(0, 2, 0, 2), (0, 2, 2, 4), (2, 5, 0, 2), (2, 5, 2, 4)]
    """
    gh, gw = grid
    ys = [i * h // gh for i in range(gh + 1)]
    xs = [j * w // gw for j in range(gw + 1)]
    return [Box(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(gh) for j in range(gw)]


@dataclass(frozen=True)
class Action:
    """One step of a patch: ``"crop"`` copies a window of a buffer into a small one, ``"op"``
    runs operator ``op_index`` on per-patch buffers, ``"paste"`` writes the tile into the
    whole split tensor. ``inputs``/``output`` are buffer names (``name#patch``, ``name#crop<i>``
    or a whole tensor)."""

    kind: str
    op_index: int
    inputs: tuple[str, ...]
    output: str
    tensor: str = ""  # the graph tensor a crop or an op output holds a box of


@dataclass
class PatchSchedule:
    """A patch-based schedule of a :class:`~tinyml_helpers.cost.SpatialGraph` (or its
    whole-tensor fallback, ``patched == False``, with ``reason`` saying why).

    ``split`` is the index of the patch region's last operator; ``tiles`` the split tensor's
    tiles; ``template`` the actions every patch runs; ``geometry[p][i]`` the boxes of action
    ``i`` in patch ``p``: for a crop ``(src_box, box)``, for an op ``(in_boxes, pads, out_box)``,
    for a paste ``(tile,)``; ``patch_buffers`` the bytes of each per-patch buffer (the largest
    patch's).

    Example:
        >>> from tinyml_helpers.cost import SpatialGraph, SpatialOp
        >>> g = SpatialGraph("x", {"x": (1, 4, 4), "y": (2, 4, 4)}, [SpatialOp("c", "window", ("x",), "y")])
        >>> PatchSchedule(g).summary()
        'whole-tensor execution: peak 48 B'
    """

    graph: SpatialGraph
    grid: tuple[int, int] = (1, 1)
    split: int = -1
    tiles: list[Box] = field(default_factory=list)
    template: list[Action] = field(default_factory=list)
    geometry: list[list[tuple]] = field(default_factory=list)
    patch_buffers: dict[str, int] = field(default_factory=dict)
    region_macs: int = 0
    patched_region_macs: int = 0
    reason: str = ""

    @property
    def patched(self) -> bool:
        return self.split >= 0 and bool(self.tiles)

    @property
    def n_patches(self) -> int:
        return len(self.tiles) if self.patched else 1

    @property
    def extra_macs(self) -> int:
        """MACs the halos recompute (patched region MACs minus the region's whole-tensor MACs)."""
        return self.patched_region_macs - self.region_macs

    @property
    def mac_overhead(self) -> float:
        """Recomputed MACs as a fraction of the whole network's MACs."""
        return self.extra_macs / max(self.graph.macs, 1)

    @functools.cached_property
    def peak_bytes(self) -> int:
        """Peak activation bytes under this schedule (the cost model's ``patch_schedule_peak``)."""
        return patch_schedule_peak(self)[0]

    @property
    def whole_tensor_peak_bytes(self) -> int:
        return whole_tensor_peak(self.graph)

    def summary(self) -> str:
        """One line: grid, split, peak against whole-tensor execution, extra MACs."""
        if not self.patched:
            return (f"whole-tensor execution: peak {self.peak_bytes:,} B"
                    + (f" ({self.reason})" if self.reason else ""))
        op = self.graph.ops[self.split]
        return (f"{self.grid[0]}x{self.grid[1]} patches over layers 0-{self.split} (split after {op.name!r}, "
                f"{'x'.join(map(str, self.graph.shapes[op.output]))}): peak {self.peak_bytes:,} B instead of "
                f"{self.whole_tensor_peak_bytes:,} B, +{self.extra_macs:,} MACs ({self.mac_overhead:+.1%})")


def _consumers(graph: SpatialGraph) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for j, op in enumerate(graph.ops):
        for name in op.inputs:
            out.setdefault(name, []).append(j)
    return out


def _region_problem(graph: SpatialGraph, split: int, grid: tuple[int, int]) -> str:
    """Why ops ``0..split`` cannot run patch by patch on ``grid`` ('' when they can)."""
    if not 0 <= split < len(graph.ops):
        return f"split index {split} is outside the graph's {len(graph.ops)} operators"
    for op in graph.ops[:split + 1]:
        if op.kind == "global":
            return (f"operator {op.name!r} inside the patch region is global (it needs the whole "
                    "tensor, e.g. a global pool or a dense layer)")
        if any(len(graph.shapes[n]) != 3 for n in (*op.inputs, op.output)):
            return f"operator {op.name!r} inside the patch region does not work on (C, H, W) tensors"
    produced = {op.output for op in graph.ops[:split + 1]}
    split_out = graph.ops[split].output
    for op in graph.ops[split + 1:]:
        crossing = [n for n in op.inputs if n in produced and n != split_out]
        if crossing:
            return (f"tensor {crossing[0]!r} of the patch region is also read after it (by {op.name!r}): "
                    "only one tensor may leave the region")
    _, h, w = graph.shapes[split_out]
    if grid[0] > h or grid[1] > w:
        return (f"the split tensor {split_out!r} ({h}x{w}) does not tile into {grid[0]}x{grid[1]} patches "
                "(a patch would be empty)")
    return ""


def _valid_splits(graph: SpatialGraph, grid: tuple[int, int]) -> list[int]:
    return [k for k in range(len(graph.ops)) if not _region_problem(graph, k, grid)]


def _fallback(graph: SpatialGraph, reason: str, warn: bool) -> PatchSchedule:
    if warn:
        warnings.warn(f"patch-based execution not possible, falling back to whole-tensor execution: {reason}",
                      PatchFallbackWarning, stacklevel=3)
    return PatchSchedule(graph, reason=reason)


def _plan_split(graph: SpatialGraph, split: int, grid: tuple[int, int]) -> PatchSchedule | str:
    """The schedule for a valid region, or the reason it fails (a tile reading only padding)."""
    region = graph.ops[:split + 1]
    split_out = region[-1].output
    consumers = _consumers(graph)
    tiles = tile_boxes(*graph.shapes[split_out][1:], grid)
    # Backward pass per tile: the box each tensor must hold so every consumer in the region
    # finds its receptive field in it.
    per_patch: list[tuple[dict[str, Box], list[tuple[list[Box], tuple]]]] = []
    for tile in tiles:
        need: dict[str, Box] = {split_out: tile}
        reads: list[tuple[list[Box], tuple] | None] = [None] * len(region)
        for j in range(split, -1, -1):
            op = region[j]
            if op.output not in need:  # nothing in the region reads it: dead code
                return f"operator {op.name!r} in the patch region produces a tensor nobody reads"
            out_box = need[op.output]
            boxes, pads = [], (0, 0, 0, 0)
            for name in op.inputs:
                box, pads = input_box(op, out_box, graph.shapes[name])
                if box.h <= 0 or box.w <= 0:
                    return f"a patch of {op.name!r} reads only padding (the grid {grid} is too fine)"
                boxes.append(box)
                need[name] = box.union(need.get(name))
            reads[j] = (boxes, pads)
        per_patch.append((need, reads))  # type: ignore[arg-type]
    # Crops: an input whose buffer holds more than this op reads (the graph input, which is
    # whole; a tensor a residual branch also reads) is copied into a small buffer first.
    needs_crop = set()
    for need, reads in per_patch:
        for j, op in enumerate(region):
            for i, name in enumerate(op.inputs):
                held = Box(0, graph.shapes[name][1], 0, graph.shapes[name][2]) if name == graph.input else need[name]
                if reads[j][0][i] != held:
                    needs_crop.add((j, i))
    template: list[Action] = []
    for j, op in enumerate(region):
        ins = []
        for i, name in enumerate(op.inputs):
            src = name if name == graph.input else f"{name}#patch"
            if (j, i) in needs_crop:
                crop = f"{name}#crop{j}.{i}"
                template.append(Action("crop", j, (src,), crop, name))
                ins.append(crop)
            else:
                ins.append(src)
        template.append(Action("op", j, tuple(ins), f"{op.output}#patch", op.output))
    template.append(Action("paste", split, (f"{split_out}#patch",), split_out, split_out))
    geometry, buffers, patched_macs = [], {}, 0
    for tile, (need, reads) in zip(tiles, per_patch):
        steps = []
        for a in template:
            op = region[a.op_index]
            if a.kind == "crop":
                i = int(a.output.rsplit(".", 1)[1])
                src_box = Box(0, graph.shapes[a.tensor][1], 0, graph.shapes[a.tensor][2]) \
                    if a.inputs[0] == graph.input else need[a.tensor]
                box = reads[a.op_index][0][i]
                steps.append((src_box, box))
                size = graph.shapes[a.tensor][0] * box.area
            elif a.kind == "op":
                boxes, pads = reads[a.op_index]
                out_box = need[op.output]
                steps.append((boxes, pads, out_box))
                size = graph.shapes[op.output][0] * out_box.area
                _, oh, ow = graph.shapes[op.output]
                patched_macs += op.macs * out_box.area // (oh * ow)
            else:
                steps.append((tile,))
                continue
            buffers[a.output] = max(buffers.get(a.output, 0), size * graph.elem_bytes)
        geometry.append(steps)
    region_macs = sum(op.macs for op in region)
    return PatchSchedule(graph, tuple(grid), split, tiles, template, geometry, buffers, region_macs,  # type: ignore[arg-type]
                         patched_macs)


def plan_patches(graph: SpatialGraph, grid: int | tuple[int, int], split: int | None = None,
                 warn: bool = True) -> PatchSchedule:
    """Plan patch-based execution of ``graph`` on a ``grid`` of patches (rows, columns; an int
    means a square grid).

    ``split`` is the index of the patch region's last operator; by default every valid
    region (a prefix of local operators with one tensor leaving it) is tried and the one with
    the smallest peak RAM kept (fewer MACs on a tie). A graph that cannot be split this way,
    or a forced ``split`` that is invalid, gives the whole-tensor fallback with ``reason`` set
    and a :class:`PatchFallbackWarning` (``warn=False`` silences it).

    Example:
        >>> from tinyml_helpers.cost import SpatialGraph, SpatialOp
        >>> g = SpatialGraph("x", {"x": (1, 8, 8), "y": (2, 1, 1)}, [SpatialOp("gap", "global", ("x",), "y")])
        >>> plan_patches(g, 2, warn=False).reason
        "operator 'gap' inside the patch region is global (it needs the whole tensor, e.g. a global pool or a dense layer)"
    """
    grid = (grid, grid) if isinstance(grid, int) else tuple(int(v) for v in grid)
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(f"grid must be a positive int or (rows, columns), got {grid!r}")
    if grid == (1, 1):
        return PatchSchedule(graph, reason="one patch is whole-tensor execution")
    if split is not None:
        problem = _region_problem(graph, split, grid)
        if problem:
            return _fallback(graph, problem, warn)
        planned = _plan_split(graph, split, grid)
        return planned if isinstance(planned, PatchSchedule) else _fallback(graph, planned, warn)
    candidates, problem = _candidates(graph, grid)
    if not candidates:
        return _fallback(graph, problem, warn)
    return min(candidates, key=lambda s: (s.peak_bytes, s.extra_macs))


def _candidates(graph: SpatialGraph, grid: tuple[int, int]) -> tuple[list[PatchSchedule], str]:
    """Every valid patch region on ``grid``, and the first reason a region failed."""
    candidates, problems = [], []
    for k in _valid_splits(graph, grid):
        planned = _plan_split(graph, k, grid)
        if isinstance(planned, PatchSchedule):
            candidates.append(planned)
        else:
            problems.append(planned)
    return candidates, (problems[0] if problems else _region_problem(graph, 0, grid))


def choose_patch_schedule(graph: SpatialGraph, ram_budget: int,
                          grids: Iterable[int | tuple[int, int]] = (2, 3, 4, 5, 6, 8),
                          reserved_bytes: int = 0) -> PatchSchedule:
    """The schedule with the fewest recomputed MACs whose peak activation RAM plus
    ``reserved_bytes`` (e.g. kernel scratch) fits ``ram_budget``: whole-tensor execution when
    it fits, else the best (grid, patch region) pair over ``grids`` and every valid region. Raises :class:`ScheduleBudgetError` naming the
    smallest peak found when none fits.

    Example:
        >>> from tinyml_helpers.cost import SpatialGraph, SpatialOp
        >>> g = SpatialGraph("x", {"x": (1, 8, 8), "y": (8, 8, 8), "z": (8, 4, 4), "o": (8, 1, 1)}, [
        ...     SpatialOp("c", "window", ("x",), "y", (3, 3), pads=(1, 1, 1, 1), macs=4608),
        ...     SpatialOp("dw", "window", ("y",), "z", (3, 3), (2, 2), (1, 1, 1, 1), macs=1152),
        ...     SpatialOp("gap", "global", ("z",), "o", macs=128)])
        >>> choose_patch_schedule(g, 10_000).patched, choose_patch_schedule(g, 500).grid
        (False, (2, 2))
    """
    if ram_budget <= 0:
        raise ValueError(f"ram_budget must be positive bytes, got {ram_budget!r}")
    options = [PatchSchedule(graph, reason="no patches")]
    for g in grids:
        g = (g, g) if isinstance(g, int) else tuple(g)
        if g != (1, 1):
            options += _candidates(graph, g)[0]  # every region, not only the smallest-peak one
    fitting = [s for s in options if s.peak_bytes + reserved_bytes <= ram_budget]
    if fitting:
        return min(fitting, key=lambda s: (s.extra_macs, s.peak_bytes))
    best = min(options, key=lambda s: (s.peak_bytes, s.extra_macs))
    raise ScheduleBudgetError(
        f"no schedule fits {ram_budget:,} B of RAM"
        + (f" with {reserved_bytes:,} B reserved" if reserved_bytes else "")
        + f": the smallest peak found is {best.peak_bytes:,} B ({best.summary()}). Try finer grids, "
          "a smaller input or a narrower network", best.peak_bytes, best)


def smallest_peak_schedule(graph: SpatialGraph, grids: Iterable[int | tuple[int, int]] = (2, 3, 4),
                           max_mac_overhead: float = 0.10) -> PatchSchedule:
    """The schedule with the smallest peak RAM whose recomputation stays within
    ``max_mac_overhead`` of the network's MACs (whole-tensor execution when no patch schedule
    beats it): the patch-based memory model of the PhiNet solver.

    Example:
        >>> from tinyml_helpers.cost import SpatialGraph, SpatialOp
        >>> g = SpatialGraph("x", {"x": (1, 8, 8), "y": (8, 8, 8), "z": (8, 4, 4), "o": (8, 1, 1)}, [
        ...     SpatialOp("c", "window", ("x",), "y", (3, 3), pads=(1, 1, 1, 1), macs=4608),
        ...     SpatialOp("dw", "window", ("y",), "z", (3, 3), (2, 2), (1, 1, 1, 1), macs=1152),
        ...     SpatialOp("gap", "global", ("z",), "o", macs=128)])
        >>> smallest_peak_schedule(g, max_mac_overhead=0.25).grid, smallest_peak_schedule(g, max_mac_overhead=0.1).patched
        ((2, 2), False)
    """
    best = PatchSchedule(graph, reason=f"no patch schedule within {max_mac_overhead:.0%} extra MACs lowers the peak")
    for g in grids:
        g = (g, g) if isinstance(g, int) else tuple(g)
        if g == (1, 1):
            continue
        for s in _candidates(graph, g)[0]:
            if s.mac_overhead <= max_mac_overhead and (s.peak_bytes, s.extra_macs) < (best.peak_bytes, best.extra_macs):
                best = s
    return best


# --------------------------------------------------------------------------------------
# From the int8 graph, and a NumPy run of the schedule
# --------------------------------------------------------------------------------------

_KIND_OF_LAYER = {"conv": "window", "dwconv": "window", "maxpool": "window", "add": "elementwise",
                  "clamp": "elementwise", "pad": "pad", "gap": "global", "dense": "global"}


def graph_from_int8(model: Any) -> SpatialGraph:
    """The :class:`~tinyml_helpers.cost.SpatialGraph` of a parsed int8 model
    (:class:`.codegen.Int8Model`): one op per firmware layer, aliases (Flatten/Reshape)
    folded into the buffers they share.

    Example:
        >>> # graph = graph_from_int8(codegen.parse_int8_onnx("model_int8.onnx"))
    """
    ops, shapes = [], {}
    for t in model.tensors.values():
        shapes[model.buffer_of(t.name)] = model.tensors[model.buffer_of(t.name)].shape
    for layer in model.layers:
        p = layer.params
        kind = _KIND_OF_LAYER[layer.kind]
        kw: dict[str, Any] = {}
        if layer.kind in ("conv", "dwconv", "maxpool"):
            pads = p["pads"]
            kw = dict(kernel=tuple(p["kernel"]), stride=tuple(p["stride"]), dilation=tuple(p.get("dil", (1, 1))),
                      pads=(pads[0], pads[1], pads[2], pads[3]))
        elif layer.kind == "pad":
            kw = dict(pads=tuple(p["pads"]))
        ops.append(SpatialOp(layer.name, kind, tuple(model.buffer_of(n) for n in layer.inputs),
                             model.buffer_of(layer.output), macs=layer.macs, **kw))
    return SpatialGraph(model.buffer_of(model.input), shapes, ops, 1)


def _run_layer(layer: Any, ins: list[np.ndarray], pads: tuple[int, int, int, int], requant: str) -> np.ndarray:
    """One firmware layer on (h, w, c) int8 windows with explicit per-side padding."""
    from . import quant

    p = layer.params
    real = p.get("real") if requant == "float" else None
    if layer.kind == "conv":
        return quant.conv2d_ref(ins[0], p["w"], p["bias"], p["x_zp"], p["y_zp"], p["mult"], p["shift"],
                                p["stride"], pads, p["dil"], real=real)
    if layer.kind == "dwconv":
        return quant.dwconv2d_ref(ins[0], p["w"], p["bias"], p["x_zp"], p["y_zp"], p["mult"], p["shift"],
                                  p["stride"], pads, p["dil"], real=real)
    if layer.kind == "maxpool":
        return quant.maxpool2d_ref(ins[0], p["kernel"], p["stride"], pads)
    if layer.kind == "pad":
        return quant.pad2d_ref(ins[0], pads, p["value"])
    if layer.kind == "add":
        from .codegen import add_layer_ref

        y = add_layer_ref(layer, ins[0].reshape(-1), ins[1].reshape(-1), requant)
        return np.asarray(y, np.int8).reshape(ins[0].shape)
    if layer.kind == "clamp":
        return np.clip(ins[0], p["lo"], p["hi"]).astype(np.int8)
    raise AssertionError(layer.kind)


def simulate_schedule(model: Any, schedule: PatchSchedule, x_q: np.ndarray,
                      requant: str | None = None) -> np.ndarray:
    """Run ``model`` (an :class:`.codegen.Int8Model`) the way the patch-scheduled firmware
    does, in NumPy: crops, per-patch layers with border-only padding, pastes, then the rest
    layer by layer. Returns the int8 output; equal to :func:`.codegen.simulate`'s when the
    halo arithmetic is right.

    Example:
        >>> # y = simulate_schedule(model, plan_patches(graph_from_int8(model), 4), model.quantize_input(x))
    """
    from . import codegen

    requant = requant or codegen.DEFAULT_REQUANT  # the rescale the firmware is generated with
    if not schedule.patched:
        return codegen.simulate(model, x_q, requant)[0]
    graph = schedule.graph
    whole: dict[str, np.ndarray] = {}
    c, h, w = graph.shapes[graph.input]
    whole[graph.input] = np.asarray(x_q, np.int8).reshape(h, w, c)
    split_out = graph.ops[schedule.split].output
    sc, sh, sw = graph.shapes[split_out]
    whole[split_out] = np.zeros((sh, sw, sc), np.int8)
    for steps in schedule.geometry:
        bufs: dict[str, np.ndarray] = {}
        for a, geo in zip(schedule.template, steps):
            if a.kind == "crop":
                src_box, box = geo
                src = whole[a.inputs[0]] if a.inputs[0] in whole else bufs[a.inputs[0]]
                bufs[a.output] = src[box.y0 - src_box.y0:box.y1 - src_box.y0, box.x0 - src_box.x0:box.x1 - src_box.x0]
            elif a.kind == "op":
                _, pads, out_box = geo
                ins = [whole[n] if n in whole else bufs[n] for n in a.inputs]
                y = _run_layer(model.layers[a.op_index], ins, pads, requant)
                assert y.shape[:2] == (out_box.h, out_box.w), (a, y.shape, out_box)
                bufs[a.output] = y
            else:
                (tile,) = geo
                whole[split_out][tile.y0:tile.y1, tile.x0:tile.x1] = bufs[a.inputs[0]]
    # the rest, layer by layer, from the split tensor: reuse the whole-graph simulation by
    # feeding it a model that starts at the split tensor
    rest = dataclasses.replace(model, layers=model.layers[schedule.split + 1:], input=split_out)
    if not rest.layers:
        return whole[split_out].reshape(-1)
    return codegen.simulate(rest, whole[split_out].reshape(-1), requant)[0]
