"""Opt-in loader for Google Speech Commands v2 in the 12-class MLPerf Tiny setup.

Speech Commands (Warden, 2018, "Speech Commands: A Dataset for Limited-Vocabulary Speech
Recognition", arXiv:1804.03209; CC-BY-4.0) has ~105,000 one-second recordings of 35 words
by 2,618 speakers. The MLPerf Tiny keyword-spotting benchmark (Banbury et al., 2021) uses
the ten words *yes ... go* plus ``_unknown_`` (the other 25 words) and ``_silence_``
(1 s crops of the ``_background_noise_`` recordings), with the official
``validation_list.txt`` / ``testing_list.txt`` deciding each file's split (the lists hash
the speaker id, so splits are speaker-disjoint, like our synthetic set's voice split).

Here ``_unknown_`` and ``_silence_`` each get as many clips per split as an average keyword
(seeded choice), so the classes stay balanced like the bundled set.

Nothing is downloaded unless asked: ``load_audio(split, download=True)`` fetches the 2.3 GB
archive once (sha256-verified, atomic) into ``artifacts/cache/downloads/speech_commands``.
Offline it raises :class:`~tinyml_helpers.data.downloads.NoInternetError`.

Example:
    >>> # from tinyml_helpers import data
    >>> # X, y = data.keyword_features("test", dataset="speech_commands", download=True)
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from .. import config
from .downloads import download as fetch, download_cache_dir
from .keywords import KEYWORDS, SILENCE, UNKNOWN, KeywordAudio, keyword_classes, smoke_subset

__all__ = ["ARCHIVE_URL", "ARCHIVE_SHA256", "dataset_folder", "load_audio", "fingerprint"]

ARCHIVE_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
ARCHIVE_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
LOADER_VERSION = 1
SAMPLE_RATE = 16000
SMOKE_PER_CLASS = {"train": 16, "val": 8, "test": 8}


def dataset_folder() -> Path:
    """Where the extracted archive lives (``<download cache>/speech_commands/v0.02``)."""
    return download_cache_dir("speech_commands") / "v0.02"


def fingerprint(download: bool = False) -> str:
    """Identity of the data + loader settings (the feature-cache key); no network used."""
    return f"{ARCHIVE_SHA256}:v{LOADER_VERSION}"


def ensure_dataset(download: bool = False) -> Path:
    """Return the extracted folder; fetch and extract it first when ``download=True``."""
    folder = dataset_folder()
    if (folder / "testing_list.txt").exists():
        return folder
    if not download:
        raise FileNotFoundError(
            f"Google Speech Commands v2 is not in {folder}. It is opt-in (2.3 GB): call again with "
            "download=True, or keep using the bundled synthetic set (dataset='synthetic').")
    archive = fetch(ARCHIVE_URL, ARCHIVE_SHA256, download_cache_dir("speech_commands") / "speech_commands_v0.02.tar.gz")
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder.parent))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        os.replace(staging, folder)  # atomic: a half-extracted folder never looks complete
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _split_of(folder: Path) -> dict[str, str]:
    split = {}
    for name, list_file in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        for line in (folder / list_file).read_text().split():
            split[line.strip()] = name
    return split


def _read_clip(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path} has sample rate {rate}, expected {SAMPLE_RATE}")
    clip = np.zeros(SAMPLE_RATE, np.float32)
    clip[: min(len(audio), SAMPLE_RATE)] = audio[:SAMPLE_RATE]
    return clip


def load_audio(split: str, smoke: bool | None = None, download: bool = False, seed: int = 0) -> KeywordAudio:
    """Speech Commands v2 clips of one split as :class:`KeywordAudio` (voices = speaker ids)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; valid splits: train, val, test")
    folder = ensure_dataset(download)
    smoke = config.is_smoke() if smoke is None else smoke
    assigned = _split_of(folder)
    classes = keyword_classes()
    rng = np.random.default_rng(seed)
    files: dict[str, list[str]] = {c: [] for c in classes}
    for word_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_")):
        label = word_dir.name if word_dir.name in KEYWORDS else UNKNOWN
        for wav in sorted(word_dir.glob("*.wav")):
            rel = f"{word_dir.name}/{wav.name}"
            if assigned.get(rel, "train") == split:
                files[label].append(rel)
    per_class = int(np.mean([len(files[k]) for k in KEYWORDS]))
    if len(files[UNKNOWN]) > per_class:
        files[UNKNOWN] = sorted(rng.choice(files[UNKNOWN], per_class, replace=False).tolist())
    rels = [(c, r) for c in classes if c != SILENCE for r in files[c]]
    labels = np.array([classes.index(c) for c, _ in rels] + [classes.index(SILENCE)] * per_class, np.int64)
    keep = smoke_subset(labels, SMOKE_PER_CLASS[split]) if smoke else np.arange(len(labels))
    noises = [_read_noise(p) for p in sorted((folder / "_background_noise_").glob("*.wav"))]
    audio = np.zeros((len(keep), SAMPLE_RATE), np.float32)
    voices, words = [], []
    for row, index in enumerate(keep):
        if index < len(rels):
            label, rel = rels[index]
            audio[row] = _read_clip(folder / rel)
            voices.append(rel.split("/")[1].split("_nohash_")[0])
            words.append(rel.split("/")[0])
        else:
            noise = noises[int(rng.integers(len(noises)))]
            start = int(rng.integers(len(noise) - SAMPLE_RATE))
            audio[row] = noise[start: start + SAMPLE_RATE] * rng.uniform(0.0, 1.0)
            voices.append("")
            words.append(SILENCE)
    return KeywordAudio(audio=audio, labels=labels[keep], voices=voices, words=words, classes=classes,
                        split=split, source_sha256=fingerprint())


def _read_noise(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(path, dtype="float32")
    return audio if audio.ndim == 1 else audio.mean(axis=1)
