"""Checks for the exercises of notebook 05 (conversion and int8 quantization).

The references are :func:`tinyml_helpers.export.quantize_tensor`,
:func:`~tinyml_helpers.export.dequantize_tensor`,
:func:`~tinyml_helpers.export.affine_qparams` and
:func:`~tinyml_helpers.export.expected_weight_bytes`.

Example:
    >>> import numpy as np
    >>> check_symmetric_scale(lambda w: float(np.abs(w).max()) / 127)
    ✅ 05.symmetric_scale: correct on 3 test case(s).
    True
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import export as ex
from . import Hint, check_function, register_hints, report

HINTS = register_hints({
    "05.quantize": Hint(
        "read the formula above right to left: divide, round, shift by the zero point, then keep the "
        "result inside int8's range before casting",
        "q = clip(round(x / scale) + zero_point, -128, 127), as int8"),
    "05.dequantize": Hint(
        "undo the shift, then the division; int8 arithmetic overflows, so widen q first",
        "x = (q.astype(np.int32) - zero_point) * scale"),
    "05.quantize_dequantize": Hint(
        "both functions pass on their own; the round trip should lose at most half a step",
        "rounding to the nearest step loses at most scale / 2"),
    "05.symmetric_scale": Hint(
        "symmetric: zero point 0, so which weight must land exactly on the last level (127)?",
        "scale = max(|w|) / 127, zero point 0"),
    "05.expected_int8_bytes": Hint(
        "weights and biases have different integer widths in int8 inference: which is which?",
        "1 byte per int8 weight + 4 bytes per int32 bias"),
})

# No value lands on a half step for these scales: rounding ties would depend on float32 vs
# float64 arithmetic, and a correct answer must not fail on that.
_X = np.array([-1.3, -0.52, -0.047, 0.0, 0.049, 0.26, 0.773, 1.0, 3.9], dtype=np.float32)
_QUANT_CASES = [((_X, 0.0125, 0), {}), ((_X, 0.02, -20), {}), ((_X * 10, 0.05, 3), {})]


def _explain_quantize(got: Any, want: Any, case: Any) -> str | None:
    (x, scale, zp), _ = case
    got = np.asarray(got, dtype=float)
    x = np.asarray(x, dtype=np.float64)
    if np.any(got > 127) or np.any(got < -128):
        return "some values fall outside [-128, 127]: clamp (np.clip) after adding the zero point"
    if np.array_equal(got, np.clip(np.rint(x / scale), -128, 127)) and zp != 0:
        return "the zero point is missing: add it after rounding"
    if np.array_equal(got, np.clip(np.floor(x / scale) + zp, -128, 127)) or \
            np.array_equal(got, np.clip(np.trunc(x / scale) + zp, -128, 127)):
        return "you truncated instead of rounding to the nearest integer (np.rint / np.round)"
    if np.allclose(got, np.clip(np.rint(x * scale) + zp, -128, 127)):
        return "you multiplied by the scale; quantizing divides by it (x / scale)"
    return None


def check_quantize(learner_fn: Callable[..., Any]) -> bool:
    """Check ``quantize(x, scale, zero_point) -> int8 array`` (exercise 05.quantize_dequantize)."""
    return check_function("05.quantize", learner_fn, ex.quantize_tensor, _QUANT_CASES, atol=0,
                          rtol=0, explain=_explain_quantize,
                          hint=HINTS["05.quantize"])


def _explain_dequantize(got: Any, want: Any, case: Any) -> str | None:
    (q, scale, zp), _ = case
    got = np.asarray(got, dtype=float)
    q = np.asarray(q, dtype=np.float64)
    if np.allclose(got, q * scale - zp) or np.allclose(got, q * scale + zp * scale):
        return "subtract the zero point BEFORE multiplying by the scale: (q - zero_point) * scale"
    if np.allclose(got, q / scale - zp) or np.allclose(got, (q - zp) / scale):
        return "dequantizing multiplies by the scale; you divided"
    wrapped = ((q.astype(np.int64) - zp + 128) % 256 - 128) * scale
    if np.allclose(got, wrapped, atol=1e-6):
        return "integer overflow: convert q to a wider type (int32 or float) before subtracting"
    return None


def check_dequantize(learner_fn: Callable[..., Any]) -> bool:
    """Check ``dequantize(q, scale, zero_point) -> float array`` (exercise 05.quantize_dequantize)."""
    cases = [((np.array([-128, -20, 0, 5, 127], np.int8), 0.02, -20), {}),
             ((np.array([-128, 0, 127], np.int8), 0.5, 100), {}),
             ((np.array([3, -3], np.int8), 0.1, 0), {})]
    return check_function("05.dequantize", learner_fn, ex.dequantize_tensor, cases, rtol=1e-6,
                          atol=1e-6, explain=_explain_dequantize,
                          hint=HINTS["05.dequantize"])


def check_round_trip(quantize_fn: Callable[..., Any], dequantize_fn: Callable[..., Any],
                     x: np.ndarray, scale: float, zero_point: int) -> bool:
    """Both functions right, and the round trip error at most half a step inside the range."""
    ok = check_quantize(quantize_fn) & check_dequantize(dequantize_fn)
    if not ok:
        return False
    back = np.asarray(dequantize_fn(quantize_fn(x, scale, zero_point), scale, zero_point), float)
    lo, hi = (-128 - zero_point) * scale, (127 - zero_point) * scale
    inside = (x >= lo) & (x <= hi)
    err = float(np.abs(back - x)[inside].max()) if inside.any() else 0.0
    return report("05.quantize_dequantize", err <= scale / 2 + 1e-6,
                  f"round trip error {err:.4g} <= half a step ({scale / 2:.4g}) for values in range.",
                  hint=HINTS["05.quantize_dequantize"])


def _explain_scale(got: Any, want: Any, case: Any) -> str | None:
    (w,), _ = case
    m = float(np.abs(w).max())
    for wrong, why in ((m / 128, "divide by 127, not 128: the symmetric int8 grid is [-127, 127]"),
                       (m / 255, "255 levels is the asymmetric range; symmetric weights use 127"),
                       (2 * m / 255, "that spreads [-max|w|, max|w|] over 255 steps, but the symmetric grid "
                                   "[-127, 127] has 254: scale = max|w| / 127"),
                       (float(np.max(w)) / 127, "use the largest ABSOLUTE value (np.abs): the most "
                                                "negative weight may be the extreme one")):
        if np.isclose(float(got), wrong, rtol=1e-6):
            return why
    return None


def check_symmetric_scale(learner_fn: Callable[..., Any]) -> bool:
    """Check ``symmetric_scale(w) -> float`` (exercise 05.symmetric_scale)."""
    rng = np.random.default_rng(5)
    cases = [((np.array([-0.8, 0.1, 0.4], np.float32),), {}),
             ((rng.normal(0, 0.2, 50).astype(np.float32),), {}),
             ((np.array([0.3, -0.2], np.float32),), {})]
    ref = lambda w: ex.affine_qparams(float(np.min(w)), float(np.max(w)), symmetric=True)[0]  # noqa: E731
    return check_function("05.symmetric_scale", learner_fn, ref, cases, rtol=1e-5, atol=0,
                          explain=_explain_scale, hint=HINTS["05.symmetric_scale"])


def _explain_bytes(got: Any, want: Any, case: Any) -> str | None:
    (w, b), _ = case
    g = float(got)
    if g == w + b:
        return "biases stay int32 (4 bytes each): they are added to the int32 accumulator"
    if g == w:
        return "you forgot the biases (int32, 4 bytes each)"
    if g == 4 * (w + b):
        return "that is the float32 size: int8 weights take 1 byte each"
    if g == (w + b) / 4 or g == w / 4 + b:
        return "8 bits = 1 byte per weight (you divided by 4)"
    return None


def check_expected_int8_bytes(learner_fn: Callable[..., Any]) -> bool:
    """Check ``expected_int8_bytes(num_weights, num_biases) -> int`` (exercise 05.expected_int8_bytes)."""
    cases = [((1000, 10), {}), ((73_000, 1_500), {}), ((12, 0), {})]
    ref = lambda w, b: ex.expected_weight_bytes(w, b, bits=8, bias_bits=32)  # noqa: E731
    return check_function("05.expected_int8_bytes", learner_fn, ref, cases, rtol=0, atol=0,
                          explain=_explain_bytes,
                          hint=HINTS["05.expected_int8_bytes"])
