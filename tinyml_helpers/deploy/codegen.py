"""C code generation from an int8 ONNX graph (onnxruntime QOperator format).

``onnxruntime.quantization.quantize_static(..., quant_format=QuantFormat.QOperator,
activation_type=QInt8, weight_type=QInt8)`` turns a float model into a graph of integer
operators. This module reads that graph and writes one C file that runs it on a
microcontroller with the kernels in ``kernels/tm_kernels.c``:

* weights as ``static const int8_t`` arrays (they stay in flash), re-laid out channels-last
  (conv: ``[Cout][kh][kw][Cin]`` with groups of 4 permuted for the SMLAD loop; depthwise:
  ``[kh][kw][C]``; dense: ``[N][K]`` with columns reordered when a Flatten of an image feeds it),
* biases as ``int32_t`` in the accumulator's scale,
* requantization per output channel, both ways computed here, offline: float32 scales that
  the Cortex-M4F's FPU applies exactly as onnxruntime does (the default, :data:`DEFAULT_REQUANT`:
  notebook 06 measures it bit-exact and cheaper in instructions and flash than fixed point on
  that core), or fixed-point multipliers and shifts for cores without an FPU
  (:func:`tinyml_helpers.deploy.quant.quantize_multiplier`),
* one static activation arena (``tm_arena``) whose offsets come from tensor lifetimes, planned
  with the course's planner :func:`tinyml_helpers.cost.plan_arena`,
* ``tm_model_run()``: the layers in order, each preceded by ``tm_layer_mark(i)`` so the
  emulator can count instructions per layer;
* optionally a patch schedule (:mod:`.schedule`, MCUNetV2): the first layers called once per
  patch on their receptive-field windows (one ``tm_conv_params`` per window geometry, padding
  only at the tensor's borders), with ``tm_copy2d`` crops and pastes, the arena planned from
  the schedule's buffer lifetimes.

Supported operators (what a keyword CNN / PhiNet in ``compatibility=True`` mode needs):
QuantizeLinear (graph input), DequantizeLinear (graph output), QLinearConv (standard and
depthwise), QGemm, QLinearMatMul, QLinearAdd, QLinearGlobalAveragePool, MaxPool, Pad,
Relu/Clip on int8 tensors, Flatten/Reshape/Squeeze/Unsqueeze (free: they alias the buffer).
Anything else raises :class:`UnsupportedOperatorError` naming the node and the fix.

Written for this course: the maintained tools that do this (TFLite Micro, CMSIS-NN, TVM,
STM32Cube.AI) are not installable from pip on every OS or need a vendor account.

Example:
    >>> # model = parse_int8_onnx("artifacts/onnx/kws_int8.onnx")
    >>> # generated = generate_c(model, "artifacts/firmware/kws")
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..files import atomic_write_json, atomic_write_text
from . import quant

__all__ = ["UnsupportedOperatorError", "Tensor", "Layer", "Int8Model", "parse_int8_onnx",
           "generate_c", "GeneratedModel", "simulate", "SUPPORTED_OPS", "pack_conv_weights",
           "pack_dw3x3_weights", "dw3x3_fast_path", "dw3x3_plane_entries",
           "layer_c_source", "REQUANT_MODES", "DEFAULT_REQUANT"]

SUPPORTED_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QGemm", "QLinearMatMul",
                 "QLinearAdd", "QLinearGlobalAveragePool", "MaxPool", "Pad", "Relu", "Clip",
                 "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout")

_FIXES = {
    "HardSwish": "PhiNet's hard-swish activation: build the PhiNet with compatibility=True (ReLU6).",
    "HardSigmoid": "the squeeze-excite gate: build the PhiNet with compatibility=True (no SE).",
    "Mul": "usually squeeze-excite or hard-swish: build the PhiNet with compatibility=True.",
    "Sigmoid": "usually a squeeze-excite gate: build the PhiNet with compatibility=True.",
    "ReduceMean": "use nn.AdaptiveAvgPool2d(1) (ONNX GlobalAveragePool) instead of x.mean(...).",
    "GlobalAveragePool": "quantize it too (onnxruntime turns it into QLinearGlobalAveragePool).",
    "Softmax": "drop the softmax from the exported model; argmax of the logits is the same class.",
    "ConvTranspose": "not used by keyword models; replace it with upsampling + conv.",
}


class UnsupportedOperatorError(ValueError):
    """The graph holds a node the code generator cannot turn into C; the message says why."""


@dataclass
class Tensor:
    """An int8 activation tensor. ``shape`` is (C, H, W) for images or (N,) once flattened;
    ``order`` says how a flat tensor's elements are laid out (``"hwc"`` from an image, else
    ``"flat"``); ``base`` names the buffer it aliases (Flatten/Reshape), else itself."""

    name: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    base: str = ""
    order: str = "flat"
    image_shape: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


@dataclass
class Layer:
    """One firmware call: ``kind`` is conv / dwconv / dense / add / gap / maxpool / pad / clamp."""

    name: str
    op_type: str
    kind: str
    inputs: list[str]
    output: str
    params: dict[str, Any] = field(default_factory=dict)
    macs: int = 0

    @property
    def weight_bytes(self) -> int:
        return sum(int(np.asarray(self.params[k]).nbytes) for k in ("w", "bias", "bias_zp", "mult", "shift")
                   if k in self.params and isinstance(self.params[k], np.ndarray))


@dataclass
class Int8Model:
    """The parsed integer graph: tensors, layers in execution order, input and output."""

    tensors: dict[str, Tensor]
    layers: list[Layer]
    input: str
    output: str
    input_shape_nchw: tuple[int, ...]
    source: str = ""

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def buffer_of(self, name: str) -> str:
        t = self.tensors[name]
        return t.base or name

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float NCHW features -> int8 channels-last bytes for the firmware (one example).

        Matches ONNX QuantizeLinear: ``saturate(round_half_even(x / scale) + zp)`` in float32.
        """
        t = self.tensors[self.input]
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == len(self.input_shape_nchw) - 1:
            x = x[None]
        if tuple(x.shape[1:]) != tuple(self.input_shape_nchw[1:]) or x.shape[0] != 1:
            raise ValueError(f"expected one input of shape {self.input_shape_nchw}, got {x.shape}")
        q = np.clip(np.rint(x / np.float32(t.scale)) + t.zero_point, -128, 127).astype(np.int8)
        q = q[0]
        if q.ndim == 3:
            q = np.transpose(q, (1, 2, 0))  # CHW -> HWC
        return np.ascontiguousarray(q).reshape(-1)

    def dequantize_output(self, q: np.ndarray) -> np.ndarray:
        """int8 output bytes -> float values (ONNX DequantizeLinear)."""
        t = self.tensors[self.output]
        return ((np.asarray(q, dtype=np.int32) - t.zero_point) * np.float32(t.scale)).astype(np.float32)


# --------------------------------------------------------------------------------------
# Parsing the ONNX graph
# --------------------------------------------------------------------------------------

def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _unsupported(node: Any, why: str) -> UnsupportedOperatorError:
    fix = _FIXES.get(node.op_type, "re-export the model with supported layers (conv, depthwise conv, "
                                   "dense, add, ReLU/ReLU6, pooling, flatten) and quantize it with "
                                   "onnxruntime's QuantFormat.QOperator")
    return UnsupportedOperatorError(
        f"node {node.name or node.output[0]!r} ({node.op_type}) cannot be deployed: {why}. "
        f"Fix: {fix}")


def parse_int8_onnx(path_or_model: Any) -> Int8Model:
    """Read an int8 QOperator ONNX file into the firmware's layer list.

    Raises :class:`UnsupportedOperatorError` for float islands, grouped (non-depthwise)
    convolutions, non-zero weight zero points, uint8 activations and unknown operators.

    Example:
        >>> # model = parse_int8_onnx("artifacts/onnx/kws_int8.onnx"); len(model.layers)
    """
    import onnx
    from onnx import numpy_helper

    if isinstance(path_or_model, onnx.ModelProto):
        model, source = path_or_model, "<ModelProto>"
    else:
        path = Path(path_or_model)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run notebook 05 or "
                                    "tinyml_helpers.export.kws_onnx_artifacts() to make it")
        from ..onnx_file import load_onnx  # one loader: a damaged or non-ONNX file names itself

        model, source = load_onnx(path), str(path)
    graph = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
    init_names = set(consts)
    graph_inputs = [i for i in graph.input if i.name not in init_names]
    if len(graph_inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"the firmware supports one input and one output, the graph has "
                         f"{[i.name for i in graph_inputs]} -> {[o.name for o in graph.output]}")
    in_dims = [d.dim_value if d.HasField("dim_value") else 1
               for d in graph_inputs[0].type.tensor_type.shape.dim]
    in_dims[0] = 1
    graph_in, graph_out = graph_inputs[0].name, graph.output[0].name

    tensors: dict[str, Tensor] = {}
    layers: list[Layer] = []
    out_name = ""
    input_name = ""

    def scalar(name: str) -> float:
        return float(np.asarray(consts[name]).reshape(-1)[0])

    def zp_of(name: str, node: Any) -> int:
        arr = np.asarray(consts[name])
        if arr.dtype == np.uint8:
            raise _unsupported(node, "activations are uint8; the kernels expect int8. Quantize with "
                                     "activation_type=QuantType.QInt8")
        return int(arr.reshape(-1)[0])

    def need(name: str, node: Any) -> Tensor:
        if name not in tensors:
            raise _unsupported(node, f"its input {name!r} is not an int8 tensor the firmware computes "
                                     "(a float operator probably sits before it)")
        return tensors[name]

    def new_tensor(name: str, shape: tuple[int, ...], scale: float, zp: int, **kw: Any) -> Tensor:
        tensors[name] = Tensor(name, tuple(int(s) for s in shape), float(scale), int(zp), **kw)
        return tensors[name]

    for node in graph.node:
        op, a = node.op_type, _attrs(node)
        name = node.name or node.output[0]
        if op == "Constant":
            continue
        if op == "QuantizeLinear":
            if node.input[0] != graph_in:
                raise _unsupported(node, "a QuantizeLinear in the middle of the graph means the op "
                                         "before it ran in float")
            dims = tuple(in_dims[1:])
            input_name = node.output[0]
            new_tensor(node.output[0], dims, scalar(node.input[1]), zp_of(node.input[2], node))
            continue
        if op == "DequantizeLinear":
            if node.output[0] != graph_out:
                consumers = [n for n in graph.node if node.output[0] in n.input]
                culprit = consumers[0] if consumers else node
                raise _unsupported(culprit, "it runs in float between DequantizeLinear and "
                                            "QuantizeLinear (onnxruntime could not quantize it)")
            out_name = need(node.input[0], node).name
            continue
        if op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"):
            src = need(node.input[0], node)
            if op == "Reshape":
                target = [int(v) for v in np.asarray(consts.get(node.input[1], [])).reshape(-1)]
                if len(target) > 2 and math.prod(v for v in target if v > 0) != src.size and -1 not in target:
                    raise _unsupported(node, f"Reshape to {target} is not a flatten")
                if len([v for v in target if v not in (1, -1, 0)]) > 1 and len(src.shape) == 1:
                    raise _unsupported(node, f"Reshape to {target} is not a flatten")
            if op in ("Identity", "Dropout"):
                tensors[node.output[0]] = Tensor(node.output[0], src.shape, src.scale, src.zero_point,
                                                 base=src.base or src.name, order=src.order,
                                                 image_shape=src.image_shape)
                continue
            image = src.shape if len(src.shape) == 3 else src.image_shape
            spatial = len(image) == 3 and image[1] * image[2] > 1
            tensors[node.output[0]] = Tensor(node.output[0], (src.size,), src.scale, src.zero_point,
                                             base=src.base or src.name,
                                             order="hwc" if spatial else "flat",
                                             image_shape=image if spatial else ())
            continue
        if op == "QLinearConv":
            x = need(node.input[0], node)
            if len(x.shape) != 3:
                raise _unsupported(node, f"input shape {x.shape} is not (C, H, W)")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise _unsupported(node, "auto_pad is not supported; export with explicit pads")
            w = np.asarray(consts[node.input[3]])
            if w.dtype != np.int8:
                raise _unsupported(node, "weights are not int8 (use weight_type=QuantType.QInt8)")
            if np.any(np.asarray(consts[node.input[5]]) != 0):
                raise _unsupported(node, "weights have a non-zero zero point; quantize weights "
                                         "symmetrically (onnxruntime's default for QInt8)")
            cout, cin_g, kh, kw = w.shape
            group = int(a.get("group", 1))
            stride = [int(v) for v in a.get("strides", [1, 1])]
            dil = [int(v) for v in a.get("dilations", [1, 1])]
            pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]  # top, left, bottom, right
            cin, h, wd = x.shape
            oh = quant.conv_out_size(h, kh, stride[0], pads[0], pads[2], dil[0])
            ow = quant.conv_out_size(wd, kw, stride[1], pads[1], pads[3], dil[1])
            xs, ys = np.float32(scalar(node.input[1])), np.float32(scalar(node.input[6]))
            ws = np.broadcast_to(np.asarray(consts[node.input[4]], np.float32).reshape(-1), (cout,))
            real = (xs * ws) / ys  # float32, the way onnxruntime computes it
            mult, shift = zip(*(quant.quantize_multiplier(float(r)) for r in real))
            bias = (np.asarray(consts[node.input[8]], np.int32) if len(node.input) > 8 and node.input[8]
                    else np.zeros(cout, np.int32))
            yzp = zp_of(node.input[7], node)
            new_tensor(node.output[0], (cout, oh, ow), ys, yzp)
            params = dict(x_zp=x.zero_point, y_zp=yzp, stride=stride, pads=pads, dil=dil,
                          mult=np.asarray(mult, np.int32), shift=np.asarray(shift, np.int32),
                          bias=bias, kernel=(kh, kw), real=real)
            # A one-channel conv (a PhiNet stem on a one-channel spectrogram) is a depthwise conv
            # of one channel: the depthwise kernels run it without im2col overhead.
            depthwise = (group == cin == cout and cin_g == 1) or (group == 1 and cin == cout == 1)
            if group == 1 and not depthwise:
                params["w"] = np.ascontiguousarray(np.transpose(w, (0, 2, 3, 1)))  # OHWI
                layers.append(Layer(name, op, "conv", [x.name], node.output[0], params,
                                     macs=oh * ow * cout * kh * kw * cin))
            elif depthwise:
                wd_ = np.ascontiguousarray(np.transpose(w[:, 0], (1, 2, 0)))  # (kh, kw, C)
                params["w"] = wd_
                params["bias_zp"] = (bias.astype(np.int64) - x.zero_point *
                                     wd_.astype(np.int64).sum(axis=(0, 1))).astype(np.int32)
                layers.append(Layer(name, op, "dwconv", [x.name], node.output[0], params,
                                     macs=oh * ow * cout * kh * kw))
            else:
                raise _unsupported(node, f"grouped convolution (group={group}, {cin}->{cout} channels) "
                                         "has no kernel; use group=1 or a depthwise conv (group=channels)")
            continue
        if op in ("QGemm", "QLinearMatMul"):
            x = need(node.input[0], node)
            b = np.asarray(consts.get(node.input[3]))
            if b is None or b.dtype != np.int8:
                raise _unsupported(node, "the weight matrix is not a constant int8 tensor")
            if np.any(np.asarray(consts[node.input[5]]) != 0):
                raise _unsupported(node, "weights have a non-zero zero point; quantize weights symmetrically")
            if op == "QGemm":
                if int(a.get("transA", 0)):
                    raise _unsupported(node, "transA=1 is not supported")
                wmat = b if int(a.get("transB", 0)) else b.T  # (N, K)
                if len(node.input) < 8 or not node.input[7]:
                    raise _unsupported(node, "QGemm without an output scale produces float; "
                                             "quantize the last layer's output too")
                bias = (np.asarray(consts[node.input[6]], np.int32) if node.input[6]
                        else np.zeros(wmat.shape[0], np.int32))
                ys_name, yzp_name = node.input[7], node.input[8]
                if float(a.get("alpha", 1.0)) != 1.0:
                    raise _unsupported(node, "alpha != 1 is not supported")
            else:
                wmat = b.T
                bias = np.zeros(wmat.shape[0], np.int32)
                ys_name, yzp_name = node.input[6], node.input[7]
            n_out, k = wmat.shape
            if k != x.size:
                raise _unsupported(node, f"expects {k} inputs but gets a tensor of {x.size}")
            if x.order == "hwc":  # a Flatten of an image: ONNX counts (c, h, w), the arena holds (h, w, c)
                c, hh, ww = x.image_shape
                wmat = wmat.reshape(n_out, c, hh, ww).transpose(0, 2, 3, 1).reshape(n_out, k)
            xs, ys = np.float32(scalar(node.input[1])), np.float32(scalar(ys_name))
            ws = np.broadcast_to(np.asarray(consts[node.input[4]], np.float32).reshape(-1), (n_out,))
            real = (xs * ws) / ys
            mult, shift = zip(*(quant.quantize_multiplier(float(r)) for r in real))
            yzp = zp_of(yzp_name, node)
            new_tensor(node.output[0], (n_out,), ys, yzp)
            params = dict(x_zp=x.zero_point, y_zp=yzp, stride=[1, 1], pads=[0, 0, 0, 0], dil=[1, 1],
                          mult=np.asarray(mult, np.int32), shift=np.asarray(shift, np.int32),
                          bias=bias, kernel=(1, 1), real=real,
                          w=np.ascontiguousarray(wmat.reshape(n_out, 1, 1, k)))
            layers.append(Layer(name, op, "dense", [x.name], node.output[0], params, macs=n_out * k))
            continue
        if op == "QLinearAdd":
            xa, xb = need(node.input[0], node), need(node.input[3], node)
            if xa.shape != xb.shape:
                raise _unsupported(node, f"broadcasting add {xa.shape} + {xb.shape} is not supported")
            sa, sb, sc = (np.float32(scalar(node.input[i])) for i in (1, 4, 6))
            ma, mb, sh = quant.add_multipliers(float(sa / sc), float(sb / sc))
            yzp = zp_of(node.input[7], node)
            # the float32 constants of onnxruntime's own QLinearAdd arithmetic (requant="float")
            ratio_a, ratio_b, fixed = quant.add_float_params(sa, xa.zero_point, sb, xb.zero_point, sc, yzp)
            new_tensor(node.output[0], xa.shape, sc, yzp)
            layers.append(Layer(name, op, "add", [xa.name, xb.name], node.output[0],
                                dict(zp_a=xa.zero_point, zp_b=xb.zero_point, mult_a=ma, mult_b=mb,
                                     shift=sh, y_zp=yzp, ratio_a=ratio_a, ratio_b=ratio_b, fixed=fixed),
                                macs=xa.size))
            continue
        if op == "QLinearGlobalAveragePool":
            x = need(node.input[0], node)
            if int(a.get("channels_last", 0)):
                raise _unsupported(node, "channels_last=1 is not supported")
            c, h, wd = x.shape
            xs, ys = np.float32(scalar(node.input[1])), np.float32(scalar(node.input[3]))
            real_gap = np.float32(xs / (ys * np.float32(h * wd)))  # float32, as onnxruntime computes it
            mult, shift = quant.quantize_multiplier(float(real_gap))
            yzp = zp_of(node.input[4], node)
            new_tensor(node.output[0], (c, 1, 1), ys, yzp)
            layers.append(Layer(name, op, "gap", [x.name], node.output[0],
                                dict(x_zp=x.zero_point, mult=mult, shift=shift, y_zp=yzp, real=real_gap),
                                macs=c * h * wd))
            continue
        if op == "MaxPool":
            x = need(node.input[0], node)
            k = [int(v) for v in a["kernel_shape"]]
            stride = [int(v) for v in a.get("strides", [1, 1])]
            pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
            if int(a.get("ceil_mode", 0)) or any(int(d) != 1 for d in a.get("dilations", [1, 1])):
                raise _unsupported(node, "ceil_mode / dilation are not supported")
            c, h, wd = x.shape
            oh = quant.conv_out_size(h, k[0], stride[0], pads[0], pads[2])
            ow = quant.conv_out_size(wd, k[1], stride[1], pads[1], pads[3])
            new_tensor(node.output[0], (c, oh, ow), x.scale, x.zero_point)
            layers.append(Layer(name, op, "maxpool", [x.name], node.output[0],
                                dict(kernel=k, stride=stride, pads=pads), macs=0))
            continue
        if op == "Pad":
            x = need(node.input[0], node)
            mode = a.get("mode", b"constant")
            if mode not in (b"constant", "constant"):
                raise _unsupported(node, f"pad mode {mode!r} is not supported (constant only)")
            p = [int(v) for v in np.asarray(consts[node.input[1]]).reshape(-1)]  # ONNX: begins then ends
            if len(p) != 8 or p[0] or p[1] or p[4] or p[5]:
                raise _unsupported(node, f"only spatial padding of a (1, C, H, W) tensor is supported, got {p}")
            value = int(np.asarray(consts[node.input[2]]).reshape(-1)[0]) if len(node.input) > 2 and node.input[2] \
                else x.zero_point
            c, h, wd = x.shape
            pads = [p[2], p[3], p[6], p[7]]
            new_tensor(node.output[0], (c, h + p[2] + p[6], wd + p[3] + p[7]), x.scale, x.zero_point)
            layers.append(Layer(name, op, "pad", [x.name], node.output[0], dict(pads=pads, value=value)))
            continue
        if op in ("Relu", "Clip"):
            x = need(node.input[0], node)
            lo_f, hi_f = 0.0, math.inf
            if op == "Clip":
                lo_f = float(consts[node.input[1]]) if len(node.input) > 1 and node.input[1] else -math.inf
                hi_f = float(consts[node.input[2]]) if len(node.input) > 2 and node.input[2] else math.inf
            # On a quantized tensor the bounds are raw int8 values (onnxruntime runs Clip on int8).
            lo = int(max(-128, lo_f))
            hi = int(min(127, hi_f))
            new_tensor(node.output[0], x.shape, x.scale, x.zero_point)
            layers.append(Layer(name, op, "clamp", [x.name], node.output[0], dict(lo=lo, hi=hi)))
            continue
        raise _unsupported(node, "this operator has no int8 kernel in the course firmware "
                                 f"(supported: {', '.join(SUPPORTED_OPS)})")
    if not out_name:
        raise ValueError("the graph does not end in DequantizeLinear: is it an int8 QOperator model "
                         "from onnxruntime.quantization.quantize_static?")
    if not input_name:
        raise ValueError("the graph does not start with QuantizeLinear on its input: is it an int8 "
                         "QOperator model from onnxruntime.quantization.quantize_static?")
    if not layers:
        raise ValueError("the graph holds no layers to deploy")
    return Int8Model(tensors, layers, input_name, out_name, tuple(in_dims), source)


# --------------------------------------------------------------------------------------
# NumPy simulation of the firmware (bit-exact reference)
# --------------------------------------------------------------------------------------

def _hwc(t: Tensor, flat: np.ndarray) -> np.ndarray:
    c, h, w = t.shape
    return flat.reshape(h, w, c)


def add_layer_ref(layer: Layer, a: np.ndarray, b: np.ndarray, requant: str) -> np.ndarray:
    """An ``add`` layer's output as the firmware computes it: onnxruntime's float32 arithmetic
    (``requant="float"``, :func:`.quant.add_ref_float`) or fixed point (:func:`.quant.add_ref`)."""
    p = layer.params
    if requant == "float":
        return quant.add_ref_float(a, b, p["ratio_a"], p["ratio_b"], p["fixed"])
    return quant.add_ref(a, b, p["zp_a"], p["zp_b"], p["mult_a"], p["mult_b"], p["shift"], p["y_zp"])


def simulate(model: Int8Model, x_q: np.ndarray, requant: str = "float") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the integer graph in NumPy with the firmware's exact arithmetic.

    ``requant`` is the rescale the firmware was generated with (see :func:`generate_c`):
    ``"fixed"`` (integer multiplier and shift) or ``"float"`` (onnxruntime's float32
    arithmetic, round half to even, for conv/dense, add and global average pooling).

    ``x_q`` is the int8 input as returned by :meth:`Int8Model.quantize_input`. Returns the
    int8 output and every buffer (flat, channels-last), handy to find the first layer where
    the firmware and a reference disagree.
    """
    _check_requant(requant)
    values: dict[str, np.ndarray] = {model.input: np.asarray(x_q, np.int8).reshape(-1)}

    def get(name: str) -> np.ndarray:
        return values[model.buffer_of(name)]

    for layer in model.layers:
        p = layer.params
        t_out = model.tensors[layer.output]
        if layer.kind in ("conv", "dense"):
            t_in = model.tensors[layer.inputs[0]]
            x = _hwc(t_in, get(t_in.name)) if layer.kind == "conv" else get(t_in.name).reshape(1, 1, -1)
            y = quant.conv2d_ref(x, p["w"], p["bias"], p["x_zp"], p["y_zp"], p["mult"], p["shift"],
                                 p["stride"], p["pads"], p["dil"], real=p["real"] if requant == "float" else None)
        elif layer.kind == "dwconv":
            t_in = model.tensors[layer.inputs[0]]
            y = quant.dwconv2d_ref(_hwc(t_in, get(t_in.name)), p["w"], p["bias"], p["x_zp"], p["y_zp"],
                                   p["mult"], p["shift"], p["stride"], p["pads"], p["dil"],
                                   real=p["real"] if requant == "float" else None)
        elif layer.kind == "add":
            y = add_layer_ref(layer, get(layer.inputs[0]), get(layer.inputs[1]), requant)
        elif layer.kind == "gap":
            t_in = model.tensors[layer.inputs[0]]
            y = quant.global_avgpool_ref(_hwc(t_in, get(t_in.name)), p["x_zp"], p["mult"], p["shift"], p["y_zp"],
                                         real=p["real"] if requant == "float" else None)
        elif layer.kind == "maxpool":
            t_in = model.tensors[layer.inputs[0]]
            y = quant.maxpool2d_ref(_hwc(t_in, get(t_in.name)), p["kernel"], p["stride"], p["pads"])
        elif layer.kind == "pad":
            t_in = model.tensors[layer.inputs[0]]
            y = quant.pad2d_ref(_hwc(t_in, get(t_in.name)), p["pads"], p["value"])
        elif layer.kind == "clamp":
            y = np.clip(get(layer.inputs[0]), p["lo"], p["hi"]).astype(np.int8)
        else:  # pragma: no cover
            raise AssertionError(layer.kind)
        values[t_out.name] = np.asarray(y, np.int8).reshape(-1)
    return values[model.buffer_of(model.output)], values


# --------------------------------------------------------------------------------------
# Arena planning
# --------------------------------------------------------------------------------------

def _lifetimes(model: Int8Model) -> list[Any]:
    """Buffers (aliases folded in) with steps: step i = layer i runs; the input is live from
    step 0 and the output until the last step."""
    from ..cost import TensorLifetime

    first: dict[str, int] = {model.input: 0}
    last: dict[str, int] = {model.input: 0}
    aliases: dict[str, list[str]] = {}
    for name, t in model.tensors.items():
        aliases.setdefault(t.base or name, []).append(name)
    for i, layer in enumerate(model.layers):
        out = model.buffer_of(layer.output)
        first.setdefault(out, i)
        last[out] = max(last.get(out, i), i)
        for name in layer.inputs:
            buf = model.buffer_of(name)
            last[buf] = max(last.get(buf, i), i)
    out_buf = model.buffer_of(model.output)
    last[out_buf] = len(model.layers) - 1
    return [TensorLifetime(buf, model.tensors[buf].size, first[buf], last[buf],
                           shape=model.tensors[buf].shape, aliases=tuple(aliases.get(buf, [buf])))
            for buf in first]


def plan_model_arena(model: Int8Model, alignment: int = 4) -> Any:
    """Offsets of every activation buffer, from the course planner (``cost.plan_arena``)."""
    from ..cost import plan_arena

    plan = plan_arena(_lifetimes(model), alignment=alignment)
    plan.validate()
    return plan


# --------------------------------------------------------------------------------------
# C emission
# --------------------------------------------------------------------------------------

def pack_conv_weights(w_ohwi: np.ndarray) -> np.ndarray:
    """Conv weights (Cout, kh, kw, Cin) in the order ``tm_conv2d`` reads them, as one flat array.

    Rows have K = kh*kw*Cin values, zero-padded to a multiple of 4 (the kernel's im2col
    buffer is padded the same way, so no layer needs a scalar tail loop); each group of 4 is
    permuted to (w0, w2, w1, w3) so that SXTB16 yields the int16 pair (w0, w1) and SXTB16
    ROR 8 the pair (w2, w3). Output channels go in pairs whose rows are interleaved group by
    group (one pointer feeds both); an odd last channel is a plain row.

    Example:
        >>> pack_conv_weights(np.arange(10, dtype=np.int8).reshape(2, 1, 1, 5)).tolist()
        [0, 2, 1, 3, 5, 7, 6, 8, 4, 0, 0, 0, 9, 0, 0, 0]
    """
    w = np.asarray(w_ohwi, np.int8)
    rows = w.reshape(w.shape[0], -1)
    rows = np.concatenate([rows, np.zeros((rows.shape[0], -rows.shape[1] % 4), np.int8)], axis=1)
    cout, k = rows.shape
    k4 = k // 4 * 4
    body = rows[:, :k4].reshape(cout, -1, 4)[:, :, [0, 2, 1, 3]]  # (cout, k/4, 4)
    parts = []
    for co in range(0, cout - 1, 2):
        parts.append(np.stack([body[co], body[co + 1]], axis=1).reshape(-1))
        parts.append(rows[co, k4:])
        parts.append(rows[co + 1, k4:])
    if cout % 2:
        parts.append(body[-1].reshape(-1))
        parts.append(rows[-1, k4:])
    return np.concatenate(parts).astype(np.int8) if parts else np.zeros(0, np.int8)


def pack_dw3x3_weights(w_hwc: np.ndarray) -> np.ndarray:
    """3x3 depthwise weights (3, 3, C) in the order ``tm_dwconv3x3`` reads them: int16, 10 per
    channel, ``(w00, w01), (w10, w11), (w20, w21), (w02, w12), (w22, 0)`` (row, column), so
    that one 32-bit load gives the pair of taps one SMLAD multiplies.

    Example:
        >>> pack_dw3x3_weights(np.arange(9, dtype=np.int8).reshape(3, 3, 1)).tolist()
        [0, 1, 3, 4, 6, 7, 2, 5, 8, 0]
    """
    w = np.asarray(w_hwc)
    if w.ndim != 3 or w.shape[:2] != (3, 3):
        raise ValueError(f"expected 3x3 depthwise weights of shape (3, 3, C), got {w.shape}")
    w = w.astype(np.int16)
    cols = [w[0, 0], w[0, 1], w[1, 0], w[1, 1], w[2, 0], w[2, 1], w[0, 2], w[1, 2], w[2, 2],
            np.zeros(w.shape[2], np.int16)]
    return np.ascontiguousarray(np.stack(cols, axis=1)).reshape(-1)


def dw3x3_fast_path(layer: Layer) -> bool:
    """Whether ``tm_dwconv3x3`` runs this depthwise layer (3x3, stride 1 or 2 on both axes,
    dilation 1); anything else takes the general ``tm_dwconv2d``.

    Example:
        >>> dw3x3_fast_path(Layer("d", "QLinearConv", "dwconv", [], "y",
        ...                       dict(kernel=(3, 3), stride=[2, 2], dil=[1, 1])))
        True
    """
    p = layer.params
    return (layer.kind == "dwconv" and tuple(p["kernel"]) == (3, 3) and tuple(p["dil"]) == (1, 1)
            and p["stride"][0] == p["stride"][1] and p["stride"][0] in (1, 2))


def dw3x3_plane_entries(out_h: int, out_w: int, stride: int, channels: int = 1) -> int:
    """int16 entries of the channel planes ``tm_dwconv3x3`` widens the input into: the rows
    and (even) columns its output pixels read, for four channels at once (one when the layer
    has fewer than four).

    Example:
        >>> dw3x3_plane_entries(25, 20, 1), dw3x3_plane_entries(25, 20, 1, channels=16)
        (648, 2592)
    """
    if min(out_h, out_w, stride, channels) < 1:
        raise ValueError(f"out_h, out_w, stride and channels must be >= 1, got {out_h}, {out_w}, {stride}, "
                         f"{channels}")
    rows = (out_h - 1) * stride + 3
    cols = ((out_w - 1) * stride + 4 + 1) & ~1
    return rows * cols * (4 if channels >= 4 else 1)


REQUANT_MODES = ("fixed", "float")
# The conv/dense rescale used unless asked otherwise, the same in every entry point (generate_c,
# simulate, pipeline.deploy_onnx): notebook 06 builds both and on the nRF52840's Cortex-M4F the
# float32 one is bit-exact with onnxruntime and needs fewer instructions and less flash.
DEFAULT_REQUANT = "float"


def _check_requant(requant: str) -> None:
    if requant not in REQUANT_MODES:
        raise ValueError(f"requant must be 'fixed' (integer multiplier + shift, any core) or 'float' "
                         f"(onnxruntime's float32 rescale, needs an FPU), got {requant!r}")


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 24) -> str:
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":  # hexadecimal float literals are exact
        text = [float(np.float32(v)).hex() + "f" for v in flat]
        per_line = 6
    else:
        text = [str(int(v)) for v in flat]
    lines = [", ".join(text[i:i + per_line]) for i in range(0, len(text), per_line)]
    body = ",\n    ".join(lines) if lines else "0"
    # word-aligned: the kernels read weights with LDRD, which faults on unaligned addresses
    return f"static const {ctype} {name}[{max(len(flat), 1)}] __attribute__((aligned(4))) = {{\n    {body}\n}};\n"


def _c_float(v: float) -> str:
    """A float32 as an exact C literal (hexadecimal)."""
    return float(np.float32(v)).hex() + "f"


def _cident(i: int) -> str:
    return f"L{i:02d}"


def _conv_params_c(ident: str, layer: Layer, t_in: Tensor, t_out: Tensor) -> str:
    p = layer.params
    if layer.kind == "dense":
        in_h = in_w = out_h = out_w = 1
        in_c, out_c = t_in.size, t_out.size
    else:
        in_c, in_h, in_w = t_in.shape
        out_c, out_h, out_w = t_out.shape
    return _conv_struct_c(f"{ident}_p", layer, (in_c, in_h, in_w), (out_c, out_h, out_w), p["pads"][0], p["pads"][1])


def _conv_struct_c(name: str, layer: Layer, in_chw: Sequence[int], out_chw: Sequence[int], pad_top: int,
                   pad_left: int) -> str:
    """A ``tm_conv_params`` for the given geometry: the whole tensors, or one patch's input
    window and output tile with the padding that is left at the tensor's borders."""
    p = layer.params
    (in_c, in_h, in_w), (out_c, out_h, out_w) = in_chw, out_chw
    kh, kw = p["kernel"]
    return (f"static const tm_conv_params {name} = {{{in_h}, {in_w}, {in_c}, {out_h}, {out_w}, {out_c}, "
            f"{kh}, {kw}, {p['stride'][0]}, {p['stride'][1]}, {pad_top}, {pad_left}, "
            f"{p['dil'][0]}, {p['dil'][1]}, {p['x_zp']}, {p['y_zp']}, -128, 127}};\n")


def _requant_c(ident: str, p: dict[str, Any], requant: str) -> tuple[str, str]:
    """C arrays and the (mult, shift) call arguments for a layer's per-channel rescale."""
    if requant == "float":
        return _c_array("float", f"{ident}_f", p["real"]), f"(const int32_t *){ident}_f, 0"
    return (_c_array("int32_t", f"{ident}_m", p["mult"]) + _c_array("int32_t", f"{ident}_s", p["shift"]),
            f"{ident}_m, {ident}_s")


def layer_c_source(model: Int8Model, index: int, offsets: dict[str, int],
                   requant: str = DEFAULT_REQUANT) -> tuple[str, str]:
    """The C definitions (constant arrays) and the whole-tensor call for layer ``index``.

    Example:
        >>> # defs, call = layer_c_source(model, 0, dict(plan_model_arena(model).offsets))
    """
    layer = model.layers[index]
    ident = _cident(index)
    p = layer.params
    t_out = model.tensors[layer.output]
    ins = [model.tensors[n] for n in layer.inputs]

    def ptr(name: str) -> str:
        buf = model.buffer_of(name)
        # a tensor of a patch region lives in a per-patch buffer (schedule.py)
        return f"tm_arena + {offsets[buf] if buf in offsets else offsets.get(buf + '#patch', 0)}"

    shape_in = " + ".join(str(t.shape) for t in ins)
    head = f"/* layer {index}: {layer.name} ({layer.op_type} -> {layer.kind}), {shape_in} -> {t_out.shape}, " \
           f"{layer.macs:,} MACs */\n"
    if layer.kind in ("conv", "dense"):
        rq_defs, _ = _requant_c(ident, p, requant)
        defs = (head + _conv_params_c(ident, layer, ins[0], t_out)
                + _c_array("int8_t", f"{ident}_w", pack_conv_weights(p["w"]))
                + _c_array("int32_t", f"{ident}_b", p["bias"]) + rq_defs)
    elif layer.kind == "dwconv":
        rq_defs, _ = _requant_c(ident, p, requant)
        if dw3x3_fast_path(layer):  # padding lives in the widened plane: no bias without zp needed
            defs = (head + _conv_params_c(ident, layer, ins[0], t_out)
                    + _c_array("int16_t", f"{ident}_w", pack_dw3x3_weights(p["w"]))
                    + _c_array("int32_t", f"{ident}_bz", p["bias_zp"]) + rq_defs)
        else:
            defs = (head + _conv_params_c(ident, layer, ins[0], t_out)
                    + _c_array("int8_t", f"{ident}_w", p["w"])
                    + _c_array("int32_t", f"{ident}_b", p["bias"])
                    + _c_array("int32_t", f"{ident}_bz", p["bias_zp"]) + rq_defs)
    elif layer.kind in ("add", "gap", "maxpool", "pad", "clamp"):
        defs = head
    else:  # pragma: no cover
        raise AssertionError(layer.kind)
    if layer.kind == "gap":
        c, h, w = ins[0].shape
        if requant == "float":
            call = (f"tm_global_avgpool_float({ptr(ins[0].name)}, {ptr(layer.output)}, {h * w}, {c}, "
                    f"{p['x_zp']}, {_c_float(p['real'])}, {p['y_zp']});")
        else:
            call = (f"tm_global_avgpool({ptr(ins[0].name)}, {ptr(layer.output)}, {h * w}, {c}, {p['x_zp']}, "
                    f"{p['mult']}, {p['shift']}, {p['y_zp']});")
        return defs, call
    in_hw = ins[0].shape[1:] if len(ins[0].shape) == 3 else (1, 1)
    out_hw = t_out.shape[1:] if len(t_out.shape) == 3 else (1, 1)
    pads = tuple(p["pads"]) if "pads" in p else (0, 0, 0, 0)
    return defs, _layer_call(model, index, requant, [ptr(t.name) for t in ins], ptr(layer.output),
                             f"&{ident}_p", in_hw, pads, out_hw)


def _layer_call(model: Int8Model, index: int, requant: str, in_ptrs: Sequence[str], out_ptr: str,
                params_ref: str, in_hw: Sequence[int], pads: Sequence[int], out_hw: Sequence[int]) -> str:
    """The kernel call of layer ``index`` on input window(s) of ``in_hw`` with per-side
    ``pads`` (top, left, bottom, right) producing ``out_hw``: the whole tensors, or one patch."""
    layer = model.layers[index]
    ident = _cident(index)
    p = layer.params
    c = model.tensors[layer.output].shape[0]
    if layer.kind in ("conv", "dense"):
        rq_args = _requant_c(ident, p, requant)[1]
        return f"tm_conv2d({params_ref}, {in_ptrs[0]}, {ident}_w, {ident}_b, {rq_args}, {out_ptr}, tm_col);"
    if layer.kind == "dwconv":
        rq_args = _requant_c(ident, p, requant)[1]
        if dw3x3_fast_path(layer):
            return (f"tm_dwconv3x3({params_ref}, {in_ptrs[0]}, {ident}_w, {ident}_bz, {rq_args}, {out_ptr}, "
                    "tm_col);")
        return (f"tm_dwconv2d({params_ref}, {in_ptrs[0]}, {ident}_w, {ident}_b, {ident}_bz, "
                f"{rq_args}, {out_ptr});")
    if layer.kind == "add":
        n = c * out_hw[0] * out_hw[1]
        if requant == "float":
            return (f"tm_add_float({in_ptrs[0]}, {in_ptrs[1]}, {out_ptr}, {n}, {_c_float(p['ratio_a'])}, "
                    f"{_c_float(p['ratio_b'])}, {_c_float(p['fixed'])}, -128, 127);")
        return (f"tm_add({in_ptrs[0]}, {in_ptrs[1]}, {out_ptr}, {n}, {p['zp_a']}, "
                f"{p['zp_b']}, {p['mult_a']}, {p['mult_b']}, {p['shift']}, {p['y_zp']}, -128, 127);")
    if layer.kind == "maxpool":
        return (f"tm_maxpool2d({in_ptrs[0]}, {out_ptr}, {in_hw[0]}, {in_hw[1]}, {c}, {out_hw[0]}, {out_hw[1]}, "
                f"{p['kernel'][0]}, {p['kernel'][1]}, {p['stride'][0]}, {p['stride'][1]}, {pads[0]}, {pads[1]});")
    if layer.kind == "pad":
        t, l, b, r = pads
        return f"tm_pad2d({in_ptrs[0]}, {out_ptr}, {in_hw[0]}, {in_hw[1]}, {c}, {t}, {b}, {l}, {r}, {p['value']});"
    if layer.kind == "clamp":
        n = model.tensors[layer.output].size if len(model.tensors[layer.output].shape) != 3 \
            else c * out_hw[0] * out_hw[1]
        return f"tm_clamp({in_ptrs[0]}, {out_ptr}, {n}, {p['lo']}, {p['hi']});"
    raise AssertionError(layer.kind)  # pragma: no cover


@dataclass
class GeneratedModel:
    """What :func:`generate_c` wrote: the C file, the arena plan and a JSON manifest."""

    model: Int8Model
    c_path: Path
    manifest_path: Path
    plan: Any
    arena_bytes: int
    col_bytes: int
    manifest: dict[str, Any]
    requant: str = DEFAULT_REQUANT
    schedule: Any = None  # a PatchSchedule when the first layers run patch by patch

    def layer_source(self, index: int, max_array_lines: int | None = None) -> str:
        """The generated C of one layer (definitions + call), e.g. to show in a notebook;
        ``max_array_lines`` shortens long constant arrays to that many lines."""
        if not 0 <= index < len(self.model.layers):
            raise IndexError(f"layer index {index} out of range: the model has {len(self.model.layers)} layers")
        defs, call = layer_c_source(self.model, index, self.plan_offsets, self.requant)
        if max_array_lines is not None:
            kept, run = [], 0
            for line in defs.splitlines():
                is_values = line.startswith("    ") and line.strip()[:1] in "-0123456789("
                run = run + 1 if is_values else 0
                if run <= max_array_lines:
                    kept.append(line)
                elif run == max_array_lines + 1:
                    kept.append("    /* ... */")
            defs = "\n".join(kept) + "\n"
        return defs + "\n/* in tm_model_run(): */\n" + call + "\n"

    @property
    def plan_offsets(self) -> dict[str, int]:
        return dict(self.plan.offsets)


def generate_c(model: Int8Model | str | Path, out_dir: str | Path, alignment: int = 4,
               requant: str = DEFAULT_REQUANT, schedule: Any = None) -> GeneratedModel:
    """Write ``model.c`` (weights, arena, ``tm_model_run``) and ``model.json`` into ``out_dir``.

    ``requant`` picks the rescale: ``"float"`` (the default: onnxruntime's float32
    arithmetic on the Cortex-M4F's FPU, bit-exact with onnxruntime: conv/dense products rounded
    half to even, QLinearAdd with its fused multiply-adds, the global average pool's float
    rescale) or ``"fixed"`` (31-bit multipliers + shifts, integer only, runs on any core; may
    differ from onnxruntime by 1 LSB where a value sits on a rounding boundary, a few LSB at the
    output).

    ``schedule`` (a :class:`.schedule.PatchSchedule` of this model's graph) runs the patch
    region patch by patch (MCUNetV2): per patch, each region layer is called on its
    receptive-field window with the padding left at the tensor's borders, into small per-patch
    buffers, and the tile is pasted into the whole split tensor; the arena is planned from
    the schedule's lifetimes. ``None`` or a whole-tensor fallback runs layer by layer.

    Example:
        >>> # gen = generate_c("artifacts/onnx/kws_int8.onnx", "artifacts/firmware/kws")
        >>> # gen.arena_bytes
    """
    _check_requant(requant)
    if not isinstance(model, Int8Model):
        model = parse_int8_onnx(model)
    if schedule is not None and schedule.patched:
        names = [op.name for op in schedule.graph.ops]
        if names != [l.name for l in model.layers]:
            raise ValueError("the schedule was planned for another graph: plan it with "
                             "schedule.plan_patches(schedule.graph_from_int8(model), grid)")
    else:
        schedule = None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if schedule is None:
        plan = plan_model_arena(model, alignment)
    else:
        from ..cost import patch_schedule_lifetimes, plan_arena

        plan = plan_arena(patch_schedule_lifetimes(schedule), alignment=alignment)
        plan.validate()
    offsets = dict(plan.offsets)
    n_region = schedule.split + 1 if schedule is not None else 0
    # im2col scratch: two output pixels at a time (see tm_conv2d)
    col_entries = 2 * max([(int(np.prod(l.params["w"].shape[1:])) + 3) // 4 * 4 for l in model.layers
                           if l.kind in ("conv", "dense")] + [4])
    # ... and the depthwise 3x3 kernel's one-channel plane (see tm_dwconv3x3), sized by the
    # output it computes at once: the whole tensor, or a patch region layer's largest tile
    col_entries = max([col_entries] + [dw3x3_plane_entries(*model.tensors[l.output].shape[1:], l.params["stride"][0],
                                                           model.tensors[l.output].shape[0])
                                       for i, l in enumerate(model.layers) if dw3x3_fast_path(l) and i >= n_region])
    if schedule is not None:
        for steps in schedule.geometry:
            for a, geo in zip(schedule.template, steps):
                layer = model.layers[a.op_index]
                if a.kind == "op" and dw3x3_fast_path(layer):
                    col_entries = max(col_entries, dw3x3_plane_entries(geo[2].h, geo[2].w, layer.params["stride"][0],
                                                                       model.tensors[layer.output].shape[0]))
    col_entries += col_entries % 2  # whole words
    arena = max(int(plan.total_bytes), 4)
    how = "" if schedule is None else f", {schedule.grid[0]}x{schedule.grid[1]} patches over layers 0-{schedule.split}"
    parts = [f"/* Generated by tinyml_helpers.deploy.codegen from {Path(model.source).name or 'an ONNX model'}.\n"
             f" * {len(model.layers)} layers, {model.macs:,} MACs, arena {arena:,} B{how}. Do not edit. */\n"
             "#include <stdint.h>\n#include \"tm_kernels.h\"\n\n",
             f"#define TM_ARENA_BYTES {arena}\n",
             f"__attribute__((aligned(8))) int8_t tm_arena[TM_ARENA_BYTES];\n",
             f"static int16_t tm_col[{col_entries}] __attribute__((aligned(8)));  /* im2col scratch */\n\n",
             "/* Called before each layer (and once at the end) so the emulator can count instructions\n"
             " * per layer; on a real chip it could toggle a GPIO for a logic analyser. */\n"
             "__attribute__((noinline, used)) void tm_layer_mark(int32_t layer) {\n"
             "    __asm volatile(\"\" : : \"r\"(layer) : \"memory\");\n}\n\n"]
    calls = []
    for i in range(len(model.layers)):
        defs, call = layer_c_source(model, i, offsets, requant)
        parts.append(defs + "\n")
        if i >= n_region:
            calls.append(f"    tm_layer_mark({i});\n    {call}\n")
    if schedule is not None:
        patch_defs, patch_calls = _patch_calls(model, schedule, offsets, requant)
        parts.append(patch_defs + "\n")
        calls = patch_calls + calls
    parts.append("__attribute__((used)) void tm_model_run(void) {\n" + "".join(calls)
                 + f"    tm_layer_mark({len(model.layers)});\n}}\n")
    c_path = atomic_write_text(out_dir / "model.c", "".join(parts))
    t_in, t_out = model.tensors[model.input], model.tensors[model.output]
    manifest = {
        "source": model.source,
        "arena_bytes": arena,
        "requant": requant,
        "col_bytes": col_entries * 2,
        "macs": model.macs,
        "input": {"offset": offsets[model.buffer_of(model.input)], "size": t_in.size,
                  "shape_chw": list(t_in.shape), "scale": t_in.scale, "zero_point": t_in.zero_point},
        "output": {"offset": offsets[model.buffer_of(model.output)], "size": t_out.size,
                   "scale": t_out.scale, "zero_point": t_out.zero_point},
        "layers": [{"index": i, "name": l.name, "kind": l.kind, "op_type": l.op_type, "macs": l.macs,
                    "output_shape": list(model.tensors[l.output].shape), "weight_bytes": l.weight_bytes}
                   for i, l in enumerate(model.layers)],
        "buffers": [{"name": t.name, "offset": offsets[t.name], "size": t.size_bytes,
                     "first": t.first, "last": t.last} for t in plan.lifetimes],
    }
    if schedule is not None:
        manifest["schedule"] = {"grid": list(schedule.grid), "split": schedule.split,
                                "n_patches": schedule.n_patches, "extra_macs": schedule.extra_macs,
                                "mac_overhead": schedule.mac_overhead, "peak_bytes": schedule.peak_bytes}
    manifest_path = atomic_write_json(out_dir / "model.json", manifest)
    return GeneratedModel(model, c_path, manifest_path, plan, arena, col_entries * 2, manifest, requant, schedule)


def _patch_calls(model: Int8Model, schedule: Any, offsets: dict[str, int],
                 requant: str) -> tuple[str, list[str]]:
    """Per-patch parameter structs and the calls of the patch phase, patch after patch.

    Every patch runs the schedule's template: crops (``tm_copy2d`` from a bigger buffer into a
    small one), the region's layers on their windows, and the paste of the tile into the
    whole split tensor. Each action is preceded by the mark of the layer it serves, so the
    emulator's per-layer counts include the copies and the recomputed halos."""
    graph = schedule.graph
    structs: dict[tuple, str] = {}
    defs: list[str] = []
    calls: list[str] = []

    def ptr(buf: str) -> str:
        return f"tm_arena + {offsets[buf]}"

    def struct_for(index: int, in_chw: tuple, out_chw: tuple, pads: tuple) -> str:
        key = (index, in_chw, out_chw, pads[0], pads[1])
        if key not in structs:  # interior patches share one geometry
            name = f"{_cident(index)}_q{sum(1 for k in structs if k[0] == index)}"
            structs[key] = name
            defs.append(_conv_struct_c(name, model.layers[index], in_chw, out_chw, pads[0], pads[1]))
        return structs[key]

    for p, steps in enumerate(schedule.geometry):
        calls.append(f"    /* patch {p + 1} of {schedule.n_patches} */\n")
        for a, geo in zip(schedule.template, steps):
            calls.append(f"    tm_layer_mark({a.op_index});\n")
            if a.kind == "crop":
                src_box, box = geo
                c = graph.shapes[a.tensor][0]
                calls.append(f"    tm_copy2d({ptr(a.inputs[0])}, {src_box.w}, {box.y0 - src_box.y0}, "
                             f"{box.x0 - src_box.x0}, {ptr(a.output)}, {box.w}, 0, 0, {box.h}, {box.w}, {c});\n")
            elif a.kind == "paste":
                (tile,) = geo
                c, _, w = graph.shapes[a.tensor]
                calls.append(f"    tm_copy2d({ptr(a.inputs[0])}, {tile.w}, 0, 0, {ptr(a.output)}, {w}, "
                             f"{tile.y0}, {tile.x0}, {tile.h}, {tile.w}, {c});\n")
            else:
                in_boxes, pads, out_box = geo
                layer = model.layers[a.op_index]
                in_c = model.tensors[layer.inputs[0]].shape[0]
                out_c = model.tensors[layer.output].shape[0]
                ref = ""
                if layer.kind in ("conv", "dwconv"):
                    ref = "&" + struct_for(a.op_index, (in_c, in_boxes[0].h, in_boxes[0].w),
                                           (out_c, out_box.h, out_box.w), pads)
                call = _layer_call(model, a.op_index, requant, [ptr(n) for n in a.inputs], ptr(a.output), ref,
                                   (in_boxes[0].h, in_boxes[0].w), pads, (out_box.h, out_box.w))
                calls.append(f"    {call}\n")
    return "/* patch-based execution (deploy/schedule.py): one parameter set per patch geometry */\n" \
        + "".join(defs), calls
