"""Exercise checks: tell a learner whether their function matches the reference, and why not.

The reference solutions live in the computation modules (``distillation``, ``pruning``, ...);
readable worked solutions for instructors live in ``tinyml_helpers/solutions/<notebook>.py``
(one ``# SOLUTION <id>`` block per exercise cell). A check never raises for a wrong
answer while a learner works (so a notebook still runs top to bottom); it prints what was
wrong. With ``TINYML_EXPECT_SOLVED=1`` (the solutions test) a wrong or missing answer raises.

Exercise cells in notebooks carry the cell tag ``exercise`` and start with
``# EXERCISE <id>``. The per-lesson check functions live in ``checks/<topic>.py`` and are
built on :func:`check_function` and :func:`check_value`.

**Graded hints.** A hint is a :class:`Hint`: a *nudge* (where to look, never the answer) and
the *full* line. An exercise not attempted yet prints only the nudge; a wrong attempt prints
the nudge, the precise diagnosis of the mistake and the full line; ``hint("02.csr_bytes")``
prints the full line on request. ``tests/test_checks_hints.py`` checks that no nudge, and
nothing a not-attempted check prints, contains a line of the worked solutions.

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
from typing import Any, Callable, Iterable, NamedTuple, Sequence, Union

import numpy as np

EXPECT_SOLVED_ENV = "TINYML_EXPECT_SOLVED"

Case = tuple[Sequence[Any], dict[str, Any]]


class Hint(NamedTuple):
    """A graded hint: ``nudge`` for a first look (no answer in it), ``full`` after a wrong try.

    Example:
        >>> Hint("think in bytes per sample", "rate x bytes x channels").for_attempt(False)
        'think in bytes per sample (full hint: th.checks.hint("<id>"))'
    """

    nudge: str
    full: str

    def for_attempt(self, attempted: bool, exercise_id: str = "<id>") -> str:
        if attempted:
            return f"{self.nudge}\n   Full hint: {self.full}"
        return f'{self.nudge} (full hint: th.checks.hint("{exercise_id}"))'


HintLike = Union[Hint, str, None]
_HINTS: dict[str, Hint] = {}


def register_hints(hints: dict[str, Hint]) -> dict[str, Hint]:
    """Make hints available to :func:`hint` by exercise id (each checks module registers its own)."""
    _HINTS.update(hints)
    return hints


def hint(exercise_id: str) -> str:
    """Print (and return) the full hint of an exercise, e.g. ``hint("00.conv_macs")``.

    Example:
        >>> _ = register_hints({"demo.double": Hint("what doubles a number?", "return 2 * x")})
        >>> _ = hint("demo.double")
        💡 demo.double: what doubles a number? -> return 2 * x
    """
    if exercise_id not in _HINTS:
        from importlib import import_module

        for topic in ("classical", "cost", "deploy", "distillation", "export", "pruning", "scaling"):
            import_module(f"{__name__}.{topic}")   # each module registers its hints on import
    if exercise_id not in _HINTS:
        raise KeyError(f"no hint for {exercise_id!r}; ids look like '02.csr_bytes'")
    h = _HINTS[exercise_id]
    text = f"{h.nudge} -> {h.full}"
    print(f"💡 {exercise_id}: {text}")
    return text


def all_hints() -> dict[str, Hint]:
    """Every registered hint (imports all checks modules first)."""
    try:
        hint("")
    except KeyError:
        pass
    return dict(_HINTS)


def _hint_text(exercise_id: str, h: HintLike, attempted: bool) -> str | None:
    if h is None:
        return None
    if isinstance(h, Hint):
        return h.for_attempt(attempted, exercise_id)
    return h   # a plain string is a diagnosis of a specific wrong answer: shown as it is


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


def report(exercise_id: str, ok: bool, message: str, hint: HintLike = None, attempted: bool = True) -> bool:
    """Print the verdict of one exercise; raise instead when solutions are expected.

    A :class:`Hint` shows only its nudge while ``attempted`` is False.
    """
    if ok:
        print(f"✅ {exercise_id}: {message}")
        return True
    shown = _hint_text(exercise_id, hint, attempted)
    text = f"❌ {exercise_id}: {message}" + (f"\n   Hint: {shown}" if shown else "")
    if _expect_solved():
        raise ExerciseNotSolved(text)
    print(text)
    return False


def check_function(exercise_id: str, learner_fn: Callable[..., Any], reference_fn: Callable[..., Any],
                   cases: Iterable[Case], *, rtol: float = 1e-5, atol: float = 1e-6,
                   hint: HintLike = None, explain: Callable[[Any, Any, Case], str | None] | None = None) -> bool:
    """Run the learner's function and the reference on each case and compare the outputs.

    ``explain(got, want, case)`` may return a targeted diagnosis (e.g. "you forgot the
    T**2 factor") that is shown in place of the generic difference.
    """
    cases = list(cases)
    if not callable(learner_fn):
        return report(exercise_id, False, f"expected a function, got {type(learner_fn).__name__}", hint,
                      attempted=learner_fn is not None and learner_fn is not Ellipsis)
    for n, (args, kwargs) in enumerate(cases, 1):
        try:
            got = learner_fn(*args, **kwargs)
        except NotImplementedError:
            return report(exercise_id, False, "not attempted yet: replace the `...` with your code.", hint,
                          attempted=False)
        except Exception as exc:  # a learner's bug: show it without killing the notebook
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            return report(exercise_id, False, f"your function raised on test case {n}: {last}", hint)
        if got is None or got is Ellipsis:
            return report(exercise_id, False, "not attempted yet (your function returned None).", hint,
                          attempted=False)
        want = reference_fn(*args, **kwargs)
        reason = compare_outputs(got, want, rtol, atol)
        if reason:
            targeted = explain(got, want, (args, kwargs)) if explain else None
            return report(exercise_id, False, f"test case {n}: {targeted or reason}", hint)
    return report(exercise_id, True, f"correct on {len(cases)} test case(s).")


def check_value(exercise_id: str, got: Any, want: Any, *, rtol: float = 1e-3, atol: float = 0.0,
                hint: HintLike = None, what: str = "your answer") -> bool:
    """Compare a number (or array) the learner computed with the reference value.

    Example:
        >>> check_value("demo.size", 1000, 1000)
        ✅ demo.size: your answer matches (1000).
        True
    """
    if got is None or got is Ellipsis:
        return report(exercise_id, False, "not attempted yet: fill in the value.", hint, attempted=False)
    reason = compare_outputs(got, want, rtol=rtol, atol=atol)
    if reason:
        return report(exercise_id, False, f"{what} is off: {reason}", hint)
    return report(exercise_id, True, f"{what} matches ({want}).")
