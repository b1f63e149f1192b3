"""The deck's hardware-aware-scaling pick on its own MCU, patch by patch (notebook 04).

The workshop deck sizes a PhiNet (alpha 1.0, beta 0.66, t0 4) for an MCU with 1 MB flash,
392 KB RAM and 63 M MACs. Kept whole, its 160x160 activations need ~736 KB; run patch by
patch (MCUNetV2, :mod:`.schedule`) they fit. This module makes that claim checkable:

* :func:`representative_images`: calibration / test inputs at the network's resolution.
  The course ships no 160x160 image set and no trained 160x160 PhiNet, so the inputs are
  Fashion-MNIST images (bundled, greyscale) resized and repeated over three channels;
* :func:`seed_pick_int8`: the deck's pick (compatibility mode, 10 classes), **untrained**
  (micromind's default initialisation, seeded), exported and int8-quantized with the course
  pipeline (``export.quantize_onnx``) on those images. Untrained weights are enough for what
  is measured here (memory, instructions, bit-exactness); its predictions mean nothing;
* :func:`deploy_patched`: the int8 graph compiled with a patch schedule for a memory layout,
  plus the whole-tensor firmware's instruction count for the overhead.

Example:
    >>> # fp32, int8 = seed_pick_int8(th.config.artifacts_dir("seed_pick"), hw=160)
    >>> # result = deploy_patched(int8, folder, SEED_MCU_LAYOUT, grid=(2, 2), split=6)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import codegen, pipeline, schedule, toolchain

__all__ = ["SEED_PICK", "SEED_MCU_LAYOUT", "RESERVED_BYTES", "representative_images", "seed_pick_int8", "PatchedDeployment",
           "deploy_patched"]

# The deck's slide: alpha, beta, t0 for "1 MB flash, 392 KB RAM, 63 M MACs".
SEED_PICK = dict(alpha=1.0, beta=0.66, t0=4.0)
# That MCU as a memory layout for the emulated Cortex-M4 (8 KB of it reserved for the stack).
SEED_MCU_LAYOUT = toolchain.MemoryLayout(flash_bytes=1024 * 1024, ram_bytes=392 * 1024, stack_bytes=8 * 1024)
# RAM beside the activations when choosing a schedule: the stack (8 KB) and the kernels'
# scratch (im2col / depthwise planes of one patch: ~15 KB for the deck's pick). The linked
# image is measured afterwards; this only keeps the choice from cutting it close.
RESERVED_BYTES = 24 * 1024


def representative_images(n: int, hw: int, split: str = "train", seed: int = 0) -> np.ndarray:
    """``n`` images (N, 3, hw, hw) float32 in [-1, 1]: bundled Fashion-MNIST pictures, resized
    (bilinear) and repeated over 3 channels; natural-image statistics for calibration.

    Example:
        >>> representative_images(2, 32).shape
        (2, 3, 32, 32)
    """
    import torch

    from ..data.images import fashion_mnist_subset

    X, _ = fashion_mnist_subset(split, smoke=True)  # 16 / 8 per class are plenty here
    if n > len(X):
        raise ValueError(f"asked for {n} images, the {split} split holds {len(X)}")
    pick = np.random.default_rng(seed).choice(len(X), size=n, replace=False)
    x = torch.tensor(X[pick], dtype=torch.float32)[:, None] / 255.0
    x = torch.nn.functional.interpolate(x, size=(hw, hw), mode="bilinear", align_corners=False)
    return ((x.repeat(1, 3, 1, 1) - 0.5) / 0.5).numpy().astype(np.float32)


def seed_pick_int8(folder: str | Path, hw: int = 160, n_calibration: int = 8, seed: int = 0,
                   num_classes: int = 10) -> tuple[Path, Path]:
    """Build the deck's pick at ``hw`` x ``hw`` (untrained, seeded), export it to ONNX and
    quantize it to int8 (QOperator) on representative images; return (fp32, int8) paths.

    Eight calibration images are plenty for an untrained network whose int8 scales only need
    to be plausible, and memory grows with them: onnxruntime's MinMax calibration keeps every
    activation of every image until the end (at 160x160 the quantization step needed 0.86 GB
    with 32 images, 0.42 GB with 8).

    Example:
        >>> # fp32, int8 = seed_pick_int8("artifacts/seed_pick", hw=64)
    """
    import torch

    from .. import export
    from ..models.phinet import build_phinet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model = build_phinet((3, hw, hw), num_classes, **SEED_PICK, seed=seed).eval()
        fp32 = export.export_onnx(model, folder / f"seed_pick_{hw}_fp32.onnx", (3, hw, hw))
    finally:
        torch.set_num_threads(threads)
    int8 = export.quantize_onnx(fp32, folder / f"seed_pick_{hw}_int8.onnx",
                                representative_images(n_calibration, hw, "train", seed))
    return fp32, int8


@dataclass
class PatchedDeployment:
    """The patch-scheduled firmware and what it is compared with."""

    deployment: pipeline.Deployment
    schedule: schedule.PatchSchedule
    whole_instructions: int
    whole_arena_bytes: int

    @property
    def ram_bytes(self) -> int:
        """RAM of the linked image: data + bss (arena, scratch) + the measured stack."""
        return int(self.deployment.memory["ram_bytes"])

    @property
    def instruction_overhead(self) -> float:
        """Instructions of the patched firmware over the whole-tensor one, minus 1."""
        return self.deployment.instructions / self.whole_instructions - 1


def deploy_patched(int8_path: str | Path, folder: str | Path, layout: toolchain.MemoryLayout = SEED_MCU_LAYOUT,
                   grid: int | Sequence[int] | None = None, split: int | None = None,
                   reserved_bytes: int = RESERVED_BYTES, probe_input: np.ndarray | None = None) -> PatchedDeployment:
    """Compile ``int8_path`` for ``layout`` with a patch schedule and count one inference;
    also count the whole-tensor firmware (built with RAM to spare, for the comparison only).

    With ``grid`` and ``split`` the schedule is that region and grid (e.g. the one the cost
    model chose at full resolution, applied to a smaller input); otherwise the cheapest one in
    MACs whose peak plus ``reserved_bytes`` (stack and kernel scratch) fits the layout's RAM.
    ``deploy_onnx`` refuses a firmware whose linked RAM exceeds the layout.

    Example:
        >>> # res = deploy_patched(int8, "artifacts/seed_pick/fw"); res.ram_bytes <= 392 * 1024
    """
    folder = Path(folder)
    model = codegen.parse_int8_onnx(int8_path)
    graph = schedule.graph_from_int8(model)
    if grid is None:
        plan = schedule.choose_patch_schedule(graph, layout.ram_bytes, reserved_bytes=reserved_bytes)
    else:
        plan = schedule.plan_patches(graph, grid if isinstance(grid, int) else tuple(grid), split=split)
    patched = pipeline.deploy_onnx(int8_path, folder / "patched", layout=layout, patches=plan,
                                   probe_input=probe_input)
    roomy = toolchain.MemoryLayout(flash_bytes=layout.flash_bytes, ram_bytes=max(layout.ram_bytes, 1024 * 1024),
                                   stack_bytes=layout.stack_bytes)
    whole = pipeline.deploy_onnx(int8_path, folder / "whole", layout=roomy, probe_input=probe_input)
    return PatchedDeployment(patched, plan, whole.instructions, whole.arena_bytes)
