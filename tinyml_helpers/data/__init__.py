"""Datasets of the course: bundled (offline) keyword audio and images, opt-in real sets.

Public API (the names other modules and the notebooks rely on):

* :func:`keyword_classes` -- the 12 MLPerf Tiny KWS classes.
* :func:`load_keyword_audio` -- 1 s clips of the synthetic keyword set (16 kHz).
* :func:`keyword_features` -- ``(X float32 (N, 1, 49, F), y int64 (N,))``; F = 40 log-mel
  bands (``kind="logmel"``) or 10 MFCCs (``kind="mfcc"``); cached on disk.
* :func:`keyword_loaders` -- ``{"train", "val", "test"}`` torch DataLoaders of (x, y),
  seeded shuffling, optional noise/shift augmentation.
* :func:`fashion_mnist_subset` -- ``(X uint8 (N, 28, 28), y int64)``.

In smoke mode (``TINYML_SMOKE=1``) every loader returns a small stratified subset so
tests take seconds. The keyword speech is synthetic (five speech-engine families); see ``data/README.md``
for what that means for accuracy on real voices.

Example:
    >>> from tinyml_helpers import data
    >>> X, y = data.keyword_features("val", smoke=True)
    >>> X.shape[1:], X.dtype, y.dtype
    ((1, 49, 40), dtype('float32'), dtype('int64'))
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import config
from ..files import ChecksumError
from .augment import KeywordAugmenter, spec_augment
from .downloads import NoInternetError, download
from .features import FEATURE_KINDS, compute_features, feature_params
from .images import FASHION_CLASSES, fashion_classes, fashion_mnist_subset
from .keywords import KeywordAudio, keyword_classes
from .voices import VoiceAugmenter
from . import keywords as _keywords

__all__ = [
    "keyword_classes",
    "keyword_set_info",
    "load_keyword_audio",
    "keyword_features",
    "keyword_loaders",
    "keyword_families",
    "engine_families",
    "sample_train_voices",
    "train_voice_mask",
    "keyword_generalisation",
    "keyword_voice_curve",
    "keyword_error_shares",
    "top_confusions",
    "hardest_first",
    "compute_features",
    "feature_params",
    "KeywordAudio",
    "KeywordAugmenter",
    "VoiceAugmenter",
    "fashion_mnist_subset",
    "fashion_classes",
    "FASHION_CLASSES",
    "download",
    "NoInternetError",
    "ChecksumError",
    "DATASETS",
    "SPLITS",
]

SPLITS = ("train", "val", "test")
DATASETS = ("synthetic", "speech_commands")


def _check(split: str, kind: str | None = None, dataset: str = "synthetic") -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if kind is not None and kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; valid kinds: {', '.join(FEATURE_KINDS)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)} "
                         "('synthetic' is bundled; 'speech_commands' needs download=True once)")


def load_keyword_audio(split: str, smoke: bool | None = None, dataset: str = "synthetic",
                       download: bool = False, on_demand: bool = False) -> KeywordAudio:
    """1 s keyword clips of one split: ``KeywordAudio(audio (N, 16000) float32, labels, voices, ...)``.

    ``dataset="speech_commands"`` loads Google Speech Commands v2 instead (real voices;
    needs ``download=True`` the first time, about 2.4 GB). ``on_demand=True`` makes each clip of
    the bundled corpus only when ``audio[i]`` is read (a widget that plays one clip at a time
    needs no 100 MB array); Speech Commands clips are read whole either way.

    Example:
        >>> ka = load_keyword_audio("test", smoke=True)
        >>> ka.audio.shape, len(set(ka.labels.tolist()))
        ((96, 16000), 12)
    """
    _check(split, dataset=dataset)
    if dataset == "speech_commands":
        from . import speech_commands

        return speech_commands.load_audio(split, smoke=smoke, download=download)
    _verify_keywords()
    return _keywords.load_keyword_audio(split, smoke=smoke, on_demand=on_demand)


def keyword_set_info() -> dict[str, Any]:
    """What the bundled keyword set holds: counts and voices per split, settings, espeak version.

    Example:
        >>> info = keyword_set_info()
        >>> info["counts"]["test"]["total"] > 0, sorted(info["voices"])
        (True, ['test', 'train', 'val'])
    """
    import json

    from .manifest import verify_file

    return json.loads(verify_file("keywords/info.json").read_text())


def _verify_keywords() -> None:
    from .manifest import verify_file

    for name in ["clips.csv"] + [f"speech_{s}.flac" for s in SPLITS]:
        verify_file(f"keywords/{name}")


def keyword_families(split: str, smoke: bool | None = None) -> np.ndarray:
    """Engine family of each clip of ``split`` (same order as :func:`keyword_features`).

    Example:
        >>> sorted(set(keyword_families("test", smoke=True).tolist()))[:2]
        ['espeak', 'festival']
    """
    _check(split)
    smoke = config.is_smoke() if smoke is None else smoke
    _verify_keywords()
    return np.array([r["family"] for r in _keywords.split_rows(split, smoke)])


def engine_families() -> tuple[str, ...]:
    """The speech-engine families of the bundled corpus, in the generator's order.

    Example:
        >>> engine_families()
        ('espeak', 'mbrola', 'festival', 'flite', 'pico')
    """
    return tuple(keyword_set_info()["settings"]["families"])


def sample_train_voices(fraction: float | Mapping[str, float], seed: int = 0,
                        smoke: bool | None = None) -> list[str]:
    """A seeded share of each engine family's training voices (at least one per family), sorted.

    ``fraction`` is one share for every family, or ``{family: share}`` to thin only those
    families (the others keep all their voices). Each thinned family keeps
    ``ceil(share * its train voices)`` voices, drawn with ``seed``; the count is the same for
    every seed, only which voices differ. This is how the voice curve
    (:func:`keyword_voice_curve`) asks how accuracy on unseen voices grows with the number of
    voices a model trained on, and which voices count.

    Example:
        >>> len(sample_train_voices(1.0, smoke=True)) > len(sample_train_voices(0.25, smoke=True))
        True
        >>> everyone = set(sample_train_voices(1.0, smoke=True))
        >>> {v.split(":")[0] for v in everyone - set(sample_train_voices({"espeak": 0.25}, smoke=True))}
        {'espeak'}
    """
    import math

    def checked(share: Any) -> float:
        if isinstance(share, bool) or not isinstance(share, (int, float, np.integer, np.floating)) \
                or not math.isfinite(share) or not 0 < share <= 1:
            raise ValueError(f"fraction must be a number in (0, 1] (the share of each family's training voices "
                             f"to keep), or {{family: such a number}}; got {share!r}")
        return float(share)

    smoke = config.is_smoke() if smoke is None else smoke
    if isinstance(fraction, Mapping):
        unknown = sorted(set(fraction) - set(engine_families()))
        if unknown or not fraction:
            raise ValueError(f"fraction's families must be a non-empty subset of {engine_families()}, got {list(fraction)}")
        shares = {family: checked(share) for family, share in fraction.items()}
    else:
        shares = dict.fromkeys(engine_families(), checked(fraction))
    _verify_keywords()
    by_family: dict[str, set[str]] = {}
    for row in _keywords.split_rows("train", smoke):
        if row["voice"]:  # _silence_ clips have no voice
            by_family.setdefault(row["family"], set()).add(row["voice"])
    rng = np.random.default_rng(int(seed))
    kept: list[str] = []
    for family in sorted(by_family):
        voices = sorted(by_family[family])
        n = max(1, math.ceil(shares.get(family, 1.0) * len(voices)))
        kept += rng.choice(voices, n, replace=False).tolist() if n < len(voices) else voices
    return sorted(kept)


def train_voice_mask(fraction: float | Mapping[str, float], seed: int = 0, smoke: bool | None = None) -> np.ndarray:
    """Which train clips (in :func:`keyword_features` order) are said by :func:`sample_train_voices`;
    every ``_silence_`` clip is kept.

    Example:
        >>> bool(train_voice_mask(1.0, smoke=True).all())
        True
    """
    smoke = config.is_smoke() if smoke is None else smoke
    voices = np.array([r["voice"] for r in _keywords.split_rows("train", smoke)])
    return np.isin(voices, sample_train_voices(fraction, seed, smoke)) | (voices == "")


def keyword_generalisation() -> dict[str, Any]:
    """The shipped leave-one-engine-family-out results (``data/checkpoints/kws_loeo.json``).

    ``leave_one_family_out[family]``: the keyword PhiNet trained on the other four families,
    tested (int8, onnxruntime) on every clip of ``family``, with clip count and 95 % interval;
    ``single_family``: one trained on espeak-ng alone, tested on each other family. Each family
    left out also has ``confusion`` (int8 answers of all seeds pooled: rows true, columns predicted;
    see :func:`keyword_error_shares`) and ``voices`` / ``words``, ``{name: [right, clips]}`` tallies
    (see :func:`hardest_first`), when its seeds were run with a script that records them.
    Made by ``python -m tinyml_helpers.scripts.loeo_keywords`` (too long to run in a lesson).

    Example:
        >>> results = keyword_generalisation()
        >>> sorted(results["leave_one_family_out"]) == sorted(engine_families())
        True
    """
    return _shipped_results("checkpoints/kws_loeo.json", "loeo_keywords")


def keyword_voice_curve() -> dict[str, Any]:
    """The shipped voice curve (``data/checkpoints/kws_voice_curve.json``): unseen-voice accuracy
    against the number of training voices.

    ``fractions[f]``: the keyword PhiNet's recipe trained on a share ``f`` of each family's train
    voices (:func:`sample_train_voices`), tested (int8, onnxruntime) on the test split, whose
    voices no model heard (``clips`` of them); ``voices`` and ``train_clips`` it trained on, the mean
    ``accuracy`` over the seeds with its 95 % interval, and each seed's run. Made by
    ``python -m tinyml_helpers.scripts.voice_curve_keywords`` (too long to run in a lesson).

    Example:
        >>> curve = keyword_voice_curve()
        >>> curve["fractions"]["1.0"]["voices"] > curve["fractions"]["0.25"]["voices"]
        True
    """
    return _shipped_results("checkpoints/kws_voice_curve.json", "voice_curve_keywords")


def _shipped_results(relpath: str, script: str) -> dict[str, Any]:
    """A results JSON under ``data/``, checked against the manifest, or an error saying how to restore it."""
    import json

    from .manifest import verify_file

    path = verify_file(relpath)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it with `git checkout -- {path}` or "
                         f"remake it with `python -m tinyml_helpers.scripts.{script}`") from exc


def _checked_confusion(confusion: Any, classes: list[str] | None) -> tuple[list[str], np.ndarray]:
    """The keyword class names and ``confusion`` as floats, or ValueError saying what is wrong."""
    classes = list(classes) if classes is not None else keyword_classes()
    c = np.asarray(confusion, dtype=float)
    if c.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion must be a {len(classes)}x{len(classes)} matrix (one row and column per "
                         f"class of {classes}), got shape {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("confusion must hold clip counts: finite and >= 0")
    if "_silence_" not in classes or "_unknown_" not in classes:
        raise ValueError(f"classes must include _silence_ and _unknown_ (the keyword classes), got {classes}")
    return classes, c


def keyword_error_shares(confusion: Any, classes: list[str] | None = None) -> dict[str, float]:
    """Where a keyword model's answers went, from its confusion matrix (rows true, columns predicted).

    ``keyword_right``, ``keyword_as_other_keyword`` and ``keyword_missed`` (called ``_unknown_``
    or ``_silence_``) are shares of the keyword clips and sum to 1; ``unknown_accepted`` is the
    share of ``_unknown_`` clips taken for a keyword (false alarms), ``silence_right`` the share
    of ``_silence_`` clips recognised. ``classes`` defaults to :func:`keyword_classes`.

    Example:
        >>> c = np.zeros((12, 12), int); c[0, 0] = 8; c[0, 1] = 1; c[0, 11] = 1; c[11, 0] = 2; c[11, 11] = 8
        >>> shares = keyword_error_shares(c)
        >>> shares["keyword_right"], shares["keyword_missed"], shares["unknown_accepted"]
        (0.8, 0.1, 0.2)
    """
    classes, c = _checked_confusion(confusion, classes)
    rejects = [classes.index(name) for name in ("_silence_", "_unknown_")]
    words = [i for i in range(len(classes)) if i not in rejects]
    silence, unknown = rejects

    def share(part: float, whole: float) -> float:
        return float(part / whole) if whole else float("nan")

    said = c[words].sum()
    right = np.trace(c[np.ix_(words, words)])
    missed = c[np.ix_(words, rejects)].sum()
    return {"keyword_right": share(right, said), "keyword_as_other_keyword": share(said - right - missed, said),
            "keyword_missed": share(missed, said), "unknown_accepted": share(c[unknown, words].sum(), c[unknown].sum()),
            "silence_right": share(c[silence, silence], c[silence].sum())}


def top_confusions(confusion: Any, n: int = 5, classes: list[str] | None = None) -> list[tuple[str, str, float]]:
    """The ``n`` commonest mistakes ``(true class, predicted class, share of the true class's clips)``.

    Example:
        >>> c = np.zeros((12, 12), int); c[1, 1] = 6; c[1, 9] = 4; c[9, 9] = 9; c[9, 1] = 1
        >>> top_confusions(c, n=2)
        [('no', 'go', 0.4), ('go', 'no', 0.1)]
    """
    classes, c = _checked_confusion(confusion, classes)
    totals = c.sum(axis=1)
    mistakes = [(c[t, p] / totals[t], classes[t], classes[p]) for t in range(len(classes))
                for p in range(len(classes)) if t != p and c[t, p] > 0]
    return [(true, predicted, float(share)) for share, true, predicted in sorted(mistakes, reverse=True)[:n]]


def hardest_first(tally: dict[str, Any], min_clips: int = 1) -> list[tuple[str, float, int]]:
    """``(name, accuracy, clips)`` from a ``{name: [right, clips]}`` tally, lowest accuracy first.

    Names with fewer than ``min_clips`` clips are left out (one clip is no evidence).

    Example:
        >>> hardest_first({"mb-us1": [9, 10], "mb-hu1-en": [4, 10], "rare": [0, 1]}, min_clips=5)
        [('mb-hu1-en', 0.4, 10), ('mb-us1', 0.9, 10)]
    """
    rows = []
    for name, counts in tally.items():
        if len(counts) != 2 or not all(float(v).is_integer() for v in counts):
            raise ValueError(f"{name!r}: expected [right, clips] as two whole numbers, got {counts}")
        right, clips = (int(v) for v in counts)
        if not 0 <= right <= clips:
            raise ValueError(f"{name!r}: {right} right out of {clips} clips is not a tally")
        if clips >= max(min_clips, 1):
            rows.append((name, right / clips, clips))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def _family_mask(split: str, smoke: bool, families: Any) -> np.ndarray:
    known = engine_families()
    unknown = [f for f in families if f not in known]
    if unknown or not len(families):
        raise ValueError(f"families must be a non-empty list from {known}, got {list(families)}")
    return np.isin(keyword_families(split, smoke), list(families))


def keyword_features(split: str, kind: str = "logmel", smoke: bool | None = None,
                     dataset: str = "synthetic", download: bool = False,
                     normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of one split: ``X`` float32 (N, 1, 49, 40 | 10), ``y`` int64 (N,).

    ``kind="logmel"``: 40 log-mel bands (dB), 40 ms window, 20 ms hop, 16 kHz,
    ``center=False`` (49 frames). ``kind="mfcc"``: MLPerf Tiny's 49x10 MFCCs. Standardised
    with fixed constants (see :mod:`tinyml_helpers.data.features`) unless ``normalize=False``.
    The first call computes (a few seconds) and caches under ``artifacts/cache/features``.

    Example:
        >>> X, y = keyword_features("train", kind="mfcc", smoke=True)
        >>> X.shape
        (192, 1, 49, 10)
    """
    from .features import cached_features

    _check(split, kind, dataset)
    smoke = config.is_smoke() if smoke is None else smoke
    if dataset == "speech_commands":
        from . import speech_commands

        source = speech_commands.fingerprint(download=download)
    else:
        _verify_keywords()
        source = _keywords._dataset_fingerprint(_keywords.keywords_dir())

    def load() -> tuple[np.ndarray, np.ndarray]:
        clips = load_keyword_audio(split, smoke=smoke, dataset=dataset, download=download)
        return clips.audio, clips.labels

    return cached_features(kind, normalize, f"{dataset}:{source}", split,
                           "smoke" if smoke else "full", load)


def _augmented_train_features(kind: str, smoke: bool, copies: int, seed: int, dataset: str,
                              download: bool, augmenter: KeywordAugmenter) -> np.ndarray:
    """``copies`` augmented versions of the train split's features, (copies, N, 1, 49, F), cached."""
    from dataclasses import asdict

    from .features import cached_features

    clips = load_keyword_audio("train", smoke=smoke, dataset=dataset, download=download)
    silent = clips.labels == keyword_classes().index(_keywords.SILENCE)
    speech_pool = clips.audio[~silent]
    settings = {k: v for k, v in asdict(augmenter).items() if k != "seed"}
    views = []
    for copy in range(copies):
        def load(copy: int = copy) -> tuple[np.ndarray, np.ndarray]:
            aug = KeywordAugmenter(**{**settings, "seed": seed * 1000 + copy})
            return aug(clips.audio, silent=silent, babble_pool=speech_pool), clips.labels

        X, _ = cached_features(kind, True, f"{dataset}:{clips.source_sha256}:aug{settings}:{seed}:{copy}",
                               "train", ("smoke" if smoke else "full") + f"-aug{copy}", load)
        views.append(X)
    return np.stack(views)


def _voice_train_features(kind: str, smoke: bool, copies: int, augmenter: VoiceAugmenter) -> np.ndarray:
    """``copies`` new-voice versions of the train split's features, (copies, N, 1, 49, F), cached."""
    from .features import cached_features

    source = _keywords._dataset_fingerprint(_keywords.keywords_dir())
    rows = _keywords.split_rows("train", smoke)
    views = []
    for copy in range(copies):
        def load(copy: int = copy) -> tuple[np.ndarray, np.ndarray]:
            samples = _keywords._read_speech(_keywords.keywords_dir() / "speech_train.flac")
            labels = np.array([keyword_classes().index(r["label"]) for r in rows], dtype=np.int64)
            return augmenter(rows, samples, copy), labels

        key = f"synthetic:{source}:voices{augmenter.settings()}:{augmenter.seed}:{copy}"
        X, _ = cached_features(kind, True, key, "train", ("smoke" if smoke else "full") + f"-voice{copy}", load)
        views.append(X)
    return np.stack(views)


def keyword_loaders(batch_size: int = 64, kind: str = "logmel", augment: bool = False,
                    seed: int = 0, smoke: bool | None = None, dataset: str = "synthetic",
                    download: bool = False, augment_copies: int = 3,
                    augmenter: KeywordAugmenter | None = None, spec_augment: bool = False,
                    families: Any = None, max_train_clips: int | None = None,
                    voice_copies: int = 0, voice_augmenter: VoiceAugmenter | None = None,
                    voice_fraction: float | Mapping[str, float] = 1.0) -> dict[str, Any]:
    """Torch DataLoaders ``{"train", "val", "test"}`` yielding ``(x float32 (B,1,49,F), y int64 (B,))``.

    Train is shuffled with a generator seeded by ``seed`` (same order every run); val/test
    are not shuffled. ``augment=True`` precomputes ``augment_copies`` noisy, time-shifted
    versions of every train clip (cached) and each epoch draws one version per clip, plus
    the clean original. ``spec_augment=True`` masks random frequency bands and time frames of
    each training example as it is drawn (SpecAugment). ``families`` keeps only clips of those
    engine families in train and val (test stays whole: evaluate a family left out yourself);
    ``max_train_clips`` trains on a class-stratified subset of that size (the workshop's
    shorter runs). ``voice_copies`` adds that many copies of the train split with every word
    said by a new virtual speaker (:class:`~tinyml_helpers.data.voices.VoiceAugmenter`: formants,
    pitch, bandwidth, fresh take; about 40 s per copy the first time, then cached); each epoch
    draws one version of each clip. ``voice_fraction`` below 1 trains on only that share of each
    family's train voices, ``{family: share}`` on a share of those families' voices
    (:func:`sample_train_voices`, drawn with ``seed``; the voice curve).
    ``num_workers=0`` keeps it simple and deterministic on laptops.

    Example:
        >>> loaders = keyword_loaders(batch_size=32, smoke=True)
        >>> x, y = next(iter(loaders["train"]))
        >>> tuple(x.shape), y.dtype
        ((32, 1, 49, 40), torch.int64)
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)  # DataLoader refuses NumPy integers
    _check("train", kind, dataset)
    smoke = config.is_smoke() if smoke is None else smoke
    if max_train_clips is not None and (isinstance(max_train_clips, bool) or int(max_train_clips) < 12):
        raise ValueError(f"max_train_clips must be an integer >= 12 (one per class), got {max_train_clips!r}")
    if families is not None and dataset != "synthetic":
        raise ValueError("families applies to the bundled synthetic corpus only")
    if voice_fraction != 1.0 and dataset != "synthetic":
        raise ValueError("voice_fraction picks voices of the bundled synthetic corpus; it needs dataset='synthetic'")
    arrays = {s: keyword_features(s, kind, smoke=smoke, dataset=dataset, download=download) for s in SPLITS}
    generator = torch.Generator().manual_seed(int(seed))
    keep = np.ones(len(arrays["train"][1]), bool)
    if families is not None:
        keep = _family_mask("train", smoke, families)
        val_keep = _family_mask("val", smoke, families)
        arrays["val"] = (arrays["val"][0][val_keep], arrays["val"][1][val_keep])
    if voice_fraction != 1.0:
        keep &= train_voice_mask(voice_fraction, seed, smoke)
    if max_train_clips is not None and keep.sum() > int(max_train_clips):
        candidates = np.nonzero(keep)[0]
        per_class = max(1, int(max_train_clips) // len(keyword_classes()))
        keep = np.zeros_like(keep)
        keep[candidates[_keywords.smoke_subset(arrays["train"][1][candidates], per_class, seed)]] = True
    views_list = [arrays["train"][0][None]]
    if isinstance(voice_copies, bool) or not isinstance(voice_copies, (int, np.integer)) or voice_copies < 0:
        raise ValueError(f"voice_copies must be an integer >= 0, got {voice_copies!r}")
    if voice_copies:
        if dataset != "synthetic":
            raise ValueError("voice_copies re-synthesises the bundled corpus's renderings; it needs dataset='synthetic'")
        views_list.append(_voice_train_features(kind, smoke, int(voice_copies),
                                                voice_augmenter or VoiceAugmenter(seed=seed)))
    if augment:
        if augment_copies < 1:
            raise ValueError(f"augment_copies must be >= 1, got {augment_copies}")
        views_list.append(_augmented_train_features(kind, smoke, augment_copies, seed, dataset, download,
                                                    augmenter or KeywordAugmenter()))
    views = np.concatenate(views_list)[:, keep]
    y_train = arrays["train"][1][keep]
    if augment or spec_augment or voice_copies:
        train_set: Any = _RandomViewDataset(views, y_train, seed, spec_augment)
    else:
        train_set = TensorDataset(torch.from_numpy(views[0]), torch.from_numpy(y_train))
    loaders = {"train": DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator,
                                   num_workers=0)}
    for split in ("val", "test"):
        X, y = arrays[split]
        loaders[split] = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                                    batch_size=batch_size, shuffle=False, num_workers=0)
    return loaders


class _RandomViewDataset:
    """Item i = one randomly chosen version (clean or augmented) of train clip i, maybe masked."""

    def __init__(self, views: np.ndarray, labels: np.ndarray, seed: int, spec_augment: bool = False) -> None:
        import torch

        self.views = torch.from_numpy(np.ascontiguousarray(views))
        self.labels = torch.from_numpy(labels)
        self.rng = np.random.default_rng(seed)
        self.spec_augment = spec_augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        import torch

        view = int(self.rng.integers(len(self.views)))
        x = self.views[view, index]
        if self.spec_augment:
            x = torch.from_numpy(spec_augment(x.numpy(), self.rng))
        return x, self.labels[index]
