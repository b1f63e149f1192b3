"""The whole deployment chain in a few calls, plus the figures notebook 06 reports.

:func:`deploy_onnx` = parse the int8 ONNX graph -> generate C -> cross-compile -> load in
the emulator -> count one inference -> measure flash/RAM. :func:`run_firmware` classifies
many inputs on the emulated chip (hooks off: outputs only). :func:`compare_with_reference`
checks the firmware against onnxruntime's int8 outputs. :func:`make_stream` /
:func:`sliding_windows` build the streaming demo. Cycles, latency and energy come from the
Cortex-M4 timing model (:mod:`.timing`: ``timing.latency_energy``), not from a flat
cycles-per-instruction guess.

Example:
    >>> arena_lower_bound([("in", 100, 0, 0), ("a", 50, 0, 1), ("b", 80, 1, 2)])   # bytes live at once
    150
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..files import atomic_write_json, private_dir, sha256_file
from ..onnx_file import check_onnx_file
from . import codegen, measure, toolchain
from .emulator import Firmware, RunStats, run_strided

__all__ = ["Deployment", "deploy_onnx", "load_firmware", "run_firmware", "compare_with_reference",
           "layer_table", "conv_instructions_per_mac", "make_stream",
           "sliding_windows", "detect_keywords", "arena_lower_bound", "kws_int8_artifacts"]


@dataclass
class Deployment:
    """Everything one deployment produced: model, C, ELF, emulator, sizes and one counted run."""

    model: codegen.Int8Model
    generated: codegen.GeneratedModel
    elf_path: Path
    firmware: Firmware
    sections: dict[str, int]
    memory: dict[str, int]
    stats: RunStats
    layout: toolchain.MemoryLayout = field(default_factory=toolchain.MemoryLayout)

    @property
    def instructions(self) -> int:
        return self.stats.instructions

    @property
    def arena_bytes(self) -> int:
        return self.generated.arena_bytes


def deploy_onnx(int8_path: str | Path, out_dir: str | Path, *, layout: toolchain.MemoryLayout | None = None,
                opt: str = "-O2", probe_input: np.ndarray | None = None,
                requant: str = "float", patches: Any = None) -> Deployment:
    """int8 ONNX file -> C -> Cortex-M4 ELF -> emulator, with one counted inference.

    ``probe_input`` (float, one example, NCHW) is the input of the counted run (zeros if
    None); the instruction count of these kernels does not depend on the data values.
    ``requant="float"`` (default) rescales conv/dense, add and average-pool outputs like
    onnxruntime on the FPU (bit-exact); ``"fixed"`` uses integer multipliers and shifts (see
    ``codegen.generate_c``).
    ``patches`` runs the first layers patch by patch (MCUNetV2, see ``deploy.schedule``): a
    grid (``4`` or ``(rows, cols)``) planned here, or a ``PatchSchedule`` planned on this
    file's graph; ``None`` (default) runs every layer on whole tensors.

    Example:
        >>> # dep = deploy_onnx("artifacts/onnx/kws_int8.onnx", "artifacts/firmware/kws")
        >>> # dep.memory["flash_bytes"], dep.instructions
    """
    layout = layout or toolchain.MemoryLayout()
    out_dir = Path(out_dir)
    if isinstance(int8_path, (str, os.PathLike)):
        check_onnx_file(int8_path)  # a damaged file gets a message naming it, not a DecodeError
    model = codegen.parse_int8_onnx(int8_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build in a private folder and rename into out_dir at the end: another deployment into
    # the same folder, or a crash half way, can no longer pair a new model.json with an old
    # ELF or make us load someone else's ELF (issue #17).
    with private_dir(out_dir) as build:
        plan = None
        if patches is not None:
            from . import schedule as schedule_mod

            plan = patches if isinstance(patches, schedule_mod.PatchSchedule) else \
                schedule_mod.plan_patches(schedule_mod.graph_from_int8(model), patches)
        generated = codegen.generate_c(model, build, requant=requant, schedule=plan)
        elf = toolchain.compile_firmware([generated.c_path], build / ELF_NAME, layout=layout, opt=opt)
        manifest = {**generated.manifest, "elf_sha256": sha256_file(elf)}  # binds model.json to the ELF
        atomic_write_json(generated.manifest_path, manifest)
        fw = Firmware(elf, manifest)  # reads the ELF into the emulator now, from our private copy
        x = np.zeros(model.input_shape_nchw, np.float32) if probe_input is None else probe_input
        _, stats = fw.infer(model.quantize_input(_finite(x, "probe_input")), count=True)
        sections = measure.section_sizes(elf)
        memory = measure.memory_report(sections, stats.peak_stack_bytes)
        if memory["flash_bytes"] > layout.flash_bytes or memory["ram_bytes"] > layout.ram_bytes:
            raise MemoryError(f"the firmware needs {memory['flash_bytes']:,} B flash and {memory['ram_bytes']:,} B "
                              f"RAM but the layout has {layout.flash_bytes:,} / {layout.ram_bytes:,}: pick a "
                              "bigger MCU or a smaller model (alpha/beta of the PhiNet)")
        # The ELF goes in first and the manifest last: a crash in between leaves a pair whose
        # hash does not match, which load_firmware refuses instead of running.
        for name in (generated.c_path.name, Path(ELF_NAME).with_suffix(".ld").name, ELF_NAME, MANIFEST_NAME):
            if (build / name).exists():  # the linker script is kept for inspection
                os.replace(build / name, out_dir / name)
    generated = dataclasses.replace(generated, c_path=out_dir / generated.c_path.name,
                                    manifest_path=out_dir / MANIFEST_NAME, manifest=manifest)
    return Deployment(model, generated, out_dir / ELF_NAME, fw, sections, memory, stats, layout)


ELF_NAME = "model.elf"
MANIFEST_NAME = "model.json"


def load_firmware(folder: str | Path) -> Firmware:
    """Load ``model.elf`` with its ``model.json`` from a deployment folder, refusing a mismatched pair.

    ``deploy_onnx`` stores the ELF's sha256 in ``model.json``; a manifest from one deployment
    beside the ELF of another (a crash or a second deployment in between) is refused rather
    than run with the wrong input/output offsets. The ELF is loaded from a private copy, so
    it cannot change between the check and the load.

    Example:
        >>> # fw = load_firmware("artifacts/firmware/kws")
    """
    folder = Path(folder)
    manifest_path, elf_path = folder / MANIFEST_NAME, folder / ELF_NAME
    for path in (manifest_path, elf_path):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: deploy the model first "
                                    "(deploy.pipeline.deploy_onnx)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{manifest_path} is damaged ({err}); re-run deploy_onnx into {folder}") from err
    return _firmware_from(elf_path, manifest)


def _firmware_from(elf_path: Path, manifest: dict[str, Any]) -> Firmware:
    expected = manifest.get("elf_sha256")
    if not expected:
        raise ValueError(f"{elf_path.parent / MANIFEST_NAME} records no ELF hash (it predates "
                         "hash binding): re-run deploy_onnx to rebuild the pair")
    with tempfile.TemporaryDirectory(prefix=".firmware-") as tmp:
        copy = Path(shutil.copy2(elf_path, Path(tmp) / ELF_NAME))
        actual = sha256_file(copy)
        if actual != expected:
            raise ValueError(f"{elf_path} does not match {MANIFEST_NAME} beside it (ELF sha256 {actual[:12]}..., "
                             f"manifest expects {expected[:12]}...): another deployment or a crash left a "
                             "mismatched pair. Re-run deploy_onnx into this folder")
        return Firmware(copy, manifest)


def _finite(X: Any, what: str) -> np.ndarray:
    # NaN quantizes to an arbitrary int8 value and the firmware then answers confidently.
    X = np.asarray(X, dtype=np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        raise ValueError(f"{what} holds {int(bad.sum())} non-finite value(s) (NaN or inf): the "
                         "firmware would classify them as if they were real features. Check the "
                         "audio and the feature computation")
    return X


def run_firmware(dep: Deployment, X: np.ndarray, progress: bool = True,
                 workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Classify float inputs (N, C, H, W) on the emulated MCU: (int8 outputs, float logits).

    ``workers > 1`` runs that many emulator instances in threads (unicorn releases Python's
    GIL while it emulates), each on its own slice of the inputs.

    Example:
        >>> # q, logits = run_firmware(dep, X_test, workers=2)
    """
    X = _finite(X, "the inputs")
    if X.ndim != len(dep.model.input_shape_nchw) or tuple(X.shape[1:]) != tuple(dep.model.input_shape_nchw[1:]):
        raise ValueError(f"expected inputs of shape (N, {', '.join(map(str, dep.model.input_shape_nchw[1:]))}), "
                         f"got {X.shape}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out = np.empty((len(X), dep.model.tensors[dep.model.output].size), np.int8)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(X), desc="emulated MCU", unit="clip", leave=False)

    def work(fw: Firmware, indices: Sequence[int]) -> None:
        for i in indices:
            out[i] = fw.infer(dep.model.quantize_input(X[i:i + 1]))
            if bar is not None:
                bar.update(1)

    workers = min(workers, max(len(X), 1))
    # More emulators of the same ELF: checked against the deployment's hash, since
    # another deployment may have replaced the file at dep.elf_path since.
    firmwares = [dep.firmware] + [_firmware_from(dep.elf_path, dep.generated.manifest)
                                  for _ in range(workers - 1)]
    run_strided(work, firmwares, len(X))
    if bar is not None:
        bar.close()
    return out, dep.model.dequantize_output(out)


def compare_with_reference(fw_logits: np.ndarray, ref_logits: np.ndarray, scale: float,
                           labels: np.ndarray | None = None) -> dict[str, float]:
    """Agreement of firmware vs reference (onnxruntime int8) logits, in output LSBs.

    Example:
        >>> r = compare_with_reference(np.array([[0.1, 0.2]]), np.array([[0.1, 0.3]]), scale=0.1)
        >>> r["top1_agreement"], r["max_lsb"], r["within_1lsb"]
        (1.0, 1, 1.0)
    """
    fw, ref = np.asarray(fw_logits, np.float64), np.asarray(ref_logits, np.float64)
    if fw.shape != ref.shape:
        raise ValueError(f"firmware logits {fw.shape} and reference logits {ref.shape} differ in shape")
    # scale=0 divided by zero into max_lsb = -2**63; NaN logits compared as "agreeing".
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)) \
            or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be the output's positive, finite int8 scale, got {scale!r} "
                         "(dep.model.tensors[dep.model.output].scale)")
    _finite(fw, "the firmware logits")
    _finite(ref, "the reference logits")
    lsb = np.rint(np.abs(fw - ref) / float(scale)).astype(np.int64)
    out = {"top1_agreement": float(np.mean(fw.argmax(1) == ref.argmax(1))),
           "max_lsb": int(lsb.max()) if lsb.size else 0,
           "exact": float(np.mean(lsb == 0)),
           "within_1lsb": float(np.mean(lsb <= 1)),
           "clips_all_exact": float(np.mean((lsb == 0).all(axis=1)))}
    if labels is not None:
        out["firmware_accuracy"] = float(np.mean(fw.argmax(1) == np.asarray(labels)))
        out["reference_accuracy"] = float(np.mean(ref.argmax(1) == np.asarray(labels)))
    return out


def layer_table(dep: Deployment) -> list[dict[str, Any]]:
    """Per layer: index, name, kind, MACs, instructions, instructions per MAC."""
    rows = []
    for i, (layer, n) in enumerate(zip(dep.model.layers, dep.stats.per_layer)):
        rows.append({"index": i, "name": layer.name, "kind": layer.kind, "macs": layer.macs,
                     "instructions": int(n),
                     "instr_per_mac": (n / layer.macs) if layer.macs else float("nan"),
                     "shape": dep.model.tensors[layer.output].shape})
    return rows


def conv_instructions_per_mac(dep: Deployment, kinds: Sequence[str] = ("conv", "dwconv")) -> float:
    """Instructions per MAC summed over the conv layers (the issue's benchmark figure)."""
    rows = [r for r in layer_table(dep) if r["kind"] in kinds]
    macs = sum(r["macs"] for r in rows)
    return sum(r["instructions"] for r in rows) / macs if macs else float("nan")


# --------------------------------------------------------------------------------------
# Streaming demo
# --------------------------------------------------------------------------------------

def make_stream(audio: np.ndarray, labels: np.ndarray, classes: Sequence[str], n_keywords: int = 4,
                gap_s: float = 0.6, noise_rms: float = 0.01, seed: int = 0, sample_rate: int = 16000,
                exclude: Sequence[str] = ("silence", "unknown", "_silence_", "_unknown_")
                ) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """A longer synthetic recording: ``n_keywords`` 1 s clips separated by gaps, with noise.

    Returns the waveform and the ground truth ``[(start_s, end_s, word), ...]``.

    Example:
        >>> a = np.zeros((3, 16000), np.float32); a[:, 4000:12000] = 0.5
        >>> wave, truth = make_stream(a, np.array([0, 1, 2]), ["yes", "no", "up"], n_keywords=2)
        >>> len(wave) / 16000 > 2, [w for _, _, w in truth] != []
        (True, True)
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    keep = [i for i in range(len(labels)) if classes[int(labels[i])] not in exclude]
    if len(keep) < n_keywords:
        raise ValueError(f"only {len(keep)} keyword clips to choose from, need {n_keywords}")
    chosen = rng.choice(keep, size=n_keywords, replace=False)
    gap = int(gap_s * sample_rate)
    clip = audio.shape[1]
    total = gap + n_keywords * (clip + gap)
    wave = rng.normal(0.0, noise_rms, total).astype(np.float32)
    truth = []
    pos = gap
    for idx in chosen:
        wave[pos:pos + clip] += audio[idx]
        truth.append((pos / sample_rate, (pos + clip) / sample_rate, classes[int(labels[idx])]))
        pos += clip + gap
    return np.clip(wave, -1, 1), truth


def sliding_windows(wave: np.ndarray, hop_s: float = 0.25, window_s: float = 1.0,
                    sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Cut a recording into 1 s windows every ``hop_s``: (windows (N, 16000), centre times s)."""
    win, hop = int(window_s * sample_rate), int(hop_s * sample_rate)
    if len(wave) < win:
        raise ValueError(f"the recording ({len(wave)} samples) is shorter than one window ({win})")
    starts = np.arange(0, len(wave) - win + 1, hop)
    windows = np.stack([wave[s:s + win] for s in starts]).astype(np.float32)
    return windows, (starts + win / 2) / sample_rate


def detect_keywords(logits: np.ndarray, times: np.ndarray, classes: Sequence[str], threshold: float = 0.6,
                    ignore: Sequence[str] = ("silence", "unknown", "_silence_", "_unknown_"),
                    min_separation_s: float = 0.75) -> list[tuple[float, str, float]]:
    """Detections from per-window logits: softmax peak above ``threshold`` for a keyword class,
    keeping the most confident detection within ``min_separation_s``. Returns (time, word, prob)."""
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    cand = []
    for t, row in zip(times, p):
        k = int(row.argmax())
        if classes[k] not in ignore and row[k] >= threshold:
            cand.append((float(t), classes[k], float(row[k])))
    out: list[tuple[float, str, float]] = []
    for det in sorted(cand, key=lambda d: -d[2]):
        if all(abs(det[0] - o[0]) >= min_separation_s for o in out):
            out.append(det)
    return sorted(out)


# --------------------------------------------------------------------------------------
# Where notebook 06's model comes from
# --------------------------------------------------------------------------------------

def kws_int8_artifacts(allow_standin: bool = True) -> tuple[dict[str, Path], str]:
    """The keyword model's ONNX handoff files (``tinyml_helpers.export.kws_onnx_artifacts``):
    notebook 05's output, rebuilt from the shipped PhiNet checkpoint when missing.

    If the shipped checkpoint itself is missing (a broken checkout), and ``allow_standin``,
    a small stand-in CNN is trained for a few epochs on the keyword features and handed over
    the same way, so the deployment lesson still runs; the second return value says which
    model it is (``"phinet"`` or ``"standin"``).
    """
    from .. import export
    from ..models.phinet import shipped_kws_phinet_paths

    try:
        return export.kws_onnx_artifacts(), "phinet"
    except FileNotFoundError:
        # Only a missing shipped checkpoint justifies the stand-in (the notebook says so);
        # any other missing file is reported as itself.
        if not allow_standin or shipped_kws_phinet_paths()[0].exists():
            raise
    return _standin_artifacts(), "standin"


def _standin_artifacts() -> dict[str, Path]:
    import torch
    from torch import nn

    from .. import config, export
    from ..data import keyword_classes, keyword_features

    folder = config.artifacts_dir("onnx", "standin_smoke" if config.is_smoke() else "standin")
    paths = {k: folder / v for k, v in export.ARTIFACT_NAMES.items()}
    if all(p.exists() for p in paths.values()):
        return paths
    config.seed_everything(0)
    X, y = keyword_features("train")
    X_test, y_test = keyword_features("test")
    classes = keyword_classes()
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, len(classes)))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(config.by_mode(workshop=6, smoke=1)):
        model.train()
        perm = torch.randperm(len(Xt))
        for s in range(0, len(Xt), 64):
            idx = perm[s:s + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    X_cal = export.calibration_subset(X, y, config.by_mode(workshop=200, smoke=32))
    return export.build_kws_onnx_artifacts(model, X_cal, X_test, y_test, folder, classes=classes,
                                           source={"model": "standin"})


def arena_lower_bound(tensors: Sequence[tuple[str, int, int, int]]) -> int:
    """The least memory any arena plan needs: the largest total size of tensors live at the
    same step. ``tensors`` = ``[(name, size_bytes, first_step, last_step), ...]``.

    Example:
        >>> arena_lower_bound([("in", 100, 0, 0), ("a", 50, 0, 1), ("b", 80, 1, 2)])
        150
    """
    from ..cost import TensorLifetime, peak_live_bytes

    return int(peak_live_bytes([TensorLifetime(n, int(s), int(f), int(l)) for n, s, f, l in tensors])[0])
