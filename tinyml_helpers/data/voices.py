"""New voices from the corpus's own renderings: formant and pitch changes, band limits, fresh takes.

The keyword corpus has about twenty genuinely different voices (five engine families; most
espeak-ng variants share one synthesiser's sound), so a model learns *those speakers*. Real
speakers differ mostly in vocal-tract length (formant frequencies), in their pitch and its
range, and microphones in their bandwidth. Each training copy made here says every word of
the train split again as a new virtual speaker:

* Praat's *Change Gender* (PSOLA resynthesis, through the ``praat-parselmouth`` wheel) scales
  the formants by a random ratio (about 0.8-1.25), and usually moves the pitch median (80-280 Hz)
  and widens or narrows its range;
* sometimes the word is band-limited to about 3.8 kHz, like an 8 kHz voice or a telephone;
* then a fresh take: speaking rate, simulated room, position, level and background noise,
  drawn from the corpus's own ranges (:class:`~tinyml_helpers.data.keywords.GeneratorSettings`)
  and made with :func:`~tinyml_helpers.data.keywords.make_take` / ``compose_clip``.

Praat does the signal processing; what is ours is the choice of ranges and the per-row
seeding (each row's draw depends only on the seed, the copy and the row's own noise seed, so a
smoke subset gets exactly the clips the full set would).

Example:
    >>> import numpy as np
    >>> t = np.arange(8000) / 16000
    >>> vowel = (np.sin(2 * np.pi * 120 * t) * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    >>> convert_voice(vowel, formant_ratio=1.1, pitch_median_hz=200.0).shape
    (8000,)
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["convert_voice", "band_limit", "VoiceAugmenter"]

SAMPLE_RATE = 16000


def convert_voice(word: np.ndarray, formant_ratio: float = 1.0, pitch_median_hz: float = 0.0,
                  pitch_range_factor: float = 1.0, seed: int = 0) -> np.ndarray:
    """One word said by a different virtual speaker (Praat's Change Gender), same length.

    ``formant_ratio`` > 1 shortens the vocal tract (formants up), < 1 lengthens it;
    ``pitch_median_hz`` = 0 keeps the pitch median; ``pitch_range_factor`` scales the pitch
    excursions around it. Words Praat finds no voiced frames in come back unchanged. Praat's
    resynthesis draws random numbers; ``seed`` fixes them, so the same call gives the same samples.

    Example:
        >>> convert_voice(np.zeros(4000, np.float32)).shape  # silence: returned as is
        (4000,)
    """
    import parselmouth
    from parselmouth.praat import call, run

    x = np.asarray(word, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"word must be a non-empty 1-D array of samples, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("word holds NaN/inf samples; check the rendering it came from")
    if not (0.5 <= formant_ratio <= 2.0 and 0 <= pitch_median_hz <= 600 and 0 <= pitch_range_factor <= 4):
        raise ValueError("formant_ratio must be in 0.5..2, pitch_median_hz in 0..600 (0 = keep) and "
                         f"pitch_range_factor in 0..4; got {formant_ratio}, {pitch_median_hz}, {pitch_range_factor}")
    if not np.abs(x).max() > 0:
        return x.astype(np.float32)
    run(f"random_initializeWithSeedUnsafelyButPredictably ({int(seed) % 2**31})")
    try:
        with warnings.catch_warnings():  # "no voiced segments found": handled below
            warnings.simplefilter("ignore", parselmouth.PraatWarning)
            # 75-600 Hz: Praat's pitch search range, wide enough for the engines' male and female voices
            out = call(parselmouth.Sound(x, SAMPLE_RATE), "Change gender", 75, 600, float(formant_ratio),
                       float(pitch_median_hz), float(pitch_range_factor), 1.0).values[0]
    except parselmouth.PraatError:
        return x.astype(np.float32)
    finally:
        run("random_initializeSafelyAndUnpredictably ()")  # leave Praat as we found it
    out = np.nan_to_num(np.asarray(out, dtype=np.float64))
    if out.size != x.size or not np.abs(out).max() > 0:
        return x.astype(np.float32)  # no voiced frames: Praat returns silence or another length
    return out.astype(np.float32)


def band_limit(word: np.ndarray, cutoff_hz: float = 3800.0) -> np.ndarray:
    """``word`` low-pass filtered at ``cutoff_hz`` (8th-order Butterworth): an 8 kHz voice's band.

    Example:
        >>> band_limit(np.ones(100, np.float32)).dtype
        dtype('float32')
    """
    from scipy.signal import butter, sosfilt

    if not 100.0 <= cutoff_hz < SAMPLE_RATE / 2:
        raise ValueError(f"cutoff_hz must be in 100..{SAMPLE_RATE // 2} Hz, got {cutoff_hz}")
    sos = butter(8, cutoff_hz, fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, np.asarray(word, dtype=np.float64)).astype(np.float32)


@dataclass(frozen=True)
class VoiceAugmenter:
    """Makes one copy of a split's clips with every word said by a new virtual speaker.

    Call it with the split's ``clips.csv`` rows, its decoded samples and a copy number; it
    returns ``(N, 16000)`` float32 clips in the rows' order (silence rows get fresh noise).

    Example:
        >>> from tinyml_helpers.data import keywords
        >>> rows = keywords.split_rows("train", smoke=True)[:3]
        >>> samples = keywords._read_speech(keywords.keywords_dir() / "speech_train.flac")
        >>> VoiceAugmenter()(rows, samples, copy=0).shape
        (3, 16000)
    """

    formant_ratio_range: tuple[float, float] = (0.8, 1.25)
    pitch_median_hz_range: tuple[float, float] = (80.0, 280.0)
    pitch_change_probability: float = 0.7
    pitch_range_factor_range: tuple[float, float] = (0.5, 1.8)
    band_limit_probability: float = 0.25
    band_limit_hz: float = 3800.0
    seed: int = 0

    def settings(self) -> dict[str, Any]:
        """The settings without the seed (part of the feature-cache key)."""
        return {k: v for k, v in asdict(self).items() if k != "seed"}

    def __call__(self, rows: Sequence[dict[str, str]], samples: np.ndarray, copy: int) -> np.ndarray:
        from .keywords import (BACKGROUND_KINDS, CLIP_SAMPLES, N_ROOMS, SILENCE, GeneratorSettings,
                               compose_clip, make_take)

        corpus = GeneratorSettings()
        audio = np.zeros((len(rows), CLIP_SAMPLES), np.float32)
        low, high = np.log(self.formant_ratio_range[0]), np.log(self.formant_ratio_range[1])
        for i, row in enumerate(rows):
            rng = np.random.default_rng([int(self.seed), int(copy), int(row["noise_seed"])])
            silent = row["label"] == SILENCE
            take = np.zeros(0, np.float32)
            if not silent:
                start, length = int(row["start"]), int(row["length"])
                word = convert_voice(samples[start: start + length], float(np.exp(rng.uniform(low, high))),
                                     float(rng.uniform(*self.pitch_median_hz_range))
                                     if rng.random() < self.pitch_change_probability else 0.0,
                                     float(rng.uniform(*self.pitch_range_factor_range)),
                                     seed=int(rng.integers(2**31)))
                if rng.random() < self.band_limit_probability:
                    word = band_limit(word, self.band_limit_hz)
                room = int(rng.integers(N_ROOMS)) if rng.random() < corpus.reverb_probability else -1
                take = make_take(word, float(rng.uniform(*corpus.rate_range)), 0.0, room)
            gain = rng.uniform(*(corpus.silence_level_db_range if silent else corpus.gain_db_range))
            offset = int(round(rng.uniform() * (CLIP_SAMPLES - len(take))))
            audio[i] = compose_clip(take, offset, float(gain), str(rng.choice(BACKGROUND_KINDS)),
                                    float(rng.uniform(*corpus.snr_db_range)), int(rng.integers(2**31 - 1)),
                                    silent=silent)
        return audio
