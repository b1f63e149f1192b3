"""Peak activation RAM from tensor lifetimes, and a static arena planner.

Parameters live in flash; what an MCU needs in RAM at inference time is the *working
memory*: the activation tensors that exist at the same moment. We compute it from the
model's graph, executed in a fixed order (the order a runtime such as TensorFlow Lite Micro
uses: the graph's topological order), under this **memory model**:

1. The graph runs one operator per *step* (0, 1, 2, ...). A tensor is **live** from the step
   that produces it until the step of its **last consumer**. The graph input is live from
   step 0; the graph outputs stay live until the last step (someone reads them afterwards).
2. At a step, the live set is: the operator's inputs, its output, and every tensor produced
   earlier that a later step still needs (e.g. the skip branch of a residual block).
   Input and output of an operator are live together: kernels do not write in place.
3. Weights, biases and other constants (initializers, ``get_attr``, shape arithmetic) live
   in flash and are not counted.
4. **Aliases.** Reshape / Flatten / View / Squeeze / Unsqueeze / Identity / Dropout (and ONNX
   Quantize/DequantizeLinear in a QDQ graph, which only mark what an int8 runtime stores)
   do not copy: their output shares the input's buffer, whose lifetime is extended to the
   last consumer of either.
5. **In-place activations.** By default (``inplace_activations=True``) ReLU, ReLU6/Clip/
   Hardtanh and BatchNorm reuse their input buffer *when no one else reads that input*:
   at conversion BatchNorm folds into the convolution and ReLU/ReLU6 become the
   convolution's fused activation, so no separate tensor exists on the MCU. Other
   element-wise ops (Hardswish, Sigmoid, Add, Mul) get their own output buffer.
   Set ``inplace_activations=False`` to see the un-fused PyTorch graph.
6. Element size: ``dtype`` for a PyTorch graph (1 byte for int8); for ONNX the tensor's own
   element type, unless ``bytes_per_element`` overrides it. A QDQ graph is costed as the
   int8 runtime that executes it: a buffer in a Q/DQ alias group takes its smallest size.

The peak of the live-set total over all steps is a lower bound on any runtime's activation
arena. :func:`plan_arena` places the tensors at offsets in one 1-D arena (greedy by size,
first-fit, respecting overlapping lifetimes), which is how static planners such as TFLM's
``GreedyMemoryPlanner`` work; its total is usually equal or close to the peak.

Written here because no maintained Python library computes lifetime-based peak memory of a
PyTorch or ONNX graph with an MCU runtime's conventions; ``torch.fx`` and ``onnx`` supply
the graphs and shapes.

Example:
    >>> lts = [TensorLifetime("x", 100, 0, 1), TensorLifetime("a", 200, 0, 1), TensorLifetime("b", 50, 1, 1)]
    >>> peak_live_bytes(lts)
    (350, 1, ('x', 'a', 'b'))
    >>> plan_arena(lts).total_bytes
    352
"""
from __future__ import annotations

import dataclasses
import math
import operator
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .counts import DTYPE_BYTES, normalize_dtype, normalize_input_shape

__all__ = [
    "TensorLifetime",
    "ArenaPlan",
    "lifetimes_from_torch",
    "lifetimes_from_onnx",
    "peak_live_bytes",
    "live_bytes_per_step",
    "peak_activation_bytes",
    "plan_arena",
    "SpatialOp",
    "SpatialGraph",
    "whole_tensor_lifetimes",
    "whole_tensor_peak",
    "patch_schedule_lifetimes",
    "patch_schedule_peak",
    "spatial_graph_from_torch",
]


@dataclass(frozen=True)
class TensorLifetime:
    """One activation buffer: its size and the steps ``first..last`` (inclusive) it is live.

    ``aliases`` lists every graph tensor name that shares this buffer (itself included);
    ``shape`` and ``producer`` are informative.

    Example:
        >>> TensorLifetime("conv1_out", 1024, first=1, last=3).overlaps(TensorLifetime("y", 8, 3, 4))
        True
    """

    name: str
    size_bytes: int
    first: int
    last: int
    shape: tuple[int, ...] = ()
    producer: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.size_bytes, (int,)) or isinstance(self.size_bytes, bool) or self.size_bytes < 0:
            raise ValueError(f"tensor {self.name!r}: size_bytes must be a non-negative integer, "
                             f"got {self.size_bytes!r}")
        if not (isinstance(self.first, int) and isinstance(self.last, int)) or self.first < 0 \
                or self.last < self.first:
            raise ValueError(f"tensor {self.name!r}: need 0 <= first <= last, got first={self.first}, "
                             f"last={self.last} (a tensor is live from its producer to its last consumer)")
        if not self.aliases:
            object.__setattr__(self, "aliases", (self.name,))

    def overlaps(self, other: "TensorLifetime") -> bool:
        """True when the two tensors are live at a common step."""
        return self.first <= other.last and other.first <= self.last


def _validate_lifetimes(lifetimes: Iterable[TensorLifetime]) -> list[TensorLifetime]:
    items = list(lifetimes)
    for item in items:
        if not isinstance(item, TensorLifetime):
            raise TypeError(f"expected TensorLifetime objects, got {type(item).__name__}; build them with "
                            "lifetimes_from_torch / lifetimes_from_onnx or TensorLifetime(name, size, first, last)")
    names = [t.name for t in items]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"tensor names must be unique, repeated: {dup}")
    return items


def live_bytes_per_step(lifetimes: Iterable[TensorLifetime]) -> list[int]:
    """Total bytes live at each step ``0..last step``.

    Example:
        >>> live_bytes_per_step([TensorLifetime("x", 10, 0, 0), TensorLifetime("y", 5, 0, 1)])
        [15, 5]
    """
    items = _validate_lifetimes(lifetimes)
    if not items:
        return []
    n = max(t.last for t in items) + 1
    delta = [0] * (n + 1)
    for t in items:
        delta[t.first] += t.size_bytes
        delta[t.last + 1] -= t.size_bytes
    out, acc = [], 0
    for s in range(n):
        acc += delta[s]
        out.append(acc)
    return out


def peak_live_bytes(lifetimes: Iterable[TensorLifetime]) -> tuple[int, int, tuple[str, ...]]:
    """``(peak bytes, step of the peak, names live then)``; the first step wins a tie.

    Example:
        >>> peak_live_bytes([TensorLifetime("in", 4, 0, 0), TensorLifetime("out", 2, 0, 1)])
        (6, 0, ('in', 'out'))
    """
    items = _validate_lifetimes(lifetimes)
    if not items:
        return 0, 0, ()
    per_step = live_bytes_per_step(items)
    step = max(range(len(per_step)), key=lambda s: (per_step[s], -s))
    names = tuple(t.name for t in items if t.first <= step <= t.last)
    return per_step[step], step, names


# --------------------------------------------------------------------------------------
# Arena planning
# --------------------------------------------------------------------------------------

@dataclass
class ArenaPlan:
    """Offsets of every activation buffer in one arena, and the arena's size.

    ``offsets[name]`` is the byte offset of buffer ``name`` (use :meth:`offset_of` to look
    up any alias). ``total_bytes`` is the arena size; ``peak_bytes`` the lifetime lower bound.
    """

    lifetimes: list[TensorLifetime]
    offsets: dict[str, int]
    total_bytes: int
    alignment: int
    peak_bytes: int = 0
    _alias_to_buffer: dict[str, str] = field(default_factory=dict, repr=False)

    def offset_of(self, tensor_name: str) -> int:
        """Offset of a tensor, following aliases (a Flatten output shares its input's bytes)."""
        buffer = self._alias_to_buffer.get(tensor_name, tensor_name)
        if buffer not in self.offsets:
            raise KeyError(f"no tensor named {tensor_name!r} in this plan; known buffers: "
                           f"{sorted(self.offsets)[:20]}")
        return self.offsets[buffer]

    @property
    def efficiency(self) -> float:
        """``peak_bytes / total_bytes`` (1.0 = the plan wastes nothing)."""
        return self.peak_bytes / self.total_bytes if self.total_bytes else 1.0

    def validate(self) -> bool:
        """Raise AssertionError if two buffers live at the same step share any byte.

        Example:
            >>> plan_arena([TensorLifetime("a", 8, 0, 1), TensorLifetime("b", 8, 1, 2)]).validate()
            True
        """
        items = sorted(self.lifetimes, key=lambda t: self.offsets[t.name])
        for i, a in enumerate(items):
            a0 = self.offsets[a.name]
            if a0 % self.alignment:
                raise AssertionError(f"{a.name} at offset {a0} is not {self.alignment}-byte aligned")
            if a0 + a.size_bytes > self.total_bytes:
                raise AssertionError(f"{a.name} ends at {a0 + a.size_bytes}, past the arena ({self.total_bytes} B)")
            for b in items[i + 1:]:
                b0 = self.offsets[b.name]
                if b0 >= a0 + a.size_bytes:
                    break
                if a.overlaps(b) and a.size_bytes and b.size_bytes:
                    raise AssertionError(
                        f"{a.name} [{a0}, {a0 + a.size_bytes}) and {b.name} [{b0}, {b0 + b.size_bytes}) "
                        f"overlap in memory while both are live (steps {a.first}-{a.last} and {b.first}-{b.last})")
        return True

    def table(self) -> str:
        """Buffers sorted by offset: name, offset, size, lifetime."""
        lines = [f"{'tensor':<32} {'offset':>9} {'bytes':>9}  steps", "-" * 62]
        for t in sorted(self.lifetimes, key=lambda t: (self.offsets[t.name], t.first)):
            lines.append(f"{t.name[:32]:<32} {self.offsets[t.name]:>9,} {t.size_bytes:>9,}  {t.first}-{t.last}")
        lines.append(f"arena {self.total_bytes:,} B (lifetime peak {self.peak_bytes:,} B, "
                     f"efficiency {self.efficiency:.0%}, alignment {self.alignment})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def plan_arena(lifetimes: Iterable[TensorLifetime], alignment: int = 4) -> ArenaPlan:
    """Place buffers in one arena: largest first, each at the lowest aligned offset that
    does not collide with an already-placed buffer whose lifetime overlaps.

    Example:
        >>> plan = plan_arena([TensorLifetime("a", 10, 0, 1), TensorLifetime("b", 10, 2, 3)])
        >>> plan.offsets, plan.total_bytes   # disjoint lifetimes share the same bytes
        ({'a': 0, 'b': 0}, 12)
    """
    if not isinstance(alignment, int) or alignment < 1:
        raise ValueError(f"alignment must be a positive integer (bytes), got {alignment!r}")
    items = _validate_lifetimes(lifetimes)
    order = sorted(items, key=lambda t: (-t.size_bytes, t.first, t.name))
    placed: list[tuple[int, int, TensorLifetime]] = []  # (start, end, tensor)
    offsets: dict[str, int] = {}
    for t in order:
        size = _align(t.size_bytes, alignment)
        busy = sorted((s, e) for s, e, other in placed if other.overlaps(t) and e > s)
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, _align(end, alignment))
        offsets[t.name] = offset
        placed.append((offset, offset + size, t))
    total = max((e for _, e, _ in placed), default=0)
    alias_map = {alias: t.name for t in items for alias in t.aliases}
    peak = peak_live_bytes(items)[0]
    return ArenaPlan(lifetimes=items, offsets={t.name: offsets[t.name] for t in items},
                     total_bytes=total, alignment=alignment, peak_bytes=peak, _alias_to_buffer=alias_map)


# --------------------------------------------------------------------------------------
# Graph walking shared by the PyTorch and ONNX front ends
# --------------------------------------------------------------------------------------

@dataclass
class _Op:
    name: str
    kind: str            # "compute", "alias" (view-like) or "inplace" (may reuse its input)
    inputs: list[str]
    output: str
    output_bytes: int
    output_shape: tuple[int, ...] = ()


def _lifetimes_from_ops(ops: list[_Op], graph_inputs: dict[str, tuple[int, tuple[int, ...]]],
                        graph_outputs: Sequence[str], inplace_activations: bool,
                        min_size_aliases: bool = False) -> list[TensorLifetime]:
    """Turn an ordered op list into buffer lifetimes (memory model in the module docstring)."""
    consumers: dict[str, list[int]] = {}
    for idx, op in enumerate(ops):
        for name in op.inputs:
            consumers.setdefault(name, []).append(idx)

    # Buffers: root name -> [size, shape, producer, first step, aliases]
    root: dict[str, str] = {}
    size: dict[str, int] = {}
    shape: dict[str, tuple[int, ...]] = {}
    producer: dict[str, str] = {}
    first: dict[str, int] = {}
    members: dict[str, list[str]] = {}
    for name, (nbytes, shp) in graph_inputs.items():
        root[name] = name
        size[name], shape[name], producer[name], first[name] = nbytes, shp, "input", 0
        members[name] = [name]

    for idx, op in enumerate(ops):
        data_inputs = [n for n in op.inputs if n in root]
        share = None
        if op.kind == "alias" and data_inputs:
            share = root[data_inputs[0]]
        elif op.kind == "inplace" and inplace_activations and data_inputs:
            src = data_inputs[0]
            src_root = root[src]
            others = [i for m in members[src_root] for i in consumers.get(m, []) if i != idx]
            # reuse only if no one else reads the buffer after this step, and it is not a graph input
            if producer[src_root] != "input" and not any(i > idx for i in others) \
                    and not any(m in graph_outputs for m in members[src_root]):
                share = src_root
        if share is not None:
            root[op.output] = share
            members[share].append(op.output)
            if min_size_aliases:
                size[share] = min(size[share], op.output_bytes)
            continue
        root[op.output] = op.output
        size[op.output], shape[op.output] = op.output_bytes, op.output_shape
        producer[op.output], first[op.output] = op.name, idx
        members[op.output] = [op.output]

    last_step = max(len(ops) - 1, 0)
    lifetimes = []
    for buf, names in members.items():
        uses = [i for n in names for i in consumers.get(n, [])]
        end = max([first[buf], *uses])
        if any(n in graph_outputs for n in names):
            end = last_step
        lifetimes.append(TensorLifetime(name=buf, size_bytes=int(size[buf]), first=first[buf], last=end,
                                        shape=tuple(shape[buf]), producer=producer[buf], aliases=tuple(names)))
    return lifetimes


# --------------------------------------------------------------------------------------
# PyTorch front end (torch.fx)
# --------------------------------------------------------------------------------------

def _torch_op_kind(node: Any, modules: dict[str, Any]) -> str:
    import torch
    import torch.nn.functional as F
    from torch import nn

    alias_modules = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
    inplace_modules = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    alias_methods = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "view_as",
                     "reshape_as", "expand", "expand_as"}
    alias_functions = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, F.dropout}
    inplace_functions = {F.relu, torch.relu, F.relu6, F.hardtanh, torch.relu_, F.relu_, F.batch_norm}
    if node.op == "call_module":
        module = modules[node.target]
        if isinstance(module, alias_modules):
            return "alias"
        if isinstance(module, inplace_modules):
            return "inplace"
        return "compute"
    if node.op == "call_method":
        if node.target in alias_methods:
            return "alias"
        if node.target in {"relu", "relu_", "clamp", "clamp_"}:
            return "inplace"
        return "compute"
    if node.op == "call_function":
        if node.target in alias_functions:
            return "alias"
        if node.target in inplace_functions or node.target in (torch.clamp, torch.clip):
            return "inplace"
    return "compute"


def _fx_lifetimes(model: Any, shape: tuple[int, ...], elem: int, inplace_activations: bool) -> list[TensorLifetime]:
    import torch
    import torch.fx as fx
    from torch.fx.passes.shape_prop import ShapeProp

    traced = fx.symbolic_trace(model)
    ShapeProp(traced).propagate(torch.zeros(1, *shape))
    modules = dict(traced.named_modules())

    def meta_size(node: Any) -> tuple[int, tuple[int, ...]] | None:
        meta = node.meta.get("tensor_meta")
        if meta is None:
            return None  # non-tensor (an int from x.size(), ...)
        if hasattr(meta, "shape"):
            shp = tuple(int(v) for v in meta.shape)
            return math.prod(shp) * elem, shp
        if isinstance(meta, (tuple, list)):
            # a tuple of tensors (torch.chunk, split, an LSTM's outputs): one buffer holding all
            parts = [m for m in meta if hasattr(m, "shape")]
            if parts:
                return sum(math.prod(int(v) for v in m.shape) for m in parts) * elem, ()
        return None

    static: set[str] = set()
    graph_inputs: dict[str, tuple[int, tuple[int, ...]]] = {}
    ops: list[_Op] = []
    outputs: list[str] = []
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            info = meta_size(node)
            if info:
                graph_inputs[node.name] = info
            continue
        if node.op == "get_attr":
            static.add(node.name)
            continue
        if node.op == "output":
            outputs = [a.name for a in node.all_input_nodes]
            continue
        ins = [a.name for a in node.all_input_nodes]
        info = meta_size(node)
        if info is None or all(n in static for n in ins):
            # shape arithmetic or constant folding: no activation buffer on the MCU
            static.add(node.name)
            continue
        data_ins = [n for n in ins if n not in static]
        kind = _torch_op_kind(node, modules)
        if node.op == "call_function" and node.target is operator.getitem and node.all_input_nodes \
                and isinstance(node.all_input_nodes[0].meta.get("tensor_meta"), (tuple, list)):
            kind = "alias"  # picking one tensor out of a tuple: it already lives in the tuple's buffer
        ops.append(_Op(node.name, kind, data_ins, node.name, info[0], info[1]))
    # an output that is a tuple of tensors: follow getitem-free outputs only
    return _lifetimes_from_ops(ops, graph_inputs, outputs, inplace_activations)


def lifetimes_from_torch(model: Any, input_shape: Sequence[int], dtype: str = "int8",
                         inplace_activations: bool = True) -> list[TensorLifetime]:
    """Activation buffer lifetimes of a PyTorch model for ONE input (batch of 1).

    The graph is traced with ``torch.fx`` and shapes come from running it on zeros. If the
    model cannot be traced (data-dependent Python control flow), the model is exported to
    ONNX (TorchScript exporter) and the ONNX graph is walked instead, with a warning.
    Memory model: see the module docstring. ``dtype`` sets bytes per activation element.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
        >>> [(t.name, t.size_bytes, t.first, t.last) for t in lifetimes_from_torch(net, (1, 8, 8))]
        [('input_1', 64, 0, 0), ('_0', 256, 0, 2)]
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    shape = normalize_input_shape(input_shape)
    elem = DTYPE_BYTES[normalize_dtype(dtype)]
    was_training = model.training
    model.eval()
    try:
        try:
            with torch.no_grad():
                return _fx_lifetimes(model, shape, elem, inplace_activations)
        except Exception as exc:  # fx cannot trace data-dependent control flow, or the shape is wrong
            try:
                with torch.no_grad():
                    model(torch.zeros(1, *shape))
            except Exception as run_exc:
                raise ValueError(
                    f"the model cannot run on an input of shape {(1, *shape)} (a batch of 1 added in front of "
                    f"input_shape={shape}): {type(run_exc).__name__}: {run_exc}. Pass input_shape without the "
                    "batch dimension, in the layout the model expects, e.g. (1, 49, 10).") from run_exc
            warnings.warn(
                f"torch.fx could not trace {type(model).__name__} ({type(exc).__name__}: {str(exc)[:200]}); "
                "falling back to walking its ONNX export (TorchScript exporter).", RuntimeWarning, stacklevel=2)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.onnx"
                with warnings.catch_warnings():  # the exporter's TracerWarnings repeat what we said
                    warnings.simplefilter("ignore")
                    torch.onnx.export(model, (torch.zeros(1, *shape),), str(path), dynamo=False)
                return lifetimes_from_onnx(path, bytes_per_element=elem,
                                           inplace_activations=inplace_activations)
    finally:
        model.train(was_training)


def peak_activation_bytes(model: Any, input_shape: Sequence[int], dtype: str = "int8",
                          inplace_activations: bool = True) -> int:
    """Peak activation RAM (bytes) of one inference, from tensor lifetimes.

    Example:
        >>> import torch
        >>> peak_activation_bytes(torch.nn.Sequential(torch.nn.Linear(100, 10)), (100,))  # 100 in + 10 out
        110
    """
    return peak_live_bytes(lifetimes_from_torch(model, input_shape, dtype, inplace_activations))[0]


# --------------------------------------------------------------------------------------
# ONNX front end
# --------------------------------------------------------------------------------------

_ONNX_ALIAS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout",
               "QuantizeLinear", "DequantizeLinear"}
_ONNX_INPLACE = {"Relu", "Clip", "BatchNormalization", "LeakyRelu"}
_ONNX_STATIC = {"Constant", "Shape", "Size", "ConstantOfShape"}


def _onnx_elem_bytes(elem_type: int) -> int:
    import onnx

    np_dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
    return int(np_dtype.itemsize)


def _shapes_from_onnxruntime(model: Any, names: list[str]) -> dict[str, tuple[int, tuple[int, ...]]]:
    """Shapes that ONNX shape inference could not derive (e.g. com.microsoft QLinear* contrib
    ops of a QOperator int8 graph): run the graph once on zeros with onnxruntime and read them."""
    import numpy as np
    import onnx

    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is pinned in requirements.txt
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known_outputs = {o.name for o in probe.graph.output}
    for name in names:
        if name not in known_outputs:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    initializers = {init.name for init in probe.graph.initializer}
    feeds = {}
    for vi in probe.graph.input:
        if vi.name in initializers:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        feeds[vi.name] = np.zeros(dims, dtype=onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
        options.log_severity_level = 3
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        values = session.run(names, feeds)
    except Exception:  # the caller reports the tensors that still have no shape
        return {}
    out = {}
    for name, value in zip(names, values):
        value = np.asarray(value)
        out[name] = (int(onnx.helper.np_dtype_to_tensor_dtype(value.dtype)), tuple(int(v) for v in value.shape))
    return out


def lifetimes_from_onnx(path_or_model: Any, bytes_per_element: int | None = None,
                        inplace_activations: bool = True) -> list[TensorLifetime]:
    """Activation buffer lifetimes of an ONNX graph (file path or ``onnx.ModelProto``).

    Shapes and element types come from ``onnx.shape_inference`` (and, for contrib operators it
    does not know, such as ``QLinearGlobalAveragePool``, from one onnxruntime run on zeros); an int8 QOperator graph
    (QLinearConv, ...) or QDQ graph is costed at its int8 sizes. ``bytes_per_element``
    overrides every element size (e.g. 1 to cost an fp32 graph as int8). A symbolic first
    dimension is taken as a batch of 1; other unknown dimensions are an error.
    Memory model: see the module docstring (nodes run in the file's order, which ONNX
    requires to be topological).

    Example:
        >>> import onnx
        >>> from onnx import helper, TensorProto
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
        >>> [(t.name, t.size_bytes) for t in lifetimes_from_onnx(helper.make_model(g))]
        [('x', 32), ('y', 32)]
    """
    import onnx

    if isinstance(path_or_model, (str, os.PathLike)):
        from ..onnx_file import load_onnx

        model = load_onnx(path_or_model)  # missing or damaged file: one message naming it
    elif isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
    else:
        raise TypeError(f"expected an ONNX file path or onnx.ModelProto, got {type(path_or_model).__name__}")
    if bytes_per_element is not None and (not isinstance(bytes_per_element, int) or bytes_per_element < 1):
        raise ValueError(f"bytes_per_element must be a positive integer or None, got {bytes_per_element!r}")
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph

    static = {init.name for init in graph.initializer}
    static |= {"" }
    types: dict[str, tuple[int, tuple[int, ...]]] = {}

    def read_type(vi: Any) -> None:
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            return
        dims = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif i == 0:
                dims.append(1)  # symbolic batch: one input at a time on an MCU
            else:
                dims = None
                break
        if dims is not None:
            types[vi.name] = (tt.elem_type, tuple(dims))

    for vi in [*graph.input, *graph.value_info, *graph.output]:
        read_type(vi)

    produced = [o for node in graph.node for o in node.output if o and o not in types and o not in static]
    if produced:
        types.update(_shapes_from_onnxruntime(model, produced))

    def nbytes(name: str) -> tuple[int, tuple[int, ...]]:
        if name not in types:
            raise ValueError(
                f"ONNX tensor {name!r} has no fully known shape after shape inference; export the model "
                "with a fixed input shape (no dynamic axes other than the batch)")
        elem_type, shp = types[name]
        elem = bytes_per_element or _onnx_elem_bytes(elem_type)
        return math.prod(shp) * elem, shp

    graph_inputs = {}
    for vi in graph.input:
        if vi.name not in static:
            graph_inputs[vi.name] = nbytes(vi.name)
    ops: list[_Op] = []
    for idx, node in enumerate(graph.node):
        data_ins = [n for n in node.input if n and n not in static]
        if node.op_type in _ONNX_STATIC or not data_ins:
            static.update(node.output)
            continue
        if node.op_type in _ONNX_ALIAS:
            kind = "alias"
            data_ins = data_ins[:1]
        elif node.op_type in _ONNX_INPLACE:
            kind = "inplace"
            data_ins = data_ins[:1]
        else:
            kind = "compute"
        outputs = [o for o in node.output if o]
        name = node.name or f"{node.op_type}_{idx}"
        for k, out in enumerate(outputs):
            if k > 0 and node.op_type in ("Dropout", "BatchNormalization"):
                continue  # mask / running-stat outputs are unused at inference
            size, shp = nbytes(out)
            ops.append(_Op(name, kind, data_ins, out, size, shp))
    outputs = [o.name for o in graph.output]
    return _lifetimes_from_ops(ops, graph_inputs, outputs, inplace_activations, min_size_aliases=True)


# --------------------------------------------------------------------------------------
# Spatial graphs and patch-based schedules (MCUNetV2)
# --------------------------------------------------------------------------------------
# The whole-tensor model above keeps every tensor whole. MCUNetV2 (Lin, Chen, Lin, Gan, Han,
# "MCUNetV2: Memory-Efficient Patch-based Inference for Tiny Deep Learning", NeurIPS 2021)
# runs the first, high-resolution layers patch by patch: the big early tensors then only ever
# exist one tile (plus its halo) at a time. To cost that, the planner needs more than sizes:
# each operator's kernel, stride and padding. A SpatialGraph carries exactly that; the
# planner itself (which layers, how many patches, the halo arithmetic) lives in
# ``tinyml_helpers.deploy.schedule`` and the functions below turn its schedule into buffer
# lifetimes, so the patch model and the whole-tensor model share one definition of "peak".

SPATIAL_KINDS = ("window", "elementwise", "pad", "global")


@dataclass(frozen=True)
class SpatialOp:
    """One operator as the patch planner sees it.

    ``kind`` is ``"window"`` (a kernel sliding over H and W: conv, depthwise conv, max-pool),
    ``"elementwise"`` (add, clamp: output pixel = function of the same input pixel),
    ``"pad"`` (constant padding by ``pads``) or ``"global"`` (needs the whole tensor: global
    pooling, dense, flatten). ``pads`` is (top, left, bottom, right); inputs and output are
    buffer names of a :class:`SpatialGraph`.

    Example:
        >>> SpatialOp("dw", "window", ("x",), "y", kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)).kind
        'window'
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    output: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    macs: int = 0

    def __post_init__(self) -> None:
        if self.kind not in SPATIAL_KINDS:
            raise ValueError(f"op {self.name!r}: kind must be one of {SPATIAL_KINDS}, got {self.kind!r}")


@dataclass
class SpatialGraph:
    """Operators in execution order over named buffers with their shapes ((C, H, W) or (N,)).

    ``elem_bytes`` is the activation element size (1 for int8).

    Example:
        >>> g = SpatialGraph("x", {"x": (1, 8, 8), "y": (4, 8, 8)},
        ...                  [SpatialOp("c", "window", ("x",), "y", (3, 3), pads=(1, 1, 1, 1), macs=2304)])
        >>> whole_tensor_peak(g)
        320
    """

    input: str
    shapes: dict[str, tuple[int, ...]]
    ops: list[SpatialOp]
    elem_bytes: int = 1

    @property
    def output(self) -> str:
        return self.ops[-1].output

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    def nbytes(self, name: str) -> int:
        return int(math.prod(self.shapes[name])) * self.elem_bytes


def _chain_lifetimes(steps: Sequence[tuple[Sequence[str], str]], sizes: dict[str, int], start: int = 0,
                     live_from_start: Sequence[str] = (), keep_to_end: Sequence[str] = ()) -> list[TensorLifetime]:
    """Lifetimes of buffers used by ``steps`` ((inputs, output) per step, numbered from
    ``start``): live from the producing step to the last reading step (memory model above)."""
    first: dict[str, int] = {name: start for name in live_from_start}
    last: dict[str, int] = {name: start for name in live_from_start}
    for i, (ins, out) in enumerate(steps, start):
        first.setdefault(out, i)
        last[out] = max(last.get(out, i), i)
        for name in ins:
            first.setdefault(name, i)
            last[name] = max(last.get(name, i), i)
    end = start + max(len(steps) - 1, 0)
    for name in keep_to_end:
        if name in last:
            last[name] = end
    return [TensorLifetime(name, int(sizes[name]), first[name], last[name]) for name in first]


def whole_tensor_lifetimes(graph: SpatialGraph) -> list[TensorLifetime]:
    """Buffer lifetimes when every operator runs on whole tensors (the module's memory model).

    Example:
        >>> g = SpatialGraph("x", {"x": (1, 4, 4), "y": (2, 4, 4)}, [SpatialOp("c", "window", ("x",), "y")])
        >>> [(t.name, t.size_bytes) for t in whole_tensor_lifetimes(g)]
        [('x', 16), ('y', 32)]
    """
    sizes = {name: graph.nbytes(name) for name in graph.shapes}
    return _chain_lifetimes([(op.inputs, op.output) for op in graph.ops], sizes,
                            live_from_start=[graph.input], keep_to_end=[graph.output])


def whole_tensor_peak(graph: SpatialGraph) -> int:
    """Peak activation bytes of ``graph`` under the whole-tensor model (see
    :func:`whole_tensor_lifetimes`; example in :class:`SpatialGraph`)."""
    return peak_live_bytes(whole_tensor_lifetimes(graph))[0]


def patch_schedule_lifetimes(schedule: Any) -> list[TensorLifetime]:
    """Buffer lifetimes of a patch schedule (``tinyml_helpers.deploy.schedule.PatchSchedule``).

    Steps ``0..P-1`` are one patch's actions (crop, operator, paste), which every patch
    repeats on the same per-patch buffers; the graph input and the split tensor (the patch
    region's output) stay whole and live through the whole patch phase. Steps ``P..`` run the
    remaining operators on whole tensors. A schedule that fell back to whole-tensor execution
    gives :func:`whole_tensor_lifetimes`.

    Example:
        >>> # lts = patch_schedule_lifetimes(schedule.plan_patches(graph, (2, 2)))
    """
    graph = schedule.graph
    if not schedule.patched:
        return whole_tensor_lifetimes(graph)
    split_out = graph.ops[schedule.split].output
    sizes = {name: graph.nbytes(name) for name in graph.shapes}
    sizes.update(schedule.patch_buffers)
    patch_steps = [(a.inputs, a.output) for a in schedule.template]
    # every patch crops from the whole input and pastes into the whole split tensor: both
    # live through all the patch steps
    lts = _chain_lifetimes(patch_steps, sizes, live_from_start=[graph.input, split_out],
                           keep_to_end=[graph.input, split_out])
    p = len(patch_steps)
    rest = [(op.inputs, op.output) for op in graph.ops[schedule.split + 1:]]
    if not rest:  # the region is the whole graph: the split tensor is the output
        return lts
    rest_lts = _chain_lifetimes(rest, sizes, start=p, live_from_start=[split_out], keep_to_end=[graph.output])
    # the split tensor is one buffer from the first patch to its last whole-tensor reader
    merged = {t.name: t for t in lts}
    for t in rest_lts:
        if t.name in merged:
            old = merged[t.name]
            merged[t.name] = TensorLifetime(t.name, t.size_bytes, old.first, t.last)
        else:
            merged[t.name] = t
    return list(merged.values())


def patch_schedule_peak(schedule: Any) -> tuple[int, float]:
    """``(peak activation bytes, MAC overhead)`` of a patch schedule.

    The overhead is the MACs that overlapping halos recompute, as a fraction of the whole
    network's MACs (MCUNetV2 reports about 10 % for its networks); a whole-tensor fallback
    has no overhead.

    Example:
        >>> # peak, overhead = patch_schedule_peak(schedule.plan_patches(graph, (4, 4)))
    """
    peak = peak_live_bytes(patch_schedule_lifetimes(schedule))[0]
    return int(peak), float(schedule.mac_overhead)


_SPATIAL_ALIAS_MODULES = ("BatchNorm2d", "ReLU", "ReLU6", "Hardtanh", "Identity", "Dropout", "Dropout2d")


def _spatial_alias_functions() -> tuple:
    import torch
    import torch.nn.functional as F

    # activations that fuse into the op before them (micromind's compatibility ReLU6 is a clamp)
    return (F.relu, F.relu6, F.hardtanh, torch.relu, torch.clamp, torch.clip)


def spatial_graph_from_torch(model: Any, input_shape: Sequence[int], dtype: str = "int8") -> SpatialGraph:
    """The :class:`SpatialGraph` of a PyTorch CNN (one input), traced with ``torch.fx``.

    Conv2d and MaxPool2d become window ops; BatchNorm and ReLU/ReLU6 fold into the op before
    them (as they do at conversion, the in-place rule of the memory model); additions are
    element-wise; ZeroPad2d is a pad; anything else (global pooling, flatten, linear) is
    global. Costs the solver's patch-based memory model without exporting to ONNX.

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
        >>> g = spatial_graph_from_torch(net, (1, 8, 8))
        >>> [(op.kind, op.kernel, g.shapes[op.output]) for op in g.ops]
        [('window', (3, 3), (4, 8, 8))]
    """
    import torch
    import torch.fx as fx
    from torch import nn
    from torch.fx.passes.shape_prop import ShapeProp

    shape = normalize_input_shape(input_shape)
    elem = DTYPE_BYTES[normalize_dtype(dtype)]
    was_training = model.training
    model.eval()
    try:
        traced = fx.symbolic_trace(model)
        with torch.no_grad():
            ShapeProp(traced).propagate(torch.zeros(1, *shape))
    finally:
        model.train(was_training)
    modules = dict(traced.named_modules())
    buffer: dict[str, str] = {}   # fx node -> buffer it lives in (aliases fold)
    shapes: dict[str, tuple[int, ...]] = {}
    ops: list[SpatialOp] = []
    graph_input = ""

    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    for node in traced.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op == "placeholder":
            graph_input = buffer[node.name] = node.name
            shapes[node.name] = tuple(int(v) for v in meta.shape[1:])
            continue
        if node.op in ("output", "get_attr") or not hasattr(meta, "shape"):
            continue
        ins = [buffer[a.name] for a in node.all_input_nodes if a.name in buffer]
        out_shape = tuple(int(v) for v in meta.shape[1:])
        module = modules.get(node.target) if node.op == "call_module" else None
        mname = type(module).__name__ if module is not None else ""
        fn = node.target if node.op == "call_function" else None
        if mname in _SPATIAL_ALIAS_MODULES or fn in _spatial_alias_functions() or (
                node.op == "call_method" and node.target in ("relu", "relu_", "clamp", "clamp_")):
            buffer[node.name] = ins[0]  # fused into its producer: no buffer of its own
            continue
        buffer[node.name] = node.name
        shapes[node.name] = out_shape
        if fn in (torch.nn.functional.conv2d, torch.conv2d):
            # a functional conv (micromind's depthwise layers): kernel from the weight's shape
            args = list(node.args) + [None] * (7 - len(node.args))
            names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
            kw = {k: node.kwargs.get(k, args[i]) for i, k in enumerate(names)}
            w_shape = tuple(int(v) for v in kw["weight"].meta["tensor_meta"].shape)
            ph, pw = pair(kw["padding"] if kw["padding"] is not None else 0)
            oc, oh, ow = out_shape
            macs = oh * ow * oc * w_shape[1] * w_shape[2] * w_shape[3]
            ops.append(SpatialOp(node.name, "window", tuple(ins[:1]), node.name, (w_shape[2], w_shape[3]),
                                 pair(kw["stride"] or 1), (ph, pw, ph, pw), pair(kw["dilation"] or 1), macs))
        elif isinstance(module, nn.Conv2d):
            oc, oh, ow = out_shape
            kh, kw = pair(module.kernel_size)
            if isinstance(module.padding, str):
                raise ValueError(f"{node.name}: string padding {module.padding!r} is not supported")
            ph, pw = pair(module.padding)
            macs = oh * ow * oc * kh * kw * module.in_channels // module.groups
            ops.append(SpatialOp(node.name, "window", tuple(ins), node.name, (kh, kw), pair(module.stride),
                                 (ph, pw, ph, pw), pair(module.dilation), macs))
        elif isinstance(module, nn.MaxPool2d) and not module.ceil_mode:
            ph, pw = pair(module.padding)
            ops.append(SpatialOp(node.name, "window", tuple(ins), node.name, pair(module.kernel_size),
                                 pair(module.stride or module.kernel_size), (ph, pw, ph, pw), pair(module.dilation)))
        elif isinstance(module, nn.ZeroPad2d):
            left, right, top, bottom = (int(v) for v in module.padding)
            ops.append(SpatialOp(node.name, "pad", tuple(ins), node.name, pads=(top, left, bottom, right)))
        elif node.op == "call_function" and node.target in (operator.add, torch.add) and len(ins) == 2 \
                and len(out_shape) == 3:
            ops.append(SpatialOp(node.name, "elementwise", tuple(ins), node.name, macs=math.prod(out_shape)))
        else:
            macs = module.in_features * module.out_features if isinstance(module, nn.Linear) else 0
            ops.append(SpatialOp(node.name, "global", tuple(ins), node.name, macs=macs))
    return SpatialGraph(graph_input, shapes, ops, elem)
