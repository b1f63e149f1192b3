"""Checks for the exercises of notebook 06 (deployment on an emulated Cortex-M4).

The references are :func:`tinyml_helpers.deploy.pipeline.arena_lower_bound` and
:func:`tinyml_helpers.deploy.quant.requantize_int8`.

Example:
    >>> check_arena_lower_bound(lambda t: 0)  # doctest: +ELLIPSIS
    ❌ 06.arena_size: ...
    False
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..deploy import quant
from ..deploy.pipeline import arena_lower_bound
from . import Hint, check_function, register_hints

HINTS = register_hints({
    "06.arena_size": Hint(
        "a tensor occupies memory from the step that makes it to its last reader: at which step are "
        "the most bytes alive at once?",
        "for each step t, add the sizes of tensors with first <= t <= last; the answer is the largest such sum"),
    "06.requantize": Hint(
        "a fixed-point multiply: scale the int32 accumulator by mult / 2**shift with rounding, add the "
        "output zero point, saturate to int8; use a wide integer type",
        "y = clip(zp_out + ((acc * mult + 2**(shift-1)) >> shift), -128, 127), in int64 so acc * mult cannot overflow"),
})

# A small keyword CNN, int8: input 49x40x1, conv -> 25x20x16, depthwise -> 25x20x16,
# pointwise -> 25x20x32, residual-free, global average pool -> 32, dense -> 12.
SMALL_GRAPH = [
    ("input", 49 * 40 * 1, 0, 0),
    ("conv1", 25 * 20 * 16, 0, 1),
    ("dw1", 25 * 20 * 16, 1, 2),
    ("pw1", 25 * 20 * 32, 2, 3),
    ("gap", 32, 3, 4),
    ("logits", 12, 4, 4),
]
# The same with a skip connection: conv1's output is still needed by an add at step 3.
SKIP_GRAPH = [
    ("input", 1960, 0, 0),
    ("conv1", 8000, 0, 3),
    ("dw1", 8000, 1, 2),
    ("pw1", 8000, 2, 3),
    ("add", 8000, 3, 4),
    ("gap", 16, 4, 5),
    ("logits", 12, 5, 5),
]
_ARENA_CASES = [((SMALL_GRAPH,), {}), ((SKIP_GRAPH,), {}),
                (([("a", 100, 0, 2), ("b", 30, 1, 1), ("c", 70, 3, 4), ("d", 90, 2, 3)],), {})]


def _explain_arena(got: Any, want: Any, case: Any) -> str | None:
    (tensors,), _ = case
    sizes = [s for _, s, _, _ in tensors]
    if got == sum(sizes):
        return ("you added up every tensor: tensors whose lifetimes do not overlap can reuse the same "
                "bytes, so only the tensors live at the same step count")
    if got == max(sizes):
        return ("you took the largest single tensor, but a layer's input and output are live at the same "
                "step (both ends of first..last are inclusive)")
    steps = range(max(l for *_, l in tensors) + 1)
    exclusive = max(sum(s for _, s, f, l in tensors if f <= t < l) for t in steps)
    if got == exclusive:
        return "the last step is inclusive: a tensor is still live at its `last` step (use first <= t <= last)"
    return None


def check_arena_lower_bound(learner_fn: Callable[..., Any]) -> bool:
    """Check ``arena_size(tensors) -> int`` (exercise 06.arena_size)."""
    return check_function("06.arena_size", learner_fn, arena_lower_bound, _ARENA_CASES, rtol=0, atol=0,
                          explain=_explain_arena,
                          hint=HINTS["06.arena_size"])


_ACC = np.array([0, 1, -1, 37, 50, -50, 1234, -1234, 51_200, -51_200, 400_000, -400_000, 2_000_000])
_REQ_CASES = [((_ACC, *quant.quantize_multiplier(0.0025), -3), {}),
              ((_ACC, *quant.quantize_multiplier(0.000731), 12), {}),
              ((_ACC, *quant.quantize_multiplier(0.3), -128), {})]


def _explain_requant(got: Any, want: Any, case: Any) -> str | None:
    (acc, mult, shift, zp), _ = case
    got = np.asarray(got, dtype=np.int64)
    acc64 = np.asarray(acc, np.int64)
    floor = np.clip(zp + ((acc64 * mult) >> shift), -128, 127)
    if np.array_equal(got, floor):
        return "you shifted without rounding: add 2**(shift-1) before the right shift (round half up)"
    exact = zp + ((acc64 * mult + (1 << (shift - 1))) >> shift)
    if np.array_equal(got, exact) or np.array_equal(got, exact.astype(np.int8)):
        return "values outside [-128, 127] must saturate (np.clip), not wrap around"
    if np.array_equal(got, np.clip(exact - zp, -128, 127)):
        return "the output zero point is missing: add zp_out after the shift"
    return None


def check_requantize(learner_fn: Callable[..., Any]) -> bool:
    """Check ``requantize(acc, mult, shift, zp_out) -> int8 array`` (exercise 06.requantize)."""
    return check_function("06.requantize", learner_fn, quant.requantize_int8, _REQ_CASES, rtol=0, atol=0,
                          explain=_explain_requant,
                          hint=HINTS["06.requantize"])
