"""Keyword spotting from raw samples, on the emulated chip: build the streaming firmware, feed
it audio like a microphone's DMA would, read back features, network outputs and detections.

The firmware (``kernels/tm_stream.c`` + ``kernels/tm_frontend.c``) keeps a ring of audio, a
log-mel frame every 20 ms (:mod:`.frontend`), a ring of the last 49 frames, runs the network
every 250 ms on them, smooths the softmax over a few inferences and records a detection when
a keyword's smoothed probability passes a threshold, at most once per refractory period. The
host only copies chunks of int16 samples into ``tm_pcm_in`` and calls
``tm_push_samples(tm_pcm_in, n)`` through the emulator (arguments in r0, r1 as the Arm
calling convention passes them).

Written for this course (no maintained package streams audio through an emulated MCU).

Example:
    >>> cfg = StreamConfig()
    >>> cfg.infer_hop, cfg.refractory_samples
    (4000, 16000)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..files import atomic_write_text
from . import frontend, measure, toolchain
from .emulator import Firmware, RunStats, run_strided

__all__ = ["StreamConfig", "PcmFirmware", "StreamResult", "build_pcm_firmware", "stream_config_h",
           "ENTRY_POINTS", "DEFAULT_IGNORE", "duty_cycle", "RING_SYMBOLS", "TABLE_SYMBOLS"]

ENTRY_POINTS = ("tm_push_samples", "tm_stream_reset")
# Symbols only the host touches (the "DMA" buffer): kept through --gc-sections like the entry points.
HOST_SYMBOLS = ENTRY_POINTS + ("tm_pcm_in",)
DEFAULT_IGNORE = ("silence", "unknown", "_silence_", "_unknown_")
# RAM the streaming adds next to the network (rings, FFT work buffers, DMA buffer, decisions)
RING_SYMBOLS = ("tm_pcm_in", "tm_audio_ring", "tm_feat_ring", "tm_fe_buf_a", "tm_fe_buf_b", "tm_stream_state",
                "tm_post_hist", "tm_post_smooth", "tm_log_end", "tm_log_out", "tm_det_end", "tm_det_label",
                "tm_det_score")
# Flash the front end's constant tables take
TABLE_SYMBOLS = ("tm_fe_window", "tm_fe_radices", "tm_fe_twiddle", "tm_fe_split", "tm_fe_mel_start",
                 "tm_fe_mel_offset", "tm_fe_mel_weights", "tm_fe_levels")
_STATE_FIELDS = ("samples", "frames", "inferences", "detections", "until_frame", "until_infer",
                 "last_detection")


@dataclass(frozen=True)
class StreamConfig:
    """Timing and decision constants of the on-chip keyword spotter (compiled into it)."""

    infer_hop: int = 4000            # samples between inferences: 250 ms at 16 kHz
    smooth: int = 3                  # inferences averaged (posterior smoothing)
    threshold: float = 0.6           # smoothed probability a keyword must reach
    refractory_s: float = 1.0        # no second detection within this time
    audio_ring: int = 1024           # samples (a power of two >= n_fft)
    pcm_chunk: int = 1024            # samples per "DMA" transfer
    log: int = 8                     # inference outputs kept for the host
    detections: int = 16             # detections kept for the host
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        for name in ("infer_hop", "smooth", "audio_ring", "pcm_chunk", "log", "detections"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.audio_ring & (self.audio_ring - 1):
            raise ValueError(f"audio_ring must be a power of two, got {self.audio_ring}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in (0, 1], got {self.threshold}")
        if self.refractory_s < 0:
            raise ValueError(f"refractory_s must be >= 0, got {self.refractory_s}")

    @property
    def refractory_samples(self) -> int:
        return int(round(self.refractory_s * self.sample_rate))


def stream_config_h(spec: frontend.FrontendSpec, cfg: StreamConfig, classes: Sequence[str], frames: int,
                    in_offset: int, out_offset: int, out_scale: float,
                    ignore: Sequence[str] = DEFAULT_IGNORE) -> str:
    """``tm_stream_config.h``: offsets, sizes and decision constants for ``tm_stream.c``.

    Example:
        >>> h = stream_config_h(frontend.FrontendSpec.logmel(0.05, 0), StreamConfig(), ["yes", "no"],
        ...                     49, 0, 1960, 0.1)
        >>> "#define TM_ST_CLASSES 2" in h
        True
    """
    if cfg.audio_ring < spec.n_fft:
        raise ValueError(f"audio_ring ({cfg.audio_ring}) must hold one frame ({spec.n_fft} samples)")
    if not classes:
        raise ValueError("the model needs at least one class")
    exp = np.exp(-np.arange(256) * float(out_scale)).astype(np.float32)
    keyword = [0 if c in ignore else 1 for c in classes]
    floats = ", ".join(f"{float(v).hex()}f" for v in exp)
    return ("/* Generated by tinyml_helpers.deploy.streaming. Do not edit. */\n"
            "#ifndef TM_STREAM_CONFIG_H\n#define TM_STREAM_CONFIG_H\n#include <stdint.h>\n"
            f"#define TM_ST_IN_OFFSET {int(in_offset)}\n#define TM_ST_OUT_OFFSET {int(out_offset)}\n"
            f"#define TM_ST_CLASSES {len(classes)}\n#define TM_ST_FRAMES {int(frames)}\n"
            f"#define TM_ST_INFER_HOP {cfg.infer_hop}u\n#define TM_ST_SMOOTH {cfg.smooth}u\n"
            f"#define TM_ST_THRESHOLD {float(np.float32(cfg.threshold)).hex()}f\n"
            f"#define TM_ST_REFRACTORY {cfg.refractory_samples}u\n"
            f"#define TM_ST_AUDIO_RING {cfg.audio_ring}u\n#define TM_ST_PCM_CHUNK {cfg.pcm_chunk}\n"
            f"#define TM_ST_LOG {cfg.log}\n#define TM_ST_DETS {cfg.detections}\n"
            "/* exp(-d * output scale), d = 0..255: the softmax without expf */\n"
            f"static const float tm_st_exp[256] = {{{floats}}};\n"
            "/* 1 = a keyword that may be detected, 0 = silence / unknown */\n"
            f"static const uint8_t tm_st_keyword[{len(classes)}] = {{{', '.join(map(str, keyword))}}};\n"
            "#endif\n")


def _stub_model_c(frames: int, n_mels: int, classes: int) -> str:
    # A stand-in "network" for tests of the front end, rings and decisions: class 0 scores 0,
    # class 1 scores the loudest band of the newest frame, the others -128. So a loud sound is
    # "class 1" and silence is class 0, with no trained model involved.
    in_bytes = frames * n_mels
    return ("/* Stub model for tests (tinyml_helpers.deploy.streaming). Do not edit. */\n#include <stdint.h>\n"
            f"__attribute__((aligned(8))) int8_t tm_arena[{in_bytes + classes + 4}];\n"
            "void tm_model_run(void) {\n"
            f"    const int8_t *last = tm_arena + {in_bytes - n_mels};\n"
            f"    int8_t *out = tm_arena + {in_bytes};\n"
            "    int8_t m = -128;\n"
            f"    for (int i = 0; i < {n_mels}; i++) if (last[i] > m) m = last[i];\n"
            f"    for (int c = 0; c < {classes}; c++) out[c] = c == 0 ? 0 : (c == 1 ? m : -128);\n"
            "}\n")


@dataclass
class StreamResult:
    """What one recording produced on the chip."""

    end_samples: np.ndarray          # sample count at each inference
    outputs: np.ndarray              # int8 network outputs (inferences, classes)
    logits: np.ndarray               # dequantised
    detections: list[tuple[float, str, float]]   # (time s, word, smoothed probability)
    samples: int = 0
    frames: int = 0

    window: int = 16000
    sample_rate: int = 16000
    features: np.ndarray | None = None   # (frames, n_mels) int8, when run(collect_features=True)

    @property
    def times(self) -> np.ndarray:
        """Centre of each inference's window, in seconds."""
        return (self.end_samples - self.window / 2) / self.sample_rate


@dataclass
class PcmFirmware:
    """The streaming keyword spotter loaded in the emulator (see :func:`build_pcm_firmware`)."""

    firmware: Firmware
    spec: frontend.FrontendSpec
    config: StreamConfig
    classes: list[str]
    frames: int
    elf_path: Path
    out_scale: float
    out_zero_point: int
    symbol_sizes: dict[str, int] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)

    # -- low level ----------------------------------------------------------------------
    def _sym(self, name: str) -> int:
        return self.firmware.symbol(name)

    def state(self) -> dict[str, int]:
        """The firmware's counters (samples, frames, inferences, detections, ...)."""
        raw = np.frombuffer(self.firmware.read(self._sym("tm_stream_state"), 4 * len(_STATE_FIELDS)), np.uint32)
        out = dict(zip(_STATE_FIELDS, map(int, raw)))
        out["until_infer"] = int(raw[_STATE_FIELDS.index("until_infer")].astype(np.int32))  # signed
        return out

    def reset(self) -> None:
        """Forget all audio, frames, inferences and detections (``tm_stream_reset``)."""
        self.firmware._call("tm_stream_reset")

    def _push_chunk(self, chunk: np.ndarray, count: bool) -> RunStats | None:
        from unicorn.arm_const import UC_ARM_REG_R0, UC_ARM_REG_R1

        addr = self._sym("tm_pcm_in")
        self.firmware.write(addr, chunk.astype("<i2").tobytes())
        self.firmware.uc.reg_write(UC_ARM_REG_R0, addr)
        self.firmware.uc.reg_write(UC_ARM_REG_R1, len(chunk))
        if count:
            return self.firmware.call("tm_push_samples", count=True)
        self.firmware._call("tm_push_samples")
        return None

    def push(self, pcm: np.ndarray, count: bool = False) -> list[RunStats]:
        """Feed int16 samples in DMA-sized chunks; returns the counted runs if ``count``.

        Example:
            >>> # fw.push(np.zeros(320, np.int16))
        """
        pcm = _check_pcm(pcm)
        stats = []
        for s in range(0, len(pcm), self.config.pcm_chunk):
            st = self._push_chunk(pcm[s:s + self.config.pcm_chunk], count)
            if st is not None:
                stats.append(st)
        return stats

    # -- reading back -------------------------------------------------------------------
    def features(self) -> np.ndarray:
        """The feature ring in time order (oldest first): int8 (frames, n_mels). Rows not yet
        computed (fewer than ``frames`` frames so far) are the zeros of the reset."""
        n = self.frames * self.spec.n_mels
        ring = np.frombuffer(self.firmware.read(self._sym("tm_feat_ring"), n), np.int8).reshape(self.frames, -1)
        oldest = self.state()["frames"] % self.frames
        return np.concatenate([ring[oldest:], ring[:oldest]]).copy()

    def _log(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        k, c = self.config.log, len(self.classes)
        ends = np.frombuffer(self.firmware.read(self._sym("tm_log_end"), 4 * k), np.uint32)
        outs = np.frombuffer(self.firmware.read(self._sym("tm_log_out"), k * c), np.int8).reshape(k, c)
        idx = [i % k for i in range(first, last)]
        return ends[idx].astype(np.int64), outs[idx].copy()

    def detections(self) -> list[tuple[float, str, float]]:
        """The detections kept on the chip (the last ``config.detections``): (time s, word, prob),
        the time being the centre of the detecting inference's window (as :attr:`StreamResult.times`)."""
        st = self.state()
        k = self.config.detections
        ends = np.frombuffer(self.firmware.read(self._sym("tm_det_end"), 4 * k), np.uint32)
        labels = np.frombuffer(self.firmware.read(self._sym("tm_det_label"), 4 * k), np.int32)
        scores = np.frombuffer(self.firmware.read(self._sym("tm_det_score"), 4 * k), np.float32)
        out = []
        for i in range(max(0, st["detections"] - k), st["detections"]):
            j = i % k
            centre = int(ends[j]) - self._window() / 2
            out.append((centre / self.config.sample_rate, self.classes[int(labels[j])], float(scores[j])))
        return out

    def _window(self) -> int:
        return self.spec.n_fft + (self.frames - 1) * self.spec.hop

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return ((np.asarray(q, np.int32) - self.out_zero_point) * np.float32(self.out_scale)).astype(np.float32)

    def memory_breakdown(self) -> dict[str, int]:
        """Bytes of RAM the streaming adds (rings, work buffers, decisions) and of flash the
        front end's tables take, from the ELF's symbol sizes.

        Example:
            >>> # fw.memory_breakdown()["ring_ram_bytes"]
        """
        ram = {n: self.symbol_sizes.get(n, 0) for n in RING_SYMBOLS}
        flash = {n: self.symbol_sizes.get(n, 0) for n in TABLE_SYMBOLS}
        return {"ring_ram_bytes": sum(ram.values()), "table_flash_bytes": sum(flash.values()),
                "audio_ring_bytes": ram["tm_audio_ring"], "feature_ring_bytes": ram["tm_feat_ring"],
                "fft_buffer_bytes": ram["tm_fe_buf_a"] + ram["tm_fe_buf_b"], "dma_buffer_bytes": ram["tm_pcm_in"],
                **{f"{k}_bytes": v for k, v in flash.items()}}

    # -- whole recordings ---------------------------------------------------------------
    def run(self, pcm: np.ndarray, reset: bool = True, collect_features: bool = False) -> StreamResult:
        """Stream a whole recording through the chip and collect every inference's output
        (and, with ``collect_features``, every feature frame the chip computed, read back
        from its ring after each hop: slower, for plots).

        Example:
            >>> # res = fw.run(pcm); res.detections
        """
        pcm = _check_pcm(pcm)
        if reset:
            self.reset()
        ends, outs, frames = [], [], []
        # at most one inference (and, when collecting, one frame) per push
        step = self.spec.hop if collect_features else min(self.config.pcm_chunk, self.config.infer_hop)
        seen = self.state()["inferences"]
        ring = self._sym("tm_feat_ring")
        for s in range(0, len(pcm), step):
            self._push_chunk(pcm[s:s + step], count=False)
            st = self.state()
            if collect_features and st["frames"] > len(frames):
                row = (st["frames"] - 1) % self.frames * self.spec.n_mels
                frames.append(np.frombuffer(self.firmware.read(ring + row, self.spec.n_mels), np.int8).copy())
            now = st["inferences"]
            if now > seen:
                e, o = self._log(max(seen, now - self.config.log), now)
                ends.append(e)
                outs.append(o)
                seen = now
        c = len(self.classes)
        end = np.concatenate(ends) if ends else np.zeros(0, np.int64)
        out = np.concatenate(outs) if outs else np.zeros((0, c), np.int8)
        st = self.state()
        feats = np.stack(frames) if frames else np.zeros((0, self.spec.n_mels), np.int8)
        return StreamResult(end, out, self.dequantize(out), self.detections(), st["samples"], st["frames"],
                            self._window(), self.config.sample_rate, feats)

    def classify_clip(self, pcm: np.ndarray) -> np.ndarray:
        """int8 outputs of the one inference that a fresh 1 s clip (exactly one window) triggers.

        Example:
            >>> # fw.classify_clip(pcm_from_float(audio[0]))
        """
        pcm = _check_pcm(pcm)
        window = self.spec.n_fft + (self.frames - 1) * self.spec.hop
        if len(pcm) != window:
            raise ValueError(f"classify_clip takes one window of {window} samples, got {len(pcm)}; "
                             "use run() for recordings of any length")
        self.reset()
        self.push(pcm)
        st = self.state()
        if st["inferences"] != 1:
            raise RuntimeError(f"expected one inference after one window, the firmware ran {st['inferences']}")
        return self._log(0, 1)[1][0]

    def classify_clips(self, clips: Sequence[np.ndarray], workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`classify_clip` on many 1 s int16 clips: (int8 outputs (N, classes), the int8
        features the network read (N, frames, n_mels)). ``workers > 1`` runs that many emulator
        instances in threads (unicorn releases Python's GIL while it emulates).

        Example:
            >>> # outs, feats = fw.classify_clips([pcm_from_float(a) for a in audio[:8]], workers=2)
        """
        import dataclasses

        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        clips = [_check_pcm(c) for c in clips]
        outs = np.zeros((len(clips), len(self.classes)), np.int8)
        feats = np.zeros((len(clips), self.frames, self.spec.n_mels), np.int8)
        workers = max(1, min(workers, len(clips)))
        copies = [self] + [dataclasses.replace(self, firmware=Firmware(self.elf_path, None, timing=self.firmware.timing))
                           for _ in range(workers - 1)]

        def work(fw: "PcmFirmware", indices: range) -> None:
            for i in indices:
                outs[i] = fw.classify_clip(clips[i])
                feats[i] = fw.features()

        run_strided(work, copies, len(clips))
        return outs, feats

    def count_budget(self, pcm: np.ndarray) -> dict[str, Any]:
        """Instructions and modelled cycles of one 20 ms frame (front end only) and of one
        inference (network + decision), measured on ``pcm`` (at least 1 s of audio).

        Example:
            >>> # fw.count_budget(pcm)["frontend_instructions"]
        """
        pcm = _check_pcm(pcm)
        window = self.spec.n_fft + (self.frames - 1) * self.spec.hop
        if len(pcm) < window:
            raise ValueError(f"count_budget needs at least one window ({window} samples), got {len(pcm)}")
        hop = self.spec.hop
        # one hop that completes a frame but no inference (the window's second-to-last), then
        # the last hop, which completes frame 49 and runs the network
        self.reset()
        self.push(pcm[:window - 2 * hop])
        frame = self._push_chunk(pcm[window - 2 * hop:window - hop], count=True)
        if self.state()["inferences"] != 0:
            raise RuntimeError("an inference ran before the window was complete")
        both = self._push_chunk(pcm[window - hop:window], count=True)
        if self.state()["inferences"] != 1:
            raise RuntimeError("no inference ran at the end of the first window")
        return {"frontend_instructions": frame.instructions, "frontend_cycles": frame.cycles,
                "frontend_stack_bytes": frame.peak_stack_bytes,
                "inference_instructions": both.instructions - frame.instructions,
                "inference_cycles": both.cycles - frame.cycles,
                "peak_stack_bytes": max(frame.peak_stack_bytes, both.peak_stack_bytes)}


def duty_cycle(frontend_cycles: float, inference_cycles: float, clock_hz: float, sample_rate: int = 16000,
               hop: int = 320, infer_hop: int = 4000) -> float:
    """Fraction of the CPU's time the keyword spotter keeps busy: one front-end frame every
    ``hop`` samples plus one inference every ``infer_hop`` samples, at ``clock_hz``.

    Example:
        >>> round(duty_cycle(64_000, 6_400_000, 64e6), 3)   # 50 frames + 4 inferences per second
        0.45
    """
    if clock_hz <= 0 or hop <= 0 or infer_hop <= 0 or sample_rate <= 0:
        raise ValueError("clock_hz, sample_rate, hop and infer_hop must be positive")
    if frontend_cycles < 0 or inference_cycles < 0:
        raise ValueError("cycle counts must be >= 0")
    per_s = frontend_cycles * sample_rate / hop + inference_cycles * sample_rate / infer_hop
    return float(per_s / clock_hz)


def _check_pcm(pcm: np.ndarray) -> np.ndarray:
    pcm = np.asarray(pcm)
    if pcm.ndim != 1:
        raise ValueError(f"expected mono 1-D int16 samples, got shape {pcm.shape}; convert with "
                         "deploy.audio_input.to_pcm16k first")
    if pcm.dtype != np.int16:
        raise ValueError(f"expected int16 samples, got {pcm.dtype}; convert float audio with "
                         "frontend.pcm_from_float (or deploy.audio_input.to_pcm16k)")
    return pcm


def _symbol_sizes(elf_path: Path) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as fh:
        tab = ELFFile(fh).get_section_by_name(".symtab")
        return {s.name: int(s["st_size"]) for s in tab.iter_symbols() if s.name}


def build_pcm_firmware(int8_path: str | Path | None, out_dir: str | Path, classes: Sequence[str], *,
                       config: StreamConfig | None = None, layout: toolchain.MemoryLayout | None = None,
                       opt: str = "-O2", requant: str = "float", input_scale: float | None = None,
                       input_zero_point: int | None = None, ignore: Sequence[str] = DEFAULT_IGNORE,
                       timing: Any = None) -> PcmFirmware:
    """Generate, compile and load the streaming firmware: front end + rings + network + decisions.

    ``int8_path`` is the int8 ONNX keyword model (its input must be 1 x 49 x 40 log-mel
    frames); ``None`` builds the front end with a stub network (for tests), then
    ``input_scale`` / ``input_zero_point`` give the quantisation of the features.

    Example:
        >>> # fw = build_pcm_firmware("artifacts/onnx/kws_int8.onnx", "artifacts/firmware/kws_pcm", classes)
    """
    from . import codegen

    config = config or StreamConfig()
    layout = layout or toolchain.MemoryLayout()
    classes = [str(c) for c in classes]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fparams = frontend.FrontendSpec.logmel(1.0, 0)
    frames = 1 + (fparams.sample_rate - fparams.n_fft) // fparams.hop   # 49 for 1 s windows
    if int8_path is not None:
        model = codegen.parse_int8_onnx(int8_path)
        gen = codegen.generate_c(model, out_dir, requant=requant)
        t_in, t_out = model.tensors[model.input], model.tensors[model.output]
        if list(t_in.shape) != [1, frames, fparams.n_mels]:
            raise ValueError(f"the streaming firmware feeds {frames} x {fparams.n_mels} log-mel frames, but the "
                             f"model's input is {list(t_in.shape)} (C, H, W)")
        if t_out.size != len(classes):
            raise ValueError(f"the model has {t_out.size} outputs but {len(classes)} class names were given")
        spec = frontend.FrontendSpec.logmel(t_in.scale, t_in.zero_point)
        in_off, out_off = gen.manifest["input"]["offset"], gen.manifest["output"]["offset"]
        out_scale, out_zp = float(t_out.scale), int(t_out.zero_point)
        model_c = gen.c_path
    else:
        if input_scale is None or input_zero_point is None:
            raise ValueError("without a model, give input_scale and input_zero_point for the features")
        spec = frontend.FrontendSpec.logmel(input_scale, input_zero_point)
        in_off, out_off, out_scale, out_zp = 0, frames * spec.n_mels, 0.1, 0
        model_c = atomic_write_text(out_dir / "model.c", _stub_model_c(frames, spec.n_mels, len(classes)))
    tables_c = frontend.write_frontend_tables(spec, out_dir)
    atomic_write_text(out_dir / "tm_stream_config.h",
                      stream_config_h(spec, config, classes, frames, in_off, out_off, out_scale, ignore))
    kdir = toolchain.KERNEL_DIR
    keep = [f"-Wl,-u,{s}" for s in HOST_SYMBOLS]   # keep the host's entry points through --gc-sections
    elf = toolchain.compile_firmware([model_c, tables_c, kdir / "tm_frontend.c", kdir / "tm_stream.c"],
                                     out_dir / "kws_pcm.elf", layout=layout, opt=opt,
                                     extra_flags=["-I", str(out_dir), *keep])
    fw = Firmware(elf, None, timing=timing)
    sizes = _symbol_sizes(elf)
    sections = measure.section_sizes(elf)
    memory = measure.memory_report(sections, 0)
    return PcmFirmware(fw, spec, config, classes, frames, elf, out_scale, out_zp, sizes, memory)
