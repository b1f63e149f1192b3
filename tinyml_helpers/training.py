"""Train and evaluate classifiers on micromind's ``MicroMind`` class.

:func:`train_classifier` wraps any ``torch.nn.Module`` that maps a batch of inputs to
class logits in a small :class:`micromind.MicroMind` subclass and calls
``MicroMind.train``. MicroMind runs on HF accelerate, so the same code trains on a laptop
CPU and, launched with ``accelerate launch``, on one or more GPUs. On top of it this module
adds what the notebooks need and MicroMind leaves out: one tidy progress bar per run, a
per-epoch history, keeping the weights of the best validation epoch, a pluggable loss (for
knowledge distillation) that can see teacher outputs and penultimate embeddings, and
input checks that say what to fix. :func:`evaluate` gives accuracy and a confusion matrix.

micromind 0.2.1 quirks worked around here (each is marked ``# micromind:`` in the code):

* ``MicroMind.train`` needs a ``Checkpointer`` (whose folder must hold a ``save/``
  sub-folder) and ``hparams.debug``, or it crashes.
* Its ``Checkpointer`` saves a full accelerate state every epoch into a folder named after
  the current *second*: two short epochs in the same second overwrite the "best"
  checkpoint with a later, worse one. It also *resumes* from whatever it finds in ``save/``,
  so rerunning a notebook would silently skip training. We subclass it to keep the best
  weights in memory, never resume, and write one ``best.pt`` state_dict at the end.
* Its training loop adds each batch loss twice to the epoch's ``train_loss`` (so the value
  it reports is 2x the mean); we compute the mean loss ourselves.
* It draws a plain-``tqdm`` bar per epoch and per validation pass and logs every epoch
  through loguru; in a notebook that is a wall of text. We silence both for the duration of
  a run and show one ``tqdm.auto`` bar instead.
* ``MicroMind.train`` rewires the dict of loaders you pass it in place; we pass a copy.
* ``MicroMind.validate`` calls ``compute_loss`` on validation batches too; our loss is
  plain cross-entropy there, so validation batches need only ``(x, y)``.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> X = torch.randn(64, 4); y = (X[:, 0] > 0).long()
    >>> dl = DataLoader(TensorDataset(X, y), batch_size=16)
    >>> res = train_classifier(torch.nn.Linear(4, 2), {"train": dl, "val": dl}, epochs=2,
    ...                        progress=False, save_checkpoint=False)
    >>> len(res.history), 0.0 <= evaluate(res.model, dl).accuracy <= 1.0
    (2, True)
"""
from __future__ import annotations

import contextlib
import copy
import math
import numbers
import os
import shutil
import time
from argparse import Namespace
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import config
from .files import atomic_path

__all__ = [
    "StepOutputs",
    "TrainResult",
    "EvalResult",
    "train_classifier",
    "evaluate",
    "predict_logits",
    "make_loader",
    "classifier_layer",
    "cross_entropy_loss",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


@dataclass
class StepOutputs:
    """What a loss function sees for one training batch.

    ``embedding`` (the student's penultimate features, i.e. the input of its last
    ``nn.Linear``) is filled only when the loss has ``needs_embedding = True``.
    ``teacher_logits`` / ``teacher_embedding`` come either from extra tensors in the batch
    (``(x, y, teacher_logits[, teacher_embedding])``, precomputed once) or from the
    ``teacher`` model passed to :func:`train_classifier` (computed on the fly).
    """

    logits: torch.Tensor
    labels: torch.Tensor
    embedding: torch.Tensor | None = None
    teacher_logits: torch.Tensor | None = None
    teacher_embedding: torch.Tensor | None = None


@dataclass
class TrainResult:
    """The trained model (best validation epoch restored) and how training went.

    ``history`` holds one dict per epoch with ``epoch``, ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_accuracy`` and ``seconds`` (since the start).
    """

    model: nn.Module
    history: list[dict[str, float]]
    best_val_accuracy: float
    best_epoch: int
    seconds: float
    checkpoint: Path | None = None
    loss_module: nn.Module | None = None

    def curve(self, key: str) -> list[float]:
        """One column of the history, e.g. ``res.curve("val_accuracy")``."""
        if self.history and key not in self.history[0]:
            raise KeyError(f"no {key!r} in the history; available: {sorted(self.history[0])}")
        return [row[key] for row in self.history]


@dataclass
class EvalResult:
    """Accuracy, confusion matrix (rows = true class, columns = predicted) and sample count."""

    accuracy: float
    confusion: np.ndarray
    n: int
    loss: float = float("nan")
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Recall of each true class (NaN for classes absent from the data)."""
        totals = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / totals


def cross_entropy_loss(out: StepOutputs) -> torch.Tensor:
    """The default loss: cross-entropy between logits and hard labels."""
    return F.cross_entropy(out.logits, out.labels)


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` (its classifier head); its input is the embedding.

    Example:
        >>> classifier_layer(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))).in_features
        8
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear layer, so its penultimate embedding "
            "cannot be found automatically; give it a final nn.Linear classifier or use a "
            "loss without an embedding term.")
    return linears[-1]


@contextlib.contextmanager
def _capture_embedding(model: nn.Module, enabled: bool) -> Iterator[dict[str, torch.Tensor]]:
    """While active, ``store["embedding"]`` is the flattened input of the model's classifier."""
    store: dict[str, torch.Tensor] = {}
    if not enabled:
        yield store
        return

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        store["embedding"] = inputs[0].flatten(1)

    handle = classifier_layer(model).register_forward_pre_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def make_loader(*tensors: torch.Tensor | np.ndarray, batch_size: int = 64, shuffle: bool = False,
                seed: int = 0) -> DataLoader:
    """A DataLoader over tensors of equal length, with seeded shuffling.

    The shuffling generator is re-seeded by :func:`train_classifier` with its own ``seed``,
    so two training runs with the same seed see the batches in the same order.

    Use it to attach precomputed teacher outputs to a training set:
    ``make_loader(X, y, teacher_logits, batch_size=64, shuffle=True)``.

    Example:
        >>> dl = make_loader(np.zeros((10, 3), np.float32), np.arange(10), batch_size=4)
        >>> [len(b[0]) for b in dl]
        [4, 4, 2]
    """
    if not tensors:
        raise ValueError("make_loader needs at least one tensor (e.g. make_loader(X, y))")
    ts = [torch.as_tensor(t) for t in tensors]
    lengths = {len(t) for t in ts}
    if len(lengths) != 1:
        raise ValueError(f"all tensors must have the same length (first dimension), got {[len(t) for t in ts]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = int(batch_size)  # DataLoader refuses NumPy integers
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(*ts), batch_size=batch_size, shuffle=shuffle, generator=generator)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_loader(name: str, loader: Any) -> None:
    if loader is None:
        raise ValueError(f"loaders[{name!r}] is None; pass a DataLoader of (x, y) batches")
    try:
        n = len(loader)
    except TypeError:
        return  # iterable-style loaders have no length; trust them
    if n == 0:
        raise ValueError(
            f"the {name!r} loader is empty (0 batches): check that its split has data and that "
            "drop_last=True is not dropping the only, incomplete batch")


def _split_batch(batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ValueError("each batch must be (x, y) or (x, y, teacher_logits[, teacher_embedding]); "
                         f"got {type(batch).__name__}")
    return batch[0], batch[1], list(batch[2:])


def _reseed_shuffling(loader: Any, seed: int) -> None:
    """A DataLoader with its own generator keeps advancing it across runs; restart it.

    (Loaders without one shuffle from the global RNG, which ``seed_everything`` resets.)
    """
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(seed)


def _check_logits(model: nn.Module, loader: Any, num_classes: int | None) -> int:
    """Run one batch and fail early, clearly, if outputs and labels cannot match."""
    x, y, _ = _split_batch(next(iter(loader)))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(x.to(_model_device(model)))
    model.train(was_training)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"the model must map a batch of {x.shape[0]} inputs to logits of shape "
            f"({x.shape[0]}, n_classes), but it returned {shape}. Check the final layer "
            "(flatten before the classifier, return only the logits).")
    n_out = logits.shape[1]
    if num_classes is not None and n_out != num_classes:
        raise ValueError(f"the model outputs {n_out} logits per sample but num_classes={num_classes}: "
                         f"build the model with {num_classes} outputs")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    if len(y) and (int(y.max()) >= n_out or int(y.min()) < 0):
        raise ValueError(
            f"labels range over [{int(y.min())}, {int(y.max())}] but the model outputs only "
            f"{n_out} logits: build the model with at least {int(y.max()) + 1} classes")
    return n_out


@contextlib.contextmanager
def _quiet_micromind() -> Iterator[None]:
    """micromind: silence its per-epoch tqdm bars and loguru lines during one run."""
    import micromind.core as mm_core
    from loguru import logger
    from tqdm import tqdm as std_tqdm

    def silent_tqdm(iterable: Any = None, **kwargs: Any) -> Any:
        kwargs["disable"] = True
        return std_tqdm(iterable, **kwargs)

    original = mm_core.tqdm
    mm_core.tqdm = silent_tqdm
    logger.disable("micromind")
    try:
        yield
    finally:
        mm_core.tqdm = original
        logger.enable("micromind")


def _check_run_name(run_name: Any) -> str:
    # The run folder's save/ is wiped before training: a name that leaves
    # artifacts/checkpoints/ (absolute, "..", a drive) would empty someone else's folder.
    from pathlib import PurePosixPath, PureWindowsPath

    if not isinstance(run_name, str):
        raise TypeError(f"run_name must be a string, got {type(run_name).__name__}")
    parts = PurePosixPath(run_name.replace("\\", "/")).parts
    if (not parts or PurePosixPath(run_name).is_absolute() or PureWindowsPath(run_name).drive
            or run_name.startswith(("/", "\\")) or any(p in ("..", ".") for p in parts)):
        raise ValueError(f"run_name must be a plain folder name inside artifacts/checkpoints/ "
                         f"(e.g. 'phinet-seed0'), got {run_name!r}: absolute paths and '..' "
                         "are refused because the run folder's save/ is emptied first")
    return run_name


def _make_checkpointer_class() -> type:
    from micromind.utils.checkpointer import Checkpointer

    class BestInMemoryCheckpointer(Checkpointer):
        """micromind: a Checkpointer that keeps the best weights in memory and never resumes.

        MicroMind calls it once per epoch after validation, which makes it the natural
        place to collect the history and advance the progress bar.
        """

        def __init__(self, folder: Path, hparams: Namespace, model: nn.Module, pbar: Any,
                     t0: float) -> None:
            super().__init__(str(folder), key="accuracy", mode="max", hparams=hparams)
            self.model = model
            self.pbar = pbar
            self.t0 = t0
            self.history: list[dict[str, float]] = []
            self.best_state: dict[str, torch.Tensor] | None = None
            self.best_epoch = 0

        def recover_state(self) -> None:  # never resume a stale run
            return None

        def __call__(self, mind: Any, train_metrics: dict, metrics: dict) -> str:
            losses = mind.epoch_losses
            train_loss = float(torch.stack(losses).mean()) if losses else float("nan")
            mind.epoch_losses = []
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training diverged at epoch {mind.current_epoch} (loss {train_loss}); "
                    "lower the learning rate or check the inputs for NaN/inf")
            row = {
                "epoch": int(mind.current_epoch),
                "train_loss": train_loss,
                "train_accuracy": float(train_metrics.get("train_accuracy", float("nan"))),
                "val_loss": float(metrics.get("val_loss", float("nan"))),
                "val_accuracy": float(metrics["val_accuracy"]),
                "seconds": time.perf_counter() - self.t0,
            }
            self.history.append(row)
            if row["val_accuracy"] >= self.bests or self.best_state is None:
                self.bests = row["val_accuracy"]
                self.best_epoch = row["epoch"]
                self.best_state = copy.deepcopy(self.model.state_dict())
            if self.pbar is not None:
                self.pbar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{row['val_accuracy']:.3f}",
                                      best=f"{self.bests:.3f}")
                self.pbar.update(1)
            return self.save_dir

    return BestInMemoryCheckpointer


def _make_mind(model: nn.Module, loss_module: nn.Module | None, loss_fn: Callable[[StepOutputs], torch.Tensor],
               teacher: nn.Module | None, needs_embedding: bool, hparams: Namespace,
               channels_last: bool = False) -> Any:
    from micromind import MicroMind

    class ClassifierMind(MicroMind):
        """The MicroMind around one classifier (and, optionally, a trainable loss module)."""

        def __init__(self) -> None:
            super().__init__(hparams)
            self.modules["model"] = model
            if loss_module is not None:  # e.g. a learned projection for the embedding loss
                self.modules["loss"] = loss_module
            self.teacher = teacher
            self.epoch_losses: list[torch.Tensor] = []

        def forward(self, batch: Sequence[torch.Tensor]) -> StepOutputs:
            x, y, extra = _split_batch(batch)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            net = self.modules["model"]
            want_emb = needs_embedding and net.training
            with _capture_embedding(net, want_emb) as store:
                logits = net(x)
            out = StepOutputs(logits=logits, labels=y, embedding=store.get("embedding"))
            if not net.training:
                return out
            if extra:
                out.teacher_logits = extra[0]
                out.teacher_embedding = extra[1] if len(extra) > 1 else None
            elif self.teacher is not None:
                self.teacher.to(x.device).eval()
                with torch.no_grad(), _capture_embedding(self.teacher, needs_embedding) as tstore:
                    out.teacher_logits = self.teacher(x)
                out.teacher_embedding = tstore.get("embedding")
            return out

        def compute_loss(self, pred: StepOutputs, batch: Sequence[torch.Tensor]) -> torch.Tensor:
            if not self.modules["model"].training:
                # micromind: validate() calls compute_loss too; report plain cross-entropy there.
                return F.cross_entropy(pred.logits, pred.labels)
            loss = loss_fn(pred)
            self.epoch_losses.append(loss.detach())
            return loss

        def configure_optimizers(self) -> Any:
            params = [p for p in self.modules.parameters() if p.requires_grad]
            if hparams.opt == "adam":
                opt = torch.optim.Adam(params, lr=hparams.lr, weight_decay=hparams.weight_decay)
            elif hparams.opt == "adamw":
                opt = torch.optim.AdamW(params, lr=hparams.lr, weight_decay=hparams.weight_decay)
            else:
                opt = torch.optim.SGD(params, lr=hparams.lr, momentum=0.9,
                                      weight_decay=hparams.weight_decay, nesterov=True)
            if hparams.schedule == "cosine":
                # MicroMind steps the scheduler after every batch.
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, hparams.total_steps))
                return opt, sched
            return opt

    return ClassifierMind()


def _accuracy_metric() -> Any:
    from micromind import Metric

    def batch_correct(pred: StepOutputs, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        return (pred.logits.argmax(dim=1) == pred.labels).float()

    return Metric("accuracy", batch_correct, reduction="mean")


def train_classifier(model: nn.Module, loaders: Mapping[str, Any], *, epochs: int, lr: float = 1e-3,
                     weight_decay: float = 0.0, loss_fn: Callable[[StepOutputs], torch.Tensor] | None = None,
                     teacher: nn.Module | None = None, optimizer: str = "adam", schedule: str = "constant",
                     seed: int = 0, progress: bool = True, run_name: str | None = None,
                     num_classes: int | None = None, restore_best: bool = True,
                     save_checkpoint: bool = True, channels_last: bool = False) -> TrainResult:
    """Train ``model`` with micromind's ``MicroMind.train``; keep the best validation epoch.

    Args:
        model: maps a batch ``x`` to logits ``(batch, n_classes)``. Trained in place.
        loaders: ``{"train": ..., "val": ...}`` DataLoaders (``"test"`` is ignored here;
            use :func:`evaluate`). Training batches are ``(x, y)`` or
            ``(x, y, teacher_logits[, teacher_embedding])``; validation batches ``(x, y)``.
        epochs: number of passes over the training set (>= 1).
        lr, weight_decay, optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (Nesterov momentum 0.9).
        schedule: ``"constant"`` or ``"cosine"`` (cosine decay to 0 over all steps).
        loss_fn: ``loss_fn(StepOutputs) -> scalar`` (default: cross-entropy). If it is an
            ``nn.Module`` its parameters are trained too (e.g. a projection for an embedding
            loss); if it has ``needs_embedding = True`` the penultimate features of the
            student (and teacher) are captured for it.
        teacher: optional frozen model whose outputs fill ``StepOutputs.teacher_*`` when the
            batches do not carry precomputed ones.
        seed: seeds Python/NumPy/PyTorch at the start, so shuffling and dropout repeat.
            Build the model after ``seed_everything(seed)`` for identical initial weights.
        progress: show one ``tqdm.auto`` bar (one tick per epoch) and print a one-line summary at
            the end (the line survives in saved notebooks, where the bar does not).
        run_name: sub-folder of ``artifacts/checkpoints/`` for this run (wiped first).
        num_classes: if given, the model's output width must equal it.
        restore_best: load the weights of the best validation epoch at the end.
        save_checkpoint: write ``best.pt`` (a state_dict) into the run folder.
        channels_last: train CNNs in the NHWC memory layout (often 1.5-2x faster on CPU for
            small/depthwise convolutions); the model is returned in the default layout.

    Returns:
        :class:`TrainResult` with the model, per-epoch history and timing.

    Example:
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> dl = DataLoader(TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,))), batch_size=4)
        >>> train_classifier(nn.Linear(3, 2), {"train": dl, "val": dl}, epochs=1,
        ...                  progress=False, save_checkpoint=False).best_epoch
        1
    """
    from tqdm.auto import tqdm

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    # numbers.Real, not (int, float): np.float32 (e.g. from np.logspace) is a fine lr.
    if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    lr = float(lr)
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {OPTIMIZERS}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; use one of {SCHEDULES}")
    if not isinstance(loaders, Mapping) or "train" not in loaders or "val" not in loaders:
        got = sorted(loaders) if isinstance(loaders, Mapping) else type(loaders).__name__
        raise ValueError(f"loaders must be a dict with 'train' and 'val' DataLoaders, got {got}")
    for name in ("train", "val"):
        _check_loader(name, loaders[name])
    if teacher is not None and not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module or None, got {type(teacher).__name__}")
    loss_fn = loss_fn or cross_entropy_loss
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(StepOutputs) -> tensor, got {type(loss_fn).__name__}")
    needs_embedding = bool(getattr(loss_fn, "needs_embedding", False))
    loss_module = loss_fn if isinstance(loss_fn, nn.Module) and any(True for _ in loss_fn.parameters()) else None

    config.seed_everything(int(seed))
    _reseed_shuffling(loaders["train"], int(seed))
    _check_logits(model, loaders["train"], num_classes)
    if needs_embedding:
        classifier_layer(model)  # fail now, with a clear message, if there is no classifier

    run_name = _check_run_name(run_name or f"{type(model).__name__.lower()}-seed{seed}")
    # micromind: the Checkpointer asserts that <folder>/save exists; start from a clean folder.
    folder = config.artifacts_dir("checkpoints", run_name)
    shutil.rmtree(folder / "save", ignore_errors=True)
    (folder / "save").mkdir(parents=True, exist_ok=True)

    try:
        steps_per_epoch = len(loaders["train"])
    except TypeError:
        steps_per_epoch = 1
    hparams = Namespace(
        debug=False,  # micromind: on_train_start reads hparams.debug
        experiment_name=run_name, output_folder=str(folder.parent), opt=optimizer, lr=float(lr),
        weight_decay=float(weight_decay), schedule=schedule, total_steps=int(epochs) * steps_per_epoch,
        seed=int(seed), epochs=int(epochs))

    if channels_last:
        model.to(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    pbar = tqdm(total=int(epochs), desc=run_name, unit="epoch", leave=True) if progress else None
    try:
        with _quiet_micromind():
            mind = _make_mind(model, loss_module, loss_fn, teacher, needs_embedding, hparams, channels_last)
            checkpointer = _make_checkpointer_class()(folder, hparams, model, pbar, t0)
            # micromind: train() replaces the loaders in the dict it gets; hand it a copy.
            datasets = {"train": loaders["train"], "val": loaders["val"]}
            mind.train(epochs=int(epochs), datasets=datasets, metrics=[_accuracy_metric()],
                       checkpointer=checkpointer)
    finally:
        if pbar is not None:
            pbar.close()
    if progress and checkpointer.history:
        # A tqdm bar keeps only its first state in a notebook saved by a headless run: this line survives.
        last = checkpointer.history[-1]
        print(f"{run_name}: {last['epoch']} epochs in {last['seconds']:.0f} s, best val acc "
              f"{checkpointer.bests:.1%} at epoch {checkpointer.best_epoch}, last train loss {last['train_loss']:.3f}")

    trained = mind.modules["model"]
    # Under `accelerate launch` with several processes micromind wraps the model in DDP; hand back the model.
    trained = trained.module if isinstance(trained, torch.nn.parallel.DistributedDataParallel) else trained
    if channels_last:
        trained.to(memory_format=torch.contiguous_format)
    if restore_best and checkpointer.best_state is not None:
        trained.load_state_dict(checkpointer.best_state)
    trained.eval()
    checkpoint_path = None
    if save_checkpoint and is_main_process():
        checkpoint_path = folder / "best.pt"
        with atomic_path(checkpoint_path) as tmp:
            torch.save(trained.state_dict(), tmp)
    return TrainResult(model=trained, history=checkpointer.history,
                       best_val_accuracy=float(checkpointer.bests), best_epoch=checkpointer.best_epoch,
                       seconds=time.perf_counter() - t0, checkpoint=checkpoint_path,
                       loss_module=mind.modules["loss"] if loss_module is not None else None)


def is_main_process() -> bool:
    """False in the extra processes of a distributed run (``accelerate launch``); they must not write files.

    Example:
        >>> is_main_process()
        True
    """
    return int(os.environ.get("RANK", "0")) == 0


@torch.no_grad()
def predict_logits(model: nn.Module, loader: Any, *, return_embeddings: bool = False,
                   return_labels: bool = False) -> Any:
    """Logits of ``model`` over every batch of ``loader`` (eval mode, no gradients).

    Returns a ``(N, C)`` tensor; with ``return_embeddings`` also the ``(N, D)`` inputs of the
    final ``nn.Linear``; with ``return_labels`` also the ``(N,)`` labels, in that order.

    Example:
        >>> dl = make_loader(torch.randn(5, 3), torch.zeros(5, dtype=torch.long), batch_size=2)
        >>> predict_logits(nn.Linear(3, 4), dl).shape
        torch.Size([5, 4])
    """
    _check_loader("evaluation", loader)
    device = _model_device(model)
    was_training = model.training
    model.eval()
    logits, embs, labels = [], [], []
    try:
        with _capture_embedding(model, return_embeddings) as store:
            for batch in loader:
                x = batch[0] if isinstance(batch, (list, tuple)) else batch
                logits.append(model(x.to(device)).float().cpu())
                if return_embeddings:
                    embs.append(store["embedding"].float().cpu())
                if return_labels:
                    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                        raise ValueError("return_labels=True needs (x, y) batches")
                    labels.append(batch[1].cpu())
    finally:
        model.train(was_training)
    if not logits:
        raise ValueError("the loader yielded no batches")
    out = [torch.cat(logits)]
    if return_embeddings:
        out.append(torch.cat(embs))
    if return_labels:
        out.append(torch.cat(labels))
    return out[0] if len(out) == 1 else tuple(out)


def evaluate(model: nn.Module, loader: Any, num_classes: int | None = None) -> EvalResult:
    """Accuracy, confusion matrix and mean cross-entropy of ``model`` on ``(x, y)`` batches.

    Example:
        >>> dl = make_loader(torch.eye(3), torch.arange(3), batch_size=2)
        >>> net = nn.Linear(3, 3); _ = net.weight.data.copy_(torch.eye(3)); _ = net.bias.data.zero_()
        >>> evaluate(net, dl).accuracy
        1.0
    """
    logits, labels = predict_logits(model, loader, return_labels=True)
    if logits.ndim != 2:
        raise ValueError(f"the model must return logits of shape (batch, n_classes), got {tuple(logits.shape)}")
    n_classes = num_classes or logits.shape[1]
    if logits.shape[1] != n_classes:
        raise ValueError(f"the model outputs {logits.shape[1]} logits but num_classes={num_classes}")
    y = labels.long()
    if len(y) and int(y.max()) >= n_classes:
        raise ValueError(f"a label ({int(y.max())}) is outside the model's {n_classes} classes")
    pred = logits.argmax(dim=1)
    confusion = np.bincount((y * n_classes + pred).numpy(), minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes)
    n = int(len(y))
    return EvalResult(accuracy=float((pred == y).float().mean()) if n else float("nan"),
                      confusion=confusion, n=n, loss=float(F.cross_entropy(logits, y)),
                      predictions=pred.numpy())
