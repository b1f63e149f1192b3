"""PyTorch to ONNX, parity with onnxruntime, int8 post-training quantization, latency.

Notebook 05 (hands-on 2a) takes the trained keyword PhiNet to a portable, quantized file
and proves that nothing was lost on the way. This module does the work:

* **Export.** :func:`export_onnx` wraps ``torch.onnx.export``; :func:`export_with_micromind`
  wraps micromind's ``micromind.convert.convert_to_onnx`` (used as a dependency).
  :func:`describe_onnx` runs ``onnx.checker`` and lists opset, inputs/outputs, external
  data files and operator counts; :func:`flag_mcu_unsupported` names every node an int8
  MCU kernel library would not have, and says how to get rid of it.
* **Parity.** :func:`parity_report` runs PyTorch and onnxruntime on the same clips and
  compares logits, top-1 and accuracy.
* **Quantization.** :func:`quantize_onnx` = ``onnxruntime.quantization.quant_pre_process``
  then ``quantize_static`` with a :class:`FeatureCalibrationReader` over real training clips
  (QDQ or QOperator, per-tensor or per-channel). :func:`quantize_tensor` /
  :func:`dequantize_tensor` / :func:`affine_qparams` are the arithmetic the lesson teaches;
  :func:`layer_qparams` reads one layer's scales and zero points back from the int8 file;
  :func:`size_breakdown` explains where the bytes of an ONNX file go and
  :func:`compact_onnx` trims the names and shape hints that make up much of the overhead.
* **Latency.** :func:`benchmark_latency` times several callables side by side (interleaved
  rounds, warm-up excluded, median), with the thread count set explicitly.
* **Handoff to notebook 06.** :func:`kws_onnx_artifacts` returns (and builds if missing)
  the files below, in ``artifacts/onnx/``. Names are stable; notebook 06 reads them.

  * ``kws_fp32.onnx``: float model, opset 13, input ``features`` (batch, 1, 49, 40) float32,
    output ``logits`` (batch, classes); dynamic batch axis; one file (no external data).
  * ``kws_int8.onnx``: static int8, QOperator format (QuantizeLinear, QLinearConv,
    QLinearAdd, QLinearGlobalAveragePool, Flatten, QGemm, DequantizeLinear); weights int8
    symmetric (zero point 0), one scale per output channel by default (``per_channel`` in
    the manifest); activations int8 with a zero point; calibrated with MinMax on real
    training clips.
  * ``kws_test_inputs.npz``: ``features`` float32 (N, 1, 49, 40), ``labels`` int64 (N,) and
    ``classes`` (str) of the test split.
  * ``kws_calibration.npz``: ``features`` float32, the training clips used for calibration.
  * ``kws_int8_reference.npz``: ``logits`` float32 (N, classes) and ``predictions`` int64
    (N,), onnxruntime's int8 output on ``kws_test_inputs`` (the target for the MCU), plus
    ``fp32_logits``.
  * ``kws_onnx.json``: manifest: settings, sha256 and size of every file, accuracies,
    operators of the int8 graph, and the source model's weights sha256.

Own code only where no library does it: operator flagging (a table of what MCU int8 kernel
libraries such as TFLite Micro / CMSIS-NN provide), the size breakdown, the side-by-side
timer and the artifact manifest.

Example:
    >>> import torch
    >>> q = quantize_tensor(torch.tensor([0.0, 0.5, -1.0]), scale=1 / 127, zero_point=0)
    >>> q.tolist()
    [0, 64, -127]
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import config as _config
from .files import atomic_path, atomic_write_json, private_dir, sha256_file
from .onnx_file import check_onnx_file, load_onnx

__all__ = [
    "INPUT_NAME", "OUTPUT_NAME", "DEFAULT_OPSET", "ARTIFACT_NAMES", "MCU_KERNEL_OPS",
    "export_onnx", "export_with_micromind", "describe_onnx", "operator_counts",
    "OpFlag", "flag_mcu_unsupported", "assert_mcu_compatible",
    "make_session", "onnx_logits", "torch_logits", "parity_report", "accuracy",
    "FeatureCalibrationReader", "calibration_subset", "check_calibration", "quantize_onnx",
    "affine_qparams", "quantize_tensor", "dequantize_tensor", "expected_weight_bytes",
    "layer_qparams", "size_breakdown", "compact_onnx", "benchmark_latency",
    "build_kws_onnx_artifacts", "kws_onnx_artifacts", "handoff_model_source", "KWS_MODEL_SOURCES",
]

INPUT_NAME = "features"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 13
ARTIFACT_NAMES = {
    "fp32": "kws_fp32.onnx",
    "int8": "kws_int8.onnx",
    "test_inputs": "kws_test_inputs.npz",
    "calibration": "kws_calibration.npz",
    "int8_reference": "kws_int8_reference.npz",
    "manifest": "kws_onnx.json",
}

# Float ops an int8 MCU kernel library (TFLite Micro reference / CMSIS-NN style) implements,
# plus their quantized ONNX forms. Clip/Relu fuse into the preceding conv as its activation
# range; Flatten/Reshape/Identity are free (they only relabel a buffer).
MCU_KERNEL_OPS = frozenset({
    "Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "GlobalAveragePool", "AveragePool",
    "MaxPool", "Flatten", "Reshape", "Identity", "Softmax", "Concat", "Pad", "Constant",
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearAdd",
    "QLinearGlobalAveragePool", "QLinearMatMul", "QGemm", "QLinearAveragePool",
    "QLinearSoftmax", "QLinearConcat",
})

_FIXES = {
    "HardSwish": "hard-swish activation: build the PhiNet with compatibility=True (ReLU6)",
    "HardSigmoid": "hard-swish / hard-sigmoid activation: build the PhiNet with "
                   "compatibility=True (ReLU6, no squeeze-excite)",
    "Sigmoid": "squeeze-excite gate: build the PhiNet with compatibility=True (no SE blocks)",
    "Mul": "element-wise multiply (squeeze-excite or hard-swish): build the PhiNet with "
           "compatibility=True",
    "ReduceMean": "global average pooling exported as ReduceMean (the dynamo exporter does "
                  "this): export with exporter='torchscript' to get GlobalAveragePool",
    "BatchNormalization": "a BatchNorm that was not folded: call model.eval() before export",
    "Dropout": "a Dropout left in the graph: call model.eval() before export",
    "Pow": "power op (layer norm / GELU?): replace it with an MCU-friendly layer",
    "Erf": "exact GELU: use ReLU or ReLU6",
    "Div": "division: fold the constant into the previous layer's weights",
}


# --------------------------------------------------------------------------- export

def _input_shape_of(model: Any, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    shape = input_shape or getattr(model, "input_shape", None) or \
        (getattr(model, "phinet_config", None) or {}).get("input_shape")
    if not shape:
        raise ValueError("input_shape is needed: pass it as (C, H, W), e.g. (1, 49, 40), "
                         "or give the model an `input_shape` attribute")
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width) without the batch "
                         f"axis, got {shape}")
    return shape


def export_onnx(model: Any, path: str | os.PathLike, input_shape: Sequence[int] | None = None,
                *, opset: int = DEFAULT_OPSET, exporter: str = "torchscript",
                input_name: str = INPUT_NAME, output_name: str = OUTPUT_NAME,
                dynamic_batch: bool = True, external_data: bool = False) -> Path:
    """Export a PyTorch module to ONNX with ``torch.onnx.export``; return the file path.

    Args:
        model: the module (put in eval mode here, so BatchNorm folds into the convolutions).
        path: target ``.onnx`` file (written atomically).
        input_shape: ``(C, H, W)`` of one sample; read from ``model.input_shape`` or
            ``model.phinet_config`` when omitted.
        opset: ONNX operator-set version. The TorchScript exporter honours it exactly.
        exporter: ``"torchscript"`` (legacy, ``dynamo=False``: exact opset, GlobalAveragePool,
            constant folding) or ``"dynamo"`` (the default of ``torch.onnx.export`` in this
            torch: opset >= 18, global pooling becomes ReduceMean).
        input_name, output_name: graph input/output names (notebook 06 relies on these).
        dynamic_batch: make axis 0 symbolic (``batch``), so one file runs any batch size.
        external_data: store the weights in a ``<name>.data`` file beside the graph.

    Example:
        >>> import torch, tempfile, pathlib
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
        >>> p = export_onnx(net, pathlib.Path(tempfile.mkdtemp()) / "n.onnx", (1, 5, 5))
        >>> describe_onnx(p)["inputs"]
        {'features': ['batch', 1, 5, 5]}
    """
    import torch

    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if exporter == "torchscript" and not 7 <= int(opset) <= 20:
        raise ValueError(f"opset {opset} is outside what the TorchScript exporter supports (7-20)")
    shape = _input_shape_of(model, input_shape)
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"the ONNX file name should end in .onnx, got {path.name}")
    model = model.eval().cpu()
    example = torch.zeros((1, *shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        # Everything is written in a private folder beside the target and renamed into place,
        # so a kill half way never damages the previous good export (issue #17).
        with private_dir(path) as work:
            staged = work / path.name
            if exporter == "torchscript":
                axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
                torch.onnx.export(model, (example,), str(staged), dynamo=False, opset_version=int(opset),
                                  input_names=[input_name], output_names=[output_name],
                                  dynamic_axes=axes, do_constant_folding=True)
                if external_data:
                    _to_external_data(staged)
            else:
                shapes = ({"x": {0: torch.export.Dim("batch", min=1, max=4096)}}
                          if dynamic_batch else None)
                program = torch.onnx.export(model, (example,), dynamo=True, opset_version=int(opset),
                                            input_names=[input_name], output_names=[output_name],
                                            dynamic_shapes=_dynamic_shapes_for(model, shapes),
                                            verbose=False)
                program.save(str(staged), external_data=external_data)
            _install(work, path)
    return path


def _install(work: Path, path: Path) -> None:
    # The weights file goes first: the old graph never points at a half-written data file,
    # and the graph rename that follows is the atomic switch to the new export.
    data = work / (path.name + ".data")
    if data.exists():
        os.replace(data, path.with_name(data.name))
    os.replace(work / path.name, path)


def _dynamic_shapes_for(model: Any, shapes: dict | None) -> Any:
    # torch.export names dynamic shapes after the forward's parameter; ask the signature.
    if shapes is None:
        return None
    import inspect

    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not params:
        raise ValueError("model.forward takes no positional input; cannot export it")
    return {params[0].name: shapes["x"]}


def _to_external_data(path: Path) -> None:
    import onnx

    model = onnx.load(str(path))
    data_name = path.name + ".data"
    # onnx appends to an existing data file: remove any one left in the (private) folder,
    # or the weights would be stored twice.
    (path.parent / data_name).unlink(missing_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_name, size_threshold=0)


def export_with_micromind(model: Any, path: str | os.PathLike,
                          input_shape: Sequence[int] | None = None) -> list[Path]:
    """Export with micromind's ``convert_to_onnx``; return every file it wrote.

    micromind 0.2.1 calls ``torch.onnx.export`` with its defaults, which in this torch means
    the dynamo exporter: it asks for opset 11, gets opset 18 (a warning says so), names the
    input ``input`` and the output ``output``, has a fixed batch of 1, and stores the weights in
    an external ``.data`` file beside the graph. The module needs an ``input_shape``
    attribute ``(C, H, W)``; PhiNets have one, otherwise pass ``input_shape``.

    Example:
        >>> files = export_with_micromind(model, "artifacts/onnx/mm.onnx")  # doctest: +SKIP
    """
    import torch

    from micromind.convert import convert_to_onnx

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    shape = _input_shape_of(model, input_shape)
    if list(getattr(model, "input_shape", []) or []) != list(shape):
        model.input_shape = list(shape)
    path = Path(path)
    model.eval()
    from loguru import logger

    # micromind logs "Saved converted ONNX model" through its own loguru handler on stderr.
    logger.disable("micromind")
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            written = Path(convert_to_onnx(model, path))
    finally:
        logger.enable("micromind")
    extra = written.with_name(written.name + ".data")
    return [written] + ([extra] if extra.exists() else [])


def _load(model_or_path: Any, external_data: bool = True) -> Any:
    import onnx

    if isinstance(model_or_path, (str, os.PathLike)):
        return load_onnx(model_or_path, external_data=external_data)
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    raise TypeError(f"expected an ONNX file path or onnx.ModelProto, got {type(model_or_path).__name__}")


def operator_counts(model_or_path: Any) -> dict[str, int]:
    """``{op_type: count}`` of an ONNX graph, most frequent first.

    Example:
        >>> operator_counts("artifacts/onnx/kws_fp32.onnx")  # doctest: +SKIP
        {'Conv': 25, 'Clip': 16, 'Add': 3, 'GlobalAveragePool': 1, 'Flatten': 1, 'Gemm': 1}
    """
    graph = _load(model_or_path).graph
    return dict(Counter(n.op_type for n in graph.node).most_common())


def _dims(value_info: Any) -> list[int | str]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_param if d.dim_param else int(d.dim_value) for d in dims]


def describe_onnx(path: str | os.PathLike) -> dict[str, Any]:
    """Check an ONNX file with ``onnx.checker`` and summarise it.

    Returns ``{"opset", "inputs", "outputs", "operators", "file_bytes", "data_files",
    "total_bytes", "ir_version", "producer"}`` (``data_files``: external-data files beside
    it; ``total_bytes`` counts them too). Raises ``onnx.checker.ValidationError`` on an
    invalid model.

    Example:
        >>> describe_onnx("artifacts/onnx/kws_fp32.onnx")["opset"]  # doctest: +SKIP
        13
    """
    import onnx

    path = Path(path)
    model = _load(path, external_data=False)
    onnx.checker.check_model(str(path), full_check=True)
    data_files = sorted({e.value for t in model.graph.initializer for e in t.external_data
                         if e.key == "location"})
    initializer_names = {t.name for t in model.graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    file_bytes = path.stat().st_size
    extra = sum((path.parent / f).stat().st_size for f in data_files)
    return {
        "opset": opset,
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": {i.name: _dims(i) for i in model.graph.input if i.name not in initializer_names},
        "outputs": {o.name: _dims(o) for o in model.graph.output},
        "operators": operator_counts(model),
        "file_bytes": file_bytes,
        "data_files": data_files,
        "total_bytes": file_bytes + extra,
    }


@dataclass(frozen=True)
class OpFlag:
    """One ONNX node an MCU kernel library would not run, and how to remove it."""

    op_type: str
    node: str
    fix: str

    def __str__(self) -> str:
        return f"{self.op_type} at {self.node}: {self.fix}"


def flag_mcu_unsupported(model_or_path: Any,
                         supported: Iterable[str] = MCU_KERNEL_OPS) -> list[OpFlag]:
    """Every node whose operator is not in ``supported``, with the layer and a suggested fix.

    Example:
        >>> [f.op_type for f in flag_mcu_unsupported("artifacts/onnx/kws_fp32.onnx")]  # doctest: +SKIP
        []
    """
    supported = set(supported)
    flags = []
    for i, node in enumerate(_load(model_or_path).graph.node):
        if node.op_type not in supported:
            fix = _FIXES.get(node.op_type, "no int8 MCU kernel for this operator: replace the "
                                           "layer with Conv/ReLU/Add/pooling equivalents")
            flags.append(OpFlag(node.op_type, node.name or f"node #{i}", fix))
    return flags


def assert_mcu_compatible(model_or_path: Any, supported: Iterable[str] = MCU_KERNEL_OPS) -> None:
    """Raise ``ValueError`` naming the first offending layers (and the fix) if any op is unsupported.

    Example:
        >>> assert_mcu_compatible("artifacts/onnx/kws_fp32.onnx")  # doctest: +SKIP
    """
    flags = flag_mcu_unsupported(model_or_path, supported)
    if flags:
        kinds = Counter(f.op_type for f in flags)
        lines = "\n  ".join(str(f) for f in flags[:5])
        raise ValueError(f"{len(flags)} node(s) have no MCU int8 kernel ({dict(kinds)}):\n  {lines}")


# --------------------------------------------------------------------------- running and parity

def make_session(path: str | os.PathLike, threads: int = 1) -> Any:
    """An onnxruntime CPU ``InferenceSession`` with ``threads`` intra-op threads (1 inter-op).

    Example:
        >>> sess = make_session("artifacts/onnx/kws_int8.onnx", threads=1)  # doctest: +SKIP
    """
    import onnxruntime as ort

    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    path = check_onnx_file(path)  # a damaged file: one message naming it, not onnxruntime's
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _check_features(X: Any) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(f"features must be a batch (N, C, H, W), got shape {X.shape}; "
                         "add the batch axis with X[None] for one clip")
    return np.ascontiguousarray(X, dtype=np.float32)


def onnx_logits(session_or_path: Any, X: Any, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """Run an ONNX model (session or path) on features ``X`` (N, C, H, W); return float32 logits.

    Example:
        >>> logits = onnx_logits("artifacts/onnx/kws_fp32.onnx", X_test)  # doctest: +SKIP
    """
    sess = session_or_path if hasattr(session_or_path, "run") else make_session(session_or_path, threads)
    X = _check_features(X)
    name = sess.get_inputs()[0].name
    fixed = sess.get_inputs()[0].shape[0]
    step = 1 if isinstance(fixed, int) and fixed == 1 else max(1, int(batch_size))
    outs = [sess.run(None, {name: X[i:i + step]})[0] for i in range(0, len(X), step)]
    return np.concatenate(outs).astype(np.float32) if outs else np.zeros((0, 0), np.float32)


def torch_logits(model: Any, X: Any, batch_size: int = 256) -> np.ndarray:
    """PyTorch float32 logits of ``model`` (eval mode, no grad) on features ``X`` (N, C, H, W).

    Example:
        >>> torch_logits(model, X_test).shape  # doctest: +SKIP
        (1200, 12)
    """
    import torch

    X = _check_features(X)
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(X), max(1, int(batch_size))):
            outs.append(model(torch.from_numpy(X[i:i + batch_size])).float().numpy())
    return np.concatenate(outs)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy (fraction) of ``logits`` (N, K) against integer ``labels`` (N,).

    Example:
        >>> accuracy(np.array([[0.1, 0.9], [2.0, 1.0]]), np.array([1, 1]))
        0.5
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (len(logits),):
        raise ValueError(f"need logits (N, K) and labels (N,), got {logits.shape} and {labels.shape}")
    return float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")


def parity_report(reference_logits: np.ndarray, other_logits: np.ndarray,
                  labels: np.ndarray | None = None) -> dict[str, float]:
    """Compare two sets of logits on the same clips.

    Returns ``max_abs_diff``, ``mean_abs_diff``, ``top1_agreement`` (fraction of clips whose
    predicted class is the same) and, with ``labels``, ``accuracy_reference``,
    ``accuracy_other`` and ``accuracy_drop`` (reference minus other, as a fraction).

    Example:
        >>> r = parity_report(np.array([[1.0, 0.0]]), np.array([[0.9, 0.1]]), np.array([0]))
        >>> round(r["max_abs_diff"], 3), r["top1_agreement"]
        (0.1, 1.0)
    """
    a, b = np.asarray(reference_logits, np.float64), np.asarray(other_logits, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"logits must both be (N, K) with the same shape, got {a.shape} and {b.shape}")
    # argmax of a NaN row is 0 on both sides: NaN logits counted as 100 % agreement.
    for name, logits in (("reference_logits", a), ("other_logits", b)):
        if not np.isfinite(logits).all():
            raise ValueError(f"{name} hold {int((~np.isfinite(logits)).sum())} non-finite value(s): "
                             "no agreement can be claimed. Check the model and its inputs")
    diff = np.abs(a - b)
    out = {
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
    }
    if labels is not None:
        out["accuracy_reference"] = accuracy(a, labels)
        out["accuracy_other"] = accuracy(b, labels)
        out["accuracy_drop"] = out["accuracy_reference"] - out["accuracy_other"]
    return out


# --------------------------------------------------------------------------- quantization

try:  # the base class lives in onnxruntime; keep the module importable without it
    from onnxruntime.quantization import CalibrationDataReader as _ReaderBase
except ImportError:  # pragma: no cover
    _ReaderBase = object  # type: ignore[assignment,misc]


# A healthy int8 keyword PhiNet: ~0.03 relative RMS logit error; a broken one (bad
# calibration): ~1.1-1.2 (measured on the shipped model, issue #17). A barely trained network
# (one epoch, as in the smoke runs) has small, flat logits and honestly reaches ~0.6.
MAX_INT8_RELATIVE_ERROR = 0.9


class FeatureCalibrationReader(_ReaderBase):  # type: ignore[misc,valid-type]
    """Feeds real feature clips to ``quantize_static``, ``batch_size`` clips per step.

    Example:
        >>> reader = FeatureCalibrationReader(np.zeros((4, 1, 49, 40), np.float32), batch_size=2)
        >>> reader.get_next()["features"].shape
        (2, 1, 49, 40)
    """

    def __init__(self, features: Any, input_name: str = INPUT_NAME, batch_size: int = 1) -> None:
        self.features = _check_features(features)
        if len(self.features) == 0:
            raise ValueError("calibration needs at least one clip; pass real training features")
        self.input_name = input_name
        self.batch_size = max(1, int(batch_size))
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.features):
            return None
        batch = self.features[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return -(-len(self.features) // self.batch_size)


def calibration_subset(X: Any, y: Any, n: int, seed: int = 0) -> np.ndarray:
    """Pick ``n`` clips from ``X`` stratified by label ``y`` (every class represented).

    Calibration sets each activation's range, so it should look like real inputs of every
    class; a few hundred clips are plenty.

    Example:
        >>> Xc = calibration_subset(np.arange(40).reshape(10, 1, 2, 2), np.arange(10) % 2, 4)
        >>> Xc.shape
        (4, 1, 2, 2)
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} clips but y has {len(y)} labels")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive number of clips, got {n!r}")
    n = min(int(n), len(X))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    # Round-robin over classes in a shuffled order: stratified without rounding surprises.
    by_class = [order[y[order] == c] for c in np.unique(y)]
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for idx in by_class:
            if depth < len(idx) and len(picked) < n:
                picked.append(int(idx[depth]))
        depth += 1
    return np.ascontiguousarray(X[np.sort(picked)], dtype=np.float32)


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: Any,
                  *, fmt: str = "qoperator", per_channel: bool = True,
                  activation_type: str = "int8", calibrate_method: str = "minmax",
                  preprocess: bool = True, nodes_to_exclude: Sequence[str] = (),
                  batch_size: int = 16, expected_range: tuple[float, float] | None = None,
                  check_features: Any = None, max_relative_error: float = MAX_INT8_RELATIVE_ERROR) -> Path:
    """Static int8 post-training quantization with onnxruntime; return ``out_path``.

    ``quant_pre_process`` (shape inference + graph clean-up) runs first, then
    ``quantize_static`` with a :class:`FeatureCalibrationReader` over ``calibration`` (real
    training clips, (N, C, H, W) float32). Weights are always int8 and symmetric (zero point
    0); activations are ``"int8"`` or ``"uint8"`` with a zero point.

    Args:
        fmt: ``"qoperator"`` (QLinearConv & co., what an MCU code generator consumes) or
            ``"qdq"`` (float ops wrapped in QuantizeLinear/DequantizeLinear pairs).
        per_channel: one weight scale per output channel (better accuracy for depthwise
            convolutions whose channels have very different ranges) or one per tensor.
        calibrate_method: ``"minmax"``, ``"entropy"`` or ``"percentile"``.
        nodes_to_exclude: node names kept in float (to rescue a sensitive layer).
        expected_range: ``(min, max)`` of the training features; calibration clips reaching
            far outside it are refused (see :func:`check_calibration`).
        check_features: clips on which the int8 model is compared with the float one
            after quantization (default: the calibration clips). A relative RMS logit error
            above ``max_relative_error`` (a healthy int8 model: ~0.03; a broken one: ~1)
            fails with a message instead of writing ``out_path``.

    The calibration clips are checked first (:func:`check_calibration`): a single outlier
    or ``inf`` among them, or constant clips, silently gave a chance-level int8 model.

    Example:
        >>> quantize_onnx("kws_fp32.onnx", "kws_int8.onnx", X_calib)  # doctest: +SKIP
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    formats = {"qoperator": QuantFormat.QOperator, "qdq": QuantFormat.QDQ}
    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    for name, value, allowed in (("fmt", fmt, formats), ("activation_type", activation_type, types),
                                 ("calibrate_method", calibrate_method, methods)):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.exists():
        raise FileNotFoundError(f"{fp32_path} does not exist: export the float model first")
    check_onnx_file(fp32_path)
    if isinstance(calibration, FeatureCalibrationReader):
        reader = calibration
    else:
        features = _check_features(calibration)
        if len(features) == 0:
            raise ValueError("calibration needs real training clips, got an empty array")
        reader = FeatureCalibrationReader(features, _load(fp32_path).graph.input[0].name, batch_size)
    check_calibration(reader.features, expected_range)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path, suffix=".onnx") as tmp, \
            warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        if preprocess:
            pre = tmp.with_name(tmp.stem + ".pre.onnx")
            try:
                quant_pre_process(str(fp32_path), str(pre))
                _quantize(quantize_static, pre, tmp, reader, formats[fmt], per_channel,
                          types[activation_type], methods[calibrate_method], nodes_to_exclude)
            finally:
                if pre.exists():
                    pre.unlink()
        else:
            _quantize(quantize_static, fp32_path, tmp, reader, formats[fmt], per_channel,
                      types[activation_type], methods[calibrate_method], nodes_to_exclude)
        # Before the rename: a grossly wrong int8 model never replaces a good one.
        _check_int8_against_float(fp32_path, tmp, reader.features if check_features is None
                                  else _check_features(check_features), max_relative_error, out_path)
    return out_path


def check_calibration(features: Any, expected_range: tuple[float, float] | None = None) -> np.ndarray:
    """Refuse calibration clips that would silently give a broken int8 model; return them.

    MinMax calibration takes each activation's range from the clips, so one bad value sets
    every scale: a single ``1e6`` or ``inf`` among 32 clips dropped int8 accuracy from 0.95
    to 0.08, all-zero clips gave 0.12, all-NaN clips a bare ``AssertionError: scale issue``.
    Checked: every value finite; the clips not constant; no value further than ten times
    the central (0.1-99.9 percentile) spread outside it; and, with ``expected_range``
    (the training features' min and max), no value further than that range's width outside it.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(8, 1, 4, 4)).astype(np.float32)
        >>> check_calibration(X).shape
        (8, 1, 4, 4)
        >>> X[0, 0, 0, 0] = np.inf
        >>> check_calibration(X)
        Traceback (most recent call last):
        ...
        ValueError: calibration clips hold 1 non-finite value(s) (NaN or inf) in 1 clip(s), first clip #0; pass real, finite training features
    """
    X = _check_features(features)
    bad = ~np.isfinite(X)
    if bad.any():
        clips = np.flatnonzero(bad.reshape(len(X), -1).any(1))
        raise ValueError(f"calibration clips hold {int(bad.sum())} non-finite value(s) (NaN or inf) "
                         f"in {len(clips)} clip(s), first clip #{int(clips[0])}; pass real, finite "
                         "training features")
    lo, hi = (float(v) for v in np.percentile(X, [0.1, 99.9]))
    x_min, x_max = float(X.min()), float(X.max())
    if x_max - x_min <= 1e-12 * max(1.0, abs(x_max)):
        raise ValueError(f"calibration clips are constant (every value is {x_min:g}): degenerate "
                         "data gives every activation a zero range. Pass real training clips")
    spread = max(hi - lo, 1e-12)
    if x_min < lo - 10 * spread or x_max > hi + 10 * spread:
        raise ValueError(f"calibration clips hold an outlier: values reach [{x_min:g}, {x_max:g}] "
                         f"while 99.8 % of them lie in [{lo:g}, {hi:g}]; one extreme value sets the "
                         "int8 range of every layer. Find and drop the bad clip(s)")
    if expected_range is not None:
        t_min, t_max = (float(v) for v in expected_range)
        if not (math.isfinite(t_min) and math.isfinite(t_max) and t_max > t_min):
            raise ValueError(f"expected_range must be a finite (min, max) with min < max, got {expected_range!r}")
        width = t_max - t_min
        if x_min < t_min - width or x_max > t_max + width:
            raise ValueError(f"calibration clips reach [{x_min:g}, {x_max:g}], far outside the "
                             f"training features' range [{t_min:g}, {t_max:g}]: they are not "
                             "features of the kind the model was trained on (other scaling?)")
    return X


def _check_int8_against_float(fp32_path: Path, int8_path: Path, X: np.ndarray, limit: float,
                              out_path: Path) -> None:
    ref = onnx_logits(fp32_path, X)
    got = onnx_logits(int8_path, X)
    spread = float(ref.std())
    if not np.isfinite(got).all():
        raise ValueError(f"the int8 model disagrees with the float one: it gives non-finite "
                         f"logits; {out_path} was not written")
    if spread == 0.0:
        return  # a constant float model has nothing to compare against
    rel = float(np.sqrt(np.mean((got - ref) ** 2)) / spread)
    if rel > limit:
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        raise ValueError(f"the int8 model disagrees with the float one: relative RMS logit error "
                         f"{rel:.2f} (limit {limit}), top-1 agreement {agree:.0%} on {len(X)} clips; "
                         f"{out_path} was not written. The calibration clips probably do not "
                         "cover the real input range: calibrate on a few hundred real training clips")


def _quantize(quantize_static: Callable, src: Path, dst: Path, reader: Any, fmt: Any,
              per_channel: bool, act_type: Any, method: Any, exclude: Sequence[str]) -> None:
    from onnxruntime.quantization import QuantType

    reader.rewind()
    # Not extra_options["CalibMaxIntermediateOutputs"], which would bound the calibration's memory:
    # onnxruntime 1.32 clears the collected batches without merging their ranges, so the scales
    # come from the last batches only (or the run fails with "No data is collected"); onnxruntime
    # issue #18893, fix proposed in PR #32577, not merged as of December 2026.
    quantize_static(str(src), str(dst), reader, quant_format=fmt, per_channel=bool(per_channel),
                    activation_type=act_type, weight_type=QuantType.QInt8,
                    calibrate_method=method, nodes_to_exclude=list(exclude) or None,
                    extra_options={"WeightSymmetric": True})


@contextlib.contextmanager
def _quiet_root_logger() -> Any:
    # onnxruntime.quantization warns through the root logger ("Please use QuantFormat.QDQ
    # ... bad performance on x64"): true for x86 servers, irrelevant for an MCU target.
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


_DTYPE_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}


def affine_qparams(x_min: float, x_max: float, dtype: str = "int8",
                   symmetric: bool = False) -> tuple[float, int]:
    """Scale and zero point that map the float range [x_min, x_max] onto ``dtype``'s integers.

    The range is first widened to include 0 (so that a real zero is exactly representable:
    zero padding and ReLU outputs rely on it). Asymmetric: ``scale = (max - min) / (qmax -
    qmin)``, ``zero_point = round(qmin - min / scale)``. Symmetric (weights): ``scale =
    max(|min|, |max|) / 127``, zero point 0, so the grid is [-127, 127].

    Example:
        >>> affine_qparams(-1.0, 1.0, symmetric=True)
        (0.007874015748031496, 0)
        >>> affine_qparams(0.0, 6.0, "uint8")
        (0.023529411764705882, 0)
    """
    if dtype not in _DTYPE_RANGE:
        raise ValueError(f"dtype must be 'int8' or 'uint8', got {dtype!r}")
    lo, hi = min(float(x_min), 0.0), max(float(x_max), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"range [{x_min}, {x_max}] is not finite")
    if float(x_min) > float(x_max):
        raise ValueError(f"x_min ({x_min}) is larger than x_max ({x_max}); swap them")
    qmin, qmax = _DTYPE_RANGE[dtype]
    if symmetric:
        if dtype != "int8":
            raise ValueError("symmetric quantization uses int8 (zero point 0); use dtype='int8'")
        bound = max(abs(lo), abs(hi))
        scale = bound / 127.0 if bound > 0 else 1.0
        return scale, 0
    if hi == lo:
        return 1.0, int(qmin if dtype == "uint8" else 0)
    scale = (hi - lo) / float(qmax - qmin)
    zero_point = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return scale, zero_point


def quantize_tensor(x: Any, scale: float, zero_point: int, dtype: str = "int8") -> Any:
    """``q = clamp(round(x / scale) + zero_point, qmin, qmax)`` as int8/uint8 (ONNX QuantizeLinear).

    Rounds half to even, like ONNX and numpy. Accepts numpy arrays or torch tensors and
    returns the same kind.

    Example:
        >>> quantize_tensor(np.array([0.0, 1.0, 10.0]), scale=0.1, zero_point=-10).tolist()
        [-10, 0, 90]
    """
    if dtype not in _DTYPE_RANGE:
        raise ValueError(f"dtype must be 'int8' or 'uint8', got {dtype!r}")
    if not float(scale) > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    qmin, qmax = _DTYPE_RANGE[dtype]
    if not qmin <= int(zero_point) <= qmax:
        raise ValueError(f"zero_point {zero_point} lies outside the {dtype} range [{qmin}, {qmax}]")
    is_torch = hasattr(x, "detach")
    arr = x.detach().cpu().numpy() if is_torch else np.asarray(x)
    q = np.clip(np.rint(arr.astype(np.float64) / float(scale)) + int(zero_point), qmin, qmax)
    q = q.astype(np.int8 if dtype == "int8" else np.uint8)
    if is_torch:
        import torch

        return torch.from_numpy(q)
    return q


def dequantize_tensor(q: Any, scale: float, zero_point: int) -> Any:
    """``x = (q - zero_point) * scale`` as float32 (ONNX DequantizeLinear).

    Example:
        >>> dequantize_tensor(np.array([-10, 0, 90], np.int8), 0.1, -10).round(3).tolist()
        [0.0, 1.0, 10.0]
    """
    if not float(scale) > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    is_torch = hasattr(q, "detach")
    arr = q.detach().cpu().numpy() if is_torch else np.asarray(q)
    x = ((arr.astype(np.int32) - int(zero_point)) * float(scale)).astype(np.float32)
    if is_torch:
        import torch

        return torch.from_numpy(x)
    return x


def expected_weight_bytes(num_weights: int, num_biases: int = 0, bits: int = 8,
                          bias_bits: int = 32) -> int:
    """Bytes the parameters alone take: weights at ``bits`` bits, biases at ``bias_bits``.

    int8 models keep biases in int32 (they are added to int32 accumulators), so a
    quantized file is a little under 4x smaller than the float one even before overhead.

    Example:
        >>> expected_weight_bytes(1000, 10, bits=8)
        1040
        >>> expected_weight_bytes(1000, 10, bits=32)
        4040
    """
    for name, v in (("num_weights", num_weights), ("num_biases", num_biases)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    if bits not in (1, 2, 4, 8, 16, 32) or bias_bits not in (8, 16, 32):
        raise ValueError(f"bits must be one of 1, 2, 4, 8, 16, 32 (got {bits}); bias_bits 8/16/32 (got {bias_bits})")
    return int(-(-int(num_weights) * bits // 8) + int(num_biases) * bias_bits // 8)


def layer_qparams(int8_path: str | os.PathLike, fp32_path: str | os.PathLike | None = None,
                  index: int = 0, op_type: str = "QLinearConv") -> dict[str, Any]:
    """Read the ``index``-th ``op_type`` node of a QOperator model: its int8 weights and qparams.

    Returns ``node``, ``input_scale``, ``input_zero_point``, ``weight_int8`` (array),
    ``weight_scale`` / ``weight_zero_point`` (scalar or per-channel arrays),
    ``output_scale``, ``output_zero_point``, ``bias_int32`` and, when ``fp32_path`` is given
    and the node's float weight can be matched by shape and values, ``weight_fp32``.

    Example:
        >>> info = layer_qparams("artifacts/onnx/kws_int8.onnx")  # doctest: +SKIP
        >>> info["weight_int8"].dtype  # doctest: +SKIP
        dtype('int8')
    """
    from onnx import numpy_helper

    model = _load(int8_path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == op_type]
    if not nodes:
        found = sorted(operator_counts(model))
        raise ValueError(f"no {op_type} node in {int8_path} (it has {found}); is it a QOperator "
                         "model? quantize with fmt='qoperator'")
    if not 0 <= index < len(nodes):
        raise IndexError(f"index {index} out of range: the model has {len(nodes)} {op_type} nodes")
    node = nodes[index]
    get = lambda i: inits.get(node.input[i]) if i < len(node.input) else None  # noqa: E731
    if op_type in ("QLinearConv", "QLinearMatMul", "QGemm"):
        info = {"node": node.name, "op_type": op_type,
                "input_scale": get(1), "input_zero_point": get(2),
                "weight_int8": get(3), "weight_scale": get(4), "weight_zero_point": get(5)}
        if op_type == "QGemm":
            info.update(bias_int32=get(6), output_scale=get(7), output_zero_point=get(8))
        else:
            info.update(output_scale=get(6), output_zero_point=get(7),
                        bias_int32=get(8) if op_type == "QLinearConv" else None)
    else:
        raise ValueError(f"op_type must be QLinearConv, QLinearMatMul or QGemm, got {op_type!r}")
    if fp32_path is not None and info["weight_int8"] is not None:
        info["weight_fp32"] = _match_float_weight(fp32_path, info)
    return info


def _match_float_weight(fp32_path: Any, info: dict[str, Any]) -> np.ndarray | None:
    from onnx import numpy_helper

    q = info["weight_int8"]
    scale = np.asarray(info["weight_scale"], np.float64)
    approx = q.astype(np.float64) * (scale.reshape(-1, *([1] * (q.ndim - 1))) if scale.ndim else scale)
    best, best_err = None, np.inf
    for t in _load(fp32_path).graph.initializer:
        w = numpy_helper.to_array(t)
        if w.shape == q.shape:
            err = float(np.abs(w - approx).max())
            if err < best_err:
                best, best_err = w, err
    # Accept only a match within half a quantization step (plus float slack).
    return best if best is not None and best_err <= 0.5 * float(np.max(scale)) + 1e-6 else None


def size_breakdown(path: str | os.PathLike) -> dict[str, int]:
    """Where an ONNX file's bytes go: ``{"int8 tensors", "int32 tensors", "float tensors",
    "other tensors", "graph and names", "total"}``.

    Tensor bytes count raw data only; ``graph and names`` is the rest (node list, tensor
    names, attributes, protobuf framing): fixed overhead that weighs more on tiny models.

    Example:
        >>> size_breakdown("artifacts/onnx/kws_int8.onnx")["total"] > 0  # doctest: +SKIP
        True
    """
    from onnx import numpy_helper

    path = Path(path)
    model = _load(path)
    sums = {"int8 tensors": 0, "int32 tensors": 0, "float tensors": 0, "other tensors": 0}
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t, base_dir=str(path.parent))
        if arr.dtype in (np.int8, np.uint8):
            sums["int8 tensors"] += arr.nbytes
        elif arr.dtype == np.int32:
            sums["int32 tensors"] += arr.nbytes
        elif arr.dtype == np.float32:
            sums["float tensors"] += arr.nbytes
        else:
            sums["other tensors"] += arr.nbytes
    total = describe_onnx(path)["total_bytes"]
    sums["graph and names"] = total - sum(sums.values())
    sums["total"] = total
    return sums


def compact_onnx(path: str | os.PathLike, out_path: str | os.PathLike | None = None) -> Path:
    """Shrink an ONNX file's fixed overhead without touching the math; return the new path.

    Exporters and quantizers name tensors after the PyTorch module path
    (``/_layers.2/_layers.4/Conv_output_0_zero_point``) and store shape hints
    (``value_info``); on a model of a few tens of kilobytes that text is a sizeable share of
    the file. This renames every internal tensor to ``t<n>`` and every node to
    ``<op>_<n>`` (graph input/output names are kept), and drops ``value_info`` and doc
    strings. ``out_path`` defaults to ``<name>.compact.onnx``.

    Example:
        >>> small = compact_onnx("artifacts/onnx/kws_int8.onnx")  # doctest: +SKIP
    """
    import onnx

    path = Path(path)
    model = _load(path)
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    mapping: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping)}"
        return mapping[name]

    for t in graph.initializer:
        t.name = short(t.name)
        t.doc_string = ""
    for i, node in enumerate(graph.node):
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        node.name = f"{node.op_type}_{i}"
        node.doc_string = ""
    for v in graph.input:
        if v.name in mapping:  # initializers listed as inputs in old IR versions
            v.name = mapping[v.name]
    del graph.value_info[:]
    graph.doc_string = ""
    model.doc_string = ""
    onnx.checker.check_model(model)
    out_path = Path(out_path) if out_path is not None else path.with_name(path.stem + ".compact.onnx")
    with atomic_path(out_path, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return out_path


# --------------------------------------------------------------------------- latency

def benchmark_latency(contenders: Mapping[str, Callable[[], Any]], runs: int = 200,
                      warmup: int = 20, threads: int = 1) -> dict[str, dict[str, float]]:
    """Time several zero-argument callables side by side; seconds per call.

    Each round calls every contender once, in a rotating order, so that a noisy neighbour
    or CPU frequency change hits all of them alike. ``warmup`` rounds are run first and
    thrown away (first calls allocate buffers and fill caches). PyTorch's thread count is
    set to ``threads`` for the duration (onnxruntime sessions get theirs in
    :func:`make_session`); say which in the lesson, it changes the numbers.

    Returns ``{name: {"median", "p10", "p90", "mean", "runs"}}``.

    Example:
        >>> r = benchmark_latency({"noop": lambda: None}, runs=5, warmup=1)
        >>> r["noop"]["runs"]
        5
    """
    import torch

    if not contenders:
        raise ValueError("give at least one callable to time, e.g. {'onnxruntime fp32': fn}")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        for r in range(warmup + runs):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                contenders[name]()
                elapsed = time.perf_counter() - start
                if r >= warmup:
                    times[name].append(elapsed)
    finally:
        torch.set_num_threads(previous)
    out = {}
    for name, ts in times.items():
        arr = np.asarray(ts)
        out[name] = {"median": float(statistics.median(ts)), "p10": float(np.percentile(arr, 10)),
                     "p90": float(np.percentile(arr, 90)), "mean": float(arr.mean()), "runs": len(ts)}
    return out


# --------------------------------------------------------------------------- handoff

def build_kws_onnx_artifacts(model: Any, calibration_features: Any, test_features: Any,
                             test_labels: Any, folder: str | os.PathLike | None = None, *,
                             classes: Sequence[str] | None = None, per_channel: bool = True,
                             fmt: str = "qoperator", activation_type: str = "int8",
                             source: Mapping[str, Any] | None = None,
                             expected_range: tuple[float, float] | None = None) -> dict[str, Path]:
    """Write the notebook-06 handoff files (see the module docstring) and return their paths.

    Exports ``model`` to ``kws_fp32.onnx`` (TorchScript exporter, opset 13, dynamic batch),
    quantizes it to ``kws_int8.onnx`` with ``calibration_features``, runs both on the test
    clips and saves inputs, int8 reference outputs and a manifest with sha256 and accuracies.
    ``expected_range`` (the training features' min and max) lets the calibration check
    refuse clips that are not features of the kind the model was trained on; the int8 model
    is compared with the float one on the test clips before it is kept.

    Example:
        >>> paths = build_kws_onnx_artifacts(model, X_cal, X_test, y_test)  # doctest: +SKIP
        >>> sorted(paths)  # doctest: +SKIP
        ['calibration', 'fp32', 'int8', 'int8_reference', 'manifest', 'test_inputs']
    """
    folder = Path(folder) if folder is not None else _config.artifacts_dir("onnx")
    folder.mkdir(parents=True, exist_ok=True)
    X_test, y_test = _check_features(test_features), np.asarray(test_labels, dtype=np.int64)
    X_cal = _check_features(calibration_features)
    if len(X_test) != len(y_test):
        raise ValueError(f"{len(X_test)} test clips but {len(y_test)} labels")
    paths = {k: folder / v for k, v in ARTIFACT_NAMES.items()}
    export_onnx(model, paths["fp32"], tuple(X_test.shape[1:]))
    quantize_onnx(paths["fp32"], paths["int8"], X_cal, fmt=fmt, per_channel=per_channel,
                  activation_type=activation_type, expected_range=expected_range,
                  check_features=X_test)
    fp32 = onnx_logits(paths["fp32"], X_test)
    int8 = onnx_logits(paths["int8"], X_test)
    pt = torch_logits(model, X_test)
    names = np.asarray(list(classes) if classes is not None else [], dtype=str)
    _savez(paths["test_inputs"], features=X_test, labels=y_test, classes=names)
    _savez(paths["calibration"], features=X_cal)
    _savez(paths["int8_reference"], logits=int8, predictions=int8.argmax(1).astype(np.int64),
           fp32_logits=fp32)
    manifest = {
        "files": {k: {"name": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size}
                  for k, p in paths.items() if k != "manifest"},
        "input_name": INPUT_NAME, "output_name": OUTPUT_NAME, "opset": DEFAULT_OPSET,
        "input_shape": list(X_test.shape[1:]),
        "quantization": {"format": fmt, "per_channel": bool(per_channel), "weights": "int8 symmetric",
                         "activations": activation_type, "calibration_clips": int(len(X_cal)),
                         "calibrate_method": "minmax"},
        "operators_int8": operator_counts(paths["int8"]),
        "test_clips": int(len(X_test)),
        "accuracy": {"pytorch_fp32": accuracy(pt, y_test), "onnx_fp32": accuracy(fp32, y_test),
                     "onnx_int8": accuracy(int8, y_test)},
        "parity_fp32": parity_report(pt, fp32),
        "source": dict(source or {}),
        "mode": _config.run_mode(),
    }
    atomic_write_json(paths["manifest"], manifest)
    return paths


def _savez(path: Path, **arrays: Any) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def _artifacts_fresh(paths: Mapping[str, Path], source: Mapping[str, Any]) -> bool:
    if not all(p.exists() for p in paths.values()):
        return False
    try:
        manifest = json.loads(paths["manifest"].read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("source") != dict(source) or manifest.get("mode") != _config.run_mode():
        return False
    return all(sha256_file(paths[k]) == v["sha256"] for k, v in manifest["files"].items() if k in paths)


KWS_MODEL_SOURCES = ("shipped", "artifacts", "auto")


def handoff_model_source(manifest: str | os.PathLike) -> str | None:
    """The ``model_source`` an existing handoff was built from, if its manifest says (else None).

    Example:
        >>> handoff_model_source("no/such/kws_onnx.json") is None
        True
    """
    try:
        recorded = json.loads(Path(manifest).read_text()).get("source", {}).get("model_source")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if recorded in KWS_MODEL_SOURCES else None


def kws_onnx_artifacts(rebuild: bool = False, *, model_source: str | None = None,
                       calibration_clips: int | None = None, per_channel: bool = True) -> dict[str, Path]:
    """Paths of the keyword model's ONNX handoff files, building them if missing or stale.

    Keys: ``fp32``, ``int8``, ``test_inputs``, ``calibration``, ``int8_reference``,
    ``manifest`` (see the module docstring for their contents). The files are rebuilt from
    ``load_kws_phinet(model_source)`` and the keyword data when ``rebuild`` is true, when one is
    missing, or when the manifest does not match the model weights or run mode. Notebook 06
    calls this, so it runs on its own even if notebook 05 never ran.

    ``model_source``: ``"shipped"`` (the PhiNet pretrained on the whole corpus), ``"artifacts"``
    (the copy notebook 04 trained, on a subset in the workshop) or ``"auto"`` (that copy if it
    exists). ``None`` keeps whatever the existing handoff was built from (so notebook 06
    deploys the model notebook 05 chose), and is ``"shipped"`` when there is none.

    Example:
        >>> paths = kws_onnx_artifacts(model_source="shipped")  # doctest: +SKIP
        >>> paths["int8"].name  # doctest: +SKIP
        'kws_int8.onnx'
    """
    from .data import keyword_classes, keyword_features
    from .models.phinet import load_kws_phinet

    folder = _config.artifacts_dir("onnx")
    paths = {k: folder / v for k, v in ARTIFACT_NAMES.items()}
    if model_source is None:
        model_source = handoff_model_source(paths["manifest"]) or "shipped"
    if model_source not in KWS_MODEL_SOURCES:
        raise ValueError(f"model_source must be one of {KWS_MODEL_SOURCES} (or None), got {model_source!r}")
    model, cfg = load_kws_phinet(model_source)
    kind = cfg.get("feature_kind", cfg.get("kind", "logmel"))
    n_cal = calibration_clips or _config.by_mode(workshop=300, smoke=32)
    source = {"weights_sha256": cfg.get("weights_sha256"), "feature_kind": kind,
              "calibration_clips": int(n_cal), "per_channel": bool(per_channel), "model_source": model_source}
    if not rebuild and _artifacts_fresh(paths, source):
        return paths
    X_train, y_train = keyword_features("train", kind=kind)
    X_test, y_test = keyword_features("test", kind=kind)
    X_cal = calibration_subset(X_train, y_train, n_cal)
    return build_kws_onnx_artifacts(model, X_cal, X_test, y_test, folder,
                                    classes=cfg.get("classes") or keyword_classes(),
                                    per_channel=per_channel, source=source,
                                    expected_range=(float(X_train.min()), float(X_train.max())))
