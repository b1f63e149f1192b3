"""Exercise checks for notebook 04 (PhiNets and hardware-aware scaling).

Example:
    >>> def mine(alpha, t, c, k, h, w):
    ...     p = 2 * alpha**2 * t * c**2 + alpha * t * c * k**2
    ...     return p, h * w * p
    >>> check_block_cost(mine)
    ✅ 04.block_cost: correct on 4 test case(s).
    True
"""
from __future__ import annotations

import math
from typing import Any, Callable

from . import Hint, check_function, register_hints
from .. import scaling

HINTS = register_hints({
    "04.block_cost": Hint(
        "an inverted-residual block is three convs: a 1x1 expansion, a k x k depthwise and a 1x1 "
        "projection; count each one's weights with the widened channel counts, then MACs per position",
        "params = 2*alpha**2*t*c**2 + alpha*t*c*k**2; macs = h*w*params"),
    "04.alpha_for_macs": Hint(
        "the MACs are a quadratic in alpha (1x1 convs grow with alpha**2, depthwise with alpha): "
        "collect the two coefficients over the blocks and solve for the budget",
        "collect a = sum W H 2 t C^2 and b = sum W H t C K^2 over the blocks, "
        "then take the positive root of a alpha^2 + b alpha = M"),
})

__all__ = ["check_block_cost", "check_alpha_for_macs"]

_BLOCK_CASES = [((1.0, 4.0, 24, 3, 80, 80), {}), ((0.5, 6.0, 24, 3, 40, 40), {}),
                ((0.35, 2.5, 48, 5, 7, 5), {}), ((1.5, 3.0, 96, 3, 1, 1), {})]


def _reference_block_cost(alpha: float, t: float, c: float, k: int, h: int, w: int) -> tuple[float, float]:
    return scaling.block_params(alpha, t, c, k), scaling.block_macs(alpha, t, c, h, w, k)


def _explain_block(got: Any, want: Any, case: Any) -> str | None:
    (alpha, t, c, k, h, w), _ = case
    try:
        params, macs = float(got[0]), float(got[1])
    except (TypeError, ValueError, IndexError):
        return "return a pair (params, macs)"
    depthwise = alpha * t * c * k ** 2
    pointwise = 2 * alpha ** 2 * t * c ** 2
    if math.isclose(params, pointwise / 2 + depthwise, rel_tol=1e-6):
        return ("params miss half of the 1x1 convolutions: the block has an expand (C -> tC) AND a "
                "project (tC -> C) 1x1 convolution, hence the factor 2")
    if math.isclose(params, 2 * alpha * t * c ** 2 + depthwise, rel_tol=1e-6):
        return "the 1x1 convolutions scale with alpha squared (alpha widens both their input and output)"
    if math.isclose(params, pointwise + alpha * t * c * k, rel_tol=1e-6):
        return "a KxK depthwise kernel has K**2 weights per channel, not K"
    if math.isclose(params, pointwise, rel_tol=1e-6):
        return "you left out the depthwise convolution's alpha * t * C * K**2 weights"
    if math.isclose(params, want[0], rel_tol=1e-6) and math.isclose(macs, params, rel_tol=1e-6):
        return "MACs = W_B * H_B * (the per-position cost): every weight is used once per output pixel"
    if math.isclose(params, want[0], rel_tol=1e-6):
        return f"params are right; MACs should be h * w * params = {want[1]:g}"
    return None


def check_block_cost(learner_fn: Callable[..., Any]) -> bool:
    """Check ``fn(alpha, t, c, k, h, w) -> (params, macs)`` against the deck's block formula."""
    return check_function("04.block_cost", learner_fn, _reference_block_cost, _BLOCK_CASES,
                          rtol=1e-6, explain=_explain_block,
                          hint=HINTS["04.block_cost"])


_ALPHA_CASES = [((4e6, (1, 49, 40), 1.0, 4.0), {}), ((63e6, (3, 160, 160), 0.66, 4.0), {}),
                ((1e6, (1, 28, 28), 1.5, 2.0), {})]


def _explain_alpha(got: Any, want: Any, case: Any) -> str | None:
    (budget, shape, beta, t0), _ = case
    try:
        g = float(got)
    except (TypeError, ValueError):
        return "return one number: the alpha"
    blocks = scaling.phinet_blocks(shape, beta, t0)
    a = sum(b.in_hw[0] * b.in_hw[1] * 2.0 * b.expansion * b.in_channels ** 2 for b in blocks)
    lin = sum(b.in_hw[0] * b.in_hw[1] * b.expansion * b.in_channels * b.kernel ** 2 for b in blocks)
    if math.isclose(g, math.sqrt(budget / a), rel_tol=1e-6):
        return ("you solved a*alpha**2 = M and dropped the depthwise term: solve "
                "a*alpha**2 + b*alpha - M = 0 with the quadratic formula")
    if math.isclose(g, (-lin - math.sqrt(lin * lin + 4 * a * budget)) / (2 * a), rel_tol=1e-6):
        return "that is the negative root; alpha must be positive (take +sqrt)"
    value = scaling.closed_form_macs(shape, g, beta, t0) if g > 0 else float("nan")
    if g > 0:
        return f"closed_form_macs at your alpha is {value:,.0f}, the budget is {budget:,.0f}"
    return None


def check_alpha_for_macs(learner_fn: Callable[..., Any]) -> bool:
    """Check ``fn(mac_budget, input_shape, beta, t0) -> alpha`` (inverting the MAC closed form)."""
    return check_function("04.alpha_for_macs", learner_fn, scaling.alpha_for_macs, _ALPHA_CASES,
                          rtol=1e-6, explain=_explain_alpha,
                          hint=HINTS["04.alpha_for_macs"])
