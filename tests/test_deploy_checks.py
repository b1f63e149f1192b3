"""Notebook 06 exercise checks: right answers pass, the usual slips get a targeted hint."""
from __future__ import annotations

import numpy as np
import pytest

from tinyml_helpers.checks import deploy as chk


@pytest.fixture(autouse=True)
def _learner_mode(monkeypatch):
    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)


def arena_right(tensors):
    last = max(l for *_, l in tensors)
    return max(sum(s for _, s, f, l in tensors if f <= t <= l) for t in range(last + 1))


def test_arena_check(capsys):
    assert chk.check_arena_lower_bound(arena_right)
    assert not chk.check_arena_lower_bound(lambda t: sum(s for _, s, _, _ in t))
    assert "lifetimes do not overlap" in capsys.readouterr().out
    assert not chk.check_arena_lower_bound(lambda t: max(s for _, s, _, _ in t))
    assert "input and output are live" in capsys.readouterr().out
    exclusive = lambda t: max(sum(s for _, s, f, l in t if f <= k < l) for k in range(6))  # noqa: E731
    assert not chk.check_arena_lower_bound(exclusive)
    assert "inclusive" in capsys.readouterr().out
    def todo(t):
        raise NotImplementedError
    assert not chk.check_arena_lower_bound(todo)
    assert "not attempted" in capsys.readouterr().out


def requant_right(acc, mult, shift, zp_out):
    acc = np.asarray(acc, np.int64)
    return np.clip(zp_out + ((acc * mult + (1 << (shift - 1))) >> shift), -128, 127).astype(np.int8)


def test_requantize_check(capsys):
    assert chk.check_requantize(requant_right)
    floor = lambda a, m, s, z: np.clip(z + ((np.asarray(a, np.int64) * m) >> s), -128, 127)  # noqa: E731
    assert not chk.check_requantize(floor)
    assert "without rounding" in capsys.readouterr().out
    no_sat = lambda a, m, s, z: z + ((np.asarray(a, np.int64) * m + (1 << (s - 1))) >> s)  # noqa: E731
    assert not chk.check_requantize(no_sat)
    assert "saturate" in capsys.readouterr().out
    no_zp = lambda a, m, s, z: requant_right(a, m, s, 0)  # noqa: E731
    assert not chk.check_requantize(no_zp)
    assert "zero point" in capsys.readouterr().out


def test_expect_solved_raises(monkeypatch):
    from tinyml_helpers.checks import ExerciseNotSolved

    monkeypatch.setenv("TINYML_EXPECT_SOLVED", "1")
    with pytest.raises(ExerciseNotSolved):
        chk.check_arena_lower_bound(lambda t: 0)
