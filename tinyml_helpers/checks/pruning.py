"""Exercise checks for notebook 02 (pruning).

Each check runs the learner's function against the reference in
:mod:`tinyml_helpers.pruning` / :mod:`tinyml_helpers.sparse` and, when they differ, says
which classic slip explains it.

Example:
    >>> from tinyml_helpers.pruning import magnitude_prune
    >>> check_magnitude_prune(magnitude_prune)
    ✅ 02.magnitude_prune: correct on 4 test case(s).
    True
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from . import Hint, check_function, register_hints
from ..pruning import magnitude_prune
from ..sparse import csr_bytes

HINTS = register_hints({
    "02.magnitude_prune": Hint(
        "theta is the magnitude of the k-th smallest weight (k from the sparsity and the number of "
        "weights); work on a copy, and think about k = 0",
        "theta = the k-th smallest of weights.abs().flatten(), with k = round(sparsity * weights.numel()); "
        "return a copy with |w| <= theta set to 0 (for k = 0, i.e. sparsity 0, an unchanged copy)."),
    "02.csr_bytes": Hint(
        "CSR stores three arrays (see the list above): how many entries does each have, and how wide is each entry?",
        "CSR = values (nnz * value_bytes) + column indices (nnz * index_bytes) + row pointers ((rows + 1) * ptr_bytes)."),
})

__all__ = ["check_magnitude_prune", "check_csr_bytes"]


def _prune_cases() -> list:
    g = torch.Generator().manual_seed(2)
    return [
        ((torch.tensor([0.3, -0.1, 2.0, -0.05]), 0.5), {}),
        ((torch.randn(8, 5, generator=g), 0.8), {}),
        ((torch.randn(4, 3, 3, 3, generator=g), 0.25), {}),
        ((torch.randn(10, generator=g), 0.0), {}),
    ]


def _explain_prune(got: Any, want: torch.Tensor, case: Any) -> str | None:
    (weights, sparsity), _ = case
    got = torch.as_tensor(got)
    if got.shape != want.shape:
        return (f"your output has shape {tuple(got.shape)}, the weights have shape "
                f"{tuple(weights.shape)}: return a tensor shaped like the input")
    got_zeros = float((got == 0).float().mean())
    want_zeros = float((want == 0).float().mean())
    k = round(sparsity * weights.numel())
    if k and (weights < 0).any():
        theta_abs = weights.abs().flatten().kthvalue(k).values
        theta_signed = weights.flatten().kthvalue(k).values
        for theta in (theta_abs, theta_signed):
            signed_slip = torch.where(weights <= theta, torch.zeros_like(weights), weights)
            if torch.equal(got, signed_slip):
                return ("you compared the signed weights with theta, so large negative weights "
                        "were pruned too: rank and compare by magnitude, |w| (weights.abs())")
    if abs(got_zeros - want_zeros) > 1e-6:
        return (f"{100 * got_zeros:.1f} % of your entries are zero, the target was "
                f"{100 * want_zeros:.1f} %: keep k = round(sparsity * numel) zeros "
                f"(the k-th smallest |w| is theta, and |w| <= theta goes to 0)")
    kept_got = got[got != 0].abs().min() if (got != 0).any() else None
    kept_want = want[want != 0].abs().min() if (want != 0).any() else None
    if kept_got is not None and kept_want is not None and kept_got < kept_want:
        return "you zeroed the right number of weights but not the smallest ones: sort by |w|"
    if not torch.allclose(got[got != 0], weights[got != 0]):
        return "the surviving weights changed: keep their original values (and signs)"
    return None


def check_magnitude_prune(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check a learner's ``fn(weights, sparsity) -> pruned copy`` (the input must stay untouched)."""

    def on_a_copy(weights: torch.Tensor, sparsity: float) -> Any:
        original = weights.clone()
        out = fn(weights, sparsity)
        if not torch.equal(weights, original):
            weights.copy_(original)
            raise ValueError("your function changed the weights it was given: prune a copy "
                             "(weights.clone()) and return that")
        return out

    return check_function("02.magnitude_prune", on_a_copy if callable(fn) else fn, magnitude_prune, _prune_cases(),
                          hint=HINTS["02.magnitude_prune"],
                          explain=_explain_prune)


def _csr_reference(rows: int, cols: int, nnz: int, value_bytes: int, index_bytes: int, ptr_bytes: int) -> int:
    return csr_bytes(rows, cols, nnz, value_bytes, index_bytes, ptr_bytes)


_CSR_CASES = [
    ((64, 64, 410, 4, 1, 2), {}),
    ((100, 300, 3000, 1, 2, 2), {}),
    ((10, 10, 0, 4, 1, 1), {}),
    ((128, 576, 7373, 4, 2, 4), {}),
]


def _explain_csr(got: Any, want: int, case: Any) -> str | None:
    (rows, cols, nnz, vb, ib, pb), _ = case
    try:
        got = int(got)
    except (TypeError, ValueError):
        return f"return a whole number of bytes, got {got!r}"
    if got == nnz * (vb + ib) + rows * pb:
        return "one row pointer is missing: CSR stores rows + 1 of them (where each row starts, plus the end)"
    if got == nnz * vb + (rows + 1) * pb:
        return "you forgot the column indices: every stored value needs its column (index_bytes each)"
    if got == nnz * (vb + ib):
        return "you forgot the row pointers: (rows + 1) * ptr_bytes"
    if got == rows * cols * vb:
        return "that is the dense size; CSR stores only the nnz non-zeros, plus their positions"
    if got * 8 == want or got == want * 8:
        return "mixing bits and bytes? every width here is already in bytes"
    return None


def check_csr_bytes(fn: Callable[..., int]) -> bool:
    """Check a learner's ``fn(rows, cols, nnz, value_bytes, index_bytes, ptr_bytes) -> bytes``."""
    return check_function("02.csr_bytes", fn, _csr_reference, _CSR_CASES, rtol=0, atol=0.5,
                          hint=HINTS["02.csr_bytes"],
                          explain=_explain_csr)
