"""Exercise checks: tell a learner whether their function matches the reference, and why not.

The reference solutions live in the computation modules (``distillation``, ``pruning``, ...);
readable worked solutions for instructors live in ``tinyml_helpers/solutions/<notebook>.py``
(one ``# SOLUTION <id>`` block per exercise cell). A check never raises for a wrong
answer while a learner works (so a notebook still runs top to bottom); it prints what was
wrong. With ``TINYML_EXPECT_SOLVED=1`` (the solutions test) a wrong or missing answer raises.

Exercise cells in notebooks carry the cell tag ``exercise`` and start with
``# EXERCISE <id>``. The per-lesson check functions live in ``checks/<topic>.py`` and are
built on :func:`check_function` and :func:`check_value`.

Example:
    >>> import numpy as np
    >>> def mine(x): return 2 * x
    >>> check_function("demo.double", mine, lambda x: x * 2, [((np.arange(3),), {})])
    ✅ demo.double: correct on 1 test case(s).
    True
"""
from __future__ import annotations

import os
import traceback
from typing import Any, Callable, Iterable, Sequence

import numpy as np

EXPECT_SOLVED_ENV = "TINYML_EXPECT_SOLVED"

Case = tuple[Sequence[Any], dict[str, Any]]


class ExerciseNotSolved(AssertionError):
    """Raised (only with TINYML_EXPECT_SOLVED=1) when an exercise check fails."""


def _expect_solved() -> bool:
    return os.environ.get(EXPECT_SOLVED_ENV, "").strip() in {"1", "true", "yes"}


def _as_array(value: Any) -> np.ndarray | None:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None


def compare_outputs(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """Return None when ``got`` matches ``want`` (numbers/arrays/tensors), else the reason.

    Example:
        >>> compare_outputs([1.0, 2.0], [1.0, 2.5])
        'values differ: largest difference 0.5 at index (1,) (got 2, expected 2.5)'
    """
    if got is None:
        return "your function returned None (is there a `return` statement?)"
    if isinstance(want, (tuple, list)) and not np.isscalar(want) and isinstance(got, (tuple, list)) \
            and len(want) and not np.isscalar(want[0]):
        if len(got) != len(want):
            return f"expected {len(want)} outputs, got {len(got)}"
        for i, (g, w) in enumerate(zip(got, want)):
            reason = compare_outputs(g, w, rtol, atol)
            if reason:
                return f"output {i}: {reason}"
        return None
    g, w = _as_array(got), _as_array(want)
    if g is None or w is None:
        return None if got == want else f"got {got!r}, expected {want!r}"
    if g.shape != w.shape:
        return f"shape {g.shape} but the reference gives shape {w.shape}"
    if not np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
        return "your output contains NaN or infinity"
    if not np.allclose(g, w, rtol=rtol, atol=atol):
        diff = np.abs(g - w)
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.ndim else ()
        return (f"values differ: largest difference {diff.max():.3g} at index {idx} "
                f"(got {g[idx]:.6g}, expected {w[idx]:.6g})")
    return None


def report(exercise_id: str, ok: bool, message: str, hint: str | None = None) -> bool:
    """Print the verdict of one exercise; raise instead when solutions are expected."""
    if ok:
        print(f"✅ {exercise_id}: {message}")
        return True
    text = f"❌ {exercise_id}: {message}" + (f"\n   Hint: {hint}" if hint else "")
    if _expect_solved():
        raise ExerciseNotSolved(text)
    print(text)
    return False


def check_function(exercise_id: str, learner_fn: Callable[..., Any], reference_fn: Callable[..., Any],
                   cases: Iterable[Case], *, rtol: float = 1e-5, atol: float = 1e-6,
                   hint: str | None = None, explain: Callable[[Any, Any, Case], str | None] | None = None) -> bool:
    """Run the learner's function and the reference on each case and compare the outputs.

    ``explain(got, want, case)`` may return a targeted diagnosis (e.g. "you forgot the
    T**2 factor") that is shown in place of the generic difference.
    """
    cases = list(cases)
    if not callable(learner_fn):
        return report(exercise_id, False, f"expected a function, got {type(learner_fn).__name__}", hint)
    for n, (args, kwargs) in enumerate(cases, 1):
        try:
            got = learner_fn(*args, **kwargs)
        except NotImplementedError:
            return report(exercise_id, False, "not attempted yet: replace the `...` with your code.", hint)
        except Exception as exc:  # a learner's bug: show it without killing the notebook
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return report(exercise_id, False, f"your function raised on test case {n}: {last}", hint)
        if got is None or got is Ellipsis:
            return report(exercise_id, False, "not attempted yet (your function returned None).", hint)
        want = reference_fn(*args, **kwargs)
        reason = compare_outputs(got, want, rtol, atol)
        if reason:
            targeted = explain(got, want, (args, kwargs)) if explain else None
            return report(exercise_id, False, f"test case {n}: {targeted or reason}", hint)
    return report(exercise_id, True, f"correct on {len(cases)} test case(s).")


def check_value(exercise_id: str, got: Any, want: Any, *, rtol: float = 1e-3, atol: float = 0.0,
                hint: str | None = None, what: str = "your answer") -> bool:
    """Compare a number (or array) the learner computed with the reference value.

    Example:
        >>> check_value("demo.size", 1000, 1000)
        ✅ demo.size: your answer matches (1000).
        True
    """
    if got is None or got is Ellipsis:
        return report(exercise_id, False, "not attempted yet: fill in the value.", hint)
    reason = compare_outputs(got, want, rtol=rtol, atol=atol)
    if reason:
        return report(exercise_id, False, f"{what} is off: {reason}", hint)
    return report(exercise_id, True, f"{what} matches ({want}).")
