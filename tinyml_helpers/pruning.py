"""Pruning, measured: unstructured vs structured, soft vs hard, post-training vs during training.

The lesson (notebook ``02_pruning``) follows the workshop deck's three axes (unstructured or
structured, soft or hard, post-training or during training):

* **Unstructured, post-training.** Zero every weight with ``|w| <= theta``, ``theta`` chosen
  for a target sparsity (:func:`magnitude_threshold`, :func:`magnitude_prune`), or zero
  incrementally from the smallest while accuracy stays above a target
  (:func:`incremental_prune`). Masks come from ``torch.nn.utils.prune``, per layer or
  global (:func:`prune_unstructured`).
* **Structured.** Remove whole output channels by their L2 norm and rebuild a *smaller dense*
  model (:func:`prune_structured`). Removing a channel also removes the matching input
  channel of the next layer, the BatchNorm entries and the depthwise filter in between;
  ``torch-pruning``'s ``DependencyGraph`` tracks those couplings, so we use it.
* **Soft vs hard.** Soft: masked weights keep a dense "shadow" value that keeps receiving
  gradients (straight-through), and the mask is recomputed every few steps, so a zeroed
  weight can come back (as in Guo et al. 2016, *Dynamic Network Surgery*; He et al. 2018,
  *Soft Filter Pruning*, do the same per filter). Hard: a fixed ``torch.nn.utils.prune``
  mask keeps them at zero for good (:func:`fine_tune_soft`, :func:`fine_tune_hard`).
* **During training.** Gradual magnitude pruning with the cubic schedule of Zhu and Gupta
  (2017, *To prune, or not to prune*), :func:`cubic_sparsity_schedule` and
  :func:`train_gradual_pruning`. The ``||W||_0`` penalty of the deck counts non-zeros: it is
  piecewise constant in ``W``, so its gradient is zero almost everywhere and undefined where
  a weight crosses zero; gradient descent gets no signal from it
  (:func:`l0_gradient_demo`). Relaxations (Louizos et al. 2018, hard-concrete gates) or
  magnitude schedules work around that.
* **L0 relaxation with structured gates.** :class:`HardConcreteGate` puts one stochastic
  gate in ``[0, 1]`` on every output channel (Louizos, Welling and Kingma, *Learning Sparse
  Neural Networks through L0 Regularization*, ICLR 2018); the expected number of open
  gates is differentiable and replaces ``||W||_0`` in the loss (:func:`attach_channel_gates`,
  :func:`expected_l0_penalty`, :func:`train_l0_gates`). At test time closed gates are
  exact zeros, so :func:`remove_closed_channels` cuts those channels out with
  ``torch-pruning``. The gates are **our own code**, written from the paper's equations:
  no well-kept library provides hard-concrete gates for PyTorch convolutions.

And the deck's warning, measured by :func:`deployment_costs`: zeros stored densely cost the
same bytes and the same time; only a sparse format (see :mod:`tinyml_helpers.sparse`) or
physical removal saves anything.

The fine-tuning loops here are small and hand-written on purpose: soft pruning must re-mask
and gradual pruning re-prune after selected optimizer steps, i.e. they need a per-step hook
inside the loop, which ``tinyml_helpers.training.train_classifier`` does not offer.

Example:
    >>> import torch
    >>> w = torch.tensor([0.1, -0.5, 0.02, 0.9])
    >>> magnitude_prune(w, 0.5)
    tensor([ 0.0000, -0.5000,  0.0000,  0.9000])
"""
from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

__all__ = [
    "CHECKPOINTS",
    "load_pruning_model",
    "PRUNABLE_TYPES",
    "magnitude_threshold",
    "magnitude_prune",
    "clone_model",
    "prunable_layers",
    "prune_unstructured",
    "make_permanent",
    "weight_sparsity",
    "layer_sparsities",
    "IncrementalResult",
    "incremental_prune",
    "epoch_line",
    "prune_structured",
    "count_params",
    "count_macs",
    "onnx_bytes",
    "onnx_latency",
    "onnx_latencies",
    "deployment_costs",
    "pruning_grid",
    "cubic_sparsity_schedule",
    "train_epochs",
    "accuracy",
    "fine_tune_hard",
    "fine_tune_soft",
    "train_gradual_pruning",
    "l0_gradient_demo",
    "HardConcreteGate",
    "ChannelGated",
    "dscnn_gate_points",
    "attach_channel_gates",
    "channel_gates",
    "expected_l0_penalty",
    "open_channels",
    "train_l0_gates",
    "remove_closed_channels",
]

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)

# The models notebook 02 starts from, trained by tinyml_helpers.scripts.train_pruning_models.
DSCNN_KWARGS: dict[str, Any] = dict(num_classes=12, channels=64, num_blocks=4, dropout=0.2)
DSCNN_INPUT_SHAPE = (1, 49, 10)  # MLPerf Tiny's MFCC front end
TRANSFORMER_KWARGS: dict[str, Any] = dict(n_classes=12, n_mels=40, frames=49, d_model=48, n_heads=4,
                                          d_ff=96, n_layers=6, dropout=0.1)
TRANSFORMER_INPUT_SHAPE = (1, 49, 40)  # log-mel
CHECKPOINTS: dict[str, dict[str, Any]] = {
    "dscnn": dict(file="pruning_dscnn.pt", kind="mfcc",
                  what="MLPerf Tiny DS-CNN trained on the synthetic keywords (49x10 MFCC), fp32 state_dict"),
    "transformer": dict(file="pruning_transformer.pt", kind="logmel", layerdrop=0.0,
                        what="6-layer keyword transformer (d_model 48) on 49x40 log-mel, trained without LayerDrop"),
    "transformer_layerdrop": dict(file="pruning_transformer_layerdrop.pt", kind="logmel", layerdrop=0.3,
                                  what="the same transformer trained with LayerDrop p=0.3 (Fan et al. 2019)"),
}


# ----------------------------------------------------------------------------- tensors
def _check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.floating)) \
            or not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1) (e.g. 0.9 for 90 % zeros), got {sparsity!r}")
    return float(sparsity)


def _n_to_prune(numel: int, sparsity: float) -> int:
    # torch.nn.utils.prune rounds amount*numel the same way; keep the two in step.
    return int(round(sparsity * numel))


def magnitude_threshold(weights: torch.Tensor, sparsity: float) -> float:
    """The threshold ``theta``: zeroing every ``|w| <= theta`` reaches ``sparsity``.

    ``theta`` is the k-th smallest magnitude, with ``k = round(sparsity * numel)``. For
    ``sparsity == 0`` it is ``-inf``-like (``-1.0``): nothing is pruned.

    Example:
        >>> round(magnitude_threshold(torch.tensor([0.1, -0.5, 0.02, 0.9]), 0.5), 6)
        0.1
    """
    sparsity = _check_sparsity(sparsity)
    if not isinstance(weights, torch.Tensor) or weights.numel() == 0:
        raise ValueError("weights must be a non-empty torch.Tensor")
    k = _n_to_prune(weights.numel(), sparsity)
    if k == 0:
        return -1.0
    return float(weights.detach().abs().flatten().kthvalue(k).values)


def magnitude_prune(weights: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A copy of ``weights`` with its ``round(sparsity * numel)`` smallest magnitudes set to 0.

    This is the deck's rule ``w_ij = 0 if |w_ij| <= theta`` with ``theta`` from
    :func:`magnitude_threshold`; the input is left untouched.

    Example:
        >>> magnitude_prune(torch.tensor([[1.0, -0.1], [0.3, -2.0]]), 0.5)
        tensor([[ 1.,  0.],
                [ 0., -2.]])
    """
    theta = magnitude_threshold(weights, sparsity)
    pruned = weights.detach().clone()
    pruned[weights.detach().abs() <= theta] = 0.0
    return pruned


# ----------------------------------------------------------------------------- models
def load_pruning_model(name: str) -> nn.Module:
    """Build one of notebook 02's starting models and load its shipped, sha256-checked weights.

    ``name`` is ``"dscnn"``, ``"transformer"`` or ``"transformer_layerdrop"``. The file is
    checked against ``data/manifest.json`` and read with ``weights_only=True``.

    Example:
        >>> load_pruning_model("dscnn").training    # doctest: +SKIP
        False
    """
    from .data.manifest import verify_file

    if name not in CHECKPOINTS:
        raise ValueError(f"unknown pruning checkpoint {name!r}; choose one of {sorted(CHECKPOINTS)}")
    path = verify_file(f"checkpoints/{CHECKPOINTS[name]['file']}")
    if name == "dscnn":
        from .models.dscnn import DSCNN
        model: nn.Module = DSCNN(**DSCNN_KWARGS)
    else:
        from .models.transformer import KeywordTransformer
        model = KeywordTransformer(**dict(TRANSFORMER_KWARGS, layerdrop=CHECKPOINTS[name]["layerdrop"]))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def clone_model(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also works on models carrying ``torch.nn.utils.prune`` masks.

    A masked layer caches ``weight = weight_orig * mask`` as a non-leaf tensor, which
    ``deepcopy`` refuses; the cache is refreshed without autograd history first (the
    pruning hook recomputes it at the next forward anyway).

    Example:
        >>> m = prune_unstructured(nn.Linear(4, 4), 0.5)
        >>> clone_model(m) is not m
        True
    """
    for module in model.modules():
        if hasattr(module, "weight_mask") and hasattr(module, "weight_orig"):
            with torch.no_grad():
                module.weight = module.weight_orig * module.weight_mask
    return copy.deepcopy(model)


def prunable_layers(model: nn.Module, include_last: bool = True) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every Conv/Linear layer whose ``weight`` may be pruned.

    ``include_last=False`` leaves out the final classifier layer (it is tiny and every
    output class needs it).

    Example:
        >>> [n for n, _ in prunable_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))]
        ['0', '2']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]
    if not layers:
        raise ValueError("the model has no Conv1d/Conv2d/Linear layers to prune")
    return layers if include_last else layers[:-1]


def make_permanent(model: nn.Module) -> nn.Module:
    """Bake ``torch.nn.utils.prune`` masks into the weights (``prune.remove``), in place.

    The zeros stay; the ``weight_orig``/``weight_mask`` pair disappears, so the model saves
    and exports as a plain dense model.

    Example:
        >>> m = prune_unstructured(nn.Linear(10, 10), 0.5)
        >>> hasattr(make_permanent(m), "weight_mask")
        False
    """
    for _, module in prunable_layers(model):
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
    return model


def prune_unstructured(model: nn.Module, sparsity: float, scope: str = "global",
                       include_last: bool = True, inplace: bool = False) -> nn.Module:
    """Zero the smallest-magnitude weights with ``torch.nn.utils.prune`` masks.

    Args:
        model: the trained model (copied unless ``inplace``).
        sparsity: fraction of the prunable weights to zero, in [0, 1).
        scope: ``"global"`` ranks all layers' weights together (one ``theta`` for the whole
            model, so small sensitive layers can keep more); ``"layerwise"`` zeroes the same
            fraction in every layer.
        include_last: also prune the final classifier layer.
        inplace: prune ``model`` itself instead of a copy.

    Returns the model with ``weight_orig`` + ``weight_mask`` re-parametrisation (see
    :func:`make_permanent`). Existing masks are made permanent first, so the sparsity asked
    for is the sparsity you get.

    Example:
        >>> m = prune_unstructured(nn.Sequential(nn.Linear(20, 20), nn.Linear(20, 5)), 0.8)
        >>> round(weight_sparsity(m), 2)
        0.8
    """
    sparsity = _check_sparsity(sparsity)
    if scope not in ("global", "layerwise"):
        raise ValueError(f"scope must be 'global' or 'layerwise', got {scope!r}")
    target = model if inplace else clone_model(model)
    make_permanent(target)
    params = [(m, "weight") for _, m in prunable_layers(target, include_last)]
    if scope == "global":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for module, name in params:
            prune.l1_unstructured(module, name, amount=sparsity)
    return target


def weight_sparsity(model: nn.Module, include_last: bool = True) -> float:
    """Fraction of exactly-zero entries among the Conv/Linear weights (biases excluded).

    Example:
        >>> lin = nn.Linear(4, 4)
        >>> with torch.no_grad(): _ = lin.weight[:2].zero_()
        >>> weight_sparsity(lin)
        0.5
    """
    zeros = total = 0
    for _, module in prunable_layers(model, include_last):
        w = module.weight.detach()
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / total


def layer_sparsities(model: nn.Module) -> dict[str, float]:
    """``{layer name: fraction of zero weights}`` for every Conv/Linear layer.

    Example:
        >>> layer_sparsities(nn.Sequential(nn.Linear(2, 2)))
        {'0': 0.0}
    """
    return {name: float((m.weight.detach() == 0).float().mean()) for name, m in prunable_layers(model)}


@dataclass
class IncrementalResult:
    """Outcome of :func:`incremental_prune`: the last sparsity that kept the target."""

    sparsity: float
    accuracy: float
    model: nn.Module
    history: list[tuple[float, float]] = field(default_factory=list)


def incremental_prune(model: nn.Module, evaluate_fn: Callable[[nn.Module], float],
                      min_accuracy: float, step: float = 0.05, max_sparsity: float = 0.99,
                      scope: str = "global", progress: bool = False) -> IncrementalResult:
    """Zero ever more of the smallest weights while ``evaluate_fn(model) >= min_accuracy``.

    The deck's rule 2: sparsity grows by ``step`` each round; the first round that drops
    below ``min_accuracy`` stops the search and the previous model is returned.

    Example:
        >>> net = nn.Linear(8, 2)
        >>> r = incremental_prune(net, lambda m: 1.0 - weight_sparsity(m), min_accuracy=0.6, step=0.1)
        >>> round(r.sparsity, 1)
        0.4
    """
    if not callable(evaluate_fn):
        raise TypeError("evaluate_fn must be a function model -> accuracy (a float in [0, 1])")
    if not 0.0 < step < 1.0:
        raise ValueError(f"step must be in (0, 1), e.g. 0.05, got {step!r}")
    _check_sparsity(max_sparsity, "max_sparsity")
    best = IncrementalResult(0.0, float(evaluate_fn(model)), clone_model(model))
    best.history.append((0.0, best.accuracy))
    if best.accuracy < min_accuracy:
        raise ValueError(f"the unpruned model already scores {best.accuracy:.3f} < min_accuracy="
                         f"{min_accuracy}; lower the target accuracy")
    levels = np.arange(step, max_sparsity + 1e-9, step)
    if progress:
        from tqdm.auto import tqdm
        levels = tqdm(levels, desc="incremental pruning", leave=False)
    for s in levels:
        candidate = prune_unstructured(model, float(s), scope=scope)
        acc = float(evaluate_fn(candidate))
        best.history.append((float(s), acc))
        if acc < min_accuracy:
            break
        best.sparsity, best.accuracy, best.model = float(s), acc, candidate
    return best


def prune_structured(model: nn.Module, example_input: torch.Tensor, ratio: float,
                     ignored_layers: Sequence[nn.Module] | None = None, norm: int = 2,
                     round_to: int | None = None) -> nn.Module:
    """Physically remove the ``ratio`` fraction of channels with the smallest L2 norm.

    Returns a new, smaller **dense** model (the input is untouched): Conv/Linear outputs,
    the matching BatchNorm entries, depthwise filters and the next layer's inputs are cut
    together, as ``torch_pruning.DependencyGraph`` finds them. The final classifier's outputs
    (the classes) are never pruned.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4, 3))
        >>> small = prune_structured(net, torch.randn(1, 1, 3, 6), 0.5)
        >>> small[0].out_channels, small[3].in_features
        (8, 32)
    """
    import torch_pruning as tp

    ratio = _check_sparsity(ratio, "ratio")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError("example_input must be a torch.Tensor shaped like one model input, e.g. torch.randn(1, 1, 49, 40)")
    small = clone_model(model).eval()
    make_permanent(small)
    if ratio == 0.0:
        return small
    last = prunable_layers(small)[-1][1]
    ignored = [last] + [_same_module(small, model, m) for m in (ignored_layers or [])]
    pruner = tp.pruner.MagnitudePruner(
        small, example_input, importance=tp.importance.MagnitudeImportance(p=norm),
        pruning_ratio=ratio, ignored_layers=ignored, round_to=round_to)
    pruner.step()
    return small


def _same_module(copy_model: nn.Module, original: nn.Module, module: nn.Module) -> nn.Module:
    for (_, a), (_, b) in zip(copy_model.named_modules(), original.named_modules()):
        if b is module:
            return a
    raise ValueError("an ignored layer is not a submodule of the model being pruned")


# ----------------------------------------------------------------------------- costs
def count_params(model: nn.Module) -> int:
    """Number of parameters (every stored number, zeros included).

    Uses :func:`tinyml_helpers.cost.count_params` when present.

    Example:
        >>> count_params(nn.Linear(10, 2))
        22
    """
    try:
        from . import cost
        return int(cost.count_params(model))
    except (ImportError, AttributeError):
        return int(sum(p.numel() for p in model.parameters()))


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one inference of a dense implementation (zeros included).

    ``input_shape`` is one sample's shape, without the batch dimension (as in
    :mod:`tinyml_helpers.cost`). Uses :func:`tinyml_helpers.cost.count_macs` when present,
    else ``torch_pruning``'s counter.

    Example:
        >>> count_macs(nn.Linear(10, 2), (10,)) in (20, 22)   # with or without the bias adds
        True
    """
    try:
        from . import cost
        return int(cost.count_macs(model, tuple(input_shape)))
    except (ImportError, AttributeError):
        import torch_pruning as tp
        was_training = model.training
        macs, _ = tp.utils.count_ops_and_params(model.eval(), torch.zeros(1, *input_shape))
        model.train(was_training)
        return int(macs)


def onnx_bytes(model: nn.Module, input_shape: Sequence[int], path: str | os.PathLike | None = None) -> int:
    """Size in bytes of the model exported to ONNX (to ``path``, or a temporary file).

    ``input_shape`` is one sample's shape (no batch dimension); the export uses a batch of 1.

    Example:
        >>> onnx_bytes(nn.Linear(256, 256), (256,)) > 256 * 256 * 4
        True
    """
    model = clone_model(model).eval()
    make_permanent(model)
    if path is not None:
        from .files import atomic_path
        with atomic_path(path, suffix=".onnx") as tmp:
            _export(model, input_shape, tmp)
        return Path(path).stat().st_size
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "model.onnx"
        _export(model, input_shape, target)
        return target.stat().st_size


def _export(model: nn.Module, input_shape: Sequence[int], target: Path) -> None:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter is quick and needs no extra package for these small models.
        torch.onnx.export(model, (torch.zeros(1, *input_shape),), str(target), input_names=["x"],
                          output_names=["logits"], opset_version=17, dynamo=False)


def onnx_latency(model: nn.Module, input_shape: Sequence[int], repeats: int = 50, warmup: int = 5,
                 threads: int = 1) -> float:
    """Best-of-``repeats`` onnxruntime latency (seconds) for one input on ``threads`` CPU threads.

    ``input_shape`` is one sample's shape (no batch dimension).

    The minimum, not the mean, is reported: other programs on the machine only ever add
    time, so the minimum is the most repeatable estimate of what the model itself costs.

    Example:
        >>> 0 < onnx_latency(nn.Linear(16, 4), (16,), repeats=3) < 1
        True
    """
    return onnx_latencies([model], input_shape, repeats, warmup, threads)[0]


def onnx_latencies(models: Sequence[nn.Module], input_shape: Sequence[int], repeats: int = 50, warmup: int = 5,
                   threads: int = 1) -> list[float]:
    """Best-of-``repeats`` onnxruntime latency (seconds) of each model, the models run in turn.

    Comparing two models measured one after the other is at the mercy of whatever else the
    machine did meanwhile: a busy spell during one measurement alone skews their ratio. Here
    every repeat runs each model once, so a busy spell slows them alike.

    Example:
        >>> a, b = onnx_latencies([nn.Linear(16, 4), nn.Linear(16, 4)], (16,), repeats=3)
        >>> 0 < a < 1 and 0 < b < 1
        True
    """
    import onnxruntime as ort

    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    if not len(models):
        raise ValueError("no models to time")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    sessions = []
    with tempfile.TemporaryDirectory() as folder:
        for i, model in enumerate(models):
            target = Path(folder) / f"model{i}.onnx"
            m = clone_model(model).eval()
            make_permanent(m)
            _export(m, input_shape, target)
            sessions.append(ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"]))
    x = {"x": np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)}
    for session in sessions:
        for _ in range(warmup):
            session.run(None, x)
    best = [float("inf")] * len(sessions)
    for _ in range(repeats):
        for i, session in enumerate(sessions):
            start = time.perf_counter()
            session.run(None, x)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def deployment_costs(model: nn.Module, input_shape: Sequence[int], repeats: int = 50,
                     reference: nn.Module | None = None) -> dict[str, float]:
    """Params, MACs, ONNX bytes, onnxruntime latency, weight sparsity and CSR bytes of a model.

    ``input_shape`` is one sample's shape (no batch dimension). With a ``reference`` model the
    two are timed in turn (:func:`onnx_latencies`), and ``latency_ratio`` (model / reference) and
    ``reference_latency_s`` are added: a ratio that a busy machine does not skew.

    Example:
        >>> c = deployment_costs(nn.Linear(16, 4), (16,), repeats=2)
        >>> sorted(c)
        ['csr_bytes', 'latency_s', 'macs', 'onnx_bytes', 'params', 'sparsity']
        >>> 0 < deployment_costs(nn.Linear(16, 4), (16,), repeats=2, reference=nn.Linear(16, 4))["latency_ratio"]
        True
    """
    from .sparse import csr_model_bytes

    m = clone_model(model).eval()
    make_permanent(m)
    costs = {
        "params": count_params(m),
        "macs": count_macs(m, input_shape),
        "onnx_bytes": onnx_bytes(m, input_shape),
        "sparsity": weight_sparsity(m),
        "csr_bytes": csr_model_bytes(m),
    }
    if reference is None:
        costs["latency_s"] = onnx_latency(m, input_shape, repeats=repeats)
    else:
        costs["latency_s"], costs["reference_latency_s"] = onnx_latencies([m, reference], input_shape, repeats=repeats)
        costs["latency_ratio"] = costs["latency_s"] / costs["reference_latency_s"]
    return costs


def pruning_grid(model: nn.Module, evaluate_fn: Callable[[nn.Module], float], example_input: torch.Tensor,
                 levels: Sequence[float], progress: bool = False) -> dict[str, list[dict[str, float]]]:
    """Precompute accuracy, storage, MACs and params for unstructured and structured pruning.

    For each level (sparsity for unstructured = fraction of weights zeroed; channel ratio
    for structured = fraction of channels removed) one row with ``level``, ``accuracy``,
    ``dense_bytes`` (fp32 weights stored dense), ``stored_bytes`` (what you would ship: for
    unstructured the smaller of dense and CSR, for structured the smaller dense model),
    ``macs`` and ``params``. No fine-tuning: this is the post-training picture. A slider
    over it is instant.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4, 2))
        >>> g = pruning_grid(net, lambda m: 1.0, torch.randn(1, 1, 3, 6), [0.0, 0.5])
        >>> sorted(g), g["structured"][1]["params"] < g["structured"][0]["params"]
        (['structured', 'unstructured'], True)
    """
    from .sparse import csr_model_bytes, dense_model_bytes

    levels = sorted({float(_check_sparsity(level, "level")) for level in levels} | {0.0})
    shape = tuple(example_input.shape[1:])
    grid: dict[str, list[dict[str, float]]] = {"unstructured": [], "structured": []}
    dense_macs, dense_params = count_macs(model, shape), count_params(model)
    iterator: Iterable[float] = levels
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(levels, desc="pruning grid", leave=False)
    for level in iterator:
        zeroed = make_permanent(prune_unstructured(model, level))
        dense = dense_model_bytes(zeroed)
        grid["unstructured"].append(dict(level=level, accuracy=float(evaluate_fn(zeroed)), dense_bytes=dense,
                                         stored_bytes=min(dense, csr_model_bytes(zeroed)),
                                         macs=dense_macs, params=dense_params))
        small = prune_structured(model, example_input, level)
        small_bytes = dense_model_bytes(small)
        grid["structured"].append(dict(level=level, accuracy=float(evaluate_fn(small)), dense_bytes=small_bytes,
                                       stored_bytes=small_bytes, macs=count_macs(small, shape),
                                       params=count_params(small)))
    return grid


# ----------------------------------------------------------------------------- training
def cubic_sparsity_schedule(step: int, final_sparsity: float, total_steps: int,
                            initial_sparsity: float = 0.0, start_step: int = 0) -> float:
    """Zhu and Gupta's (2017) gradual pruning schedule.

    ``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / n)**3`` for ``t0 <= t <= t0 + n``: prune fast
    while there are many redundant weights, then slow down as few remain.

    Example:
        >>> [round(cubic_sparsity_schedule(t, 0.8, 10), 3) for t in (0, 5, 10, 20)]
        [0.0, 0.7, 0.8, 0.8]
    """
    final_sparsity = _check_sparsity(final_sparsity, "final_sparsity")
    initial_sparsity = _check_sparsity(initial_sparsity, "initial_sparsity")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    progress = min(max((step - start_step) / total_steps, 0.0), 1.0)
    return float(final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3)


def accuracy(model: nn.Module, loader: Iterable, max_batches: int | None = None) -> float:
    """Top-1 accuracy (a fraction) of ``model`` over a DataLoader of ``(x, y)``.

    A few lines on purpose: it is called hundreds of times by the sweeps and must stay cheap.

    Example:
        >>> data = [(torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))]
        >>> 0.0 <= accuracy(nn.Linear(3, 2), data) <= 1.0
        True
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            correct += int((model(x).argmax(dim=1) == y).sum())
            total += int(y.numel())
    model.train(was_training)
    if total == 0:
        raise ValueError("the loader yielded no samples; check the split and batch size")
    return correct / total


def epoch_line(label: str, epoch: int, epochs: int, loss_sum: float, batches: int, seconds: float,
               extra: str = "") -> str:
    """One line summing up a training epoch, printed by the pruning loops when ``progress`` is set.

    A tqdm bar keeps only its first state (0 %) in a notebook saved by a headless run; these
    lines survive, so a saved copy shows how each epoch went.

    Example:
        >>> epoch_line("hard 50 %", 0, 3, loss_sum=2.4, batches=4, seconds=1.26)
        'hard 50 %: epoch 1/3, train loss 0.600, 1.3 s'
    """
    loss = f"train loss {loss_sum / batches:.3f}" if batches else "no batches"
    return f"{label}: epoch {epoch + 1}/{epochs}, {loss}, {seconds:.1f} s" + (f", {extra}" if extra else "")


def train_epochs(model: nn.Module, loader: Iterable, epochs: int, lr: float = 1e-3,
                 on_step: Callable[[nn.Module, int], None] | None = None,
                 on_epoch_end: Callable[[nn.Module, int], None] | None = None,
                 weight_decay: float = 0.0, progress: str | None = None) -> nn.Module:
    """Train with Adam and cross-entropy, calling ``on_step(model, step)`` after each
    optimizer step and ``on_epoch_end(model, epoch)`` after each epoch.

    A plain loop, because pruning must act between optimizer steps (gradual schedules,
    soft re-zeroing); everything else about training lives in :mod:`tinyml_helpers.training`.
    With ``progress`` (a label) it shows a tqdm bar and prints one :func:`epoch_line` per
    epoch, which a saved notebook keeps.

    Example:
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
        >>> _ = train_epochs(nn.Linear(3, 2), data, epochs=1)
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    model.train()
    step = 0
    epoch_iter: Iterable[int] = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        epoch_iter = tqdm(epoch_iter, desc=progress, leave=False)
    for epoch in epoch_iter:
        t0, loss_sum, batches = time.perf_counter(), 0.0, 0
        for x, y in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
            step += 1
            if on_step is not None:
                on_step(model, step)
        if on_epoch_end is not None:
            on_epoch_end(model, epoch)
        if progress:
            print(epoch_line(progress, epoch, epochs, loss_sum, batches, time.perf_counter() - t0))
    model.eval()
    return model


def fine_tune_hard(model: nn.Module, loader: Iterable, sparsity: float, epochs: int, lr: float = 1e-3,
                   scope: str = "global", progress: str | None = None) -> nn.Module:
    """Hard pruning: mask once, fine-tune with the mask fixed, so zeros stay zeros.

    ``torch.nn.utils.prune`` computes ``weight = weight_orig * mask``; the gradient that
    reaches a masked ``weight_orig`` entry is multiplied by 0, so it can never come back.
    Returns a copy with the mask baked in.

    Example:
        >>> data = [(torch.randn(8, 6), torch.randint(0, 2, (8,)))]
        >>> round(weight_sparsity(fine_tune_hard(nn.Linear(6, 2), data, 0.5, epochs=1)), 2)
        0.5
    """
    pruned = prune_unstructured(model, sparsity, scope=scope)
    train_epochs(pruned, loader, epochs, lr, progress=progress)
    return make_permanent(pruned)


class _StraightThroughMask(prune.CustomFromMask):
    """A ``torch.nn.utils.prune`` mask whose forward is masked but whose gradient is not.

    ``weight = orig + (orig * mask - orig).detach()`` has the value ``orig * mask`` and the
    gradient of ``orig``: masked weights keep their dense "shadow" value and keep learning,
    so a later re-mask can bring them back (the straight-through estimator).
    """

    def apply_mask(self, module: nn.Module) -> torch.Tensor:
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask").to(dtype=orig.dtype)
        return orig + (orig * mask - orig).detach()


def _make_soft(model: nn.Module) -> None:
    for _, module in prunable_layers(model):
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod) and type(hook) is prune.CustomFromMask:
                hook.__class__ = _StraightThroughMask  # same state, different apply_mask
        if hasattr(module, "weight_mask"):
            with torch.no_grad():
                module.weight = module.weight_orig * module.weight_mask


def fine_tune_soft(model: nn.Module, loader: Iterable, sparsity: float, epochs: int, lr: float = 1e-3,
                   scope: str = "global", remask_every: int = 10, freeze_fraction: float = 0.25,
                   progress: str | None = None) -> tuple[nn.Module, float]:
    """Soft pruning: masked weights keep learning and may come back at the next re-mask.

    The forward pass uses the masked weights, but every weight (masked or not) receives its
    gradient through a dense "shadow" copy (straight-through estimator, as in Guo et al.
    2016, *Dynamic Network Surgery*). Every ``remask_every`` optimizer steps the mask is
    recomputed from the shadow magnitudes: a masked weight that grew re-enters and a weight
    that shrank leaves. For the last ``freeze_fraction`` of the steps the mask stays fixed,
    so the weights that made it in are fine-tuned together (a mask change right at the end
    would leave no steps to adapt to it). The mask keeps exactly ``sparsity`` zeros.

    Returns ``(pruned copy, regrown)``, where ``regrown`` is the fraction of the weights
    masked at the start that are non-zero at the end (0 for hard pruning, by construction).

    Example:
        >>> data = [(torch.randn(8, 6), torch.randint(0, 2, (8,)))] * 3
        >>> m, regrown = fine_tune_soft(nn.Linear(6, 2), data, 0.5, epochs=2, lr=0.1, remask_every=1)
        >>> round(weight_sparsity(m), 2), 0.0 <= regrown <= 1.0
        (0.5, True)
    """
    if remask_every < 1:
        raise ValueError(f"remask_every must be >= 1 optimizer step, got {remask_every}")
    if not 0.0 <= freeze_fraction < 1.0:
        raise ValueError(f"freeze_fraction must be in [0, 1), got {freeze_fraction}")
    try:
        total_steps = len(loader) * epochs  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError("loader must have a length (a DataLoader or a list of batches)") from exc
    last_remask = int(total_steps * (1.0 - freeze_fraction))
    model = prune_unstructured(model, sparsity, scope=scope)
    _make_soft(model)
    first_zeros = [m.weight_mask.detach() == 0 for _, m in prunable_layers(model)]

    def remask(net: nn.Module, step: int) -> None:
        if step % remask_every == 0 and step <= last_remask:
            _remask(net, sparsity, scope, source="dense")

    train_epochs(model, loader, epochs, lr, on_step=remask, progress=progress)
    came_back = sum(int((z & (m.weight_mask != 0)).sum()) for z, (_, m) in zip(first_zeros, prunable_layers(model)))
    make_permanent(model)
    return model, came_back / max(1, sum(int(z.sum()) for z in first_zeros))


def train_gradual_pruning(model: nn.Module, loader: Iterable, final_sparsity: float, epochs: int,
                          lr: float = 1e-3, prune_every: int = 10, ramp_fraction: float = 0.75,
                          scope: str = "global", progress: str | None = None) -> tuple[nn.Module, list[tuple[int, float]]]:
    """Gradual magnitude pruning during training (Zhu and Gupta 2017).

    Every ``prune_every`` optimizer steps, the mask is recomputed so the sparsity follows
    :func:`cubic_sparsity_schedule`, reaching ``final_sparsity`` after ``ramp_fraction`` of
    the steps; the remaining steps fine-tune at the final sparsity. Masked weights receive no
    gradient, so each new mask only adds zeros.

    Returns ``(pruned copy, [(step, sparsity), ...])``.

    Example:
        >>> data = [(torch.randn(8, 6), torch.randint(0, 2, (8,)))] * 4
        >>> m, trace = train_gradual_pruning(nn.Linear(6, 2), data, 0.75, epochs=2, prune_every=1)
        >>> round(weight_sparsity(m), 2), trace[-1][1]
        (0.75, 0.75)
    """
    final_sparsity = _check_sparsity(final_sparsity, "final_sparsity")
    if prune_every < 1:
        raise ValueError(f"prune_every must be >= 1 optimizer step, got {prune_every}")
    if not 0.0 < ramp_fraction <= 1.0:
        raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction}")
    try:
        steps_per_epoch = len(loader)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError("loader must have a length (a DataLoader or a list of batches)") from exc
    total = max(1, int(steps_per_epoch * epochs * ramp_fraction))
    model = prune_unstructured(model, 0.0, scope=scope)
    trace: list[tuple[int, float]] = [(0, 0.0)]

    def update(net: nn.Module, step: int) -> None:
        if step % prune_every and step != total:
            return
        target = cubic_sparsity_schedule(min(step, total), final_sparsity, total)
        if target <= trace[-1][1]:
            return
        _remask(net, target, scope)
        trace.append((step, target))

    train_epochs(model, loader, epochs, lr, on_step=update, progress=progress)
    if trace[-1][1] < final_sparsity:  # fewer steps than the ramp (tiny runs): finish the ramp
        _remask(model, final_sparsity, scope)
        trace.append((steps_per_epoch * epochs, final_sparsity))
    return make_permanent(model), trace


def _remask(model: nn.Module, sparsity: float, scope: str, source: str = "effective") -> None:
    # "effective": rank orig * mask, so already-masked weights rank lowest and stay masked and
    # the mask only grows (Zhu and Gupta's schedule). "dense": rank the shadow weights
    # weight_orig, so a masked weight that kept learning can come back (soft pruning).
    layers = [m for _, m in prunable_layers(model)]
    if source == "dense":
        effective = [m.weight_orig.detach().abs() for m in layers]
    else:
        effective = [(m.weight_orig * m.weight_mask).detach().abs() for m in layers]
    if scope == "global":
        flat = torch.cat([e.flatten() for e in effective])
        k = _n_to_prune(flat.numel(), sparsity)
        theta = flat.kthvalue(k).values if k else flat.new_tensor(-1.0)
        thresholds = [theta] * len(layers)
    else:
        thresholds = []
        for e in effective:
            k = _n_to_prune(e.numel(), sparsity)
            thresholds.append(e.flatten().kthvalue(k).values if k else e.new_tensor(-1.0))
    for m, e, theta in zip(layers, effective, thresholds):
        m.weight_mask.copy_((e > theta).to(m.weight_mask.dtype))
        with torch.no_grad():
            m.weight = m.weight_orig * m.weight_mask  # refresh the cached masked weight now


def l0_gradient_demo(weights: torch.Tensor | None = None) -> dict[str, Any]:
    """Show why ``||W||_0`` cannot be trained with gradients: autograd returns all zeros.

    ``||W||_0 = sum(W != 0)`` is a step function of each weight. Written so autograd can
    follow it (a sum of ``sign(|w|)``), its gradient is 0 wherever it exists.

    Example:
        >>> d = l0_gradient_demo(torch.tensor([0.5, -0.2, 0.0]))
        >>> d["l0"], [abs(g) for g in d["gradient"]]
        (2.0, [0.0, 0.0, 0.0])
    """
    w = (torch.randn(6) if weights is None else weights.detach().clone().float()).requires_grad_(True)
    l0 = torch.sign(w.abs()).sum()
    l0.backward()
    return {"l0": float(l0.detach()), "gradient": [float(g) for g in w.grad], "weights": w.detach().tolist()}


# ----------------------------------------------------------------------------- L0 gates
# Our own implementation of the hard-concrete relaxation of Louizos, Welling and Kingma,
# "Learning Sparse Neural Networks through L0 Regularization", ICLR 2018 (Sec. 2.3-2.4),
# written from the paper's equations: no maintained PyTorch library provides it for convs.
HARD_CONCRETE_TEMPERATURE = 2.0 / 3.0   # beta in the paper
HARD_CONCRETE_LIMITS = (-0.1, 1.1)      # (gamma, zeta): the stretch interval


class HardConcreteGate(nn.Module):
    """One learnable hard-concrete gate ``z`` in ``[0, 1]`` per channel (Louizos et al. 2018).

    Training (``module.train()``): a gate is sampled per forward pass,
    ``u ~ U(0, 1)``, ``s = sigmoid((log u - log(1 - u) + log_alpha) / beta)``,
    ``z = min(1, max(0, s * (zeta - gamma) + gamma))``. The stretch to ``(gamma, zeta)`` and
    the clamp give exact 0 and exact 1 a non-zero probability, yet ``z`` is a differentiable
    function of ``log_alpha`` (the reparameterisation trick).

    Evaluation (``module.eval()``): the deterministic gate
    ``z = min(1, max(0, sigmoid(log_alpha) * (zeta - gamma) + gamma))``; a channel whose
    gate is 0 contributes nothing and can be removed.

    :meth:`expected_l0` is ``sum P(z != 0) = sum sigmoid(log_alpha - beta * log(-gamma / zeta))``:
    the differentiable stand-in for the number of open channels, ``||.||_0``.

    Args:
        num_gates: number of channels gated (dimension 1 of the input).
        temperature: ``beta`` (2/3 in the paper); lower makes samples closer to 0/1.
        limits: ``(gamma, zeta)`` with ``gamma < 0`` and ``zeta > 1`` (paper: ``(-0.1, 1.1)``).
        init_open: initial ``sigmoid(log_alpha)`` (the paper initialises
            ``log_alpha = log(1 - p) - log(p)`` for a dropout rate ``p``, i.e.
            ``init_open = 1 - p``). Above ``zeta / (zeta - gamma)`` (0.917) the test-time
            gates start at exactly 1, so a trained model starts unchanged; the default
            0.95 does.

    Example:
        >>> gate = HardConcreteGate(4).eval()
        >>> gate(torch.ones(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
        >>> gate.open_mask().tolist()
        [True, True, True, True]
        >>> round(gate.expected_l0().item(), 2)   # each gate open with probability 0.99
        3.96
    """

    def __init__(self, num_gates: int, temperature: float = HARD_CONCRETE_TEMPERATURE,
                 limits: tuple[float, float] = HARD_CONCRETE_LIMITS, init_open: float = 0.95) -> None:
        super().__init__()
        if isinstance(num_gates, bool) or not isinstance(num_gates, int) or num_gates < 1:
            raise ValueError(f"num_gates must be a positive integer (one gate per channel), got {num_gates!r}")
        if not (isinstance(temperature, (int, float)) and 0.0 < float(temperature)):
            raise ValueError(f"temperature (beta) must be > 0, e.g. 2/3 as in Louizos et al., got {temperature!r}")
        try:
            gamma, zeta = (float(v) for v in limits)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"limits must be a pair (gamma, zeta), e.g. (-0.1, 1.1), got {limits!r}") from exc
        if not (gamma < 0.0 and zeta > 1.0):
            raise ValueError(f"limits (gamma, zeta) must satisfy gamma < 0 < 1 < zeta so that exact 0 and 1 "
                             f"are reachable, e.g. (-0.1, 1.1); got {limits!r}")
        if not (isinstance(init_open, (int, float)) and 0.0 < float(init_open) < 1.0):
            raise ValueError(f"init_open must be a probability in (0, 1), e.g. 0.9, got {init_open!r}")
        self.num_gates = num_gates
        self.temperature = float(temperature)
        self.gamma, self.zeta = gamma, zeta
        p = float(init_open)
        self.log_alpha = nn.Parameter(torch.full((num_gates,), float(np.log(p / (1.0 - p)))))

    def extra_repr(self) -> str:
        return f"{self.num_gates}, temperature={self.temperature:.3g}, limits=({self.gamma}, {self.zeta})"

    def _stretch_clamp(self, s: torch.Tensor) -> torch.Tensor:
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def sample(self) -> torch.Tensor:
        """A random gate vector (differentiable w.r.t. ``log_alpha``), values in ``[0, 1]``."""
        eps = 1e-6  # keeps log(u) and log(1 - u) finite
        u = torch.rand_like(self.log_alpha).clamp(eps, 1.0 - eps)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / self.temperature)
        return self._stretch_clamp(s)

    def deterministic(self) -> torch.Tensor:
        """The test-time gate vector ``min(1, max(0, sigmoid(log_alpha)(zeta - gamma) + gamma))``."""
        return self._stretch_clamp(torch.sigmoid(self.log_alpha))

    def gate_values(self) -> torch.Tensor:
        """Sampled gates in training mode, deterministic gates in evaluation mode."""
        return self.sample() if self.training else self.deterministic()

    def expected_l0(self) -> torch.Tensor:
        """Expected number of non-zero gates, ``sum sigmoid(log_alpha - beta log(-gamma/zeta))`` (differentiable)."""
        return torch.sigmoid(self.log_alpha - self.temperature * float(np.log(-self.gamma / self.zeta))).sum()

    def open_mask(self) -> torch.Tensor:
        """Boolean mask of the channels whose deterministic gate is non-zero (kept at test time)."""
        with torch.no_grad():
            return self.deterministic() > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_gates:
            raise ValueError(f"HardConcreteGate({self.num_gates}) gates dimension 1 (channels) of its input, "
                             f"but got a tensor of shape {tuple(x.shape)}")
        z = self.gate_values()
        return x * z.view(1, -1, *([1] * (x.dim() - 2)))


def _last_batchnorm(block: nn.Module) -> nn.BatchNorm2d | None:
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    return norms[-1] if norms else None


class ChannelGated(nn.Module):
    """``gate(block(x))``: a conv-BatchNorm(-ReLU) block whose output channels are gated.

    The gates sit *after* the block's BatchNorm (and ReLU), so a closed gate gives an exact
    zero channel: BatchNorm would otherwise turn a zeroed conv output back into its shift.
    Built by :func:`attach_channel_gates`.

    Example:
        >>> blk = ChannelGated(nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3), nn.ReLU()))
        >>> blk.gate.num_gates
        3
    """

    def __init__(self, block: nn.Module, **gate_kwargs: Any) -> None:
        super().__init__()
        norm = _last_batchnorm(block)
        if norm is None:
            raise ValueError(f"cannot gate {type(block).__name__}: it has no BatchNorm2d. The gates are folded into "
                             "a BatchNorm's scale and shift when channels are removed; gate a conv-BatchNorm(-ReLU) block")
        leaves = [m for m in block.modules() if not list(m.children())]
        after = leaves[leaves.index(norm) + 1:]
        if any(not isinstance(m, (nn.ReLU, nn.Identity, nn.Dropout)) for m in after):
            raise ValueError(f"cannot gate {type(block).__name__}: after its last BatchNorm2d it has "
                             f"{[type(m).__name__ for m in after]}; only ReLU/Dropout may follow it, because a gate "
                             "z >= 0 is folded into the BatchNorm, which is exact only if z * f(x) = f(z * x)")
        self.block = block
        self.gate = HardConcreteGate(norm.num_features, **gate_kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.block(x))


def dscnn_gate_points(model: nn.Module) -> list[str]:
    """Where to put channel gates in a :class:`~tinyml_helpers.models.dscnn.DSCNN`: one per coupled channel group.

    In a depthwise-separable network the channels of a layer's output, of the depthwise
    conv that follows and of the next pointwise conv's input are the *same* channels
    (removing one removes all three). So the gates go after every depthwise block
    (``blocks.i.0``: they decide the channels of the stem or of pointwise conv ``i - 1``)
    and after the last pointwise block (its channels feed the classifier).

    Example:
        >>> from tinyml_helpers.models.dscnn import DSCNN
        >>> dscnn_gate_points(DSCNN(num_blocks=2))
        ['blocks.0.0', 'blocks.1.0', 'blocks.1.1']
    """
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential) or len(blocks) == 0:
        raise ValueError("dscnn_gate_points expects a DSCNN (with a non-empty `blocks` Sequential); "
                         "for another model pass the names of its conv-BatchNorm blocks to attach_channel_gates")
    return [f"blocks.{i}.0" for i in range(len(blocks))] + [f"blocks.{len(blocks) - 1}.1"]


def attach_channel_gates(model: nn.Module, names: Sequence[str] | None = None, **gate_kwargs: Any) -> nn.Module:
    """A copy of ``model`` with the named conv-BatchNorm blocks wrapped in :class:`ChannelGated`.

    ``names`` defaults to :func:`dscnn_gate_points` (the model must then be a DS-CNN).
    ``gate_kwargs`` go to :class:`HardConcreteGate` (``temperature``, ``limits``, ``init_open``).

    Example:
        >>> from tinyml_helpers.models.dscnn import DSCNN
        >>> gated = attach_channel_gates(DSCNN(num_blocks=1))
        >>> sorted(channel_gates(gated))
        ['blocks.0.0', 'blocks.0.1']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    names = list(dscnn_gate_points(model) if names is None else names)
    if not names:
        raise ValueError("names is empty: give at least one conv-BatchNorm block to gate")
    gated = clone_model(model)
    modules = dict(gated.named_modules())
    for name in names:
        if name not in modules:
            raise ValueError(f"no submodule named {name!r}; available blocks include "
                             f"{[n for n, m in modules.items() if isinstance(m, nn.Sequential)][:8]}")
        if isinstance(modules[name], ChannelGated):
            raise ValueError(f"{name!r} is already gated")
        gated.set_submodule(name, ChannelGated(modules[name], **gate_kwargs))
    return gated


def channel_gates(model: nn.Module) -> dict[str, HardConcreteGate]:
    """``{block name: gate}`` for every :class:`ChannelGated` block of ``model``.

    Example:
        >>> channel_gates(nn.Linear(2, 2))
        {}
    """
    return {name: m.gate for name, m in model.named_modules() if isinstance(m, ChannelGated)}


def _gates_or_fail(model: nn.Module) -> dict[str, HardConcreteGate]:
    gates = channel_gates(model)
    if not gates:
        raise ValueError("the model has no channel gates; build it with attach_channel_gates(model) first")
    return gates


def expected_l0_penalty(model: nn.Module) -> torch.Tensor:
    """Sum of :meth:`HardConcreteGate.expected_l0` over the model's gates: expected open channels.

    Example:
        >>> from tinyml_helpers.models.dscnn import DSCNN
        >>> expected_l0_penalty(attach_channel_gates(DSCNN(num_blocks=1))).item() <= 128
        True
    """
    return torch.stack([g.expected_l0() for g in _gates_or_fail(model).values()]).sum()


def open_channels(model: nn.Module) -> dict[str, int]:
    """Channels kept at test time (deterministic gate > 0), per gated block.

    Example:
        >>> from tinyml_helpers.models.dscnn import DSCNN
        >>> open_channels(attach_channel_gates(DSCNN(channels=8, num_blocks=1)))
        {'blocks.0.0': 8, 'blocks.0.1': 8}
    """
    return {name: int(g.open_mask().sum()) for name, g in _gates_or_fail(model).items()}


def train_l0_gates(model: nn.Module, loader: Iterable, l0_weight: float, epochs: int, lr: float = 1e-3,
                   gate_lr: float = 0.05, settle_epochs: int = 0,
                   on_epoch_end: Callable[[nn.Module, int], None] | None = None,
                   progress: str | None = None) -> nn.Module:
    """Train a gated model (in place) on ``cross-entropy + l0_weight * expected_l0_penalty``.

    Weights use Adam at ``lr``; the gates' ``log_alpha`` use their own, larger ``gate_lr``
    so that a few epochs of fine-tuning are enough to close channels. The last
    ``settle_epochs`` of the ``epochs`` freeze the gates at their test-time values (no
    sampling, no penalty, ``log_alpha`` fixed) and fine-tune only the weights, so the
    network adapts to the final set of channels (a channel closed in the last steps would
    otherwise leave it no time to). A plain loop like :func:`train_epochs` (the penalty
    needs the model at every step).

    Example:
        >>> block = nn.Sequential(nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        >>> net = attach_channel_gates(nn.Sequential(block, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)),
        ...                            names=["0"])
        >>> data = [(torch.randn(8, 1, 3, 3), torch.randint(0, 2, (8,)))]
        >>> _ = train_l0_gates(net, data, l0_weight=0.01, epochs=1)
        >>> 0 <= open_channels(net)["0"] <= 4
        True
    """
    if isinstance(l0_weight, bool) or not isinstance(l0_weight, (int, float)) or l0_weight < 0:
        raise ValueError(f"l0_weight (lambda) must be a number >= 0, got {l0_weight!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if isinstance(settle_epochs, bool) or not isinstance(settle_epochs, int) or not 0 <= settle_epochs <= epochs:
        raise ValueError(f"settle_epochs must be an integer between 0 and epochs ({epochs}), got {settle_epochs!r}")
    gates = _gates_or_fail(model)
    gate_params = {id(g.log_alpha) for g in gates.values()}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in gate_params]
    optimizer = torch.optim.Adam([{"params": weights, "lr": lr},
                                  {"params": [g.log_alpha for g in gates.values()], "lr": gate_lr}])
    epoch_iter: Iterable[int] = range(epochs)
    if progress:
        from tqdm.auto import tqdm
        epoch_iter = tqdm(epoch_iter, desc=progress, leave=False)
    try:
        for epoch in epoch_iter:
            settling = epoch >= epochs - settle_epochs
            model.train()
            for g in gates.values():
                g.train(not settling)                  # eval mode: deterministic test-time gates
                g.log_alpha.requires_grad_(not settling)
            t0, loss_sum, batches = time.perf_counter(), 0.0, 0
            for x, y in loader:
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(x), y)
                if not settling:
                    loss = loss + l0_weight * expected_l0_penalty(model)
                loss.backward()
                optimizer.step()
                loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
            model.eval()
            if on_epoch_end is not None:
                on_epoch_end(model, epoch)
            if progress:
                opened = sum(int(g.open_mask().sum()) for g in gates.values())
                total = sum(int(g.open_mask().numel()) for g in gates.values())
                print(epoch_line(progress, epoch, epochs, loss_sum, batches, time.perf_counter() - t0,
                                 extra=f"{opened}/{total} channels open" + (", gates settled" if settling else "")))
    finally:
        for g in gates.values():
            g.log_alpha.requires_grad_(True)
    return model.eval()


def remove_closed_channels(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """A plain, smaller dense model equal to the gated ``model`` in evaluation mode.

    Each deterministic gate ``z >= 0`` is folded into its block's last BatchNorm
    (``relu(z * bn(x)) = z * relu(bn(x))``, so scale and shift are multiplied by ``z``); the
    channels with ``z = 0`` then output exact zeros and are removed with ``torch-pruning``,
    together with everything coupled to them (the conv and BatchNorm entries before, the
    depthwise filters and next layer's inputs after). The gates disappear.

    Example:
        >>> from tinyml_helpers.models.dscnn import DSCNN
        >>> gated = attach_channel_gates(DSCNN(channels=8, num_blocks=1))
        >>> with torch.no_grad():
        ...     channel_gates(gated)["blocks.0.1"].log_alpha[:3] = -10.0  # close 3 channels
        >>> small = remove_closed_channels(gated, torch.zeros(1, 1, 49, 10))
        >>> small.blocks[0][1][0].out_channels, small.classifier.in_features
        (5, 5)
    """
    import torch_pruning as tp

    if not isinstance(example_input, torch.Tensor):
        raise TypeError("example_input must be a torch.Tensor shaped like one model input, e.g. torch.zeros(1, 1, 49, 10)")
    _gates_or_fail(model)
    plain = clone_model(model).eval()
    to_cut: list[tuple[nn.BatchNorm2d, list[int]]] = []
    for name, wrapper in [(n, m) for n, m in plain.named_modules() if isinstance(m, ChannelGated)]:
        z = wrapper.gate.deterministic().detach()
        closed = torch.nonzero(z == 0).flatten().tolist()
        if len(closed) == z.numel():
            raise ValueError(f"every channel of {name!r} is closed, which would cut the network in two; "
                             "use a smaller l0_weight (lambda) or fewer epochs")
        bn = _last_batchnorm(wrapper.block)
        with torch.no_grad():
            bn.weight.mul_(z)
            bn.bias.mul_(z)
        plain.set_submodule(name, wrapper.block)
        if closed:
            to_cut.append((bn, closed))
    if to_cut:
        graph = tp.DependencyGraph().build_dependency(plain, example_inputs=example_input)
        for bn, closed in to_cut:
            group = graph.get_pruning_group(bn, tp.prune_batchnorm_out_channels, idxs=closed)
            group.prune()
    return plain
