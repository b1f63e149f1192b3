"""Integer arithmetic of the firmware, in NumPy: fixed-point requantization and reference kernels.

An int8 layer accumulates ``sum((x - zp_x) * w) + bias`` in int32 and must map it back to
int8 with the real factor ``r = x_scale * w_scale / y_scale`` (a number below 1). A
microcontroller without floating point (or one that wants to avoid it) uses a **fixed-point
multiplier**: ``r ~= mult * 2**-n`` with a 31-bit ``mult`` in [2**30, 2**31), so

    y = zp_y + ((acc * mult + 2**(n-1)) >> n)      (round half up)

onnxruntime instead computes ``float32(acc) * float32(r)`` and rounds half to even. The two
agree except when ``acc * r`` lies within float32 rounding error of a .5 boundary, where
they can differ by 1 LSB (see :func:`requantize_like_onnxruntime`).

QLinearAdd and QLinearGlobalAveragePool are requantized in float32 by onnxruntime too; the
float references (:func:`add_ref_float`, :func:`global_avgpool_ref` with ``real``) replicate its
exact operation order, fused multiply-adds included (:func:`fma_f32`).

The NumPy kernels here (:func:`conv2d_ref`, ...) are the references the C kernels are tested
against; they use the same integer arithmetic, so the firmware must match them exactly.

Example:
    >>> mult, shift = quantize_multiplier(0.25)
    >>> mult, shift
    (1073741824, 32)
    >>> int(requantize(np.int32(1000), mult, shift))
    250
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["quantize_multiplier", "requantize", "requantize_like_onnxruntime", "conv2d_ref",
           "dwconv2d_ref", "add_ref", "global_avgpool_ref", "maxpool2d_ref", "pad2d_ref",
           "add_multipliers", "conv_out_size", "requantize_int8", "fma_f32", "add_float_params",
           "add_ref_float"]


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a positive real factor into a 31-bit multiplier and a right shift.

    Returns ``(mult, n)`` with ``real ~= mult / 2**n``, ``2**30 <= mult < 2**31`` and
    ``1 <= n <= 62``. The relative error is below ``2**-31``.

    Example:
        >>> quantize_multiplier(0.5)
        (1073741824, 31)
    """
    real = float(real)
    if not math.isfinite(real) or real <= 0:
        raise ValueError(f"a requantization factor must be a positive finite number, got {real!r}; "
                         "check that the scales in the ONNX graph are positive")
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2**exponent, mantissa in [0.5, 1)
    mult = int(round(mantissa * (1 << 31)))
    if mult == 1 << 31:
        mult //= 2
        exponent += 1
    shift = 31 - exponent
    if shift > 62:  # factor below ~2**-31: every accumulator rounds to 0
        return 0, 1
    if shift < 1:
        raise ValueError(f"requantization factor {real} is too large (>= 2**30) for a 31-bit "
                         "fixed-point multiplier; the layer's output scale is implausibly small")
    return mult, shift


def requantize(acc: np.ndarray | int, mult: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """``(acc * mult + 2**(shift-1)) >> shift`` in exact 64-bit integer arithmetic.

    Does not add the output zero point nor saturate (see the kernels for that).

    Example:
        >>> int(requantize(7, *quantize_multiplier(0.5)))  # 3.5 rounds half up
        4
    """
    acc = np.asarray(acc, dtype=np.int64)
    mult = np.asarray(mult, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    return ((acc * mult + (np.int64(1) << (shift - 1))) >> shift).astype(np.int64)


def requantize_like_onnxruntime(acc: np.ndarray | int, real: np.ndarray | float) -> np.ndarray:
    """onnxruntime's rescale: ``float32(acc) * float32(real)``, rounded half to even.

    Example:
        >>> int(requantize_like_onnxruntime(7, 0.5))  # 3.5 rounds to the even 4
        4
        >>> int(requantize_like_onnxruntime(5, 0.5))  # 2.5 rounds to the even 2
        2
    """
    prod = np.asarray(acc, dtype=np.float32) * np.asarray(real, dtype=np.float32)
    return np.rint(prod).astype(np.int64)


def add_multipliers(ratio_a: float, ratio_b: float) -> tuple[int, int, int]:
    """Two multipliers sharing one shift for ``(a - zp_a) * ratio_a + (b - zp_b) * ratio_b``.

    Example:
        >>> add_multipliers(0.5, 0.25)
        (1073741824, 536870912, 31)
    """
    big = max(float(ratio_a), float(ratio_b))
    mult, shift = quantize_multiplier(big)
    scale = 2.0 ** shift
    mult_a = int(round(float(ratio_a) * scale))
    mult_b = int(round(float(ratio_b) * scale))
    return mult_a, mult_b, shift


def fma_f32(x: Any, y: Any, z: Any) -> np.ndarray:
    """float32 fused multiply-add ``x * y + z`` with a single rounding (C's ``fmaf``), exactly.

    The product of two float32 is exact in float64; TwoSum gives the rounding error of the
    float64 sum, which then rounds to odd, and a round-to-odd result with 53 >= 2 * 24 + 2 bits
    rounds to float32 correctly (Boldo & Melquiond). NumPy has no fma of its own.

    Example:
        >>> eps = np.float32(2.0 ** -23)
        >>> float(fma_f32(1 + eps, 1 - eps, -1.0))  # x * y then + z would round to 0
        -1.4210854715202004e-14
    """
    x64 = np.asarray(x, np.float32).astype(np.float64)
    y64 = np.asarray(y, np.float32).astype(np.float64)
    z64 = np.asarray(z, np.float32).astype(np.float64)
    p = x64 * y64
    s = np.array(p + z64, dtype=np.float64, ndmin=1)
    bb = s - p
    err = np.broadcast_to((p - (s - bb)) + (z64 - bb), s.shape)
    fix = (err != 0) & ((s.view(np.int64) & 1) == 0)
    s[fix] = np.nextafter(s[fix], s[fix] + err[fix])
    return s.astype(np.float32).reshape(np.broadcast_shapes(x64.shape, y64.shape, z64.shape))


def add_float_params(scale_a: float, zp_a: int, scale_b: float, zp_b: int, scale_c: float,
                     zp_c: int) -> tuple[np.float32, np.float32, np.float32]:
    """QLinearAdd constants as onnxruntime's AVX2 kernel (``MlasQLinearAddS8KernelAvx2``) makes them.

    Returns float32 ``(ratio_a, ratio_b, fixed)``: ``ratio_a = scale_a / scale_c``,
    ``ratio_b = scale_b / scale_c`` and ``fixed = zp_c - (ratio_a * zp_a + ratio_b * zp_b)``,
    where the compiler fused the first product into the sum (``fmaf(ratio_a, zp_a, ratio_b * zp_b)``):
    checked against onnxruntime on every (a, b) pair for many scales and zero points. See
    :func:`add_ref_float`.

    Example:
        >>> [float(v) for v in add_float_params(0.5, 2, 0.25, -4, 0.5, 3)]
        [1.0, 0.5, 3.0]
    """
    f32 = np.float32
    ratio_a = f32(scale_a) / f32(scale_c)
    ratio_b = f32(scale_b) / f32(scale_c)
    fixed = f32(zp_c) - fma_f32(ratio_a, f32(zp_a), ratio_b * f32(zp_b))[()]
    return f32(ratio_a), f32(ratio_b), f32(fixed)


def add_ref_float(a: np.ndarray, b: np.ndarray, ratio_a: float, ratio_b: float, fixed: float,
                  act: tuple[int, int] = (-128, 127)) -> np.ndarray:
    """Quantized element-wise add the way onnxruntime computes it (x86-64 with AVX2/FMA):
    ``saturate(round_half_even(fmaf(a, ratio_a, fmaf(b, ratio_b, fixed))))`` on the raw int8
    values (the zero points live in ``fixed``; see :func:`add_float_params`).

    A fixed-point add (:func:`add_ref`) rounds the exact sum; onnxruntime rounds this float32
    value, which can sit on the other side of a .5 when the exact sum is within float32 error
    of one (e.g. exact 78.500005, onnxruntime's float32 value 78.5, rounded to the even 78).

    Example:
        >>> ra, rb, fx = add_float_params(0.5, 0, 0.5, 0, 1.0, 0)
        >>> add_ref_float(np.array([1, 3]), np.array([2, 2]), ra, rb, fx).tolist()  # 1.5 -> 2, 2.5 -> 2
        [2, 2]
    """
    f32 = np.float32
    t = fma_f32(np.asarray(b, f32), f32(ratio_b), f32(fixed))
    t = fma_f32(np.asarray(a, f32), f32(ratio_a), t)
    return _sat(np.rint(t).astype(np.int64), *act)


def _sat(v: np.ndarray, lo: int = -128, hi: int = 127) -> np.ndarray:
    return np.clip(v, lo, hi).astype(np.int8)


def conv_out_size(size: int, k: int, stride: int, pad_begin: int, pad_end: int, dilation: int = 1) -> int:
    """Output length of a convolution along one axis (ONNX ``NOTSET`` padding).

    Example:
        >>> conv_out_size(49, 3, 2, 1, 1)
        25
    """
    return (size + pad_begin + pad_end - dilation * (k - 1) - 1) // stride + 1


def _windows(x: np.ndarray, kh: int, kw: int, stride: Sequence[int], pads: Sequence[int],
             dilation: Sequence[int], fill: int) -> np.ndarray:
    """(H, W, C) -> (OH, OW, kh, kw, C) receptive fields, padded with ``fill``."""
    top, left, bottom, right = pads
    h, w, c = x.shape
    xp = np.full((h + top + bottom, w + left + right, c), fill, dtype=np.int64)
    xp[top:top + h, left:left + w] = x
    oh = conv_out_size(h, kh, stride[0], top, bottom, dilation[0])
    ow = conv_out_size(w, kw, stride[1], left, right, dilation[1])
    out = np.empty((oh, ow, kh, kw, c), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            out[:, :, ky, kx] = xp[y0:y0 + stride[0] * (oh - 1) + 1:stride[0],
                                   x0:x0 + stride[1] * (ow - 1) + 1:stride[1]]
    return out


def _rescale(acc: np.ndarray, mult: Any, shift: Any, real: Any) -> np.ndarray:
    if real is not None:
        return requantize_like_onnxruntime(acc, np.asarray(real, np.float32))
    return requantize(acc, np.asarray(mult), np.asarray(shift))


def conv2d_ref(x: np.ndarray, w: np.ndarray, bias: np.ndarray, zp_x: int, zp_y: int,
               mult: np.ndarray, shift: np.ndarray, stride: Sequence[int] = (1, 1),
               pads: Sequence[int] = (0, 0, 0, 0), dilation: Sequence[int] = (1, 1),
               act: tuple[int, int] = (-128, 127), real: np.ndarray | None = None) -> np.ndarray:
    """int8 convolution. ``x`` (H, W, Cin) int8, ``w`` (Cout, kh, kw, Cin) int8, ``pads``
    (top, left, bottom, right); returns (OH, OW, Cout) int8.

    Example:
        >>> x = np.ones((3, 3, 1), np.int8); w = np.ones((1, 3, 3, 1), np.int8)
        >>> m, s = quantize_multiplier(1 / 9)
        >>> int(conv2d_ref(x, w, np.zeros(1, np.int32), 0, 0, [m], [s])[0, 0, 0])
        1
    """
    cout, kh, kw, _ = w.shape
    win = _windows(x, kh, kw, stride, pads, dilation, fill=zp_x) - zp_x
    acc = np.einsum("yxijc,oijc->yxo", win, w.astype(np.int64)) + np.asarray(bias, np.int64)
    return _sat(zp_y + _rescale(acc, mult, shift, real), *act)


def dwconv2d_ref(x: np.ndarray, w: np.ndarray, bias: np.ndarray, zp_x: int, zp_y: int,
                 mult: np.ndarray, shift: np.ndarray, stride: Sequence[int] = (1, 1),
                 pads: Sequence[int] = (0, 0, 0, 0), dilation: Sequence[int] = (1, 1),
                 act: tuple[int, int] = (-128, 127), real: np.ndarray | None = None) -> np.ndarray:
    """int8 depthwise convolution. ``x`` (H, W, C), ``w`` (kh, kw, C); returns (OH, OW, C)."""
    kh, kw, _ = w.shape
    win = _windows(x, kh, kw, stride, pads, dilation, fill=zp_x) - zp_x
    acc = np.einsum("yxijc,ijc->yxc", win, w.astype(np.int64)) + np.asarray(bias, np.int64)
    return _sat(zp_y + _rescale(acc, mult, shift, real), *act)


def add_ref(a: np.ndarray, b: np.ndarray, zp_a: int, zp_b: int, mult_a: int, mult_b: int,
            shift: int, zp_y: int, act: tuple[int, int] = (-128, 127)) -> np.ndarray:
    """Quantized element-wise add with two multipliers sharing one shift."""
    acc = (a.astype(np.int64) - zp_a) * mult_a + (b.astype(np.int64) - zp_b) * mult_b
    return _sat(zp_y + ((acc + (np.int64(1) << (shift - 1))) >> shift), *act)


def global_avgpool_ref(x: np.ndarray, zp_x: int, mult: int, shift: int, zp_y: int,
                       real: float | None = None) -> np.ndarray:
    """(H, W, C) int8 -> (C,) int8 mean, with the factor ``x_scale / (H*W*y_scale)``: fixed
    point (``mult``, ``shift``), or with ``real`` (that factor in float32) onnxruntime's
    ``round_half_even(float(acc) * real)``."""
    h, w, _ = x.shape
    acc = x.astype(np.int64).sum(axis=(0, 1)) - zp_x * h * w
    if real is not None:
        return _sat(zp_y + requantize_like_onnxruntime(acc, real))
    return _sat(zp_y + requantize(acc, mult, shift))


def maxpool2d_ref(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
                  pads: Sequence[int] = (0, 0, 0, 0)) -> np.ndarray:
    """(H, W, C) int8 max pooling; padding never wins (it is -128)."""
    win = _windows(x, kernel[0], kernel[1], stride, pads, (1, 1), fill=-128)
    return win.max(axis=(2, 3)).astype(np.int8)


def pad2d_ref(x: np.ndarray, pads: Sequence[int], value: int) -> np.ndarray:
    """(H, W, C) constant padding; ``pads`` = (top, left, bottom, right)."""
    top, left, bottom, right = pads
    return np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=value).astype(np.int8)


def requantize_int8(acc: np.ndarray | int, mult: int, shift: int, zp_out: int) -> np.ndarray:
    """What a kernel writes: ``saturate(zp_out + requantize(acc, mult, shift))`` as int8.

    Example:
        >>> m, s = quantize_multiplier(0.01)
        >>> requantize_int8(np.array([1000, 25_000, -40]), m, s, zp_out=-5).tolist()
        [5, 127, -5]
    """
    return np.clip(np.int64(zp_out) + requantize(acc, mult, shift), -128, 127).astype(np.int8)
