"""Log-mel and MFCC features for 1 s keyword clips (librosa), cached on disk.

Two feature kinds, both 49 frames for a 1 s clip at 16 kHz (``center=False``, so frames
only cover real samples: ``1 + (16000 - window) // 320 = 49``):

* ``"logmel"``: 40 mel bands, 20-8000 Hz, 40 ms Hann window (640 samples), 20 ms hop
  (320 samples), power spectrum -> ``10*log10(mel + 1e-10)`` (dB re full scale, floor
  -100 dB). Shape (N, 1, 49, 40).
* ``"mfcc"``: the MLPerf Tiny KWS front end (Banbury et al. 2021, after Zhang et al. 2017
  "Hello Edge"): 30 ms window (480 samples), 20 ms hop, 40 mel bands 20-4000 Hz, log (dB),
  DCT-II (orthonormal) keeping 10 coefficients. Shape (N, 1, 49, 10).

With ``normalize=True`` (the default) features are standardised with FIXED constants
measured once on the bundled train set (:data:`LOGMEL_MEAN_DB` etc.), not per dataset, so
any new audio -- a learner's own recording, Speech Commands -- gets the same scaling, and an
int8 quantiser later sees a stable range.

Computed features are cached in ``artifacts/cache/features/<key>.npz`` (atomic write),
stored with its key and a sha256 of its arrays so that a damaged or foreign file is
recomputed instead of used; the key hashes the feature parameters, the split, the subset and the sha256 of the
source audio files, so changing any of them recomputes.

Example:
    >>> import numpy as np
    >>> x = compute_features(np.zeros((2, 16000), np.float32), "logmel")
    >>> x.shape, x.dtype
    ((2, 1, 49, 40), dtype('float32'))
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import config
from ..files import atomic_path

__all__ = ["FeatureParams", "FEATURE_KINDS", "feature_params", "compute_features", "cached_features",
           "feature_cache_dir", "LOGMEL_MEAN_DB", "LOGMEL_STD_DB", "MFCC_MEAN", "MFCC_STD"]

FEATURE_VERSION = 1
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class FeatureParams:
    """Front-end parameters; frames = 1 + (clip_samples - n_fft) // hop_length."""

    n_fft: int
    hop_length: int
    n_mels: int
    fmin: float
    fmax: float
    n_mfcc: int = 0  # 0 = log-mel bands are the features
    sample_rate: int = SAMPLE_RATE
    clip_samples: int = SAMPLE_RATE

    @property
    def frames(self) -> int:
        return 1 + (self.clip_samples - self.n_fft) // self.hop_length

    @property
    def bins(self) -> int:
        return self.n_mfcc or self.n_mels


FEATURE_KINDS: dict[str, FeatureParams] = {
    "logmel": FeatureParams(n_fft=640, hop_length=320, n_mels=40, fmin=20.0, fmax=8000.0),
    "mfcc": FeatureParams(n_fft=480, hop_length=320, n_mels=40, fmin=20.0, fmax=4000.0, n_mfcc=10),
}

# Standardisation constants, measured once on the bundled train split (rounded) and then
# frozen so that every dataset is scaled the same way.
LOGMEL_MEAN_DB = -52.0
LOGMEL_STD_DB = 21.0
MFCC_MEAN = np.array([-333.0, 36.0, 16.0, 8.0, 4.0, 3.0, 0.0, 0.7, -0.4, 0.2], np.float32)
MFCC_STD = np.array([115.0, 30.0, 21.0, 22.0, 15.5, 13.0, 10.7, 9.7, 8.5, 7.5], np.float32)


def feature_params(kind: str) -> FeatureParams:
    """The :class:`FeatureParams` of a feature kind; ValueError lists the valid kinds.

    Example:
        >>> feature_params("mfcc").frames, feature_params("mfcc").bins
        (49, 10)
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; valid kinds: {', '.join(FEATURE_KINDS)}")
    return FEATURE_KINDS[kind]


def compute_features(audio: np.ndarray, kind: str = "logmel", normalize: bool = True,
                     batch_size: int = 256) -> np.ndarray:
    """Features of 1 s clips ``(N, 16000)`` (or one clip ``(16000,)``) -> float32 (N, 1, 49, F).

    Audio is float in [-1, 1]; int16 PCM (what WAV files and microphones give) is converted
    by dividing by 32768. Other integer types, and NaN/inf samples, are refused.

    Example:
        >>> compute_features(np.zeros(16000, np.float32), "mfcc").shape
        (1, 1, 49, 10)
        >>> compute_features(np.zeros(16000, np.int16), "mfcc").shape
        (1, 1, 49, 10)
    """
    import librosa
    import numbers

    params = feature_params(kind)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (clips per librosa call), got {batch_size!r}")
    batch_size = int(batch_size)
    audio = np.asarray(audio)
    if audio.dtype == np.int16:
        # int16 PCM taken as float was 32768x too loud: features 6 sigma off, silently.
        audio = audio.astype(np.float32) / 32768.0
    elif not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be float samples in [-1, 1] or int16 PCM, got dtype {audio.dtype}; "
                         "convert it, e.g. audio.astype(np.float32) / 2**(bits-1)")
    audio = np.asarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise ValueError(f"audio holds {int((~np.isfinite(audio)).sum())} NaN/inf sample(s); "
                         "check the recording or the resampling that produced it")
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[1] != params.clip_samples:
        raise ValueError(f"expected audio of shape (N, {params.clip_samples}) = 1 s clips at "
                         f"{params.sample_rate} Hz, got {audio.shape}; pad or cut clips to 1 s first")
    out = np.empty((len(audio), 1, params.frames, params.bins), np.float32)
    for start in range(0, len(audio), batch_size):
        chunk = audio[start: start + batch_size]
        mel = librosa.feature.melspectrogram(
            y=chunk, sr=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length,
            win_length=params.n_fft, window="hann", center=False, n_mels=params.n_mels,
            fmin=params.fmin, fmax=params.fmax, power=2.0)
        db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
        if params.n_mfcc:
            feats = librosa.feature.mfcc(S=db, n_mfcc=params.n_mfcc, dct_type=2, norm="ortho")
            if normalize:
                feats = (feats - MFCC_MEAN[:, None]) / MFCC_STD[:, None]
        else:
            feats = (db - LOGMEL_MEAN_DB) / LOGMEL_STD_DB if normalize else db
        out[start: start + len(chunk), 0] = np.swapaxes(feats, 1, 2)  # (N, frames, bins)
    return out


def feature_cache_dir() -> Path:
    """``artifacts/cache/features`` (follows ``$TINYML_ARTIFACTS``)."""
    return config.artifacts_dir("cache", "features")


def cache_key(**parts: Any) -> str:
    """Stable short hash of JSON-able parts (parameters, split, source sha256, ...)."""
    text = json.dumps({**parts, "feature_version": FEATURE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_features(kind: str, normalize: bool, source: str, split: str, subset: str,
                    load: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Return (X, y) from the cache, or compute them with ``load()`` -> (audio, labels) and store.

    ``source`` identifies the audio (e.g. the sha256 of the bundled files).

    Example:
        >>> X, y = cached_features("mfcc", True, "doc-example", "train", "tiny",
        ...                        lambda: (np.zeros((2, 16000), np.float32), np.zeros(2, np.int64)))
        >>> X.shape, y.tolist()
        ((2, 1, 49, 10), [0, 0])
    """
    params = feature_params(kind)
    key = cache_key(kind=kind, params=asdict(params), normalize=normalize, source=source,
                    split=split, subset=subset)
    path = feature_cache_dir() / f"{kind}_{split}_{subset}_{key}.npz"
    if path.exists():
        stored = _read_cache_entry(path, key, params)
        if stored is not None:
            return stored
        # A damaged or foreign entry (flipped byte, truncated copy, other clip count) is
        # removed and recomputed: it must neither crash every later call nor be used.
        path.unlink(missing_ok=True)
    audio, labels = load()
    X = compute_features(audio, kind, normalize)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) != len(X):
        raise ValueError(f"load() returned {len(X)} clips but {len(y)} labels; they must match")
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, X=X, y=y, key=np.array(key), digest=np.array(_digest(X, y)))
    return X, y


def _digest(X: np.ndarray, y: np.ndarray) -> str:
    # The content hash, shapes included: a file re-saved with fewer clips does not match.
    h = hashlib.sha256(repr((X.shape, str(X.dtype), y.shape, str(y.dtype))).encode())
    h.update(np.ascontiguousarray(X).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def _read_cache_entry(path: Path, key: str, params: FeatureParams) -> tuple[np.ndarray, np.ndarray] | None:
    """The stored (X, y), or None when the file is unreadable or not the entry it claims to be."""
    import zipfile

    try:
        with np.load(path) as stored:
            X, y = stored["X"], stored["y"]
            meta = str(stored["key"]), str(stored["digest"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (meta[0] != key or X.ndim != 4 or X.shape[1:] != (1, params.frames, params.bins)
            or y.shape != (len(X),) or meta[1] != _digest(X, y)):
        return None
    return X, y
