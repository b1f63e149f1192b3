"""Offline speech engines that speak the keyword corpus: five families, one voice list each.

The keyword corpus is rendered by five *engine families*, all installable offline from
Debian's packages. A model trained on one synthesiser learns that synthesiser's sound, not
the words, so the corpus mixes families and the course tests each family left out:

========  ===========================================  ====================================
family    voices                                        Debian packages
========  ===========================================  ====================================
espeak    espeak-ng's English accents x voice variants  none: the ``espeakng-loader`` wheel
mbrola    MBROLA diphone voices through espeak-ng       ``espeak-ng mbrola mbrola-us1 ...``
          (``mb-us1..3``, ``mb-en1`` and the English     (contrib / non-free components)
          uses of the other databases, ``mb-de2-en``)
festival  Festival's English voices (kal, ked, rab,     ``festival festvox-kallpc16k
          don diphones; the slt HTS voice)              festvox-kdlpc16k festvox-rablpc16k
                                                        festvox-don festvox-us-slt-hts``
flite     Flite's built-in voices (kal, kal16, awb,     ``flite``
          rms, slt)
pico      SVOX Pico (en-US, en-GB)                      ``libttspico-utils`` (non-free)
========  ===========================================  ====================================

Festival's MBROLA-backed voices (``festvox-us1..3``, ``festvox-en1``) are left out on purpose:
they play the same diphone databases as the mbrola family, so leaving the mbrola family out
of training would not really leave its sound out. The non-English voices of Festival (Italian,
Czech, Finnish, Spanish, Catalan, Russian, Indic) and of Pico (de, es, fr, it) are left out too:
they read an English word with their own language's spelling rules, so the clip would not say
the word on its label. Given English phonemes through Pico's ``<phoneme>`` markup instead, they
were still mostly misheard by a recogniser trained on real speech (figures in ``data/README.md``).

**Enabling contrib and non-free** (Debian 12, as root): add ``contrib non-free`` to the
``Components:`` line of ``/etc/apt/sources.list.d/debian.sources`` (or to each ``deb`` line of
``/etc/apt/sources.list``), then ``apt-get update``. Only maintainers who re-render the corpus
need these engines; learners use the shipped audio.

Each engine is called as a program (``espeak-ng``, ``festival``, ``flite``, ``pico2wave``); its
WAV output is resampled to 16 kHz, trimmed to the voiced part and peak-normalised. Each call is
a fresh process, so the same word and voice give the same samples every time. Festival starts
slowly (about 2 s), so :func:`render_words` speaks all of a voice's words in one Festival run.
No maintained Python package drives these five programs, hence this small module.

Example:
    >>> FAMILIES
    ('espeak', 'mbrola', 'festival', 'flite', 'pico')
    >>> Voice("flite", "slt").name_in_corpus
    'flite:slt'
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["FAMILIES", "Voice", "EngineMissingError", "missing_engines", "require_engines",
           "family_voices", "render_words", "rendering_problem", "engine_versions", "trim_quiet", "trim_and_normalise"]

SAMPLE_RATE = 16000
FAMILIES = ("espeak", "mbrola", "festival", "flite", "pico")

# MBROLA databases with an English voice in espeak-ng (``mb-<db>-en`` uses that database with
# English rules, i.e. accented English), plus the native English ones.
MBROLA_NATIVE = ("us1", "us2", "us3", "en1")
MBROLA_ACCENTED = ("af1", "de1", "de2", "de3", "de4", "de5", "de6", "fr1", "fr4", "gr2", "hu1",
                   "nl2", "pl1", "ro1", "sw1", "sw2")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "rab_diphone", "don_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_PACKAGES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                     "rab_diphone": "festvox-rablpc16k", "don_diphone": "festvox-don",
                     "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
PICO_VOICES = ("en-US", "en-GB")
# Voices that are one speaker recorded twice go to the same split (kal at 8 and 16 kHz).
SAME_SPEAKER = {"flite:kal16": "flite:kal"}
# One person behind voices of two families: CMU's kal diphones (Festival and Flite) and the CMU
# ARCTIC speaker slt (Festival's HTS voice and Flite's). The generator keeps each person in one
# split across families, or the "unseen" test voices could have been heard in training.
SAME_PERSON = {"festival:kal_diphone": "cmu:kal", "flite:kal": "cmu:kal", "flite:kal16": "cmu:kal",
               "festival:cmu_us_slt_arctic_hts": "cmu:slt", "flite:slt": "cmu:slt"}

PROGRAMS = {"mbrola": ("espeak-ng", "espeak-ng"), "festival": ("festival", "festival"),
            "flite": ("flite", "flite"), "pico": ("pico2wave", "libttspico-utils")}
CONTRIB_HINT = ("Some engines are in Debian's contrib / non-free components: add 'contrib non-free' "
                "to the Components line of /etc/apt/sources.list.d/debian.sources, run "
                "'apt-get update', then install.")


class EngineMissingError(RuntimeError):
    """A speech engine (or one of its voices) is not installed; the message names the package."""


@dataclass(frozen=True)
class Voice:
    """One voice of one engine family: ``family`` in :data:`FAMILIES`, ``name`` the engine's own.

    Example:
        >>> Voice("mbrola", "mb-us1").speaker
        'mbrola:mb-us1'
    """

    family: str
    name: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown engine family {self.family!r}; valid: {', '.join(FAMILIES)}")

    @property
    def name_in_corpus(self) -> str:
        """``family:name``, as stored in ``clips.csv``."""
        return f"{self.family}:{self.name}"

    @property
    def speaker(self) -> str:
        """Voices of one recorded speaker share this key (they must share a split)."""
        return SAME_SPEAKER.get(self.name_in_corpus, self.name_in_corpus)

    @property
    def person(self) -> str:
        """The human behind the voice, across families (``speaker`` when no other family has them).

        Example:
            >>> Voice("flite", "kal16").person == Voice("festival", "kal_diphone").person
            True
        """
        return SAME_PERSON.get(self.name_in_corpus, self.speaker)

    def __str__(self) -> str:
        return self.name_in_corpus


def _mbrola_database_present(database: str) -> bool:
    return any((Path(root) / database / database).exists() or (Path(root) / database).is_file()
               for root in ("/usr/share/mbrola", "/usr/share/mbrola/voices"))


def family_voices(family: str, espeak_voices: Sequence[str] = ()) -> list[Voice]:
    """Every voice the corpus uses from ``family``, in a fixed order.

    The espeak family's voices are chosen by the generator (accent + variant names) and passed
    in as ``espeak_voices``; the other families have fixed lists.

    Example:
        >>> [v.name for v in family_voices("pico")]
        ['en-US', 'en-GB']
    """
    if family == "espeak":
        return [Voice("espeak", v) for v in espeak_voices]
    if family == "mbrola":
        return [Voice("mbrola", f"mb-{d}") for d in MBROLA_NATIVE] + \
               [Voice("mbrola", f"mb-{d}-en") for d in MBROLA_ACCENTED]
    if family == "festival":
        return [Voice("festival", v) for v in FESTIVAL_VOICES]
    if family == "flite":
        return [Voice("flite", v) for v in FLITE_VOICES]
    if family == "pico":
        return [Voice("pico", v) for v in PICO_VOICES]
    raise ValueError(f"unknown engine family {family!r}; valid: {', '.join(FAMILIES)}")


def missing_engines(families: Sequence[str]) -> dict[str, list[str]]:
    """``{family: [Debian packages to install]}`` for each family that cannot render here.

    Example:
        >>> missing_engines(["espeak"])
        {}
    """
    missing: dict[str, list[str]] = {}
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown engine family {family!r}; valid: {', '.join(FAMILIES)}")
        if family == "espeak":
            continue  # the espeakng-loader wheel (requirements.txt) carries the library
        program, package = PROGRAMS[family]
        need = [] if shutil.which(program) else [package]
        if family == "mbrola":
            if not shutil.which("mbrola"):
                need.append("mbrola")
            for database in MBROLA_NATIVE + MBROLA_ACCENTED:
                if not _mbrola_database_present(database):
                    need.append(f"mbrola-{database}")
        elif family == "festival":
            for voice, pkg in FESTIVAL_PACKAGES.items():
                if not any(Path(root).glob(f"*/{voice}")
                           for root in ("/usr/share/festival/voices", "/usr/lib/festival/voices")):
                    need.append(pkg)
        if need:
            missing[family] = need
    return missing


def require_engines(families: Sequence[str]) -> None:
    """Raise :class:`EngineMissingError` naming the packages to install when any family is missing.

    Example:
        >>> require_engines(["espeak"])  # the wheel is always there
    """
    missing = missing_engines(families)
    if missing:
        packages = sorted({p for pkgs in missing.values() for p in pkgs})
        detail = "; ".join(f"{family}: {', '.join(pkgs)}" for family, pkgs in missing.items())
        raise EngineMissingError(
            f"speech engines missing for {', '.join(missing)} ({detail}). Install them with "
            f"`apt-get install {' '.join(packages)}` (as root; run `apt-get update` first). "
            f"{CONTRIB_HINT} Or render without those families (--families).")


def trim_quiet(audio: np.ndarray, threshold_db: float = -40.0, margin: int = 160) -> np.ndarray:
    """Cut leading/trailing samples whose 10 ms envelope is below ``threshold_db`` re its peak.

    Example:
        >>> x = np.zeros(3200); x[1000:2000] = 0.5
        >>> 1000 <= len(trim_quiet(x)) <= 1500, len(trim_quiet(np.zeros(10)))
        (True, 0)
    """
    x = np.asarray(audio)
    if x.size == 0:
        return x
    envelope = np.convolve(np.abs(x), np.ones(160) / 160, mode="same")
    peak = envelope.max()
    if peak <= 1e-6:
        return x[:0]
    loud = np.nonzero(envelope > peak * 10 ** (threshold_db / 20))[0]
    return x[max(loud[0] - margin, 0): loud[-1] + margin]


def trim_and_normalise(audio: np.ndarray, threshold_db: float = -40.0, margin: int = 160) -> np.ndarray:
    """:func:`trim_quiet`, then peak 0.9; an empty array for silence (the caller counts and drops it).

    Example:
        >>> x = np.zeros(3200, np.float32); x[1000:2000] = 0.5
        >>> y = trim_and_normalise(x)
        >>> 1000 <= len(y) <= 1500, round(float(abs(y).max()), 3)
        (True, 0.9)
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return np.zeros(0, np.float32)
    x = trim_quiet(x, threshold_db, margin)
    if x.size == 0:
        return np.zeros(0, np.float32)
    return (x * (0.9 / np.abs(x).max())).astype(np.float32)


def _read_wav_16k(path: Path) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = np.gcd(int(rate), SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, int(rate) // g)
    return audio


def _run(cmd: list[str], what: str) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=120)
    except FileNotFoundError as exc:
        raise EngineMissingError(f"{cmd[0]} is not installed ({what}). {CONTRIB_HINT}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {done.returncode}): {done.stderr.decode(errors='replace')[-300:]}")


def _festival_script(voice: str, words: Sequence[str], folder: Path) -> str:
    lines = [f"(voice_{voice})"]
    for i, word in enumerate(words):
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{word}")) "{folder / f"{i}.wav"}" \'riff)')
    return "\n".join(lines) + "\n"


def rendering_problem(raw: np.ndarray) -> str | None:
    """``"silent"``, ``"clipped"`` or None for an engine's raw output (float, full scale 1.0).

    Example:
        >>> rendering_problem(np.zeros(1600)), rendering_problem(np.ones(1600)), rendering_problem(0.5 * np.sin(np.arange(1600.)))
        ('silent', 'clipped', None)
    """
    x = np.asarray(raw, dtype=np.float64)
    if x.size < 160 or not np.all(np.isfinite(x)) or np.abs(x).max() < 1e-3:
        return "silent"
    if np.mean(np.abs(x) >= 0.999) > 0.001:  # more than 1 sample in 1000 at full scale
        return "clipped"
    return None


def render_words(voice: Voice, words: Sequence[str], raw: bool = False) -> list[np.ndarray]:
    """Speak each of ``words`` with ``voice``; float32 16 kHz, trimmed, peak 0.9 (empty if silent).

    ``raw=True`` returns the engine's output at 16 kHz untouched, for :func:`rendering_problem`.

    Example:
        >>> [len(a) > 1600 for a in render_words(Voice("espeak", "en-us+m3"), ["yes", "go"])]
        [True, True]
    """
    finish = (lambda a: np.asarray(a, np.float32)) if raw else trim_and_normalise
    for word in words:
        if not isinstance(word, str) or not word.strip() or not word.replace(" ", "").isalpha():
            raise ValueError(f"words must be plain alphabetic text, got {word!r}")
    if voice.family == "espeak":
        from .keywords import EspeakVoice, render_word

        accent, _, variant = voice.name.partition("+")
        return [finish(render_word(w, EspeakVoice(accent, variant), trim=False, normalise=False)) for w in words]
    require_engines([voice.family])
    out: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="tinyml-tts-") as tmp:
        folder = Path(tmp)
        if voice.family == "festival":
            script = folder / "say.scm"
            script.write_text(_festival_script(voice.name, words, folder))
            _run(["festival", "-b", str(script)], f"festival voice {voice.name}")
        for i, word in enumerate(words):
            wav = folder / f"{i}.wav"
            if voice.family == "mbrola":
                _run(["espeak-ng", "-v", voice.name, "-w", str(wav), word], f"espeak-ng MBROLA voice {voice.name}")
            elif voice.family == "flite":
                _run(["flite", "-voice", voice.name, "-t", word, "-o", str(wav)], f"flite voice {voice.name}")
            elif voice.family == "pico":
                _run(["pico2wave", "-l", voice.name, "-w", str(wav), word], f"pico2wave voice {voice.name}")
            out.append(finish(_read_wav_16k(wav)) if wav.exists() and wav.stat().st_size > 44
                       else np.zeros(0, np.float32))
    return out


def _package_version(package: str) -> str:
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                              timeout=30, env={**os.environ, "LC_ALL": "C"})
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.decode().strip() or "unknown"


def engine_versions(families: Sequence[str]) -> dict[str, dict[str, str]]:
    """Debian package versions behind each family (for ``info.json`` and ``data/README.md``).

    Example:
        >>> "espeakng-loader" in engine_versions(["espeak"])["espeak"]
        True
    """
    from importlib.metadata import version

    packages = {"mbrola": ["espeak-ng", "mbrola"] + [f"mbrola-{d}" for d in MBROLA_NATIVE + MBROLA_ACCENTED],
                "festival": ["festival"] + list(FESTIVAL_PACKAGES.values()),
                "flite": ["flite"], "pico": ["libttspico-utils"]}
    out: dict[str, dict[str, str]] = {}
    for family in families:
        if family == "espeak":
            out[family] = {"espeakng-loader": version("espeakng-loader")}
        else:
            out[family] = {p: _package_version(p) for p in packages[family]}
    return out
