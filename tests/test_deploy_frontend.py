"""The log-mel front end in firmware: tables, thresholds, and parity with the host features on the
emulated Cortex-M4 (stub network, so only the front end and the rings run)."""
from __future__ import annotations

import numpy as np
import pytest

from tinyml_helpers.deploy import frontend as F

SCALE, ZP = 0.0415, -5   # a plausible input quantisation (the real model's is read from its ONNX)


@pytest.fixture(scope="module")
def stub_fw(tmp_path_factory):
    pytest.importorskip("unicorn")
    from tinyml_helpers.deploy import streaming

    return streaming.build_pcm_firmware(None, tmp_path_factory.mktemp("fe_stub"), ["silence", "yes", "no"],
                                        input_scale=SCALE, input_zero_point=ZP)


def test_fft_radices_and_bad_sizes():
    assert F.fft_radices(320) == [5, 4, 4, 4]
    assert np.prod(F.fft_radices(480)) == 480
    with pytest.raises(ValueError, match="prime factor"):
        F.fft_radices(7 * 16)
    with pytest.raises(ValueError, match="integer >= 2"):
        F.fft_radices(1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_scale=0.0), "input_scale"), (dict(input_scale=float("nan")), "input_scale"),
    (dict(input_zero_point=200), "zero_point"), (dict(n_fft=641), "n_fft"), (dict(hop=0), "hop"),
    (dict(std_db=0.0), "std_db")])
def test_spec_rejects_bad_values(kwargs, match):
    base = dict(n_fft=640, hop=320, n_mels=40, fmin=20.0, fmax=8000.0, sample_rate=16000, mean_db=-52.0,
                std_db=21.0, input_scale=0.05, input_zero_point=0)
    with pytest.raises(ValueError, match=match):
        F.FrontendSpec(**{**base, **kwargs})


def test_level_thresholds_reproduce_the_host_quantiser():
    spec = F.FrontendSpec.logmel(SCALE, ZP)
    t = F.level_thresholds(spec)
    assert t.shape == (256,) and np.all(np.diff(t) >= 0) and np.isinf(t[-1])
    rng = np.random.default_rng(0)
    S = np.concatenate([np.zeros(1), 10.0 ** rng.uniform(-14, 4, 20000), t[np.isfinite(t)],
                        np.nextafter(t[np.isfinite(t) & (t > 0)], np.float32(0))]).astype(np.float32)
    chip = -128 + np.searchsorted(t, S, side="right")
    np.testing.assert_array_equal(chip, F.quantize_power(S, spec).astype(int))


def test_host_features_equal_compute_features():
    from tinyml_helpers.data.features import compute_features

    rng = np.random.default_rng(1)
    pcm = (rng.normal(0, 3000, 16000)).astype(np.int16)
    spec = F.FrontendSpec.logmel(SCALE, ZP)
    x = compute_features(pcm.astype(np.float32) / 32768.0, "logmel")[0, 0]
    q = np.clip(np.rint(x / np.float32(SCALE)) + ZP, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(F.host_int8_features(pcm, spec), q)


@pytest.mark.parametrize("bad, match", [(np.zeros(100, np.int16), "at least 640"),
                                        (np.zeros(16000, np.float32), "int16"),
                                        (np.zeros((2, 16000), np.int16), "1-D")])
def test_host_features_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        F.host_int8_features(bad, F.FrontendSpec.logmel(SCALE, ZP))


def test_pcm_from_float_clips_and_rejects_nan():
    assert F.pcm_from_float(np.array([1.5, -1.5])).tolist() == [32767, -32768]
    with pytest.raises(ValueError, match="NaN"):
        F.pcm_from_float(np.array([0.0, np.nan]))


def _clips():
    from tinyml_helpers.data import load_keyword_audio

    audio = load_keyword_audio("test").audio
    rng = np.random.default_rng(2)
    t = np.arange(16000) / 16000
    extra = [np.zeros(16000), np.sign(np.sin(2 * np.pi * 440 * t)) * 1.2,  # silence, hard clipping
             rng.normal(0, 1e-4, 16000), np.sin(2 * np.pi * 1000 * t) * 0.5]  # near-silence, a tone
    return [F.pcm_from_float(a) for a in list(audio[:6]) + extra]


def test_firmware_features_match_the_host(stub_fw):
    """>= 99 % of int8 values identical to compute_features + quantize_input, the rest 1 step."""
    same = total = 0
    for pcm in _clips():
        stub_fw.classify_clip(pcm)
        chip = stub_fw.features().astype(int)
        host = F.host_int8_features(pcm, stub_fw.spec).astype(int)
        diff = np.abs(chip - host)
        assert diff.max() <= 1
        same += int((diff == 0).sum())
        total += diff.size
    assert same / total >= 0.99


def test_silence_gives_the_floor_level(stub_fw):
    stub_fw.classify_clip(np.zeros(16000, np.int16))
    floor = int(F.quantize_power(np.float32(0), stub_fw.spec))
    assert np.all(stub_fw.features() == floor)


def test_chunking_does_not_change_the_features(stub_fw):
    pcm = _clips()[0]
    stub_fw.classify_clip(pcm)
    whole = stub_fw.features()
    stub_fw.reset()
    rng = np.random.default_rng(3)
    pos = 0
    while pos < len(pcm):
        n = int(rng.integers(0, 700))
        stub_fw.push(pcm[pos:pos + n])
        pos += n
    np.testing.assert_array_equal(stub_fw.features(), whole)
