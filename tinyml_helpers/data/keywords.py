"""Synthetic keyword corpus: five offline speech-engine families, many voices, 16 kHz.

The classes follow the 12-class MLPerf Tiny keyword-spotting setup (Banbury et al., 2021,
"MLPerf Tiny Benchmark", built on Warden 2018, "Speech Commands"): the ten keywords
*yes, no, up, down, left, right, on, off, stop, go*, plus ``_silence_`` (background noise
only) and ``_unknown_`` (any other word: the 25 auxiliary words of Speech Commands v2 and
16 everyday words such as *water*, *music*, *window*).

**Why five engines.** A model trained on espeak-ng alone learned espeak-ng's formant sound:
about 93 % on unseen espeak-ng voices, 30-42 % on other engines' voices. The corpus is
therefore spoken by five engine families (:mod:`tinyml_helpers.data.engines`): espeak-ng,
MBROLA voices through espeak-ng, Festival, Flite and SVOX Pico.

**How a clip is made.** Each voice says each of its words once (a *rendering*: trimmed,
peak-normalised, 16 kHz, stored). A *clip* is a take of a rendering, made when it is loaded:
speaking rate x0.8-1.3 and pitch +-15 % (librosa's phase vocoder), reverberation in one of 32
simulated rooms (pyroomacoustics) or dry, a seeded position and gain in the 1 s clip, and
background noise at a seeded SNR (10-40 dB). ``_silence_`` clips are background noise alone.
Every parameter of a take is a column of ``clips.csv``, drawn from the generator's seed.

**Splits.** Within each engine family, speakers are split between train, val and test, so no
test voice is heard in training; each clip also records its family, so a model can be trained
without one family and tested on it (leave-one-family-out, ``scripts/loeo_keywords.py``).

**Storage.** Per split one FLAC file holds the renderings one after the other (lossless at the
stored bit depth, so every platform decodes the same samples); ``clips.csv`` holds one row per
clip; ``info.json`` the settings, counts, voices, engine package versions and dropped renderings.

**Determinism.** libespeak-ng keeps a pitch-flutter counter in a C ``static`` that is never
reset, so a word's exact samples depend on what the same process rendered before it; the
espeak family is therefore rendered in one fixed order inside a fresh worker process. The other
engines run as one program call per voice. Same seed, same bytes.

What is our own here and why: the take recipe (which library call, in which order, with which
seeded parameters) and the storage format; the DSP itself is librosa's and pyroomacoustics'.

Licence note: see ``data/README.md`` for each engine's terms; the generated audio is released
as CC0.

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
from ..files import private_dir, sha256_file
from . import augment, engines

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
    "room_impulse_response",
    "make_take",
    "compose_clip",
    "clip_from_row",
    "KeywordAudio",
    "ClipsOnDemand",
    "load_keyword_audio",
    "keywords_dir",
]

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE  # one second
ESPEAK_RATE = 22050
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
# The 25 auxiliary words of Speech Commands v2 (Warden 2018), then 16 everyday words of our own.
UNKNOWN_WORDS = ["backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward",
                 "four", "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila",
                 "six", "three", "tree", "two", "visual", "wow", "zero",
                 # More words, so "unknown" means any word, not 25 particular ones.
                 "yellow", "hello", "water", "music", "window", "table", "orange", "paper",
                 "coffee", "garden", "button", "morning", "number", "thanks", "picture", "kitchen"]
# English accents shipped with espeak-ng (en-Shaw is a spelling reform, not an accent).
ACCENTS = ["en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-gb-x-rp", "en-us-nyc"]
SPLITS = ("train", "val", "test")
BACKGROUND_KINDS = ("white", "pink", "brown", "hum")
FORMAT_VERSION = 2
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


def render_word(word: str, voice: EspeakVoice | str = "en-us", rate: int | None = None,
                pitch: int | None = None, pitch_range: int | None = None,
                trim: bool = True, seed: int = 0, normalise: bool = True) -> np.ndarray:
    """Speak ``word`` with espeak-ng; return float32 mono audio at 16 kHz, peak 0.9.

    ``normalise=False`` returns the engine's level unchanged (and silence as zeros) so a
    caller can judge the rendering itself.

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
        audio = engines.trim_quiet(audio)
    if not normalise:
        return audio.astype(np.float32)
    peak = np.abs(audio).max() if audio.size else 0.0
    if peak <= 0:
        raise RuntimeError(f"espeak-ng produced silence for {word!r} with voice {name!r}")
    return (audio * (0.9 / peak)).astype(np.float32)


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class GeneratorSettings:
    """Every knob of the bundled keyword corpus. Same settings + seed -> same files.

    Voices come from ``families`` (see :mod:`tinyml_helpers.data.engines`); within each family
    speakers are split ``val_fraction`` / ``test_fraction`` / rest (train), so test voices are
    never heard in training. Each family gets about ``clips_per_family`` clips: a family with few
    voices says each word in more *takes*; a take is the same rendering with its own speaking
    rate, pitch, room, position, gain and background noise (applied when the clip is loaded, so
    only one rendering per voice and word is stored). ``store_bits`` is the precision kept in
    the FLAC files.
    """

    seed: int = 2024
    families: tuple[str, ...] = engines.FAMILIES
    clips_per_family: int = 1200
    espeak_variants: tuple[str, ...] | None = None  # None = every variant in the wheel
    unknown_renderings_per_family: int = 160
    min_unknown_per_voice: int = 3
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    rate_range: tuple[float, float] = (0.8, 1.3)
    pitch_ratio_range: tuple[float, float] = (0.85, 1.15)
    reverb_probability: float = 0.5
    gain_db_range: tuple[float, float] = (-24.0, -3.0)
    snr_db_range: tuple[float, float] = (10.0, 40.0)
    silence_level_db_range: tuple[float, float] = (-65.0, -25.0)
    store_bits: int = 10

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class Rendering:
    """One word said by one voice: the unit of stored audio."""

    split: str
    family: str
    voice: str
    word: str
    start: int = 0
    length: int = 0


@dataclass
class ClipPlan:
    """One row of ``clips.csv``: which rendering, and how the take is made from it."""

    split: str
    family: str
    label: str
    word: str
    voice: str
    speaker: str
    rendering: int  # index into the plan's renderings; -1 for silence
    rate: float
    pitch_semitones: float
    room: int  # -1 = dry (close microphone)
    offset_fraction: float
    gain_db: float
    noise: str
    snr_db: float
    noise_seed: int
    start: int = 0
    length: int = 0


CSV_FIELDS = ["split", "family", "label", "word", "voice", "speaker", "start", "length", "rate",
              "pitch_semitones", "room", "offset_fraction", "gain_db", "noise", "snr_db", "noise_seed"]


@dataclass
class KeywordPlan:
    renderings: list[Rendering]
    clips: list[ClipPlan]
    voices: dict[str, list[engines.Voice]]


def _espeak_voice_names(settings: GeneratorSettings, rng: np.random.Generator) -> list[str]:
    variants = list(settings.espeak_variants or list_voice_variants())
    return [f"{rng.choice(ACCENTS)}+{variant}" for variant in variants]


def _split_speakers(speakers: list[str], settings: GeneratorSettings,
                    rng: np.random.Generator) -> dict[str, str]:
    """Speaker -> split within one family; families with 2 speakers get no val speaker."""
    order = [speakers[i] for i in rng.permutation(len(speakers))]
    n = len(order)
    n_test = max(1, round(settings.test_fraction * n)) if n >= 2 else 0
    n_val = max(1, round(settings.val_fraction * n)) if n >= 3 else 0
    return {s: "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
            for rank, s in enumerate(order)}


def plan_keyword_set(settings: GeneratorSettings = GeneratorSettings()) -> KeywordPlan:
    """Decide every rendering and every clip (who says what, how, where, over which noise).

    Example:
        >>> plan = plan_keyword_set(GeneratorSettings(families=("espeak",), clips_per_family=36,
        ...                         espeak_variants=("m1", "f1", "m2")))
        >>> sorted({c.split for c in plan.clips}), len(plan.clips)
        (['test', 'train', 'val'], 36)
    """
    unknown_families = [f for f in settings.families if f not in engines.FAMILIES]
    if unknown_families or not settings.families:
        raise ValueError(f"families must be a non-empty subset of {engines.FAMILIES}, got {settings.families}")
    rng = np.random.default_rng(settings.seed)
    espeak_names = _espeak_voice_names(settings, rng) if "espeak" in settings.families else []
    renderings: list[Rendering] = []
    clips: list[ClipPlan] = []
    voices: dict[str, list[engines.Voice]] = {}
    split_of_person: dict[str, str] = {}
    for family in settings.families:  # fixed order: the files come out the same every time
        family_voices = engines.family_voices(family, espeak_names)
        voices[family] = family_voices
        speakers = sorted({v.speaker for v in family_voices})
        if family == "espeak" and len(speakers) < 3:
            raise ValueError("the espeak family needs at least 3 voice variants for a voice-disjoint split")
        split_of = _split_speakers(speakers, settings, rng)
        for voice in family_voices:  # a person another family already placed stays in that split
            split_of[voice.speaker] = split_of_person.setdefault(voice.person, split_of[voice.speaker])
        n_unknown = min(len(UNKNOWN_WORDS), max(settings.min_unknown_per_voice,
                                               -(-settings.unknown_renderings_per_family // len(family_voices))))
        takes = max(1, round(settings.clips_per_family / (len(keyword_classes()) * len(family_voices))))
        for voice in family_voices:
            split = split_of[voice.speaker]
            unknown = [str(w) for w in rng.choice(UNKNOWN_WORDS, n_unknown, replace=False)]
            first = len(renderings)
            renderings += [Rendering(split, family, voice.name_in_corpus, w) for w in KEYWORDS + unknown]
            for take in range(takes):
                said = [(w, first + i) for i, w in enumerate(KEYWORDS)]
                said.append((UNKNOWN, first + len(KEYWORDS) + take % n_unknown))
                said.append((SILENCE, -1))
                for label, index in said:
                    silent = label == SILENCE
                    semitones = 12 * np.log2(rng.uniform(*settings.pitch_ratio_range))
                    clips.append(ClipPlan(
                        split=split, family=family, label=label,
                        word="" if silent else renderings[index].word,
                        voice="" if silent else voice.name_in_corpus,
                        speaker="" if silent else voice.speaker, rendering=index,
                        rate=round(float(rng.uniform(*settings.rate_range)), 3),
                        pitch_semitones=round(float(semitones), 3),
                        room=int(rng.integers(N_ROOMS)) if rng.random() < settings.reverb_probability else -1,
                        offset_fraction=round(float(rng.uniform()), 4),
                        gain_db=round(float(rng.uniform(*(settings.silence_level_db_range if silent
                                                         else settings.gain_db_range))), 2),
                        noise=str(rng.choice(BACKGROUND_KINDS)),
                        snr_db=round(float(rng.uniform(*settings.snr_db_range)), 2),
                        noise_seed=int(rng.integers(2**31 - 1))))
    return KeywordPlan(renderings, clips, voices)


def _render_espeak(renderings: Sequence[Rendering]) -> tuple[list[np.ndarray], str]:
    """Render the espeak family in order (runs in a fresh process, see module docstring)."""
    out = []
    for r in renderings:
        accent, _, variant = r.voice.removeprefix("espeak:").partition("+")
        raw = render_word(r.word, EspeakVoice(accent, variant), trim=False, normalise=False)
        out.append(raw)
    return out, _Espeak.get().version


def _render_all(plan: KeywordPlan, in_fresh_process: bool,
                progress: bool) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Raw audio of every rendering (index-aligned with ``plan.renderings``), and a report."""
    audio: list[np.ndarray | None] = [None] * len(plan.renderings)
    espeak_idx = [i for i, r in enumerate(plan.renderings) if r.family == "espeak"]
    report: dict[str, Any] = {}
    if espeak_idx:
        todo = [plan.renderings[i] for i in espeak_idx]
        if in_fresh_process:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                raws, version = pool.submit(_render_espeak, todo).result()
        else:
            raws, version = _render_espeak(todo)
        report["espeak_ng_version"] = version
        for i, raw in zip(espeak_idx, raws):
            audio[i] = raw
    for family, voices in plan.voices.items():
        if family == "espeak":
            continue
        for voice in voices:
            idx = [i for i, r in enumerate(plan.renderings) if r.voice == voice.name_in_corpus]
            raws = engines.render_words(voice, [plan.renderings[i].word for i in idx], raw=True)
            for i, raw in zip(idx, raws):
                audio[i] = raw
            if progress:
                print(f"  {voice.name_in_corpus}: {len(idx)} words", flush=True)
    return [a if a is not None else np.zeros(0) for a in audio], report


def generate_keyword_set(settings: GeneratorSettings = GeneratorSettings(), in_fresh_process: bool = True,
                         progress: bool = False) -> tuple[KeywordPlan, list[np.ndarray], dict[str, Any]]:
    """Plan and render the corpus; returns (plan, trimmed 16 kHz words, report).

    Renderings that come out silent or clipped are dropped with their clips; ``report`` counts
    them per family (``dropped``). An engine that is not installed stops the run before anything
    is rendered, naming the Debian package to install.

    Example:
        >>> s = GeneratorSettings(families=("espeak",), clips_per_family=36, espeak_variants=("m1", "f1", "m2"))
        >>> plan, words, report = generate_keyword_set(s, in_fresh_process=False)
        >>> len(plan.clips), len(words) == len(plan.renderings), report["dropped"]
        (36, True, {'espeak': {'silent': 0, 'clipped': 0}})
    """
    engines.require_engines(settings.families)
    plan = plan_keyword_set(settings)
    raws, report = _render_all(plan, in_fresh_process, progress)
    words: list[np.ndarray] = []
    dropped = {f: {"silent": 0, "clipped": 0} for f in settings.families}
    bad: set[int] = set()
    for i, (r, raw) in enumerate(zip(plan.renderings, raws)):
        problem = engines.rendering_problem(raw)
        if problem:
            dropped[r.family][problem] += 1
            bad.add(i)
            words.append(np.zeros(0, np.float32))
        else:
            words.append(engines.trim_and_normalise(raw)[: CLIP_SAMPLES - 160])
    if bad:
        plan.clips = [c for c in plan.clips if c.rendering not in bad]
    report["dropped"] = dropped
    report["engine_versions"] = engines.engine_versions(settings.families)
    return plan, words, report


def _quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """float in [-1, 1) -> int16 that keeps only ``bits`` bits (FLAC drops the unused ones)."""
    step = 2 ** (16 - bits)
    return (np.clip(np.round(x * 32768.0 / step), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            * step).astype(np.int16)


def write_keyword_set(folder: str | os.PathLike, settings: GeneratorSettings = GeneratorSettings(),
                      in_fresh_process: bool = True, progress: bool = False) -> dict[str, Any]:
    """Generate the corpus into ``folder``: ``speech_<split>.flac``, ``clips.csv``, ``info.json``.

    Everything is written into a temporary sibling folder first and renamed into place at the
    end, so an interrupted run never leaves a half-rendered corpus. Returns the info dict.

    Example:
        >>> import tempfile
        >>> s = GeneratorSettings(families=("espeak",), clips_per_family=36, espeak_variants=("m1", "f1", "m2"))
        >>> info = write_keyword_set(Path(tempfile.mkdtemp()) / "kw", s, in_fresh_process=False)
        >>> info["counts"]["total"]
        36
    """
    import shutil

    import soundfile as sf

    folder = Path(folder)
    plan, words, report = generate_keyword_set(settings, in_fresh_process, progress)
    with private_dir(folder) as staging:
        used = {c.rendering for c in plan.clips}
        for split in SPLITS:
            chunks, cursor = [], 0
            for i, (r, w) in enumerate(zip(plan.renderings, words)):
                if r.split != split or i not in used:
                    continue
                r.start, r.length = cursor, len(w)
                chunks.append(_quantize(w, settings.store_bits))
                cursor += len(w)
            samples = np.concatenate(chunks) if chunks else np.zeros(1, np.int16)
            sf.write(staging / f"speech_{split}.flac", samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        for c in plan.clips:
            if c.rendering >= 0:
                c.start, c.length = plan.renderings[c.rendering].start, plan.renderings[c.rendering].length
        with open(staging / "clips.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, lineterminator="\n")
            writer.writeheader()
            for c in plan.clips:
                writer.writerow({k: getattr(c, k) for k in CSV_FIELDS})
        info = _describe(plan, settings, report, staging)
        (staging / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
            folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(folder)
    return info


def _describe(plan: KeywordPlan, settings: GeneratorSettings, report: dict[str, Any], folder: Path) -> dict[str, Any]:
    counts: dict[str, Any] = {"total": len(plan.clips)}
    voices: dict[str, list[str]] = {}
    families: dict[str, Any] = {}
    for split in SPLITS:
        rows = [c for c in plan.clips if c.split == split]
        counts[split] = {c: sum(p.label == c for p in rows) for c in keyword_classes()}
        counts[split]["total"] = len(rows)
        voices[split] = sorted({p.voice for p in rows if p.voice})
    speakers = {s: {p.speaker for p in plan.clips if p.split == s and p.speaker} for s in SPLITS}
    overlap = (speakers["train"] & (speakers["val"] | speakers["test"])) | (speakers["val"] & speakers["test"])
    if overlap:
        raise AssertionError(f"speakers leak between splits: {sorted(overlap)}")
    for family in settings.families:
        rows = [c for c in plan.clips if c.family == family]
        families[family] = {"clips": {s: sum(c.split == s for c in rows) for s in SPLITS},
                            "voices": {s: sorted({c.voice for c in rows if c.split == s and c.voice}) for s in SPLITS},
                            "dropped_renderings": report["dropped"][family],
                            "packages": report["engine_versions"][family]}
    return {
        "format_version": FORMAT_VERSION,
        "what": "synthetic 12-class keyword corpus (MLPerf Tiny KWS classes), five offline speech-engine "
                "families, 16 kHz",
        "made_by": MAKE_COMMAND,
        "espeak_ng_version": report.get("espeak_ng_version", ""),
        "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES,
        "classes": keyword_classes(),
        "unknown_words": UNKNOWN_WORDS,
        "settings": settings.to_dict(),
        "counts": counts,
        "voices": voices,
        "families": families,
        "files": {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
                  for name in [f"speech_{s}.flac" for s in SPLITS] + ["clips.csv"]},
        "licence": "CC0-1.0 for the generated audio; see data/README.md for each engine's terms",
    }


# ----------------------------------------------------------------------------- rooms and takes

N_ROOMS = 32
ROOM_SEED = 7919


@functools.lru_cache(maxsize=N_ROOMS)
def room_impulse_response(room: int) -> np.ndarray:
    """Impulse response of simulated room ``room`` (0..31), direct path first and at 1.0.

    The rooms are shoebox rooms simulated by pyroomacoustics' image-source method (seeded):
    3-9 m long, reverberation time 0.1-0.5 s, talker 0.3-2 m from the microphone.

    Example:
        >>> h = room_impulse_response(0)
        >>> float(h[0]), h.dtype
        (1.0, dtype('float32'))
    """
    import pyroomacoustics as pra

    if not 0 <= int(room) < N_ROOMS:
        raise ValueError(f"room must be in 0..{N_ROOMS - 1}, got {room}")
    rng = np.random.default_rng(ROOM_SEED + int(room))
    size = np.array([rng.uniform(3, 9), rng.uniform(2.5, 7), rng.uniform(2.4, 3.5)])
    rt60 = rng.uniform(0.1, 0.5)
    absorption, max_order = pra.inverse_sabine(rt60, size)
    shoebox = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                          max_order=min(int(max_order), 14))
    mic = size * rng.uniform(0.2, 0.8, 3)
    for _ in range(100):  # a talker position inside the room, 0.3-2 m away
        direction = rng.normal(size=3)
        source = mic + direction / np.linalg.norm(direction) * rng.uniform(0.3, 2.0)
        if np.all(source > 0.2) and np.all(source < size - 0.2):
            break
    else:
        source = size / 2
    shoebox.add_source(source)
    shoebox.add_microphone(mic)
    shoebox.compute_rir()
    h = np.asarray(shoebox.rir[0][0], np.float64)
    direct = int(np.argmax(np.abs(h)))
    h = h[direct:] / h[direct]
    return h[: SAMPLE_RATE // 2].astype(np.float32)


def make_take(word: np.ndarray, rate: float = 1.0, pitch_semitones: float = 0.0, room: int = -1) -> np.ndarray:
    """One take of a rendered word: speaking rate ``rate`` (x), pitch shift, room reverberation.

    Uses librosa's phase-vocoder time stretch and pitch shift, then the simulated room's
    impulse response; the result is cut to fit a 1 s clip and peak-normalised to 0.9.

    Example:
        >>> w = np.sin(np.arange(8000) * 0.1).astype(np.float32)
        >>> len(make_take(w, rate=1.25)) < len(w) < len(make_take(w, rate=0.8))
        True
    """
    import librosa
    from scipy.signal import fftconvolve

    x = np.asarray(word, dtype=np.float32)
    if x.size == 0:
        raise ValueError("cannot make a take of an empty word")
    if not (0.5 <= rate <= 2.0 and -12 <= pitch_semitones <= 12):
        raise ValueError(f"rate must be in 0.5..2 and pitch_semitones in -12..12, got {rate}, {pitch_semitones}")
    n_fft = 512
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    if abs(rate - 1.0) > 1e-3:
        x = librosa.effects.time_stretch(x, rate=float(rate), n_fft=n_fft)
    if abs(pitch_semitones) > 1e-3:
        x = librosa.effects.pitch_shift(x, sr=SAMPLE_RATE, n_steps=float(pitch_semitones), n_fft=n_fft)
    if room >= 0:
        x = fftconvolve(x, room_impulse_response(room))
        x = engines.trim_and_normalise(x, threshold_db=-45.0) if x.size else x
    x = x[: CLIP_SAMPLES - 160]
    peak = float(np.abs(x).max()) if x.size else 0.0
    return (x * (0.9 / peak)).astype(np.float32) if peak > 0 else x.astype(np.float32)


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


def clip_from_row(samples: np.ndarray, row: dict[str, str]) -> np.ndarray:
    """The 1 s clip that one ``clips.csv`` row describes, from its split's decoded samples.

    Example:
        >>> row = dict(label="yes", start="0", length="4000", rate="1.1", pitch_semitones="1.0", room="3",
        ...            offset_fraction="0.5", gain_db="-6", noise="pink", snr_db="20", noise_seed="1")
        >>> clip_from_row(np.sin(np.arange(4000) * 0.2).astype(np.float32), row).shape
        (16000,)
    """
    silent = row["label"] == SILENCE
    if silent:
        take = np.zeros(0, np.float32)
    else:
        start, length = int(row["start"]), int(row["length"])
        take = make_take(samples[start: start + length], float(row["rate"]), float(row["pitch_semitones"]),
                         int(row["room"]))
    offset = int(round(float(row["offset_fraction"]) * (CLIP_SAMPLES - len(take))))
    return compose_clip(take, offset, float(row["gain_db"]), row["noise"], float(row["snr_db"]),
                        int(row["noise_seed"]), silent=silent)


@dataclass
class KeywordAudio:
    """1 s clips of one split with their labels and who spoke them.

    ``audio`` float32 (N, 16000) in [-1, 1] (or, loaded with ``on_demand=True``, a
    :class:`ClipsOnDemand` whose ``audio[i]`` is one such clip); ``labels`` int64 (N,) indexing ``classes``;
    ``voices`` the voice per clip (``family:name``; "" for silence); ``families`` the engine
    family per clip; ``words`` the spoken word; ``rows`` the full metadata rows from
    ``clips.csv``. Listen in a notebook with ``IPython.display.Audio(ka.audio[i], rate=ka.sample_rate)``.
    """

    audio: Any
    labels: np.ndarray
    voices: list[str]
    words: list[str]
    classes: list[str]
    split: str
    sample_rate: int = SAMPLE_RATE
    rows: list[dict[str, str]] = field(default_factory=list, repr=False)
    source_sha256: str = ""
    families: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"KeywordAudio(split={self.split!r}, clips={len(self)}, voices={len(set(self.voices) - {''})}, "
                f"families={sorted(set(self.families))}, classes={len(self.classes)}, "
                f"sample_rate={self.sample_rate})")


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


def split_rows(split: str, smoke: bool) -> list[dict[str, str]]:
    """The ``clips.csv`` rows :func:`load_keyword_audio` returns for ``split``, in its order.

    Example:
        >>> len(split_rows("test", smoke=True))
        96
    """
    _check_split(split)
    rows = [r for r in read_clip_rows(keywords_dir()) if r["split"] == split]
    if smoke:
        classes = keyword_classes()
        labels = np.array([classes.index(r["label"]) for r in rows], dtype=np.int64)
        rows = [rows[i] for i in smoke_subset(labels, SMOKE_PER_CLASS[split])]
    return rows


class ClipsOnDemand(Sequence):
    """The 1 s clips that ``clips.csv`` ``rows`` describe, each rebuilt from ``flac`` when indexed.

    For code that plays one clip at a time (a widget): the test split as one float32 array is
    about 100 MB, which a notebook near its memory budget cannot spare. Made by
    ``load_keyword_audio(split, on_demand=True)``, whose ``audio[i]`` then equals the array's row i.

    Example:
        >>> clips = load_keyword_audio("test", smoke=True, on_demand=True).audio
        >>> len(clips), clips[0].shape
        (96, (16000,))
    """

    def __init__(self, rows: Sequence[dict[str, str]], flac: Path) -> None:
        self.rows, self.flac = list(rows), Path(flac)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"index one clip with an integer, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip {index} of a split with {len(self)} clips")
        return clip_from_row(_read_speech(self.flac), self.rows[int(index)])


def load_keyword_audio(split: str, smoke: bool | None = None, on_demand: bool = False) -> KeywordAudio:
    """Load one split of the bundled synthetic keyword corpus as 1 s clips at 16 kHz.

    In smoke mode (``smoke=None`` follows ``th.is_smoke()``) a stratified subset is returned:
    16 clips per class for train, 8 for val and test. With ``on_demand=True`` ``audio`` is a
    :class:`ClipsOnDemand` (each clip made when indexed) instead of an (N, 16000) array.

    Example:
        >>> ka = load_keyword_audio("val", smoke=True)
        >>> ka.audio.shape[1], ka.classes[ka.labels[0]] in keyword_classes()
        (16000, True)
    """
    smoke = config.is_smoke() if smoke is None else smoke
    folder = keywords_dir()
    rows = split_rows(split, smoke)
    classes = keyword_classes()
    labels = np.array([classes.index(r["label"]) for r in rows], dtype=np.int64)
    flac = _require(folder / f"speech_{split}.flac")
    audio: Any
    if on_demand:
        audio = ClipsOnDemand(rows, flac)
    else:
        samples = _read_speech(flac)
        audio = np.zeros((len(rows), CLIP_SAMPLES), np.float32)
        for i, r in enumerate(rows):
            audio[i] = clip_from_row(samples, r)
    return KeywordAudio(audio=audio, labels=labels, voices=[r["voice"] for r in rows],
                        words=[r["word"] or r["label"] for r in rows], classes=classes, split=split,
                        rows=rows, source_sha256=_dataset_fingerprint(folder),
                        families=[r["family"] for r in rows])


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
    digest.update(f"take-v{TAKE_VERSION}".encode())
    return digest.hexdigest()


# Bump when make_take or the room simulation changes: cached features of old takes are then stale.
TAKE_VERSION = 2
