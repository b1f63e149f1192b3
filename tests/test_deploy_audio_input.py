"""Learner audio -> mono int16 at 16 kHz: every awkward input is converted with a note or refused
with a clear message, never a traceback from deep inside."""
from __future__ import annotations

import io

import numpy as np
import pytest
from scipy.io import wavfile

from tinyml_helpers.deploy.audio_input import AudioInputError, read_wav, to_pcm16k


def tone(rate: int, seconds: float = 1.5, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def wav_bytes(rate: int, data: np.ndarray) -> bytes:
    buf = io.BytesIO()
    wavfile.write(buf, rate, data)
    return buf.getvalue()


@pytest.mark.parametrize("rate", [44100, 48000, 8000, 22050])
def test_other_rates_are_resampled(rate):
    rec = to_pcm16k(tone(rate), rate)
    assert len(rec.pcm) == 24000 and any("resampled" in n for n in rec.notes)
    # the tone keeps its pitch: the spectrum peaks at 440 Hz
    spec = np.abs(np.fft.rfft(rec.pcm.astype(float)))
    assert abs(np.argmax(spec) * 16000 / len(rec.pcm) - 440) < 2


def test_stereo_and_channels_first_are_mixed_to_mono():
    x = np.stack([tone(16000), 0.5 * tone(16000)], axis=1)
    for data in (x, x.T):
        rec = to_pcm16k(data, 16000)
        assert rec.pcm.ndim == 1 and any("mixed to mono" in n for n in rec.notes)


def test_8_bit_wav_is_converted():
    data8 = np.clip(np.rint(tone(16000) * 127 + 128), 0, 255).astype(np.uint8)
    rec = to_pcm16k(*read_wav(wav_bytes(16000, data8)))
    assert any("8-bit" in n for n in rec.notes)
    assert abs(int(rec.pcm.max()) - int(0.3 * 32768)) < 400


def test_16_bit_stereo_48k_wav_from_a_path(tmp_path):
    pcm = (np.stack([tone(48000)] * 2, 1) * 32767).astype(np.int16)
    path = tmp_path / "x.wav"
    wavfile.write(path, 48000, pcm)
    rec = to_pcm16k(*read_wav(path))
    assert len(rec.pcm) == 24000 and len(rec.notes) == 2


def test_silence_clipping_and_short_recordings_get_notes():
    assert any("silent" in n for n in to_pcm16k(np.zeros(20000, np.int16), 16000).notes)
    loud = to_pcm16k(np.clip(tone(16000, amp=3.0), -1, 1), 16000)
    assert any("clipped" in n for n in loud.notes)
    short = to_pcm16k(tone(16000, seconds=0.3), 16000)
    assert len(short.pcm) == 16000 and any("padded" in n for n in short.notes)
    one_sample = to_pcm16k(np.array([0.1], np.float32), 16000)
    assert len(one_sample.pcm) == 16000


@pytest.mark.parametrize("data, rate, match", [
    (np.zeros(0, np.float32), 16000, "empty"),
    (np.array([0.0, np.nan], np.float32), 16000, "NaN"),
    (np.zeros(100, np.float32), 100, "out of range"),
    (np.zeros(100, np.float32), 16000.5, "integer"),
    (np.zeros((2, 3, 4), np.float32), 16000, "1-D"),
    (np.zeros((100, 20), np.float32), 16000, "samples, channels"),
    (np.zeros(100, np.complex64), 16000, "unsupported"),
])
def test_bad_audio_is_refused_clearly(data, rate, match):
    with pytest.raises(AudioInputError, match=match):
        to_pcm16k(data, rate)


def test_not_a_wav_file(tmp_path):
    with pytest.raises(AudioInputError, match="not a WAV"):
        read_wav(b"this is not audio")
    with pytest.raises(AudioInputError, match="does not exist"):
        read_wav(tmp_path / "missing.wav")
