"""Turn whatever a learner records or uploads into what the chip's microphone would deliver:
mono int16 PCM at 16 kHz, with a plain-language note for everything that was converted.

Handled: 8-bit (unsigned), 16/24/32-bit integer and float WAV files; stereo or multi-channel
(mixed to mono); 44.1 kHz, 48 kHz or any other rate from 4 to 192 kHz (polyphase resampling,
``scipy.signal.resample_poly``); recordings shorter than one 1 s window (padded with silence);
silence and clipping (kept, with a warning). An empty recording, NaNs or a rate out of range
raise :class:`AudioInputError` with the reason.

Example:
    >>> rec = to_pcm16k(np.zeros((4410, 2), np.float32), 44100)
    >>> rec.pcm.dtype, len(rec.pcm), len(rec.notes)
    (dtype('int16'), 16000, 4)
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from .frontend import pcm_from_float

__all__ = ["AudioInputError", "Recording", "to_pcm16k", "read_wav", "SAMPLE_RATE", "WINDOW_SAMPLES"]

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 16000      # one 1 s window: the least the keyword spotter can classify
SILENCE_PEAK = 10 ** (-60 / 20)   # -60 dBFS
CLIP_LEVEL = 0.999


class AudioInputError(ValueError):
    """The audio cannot be used; the message says why and what to do."""


@dataclass
class Recording:
    """Mono int16 PCM at 16 kHz and what was done to get there."""

    pcm: np.ndarray
    notes: list[str] = field(default_factory=list)
    source_rate: int = SAMPLE_RATE
    source_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


def _to_float(data: np.ndarray, notes: list[str]) -> np.ndarray:
    if data.dtype == np.uint8:            # 8-bit WAV is unsigned, centred on 128
        notes.append("8-bit audio: converted to 16-bit (it has only 256 levels, expect more noise)")
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype == np.int16:
        return data.astype(np.float32) / 32768.0
    if data.dtype == np.int32:            # 24- and 32-bit WAV (scipy puts 24-bit in the top bytes)
        return (data.astype(np.float64) / 2.0 ** 31).astype(np.float32)
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    raise AudioInputError(f"unsupported sample type {data.dtype}; use 8/16/24/32-bit integer or float audio")


def to_pcm16k(data: np.ndarray, sample_rate: int, min_samples: int = WINDOW_SAMPLES) -> Recording:
    """Any mono/multi-channel integer or float audio at ``sample_rate`` -> :class:`Recording`.

    Example:
        >>> rec = to_pcm16k(np.full(32000, 0.5, np.float32), 16000)
        >>> rec.pcm[:2].tolist(), rec.notes
        ([16384, 16384], [])
    """
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool):
        raise AudioInputError(f"sample_rate must be an integer number of samples per second, got {sample_rate!r}")
    if not 4000 <= int(sample_rate) <= 192000:
        raise AudioInputError(f"a sample rate of {sample_rate} Hz is out of range (4-192 kHz); is it really audio?")
    data = np.asarray(data)
    notes: list[str] = []
    if data.size == 0:
        raise AudioInputError("the recording is empty: record (or upload) at least a second of audio")
    if data.ndim == 2:
        if data.shape[1] > 8 and data.shape[0] <= 8:
            data = data.T                 # (channels, samples) -> (samples, channels)
        if data.shape[1] > 8:
            raise AudioInputError(f"audio of shape {data.shape} does not look like (samples, channels)")
    elif data.ndim != 1:
        raise AudioInputError(f"expected 1-D (mono) or 2-D (samples, channels) audio, got shape {data.shape}")
    x = _to_float(data, notes)
    if not np.all(np.isfinite(x)):
        raise AudioInputError("the recording contains NaN or infinite samples")
    if x.ndim == 2:
        if x.shape[1] > 1:
            notes.append(f"{x.shape[1]} channels: mixed to mono (the chip has one microphone)")
        x = x.mean(axis=1)
    source_seconds = len(x) / int(sample_rate)
    if int(sample_rate) != SAMPLE_RATE:
        from scipy.signal import resample_poly

        g = gcd(int(sample_rate), SAMPLE_RATE)
        x = resample_poly(x.astype(np.float64), SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
        notes.append(f"resampled from {int(sample_rate) / 1000:g} kHz to 16 kHz (the model was trained at 16 kHz)")
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL)) if len(x) else 0.0
    if peak < SILENCE_PEAK:
        notes.append("the recording is (almost) silent (peak below -60 dBFS): check the microphone; "
                     "nothing will be detected")
    elif clipped > 0.001:
        notes.append(f"{clipped:.1%} of the samples are clipped (too loud or too close to the microphone): "
                     "the features are distorted, detections may be wrong")
    pcm = pcm_from_float(x)
    if len(pcm) < min_samples:
        notes.append(f"{len(pcm) / SAMPLE_RATE:.2f} s is shorter than one {min_samples / SAMPLE_RATE:g} s window: "
                     "padded with silence")
        pcm = np.concatenate([pcm, np.zeros(min_samples - len(pcm), np.int16)])
    return Recording(pcm, notes, int(sample_rate), source_seconds)


def read_wav(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """(samples, sample rate) of a WAV file (path or bytes), as ``scipy.io.wavfile`` reads it.

    Example:
        >>> import io, scipy.io.wavfile as wf
        >>> buf = io.BytesIO(); wf.write(buf, 8000, np.zeros(80, np.uint8))
        >>> data, rate = read_wav(buf.getvalue()); data.dtype, rate
        (dtype('uint8'), 8000)
    """
    from scipy.io import wavfile

    if isinstance(source, (bytes, bytearray)):
        handle: io.BytesIO | str = io.BytesIO(bytes(source))
        name = "the uploaded file"
    else:
        path = Path(source)
        if not path.exists():
            raise AudioInputError(f"{path} does not exist")
        handle, name = str(path), path.name
    try:
        rate, data = wavfile.read(handle)
    except (ValueError, EOFError, OSError) as exc:
        raise AudioInputError(f"{name} is not a WAV file this course can read ({exc}); export it as "
                              "16-bit PCM WAV") from exc
    return np.asarray(data), int(rate)
