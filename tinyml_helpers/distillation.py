"""Knowledge distillation: soft labels, the KD loss, embedding losses, and a trainable loss module.

The formulation is Hinton, Vinyals & Dean, *Distilling the Knowledge in a Neural Network*
(2015, arXiv:1503.02531):

* soft labels ``q_i = exp(z_i / T) / sum_j exp(z_j / T)`` (:func:`soft_labels`);
* the KD term ``T**2 * KL(q_teacher || q_student)`` on distributions softened by the same
  temperature ``T`` (:func:`kd_loss`). PyTorch's ``F.kl_div(input, target)`` expects the
  student's **log**-probabilities as ``input`` and the teacher's probabilities as ``target``,
  and ``reduction="batchmean"`` (sum over classes, mean over samples) is the true KL;
  ``"mean"`` also divides by the number of classes. The ``T**2`` factor: the gradient of the
  softened KL with respect to a student logit is ``(q_student - q_teacher) / T``, and for
  large ``T`` the probabilities differ by about ``(z_s - z_t) / (C T)``, so gradients shrink
  like ``1 / T**2``. Multiplying by ``T**2`` keeps the KD term's pull comparable to the
  hard-label term whatever ``T`` you choose (Hinton et al. 2015, section 2).
* the combined loss, in the notation of the workshop deck
  ``L = KD + alpha * CE(hard labels) + beta * L_e`` (:func:`distillation_loss`), where
  ``L_e`` is an embedding-similarity loss between teacher and student penultimate features
  (:func:`embedding_loss`: squared Euclidean distance or ``1 - cosine``), through a learned
  linear projection when the widths differ.

:class:`DistillationLoss` packages this as an ``nn.Module`` for
:func:`tinyml_helpers.training.train_classifier` (the projection trains with the student).
These few formulas are written here rather than taken from a library because the lesson is
about them; everything else (training, data) uses the course's shared helpers.

Example:
    >>> import torch
    >>> s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    >>> float(kd_loss(s, t, temperature=4.0)) < 1e-5  # identical predictions: nothing to learn
    True
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "soft_labels",
    "kd_loss",
    "embedding_loss",
    "distillation_loss",
    "DistillationLoss",
    "teacher_outputs",
    "VariantSummary",
    "compare_with_baseline",
    "EMBEDDING_KINDS",
]

EMBEDDING_KINDS = ("euclidean", "cosine")


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, torch.Tensor):
        temperature = float(temperature)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__}")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0 (T=1 is the plain softmax), got {temperature}")
    return float(temperature)


def _check_logits(name: str, logits: Any) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, n_classes), got {type(logits).__name__}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, n_classes), got {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    return logits


def _check_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits must have the same shape (batch, n_classes): got "
            f"{tuple(student_logits.shape)} vs {tuple(teacher_logits.shape)}. Are both trained "
            "on the same classes, and are the teacher outputs aligned with the batch?")


def soft_labels(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax of ``logits / T`` over the last axis: higher ``T`` gives softer labels.

    Example:
        >>> soft_labels(torch.tensor([[2.0, 0.0]]), temperature=1.0).round(decimals=3)
        tensor([[0.8810, 0.1190]])
        >>> soft_labels(torch.tensor([[2.0, 0.0]]), temperature=10.0).round(decimals=2)
        tensor([[0.5500, 0.4500]])
    """
    T = _check_temperature(temperature)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits need a class axis (last dimension), got shape {tuple(logits.shape)}")
    return torch.softmax(logits / T, dim=-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
            *, scale_by_t2: bool = True) -> torch.Tensor:
    """``T**2 * KL(soft teacher || soft student)``, averaged over the batch.

    The teacher's logits are treated as constants (detached): only the student learns.
    ``scale_by_t2=False`` drops the ``T**2`` factor (to show why it is there).

    Example:
        >>> s = torch.tensor([[0.0, 0.0]]); t = torch.tensor([[math.log(3.0), 0.0]])
        >>> # teacher (3/4, 1/4) vs student (1/2, 1/2) at T=1: KL = 3/4 ln 3/2 + 1/4 ln 1/2
        >>> round(float(kd_loss(s, t, 1.0)), 6) == round(0.75 * math.log(1.5) + 0.25 * math.log(0.5), 6)
        True
    """
    T = _check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    log_q_student = F.log_softmax(student_logits / T, dim=1)  # kl_div wants LOG-probabilities here
    q_teacher = F.softmax(teacher_logits.detach() / T, dim=1)
    # "batchmean" = sum over classes, mean over samples = the KL divergence per sample.
    kl = F.kl_div(log_q_student, q_teacher, reduction="batchmean")
    return kl * (T * T) if scale_by_t2 else kl


def embedding_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, kind: str = "euclidean",
                   projection: nn.Module | None = None) -> torch.Tensor:
    """How far the student's embeddings are from the teacher's (mean over the batch).

    * ``"euclidean"``: squared Euclidean distance ``||v_t - P v_s||**2`` divided by the
      embedding width (so the weight ``beta`` does not depend on the width).
    * ``"cosine"``: ``1 - cos(v_t, P v_s)``, which ignores the vectors' lengths.

    ``projection`` (``P``, e.g. ``nn.Linear(student_width, teacher_width)``) maps the student's
    embedding to the teacher's width; it is required when the widths differ. The teacher's
    embeddings are detached.

    Example:
        >>> v = torch.tensor([[3.0, 4.0]])
        >>> float(embedding_loss(v, 2 * v, "cosine")), float(embedding_loss(v, v + 1, "euclidean"))
        (0.0, 1.0)
    """
    if kind not in EMBEDDING_KINDS:
        raise ValueError(f"unknown embedding loss kind {kind!r}; use one of {EMBEDDING_KINDS}")
    for name, emb in (("student_emb", student_emb), ("teacher_emb", teacher_emb)):
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2:
            shape = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
            raise ValueError(f"{name} must be a (batch, width) tensor, got {shape}; flatten it first")
    if student_emb.shape[0] != teacher_emb.shape[0]:
        raise ValueError(f"student and teacher embeddings cover different batch sizes: "
                         f"{student_emb.shape[0]} vs {teacher_emb.shape[0]}")
    mapped = projection(student_emb) if projection is not None else student_emb
    if mapped.shape[1] != teacher_emb.shape[1]:
        hint = ("pass projection=nn.Linear(%d, %d) (a learned map to the teacher's width)"
                % (student_emb.shape[1], teacher_emb.shape[1])) if projection is None else \
            "the projection's output width must equal the teacher's embedding width"
        raise ValueError(f"embedding widths differ: student {mapped.shape[1]} vs teacher "
                         f"{teacher_emb.shape[1]}; {hint}")
    target = teacher_emb.detach()
    if kind == "euclidean":
        return (mapped - target).pow(2).sum(dim=1).mean() / target.shape[1]
    return (1.0 - F.cosine_similarity(mapped, target, dim=1, eps=1e-8)).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float = 1.0, beta: float = 0.0,
                      student_emb: torch.Tensor | None = None, teacher_emb: torch.Tensor | None = None,
                      projection: nn.Module | None = None, embedding_kind: str = "euclidean") -> torch.Tensor:
    """``KD + alpha * CE(student, hard labels) + beta * L_e`` (the workshop deck's formula).

    ``KD`` is :func:`kd_loss` (with ``T**2``), ``CE`` the usual cross-entropy at ``T = 1``
    and ``L_e`` :func:`embedding_loss` (only when ``beta > 0``; it then needs both embeddings).

    Example:
        >>> s = torch.zeros(2, 3); t = torch.zeros(2, 3); y = torch.tensor([0, 2])
        >>> round(float(distillation_loss(s, t, y, temperature=4.0, alpha=0.5)), 4)  # 0.5 * ln 3
        0.5493
    """
    _check_pair(student_logits, teacher_logits)
    for name, w in (("alpha", alpha), ("beta", beta)):
        if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be a finite weight >= 0, got {w!r}")
    if not isinstance(labels, torch.Tensor) or labels.shape != student_logits.shape[:1]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a ({student_logits.shape[0]},) tensor of class indices, got {shape}")
    n_classes = student_logits.shape[1]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes - 1}], got [{int(labels.min())}, {int(labels.max())}]")
    loss = kd_loss(student_logits, teacher_logits, temperature)
    if alpha:
        loss = loss + alpha * F.cross_entropy(student_logits, labels)
    if beta:
        if student_emb is None or teacher_emb is None:
            raise ValueError("beta > 0 needs student_emb and teacher_emb (the penultimate features); "
                             "pass them, or set beta=0")
        loss = loss + beta * embedding_loss(student_emb, teacher_emb, embedding_kind, projection)
    return loss


class DistillationLoss(nn.Module):
    """The KD loss as a module for ``train_classifier(..., loss_fn=DistillationLoss(...))``.

    Holds the temperature and weights, and, when ``beta > 0`` and the embedding widths
    differ, the learned projection ``nn.Linear(student_dim, teacher_dim, bias=False)``.
    Its ``needs_embedding`` flag asks the trainer for penultimate features.

    Example:
        >>> loss = DistillationLoss(temperature=4.0, alpha=1.0, beta=0.5, student_dim=64, teacher_dim=256)
        >>> loss.projection
        Linear(in_features=64, out_features=256, bias=False)
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 1.0, beta: float = 0.0,
                 embedding_kind: str = "euclidean", student_dim: int | None = None,
                 teacher_dim: int | None = None) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature)
        if embedding_kind not in EMBEDDING_KINDS:
            raise ValueError(f"unknown embedding loss kind {embedding_kind!r}; use one of {EMBEDDING_KINDS}")
        for name, w in (("alpha", alpha), ("beta", beta)):
            if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"{name} must be a finite weight >= 0, got {w!r}")
        self.alpha, self.beta, self.embedding_kind = float(alpha), float(beta), embedding_kind
        self.needs_embedding = self.beta > 0
        self.projection: nn.Module | None = None
        if self.needs_embedding:
            if student_dim is None or teacher_dim is None:
                raise ValueError("beta > 0 needs student_dim and teacher_dim (the widths of the "
                                 "penultimate features) to build the projection")
            if student_dim != teacher_dim:
                self.projection = nn.Linear(int(student_dim), int(teacher_dim), bias=False)

    def forward(self, out: Any) -> torch.Tensor:
        """``out`` is a :class:`tinyml_helpers.training.StepOutputs`."""
        if out.teacher_logits is None:
            raise ValueError("no teacher outputs in this batch: pass teacher=... to train_classifier, "
                             "or batches (x, y, teacher_logits[, teacher_embedding])")
        if self.needs_embedding and out.teacher_embedding is None:
            raise ValueError("beta > 0 but the batch has no teacher embedding: precompute it with "
                             "teacher_outputs(...) or pass teacher=... to train_classifier")
        return distillation_loss(out.logits, out.teacher_logits, out.labels, self.temperature,
                                 self.alpha, self.beta, out.embedding, out.teacher_embedding,
                                 self.projection, self.embedding_kind)

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, alpha={self.alpha}, beta={self.beta}, "
                f"embedding_kind={self.embedding_kind!r}")


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, X: torch.Tensor | np.ndarray,
                    batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's logits and penultimate embeddings for every sample, computed once.

    Without data augmentation the teacher's outputs never change, so computing them once
    (instead of in every batch of every epoch) makes distillation as cheap as plain training.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
        >>> logits, emb = teacher_outputs(net, torch.randn(5, 1, 2, 2))
        >>> tuple(logits.shape), tuple(emb.shape)
        ((5, 3), (5, 6))
    """
    from .training import make_loader, predict_logits

    X = torch.as_tensor(X)
    if len(X) == 0:
        raise ValueError("X is empty: nothing to compute teacher outputs for")
    loader = make_loader(X, batch_size=batch_size)
    return predict_logits(teacher, loader, return_embeddings=True)


@dataclass
class VariantSummary:
    """Test accuracy of one training recipe over seeds, compared with the baseline recipe.

    ``gain`` is the difference of mean accuracies (a fraction; x100 for points) and
    ``stderr`` the standard error of that difference. ``verdict`` is one of:

    * ``"better"`` / ``"worse"``: every recipe has at least two seeds and the gain is beyond
      ``z`` standard errors (a rough guide with 3 seeds, not a formal test);
    * ``"no measurable difference"``: the gain is within that noise;
    * ``"higher on one seed"`` / ``"lower on one seed"``: a recipe was trained once, so seed
      noise is unknown; the gain is beyond the test split's sampling noise alone (needs
      ``n_eval``), which is a hint to run more seeds, never a win;
    * ``"baseline"`` for the baseline itself.
    """

    name: str
    accuracies: list[float]
    mean: float
    std: float
    gain: float
    stderr: float
    verdict: str

    def line(self) -> str:
        """``KD: 81.2 % +- 0.9 (3 seed(s)), +2.1 points vs baseline (better)``.

        The baseline itself reads ``scratch: 79.1 % +- 1.0 (3 seed(s)), the baseline``.
        """
        head = f"{self.name}: {100 * self.mean:.1f} % +- {100 * self.std:.1f} ({len(self.accuracies)} seed(s))"
        if self.verdict == "baseline":
            return f"{head}, the baseline"
        return f"{head}, {100 * self.gain:+.1f} points vs baseline ({self.verdict})"


def compare_with_baseline(accuracies: Mapping[str, Sequence[float]], baseline: str,
                          z: float = 2.0, n_eval: int | None = None) -> dict[str, VariantSummary]:
    """Mean, std and gain over the baseline for each recipe's per-seed accuracies.

    ``n_eval`` (the number of test clips each accuracy was measured on) adds the test
    split's sampling noise: the standard error of a gain is never below the binomial one,
    ``sqrt(p_a (1 - p_a) / n + p_b (1 - p_b) / n)``. A recipe trained on a single seed is
    never called "better": see :class:`VariantSummary`.

    Example:
        >>> out = compare_with_baseline({"scratch": [.70, .72, .71], "KD": [.78, .80, .79]}, "scratch")
        >>> out["KD"].verdict, round(100 * out["KD"].gain, 1)
        ('better', 8.0)
        >>> compare_with_baseline({"scratch": [.70], "KD": [.72]}, "scratch", n_eval=384)["KD"].verdict
        'no measurable difference'
    """
    if baseline not in accuracies:
        raise ValueError(f"baseline {baseline!r} is not among the recipes {sorted(accuracies)}")
    for name, accs in accuracies.items():
        if len(accs) == 0:
            raise ValueError(f"recipe {name!r} has no accuracies")
        if any(not 0.0 <= a <= 1.0 for a in accs):
            raise ValueError(f"recipe {name!r}: accuracies must be fractions in [0, 1], got {list(accs)}")
    if n_eval is not None and n_eval < 1:
        raise ValueError(f"n_eval must be a positive number of test clips, got {n_eval}")
    base = np.asarray(accuracies[baseline], dtype=float)

    def sem2(a: np.ndarray) -> float:
        return float(a.var(ddof=1) / len(a)) if len(a) > 1 else 0.0

    def binomial2(a: np.ndarray) -> float:
        # variance of one accuracy from sampling n_eval test clips (the same for each seed's run)
        p = float(a.mean())
        return p * (1 - p) / n_eval if n_eval else 0.0

    out = {}
    for name, accs in accuracies.items():
        a = np.asarray(accs, dtype=float)
        gain = float(a.mean() - base.mean())
        one_seed = len(a) < 2 or len(base) < 2
        stderr = 0.0
        if name != baseline:
            stderr = max(math.sqrt(sem2(a) + sem2(base)), math.sqrt(binomial2(a) + binomial2(base)))
        beyond = abs(gain) > z * stderr and (stderr > 0 or not one_seed)
        if name == baseline:
            verdict = "baseline"
        elif one_seed:
            # seed noise unknown: only the test split's sampling noise can be ruled out
            verdict = ("no measurable difference" if not (n_eval and beyond) else
                       "higher on one seed" if gain > 0 else "lower on one seed")
        elif beyond:
            verdict = "better" if gain > 0 else "worse"
        else:
            verdict = "no measurable difference"
        out[name] = VariantSummary(name, [float(v) for v in a], float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                                   gain, stderr, verdict)
    return out
