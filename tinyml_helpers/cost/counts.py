"""Parameters, multiply-accumulates (MACs) and flash bytes of a PyTorch model.

The three static costs of a network on a microcontroller:

* **Parameters** (:func:`count_params`): every element of ``model.parameters()``, counted
  once even when shared. BatchNorm's trainable scale/shift are included (as Keras and
  PyTorch report them); running statistics are buffers and are not.
* **MACs** (:func:`count_macs`): the multiply-accumulates of the weight layers for ONE input
  (batch of 1): a convolution does ``weight.numel() x output positions`` MACs (grouped and
  depthwise convolutions included, since their weight tensor is already ``out x in/groups x
  kh x kw``), a linear layer ``weight.numel() x rows``. Bias additions, BatchNorm,
  activations, pooling and element-wise adds are NOT counted: they are O(activations), not
  O(weights x positions), and on an MCU BatchNorm is folded into the convolution. Layer
  output shapes come from ``torchinfo`` (which itself reports a slightly larger
  ``total_mult_adds`` because it also counts biases and BatchNorm parameters). Functional
  matrix products (``torch.matmul`` in hand-written attention) are not modules and are not
  counted; say so if you use this on such a model.
* **Flash** (:func:`flash_bytes`): the bytes the weights occupy once deployed, under this
  model: weight tensors (``ndim >= 2``) at the deployment dtype (1 byte for int8, 2 for fp16,
  4 for fp32); per-channel 1-D parameters (biases) at the bias dtype, which is **int32 for
  int8 models**, as in TensorFlow Lite Micro and CMSIS-NN (int8 x int8 products accumulate
  into int32 and the bias is added in that accumulator); a BatchNorm layer folds into the
  preceding convolution and leaves one bias per channel (``num_features`` values at the bias
  dtype; an upper bound if that convolution already had its own bias). Quantization scales,
  zero points, the graph description and the inference code are not counted: they are a few
  percent of the weights for the models in this course and depend on the runtime.

Written here rather than taken from a library because no maintained package reports
deployment flash with int32 biases and folded BatchNorm; ``torchinfo`` supplies the shapes.

Example:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 26 * 26, 10))
    >>> count_params(net), count_macs(net, (1, 28, 28)), flash_bytes(net, "int8")
    (54170, 102752, 54224)
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = [
    "DTYPE_BYTES",
    "BIAS_BYTES",
    "dtype_bytes",
    "normalize_dtype",
    "normalize_input_shape",
    "count_params",
    "count_macs",
    "layer_macs",
    "flash_bytes",
]

# Bytes per element of weights/activations, and of biases, per deployment dtype.
DTYPE_BYTES = {"int8": 1, "fp16": 2, "fp32": 4}
BIAS_BYTES = {"int8": 4, "fp16": 2, "fp32": 4}
_ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16",
            "qint8": "int8", "uint8": "int8"}

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def normalize_dtype(dtype: str) -> str:
    """Canonical dtype name (``"int8"``, ``"fp16"`` or ``"fp32"``); ValueError otherwise.

    Example:
        >>> normalize_dtype("float32")
        'fp32'
    """
    key = str(dtype).lower().replace("torch.", "")
    key = _ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {sorted(DTYPE_BYTES)} "
                         "(int8 for a quantized MCU model, fp32 for the PyTorch original)")
    return key


def dtype_bytes(dtype: str) -> int:
    """Bytes per weight/activation element for a deployment dtype.

    Example:
        >>> dtype_bytes("int8"), dtype_bytes("fp32")
        (1, 4)
    """
    return DTYPE_BYTES[normalize_dtype(dtype)]


def normalize_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """Validate a per-sample input shape (no batch dimension) and return it as a tuple.

    Example:
        >>> normalize_input_shape([1, 49, 10])
        (1, 49, 10)
    """
    if isinstance(input_shape, torch.Size):
        input_shape = tuple(input_shape)
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise ValueError(f"input_shape must be a non-empty tuple of sizes without the batch "
                         f"dimension, e.g. (1, 49, 10); got {input_shape!r}")
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must hold integers, got {input_shape!r}") from None
    if any(v <= 0 for v in shape):
        raise ValueError(f"input_shape sizes must be positive, got {shape}")
    return shape


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once).

    Example:
        >>> count_params(torch.nn.Linear(10, 3))
        33
    """
    _check_model(model)
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


def _run_torchinfo(model: nn.Module, input_shape: tuple[int, ...]):
    import torchinfo

    was_training = model.training
    model.eval()
    try:
        return torchinfo.summary(model, input_size=(1, *input_shape), verbose=0, device="cpu",
                                 col_names=("output_size", "num_params"))
    except Exception as exc:
        cause = exc
        while getattr(cause, "__cause__", None) is not None:  # torchinfo wraps the real error
            cause = cause.__cause__
        raise ValueError(
            f"the model cannot run on an input of shape {(1, *input_shape)} (a batch of 1 "
            f"added in front of input_shape={input_shape}): {type(cause).__name__}: {cause}. "
            "Pass input_shape WITHOUT the batch dimension, in the layout the model expects, "
            "e.g. (1, 49, 10) for a 1x49x10 MFCC image or (3, 96, 96) for an RGB image."
        ) from exc
    finally:
        model.train(was_training)


def layer_macs(model: nn.Module, input_shape: Sequence[int]) -> list[tuple[str, str, int]]:
    """Per-layer MACs as ``[(layer name, layer type, MACs), ...]`` in execution order.

    Only convolution and linear layers appear (see the module docstring for what counts).

    Example:
        >>> layer_macs(torch.nn.Sequential(torch.nn.Linear(4, 2)), (4,))
        [('0', 'Linear', 8)]
    """
    _check_model(model)
    shape = normalize_input_shape(input_shape)
    summary = _run_torchinfo(model, shape)
    names = {id(m): n for n, m in model.named_modules()}
    seen: set[int] = set()
    rows = []
    for info in summary.summary_list:
        module = info.module
        if not isinstance(module, (*_CONV, *_CONV_T, nn.Linear)):
            continue
        weight = getattr(module, "weight", None)
        if weight is None:
            continue
        out = list(info.output_size)
        if isinstance(module, _CONV):
            positions = math.prod(out[2:])
        elif isinstance(module, _CONV_T):
            # a transposed conv scatters each INPUT position through the whole kernel
            positions = math.prod(list(info.input_size)[2:])
        else:
            positions = math.prod(out[:-1])
        macs = int(weight.numel()) * int(positions)
        # a module called several times (weight sharing) costs MACs every call
        key = id(info)
        if key in seen:
            continue
        seen.add(key)
        rows.append((names.get(id(module), info.var_name), type(module).__name__, macs))
    return rows


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one inference (batch of 1) of the conv/linear layers.

    ``input_shape`` excludes the batch dimension, e.g. ``(1, 49, 10)``.

    Example:
        >>> count_macs(torch.nn.Conv2d(1, 4, 3, padding=1), (1, 8, 8))  # 4*9 weights x 64 positions
        2304
    """
    return int(sum(m for _, _, m in layer_macs(model, input_shape)))


def flash_bytes(model: nn.Module, dtype: str = "int8") -> int:
    """Bytes of flash the deployed weights take at ``dtype`` (see the module docstring).

    Example:
        >>> flash_bytes(torch.nn.Linear(10, 3), "int8")  # 30 int8 weights + 3 int32 biases
        42
        >>> flash_bytes(torch.nn.Linear(10, 3), "fp32")
        132
    """
    _check_model(model)
    key = normalize_dtype(dtype)
    wbytes, bbytes = DTYPE_BYTES[key], BIAS_BYTES[key]
    total = 0
    counted: set[int] = set()
    for module in model.modules():
        if isinstance(module, _BN):
            # folded into the previous conv: scale multiplies the weights, shift becomes a bias
            for p in module.parameters(recurse=False):
                counted.add(id(p))
            if module.affine or module.track_running_stats:
                total += module.num_features * bbytes
            continue
        for p in module.parameters(recurse=False):
            if id(p) in counted:
                continue
            counted.add(id(p))
            total += p.numel() * (wbytes if p.ndim >= 2 else bbytes)
    return int(total)
