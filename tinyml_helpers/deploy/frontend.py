"""The course's log-mel front end for the firmware: constant tables generated offline, and the
host reference the C code must reproduce.

The C side (``kernels/tm_frontend.c``) turns 640 int16 PCM samples into the 40 int8 values the
network reads, exactly as :func:`tinyml_helpers.data.features.compute_features` (``"logmel"``)
followed by :meth:`~tinyml_helpers.deploy.codegen.Int8Model.quantize_input` do on the host:

1. window: ``pcm[n] * (hann[n] / 32768)`` -- librosa sees ``pcm / 32768``; dividing by a
   power of two is exact, so folding it into the window table changes no rounding (librosa
   multiplies by the window and transforms in float64, the chip in float32: that, and the
   summation order of the FFT and the mel sums, are where the rare one-step differences
   come from);
2. a 640-point real FFT as a 320-point complex FFT (mixed radix 5 x 4 x 4 x 4, Stockham
   self-sorting, float32 on the Cortex-M4F's FPU) plus the real-input split. 640 is
   ``n_fft`` of the course's features; zero-padding to 1024 would change the frequency grid,
   so the features would no longer be the ones the network was trained on;
3. power ``re^2 + im^2`` of bins 0..320 and librosa's Slaney mel weights (40 bands,
   20-8000 Hz), stored sparsely (only each band's non-zero run of bins);
4. ``10 log10(max(S, 1e-10))``, ``(dB - LOGMEL_MEAN_DB) / LOGMEL_STD_DB`` and the int8
   quantisation ``round_half_even(x / scale) + zp`` are one monotone map from the mel power
   S to an int8 level. So instead of a ``log10`` on the chip, the generator finds offline,
   by bisection over float32 values, the smallest S that reaches each of the 255 level
   boundaries with the host's own float32 arithmetic. The chip then needs 8 comparisons per
   band (a binary search in a 1 KiB table) and its result equals the host's for every S;
   the only differences left come from float32 rounding in the FFT and the mel sums.

Written for this course: no maintained, pip-installable C source computes librosa's log-mel
features on a microcontroller (TFLite Micro's micro_speech front end is a different,
fixed-point feature with noise reduction and PCAN gain control, so a model trained on
librosa features would not read it).

Example:
    >>> spec = FrontendSpec.logmel(input_scale=0.04, input_zero_point=-10)
    >>> spec.n_fft, spec.bins, fft_radices(spec.n_fft // 2)
    (640, 321, [5, 4, 4, 4])
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..files import atomic_write_text

__all__ = ["FrontendSpec", "fft_radices", "mel_tables", "level_thresholds", "quantize_power",
           "host_int8_features", "frontend_tables_c", "write_frontend_tables", "pcm_from_float"]

_LEVELS = 256


@dataclass(frozen=True)
class FrontendSpec:
    """Everything that defines the int8 log-mel front end (see the module docstring)."""

    n_fft: int
    hop: int
    n_mels: int
    fmin: float
    fmax: float
    sample_rate: int
    mean_db: float
    std_db: float
    input_scale: float
    input_zero_point: int
    amin: float = 1e-10

    def __post_init__(self) -> None:
        if self.n_fft % 2 or self.n_fft < 16:
            raise ValueError(f"n_fft must be even and >= 16, got {self.n_fft}")
        if not 0 < self.hop <= self.n_fft:
            raise ValueError(f"hop must be in 1..n_fft, got {self.hop}")
        if not (np.isfinite(self.input_scale) and self.input_scale > 0):
            raise ValueError(f"input_scale must be a positive number, got {self.input_scale!r}")
        if not -128 <= int(self.input_zero_point) <= 127:
            raise ValueError(f"input_zero_point must be an int8 value, got {self.input_zero_point!r}")
        if self.std_db <= 0:
            raise ValueError(f"std_db must be positive, got {self.std_db}")

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @classmethod
    def logmel(cls, input_scale: float, input_zero_point: int) -> "FrontendSpec":
        """The course's ``"logmel"`` features quantised with the model's input scale/zero point.

        Example:
            >>> FrontendSpec.logmel(0.05, 0).n_mels
            40
        """
        from ..data.features import LOGMEL_MEAN_DB, LOGMEL_STD_DB, feature_params

        p = feature_params("logmel")
        return cls(n_fft=p.n_fft, hop=p.hop_length, n_mels=p.n_mels, fmin=p.fmin, fmax=p.fmax,
                   sample_rate=p.sample_rate, mean_db=LOGMEL_MEAN_DB, std_db=LOGMEL_STD_DB,
                   input_scale=float(input_scale), input_zero_point=int(input_zero_point))


def fft_radices(n: int) -> list[int]:
    """Radices of the complex FFT of size ``n``: one 5 or 3 or 2 stage first, then 4s.

    Example:
        >>> fft_radices(320), fft_radices(256), fft_radices(240)
        ([5, 4, 4, 4], [4, 4, 4, 4], [5, 3, 4, 4])
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"FFT size must be an integer >= 2, got {n!r}")
    out, rest = [], int(n)
    for p in (5, 3):
        while rest % p == 0:
            out.append(p)
            rest //= p
    if rest & (rest - 1):
        raise ValueError(f"FFT size {n} has a prime factor other than 2, 3 and 5; the firmware FFT "
                         "only has radix-2/3/4/5 stages")
    while rest % 4 == 0:
        out.append(4)
        rest //= 4
    if rest == 2:
        out.insert(0, 2)
    return out


def mel_tables(spec: FrontendSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """librosa's Slaney mel weights as (first bin per band, bins per band, float32 weights).

    Example:
        >>> start, count, w = mel_tables(FrontendSpec.logmel(0.05, 0))
        >>> len(start), int(count.sum()) == len(w)
        (40, True)
    """
    import librosa

    basis = librosa.filters.mel(sr=spec.sample_rate, n_fft=spec.n_fft, n_mels=spec.n_mels,
                                fmin=spec.fmin, fmax=spec.fmax).astype(np.float32)
    starts, counts, weights = [], [], []
    for row in basis:
        nz = np.flatnonzero(row)
        if not len(nz):  # a band narrower than one bin: it is always 0 (-> the floor level)
            starts.append(0)
            counts.append(0)
            continue
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        starts.append(lo)
        counts.append(hi - lo)
        weights.append(row[lo:hi])
    w = np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, np.float32)
    return np.array(starts, np.int32), np.array(counts, np.int32), w


def quantize_power(S: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """The host's float32 path from mel power to int8: power_to_db, normalise, quantise.

    The same operations, in the same order and precision, as ``compute_features`` and
    ``Int8Model.quantize_input``.

    Example:
        >>> quantize_power(np.array([0.0, 1.0], np.float32), FrontendSpec.logmel(0.05, 0)).tolist()
        [-46, 50]
    """
    import librosa

    S = np.asarray(S, np.float32)
    db = librosa.power_to_db(S, ref=1.0, amin=spec.amin, top_db=None)
    x = (db - spec.mean_db) / spec.std_db
    x = np.asarray(x, np.float32)
    q = np.clip(np.rint(x / np.float32(spec.input_scale)) + spec.input_zero_point, -128, 127)
    return q.astype(np.int8)


def level_thresholds(spec: FrontendSpec) -> np.ndarray:
    """float32[256]: entry ``i`` is the smallest mel power S whose int8 level is ``>= i - 127``
    (by :func:`quantize_power`), entry 255 is +inf. The chip's level of S is
    ``-128 + (number of entries <= S)``.

    Example:
        >>> spec = FrontendSpec.logmel(0.05, 0)
        >>> t = level_thresholds(spec)
        >>> S = np.float32(0.003)
        >>> int(-128 + np.searchsorted(t, S, side="right")) == int(quantize_power(S, spec))
        True
    """
    # Bisection over the bit patterns of non-negative float32 values (ordered like the values).
    targets = np.arange(-127, 128)
    lo = np.zeros(len(targets), np.int64)                    # pattern of 0.0
    hi = np.full(len(targets), 0x7F800000, np.int64)         # +inf
    def level(bits: np.ndarray) -> np.ndarray:
        vals = bits.astype(np.uint32).view(np.float32)
        return quantize_power(vals, spec).astype(np.int64)
    reached_at_zero = level(lo) >= targets
    reached_at_max = level(np.full(len(targets), 0x7F7FFFFF, np.int64)) >= targets
    # invariant: level(lo) < target <= level(hi) (hi = +inf treated as reaching everything)
    for _ in range(33):
        mid = (lo + hi) // 2
        ok = level(mid) >= targets
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    thr = hi.astype(np.uint32).view(np.float32).copy()
    thr[reached_at_zero] = 0.0
    thr[~reached_at_max] = np.inf
    return np.concatenate([thr, [np.float32(np.inf)]]).astype(np.float32)


def pcm_from_float(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> int16 PCM (rounded, clipped), as a 16-bit ADC would deliver it.

    Example:
        >>> pcm_from_float(np.array([0.0, 0.5, -1.0, 2.0])).tolist()
        [0, 16384, -32768, 32767]
    """
    a = np.asarray(audio, np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("the audio contains NaN or infinite samples")
    return np.clip(np.rint(a * 32768.0), -32768, 32767).astype(np.int16)


def host_int8_features(pcm: np.ndarray, spec: FrontendSpec) -> np.ndarray:
    """What the network would read on the host: int8 (frames, n_mels) of int16 PCM.

    Any length >= n_fft: frames start every ``hop`` samples (``center=False``). For a 1 s
    clip this equals ``quantize_input(compute_features(pcm / 32768))``.

    Example:
        >>> spec = FrontendSpec.logmel(0.05, 0)
        >>> host_int8_features(np.zeros(16000, np.int16), spec).shape
        (49, 40)
    """
    import librosa

    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"expected 1-D int16 PCM, got {pcm.dtype} with shape {pcm.shape}")
    if len(pcm) < spec.n_fft:
        raise ValueError(f"need at least {spec.n_fft} samples for one frame, got {len(pcm)}")
    y = pcm.astype(np.float32) / np.float32(32768.0)
    mel = librosa.feature.melspectrogram(
        y=y, sr=spec.sample_rate, n_fft=spec.n_fft, hop_length=spec.hop, win_length=spec.n_fft,
        window="hann", center=False, n_mels=spec.n_mels, fmin=spec.fmin, fmax=spec.fmax, power=2.0)
    return quantize_power(mel, spec).T.copy()


def _c_floats(name: str, values: np.ndarray, per_line: int = 6) -> str:
    # hexadecimal float literals: the exact float32 values, no decimal rounding on the way
    vals = [("__builtin_inff()" if np.isinf(v) else f"{float(v).hex()}f") for v in np.asarray(values, np.float32)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return f"const float {name}[{len(vals)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _c_ints(ctype: str, name: str, values: Sequence[int], per_line: int = 16) -> str:
    vals = [str(int(v)) for v in values]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    return f"const {ctype} {name}[{len(vals)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def frontend_tables_c(spec: FrontendSpec) -> tuple[str, str]:
    """(header, source) C text of the front end's constants for ``kernels/tm_frontend.c``.

    Example:
        >>> h, c = frontend_tables_c(FrontendSpec.logmel(0.05, 0))
        >>> "#define TM_FE_NFFT 640" in h, "tm_fe_levels[256]" in c
        (True, True)
    """
    import librosa

    m = spec.n_fft // 2
    radices = fft_radices(m)
    window = librosa.filters.get_window("hann", spec.n_fft, fftbins=True).astype(np.float32)
    window = (window / np.float32(32768.0)).astype(np.float32)  # exact: a power of two
    k = np.arange(m)
    tw = np.exp(-2j * np.pi * k / m)          # W_M^k, computed in double then rounded once
    split = np.exp(-2j * np.pi * k / spec.n_fft)   # W_N^k for the real-input split
    starts, counts, weights = mel_tables(spec)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    levels = level_thresholds(spec)
    header = (
        "/* Generated by tinyml_helpers.deploy.frontend. Do not edit. */\n"
        "#ifndef TM_FRONTEND_CONFIG_H\n#define TM_FRONTEND_CONFIG_H\n"
        f"#define TM_FE_NFFT {spec.n_fft}\n#define TM_FE_HOP {spec.hop}\n"
        f"#define TM_FE_NMELS {spec.n_mels}\n#define TM_FE_STAGES {len(radices)}\n"
        "#endif\n")
    parts = [f"/* Generated by tinyml_helpers.deploy.frontend: log-mel front end constants.\n"
             f" * n_fft {spec.n_fft}, hop {spec.hop}, {spec.n_mels} mel bands {spec.fmin:g}-{spec.fmax:g} Hz,\n"
             f" * normalisation (dB - {spec.mean_db:g}) / {spec.std_db:g}, int8 scale {spec.input_scale!r}, "
             f"zero point {spec.input_zero_point}. Do not edit. */\n",
             "#include <stdint.h>\n\n",
             "/* periodic Hann window / 32768 (int16 PCM -> librosa's float audio) */\n",
             _c_floats("tm_fe_window", window),
             _c_ints("uint8_t", "tm_fe_radices", radices),
             "/* W_M^k = exp(-2 pi i k / M), M = n_fft / 2: (re, im) pairs */\n",
             _c_floats("tm_fe_twiddle", np.stack([tw.real, tw.imag], 1).reshape(-1)),
             "/* W_N^k, N = n_fft: the real-input split */\n",
             _c_floats("tm_fe_split", np.stack([split.real, split.imag], 1).reshape(-1)),
             "/* Slaney mel weights, band b uses bins start[b] .. start[b] + off[b+1] - off[b] - 1 */\n",
             _c_ints("uint16_t", "tm_fe_mel_start", starts),
             _c_ints("uint16_t", "tm_fe_mel_offset", offsets),
             _c_floats("tm_fe_mel_weights", weights),
             "/* int8 level of mel power S = -128 + #(entries <= S) (see frontend.level_thresholds) */\n",
             _c_floats("tm_fe_levels", levels)]
    return header, "".join(parts)


def write_frontend_tables(spec: FrontendSpec, out_dir: str | Path) -> Path:
    """Write ``tm_frontend_config.h`` and ``tm_frontend_tables.c`` into ``out_dir``; returns the .c.

    Example:
        >>> # write_frontend_tables(spec, "artifacts/firmware/kws_pcm")
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header, source = frontend_tables_c(spec)
    atomic_write_text(out_dir / "tm_frontend_config.h", header)
    return atomic_write_text(out_dir / "tm_frontend_tables.c", source)
