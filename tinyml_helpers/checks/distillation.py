"""Exercise checks for notebook 01 (knowledge distillation).

Each check runs the learner's function against the reference in
:mod:`tinyml_helpers.distillation` on small tensors and, when the results differ, recomputes
the classic slips (no temperature, ``mean`` instead of ``batchmean``, the KL the wrong way
round, probabilities where ``F.kl_div`` wants log-probabilities, log-probabilities where it
wants probabilities, the softmax over the wrong axis, a missing ``T**2``) to say
which one explains the learner's number.

Example:
    >>> from tinyml_helpers.distillation import soft_labels
    >>> check_soft_labels(soft_labels)
    ✅ 01.soft_labels: correct on 3 test case(s).
    True
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import Hint, check_function, register_hints
from ..distillation import kd_loss, soft_labels

HINTS = register_hints({
    "01.soft_labels": Hint(
        "a softmax, but of the logits made softer first: what does dividing by T > 1 do to them?",
        "q_i = exp(z_i / T) / sum_j exp(z_j / T): torch.softmax(logits / T, dim=-1)"),
    "01.kd_loss": Hint(
        "F.kl_div(input, target) wants the student's LOG-probabilities as input and the teacher's "
        "probabilities as target, both softened by T; mind the reduction and the T**2 factor",
        "T**2 * F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction='batchmean')"),
})

__all__ = ["check_soft_labels", "check_kd_loss"]


def _close(a: Any, b: Any) -> bool:
    try:
        a = torch.as_tensor(a.detach() if hasattr(a, "detach") else a, dtype=torch.float64)
        b = torch.as_tensor(b.detach() if hasattr(b, "detach") else b, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-6))


def _first_match(got: Any, candidates: dict[str, Any]) -> str | None:
    for explanation, value in candidates.items():
        if _close(got, value):
            return explanation
    return None


def _soft_label_cases() -> list:
    g = torch.Generator().manual_seed(1)
    return [
        ((torch.tensor([[2.0, 1.0, 0.1]]), 1.0), {}),
        ((3 * torch.randn(4, 5, generator=g), 4.0), {}),
        ((3 * torch.randn(2, 12, generator=g), 0.5), {}),
    ]


def _explain_soft_labels(got: Any, want: Any, case: Any) -> str | None:
    (logits, T), _ = case
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        sums = got.detach().double().sum(dim=-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4) and _close(got / got.sum(-1, keepdim=True), want):
            return "each row must sum to 1: divide exp(z_i / T) by the sum over the classes j"
    return _first_match(got, {
        "the temperature is missing: divide the logits by T before the softmax":
            torch.softmax(logits, dim=-1),
        "you multiplied the logits by T; divide them (q_i = exp(z_i / T) / sum_j exp(z_j / T))":
            torch.softmax(logits * T, dim=-1),
        "the softmax runs over the wrong axis: normalise over the classes (dim=-1), not the batch":
            torch.softmax(logits / T, dim=0),
        "you returned log-probabilities (log_softmax); the soft labels are probabilities (softmax)":
            torch.log_softmax(logits / T, dim=-1),
    })


def check_soft_labels(learner_fn: Callable[[torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``learner_fn(logits, temperature)`` against :func:`~tinyml_helpers.distillation.soft_labels`."""
    return check_function("01.soft_labels", learner_fn, soft_labels, _soft_label_cases(),
                          rtol=1e-4, atol=1e-6, explain=_explain_soft_labels,
                          hint=HINTS["01.soft_labels"])


def _kd_cases() -> list:
    g = torch.Generator().manual_seed(3)
    # Batch sizes, class counts and T**2 all differ, so each slip gives a distinct number.
    return [
        ((2 * torch.randn(3, 5, generator=g), 2 * torch.randn(3, 5, generator=g), 2.0), {}),
        ((2 * torch.randn(6, 3, generator=g), 3 * torch.randn(6, 3, generator=g), 4.0), {}),
    ]


def _explain_kd(got: Any, want: Any, case: Any) -> str | None:
    (s, t, T), _ = case
    n, c = s.shape
    log_qs, log_qt = F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1)
    qs, qt = log_qs.exp(), log_qt.exp()
    kl_per_sample = (qt * (log_qt - log_qs)).sum(1)
    try:
        finite = bool(torch.isfinite(torch.as_tensor(got.detach() if hasattr(got, "detach") else got)).all())
    except (TypeError, ValueError, RuntimeError):
        finite = True
    if not finite:
        return ("your loss is NaN or infinite: F.kl_div's target must be the teacher's probabilities "
                "(F.softmax); log-probabilities there need log_target=True")
    return _first_match(got, {
        "the T**2 factor is missing: multiply the KL by T**2 (otherwise the gradients shrink like 1/T**2)":
            kl_per_sample.mean(),
        "you scaled by T**2 twice (or by T**4)": kl_per_sample.mean() * T**4,
        "you scaled by T instead of T**2": kl_per_sample.mean() * T,
        f"reduction='mean' averages over all {n}x{c} entries, i.e. it also divides by the {c} classes; "
        "use reduction='batchmean' (sum over classes, mean over the batch)":
            kl_per_sample.mean() * T**2 / c,
        f"reduction='sum' adds up the {n} samples; use reduction='batchmean' to average over the batch":
            kl_per_sample.sum() * T**2,
        "the KL runs the wrong way: F.kl_div(input, target) computes KL(target || input), so pass the "
        "STUDENT's log-probabilities as input and the TEACHER's probabilities as target":
            (qs * (log_qs - log_qt)).sum(1).mean() * T**2,
        "F.kl_div's first argument must be LOG-probabilities (log_softmax), not probabilities":
            F.kl_div(qs, qt, reduction="batchmean") * T**2,
        "the teacher's logits must be softened by T too (divide both teacher and student logits by T)":
            F.kl_div(log_qs, F.softmax(t, 1), reduction="batchmean") * T**2,
        "the student's logits must be softened by T too (divide both teacher and student logits by T)":
            F.kl_div(F.log_softmax(s, 1), qt, reduction="batchmean") * T**2,
        "the softmax runs over the batch: normalise over the classes (dim=1), not the clips (dim=0)":
            F.kl_div(F.log_softmax(s / T, 0), F.softmax(t / T, 0), reduction="batchmean") * T**2,
        "you computed the soft cross-entropy -sum q_t log q_s; the KL subtracts the teacher's entropy "
        "(same gradient for the student, different value): use F.kl_div or sum q_t (log q_t - log q_s)":
            (-(qt * log_qs).sum(1)).mean() * T**2,
    })


def check_kd_loss(learner_fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Check ``learner_fn(student_logits, teacher_logits, temperature)`` against
    :func:`~tinyml_helpers.distillation.kd_loss` (``T**2 * KL(teacher || student)``, batch mean)."""
    return check_function("01.kd_loss", learner_fn, kd_loss, _kd_cases(), rtol=1e-4, atol=1e-6,
                          explain=_explain_kd,
                          hint=HINTS["01.kd_loss"])
