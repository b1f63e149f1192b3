"""New virtual speakers for training: Praat's Change Gender, band limits, per-row seeding."""
import numpy as np
import pytest

from tinyml_helpers import data
from tinyml_helpers.data import keywords
from tinyml_helpers.data.voices import VoiceAugmenter, band_limit, convert_voice

RATE = 16000


def vowel(f0=120.0, formants=(700.0, 1200.0, 2600.0), seconds=0.5):
    """A crude vowel: a glottal pulse train through three resonators."""
    from scipy.signal import lfilter

    n = int(seconds * RATE)
    pulses = np.zeros(n)
    pulses[:: int(RATE / f0)] = 1.0
    x = pulses
    for f in formants:
        r = np.exp(-np.pi * 80.0 / RATE)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / RATE), r * r], x)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def centroid_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float((spectrum * freqs).sum() / spectrum.sum())


def median_pitch_hz(x):
    import parselmouth

    pitch = parselmouth.Sound(x.astype(np.float64), RATE).to_pitch(pitch_floor=60, pitch_ceiling=600)
    f0 = pitch.selected_array["frequency"]
    return float(np.median(f0[f0 > 0]))


def test_formant_ratio_moves_the_spectrum_and_pitch_median_moves_the_pitch():
    x = vowel()
    up, down = convert_voice(x, formant_ratio=1.2), convert_voice(x, formant_ratio=0.83)
    assert up.shape == x.shape == down.shape and up.dtype == np.float32
    assert centroid_hz(up) > centroid_hz(x) * 1.08 > centroid_hz(down) * 1.08
    assert abs(median_pitch_hz(convert_voice(x, pitch_median_hz=220.0)) - 220.0) < 15.0
    assert abs(median_pitch_hz(x) - 120.0) < 10.0


def test_same_seed_same_samples():
    # Praat's resynthesis is random unless seeded: cached training copies must be reproducible.
    x = vowel()
    assert np.array_equal(convert_voice(x, 1.1, 200.0, 1.3, seed=4), convert_voice(x, 1.1, 200.0, 1.3, seed=4))


def test_silence_comes_back_unchanged_and_bad_words_are_refused():
    assert np.array_equal(convert_voice(np.zeros(800, np.float32), 1.2), np.zeros(800, np.float32))
    bad = vowel()
    bad[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        convert_voice(bad)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        convert_voice(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="formant_ratio must be in"):
        convert_voice(vowel(), formant_ratio=3.0)
    with pytest.raises(ValueError, match="cutoff_hz"):
        band_limit(vowel(), 9000.0)


def test_band_limit_removes_the_upper_band():
    noise = np.random.default_rng(0).normal(size=RATE).astype(np.float32)
    spectrum = np.abs(np.fft.rfft(band_limit(noise, 3800.0)))
    freqs = np.fft.rfftfreq(RATE, 1 / RATE)
    assert spectrum[freqs > 5000].mean() < 0.01 * spectrum[freqs < 3000].mean()


def test_augmenter_is_seeded_per_row_so_a_subset_gets_the_same_clips():
    rows = keywords.split_rows("train", smoke=True)[:6]
    samples = keywords._read_speech(keywords.keywords_dir() / "speech_train.flac")
    augment = VoiceAugmenter(seed=3)
    every = augment(rows, samples, copy=1)
    assert every.shape == (6, RATE) and np.isfinite(every).all() and np.abs(every).max() <= 1.0
    assert np.array_equal(augment(rows[2:4], samples, copy=1), every[2:4])
    assert not np.array_equal(augment(rows, samples, copy=2), every)
    original = np.stack([keywords.clip_from_row(samples, r) for r in rows])
    assert not np.allclose(original, every)


def test_loaders_add_voice_copies_and_refuse_bad_counts():
    loaders = data.keyword_loaders(batch_size=16, smoke=True, voice_copies=1)
    x, y = next(iter(loaders["train"]))
    assert tuple(x.shape) == (16, 1, 49, 40) and np.isfinite(x.numpy()).all()
    assert len(loaders["train"].dataset) == len(data.keyword_features("train", smoke=True)[1])
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="voice_copies must be an integer"):
            data.keyword_loaders(smoke=True, voice_copies=bad)
