"""Notebook 05 exercise checks: right answers pass, the usual slips get a targeted hint."""
from __future__ import annotations

import numpy as np
import pytest

from tinyml_helpers.checks import export as chk


@pytest.fixture(autouse=True)
def _learner_mode(monkeypatch):
    monkeypatch.delenv("TINYML_EXPECT_SOLVED", raising=False)


def quantize_right(x, scale, zero_point):
    return np.clip(np.rint(np.asarray(x, np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize_right(q, scale, zero_point):
    return ((np.asarray(q).astype(np.int32) - zero_point) * scale).astype(np.float32)


def test_quantize_checks(capsys):
    assert chk.check_round_trip(quantize_right, dequantize_right, np.linspace(-1.0, 1.5, 101), 0.01, -28)
    no_zp = lambda x, s, z: quantize_right(x, s, 0)  # noqa: E731
    assert not chk.check_quantize(no_zp)
    assert "zero point is missing" in capsys.readouterr().out
    trunc = lambda x, s, z: np.clip(np.trunc(np.asarray(x) / s) + z, -128, 127).astype(np.int8)  # noqa: E731
    assert not chk.check_quantize(trunc)
    assert "truncated" in capsys.readouterr().out
    no_clip = lambda x, s, z: np.rint(np.asarray(x, np.float64) / s) + z  # noqa: E731
    assert not chk.check_quantize(no_clip)
    assert "clamp" in capsys.readouterr().out


def test_dequantize_checks(capsys):
    assert chk.check_dequantize(dequantize_right)
    late_zp = lambda q, s, z: np.asarray(q, np.float64) * s - z  # noqa: E731
    assert not chk.check_dequantize(late_zp)
    assert "BEFORE multiplying" in capsys.readouterr().out
    divided = lambda q, s, z: (np.asarray(q, np.float64) - z) / s  # noqa: E731
    assert not chk.check_dequantize(divided)
    assert "you divided" in capsys.readouterr().out
    wrapped = lambda q, s, z: ((np.asarray(q, np.int8) - np.int8(z)).astype(np.float64) * s)  # noqa: E731
    with np.errstate(over="ignore"):
        assert not chk.check_dequantize(wrapped)
    assert "overflow" in capsys.readouterr().out


def test_symmetric_scale_check(capsys):
    assert chk.check_symmetric_scale(lambda w: float(np.abs(w).max()) / 127)
    assert not chk.check_symmetric_scale(lambda w: float(np.abs(w).max()) / 128)
    assert "not 128" in capsys.readouterr().out
    assert not chk.check_symmetric_scale(lambda w: 2 * float(np.abs(w).max()) / 255)
    assert "254" in capsys.readouterr().out
    assert not chk.check_symmetric_scale(lambda w: float(np.max(w)) / 127)
    assert "ABSOLUTE" in capsys.readouterr().out


def test_expected_int8_bytes_check(capsys):
    assert chk.check_expected_int8_bytes(lambda w, b: w + 4 * b)
    assert not chk.check_expected_int8_bytes(lambda w, b: w + b)
    assert "4 bytes each" in capsys.readouterr().out
    assert not chk.check_expected_int8_bytes(lambda w, b: 4 * (w + b))
    assert "float32 size" in capsys.readouterr().out
    assert not chk.check_expected_int8_bytes(lambda w, b: None)
    assert "not attempted" in capsys.readouterr().out
