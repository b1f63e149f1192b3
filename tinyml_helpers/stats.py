"""How sure is an accuracy? Intervals and paired tests for models scored on the same clips.

A test split of a few hundred clips gives an accuracy that moves by a visible amount when
only a handful of clips change: with 384 clips, one clip is 0.26 points and a 95 % interval
is about +-2 points wide. Before a notebook says one model "beats" another, it should show
that the gap is larger than that noise. This module holds the few tools the notebooks use:

* :func:`wilson_interval`: the interval of one accuracy (k right out of n). Wilson's score
  interval behaves at 0 % and 100 % and on small n, where ``p +- 2 sqrt(p(1-p)/n)`` fails.
* :func:`paired_difference`: two models scored on the **same** clips. Only the clips where
  they disagree carry information about which is better, so the paired comparison is much
  sharper than two separate intervals. It returns a paired-bootstrap interval of the
  accuracy difference and McNemar's exact p-value (a binomial test on the discordant clips).
* :func:`describe_difference`: the sentence a notebook prints ("no measurable difference"
  when the interval includes 0).

Pure NumPy (plus :mod:`math`); no plotting here.

Example:
    >>> lo, hi = wilson_interval(360, 384)
    >>> round(100 * lo, 1), round(100 * hi, 1)
    (90.9, 95.8)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["wilson_interval", "accuracy_interval", "PairedDifference", "paired_difference",
           "mcnemar_exact_p", "describe_difference", "format_accuracy", "MIN_CELL_SAMPLES",
           "seed_mean_interval", "mean_difference_interval"]

Z95 = 1.959963984540054   # two-sided 95 % normal quantile
MIN_CELL_SAMPLES = 10     # fewer samples than this: show the cell as "too few", not as a percentage


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / total`` (95 % by default).

    Returns ``(low, high)`` as fractions; ``(0.0, 1.0)`` when ``total`` is 0 (nothing known).

    Example:
        >>> [round(v, 3) for v in wilson_interval(0, 3)]
        [0.0, 0.561]
    """
    if total < 0 or correct < 0 or correct > total:
        raise ValueError(f"need 0 <= correct <= total, got {correct} of {total}")
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(correct: Sequence[bool] | np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """``(accuracy, low, high)`` of a 0/1 vector of per-clip correctness (Wilson interval).

    Example:
        >>> acc, lo, hi = accuracy_interval([1, 1, 1, 0])
        >>> acc, round(lo, 2), round(hi, 2)
        (0.75, 0.3, 0.95)
    """
    c = np.asarray(correct, dtype=bool).ravel()
    k, n = int(c.sum()), int(c.size)
    lo, hi = wilson_interval(k, n, z)
    return (k / n if n else float("nan")), lo, hi


def format_accuracy(correct: Sequence[bool] | np.ndarray) -> str:
    """``"93.2 % [90.3, 95.3] (n=384)"``: an accuracy with its 95 % Wilson interval.

    Example:
        >>> format_accuracy([1] * 9 + [0])
        '90.0 % [59.6, 98.2] (n=10)'
    """
    acc, lo, hi = accuracy_interval(correct)
    return f"{100 * acc:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] (n={len(np.ravel(correct))})"


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: of the clips exactly one model gets right, is the
    split ``only_a`` / ``only_b`` further from 50/50 than chance would make it?

    Example:
        >>> round(mcnemar_exact_p(10, 2), 4)
        0.0386
        >>> mcnemar_exact_p(3, 3)
        1.0
    """
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of model A minus model B on the same clips, with its uncertainty.

    ``diff``, ``low``, ``high`` are fractions (x100 for points): the observed difference and
    its 95 % paired-bootstrap interval. ``only_a`` / ``only_b`` count the clips only A / only
    B got right; ``p_value`` is McNemar's exact test on them. ``measurable`` is True when the
    interval excludes 0 **and** McNemar's p is below 0.05: with only a handful of discordant
    clips (say 0 against 4) the bootstrap interval can exclude 0 by chance of resampling,
    while the exact test says 4 clips are not evidence.
    """

    name_a: str
    name_b: str
    n: int
    acc_a: float
    acc_b: float
    diff: float
    low: float
    high: float
    only_a: int
    only_b: int
    p_value: float

    @property
    def measurable(self) -> bool:
        return (self.low > 0 or self.high < 0) and self.p_value < 0.05

    def line(self) -> str:
        """One printable sentence, e.g. for a notebook's comparison."""
        return describe_difference(self)


def paired_difference(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray,
                      name_a: str = "A", name_b: str = "B", n_boot: int = 4000, seed: int = 0,
                      confidence: float = 0.95) -> PairedDifference:
    """Compare two models' per-clip correctness on the **same** clips.

    The bootstrap resamples clips (with replacement, both models together), so the interval
    accounts for the two models being right and wrong on the same easy and hard clips.

    Example:
        >>> a = np.array([1] * 90 + [0] * 10)
        >>> b = np.array([1] * 88 + [0] * 2 + [0] * 10)   # B misses 2 clips A gets
        >>> d = paired_difference(a, b, "A", "B")
        >>> round(100 * d.diff, 1), d.only_a, d.only_b, d.measurable
        (2.0, 2, 0, False)
    """
    a = np.asarray(correct_a, dtype=bool).ravel()
    b = np.asarray(correct_b, dtype=bool).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty correctness vectors on the same clips, got {a.shape} and {b.shape}")
    n = a.size
    delta = a.astype(np.int8) - b.astype(np.int8)            # +1 only A right, -1 only B right
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = delta[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = (float(v) for v in np.quantile(boots, [tail, 1 - tail]))
    only_a, only_b = int((delta == 1).sum()), int((delta == -1).sum())
    if only_a == only_b == 0:                                 # identical predictions: nothing to resample
        low = high = 0.0
    return PairedDifference(name_a, name_b, n, float(a.mean()), float(b.mean()), float(delta.mean()),
                            low, high, only_a, only_b, mcnemar_exact_p(only_a, only_b))


def describe_difference(d: PairedDifference) -> str:
    """The sentence a notebook prints about a paired comparison.

    Example:
        >>> d = paired_difference([1, 1, 0, 1], [1, 1, 0, 1], "int8", "fp32")
        >>> describe_difference(d)
        'int8 vs fp32 on the same 4 clips: +0.0 points [+0.0, +0.0]; 0 clips only int8 gets right, 0 only fp32: no measurable difference.'
    """
    verdict = ("no measurable difference" if not d.measurable else
               f"{d.name_a if d.diff > 0 else d.name_b} is measurably better (McNemar p = {d.p_value:.2g})")
    return (f"{d.name_a} vs {d.name_b} on the same {d.n} clips: {100 * d.diff:+.1f} points "
            f"[{100 * d.low:+.1f}, {100 * d.high:+.1f}]; {d.only_a} clips only {d.name_a} gets right, "
            f"{d.only_b} only {d.name_b}: {verdict}.")


def seed_mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student-t interval of the mean of a few runs (e.g. one per seed).

    With three seeds the t quantile is 4.30, so the interval is wide: that is the honest price of
    three runs. One run gives ``(value, nan, nan)``: no spread, no interval.

    Example:
        >>> [round(v, 3) for v in seed_mean_interval([0.90, 0.92, 0.94])]
        [0.92, 0.87, 0.97]
    """
    from scipy import stats as _st

    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"need one or more finite values, got {list(v)}")
    mean = float(v.mean())
    if v.size == 1:
        return mean, float("nan"), float("nan")
    half = float(_st.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


def mean_difference_interval(a: Sequence[float], b: Sequence[float],
                             confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), low, high)``: Welch's t interval for two sets of independent runs.

    Example:
        >>> d, lo, hi = mean_difference_interval([0.90, 0.92, 0.94], [0.80, 0.82, 0.84])
        >>> round(d, 2), lo > 0
        (0.1, True)
    """
    from scipy import stats as _st

    x, y = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if x.size < 2 or y.size < 2:
        raise ValueError("need at least two runs on each side for an interval")
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    diff = float(x.mean() - y.mean())
    if se == 0:
        return diff, diff, diff
    dof = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1))
    half = float(_st.t.ppf(0.5 + confidence / 2, dof) * se)
    return diff, diff - half, diff + half
