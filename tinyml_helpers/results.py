"""Record a notebook's headline figures: show them, and store them as JSON.

Every figure a lesson claims goes through :func:`record`. It prints a readable line in the
notebook and merges the value into ``artifacts/results/<notebook-stem>.json`` so that
tests, the benchmark and later notebooks read numbers instead of scraping text.

Each run of a notebook starts a fresh record (:func:`start_run`, called by ``start_lesson``),
so figures of an earlier run never mix with the current one; writes hold a file lock, so
several processes recording into one lesson lose nothing.

Conventions: keys are stable and dotted (``student_kd.accuracy``); accuracies are fractions
in [0, 1]; sizes in bytes; params and MACs are counts; times in seconds.

Example:
    >>> from tinyml_helpers import results
    >>> results.record("demo.accuracy", 0.875, unit="fraction", lesson="doctest")
    demo.accuracy: 87.50 %
    0.875
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import numbers
import sys
from pathlib import Path
from typing import Any, Iterator

from . import config
from .files import atomic_write_json

# Several processes may record into one lesson (a notebook and a script, two test workers);
# a read-modify-write without a lock silently dropped a third of the entries (issue #17).
LOCK_TIMEOUT_S = 120.0

UNITS = {"fraction", "bytes", "count", "seconds", "ratio", "joules", "watts", "hertz",
         "bytes/second", "instructions", "MACs", "points", None}

# Physical units shown with an SI prefix (8.30 mW, 830 µJ, 64.0 MHz): the stored unit, its symbol.
SI_UNITS = {"watts": "W", "joules": "J", "hertz": "Hz"}
# Prefixed spellings format_value also reads (a figure typed in mW, say): unit -> (base unit, factor).
PREFIXED_UNITS = {f"{prefix}{symbol}": (base, factor)
                  for base, symbol in SI_UNITS.items()
                  for prefix, factor in (("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("m", 1e-3),
                                         ("u", 1e-6), ("µ", 1e-6), ("n", 1e-9))}
_SI_PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def _si(value: float, symbol: str) -> str:
    """``value`` (in the base unit) with the SI prefix that puts it in [1, 1000), 3 significant digits."""
    if value == 0:
        return f"0 {symbol}"
    if abs(value) < _SI_PREFIXES[-1][0]:
        return f"{value:.3g} {symbol}"
    scale, prefix = next(((f, p) for f, p in _SI_PREFIXES if abs(value) >= f), _SI_PREFIXES[-1])
    mantissa = value / scale
    if round(abs(mantissa), max(0, 2 - int(math.floor(math.log10(abs(mantissa)))))) >= 1000 and scale < 1e9:
        scale, prefix = next((f, p) for f, p in reversed(_SI_PREFIXES) if f > scale)  # 999.96 mW -> 1.00 W
        mantissa = value / scale
    digits = max(0, 2 - int(math.floor(math.log10(abs(mantissa))))) if abs(mantissa) >= 1 else 2
    return f"{mantissa:.{digits}f} {prefix}{symbol}"


def results_path(lesson: str | None = None) -> Path:
    """Where a lesson's results JSON lives."""
    return config.artifacts_dir("results") / f"{lesson or config.current_lesson()}.json"


def load_entries(lesson: str) -> dict[str, dict[str, Any]]:
    """The recorded entries of a lesson as ``{key: {"value", "unit"[, "note"]}}`` (empty if none).

    Example:
        >>> load_entries("never_ran")
        {}
    """
    path = results_path(lesson)
    if not path.exists():
        return {}
    return _read(path).get("results", {})


def _read(path: Path) -> dict[str, Any]:
    """The parsed results file, or a ValueError that names it and says what to do."""
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"the results file {path} is damaged ({err}); delete it and re-run "
                         "the notebook that writes it") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("results", {}), dict):
        raise ValueError(f"the results file {path} does not hold a results record; delete it "
                         "and re-run the notebook that writes it")
    return doc


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # filelock: an OS lock released by the kernel even if the holder is killed.
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        yield


def _read_or_set_aside(path: Path) -> dict[str, Any]:
    # A damaged file must not make every later record() fail: keep it for a look, start afresh.
    if not path.exists():
        return {}
    try:
        return _read(path)
    except ValueError as err:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        aside = path.with_name(f"{path.stem}.corrupt-{stamp}.json")
        path.replace(aside)
        print(f"warning: {err}. It was moved to {aside.name}; recording starts a new file.",
              file=sys.stderr)
        return {}


def start_run(lesson: str) -> Path:
    """Begin a fresh results record for ``lesson``; the previous run's file becomes ``<lesson>.previous.json``.

    Called by :func:`tinyml_helpers.config.start_lesson`, so a failed re-run never mixes
    the figures of an earlier run with its own under one timestamp.

    Example:
        >>> start_run("doctest_run").name
        'doctest_run.json'
    """
    path = results_path(lesson)
    with _locked(path):
        if path.exists():
            path.replace(path.with_name(f"{lesson}.previous.json"))
        atomic_write_json(path, {"lesson": lesson, "mode": config.run_mode(), "started": _now(),
                                 "updated": _now(), "results": {}})
    return path


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def load_results(lesson: str) -> dict[str, Any]:
    """The recorded values of a lesson as ``{key: value}`` (empty if it has not run).

    Example:
        >>> isinstance(load_results("never_ran"), dict)
        True
    """
    return {k: v["value"] for k, v in load_entries(lesson).items()}


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def format_value(value: Any, unit: str | None = None) -> str:
    """Human-readable text for a value in its unit (``12.5 KiB``, ``87.5 %``, ``3.2 M``).

    Example:
        >>> format_value(2048, "bytes")
        '2.0 KiB (2,048 B)'
        >>> format_value(0.8765, "fraction")
        '87.65 %'
        >>> format_value([0.095, 0.152], "seconds")
        '95.00 ms to 152.00 ms'
        >>> format_value(2.5912, "ratio")
        '2.591'
        >>> format_value(0.0083, "watts"), format_value(8.3, "mW"), format_value(6.4e7, "hertz")
        ('8.30 mW', '8.30 mW', '64.0 MHz')

    Watts, joules and hertz get an SI prefix; prefixed spellings (``"mW"``, ``"uJ"``,
    ``"MHz"``...) are read too, for figures typed in them (:func:`record` stores the base unit).
    """
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        # A [low, high] pair is an estimate's range; longer lists are per-seed values.
        return (" to " if len(value) == 2 else ", ").join(format_value(v, unit) for v in value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if unit == "bytes":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.1f} {name} ({value:,.0f} B)"
        return f"{value:,.0f} B"
    if unit == "fraction":
        return f"{100 * value:.2f} %"
    if unit == "points":
        return f"{100 * value:+.2f} points"
    if unit in ("count", "MACs", "instructions"):
        suffix = f" {unit}" if unit != "count" else ""
        for scale, name in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.2f} {name}{suffix} ({value:,.0f})"
        return f"{value:,.0f}{suffix}"
    if unit in PREFIXED_UNITS:
        base, factor = PREFIXED_UNITS[unit]
        return _si(value * factor, SI_UNITS[base])
    if unit in SI_UNITS:
        return _si(value, SI_UNITS[unit])
    if unit == "seconds":
        if abs(value) < 1e-3:
            return f"{value * 1e6:.1f} us"
        if abs(value) < 1:
            return f"{value * 1e3:.2f} ms"
        return f"{value:.2f} s"
    text = f"{value:.4g}" if isinstance(value, float) else f"{value:,}"
    # A ratio is a bare number ("2.59"); the figure's label says what it divides.
    return f"{text} {unit}" if unit and unit != "ratio" else text


def record(key: str, value: Any, unit: str | None = None, *, note: str | None = None,
           lesson: str | None = None, show: bool = True) -> Any:
    """Show ``key: value`` and store it in the lesson's results JSON; return ``value``.

    Args:
        key: stable dotted name, e.g. ``"student_kd.accuracy"``.
        value: a number, string, bool, or a small list/dict of those.
        unit: one of ``fraction``, ``bytes``, ``count``, ``seconds``, ``ratio``, ``MACs``,
            ``instructions``, ``points``, ``joules``, ``watts``, ``hertz``, ``bytes/second``.
        note: optional short explanation stored beside the value.
        lesson: results file stem; defaults to the one set by ``start_lesson``.
        show: print the line (set False for bulk values shown in a table instead).

    Example:
        >>> record("teacher.params", 1_234_567, unit="count", lesson="doctest", show=False)
        1234567
    """
    if not isinstance(key, str) or not key or key.strip() != key or " " in key:
        raise ValueError(f"result key must be a non-empty dotted name without spaces, got {key!r}")
    if unit in PREFIXED_UNITS:
        base, factor = PREFIXED_UNITS[unit]
        raise ValueError(f"record {key} in {base}, the unit the results files store: "
                         f"record({key!r}, {_plain(value)!r} * {factor:g}, unit={base!r}); it is shown as "
                         f"{format_value(_plain(value), unit)!r} all the same")
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; use one of {sorted(u for u in UNITS if u)}")
    plain = _plain(value)
    if isinstance(plain, float) and not math.isfinite(plain):
        raise ValueError(f"result {key} is {plain}: a non-finite number usually means training diverged")
    if unit == "fraction" and isinstance(plain, numbers.Real) and not 0.0 <= plain <= 1.0:
        raise ValueError(f"result {key}={plain} is declared a fraction but lies outside [0, 1]; "
                         "store accuracies as fractions, not percentages")
    path = results_path(lesson)
    entry = {"value": plain, "unit": unit}
    if note:
        entry["note"] = note
    with _locked(path):
        doc = _read_or_set_aside(path)
        doc.setdefault("lesson", lesson or config.current_lesson())
        doc["mode"] = config.run_mode()
        doc["updated"] = _now()
        doc.setdefault("results", {})[key] = entry
        atomic_write_json(path, doc)
    if show:
        print(f"{key}: {format_value(plain, unit)}" + (f"  ({note})" if note else ""))
    return value
