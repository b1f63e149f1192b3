"""Hardware-aware scaling of PhiNets: closed-form costs and a budget solver.

**Closed forms.** The workshop deck (Paissan, Ancilotto, Farella, PhiNets, ACM TECS 2022)
gives, for a PhiNet of N inverted-residual blocks with kernel size K::

    Params = sum_B [ 2 alpha^2 t_B C_B^2 + alpha t_B C_B K^2 ]
    MAC    = sum_B W_B H_B [ 2 alpha^2 t_B C_B^2 + alpha t_B C_B K^2 ]
    RAM    = H0 W0 (t0 + alpha t0 + C0)

Our reading of those symbols for micromind 0.2.1's ``PhiNet`` (derived from its source):

* B runs over the N expansion blocks (micromind's ``block_id`` 1..``num_layers``); the stem
  (separable conv) and the first block (no expansion) are not in the sum.
* ``t_B = t0 * (beta * B / N + (N - B) / N)``: micromind's ``get_xpansion_factor``. beta = 1
  keeps every block at t0; beta < 1 shrinks the expansion with depth, beta > 1 grows it.
* ``C_B`` is the block's input channel count at alpha = 1 (24, 24, 24, 48, 48, 96, ...:
  the base widths 24 and 48, doubled at each ``downsampling_layers`` block).
  The 2 counts the expand (C -> tC) and project (tC -> C) 1x1 convolutions as if the block
  kept its width; ``alpha t_B C_B K^2`` is the depthwise KxK convolution.
* ``W_B H_B`` is the block's input resolution (where its expand convolution runs).
* RAM: ``H0 W0`` is the input resolution, ``C0`` the input channels; the result is a count
  of activation elements (bytes at int8, x4 at fp32). It is a scaling law for the first
  block's working set, not a byte-exact figure.

Where these deviate from measured costs (explored in notebook 04): strided blocks run
their depthwise and project convs on a quarter of ``W_B H_B``; blocks that double the
width project to 2 C_B; channel counts are rounded down to integers; the stem, block 1,
batch-norm, classifier head (and squeeze-excite when ``compatibility=False``) are not
counted; and the RAM law ignores that the real peak depends on alpha * t0 * C_1 at the
stem's output resolution and on which tensors are alive together.

**Solver.** :func:`solve_phinet` searches (beta, t0) on a small grid (and depth and input
resolution when asked) and, for each, the largest alpha that fits the budget **by measured
cost** (params and MACs from torchinfo, flash and peak activation memory from
``tinyml_helpers.cost``'s tensor-lifetime planner). The closed forms, calibrated by two
measured reference networks, predict each candidate's alpha and rank the candidates; only
the promising ones are measured, with a secant search on alpha whose answer is confirmed
by measuring the next grid point. Measurements are cached, so
re-solving (e.g. from a widget) is fast. Among the candidates that fit, it returns the one
that uses the budget best: the largest geometric mean of the utilisations
(used / budget) of flash, RAM and MACs or cycles. This search is our own (no maintained library
solves PhiNet budgets); it follows the one-shot scaling idea of EfficientNet
(Tan & Le, ICML 2019) and PhiNets.

Example:
    >>> expansion_factor(t0=4.0, beta=0.5, block=7, num_layers=7)
    2.0
    >>> round(block_params(alpha=1.0, t=4.0, c=24, k=3))
    5472
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import time
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "BYTES_PER_ELEMENT",
    "expansion_factor",
    "BlockSpec",
    "phinet_blocks",
    "block_params",
    "block_macs",
    "closed_form_params",
    "closed_form_macs",
    "closed_form_ram",
    "closed_form_costs",
    "PhiNetCosts",
    "CYCLE_PREDICTION_MARGIN",
    "CYCLE_MODEL_CORES",
    "MAX_ALPHA_GRID",
    "measure_phinet",
    "clear_measure_cache",
    "measure_with_deck_ram",
    "measure_with_patch_ram",
    "MEMORY_MODELS",
    "PATCH_GRIDS",
    "MAX_PATCH_MAC_OVERHEAD",
    "cost_grid",
    "per_block_costs",
    "Budget",
    "ScalingSolution",
    "InfeasibleBudgetError",
    "solve_phinet",
    "alpha_for_macs",
    "DEFAULT_BETAS",
    "DEFAULT_T0S",
    "KWS_TARGET",
    "KWS_INPUT_SHAPE",
    "kws_phinet_budget",
]

BYTES_PER_ELEMENT = {"int8": 1, "fp32": 4}
DEFAULT_BETAS = (0.5, 0.66, 0.75, 1.0, 1.25, 1.5)
DEFAULT_T0S = (2.0, 3.0, 4.0, 5.0, 6.0)
_STEM_STRIDE = 2
_B1_FILTERS = 24  # micromind 0.2.1's hard-coded base widths
_B2_FILTERS = 48


def expansion_factor(t0: float, beta: float, block: int, num_layers: int) -> float:
    """Expansion t_B of block ``block`` (1..N) in micromind's PhiNet.

    ``t_B = t0 * (beta * B / N + (N - B) / N)``: it moves linearly from t0 (B = 0) to
    beta * t0 at the last block.

    Example:
        >>> expansion_factor(6.0, 1.0, 3, 7)
        6.0
    """
    if not 1 <= block <= num_layers:
        raise ValueError(f"block must be in 1..num_layers={num_layers}, got {block}")
    return t0 * beta * block / num_layers + t0 * (num_layers - block) / num_layers


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One expansion block of a PhiNet at alpha = 1 (see the module docstring)."""

    block: int          # B, 1..N
    in_channels: int    # C_B at alpha = 1
    out_channels: int   # at alpha = 1
    expansion: float    # t_B
    in_hw: tuple[int, int]   # (H_B, W_B): input resolution of the block
    out_hw: tuple[int, int]
    stride: int
    kernel: int = 3


def _halve(hw: tuple[int, int]) -> tuple[int, int]:
    # micromind pads stride-2 convs so that the output is ceil(side / 2)
    return (math.ceil(hw[0] / 2), math.ceil(hw[1] / 2))


def phinet_blocks(input_shape: Sequence[int], beta: float, t0: float, num_layers: int = 7,
                  downsampling_layers: Sequence[int] = (5, 7)) -> list[BlockSpec]:
    """The N expansion blocks of micromind's PhiNet for an input ``(C, H, W)``, at alpha = 1.

    Example:
        >>> [b.in_channels for b in phinet_blocks((3, 160, 160), 1.0, 4.0, 7)]
        [24, 24, 24, 48, 48, 96, 96]
        >>> phinet_blocks((3, 160, 160), 1.0, 4.0, 7)[0].in_hw
        (80, 80)
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {tuple(input_shape)!r}")
    if num_layers < 3:
        raise ValueError(f"num_layers must be >= 3, got {num_layers}")
    hw = _halve((int(input_shape[1]), int(input_shape[2])))  # after the stride-2 stem
    blocks: list[BlockSpec] = []
    # blocks 1-3 are fixed in micromind: 24 -> 24 (stride 2), 24 -> 24, 24 -> 48 (stride 2)
    fixed = ((1, _B1_FILTERS, _B1_FILTERS, 2), (2, _B1_FILTERS, _B1_FILTERS, 1),
             (3, _B1_FILTERS, _B2_FILTERS, 2))
    for block, c_in, c_out, stride in fixed:
        out_hw = _halve(hw) if stride == 2 else hw
        blocks.append(BlockSpec(block, c_in, c_out, expansion_factor(t0, beta, block, num_layers),
                                hw, out_hw, stride))
        hw = out_hw
    width = _B2_FILTERS
    for block in range(4, num_layers + 1):
        stride = 2 if block in downsampling_layers else 1
        c_in = width
        width = width * 2 if stride == 2 else width
        out_hw = _halve(hw) if stride == 2 else hw
        blocks.append(BlockSpec(block, c_in, width, expansion_factor(t0, beta, block, num_layers),
                                hw, out_hw, stride))
        hw = out_hw
    return blocks


def block_params(alpha: float, t: float, c: float, k: int = 3) -> float:
    """The deck's parameter count of one block: ``2 alpha^2 t c^2 + alpha t c k^2``.

    Example:
        >>> block_params(0.5, 6.0, 24, 3)
        2376.0
    """
    return 2.0 * alpha ** 2 * t * c ** 2 + alpha * t * c * k ** 2


def block_macs(alpha: float, t: float, c: float, h: int, w: int, k: int = 3) -> float:
    """The deck's MACs of one block: ``W H (2 alpha^2 t c^2 + alpha t c k^2)``.

    Example:
        >>> block_macs(0.5, 6.0, 24, 10, 10, 3)
        237600.0
    """
    return float(h) * float(w) * block_params(alpha, t, c, k)


def closed_form_params(input_shape: Sequence[int], alpha: float, beta: float, t0: float,
                       num_layers: int = 7, downsampling_layers: Sequence[int] = (5, 7)) -> float:
    """Sum of :func:`block_params` over the N expansion blocks.

    Example:
        >>> round(closed_form_params((3, 160, 160), 1.0, 0.66, 4.0, 7))
        151960
    """
    return sum(block_params(alpha, b.expansion, b.in_channels, b.kernel)
               for b in phinet_blocks(input_shape, beta, t0, num_layers, downsampling_layers))


def closed_form_macs(input_shape: Sequence[int], alpha: float, beta: float, t0: float,
                     num_layers: int = 7, downsampling_layers: Sequence[int] = (5, 7)) -> float:
    """Sum of :func:`block_macs` over the N expansion blocks (at each block's input size).

    Example:
        >>> round(closed_form_macs((3, 160, 160), 1.0, 0.66, 4.0, 7) / 1e6, 1)
        71.9
    """
    return sum(block_macs(alpha, b.expansion, b.in_channels, b.in_hw[0], b.in_hw[1], b.kernel)
               for b in phinet_blocks(input_shape, beta, t0, num_layers, downsampling_layers))


def closed_form_ram(input_shape: Sequence[int], alpha: float, t0: float, dtype: str = "int8") -> float:
    """The deck's RAM law ``H0 W0 (t0 + alpha t0 + C0)`` in bytes for ``dtype``.

    Example:
        >>> closed_form_ram((3, 160, 160), 1.0, 4.0)
        281600.0
    """
    c0, h0, w0 = (int(v) for v in input_shape)
    return float(h0 * w0 * (t0 + alpha * t0 + c0) * _bytes_per_element(dtype))


def closed_form_costs(input_shape: Sequence[int], alpha: float, beta: float, t0: float,
                      num_layers: int = 7, dtype: str = "int8",
                      downsampling_layers: Sequence[int] = (5, 7)) -> dict[str, float]:
    """All three closed forms plus flash (params x bytes per weight) as one dict.

    Example:
        >>> sorted(closed_form_costs((1, 49, 40), 0.5, 1.0, 4.0))
        ['flash_bytes', 'macs', 'params', 'peak_ram_bytes']
    """
    for name, value in (("alpha", alpha), ("beta", beta), ("t0", t0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
                or float(value) <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    params = closed_form_params(input_shape, alpha, beta, t0, num_layers, downsampling_layers)
    return {"params": params,
            "macs": closed_form_macs(input_shape, alpha, beta, t0, num_layers, downsampling_layers),
            "flash_bytes": params * _bytes_per_element(dtype),
            "peak_ram_bytes": closed_form_ram(input_shape, alpha, t0, dtype)}


def _closed_forms(input_shape: Sequence[int], alpha: float, beta: float, t0: float, num_layers: int,
                  dtype: str) -> dict[str, float]:
    """The closed forms plus a stand-in for cycles (the MACs): the solver calibrates every
    closed form against measured networks, so cycles only need to move with alpha like MACs
    do; the measured cost table supplies the actual cycles."""
    cf = closed_form_costs(input_shape, alpha, beta, t0, num_layers, dtype)
    cf["cycles"] = cf["macs"]
    return cf


def alpha_for_macs(mac_budget: float, input_shape: Sequence[int], beta: float, t0: float,
                   num_layers: int = 7, downsampling_layers: Sequence[int] = (5, 7)) -> float:
    """Invert the MAC closed form: the alpha whose ``closed_form_macs`` equals ``mac_budget``.

    MAC(alpha) = a alpha^2 + b alpha, so alpha = (-b + sqrt(b^2 + 4 a M)) / (2 a).

    Example:
        >>> a = alpha_for_macs(5e6, (1, 49, 40), 1.0, 4.0)
        >>> round(closed_form_macs((1, 49, 40), a, 1.0, 4.0) / 5e6, 6)
        1.0
    """
    if mac_budget <= 0:
        raise ValueError(f"mac_budget must be positive, got {mac_budget}")
    blocks = phinet_blocks(input_shape, beta, t0, num_layers, downsampling_layers)
    a = sum(b.in_hw[0] * b.in_hw[1] * 2.0 * b.expansion * b.in_channels ** 2 for b in blocks)
    lin = sum(b.in_hw[0] * b.in_hw[1] * b.expansion * b.in_channels * b.kernel ** 2 for b in blocks)
    return (-lin + math.sqrt(lin * lin + 4.0 * a * mac_budget)) / (2.0 * a)


def _bytes_per_element(dtype: str) -> int:
    if dtype not in BYTES_PER_ELEMENT:
        raise ValueError(f"dtype must be one of {sorted(BYTES_PER_ELEMENT)}, got {dtype!r}")
    return BYTES_PER_ELEMENT[dtype]


# --------------------------------------------------------------------------- measured costs

@dataclasses.dataclass(frozen=True)
class PhiNetCosts:
    """Measured costs of one PhiNet classifier."""

    params: int
    macs: int
    flash_bytes: int
    peak_ram_bytes: int
    dtype: str
    # Cortex-M4 cycles of one inference predicted from the measured kernel cost table
    # (deploy.kernel_costs; the course firmware, int8, no flash wait states).
    cycles: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _hp_key(alpha: float, beta: float, t0: float) -> tuple[float, float, float]:
    return (round(float(alpha), 4), round(float(beta), 4), round(float(t0), 4))


@functools.lru_cache(maxsize=4096)
def _measure_cached(input_shape: tuple[int, int, int], num_classes: int, alpha: float, beta: float,
                    t0: float, num_layers: int, compatibility: bool, dtype: str,
                    downsampling_layers: tuple[int, ...]) -> PhiNetCosts:
    import torch

    from . import cost
    from .models.phinet import build_phinet

    # Costs do not depend on the weights: restore the global RNG so that measuring does not
    # change what a later seeded cell draws. One thread: these forward passes are tiny and
    # threads only add overhead (and contention on a shared laptop CPU).
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model = build_phinet(input_shape, num_classes, alpha, beta, t0, num_layers, compatibility,
                             downsampling_layers=downsampling_layers).eval()
        measured = cost.measure(model, input_shape, dtype=dtype)
        cycles = _predicted_cycles(model, input_shape) if compatibility else 0
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    return PhiNetCosts(params=int(measured.params), macs=int(measured.macs),
                       flash_bytes=int(measured.flash_bytes), peak_ram_bytes=int(measured.peak_ram_bytes),
                       dtype=dtype, cycles=int(cycles))


def _predicted_cycles(model: Any, input_shape: Sequence[int]) -> float:
    """Cycles on the course's Cortex-M4 firmware from the measured kernel cost table."""
    from .deploy import kernel_costs

    return kernel_costs.predict_cycles(kernel_costs.torch_layer_costs(model, input_shape))


def measure_phinet(input_shape: Sequence[int], num_classes: int, alpha: float, beta: float, t0: float,
                   num_layers: int = 7, compatibility: bool = True, dtype: str = "int8",
                   downsampling_layers: Sequence[int] = (5, 7)) -> PhiNetCosts:
    """Build a PhiNet classifier and measure it with ``tinyml_helpers.cost`` (cached).

    Params (all weights incl. batch-norm and head), MACs (torchinfo), flash (weights at
    ``dtype``) and the peak activation memory from the tensor-lifetime planner.

    Example:
        >>> c = measure_phinet((1, 49, 40), 12, 0.5, 1.0, 4.0)  # doctest: +SKIP
        >>> c.macs > 0  # doctest: +SKIP
        True
    """
    _bytes_per_element(dtype)
    a, b, t = _hp_key(alpha, beta, t0)
    return _measure_cached(tuple(int(v) for v in input_shape), int(num_classes), a, b, t, int(num_layers),
                           bool(compatibility), dtype, tuple(int(d) for d in downsampling_layers))


def measure_with_deck_ram(input_shape: Sequence[int], num_classes: int, alpha: float, beta: float,
                          t0: float, num_layers: int = 7, compatibility: bool = True, dtype: str = "int8",
                          downsampling_layers: Sequence[int] = (5, 7)) -> PhiNetCosts:
    """Like :func:`measure_phinet`, but RAM from the deck's law ``H0 W0 (t0 + alpha t0 + C0)``.

    Pass it as ``solve_phinet(..., measure=measure_with_deck_ram)`` to see what the solver
    picks under the deck's memory model instead of the tensor-lifetime planner.

    Example:
        >>> c = measure_with_deck_ram((3, 160, 160), 10, 1.0, 0.66, 4.0)  # doctest: +SKIP
        >>> c.peak_ram_bytes  # doctest: +SKIP
        281600
    """
    measured = measure_phinet(input_shape, num_classes, alpha, beta, t0, num_layers, compatibility, dtype,
                              downsampling_layers)
    return dataclasses.replace(measured, peak_ram_bytes=int(closed_form_ram(input_shape, alpha, t0, dtype)))


# The patch-based memory model (MCUNetV2; deploy.schedule): grids tried, and the recomputation
# the solver accepts for a smaller peak (MCUNetV2 reports about 10 % more MACs for its networks).
PATCH_GRIDS = (2, 3, 4)
MAX_PATCH_MAC_OVERHEAD = 0.10


@functools.lru_cache(maxsize=1024)
def _patch_peak_cached(input_shape: tuple[int, int, int], num_classes: int, alpha: float, beta: float, t0: float,
                       num_layers: int, compatibility: bool, dtype: str, downsampling_layers: tuple[int, ...],
                       grids: tuple, max_overhead: float) -> tuple[int, int, str]:
    import torch

    from .cost import spatial_graph_from_torch
    from .deploy.schedule import smallest_peak_schedule
    from .models.phinet import build_phinet

    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        model = build_phinet(input_shape, num_classes, alpha, beta, t0, num_layers, compatibility,
                             downsampling_layers=downsampling_layers).eval()
        graph = spatial_graph_from_torch(model, input_shape, dtype)
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    sched = smallest_peak_schedule(graph, grids, max_overhead)
    return sched.peak_bytes, sched.extra_macs, sched.summary()


def measure_with_patch_ram(input_shape: Sequence[int], num_classes: int, alpha: float, beta: float,
                           t0: float, num_layers: int = 7, compatibility: bool = True, dtype: str = "int8",
                           downsampling_layers: Sequence[int] = (5, 7)) -> PhiNetCosts:
    """Like :func:`measure_phinet`, but RAM under **patch-based execution** of the first layers
    (MCUNetV2; planned by ``deploy.schedule`` on the network's graph): the smallest peak over
    :data:`PATCH_GRIDS` whose recomputed MACs stay within :data:`MAX_PATCH_MAC_OVERHEAD`.
    The recomputed MACs are added to ``macs`` (and, in proportion, to ``cycles``): the
    schedule costs compute, and the MAC budget sees it.

    Pass it as ``solve_phinet(..., memory_model="patch")``.

    Example:
        >>> c = measure_with_patch_ram((3, 160, 160), 10, 1.0, 0.66, 4.0)  # doctest: +SKIP
        >>> c.peak_ram_bytes < measure_phinet((3, 160, 160), 10, 1.0, 0.66, 4.0).peak_ram_bytes  # doctest: +SKIP
        True
    """
    measured = measure_phinet(input_shape, num_classes, alpha, beta, t0, num_layers, compatibility, dtype,
                              downsampling_layers)
    a, b, t = _hp_key(alpha, beta, t0)
    peak, extra, _ = _patch_peak_cached(tuple(int(v) for v in input_shape), int(num_classes), a, b, t,
                                        int(num_layers), bool(compatibility), dtype,
                                        tuple(int(d) for d in downsampling_layers), PATCH_GRIDS,
                                        float(MAX_PATCH_MAC_OVERHEAD))
    cycles = int(round(measured.cycles * (1 + extra / max(measured.macs, 1))))
    return dataclasses.replace(measured, peak_ram_bytes=int(peak), macs=int(measured.macs + extra), cycles=cycles)


MEMORY_MODELS = {"whole": measure_phinet, "patch": measure_with_patch_ram}


def clear_measure_cache() -> None:
    """Forget cached measurements (e.g. after changing the cost module)."""
    _measure_cached.cache_clear()
    _patch_peak_cached.cache_clear()


def cost_grid(input_shape: Sequence[int], num_classes: int, alphas: Iterable[float],
              betas: Iterable[float], t0s: Iterable[float], num_layers: int = 7,
              compatibility: bool = True, dtype: str = "int8",
              progress: bool = False) -> list[dict[str, Any]]:
    """Closed-form and measured costs over a grid of (alpha, beta, t0), one dict per network.

    Keys: ``alpha, beta, t0``, ``cf_params, cf_macs, cf_ram`` (closed forms; RAM in bytes at
    ``dtype``) and ``params, macs, flash_bytes, peak_ram_bytes`` (measured).

    Example:
        >>> rows = cost_grid((1, 49, 40), 12, [0.5], [1.0], [4.0])  # doctest: +SKIP
        >>> sorted(rows[0])[:3]  # doctest: +SKIP
        ['alpha', 'beta', 'cf_macs']
    """
    points = [(float(a), float(b), float(t)) for a in alphas for b in betas for t in t0s]
    if not points:
        raise ValueError("the grid is empty: give at least one alpha, beta and t0")
    iterator: Iterable[tuple[float, float, float]] = points
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(points, desc="measuring PhiNets", leave=False)
    rows = []
    for a, b, t in iterator:
        cf = closed_form_costs(input_shape, a, b, t, num_layers, dtype)
        m = measure_phinet(input_shape, num_classes, a, b, t, num_layers, compatibility, dtype)
        rows.append({"alpha": a, "beta": b, "t0": t, "cf_params": cf["params"], "cf_macs": cf["macs"],
                     "cf_ram": cf["peak_ram_bytes"], **{k: v for k, v in m.as_dict().items() if k != "dtype"}})
    return rows


def per_block_costs(input_shape: Sequence[int], alpha: float, beta: float, t0: float,
                    num_layers: int = 7, num_classes: int = 10,
                    compatibility: bool = True) -> list[dict[str, Any]]:
    """Closed-form vs measured params and MACs for each part of one PhiNet.

    Parts: ``stem`` (separable conv), ``block 0`` (micromind's first block, no expansion),
    ``block 1`` .. ``block N`` (the expansion blocks the closed forms sum over) and ``head``.
    Measured MACs come from ``cost.layer_macs`` (conv/linear layers); measured params are
    all the part's parameters (batch-norm included).

    Example:
        >>> rows = per_block_costs((1, 49, 40), 0.5, 1.0, 4.0)
        >>> [r["part"] for r in rows][:3], rows[0]["cf_macs"]
        (['stem', 'block 0', 'block 1'], 0.0)
    """
    from . import cost
    from .models.phinet import build_phinet

    model = build_phinet(input_shape, num_classes, alpha, beta, t0, num_layers, compatibility).eval()
    specs = phinet_blocks(input_shape, beta, t0, num_layers)
    parts = [("stem", model._layers[1], None), ("block 0", model._layers[2], None)]
    parts += [(f"block {b.block}", model._layers[2 + b.block], b) for b in specs]
    parts.append(("head", model.classifier, None))
    macs_by_module = {name: m for name, _, m in cost.layer_macs(model, input_shape)}
    names = {id(mod): name for name, mod in model.named_modules()}
    rows = []
    for label, module, spec in parts:
        prefix = names[id(module)] + "."
        rows.append({
            "part": label,
            "cf_params": block_params(alpha, spec.expansion, spec.in_channels, spec.kernel) if spec else 0.0,
            "cf_macs": block_macs(alpha, spec.expansion, spec.in_channels, *spec.in_hw, spec.kernel) if spec else 0.0,
            "params": int(sum(p.numel() for p in module.parameters())),
            "macs": int(sum(v for k, v in macs_by_module.items() if k.startswith(prefix))),
            "stride": spec.stride if spec else None,
        })
    return rows


# --------------------------------------------------------------------------- the solver

_RESOURCES = (("flash_bytes", "flash"), ("peak_ram_bytes", "RAM"), ("macs", "MACs"), ("cycles", "cycles"))
# Cores whose cycles the measured kernel cost table predicts (the course firmware's target).
CYCLE_MODEL_CORES = ("Cortex-M4", "Cortex-M4F")
# Headroom between the cycle budget and the target: the cost table predicts whole PhiNets
# within -3 % / +1 % of the emulator's cycle model (deploy.kernel_costs; six widths fitted,
# two more held out), and trained weights may take other rescale paths than the random ones
# it was measured with, so a network predicted to fit with 10 % to spare meets the target.
CYCLE_PREDICTION_MARGIN = 0.10
# The largest alpha grid the solver builds (points); finer steps belong in alpha_refine.
MAX_ALPHA_GRID = 10_000


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a target MCU offers one inference: flash and RAM bytes, MACs, and the dtype.

    ``None`` for a resource means "no limit". ``dtype`` ("int8" or "fp32") sets how many
    bytes each weight (flash) and each activation (RAM) takes.

    Example:
        >>> Budget(flash_bytes=1_000_000, ram_bytes=392_000, macs=63_000_000).dtype
        'int8'
    """

    flash_bytes: float | None
    ram_bytes: float | None
    macs: float | None
    dtype: str = "int8"
    cycles: float | None = None   # Cortex-M4 cycles per inference (see from_mcu)

    def __post_init__(self) -> None:
        _bytes_per_element(self.dtype)
        for name in ("flash_bytes", "ram_bytes", "macs", "cycles"):
            value = getattr(self, name)
            if value is None:
                continue
            # numbers.Real also admits NumPy scalars (np.int64, np.float32), which are not int/float
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
                    or not float(value) > 0:
                raise ValueError(f"budget {name} must be a positive number or None (no limit), got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.flash_bytes is None and self.ram_bytes is None and self.macs is None and self.cycles is None:
            raise ValueError("the budget sets no limit at all: give at least one of flash_bytes, "
                             "ram_bytes, macs, cycles")

    def limits(self) -> dict[str, float]:
        """``{cost key: limit}`` for the resources that are limited."""
        return {key: float(v) for key, v in (("flash_bytes", self.flash_bytes),
                                             ("peak_ram_bytes", self.ram_bytes),
                                             ("macs", self.macs), ("cycles", self.cycles)) if v is not None}

    @classmethod
    def from_mcu(cls, mcu: Any, dtype: str = "int8", macs: float | None = None,
                 flash_fraction: float = 1.0, ram_fraction: float = 1.0,
                 target_latency_s: float | None = None) -> "Budget":
        """A budget from a catalog MCU (``tinyml_helpers.cost.get_mcu`` name or entry).

        Flash and RAM come from the datasheet figures; ``flash_fraction`` / ``ram_fraction``
        keep some of them for the application and runtime. Compute: ``macs`` if given. Else,
        for a Cortex-M4 with a ``target_latency_s``, a **cycle** budget, ``clock x target /
        (1 + CYCLE_PREDICTION_MARGIN)``, that the solver checks against cycles predicted
        from the measured kernel costs (``deploy.kernel_costs``); otherwise the catalog's MAC
        budget (published, or derived from an assumed MACs per cycle: ``cost.mac_budget``).

        Example:
            >>> Budget.from_mcu("seed example").macs
            63000000.0
            >>> b = Budget.from_mcu("nRF52840", target_latency_s=0.05)
            >>> b.macs is None, round(b.cycles)
            (True, 2909091)
        """
        from . import cost

        m = cost.get_mcu(mcu)
        for name, frac in (("flash_fraction", flash_fraction), ("ram_fraction", ram_fraction)):
            if not 0 < frac <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {frac!r}")
        cycles = None
        if macs is None and target_latency_s is not None and m.core in CYCLE_MODEL_CORES and m.clock_hz:
            if not target_latency_s > 0:
                raise ValueError(f"target_latency_s must be positive, got {target_latency_s!r}")
            cycles = float(m.clock_hz) * float(target_latency_s) / (1.0 + CYCLE_PREDICTION_MARGIN)
        elif macs is None:
            macs = cost.mac_budget(m, target_latency_s=target_latency_s)
        return cls(flash_bytes=float(m.flash_bytes) * flash_fraction,
                   ram_bytes=float(m.sram_bytes) * ram_fraction, macs=None if macs is None else float(macs),
                   dtype=dtype, cycles=cycles)


@dataclasses.dataclass
class ScalingSolution:
    """What :func:`solve_phinet` found, with the measured costs of that network."""

    alpha: float
    beta: float
    t0: float
    num_layers: int
    input_shape: tuple[int, int, int]
    num_classes: int
    compatibility: bool
    costs: PhiNetCosts
    budget: Budget
    utilization: dict[str, float]
    binding: str
    score: float
    candidates: list[dict[str, Any]]
    n_measured: int
    seconds: float

    def build(self, seed: int | None = None) -> Any:
        """Build the (untrained) network this solution describes."""
        from .models.phinet import build_phinet

        return build_phinet(self.input_shape, self.num_classes, self.alpha, self.beta, self.t0,
                            self.num_layers, self.compatibility, seed=seed)

    def hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "t0": self.t0,
                "num_layers": self.num_layers, "input_shape": list(self.input_shape)}

    def summary(self) -> str:
        """A few readable lines: the choice, each resource used vs budget, what binds."""
        from .results import format_value

        c, h, w = self.input_shape
        lines = [f"PhiNet alpha={self.alpha:g}, beta={self.beta:g}, t0={self.t0:g}, "
                 f"{self.num_layers} blocks, input {c}x{h}x{w} ({self.budget.dtype})"]
        limits = self.budget.limits()
        for key, label in _RESOURCES:
            if key == "cycles" and key not in limits:
                continue  # only shown when budgeted
            used = getattr(self.costs, key)
            unit = {"macs": "MACs", "cycles": "count"}.get(key, "bytes")
            if key in limits:
                lines.append(f"  {label:>5}: {format_value(used, unit)} of {format_value(limits[key], unit)}"
                             f" ({100 * used / limits[key]:.0f} %)")
            else:
                lines.append(f"  {label:>5}: {format_value(used, unit)} (no limit)")
        lines.append(f"  params: {self.costs.params:,}; binding resource: {self.binding}; "
                     f"{self.n_measured} networks measured in {self.seconds:.1f} s")
        return "\n".join(lines)


# The course's keyword-spotting target: a Nordic nRF52840 (Cortex-M4F, 1 MB flash, 256 KB
# RAM, 64 MHz; see tinyml_helpers.cost's catalog). The BLE stack and the application keep
# most of the chip, so the model gets a quarter of flash and RAM, and one inference may
# take 50 ms of CPU time: a cycle budget (Budget.from_mcu) that the solver checks against
# cycles predicted from the kernels' measured costs (deploy.kernel_costs), and that
# notebook 06 checks on the emulated chip.
KWS_TARGET = {"mcu": "nRF52840", "flash_fraction": 0.25, "ram_fraction": 0.25, "target_latency_s": 0.05}
KWS_INPUT_SHAPE = (1, 49, 40)


def kws_phinet_budget(dtype: str = "int8") -> Budget:
    """The budget the keyword PhiNet is solved for (``KWS_TARGET``).

    Example:
        >>> kws_phinet_budget().ram_bytes
        65536.0
    """
    return Budget.from_mcu(KWS_TARGET["mcu"], dtype=dtype, flash_fraction=KWS_TARGET["flash_fraction"],
                           ram_fraction=KWS_TARGET["ram_fraction"],
                           target_latency_s=KWS_TARGET["target_latency_s"])


class InfeasibleBudgetError(ValueError):
    """No PhiNet in the search space fits the budget; the message says what binds."""

    def __init__(self, message: str, binding: str, needed: float):
        super().__init__(message)
        self.binding = binding
        self.needed = needed


def _utilization(costs: PhiNetCosts, limits: dict[str, float]) -> dict[str, float]:
    return {key: getattr(costs, key) / limit for key, limit in limits.items()}


def _fits(costs: PhiNetCosts, limits: dict[str, float]) -> bool:
    return all(getattr(costs, key) <= limit for key, limit in limits.items())


def _score(util: dict[str, float]) -> float:
    return math.exp(sum(math.log(max(u, 1e-12)) for u in util.values()) / len(util))


def _label(key: str) -> str:
    return dict(_RESOURCES)[key]


_HOW_TO_RELAX = {
    "flash_bytes": "or use fewer classes / a smaller t0 or beta range, or int8 weights",
    "peak_ram_bytes": "or lower the input resolution",
    "macs": "or lower the input resolution or the number of blocks",
    "cycles": "or allow a longer target latency, or pick a faster MCU",
}


def _grid(low: float, high: float, step: float) -> list[float]:
    """Points low, low + step, ... <= high; refuses grids of more than MAX_ALPHA_GRID points
    (a fine step over a wide range once built a multi-gigabyte list)."""
    n = int(math.floor((high - low) / step + 1e-9))
    if n + 1 > MAX_ALPHA_GRID:
        raise ValueError(f"the alpha grid from {low:g} to {high:g} in steps of {step:g} has {n + 1:,} points "
                         f"(at most {MAX_ALPHA_GRID:,}): use a coarser alpha_step (e.g. 0.05) and let "
                         "alpha_refine give the precision, or a narrower alpha_range")
    return [round(low + i * step, 4) for i in range(n + 1)]


def solve_phinet(budget: Budget, input_shape: Sequence[int], num_classes: int, *,
                 betas: Iterable[float] = DEFAULT_BETAS, t0s: Iterable[float] = DEFAULT_T0S,
                 num_layers: int | Iterable[int] = 7,
                 resolutions: Iterable[tuple[int, int]] | None = None,
                 alpha_range: tuple[float, float] = (0.1, 3.0), alpha_step: float = 0.05,
                 alpha_refine: float = 0.01, compatibility: bool = True, max_candidates: int = 5,
                 measure: Callable[..., PhiNetCosts] | None = None,
                 progress: bool = False, memory_model: str = "whole") -> ScalingSolution:
    """The PhiNet (alpha, beta, t0[, depth, resolution]) that uses an MCU budget best.

    Every returned network fits the budget by **measured** cost. Search: (1) measure two
    reference networks per (depth, resolution) to calibrate the closed forms; (2) for every
    (beta, t0) predict the largest alpha that fits and the resulting score; (3) for the
    ``max_candidates`` best predictions, find the largest fitting alpha on an
    ``alpha_step`` grid by measurement (secant steps from the prediction, then a walk that
    confirms the boundary); (4) refine the winner's alpha to ``alpha_refine``.
    Score = geometric mean of used/budget over the limited resources (flash, RAM, MACs, cycles),
    all <= 1.

    Args:
        budget: limits and dtype (see :class:`Budget`).
        input_shape: ``(C, H, W)``; with ``resolutions`` only C is used.
        num_classes: size of the classification head.
        betas, t0s: the grid of shape factors and base expansions to search.
        num_layers: one depth or several to search.
        resolutions: optional candidate input ``(H, W)`` sizes to search.
        alpha_range, alpha_step, alpha_refine: the alpha search space and its precision.
        compatibility: micromind MCU mode (ReLU6, no squeeze-excite).
        max_candidates: how many (beta, t0, depth, resolution) candidates get measured.
        measure: cost function with :func:`measure_phinet`'s signature (tests swap it).
        memory_model: ``"whole"`` (default: every tensor kept whole, :func:`measure_phinet`)
            or ``"patch"`` (the first layers run patch by patch, MCUNetV2:
            :func:`measure_with_patch_ram`, whose MACs include the recomputed halos).
        progress: show a tqdm bar over the measured candidates.

    Raises:
        InfeasibleBudgetError: when even the smallest network in the search space does not
            fit; the message names the binding resource and the smallest budget that works.

    Example:
        >>> s = solve_phinet(Budget(256_000, 64_000, 5e6), (1, 49, 40), 12)  # doctest: +SKIP
        >>> s.costs.peak_ram_bytes <= 64_000  # doctest: +SKIP
        True
    """
    started = time.perf_counter()
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget(flash_bytes=..., ram_bytes=..., macs=..., dtype=...), "
                        f"got {type(budget).__name__}")
    if memory_model not in MEMORY_MODELS:
        raise ValueError(f"memory_model must be one of {sorted(MEMORY_MODELS)}, got {memory_model!r}")
    if measure is not None and memory_model != "whole":
        raise ValueError("give either measure= or memory_model=, not both: memory_model picks the measure")
    measure = measure or MEMORY_MODELS[memory_model]
    channels = int(input_shape[0])
    shapes = ([(channels, int(h), int(w)) for h, w in resolutions] if resolutions is not None
              else [tuple(int(v) for v in input_shape)])
    depths = [int(num_layers)] if isinstance(num_layers, (int, float)) else [int(n) for n in num_layers]
    betas, t0s = [float(b) for b in betas], [float(t) for t in t0s]
    if not (shapes and depths and betas and t0s):
        raise ValueError("the search space is empty: give at least one beta, t0, depth and resolution")
    lo, hi = float(alpha_range[0]), float(alpha_range[1])
    if not 0 < lo <= hi:
        raise ValueError(f"alpha_range must be (low, high) with 0 < low <= high, got {alpha_range}")
    if not (alpha_step > 0 and alpha_refine > 0 and math.isfinite(alpha_step) and math.isfinite(alpha_refine)):
        raise ValueError(f"alpha_step and alpha_refine must be positive finite numbers, got {alpha_step!r}, "
                         f"{alpha_refine!r}")
    if not math.isfinite(hi):
        raise ValueError(f"alpha_range must be finite, got {alpha_range}")
    alpha_grid = _grid(lo, hi, alpha_step)  # refuses an oversized grid before any measurement
    if alpha_refine < alpha_step:
        _grid(0.0, alpha_step, alpha_refine)  # the refinement grid must be bounded too
    limits = budget.limits()
    dtype = budget.dtype
    n_measured = 0

    def cost(shape: tuple[int, int, int], depth: int, a: float, b: float, t: float) -> PhiNetCosts:
        nonlocal n_measured
        n_measured += 1
        return measure(shape, num_classes, a, b, t, depth, compatibility, dtype)

    # (0) feasibility: costs grow with alpha, beta, t0, depth and resolution, so the smallest
    # corner of the search space is the cheapest network there is.
    smallest_shape = min(shapes, key=lambda s: s[1] * s[2])
    smallest = cost(smallest_shape, min(depths), lo, min(betas), min(t0s))
    if not _fits(smallest, limits):
        over = {k: getattr(smallest, k) / v for k, v in limits.items() if getattr(smallest, k) > v}
        key = max(over, key=over.get)
        needed = getattr(smallest, key)
        from .results import format_value

        units = {"macs": "MACs", "cycles": "count"}
        unit = units.get(key, "bytes")
        what = {"flash_bytes": f"{format_value(needed, unit)} of {dtype} weights",
                "peak_ram_bytes": f"{format_value(needed, unit)} of {dtype} activations",
                "macs": f"{format_value(needed, unit)} per inference",
                "cycles": f"{format_value(needed, unit)} cycles per inference"}[key]
        others = [f"{_label(k)} {format_value(getattr(smallest, k), units.get(k, 'bytes'))}"
                  for k in over if k != key]
        raise InfeasibleBudgetError(
            f"{_label(key)} binds: even the smallest PhiNet in the search space (alpha={lo:g}, "
            f"beta={min(betas):g}, t0={min(t0s):g}, {min(depths)} blocks, input "
            f"{smallest_shape[1]}x{smallest_shape[2]}) needs {what}; raise the {_label(key)} budget "
            f"to >= {format_value(needed, unit)} {_HOW_TO_RELAX[key]}."
            + (f" It also exceeds: {', '.join(others)}." if others else ""),
            binding=_label(key), needed=float(needed))

    def excess(c: PhiNetCosts) -> float:
        """max over resources of log(used / limit): <= 0 means the network fits."""
        return max(math.log(max(getattr(c, k), 1e-9) / v) for k, v in limits.items())

    # (1)-(2) calibrate the closed forms per (depth, resolution) with two measured reference
    # networks (alpha = 1 and alpha = a quarter of the range), so that the correction
    # factor measured/closed-form may itself vary as a power of alpha; then rank.
    ranked = []
    for shape in shapes:
        for depth in depths:
            ref_b, ref_t = 1.0, float(sorted(t0s)[len(t0s) // 2])
            ref_alphas = (max(lo, min(hi, 1.0)), max(lo, min(hi, 0.25 * (lo + hi))))
            refs = [(ra, cost(shape, depth, ra, ref_b, ref_t),
                     _closed_forms(shape, ra, ref_b, ref_t, depth, dtype)) for ra in ref_alphas]

            def correction(a: float, k: str, refs: list = refs) -> float:
                (a1, m1, c1), (a2, m2, c2) = refs
                r1 = getattr(m1, k) / max(c1[k], 1e-9)
                r2 = getattr(m2, k) / max(c2[k], 1e-9)
                if abs(a1 - a2) < 1e-9:
                    return r1
                q = math.log(r2 / r1) / math.log(a2 / a1)
                return r1 * (a / a1) ** q

            for b in betas:
                for t in t0s:
                    def predicted(a: float, b: float = b, t: float = t, shape: tuple = shape,
                                  depth: int = depth, correction: Callable = correction) -> dict[str, float]:
                        cf = _closed_forms(shape, a, b, t, depth, dtype)
                        return {k: cf[k] * correction(a, k) for k in limits}

                    def pred_fits(i: int, predicted: Callable = predicted) -> bool:
                        return all(v <= limits[k] for k, v in predicted(alpha_grid[i]).items())

                    best_i = 0
                    if pred_fits(0):  # largest grid alpha predicted to fit
                        i_lo, i_hi = 0, len(alpha_grid) - 1
                        while i_lo < i_hi:
                            mid = (i_lo + i_hi + 1) // 2
                            i_lo, i_hi = (mid, i_hi) if pred_fits(mid) else (i_lo, mid - 1)
                        best_i = i_lo
                    pred = predicted(alpha_grid[best_i])
                    pred_score = _score({k: min(1.0, v / limits[k]) for k, v in pred.items()})
                    ranked.append((pred_score, shape, depth, b, t, best_i))
    ranked.sort(key=lambda r: -r[0])

    # (3) measured search on alpha for the most promising candidates
    def largest_fitting(shape: tuple[int, int, int], depth: int, b: float, t: float,
                        grid: list[float], start: int, secant: bool = True
                        ) -> tuple[int, PhiNetCosts] | None:
        """Largest grid index whose network fits by measurement (None if even grid[0] fails).

        A secant search on log(alpha) against the measured excess (log used/limit of the
        tightest resource) lands next to the answer in two or three measurements; a short
        walk then confirms the boundary (grid[i] fits, grid[i+1] does not).
        """
        seen: dict[int, PhiNetCosts] = {}

        def at(i: int) -> PhiNetCosts:
            if i not in seen:
                seen[i] = cost(shape, depth, grid[i], b, t)
            return seen[i]

        i = start
        if secant:
            prev: tuple[float, float] | None = None
            for _ in range(4):
                e = excess(at(i))
                la = math.log(grid[i])
                if prev is None:
                    # first step: the slope of the closed forms (MACs ~ alpha^2, RAM ~ alpha)
                    cf1 = _closed_forms(shape, grid[i], b, t, depth, dtype)
                    cf2 = _closed_forms(shape, grid[i] * 1.1, b, t, depth, dtype)
                    slope = max(math.log(cf2[k] / cf1[k]) for k in limits) / math.log(1.1)
                else:
                    slope = (e - prev[1]) / (la - prev[0]) if la != prev[0] else 0.0
                if slope <= 1e-3:
                    break
                target = math.exp(la - (e + 0.01) / slope)  # aim just inside the budget
                j = max(0, min(len(grid) - 1, int(math.floor((target - grid[0]) / (grid[1] - grid[0] if len(grid) > 1 else 1) + 1e-9))))
                if j == i or j in seen:
                    i = j
                    break
                prev, i = (la, e), j
        if _fits(at(i), limits):
            while i + 1 < len(grid) and _fits(at(i + 1), limits):
                i += 1
            return i, at(i)
        step = 1
        while i > 0:  # walk (then gallop) down until something fits, then bisect
            j = max(0, i - step)
            if _fits(at(j), limits):
                lo_i, hi_i = j, i - 1
                while lo_i < hi_i:
                    mid = (lo_i + hi_i + 1) // 2
                    lo_i, hi_i = (mid, hi_i) if _fits(at(mid), limits) else (lo_i, mid - 1)
                return lo_i, at(lo_i)
            i, step = j, step * 2
        return None

    candidates: list[dict[str, Any]] = []
    iterator: Iterable[Any] = ranked
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(ranked[:max_candidates], desc="measuring candidates", leave=False)
    for n_done, (pred_score, shape, depth, b, t, start) in enumerate(iterator):
        if n_done >= max_candidates and candidates:
            break
        found = largest_fitting(shape, depth, b, t, alpha_grid, start)
        if found is None:
            continue
        i, c = found
        util = _utilization(c, limits)
        candidates.append({"alpha": alpha_grid[i], "beta": b, "t0": t, "num_layers": depth,
                           "input_shape": shape, "predicted_score": pred_score,
                           "score": _score(util), "costs": c, "utilization": util})
    if not candidates:  # every promising candidate failed at alpha_range[0]; fall back to the corner
        util = _utilization(smallest, limits)
        candidates.append({"alpha": lo, "beta": min(betas), "t0": min(t0s), "num_layers": min(depths),
                           "input_shape": smallest_shape, "predicted_score": 0.0,
                           "score": _score(util), "costs": smallest, "utilization": util})
    best = max(candidates, key=lambda r: (r["score"], r["costs"].macs))

    # (4) refine alpha between the winner's grid point and the next one
    if alpha_refine < alpha_step and best["alpha"] < hi:
        fine = _grid(best["alpha"], min(hi, best["alpha"] + alpha_step), alpha_refine)
        found = largest_fitting(best["input_shape"], best["num_layers"], best["beta"], best["t0"], fine, 0,
                                secant=False)
        if found is not None and found[0] > 0:
            i, c = found
            util = _utilization(c, limits)
            best = dict(best, alpha=fine[i], costs=c, utilization=util, score=_score(util))
    assert _fits(best["costs"], limits), "internal error: the solver picked a network that does not fit"
    binding = _label(max(best["utilization"], key=best["utilization"].get))
    return ScalingSolution(alpha=best["alpha"], beta=best["beta"], t0=best["t0"],
                           num_layers=best["num_layers"], input_shape=tuple(best["input_shape"]),
                           num_classes=int(num_classes), compatibility=compatibility,
                           costs=best["costs"], budget=budget, utilization=best["utilization"],
                           binding=binding, score=best["score"],
                           candidates=sorted(candidates, key=lambda r: -r["score"]),
                           n_measured=n_measured, seconds=time.perf_counter() - started)
