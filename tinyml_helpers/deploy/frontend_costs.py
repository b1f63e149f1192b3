"""Measured cost of the on-chip keyword pipeline around the network: the log-mel front end per
20 ms frame and the per-inference work besides the network (copying the feature ring into the
arena, softmax, smoothing, threshold), as a small shipped table.

Notebook 00 argues about energy with these figures but must run in seconds, so it does not
build or emulate firmware: it reads ``frontend_costs.json`` next to this module. The table is
**measured**, not assumed: :func:`measure_frontend_costs` builds the streaming firmware
(``kernels/tm_stream.c`` + ``kernels/tm_frontend.c``, :func:`.streaming.build_pcm_firmware`)
with a stub network, feeds it a fixed probe signal through the emulator and counts one frame
and one inference with the Cortex-M4 timing model (:mod:`.timing`), exactly as notebook 06's
``PcmFirmware.count_budget`` does for the trained model. The front end's work does not
depend on the network, so the stub changes nothing there; the per-inference overhead it
reports includes the stub's few hundred cycles, so it slightly overstates the real overhead.
``python -m tinyml_helpers.scripts.measure_frontend_costs`` rebuilds the table after a change
to the front end or the streaming code (about ten seconds); ``tests/test_deploy_frontend_costs.py``
fails when the shipped table no longer matches the firmware.

Example:
    >>> costs = load_frontend_costs()
    >>> costs["frame_hop_samples"], costs["sample_rate"]
    (320, 16000)
    >>> 10_000 < costs["frontend_cycles_per_frame"] < 1_000_000
    True
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FRONTEND_COSTS_PATH", "load_frontend_costs", "measure_frontend_costs", "probe_pcm"]

FRONTEND_COSTS_PATH = Path(__file__).resolve().parent / "frontend_costs.json"
_REQUIRED = ("frontend_instructions_per_frame", "frontend_cycles_per_frame", "overhead_cycles_per_inference",
             "frame_hop_samples", "sample_rate", "mcu", "source")


def probe_pcm(seconds: float = 1.0, sample_rate: int = 16000) -> np.ndarray:
    """The fixed int16 signal the costs are measured on: a 440 Hz tone in seeded noise.

    The front end's instruction count barely depends on the samples (no data-dependent loops
    except the 8-step level search), so any speech-like level will do; a fixed one keeps the
    table reproducible.

    Example:
        >>> p = probe_pcm()
        >>> p.dtype.name, len(p)
        ('int16', 16000)
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    noise = np.random.default_rng(0).normal(scale=0.05, size=n)
    return np.clip((0.3 * np.sin(2 * np.pi * 440 * t) + noise) * 32767, -32768, 32767).astype(np.int16)


@functools.lru_cache(maxsize=4)
def _read(path: str) -> str:
    return Path(path).read_text()


def load_frontend_costs(path: str | Path | None = None) -> dict[str, Any]:
    """The shipped (or a given) measured front-end cost table (a copy: safe to modify).

    Example:
        >>> load_frontend_costs()["timing"].startswith("deploy.timing")
        True
    """
    p = Path(path) if path is not None else FRONTEND_COSTS_PATH
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist: run python -m tinyml_helpers.scripts.measure_frontend_costs")
    table = json.loads(_read(str(p)))
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise ValueError(f"{p} lacks {missing}: re-measure it with python -m tinyml_helpers.scripts.measure_frontend_costs")
    return table


def measure_frontend_costs(folder: str | Path, out_path: str | Path | None = FRONTEND_COSTS_PATH,
                           mcu: str = "nRF52840") -> dict[str, Any]:
    """Build the streaming firmware with a stub network, count one front-end frame and one
    inference on :func:`probe_pcm` with the timing model of ``mcu``, and write the table to
    ``out_path`` (None: only return it).

    Example:
        >>> # table = measure_frontend_costs("/tmp/fe_costs")   # about ten seconds
    """
    from . import streaming, timing

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = timing.timing_for_mcu(mcu)
    # The feature quantisation only moves the level thresholds, not the work: any scale will do.
    fw = streaming.build_pcm_firmware(None, folder, ["_silence_", "keyword", "_unknown_"],
                                      input_scale=0.05, input_zero_point=0, timing=t)
    budget = fw.count_budget(probe_pcm(sample_rate=fw.spec.sample_rate))
    table = {
        "frontend_instructions_per_frame": int(budget["frontend_instructions"]),
        "frontend_cycles_per_frame": int(budget["frontend_cycles"]),
        "overhead_instructions_per_inference": int(budget["inference_instructions"]),
        "overhead_cycles_per_inference": int(budget["inference_cycles"]),
        "frame_hop_samples": int(fw.spec.hop),
        "sample_rate": int(fw.spec.sample_rate),
        "infer_hop_samples": int(fw.config.infer_hop),
        "peak_stack_bytes": int(budget["peak_stack_bytes"]),
        "mcu": mcu,
        "timing": f"deploy.timing.timing_for_mcu({mcu!r}): {t}",
        "source": ("measured by deploy.frontend_costs.measure_frontend_costs: the streaming firmware "
                   "(kernels/tm_stream.c + kernels/tm_frontend.c, -O2) with a stub network on the emulated "
                   "Cortex-M4F, one 20 ms log-mel frame and one inference counted on probe_pcm(); "
                   "the per-inference overhead includes the stub network (an upper bound)"),
    }
    if out_path is not None:
        from ..files import atomic_write_json

        atomic_write_json(Path(out_path), table)
        _read.cache_clear()
    return table
