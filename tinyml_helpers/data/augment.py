"""Background noise and augmentation for 1-second keyword clips (16 kHz, float32).

Everything here is procedural and seeded: coloured noise (white, pink, brown), mains hum
with harmonics, and "babble" made from other speech clips. Nothing is downloaded.

* :func:`coloured_noise` shapes white Gaussian noise in the frequency domain so its power
  falls as ``1/f**exponent`` (0 = white, 1 = pink, 2 = brown).
* :func:`mains_hum` is a 50 or 60 Hz tone with decaying harmonics, as picked up by a cheap
  microphone next to a power supply.
* :func:`babble` sums a few other clips, time-shifted and reversed, into a crowd murmur.
* :func:`mix_at_snr` scales noise so the mixture has an exact signal-to-noise ratio.
* :func:`time_shift` moves a clip left or right, filling with silence (not wrapping round,
  which would put the end of a word before its start).
* :class:`KeywordAugmenter` chains shift + noise at a random SNR for training.
* :func:`spec_augment` masks random mel bands and time frames of a feature map (Park et al.,
  2019, "SpecAugment"), drawn afresh each time a training example is used.

The few lines of DSP here are written out because no maintained library offers seeded
coloured noise + SNR mixing on raw arrays without pulling in a heavy dependency; the masking
is a few lines on NumPy arrays (torchaudio has it, but the course never imports torchaudio).
Speed, pitch and room reverberation are made with librosa and pyroomacoustics, in
:mod:`tinyml_helpers.data.keywords`.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> speech = np.sin(np.linspace(0, 200, 16000)).astype(np.float32)
    >>> noisy = mix_at_snr(speech, coloured_noise(16000, 1.0, rng), snr_db=10.0)
    >>> round(float(snr_of(speech, noisy - speech)), 1)
    10.0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "NOISE_KINDS",
    "coloured_noise",
    "mains_hum",
    "babble",
    "make_noise",
    "mix_at_snr",
    "snr_of",
    "rms",
    "time_shift",
    "KeywordAugmenter",
    "spec_augment",
]

SAMPLE_RATE = 16000
NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
_EPS = 1e-12


def rms(x: np.ndarray) -> float:
    """Root-mean-square level of a signal.

    Example:
        >>> round(rms(np.ones(4)), 3)
        1.0
    """
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64))) + _EPS))


def snr_of(signal: np.ndarray, noise: np.ndarray) -> float:
    """Signal-to-noise ratio in dB of ``signal`` against ``noise`` (RMS over the whole clip).

    Example:
        >>> round(snr_of(np.ones(10), 0.1 * np.ones(10)), 1)
        20.0
    """
    return float(20.0 * np.log10(rms(signal) / rms(noise)))


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as ``1/f**exponent``, unit RMS.

    ``exponent`` 0 gives white noise, 1 pink (rain, fans), 2 brown (rumble, traffic).

    Example:
        >>> x = coloured_noise(16000, 1.0, np.random.default_rng(0))
        >>> x.shape, round(rms(x), 3)
        ((16000,), 1.0)
    """
    if n <= 0:
        raise ValueError(f"noise length must be positive, got {n}")
    if not 0.0 <= exponent <= 3.0:
        raise ValueError(f"exponent must be in [0, 3] (0 white, 1 pink, 2 brown), got {exponent}")
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]  # keep the DC bin finite; it is removed just below anyway
    spectrum *= freqs ** (-exponent / 2.0)
    spectrum[0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return (x / rms(x)).astype(np.float32)


def mains_hum(n: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE,
              mains_hz: float | None = None) -> np.ndarray:
    """A 50/60 Hz hum with odd and even harmonics and a touch of hiss, unit RMS.

    Example:
        >>> h = mains_hum(16000, np.random.default_rng(1), mains_hz=50.0)
        >>> round(rms(h), 3)
        1.0
    """
    if mains_hz is None:
        mains_hz = float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    for harmonic in range(1, 8):
        amplitude = rng.uniform(0.2, 1.0) / harmonic
        x += amplitude * np.sin(2 * np.pi * mains_hz * harmonic * t + rng.uniform(0, 2 * np.pi))
    x += 0.05 * rng.standard_normal(n)
    return (x / rms(x)).astype(np.float32)


def babble(clips: Sequence[np.ndarray] | np.ndarray, n: int, rng: np.random.Generator,
           talkers: int | None = None) -> np.ndarray:
    """Crowd murmur: a few clips, randomly shifted and some reversed, summed; unit RMS.

    Reversing keeps the voice-like spectrum while making the words unintelligible, so the
    babble does not contain a clean keyword that would contradict the clip's label.

    Example:
        >>> clips = np.random.default_rng(0).standard_normal((5, 16000)).astype(np.float32)
        >>> babble(clips, 16000, np.random.default_rng(0)).shape
        (16000,)
    """
    if len(clips) == 0:
        raise ValueError("babble needs at least one clip to mix from")
    talkers = talkers or int(rng.integers(3, 7))
    x = np.zeros(n)
    for _ in range(talkers):
        clip = np.asarray(clips[int(rng.integers(len(clips)))], dtype=np.float64)
        if rng.random() < 0.5:
            clip = clip[::-1]
        clip = np.resize(clip, n)  # repeats short clips
        x += np.roll(clip, int(rng.integers(n))) / rms(clip)
    return (x / rms(x)).astype(np.float32)


def make_noise(kind: str, n: int, rng: np.random.Generator,
               clips: Sequence[np.ndarray] | np.ndarray | None = None) -> np.ndarray:
    """Unit-RMS noise of one of :data:`NOISE_KINDS` (``babble`` needs ``clips``).

    Example:
        >>> make_noise("brown", 800, np.random.default_rng(0)).dtype
        dtype('float32')
    """
    if kind == "white":
        return coloured_noise(n, 0.0, rng)
    if kind == "pink":
        return coloured_noise(n, 1.0, rng)
    if kind == "brown":
        return coloured_noise(n, 2.0, rng)
    if kind == "hum":
        return mains_hum(n, rng)
    if kind == "babble":
        if clips is None:
            raise ValueError("noise kind 'babble' needs clips=<array of speech clips> to mix from")
        return babble(clips, n, rng)
    raise ValueError(f"unknown noise kind {kind!r}; valid kinds: {', '.join(NOISE_KINDS)}")


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Return ``signal + a * noise`` with ``a`` chosen so the SNR is exactly ``snr_db``.

    The signal power is measured over the whole clip, as in most KWS augmentation recipes.

    Example:
        >>> s = np.ones(100, np.float32); n = np.random.default_rng(0).standard_normal(100)
        >>> round(snr_of(s, mix_at_snr(s, n, 6.0) - s), 2)
        6.0
    """
    signal = np.asarray(signal, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if signal.shape != noise.shape:
        raise ValueError(f"signal and noise must have the same shape, got {signal.shape} and {noise.shape}")
    scale = rms(signal) / (rms(noise) * 10.0 ** (snr_db / 20.0))
    return (signal + scale * noise).astype(np.float32)


def time_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """Shift a clip by ``shift`` samples (positive = later), padding with zeros.

    Example:
        >>> time_shift(np.arange(5.0), 2).tolist()
        [0.0, 0.0, 0.0, 1.0, 2.0]
    """
    x = np.asarray(x)
    out = np.zeros_like(x)
    if shift >= 0:
        out[shift:] = x[: len(x) - shift] if shift < len(x) else x[:0]
    else:
        out[:shift] = x[-shift:]
    return out


@dataclass
class KeywordAugmenter:
    """Random time shift plus background noise at a random SNR, for training clips.

    ``max_shift_ms`` follows the common KWS recipe of +-100 ms; the SNR is drawn uniformly
    from ``snr_db_range``; ``noise_probability`` of the clips get noise at all.

    Example:
        >>> aug = KeywordAugmenter(seed=0)
        >>> clips = np.zeros((2, 16000), np.float32); clips[:, 8000] = 1.0
        >>> aug(clips).shape
        (2, 16000)
    """

    max_shift_ms: float = 100.0
    snr_db_range: tuple[float, float] = (0.0, 20.0)
    noise_probability: float = 0.8
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    seed: int = 0
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        unknown = [k for k in self.noise_kinds if k not in NOISE_KINDS]
        if unknown:
            raise ValueError(f"unknown noise kinds {unknown}; valid kinds: {', '.join(NOISE_KINDS)}")
        low, high = self.snr_db_range
        if low > high:
            raise ValueError(f"snr_db_range must be (low, high) with low <= high, got {self.snr_db_range}")
        self.rng = np.random.default_rng(self.seed)

    def augment_one(self, clip: np.ndarray, babble_pool: np.ndarray | None = None,
                    silent: bool = False) -> np.ndarray:
        """Augment one clip; ``silent`` clips (the silence class) only get louder/softer noise."""
        n = len(clip)
        max_shift = int(self.max_shift_ms * self.sample_rate / 1000)
        out = np.asarray(clip, dtype=np.float32)
        if not silent and max_shift > 0:
            out = time_shift(out, int(self.rng.integers(-max_shift, max_shift + 1)))
        if self.rng.random() < self.noise_probability:
            kinds = [k for k in self.noise_kinds if k != "babble" or babble_pool is not None]
            noise = make_noise(str(self.rng.choice(kinds)), n, self.rng, babble_pool)
            if silent:
                out = out + noise * rms(out) * float(self.rng.uniform(0.0, 1.0))
            else:
                out = mix_at_snr(out, noise, float(self.rng.uniform(*self.snr_db_range)))
        return out.astype(np.float32)

    def __call__(self, clips: np.ndarray, silent: np.ndarray | None = None,
                 babble_pool: np.ndarray | None = None) -> np.ndarray:
        """Augment a batch ``(N, samples)``; returns a new array of the same shape."""
        clips = np.asarray(clips, dtype=np.float32)
        if clips.ndim != 2:
            raise ValueError(f"expected clips of shape (N, samples), got {clips.shape}")
        silent = np.zeros(len(clips), bool) if silent is None else np.asarray(silent, bool)
        return np.stack([self.augment_one(c, babble_pool, bool(s)) for c, s in zip(clips, silent)])


def spec_augment(features: np.ndarray, rng: np.random.Generator, freq_masks: int = 2, max_freq_width: int = 6,
                 time_masks: int = 2, max_time_width: int = 6) -> np.ndarray:
    """A copy of ``features`` (..., frames, bins) with random bands and frames set to 0 (the mean).

    Example:
        >>> x = np.ones((1, 49, 40), np.float32)
        >>> y = spec_augment(x, np.random.default_rng(0))
        >>> y.shape, bool((y == 0).any()), bool((x == 1).all())
        ((1, 49, 40), True, True)
    """
    out = np.array(features, dtype=np.float32, copy=True)
    frames, bins = out.shape[-2], out.shape[-1]
    for _ in range(freq_masks):
        width = int(rng.integers(0, max_freq_width + 1))
        start = int(rng.integers(0, max(bins - width, 0) + 1))
        out[..., start: start + width] = 0.0
    for _ in range(time_masks):
        width = int(rng.integers(0, max_time_width + 1))
        start = int(rng.integers(0, max(frames - width, 0) + 1))
        out[..., start: start + width, :] = 0.0
    return out
