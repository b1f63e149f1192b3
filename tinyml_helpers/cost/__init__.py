"""What a model costs on a microcontroller, and whether it fits one.

* :mod:`.counts`: parameters, MACs (conv/linear multiply-accumulates, via torchinfo shapes)
  and deployment flash bytes by dtype (int8 weights with int32 biases, as in TFLM/CMSIS-NN).
* :mod:`.memory`: tensor lifetimes on the graph (torch.fx or ONNX), peak activation RAM,
  and a static arena planner; the memory model is stated in its docstring.
* :mod:`.mcus`: a catalog of MCUs with cited datasheet figures and derived MAC budgets.
* :mod:`.report`: :class:`ModelCost` / :func:`measure` and :func:`fits` (binding resource).

Example:
    >>> import torch
    >>> from tinyml_helpers import cost
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten())
    >>> c = cost.measure(net, (1, 28, 28))
    >>> (c.params, c.macs, c.flash_bytes, c.peak_ram_bytes)
    (80, 48672, 104, 6192)
    >>> cost.fits(c, "nRF52840").fits
    True
"""
from __future__ import annotations

from .counts import (BIAS_BYTES, DTYPE_BYTES, count_macs, count_params, dtype_bytes, flash_bytes,
                     layer_macs, normalize_dtype)
from .mcus import (ASSUMED_MACS_PER_CYCLE, DEFAULT_TARGET_LATENCY_S, MCU, MCU_CATALOG, get_mcu,
                   mac_budget, mcu_names)
from .memory import (ArenaPlan, TensorLifetime, lifetimes_from_onnx, lifetimes_from_torch,
                     live_bytes_per_step, patch_schedule_lifetimes, patch_schedule_peak, peak_activation_bytes,
                     peak_live_bytes, plan_arena, spatial_graph_from_torch, SpatialGraph, SpatialOp,
                     whole_tensor_lifetimes, whole_tensor_peak)
from .report import FitReport, ModelCost, ResourceUse, fits, measure

__all__ = [
    "count_params", "count_macs", "layer_macs", "flash_bytes", "dtype_bytes", "normalize_dtype",
    "DTYPE_BYTES", "BIAS_BYTES",
    "TensorLifetime", "ArenaPlan", "lifetimes_from_torch", "lifetimes_from_onnx", "peak_live_bytes",
    "live_bytes_per_step", "peak_activation_bytes", "plan_arena",
    "SpatialOp", "SpatialGraph", "whole_tensor_lifetimes", "whole_tensor_peak", "patch_schedule_lifetimes",
    "patch_schedule_peak", "spatial_graph_from_torch",
    "MCU", "MCU_CATALOG", "get_mcu", "mcu_names", "mac_budget", "ASSUMED_MACS_PER_CYCLE",
    "DEFAULT_TARGET_LATENCY_S",
    "ModelCost", "measure", "ResourceUse", "FitReport", "fits",
]
