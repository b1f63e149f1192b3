"""Synthetic keyword-spotting set: text-to-speech with espeak-ng, many voices, 16 kHz.

The classes follow the 12-class MLPerf Tiny keyword-spotting setup (Banbury et al., 2021,
"MLPerf Tiny Benchmark", built on Warden 2018, "Speech Commands"): the ten keywords
*yes, no, up, down, left, right, on, off, stop, go*, plus ``_silence_`` (background noise
only) and ``_unknown_`` (any other word; here the 25 auxiliary words of Speech Commands v2).

**How a clip is made.** libespeak-ng (bundled by the ``espeakng-loader`` wheel, called
through ``ctypes``; no system package needed) speaks the word with one *voice* = an English
accent (``en-us``, ``en-gb-scotland``, ...) + an espeak voice variant (``m3``, ``f2``,
``croak``, ``whisper``, ...) at a per-voice speaking rate, pitch and pitch range, jittered
per clip. The 22.05 kHz output is resampled to 16 kHz (``scipy.signal.resample_poly``),
trimmed to the voiced part and stored. When loaded, each word is placed in a 1 s clip at a
seeded offset and gain, over low-level procedural background noise at a seeded SNR.
``_silence_`` clips are that background noise alone.

**Voice-disjoint split.** Voice variants (the timbre) are split between train, val and test,
so no test variant is ever heard in training; the split is stored in the metadata.

**Storage.** Per split one FLAC file holds the trimmed, peak-normalised words one after the
other (lossless at the stored bit depth, so every platform decodes the same samples) and
``clips.csv`` holds one row per clip: label, voice, where its samples are, offset, gain,
noise kind, SNR and noise seed. Nothing but the speech itself is stored.

**Determinism.** libespeak-ng keeps a pitch-flutter counter in a C ``static`` that is never
reset, so a word's exact samples depend on what the same process rendered before it.
:func:`generate_keyword_set` therefore renders the whole set, in one fixed order, inside a
fresh worker process: same seed, same bytes. :func:`render_word` (for playing around) is
audibly the same but not bit-exact between calls.

Licence note: espeak-ng is GPL-3.0-or-later; we call it as a program and ship only its
*output* (audio), which the GPL does not cover. The generated set is released as CC0.

Example:
    >>> from tinyml_helpers.data import keywords
    >>> keywords.keyword_classes()[:3], len(keywords.keyword_classes())
    (['yes', 'no', 'up'], 12)
"""
from __future__ import annotations

import concurrent.futures
import csv
import ctypes
import functools
import io
import json
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import config
from ..files import atomic_path, atomic_write_json, atomic_write_text, sha256_file
from . import augment

__all__ = [
    "KEYWORDS",
    "SILENCE",
    "UNKNOWN",
    "UNKNOWN_WORDS",
    "ACCENTS",
    "SAMPLE_RATE",
    "CLIP_SAMPLES",
    "keyword_classes",
    "list_voice_variants",
    "EspeakVoice",
    "render_word",
    "GeneratorSettings",
    "plan_keyword_set",
    "generate_keyword_set",
    "write_keyword_set",
    "compose_clip",
    "KeywordAudio",
    "load_keyword_audio",
    "keywords_dir",
]

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE  # one second
ESPEAK_RATE = 22050
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
# The 25 auxiliary words of Speech Commands v2 (Warden 2018), used for the unknown class.
UNKNOWN_WORDS = ["backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward",
                 "four", "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila",
                 "six", "three", "tree", "two", "visual", "wow", "zero"]
# English accents shipped with espeak-ng (en-Shaw is a spelling reform, not an accent).
ACCENTS = ["en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-gb-x-rp", "en-us-nyc"]
SPLITS = ("train", "val", "test")
BACKGROUND_KINDS = ("white", "pink", "brown", "hum")
FORMAT_VERSION = 1
MAKE_COMMAND = "python -m tinyml_helpers.scripts.make_keywords"


def keyword_classes() -> list[str]:
    """The 12 class names in label order: 10 keywords, ``_silence_``, ``_unknown_``.

    Example:
        >>> keyword_classes()[-2:]
        ['_silence_', '_unknown_']
    """
    return KEYWORDS + [SILENCE, UNKNOWN]


def keywords_dir() -> Path:
    """Folder of the bundled keyword set (``data/keywords``)."""
    return config.data_dir() / "keywords"


# ----------------------------------------------------------------------------- espeak-ng

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


class _Espeak:
    """Minimal ctypes binding to libespeak-ng from the ``espeakng-loader`` wheel."""

    _instance: "_Espeak | None" = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover - pinned in requirements.txt
            raise ImportError("the keyword generator needs the 'espeakng-loader' wheel: "
                              "pip install espeakng-loader (it is in requirements.txt)") from exc
        self.data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"libespeak-ng failed to start (returned {rate}); "
                               f"check that {self.data_path} exists")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self.version = lib.espeak_Info(None).decode()

    def _collect(self, wav: Any, n: int, _events: Any) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    @classmethod
    def get(cls) -> "_Espeak":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int,
              seed: int = 0) -> np.ndarray:
        # Breathy variants (whisper, klatt) draw noise from libespeak-ng's RNG: seed it.
        self.lib.espeak_ng_SetRandSeed(int(seed))
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}; use '<accent>+<variant>' with an "
                             f"accent from {ACCENTS} and a variant from list_voice_variants()")
        self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        self.lib.espeak_SetParameter(_PARAM_RANGE, int(pitch_range), 0)
        self._chunks = []
        data = text.encode("utf-8")
        if self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
            raise RuntimeError(f"espeak-ng could not speak {text!r} with voice {voice!r}")
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, np.int16)
        return np.concatenate(self._chunks)


def list_voice_variants() -> list[str]:
    """Names of espeak-ng's voice variants (timbres) bundled in the wheel, sorted.

    Example:
        >>> {"m3", "f2", "croak", "whisper"} <= set(list_voice_variants())
        True
    """
    import espeakng_loader

    folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


@dataclass(frozen=True)
class EspeakVoice:
    """One synthetic speaker: accent + variant + speaking rate (words/min), pitch, range (0-100).

    Example:
        >>> EspeakVoice("en-us", "m3").name
        'en-us+m3'
    """

    accent: str
    variant: str
    rate: int = 160
    pitch: int = 50
    pitch_range: int = 50

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant}"


def _trim(x: np.ndarray, threshold_db: float = -40.0, margin: int = 160) -> np.ndarray:
    """Cut leading/trailing samples whose 10 ms envelope is below ``threshold_db`` re peak."""
    if x.size == 0:
        return x
    envelope = np.convolve(np.abs(x), np.ones(160) / 160, mode="same")
    loud = np.nonzero(envelope > envelope.max() * 10 ** (threshold_db / 20))[0]
    if loud.size == 0:
        return x[:0]
    return x[max(loud[0] - margin, 0): loud[-1] + margin]


def render_word(word: str, voice: EspeakVoice | str = "en-us", rate: int | None = None,
                pitch: int | None = None, pitch_range: int | None = None,
                trim: bool = True, seed: int = 0) -> np.ndarray:
    """Speak ``word`` with espeak-ng; return float32 mono audio at 16 kHz, peak 0.9.

    Example:
        >>> audio = render_word("yes", EspeakVoice("en-gb-scotland", "f2"))
        >>> audio.dtype, 0.1 < len(audio) / 16000 < 1.0
        (dtype('float32'), True)
    """
    from scipy.signal import resample_poly

    if not isinstance(word, str) or not word.strip():
        raise ValueError(f"word must be a non-empty string, got {word!r}")
    if isinstance(voice, str):
        accent, _, variant = voice.partition("+")
        voice = EspeakVoice(accent, variant)
    name = voice.name if voice.variant else voice.accent
    raw = _Espeak.get().synth(word, name, rate or voice.rate, voice.pitch if pitch is None else pitch,
                              voice.pitch_range if pitch_range is None else pitch_range, seed)
    audio = resample_poly(raw.astype(np.float64) / 32768.0, SAMPLE_RATE // 50, ESPEAK_RATE // 50)
    if trim:
        audio = _trim(audio)
    peak = np.abs(audio).max() if audio.size else 0.0
    if peak <= 0:
        raise RuntimeError(f"espeak-ng produced silence for {word!r} with voice {name!r}")
    return (audio * (0.9 / peak)).astype(np.float32)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class GeneratorSettings:
    """Every knob of the bundled keyword set. Same settings + seed -> same files.

    ``accents_per_variant`` voices are made from each espeak variant (each with its own
    accent, rate and pitch); variants are split ``split_fractions`` (val, test) by timbre.
    ``store_bits`` is the precision kept in the FLAC files (16 = lossless int16).
    """

    seed: int = 2024
    accents_per_variant: int = 2
    unknown_per_voice: int = 1
    silence_per_voice: int = 1
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    rate_range: tuple[int, int] = (110, 210)
    pitch_range: tuple[int, int] = (25, 75)
    intonation_range: tuple[int, int] = (30, 90)
    gain_db_range: tuple[float, float] = (-24.0, -3.0)
    snr_db_range: tuple[float, float] = (15.0, 40.0)
    silence_level_db_range: tuple[float, float] = (-65.0, -30.0)
    store_bits: int = 10
    variants: tuple[str, ...] | None = None  # None = every variant in the wheel

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class ClipPlan:
    """One row of ``clips.csv`` before rendering."""

    split: str
    label: str
    word: str
    voice: str
    accent: str
    variant: str
    rate: int
    pitch: int
    intonation: int
    offset_fraction: float
    gain_db: float
    noise: str
    snr_db: float
    noise_seed: int
    start: int = 0
    length: int = 0
    offset: int = 0


CSV_FIELDS = ["split", "label", "word", "voice", "accent", "variant", "rate", "pitch", "intonation",
              "start", "length", "offset", "gain_db", "noise", "snr_db", "noise_seed"]


def plan_keyword_set(settings: GeneratorSettings = GeneratorSettings()) -> list[ClipPlan]:
    """Decide every clip (who says what, how, where, over which noise) from the seed.

    Example:
        >>> plan = plan_keyword_set(GeneratorSettings(variants=("m1", "f1", "m2", "f2", "m3", "f3")))
        >>> sorted({p.split for p in plan})
        ['test', 'train', 'val']
    """
    rng = np.random.default_rng(settings.seed)
    variants = list(settings.variants or list_voice_variants())
    if len(variants) < 3:
        raise ValueError("need at least 3 voice variants to make a voice-disjoint train/val/test split")
    order = rng.permutation(len(variants))
    n_test = max(1, round(settings.test_fraction * len(variants)))
    n_val = max(1, round(settings.val_fraction * len(variants)))
    split_of = {}
    for rank, index in enumerate(order):
        split_of[variants[index]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"

    plans: list[ClipPlan] = []
    for variant in variants:  # fixed order: the files come out the same every time
        accents = rng.choice(ACCENTS, size=settings.accents_per_variant, replace=False)
        for accent in accents:
            rate = int(rng.integers(*settings.rate_range, endpoint=True))
            pitch = int(rng.integers(*settings.pitch_range, endpoint=True))
            intonation = int(rng.integers(*settings.intonation_range, endpoint=True))
            words = [(w, w) for w in KEYWORDS]
            words += [(UNKNOWN, str(w)) for w in rng.choice(UNKNOWN_WORDS, settings.unknown_per_voice,
                                                           replace=False)]
            words += [(SILENCE, "")] * settings.silence_per_voice
            for label, word in words:
                silent = label == SILENCE
                plans.append(ClipPlan(
                    split=split_of[variant], label=label, word=word,
                    voice="" if silent else f"{accent}+{variant}",
                    accent="" if silent else str(accent), variant="" if silent else variant,
                    rate=int(np.clip(rate * rng.uniform(0.9, 1.1), 80, 450)),
                    pitch=int(np.clip(pitch + rng.integers(-6, 7), 0, 100)),
                    intonation=intonation,
                    offset_fraction=float(rng.uniform()),
                    gain_db=round(float(rng.uniform(*(settings.silence_level_db_range if silent
                                                     else settings.gain_db_range))), 2),
                    noise=str(rng.choice(BACKGROUND_KINDS)),
                    snr_db=round(float(rng.uniform(*settings.snr_db_range)), 2),
                    noise_seed=int(rng.integers(2**31 - 1))))
    return plans


def _render_plans(plans: Sequence[ClipPlan]) -> tuple[list[np.ndarray], str]:
    """Render every spoken clip in order (runs in a fresh process, see module docstring)."""
    out = []
    for p in plans:
        if p.label == SILENCE:
            out.append(np.zeros(0, np.float32))
            continue
        audio = render_word(p.word, EspeakVoice(p.accent, p.variant, p.rate, p.pitch, p.intonation),
                            seed=p.noise_seed)
        out.append(audio[: CLIP_SAMPLES - 160])  # leave room for a tiny offset in the 1 s clip
    return out, _Espeak.get().version


def generate_keyword_set(settings: GeneratorSettings = GeneratorSettings(),
                         in_fresh_process: bool = True) -> tuple[list[ClipPlan], list[np.ndarray], str]:
    """Plan and render the set; returns (plans, trimmed 16 kHz words, espeak-ng version).

    ``in_fresh_process=True`` renders in a new worker process so the output is bit-exact
    run to run (libespeak-ng keeps a C static between utterances).

    Example:
        >>> s = GeneratorSettings(variants=("m1", "f1", "m2"), accents_per_variant=1)
        >>> plans, words, version = generate_keyword_set(s, in_fresh_process=False)
        >>> len(plans) == len(words) == 3 * 12
        True
    """
    plans = plan_keyword_set(settings)
    if in_fresh_process:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            words, version = pool.submit(_render_plans, plans).result()
    else:
        words, version = _render_plans(plans)
    return plans, words, version


def _quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """float in [-1, 1) -> int16 that keeps only ``bits`` bits (FLAC drops the unused ones)."""
    step = 2 ** (16 - bits)
    return (np.clip(np.round(x * 32768.0 / step), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            * step).astype(np.int16)


def write_keyword_set(folder: str | os.PathLike, settings: GeneratorSettings = GeneratorSettings(),
                      in_fresh_process: bool = True) -> dict[str, Any]:
    """Generate the set and write ``speech_<split>.flac``, ``clips.csv``, ``info.json``.

    Returns the info dict (counts, voices per split, sizes, sha256 of each file).

    Example:
        >>> import tempfile
        >>> s = GeneratorSettings(variants=("m1", "f1", "m2"), accents_per_variant=1)
        >>> info = write_keyword_set(tempfile.mkdtemp(), s, in_fresh_process=False)
        >>> info["counts"]["total"]
        36
    """
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plans, words, version = generate_keyword_set(settings, in_fresh_process)
    for split in SPLITS:
        chunks, cursor = [], 0
        for p, w in zip(plans, words):
            if p.split != split:
                continue
            p.start, p.length = cursor, len(w)
            p.offset = int(round(p.offset_fraction * (CLIP_SAMPLES - len(w))))
            chunks.append(_quantize(w, settings.store_bits))
            cursor += len(w)
        samples = np.concatenate(chunks) if chunks else np.zeros(1, np.int16)
        with atomic_path(folder / f"speech_{split}.flac", suffix=".flac") as tmp:
            sf.write(tmp, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for p in plans:
        writer.writerow({k: getattr(p, k) for k in CSV_FIELDS})
    atomic_write_text(folder / "clips.csv", buffer.getvalue())

    counts: dict[str, Any] = {"total": len(plans)}
    voices: dict[str, list[str]] = {}
    for split in SPLITS:
        rows = [p for p in plans if p.split == split]
        counts[split] = {c: sum(p.label == c for p in rows) for c in keyword_classes()}
        counts[split]["total"] = len(rows)
        voices[split] = sorted({p.voice for p in rows if p.voice})
    variants = {s: sorted({v.split("+")[1] for v in voices[s]}) for s in SPLITS}
    overlap = set(variants["train"]) & (set(variants["val"]) | set(variants["test"]))
    if overlap or set(variants["val"]) & set(variants["test"]):
        raise AssertionError(f"voice variants leak between splits: {sorted(overlap)}")
    info = {
        "format_version": FORMAT_VERSION,
        "what": "synthetic 12-class keyword set (MLPerf Tiny KWS classes), espeak-ng voices, 16 kHz",
        "made_by": MAKE_COMMAND,
        "espeak_ng_version": version,
        "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES,
        "classes": keyword_classes(),
        "unknown_words": UNKNOWN_WORDS,
        "settings": settings.to_dict(),
        "counts": counts,
        "voices": voices,
        "variants": variants,
        "files": {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
                  for name in [f"speech_{s}.flac" for s in SPLITS] + ["clips.csv"]},
        "licence": "CC0-1.0 (generated audio; espeak-ng itself is GPL-3.0-or-later)",
    }
    atomic_write_json(folder / "info.json", info)
    return info


# ----------------------------------------------------------------------------- loading


def compose_clip(word: np.ndarray, offset: int, gain_db: float, noise: str, snr_db: float,
                 noise_seed: int, silent: bool = False) -> np.ndarray:
    """Place a word in a 1 s clip at ``offset`` with peak ``gain_db`` dBFS over seeded noise.

    For the silence class (``silent=True``) the clip is the noise alone at ``gain_db`` dBFS RMS.

    Example:
        >>> clip = compose_clip(np.ones(100, np.float32), 10, -6.0, "pink", 30.0, 1)
        >>> clip.shape, clip.dtype
        ((16000,), dtype('float32'))
    """
    rng = np.random.default_rng(noise_seed)
    background = augment.make_noise(noise, CLIP_SAMPLES, rng)
    if silent:
        return (background * 10 ** (gain_db / 20)).astype(np.float32)
    if len(word) + offset > CLIP_SAMPLES:
        raise ValueError(f"word of {len(word)} samples at offset {offset} does not fit in 1 s")
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    peak = float(np.abs(word).max()) or 1.0
    clip[offset: offset + len(word)] = word * (10 ** (gain_db / 20) / peak)
    return augment.mix_at_snr(clip, background, snr_db)


@dataclass
class KeywordAudio:
    """1 s clips of one split with their labels and who spoke them.

    ``audio`` float32 (N, 16000) in [-1, 1]; ``labels`` int64 (N,) indexing ``classes``;
    ``voices`` the espeak voice per clip ("" for silence); ``words`` the spoken word;
    ``rows`` the full metadata rows from ``clips.csv``. Listen in a notebook with
    ``IPython.display.Audio(ka.audio[i], rate=ka.sample_rate)``.
    """

    audio: np.ndarray
    labels: np.ndarray
    voices: list[str]
    words: list[str]
    classes: list[str]
    split: str
    sample_rate: int = SAMPLE_RATE
    rows: list[dict[str, str]] = field(default_factory=list, repr=False)
    source_sha256: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"KeywordAudio(split={self.split!r}, clips={len(self)}, voices={len(set(self.voices) - {''})}, "
                f"classes={len(self.classes)}, sample_rate={self.sample_rate})")


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"bundled keyword file {path} is missing. Restore it with `git checkout -- data/keywords` "
            f"or regenerate it with `{MAKE_COMMAND}`.")
    return path


def read_clip_rows(folder: Path | None = None) -> list[dict[str, str]]:
    """All rows of ``clips.csv`` (one per clip, every split)."""
    folder = folder or keywords_dir()
    with open(_require(folder / "clips.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def smoke_subset(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of a stratified subset: ``per_class`` items of each class, sorted.

    Example:
        >>> smoke_subset(np.array([0, 0, 0, 1, 1]), 1).size
        2
    """
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(labels):
        members = np.nonzero(labels == label)[0]
        picks.append(rng.choice(members, size=min(per_class, members.size), replace=False))
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)


SMOKE_PER_CLASS = {"train": 16, "val": 8, "test": 8}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split


def load_keyword_audio(split: str, smoke: bool | None = None) -> KeywordAudio:
    """Load one split of the bundled synthetic keyword set as 1 s clips at 16 kHz.

    In smoke mode (``smoke=None`` follows ``th.is_smoke()``) a stratified subset is returned:
    16 clips per class for train, 8 for val and test.

    Example:
        >>> ka = load_keyword_audio("val", smoke=True)
        >>> ka.audio.shape[1], ka.classes[ka.labels[0]] in keyword_classes()
        (16000, True)
    """
    import soundfile as sf

    _check_split(split)
    smoke = config.is_smoke() if smoke is None else smoke
    folder = keywords_dir()
    rows = [r for r in read_clip_rows(folder) if r["split"] == split]
    flac = _require(folder / f"speech_{split}.flac")
    classes = keyword_classes()
    labels = np.array([classes.index(r["label"]) for r in rows], dtype=np.int64)
    if smoke:
        keep = smoke_subset(labels, SMOKE_PER_CLASS[split])
        rows = [rows[i] for i in keep]
        labels = labels[keep]
    samples = _read_speech(flac)
    audio = np.zeros((len(rows), CLIP_SAMPLES), np.float32)
    for i, r in enumerate(rows):
        start, length = int(r["start"]), int(r["length"])
        audio[i] = compose_clip(samples[start: start + length], int(r["offset"]), float(r["gain_db"]),
                                r["noise"], float(r["snr_db"]), int(r["noise_seed"]),
                                silent=r["label"] == SILENCE)
    return KeywordAudio(audio=audio, labels=labels, voices=[r["voice"] for r in rows],
                        words=[r["word"] or r["label"] for r in rows], classes=classes, split=split,
                        rows=rows, source_sha256=_dataset_fingerprint(folder))


def _read_speech(flac: Path) -> np.ndarray:
    """Decoded samples of one split's FLAC, remembered while the file is unchanged."""
    stat = flac.stat()
    return _read_speech_memo(str(flac.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=3)
def _read_speech_memo(path: str, size: int, mtime_ns: int) -> np.ndarray:
    import soundfile as sf

    samples, rate = sf.read(path, dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path} has sample rate {rate}, expected {SAMPLE_RATE}; regenerate with `{MAKE_COMMAND}`")
    samples.setflags(write=False)
    return samples


def _dataset_fingerprint(folder: Path) -> str:
    """sha256 over the files that define the set (the feature-cache key): edits invalidate it."""
    import hashlib

    digest = hashlib.sha256()
    from .manifest import file_sha256

    for name in ["clips.csv"] + [f"speech_{s}.flac" for s in SPLITS]:
        digest.update(file_sha256(_require(folder / name)).encode())
    return digest.hexdigest()
