"""Keyword-spotting CNNs on log-mel features: the KD *teacher*, a tiny student, and loading.

* :class:`KWSTeacherCNN` is a plain VGG-style CNN (3x3 conv + batch norm + ReLU, max
  pooling, global average pooling, a hidden fully-connected layer and the classifier). It is
  "big" only at microcontroller scale: about 0.6 M parameters and ~30 M MACs per 1 s clip
  (49 frames x 40 mel bands), roughly 25x the parameters of the tiny students. Its
  penultimate layer (the input of ``classifier``) is the embedding used by the embedding
  loss of knowledge distillation.
* :class:`TinyKWSCNN` is a small depthwise-separable student (tens of thousands of
  parameters) in the spirit of the DS-CNN of Zhang et al. 2017, "Hello Edge", for when the
  course's DS-CNN is not at hand.
* :func:`load_kws_teacher` loads the shipped teacher ``data/checkpoints/kws_teacher.pt``
  (a state_dict stored in float16 to halve its size, read with ``weights_only=True`` after
  checking its sha256, and cast back to float32). It is made by
  ``python -m tinyml_helpers.scripts.train_teacher``.

Example:
    >>> import torch
    >>> net = KWSTeacherCNN(n_classes=12)
    >>> tuple(net(torch.zeros(2, 1, 49, 40)).shape)
    (2, 12)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import config

__all__ = ["KWSTeacherCNN", "TinyKWSCNN", "load_kws_teacher", "save_kws_teacher", "get_teacher",
           "TEACHER_RELPATH", "TEACHER_CONFIG"]

TEACHER_RELPATH = "checkpoints/kws_teacher.pt"
TEACHER_INFO_RELPATH = "checkpoints/kws_teacher.json"
TEACHER_CONFIG = {"n_classes": 12, "widths": (32, 64, 128, 256), "hidden": 256, "dropout": 0.3}


def _conv_bn_relu(c_in: int, c_out: int, groups: int = 1, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _check_input_rank(x: torch.Tensor) -> None:
    """ValueError unless ``x`` is (batch, 1, frames, bands); torch.fx's tracing Proxy passes unchecked."""
    # The cost model traces these networks with torch.fx, whose Proxy has no rank to branch on.
    if not isinstance(x, torch.fx.Proxy) and x.ndim != 4:
        raise ValueError(f"expected input (batch, 1, frames, bands), got shape {tuple(x.shape)}")


class KWSTeacherCNN(nn.Module):
    """A wide VGG-style CNN for (batch, 1, frames, bands) log-mel inputs.

    Four stages of ``widths`` channels; stages 1-3 end with 2x2 max pooling, so a 49x40
    input is processed at 49x40, 24x20, 12x10 and 6x5. Then global average pooling, a hidden
    ``Linear(widths[-1], hidden)`` + ReLU (the embedding) and the classifier.

    Example:
        >>> sum(p.numel() for p in KWSTeacherCNN().parameters()) > 300_000
        True
    """

    def __init__(self, n_classes: int = 12, widths: tuple[int, ...] = (32, 64, 128, 256), hidden: int = 256,
                 dropout: float = 0.3, in_channels: int = 1) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if len(widths) < 2 or any(w < 1 for w in widths):
            raise ValueError(f"widths must list at least two positive channel counts, got {widths}")
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            layers.append(_conv_bn_relu(c, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=False))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, hidden), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, n_classes)
        self.embedding_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input_rank(x)
        return self.classifier(self.drop(self.embed(self.pool(self.features(x)))))


class TinyKWSCNN(nn.Module):
    """A tiny depthwise-separable CNN student (about 35 k parameters, ~2 M MACs on 49x40).

    A 3x3 stem conv with stride 2, then depthwise-3x3 + pointwise-1x1 blocks given as
    ``(width, stride)`` pairs, global average pooling and a linear classifier whose input
    (the last block's width) is the embedding. Unlike MLPerf Tiny's DS-CNN, which keeps a
    25x5 map for its 49x10 MFCC input, this student halves the 49x40 log-mel map twice more
    inside its blocks: on a laptop CPU depthwise convolutions are memory-bound, so small maps
    keep a training run to seconds, and on an MCU they keep the activation RAM small.

    Example:
        >>> net = TinyKWSCNN(n_classes=12)
        >>> tuple(net(torch.zeros(1, 1, 49, 40)).shape), net.embedding_dim
        ((1, 12), 128)
    """

    DEFAULT_BLOCKS = ((64, 2), (64, 1), (128, 2), (128, 1))

    def __init__(self, n_classes: int = 12, stem: int = 32,
                 blocks: tuple[tuple[int, int], ...] = DEFAULT_BLOCKS, in_channels: int = 1) -> None:
        super().__init__()
        if n_classes < 2 or stem < 1:
            raise ValueError(f"need n_classes >= 2 and stem >= 1; got {n_classes}, {stem}")
        layers: list[nn.Module] = [_conv_bn_relu(in_channels, stem, stride=2)]
        c = stem
        for width, stride in blocks:
            if width < 1 or stride not in (1, 2):
                raise ValueError(f"each block is (width >= 1, stride 1 or 2); got {(width, stride)}")
            layers += [_conv_bn_relu(c, c, groups=c, stride=stride), _conv_bn_relu(c, width, kernel=1)]
            c = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c, n_classes)
        self.embedding_dim = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input_rank(x)
        return self.classifier(self.pool(self.features(x)))


def save_kws_teacher(model: KWSTeacherCNN, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Save the teacher's state_dict in float16 (half the bytes) plus a JSON of its settings.

    Batch-norm running statistics and weights all fit float16's range here; the loader
    casts back to float32 and the round trip changes test accuracy by well under a point
    (the training script checks this).
    """
    from ..files import atomic_path, atomic_write_json

    path = Path(path)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    if info is not None:
        atomic_write_json(path.with_suffix(".json"), info)
    return path


def load_kws_teacher(path: str | Path | None = None, *, verify: bool = True,
                     n_classes: int | None = None) -> KWSTeacherCNN:
    """The shipped, pre-trained teacher in eval mode (float32), sha256-checked.

    ``path`` defaults to ``data/checkpoints/kws_teacher.pt``, checked against
    ``data/manifest.json``. Give another path (e.g. a teacher you trained on Google
    Speech Commands) with ``verify=False``; its settings are read from the ``.json`` beside it.

    Example:
        >>> teacher = load_kws_teacher()  # doctest: +SKIP
    """
    cfg = dict(TEACHER_CONFIG)
    if path is None:
        if verify:
            from ..data.manifest import verify_file

            path = verify_file(TEACHER_RELPATH)
            # The settings JSON shapes the model (dropout, widths): it is listed in the
            # manifest, so check it too -- an edited dropout was used silently before.
            verify_file(TEACHER_INFO_RELPATH)
        else:
            path = config.data_dir() / TEACHER_RELPATH
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"teacher checkpoint {path} is missing; restore it with `git checkout -- data/{TEACHER_RELPATH}` "
            "or rebuild it with `python -m tinyml_helpers.scripts.train_teacher`")
    info_path = path.with_suffix(".json")
    if info_path.exists():
        try:
            saved = json.loads(info_path.read_text()).get("model", {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
            raise ValueError(f"{info_path} is damaged ({err}); restore it with `git checkout -- "
                             f"data/{TEACHER_INFO_RELPATH}` (shipped teacher) or re-save the teacher "
                             "with save_kws_teacher") from err
        cfg.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in saved.items() if k in cfg})
    if n_classes is not None:
        cfg["n_classes"] = n_classes
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = KWSTeacherCNN(**cfg)
    try:
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
    except RuntimeError as exc:
        raise ValueError(f"{path} does not fit KWSTeacherCNN({cfg}): {str(exc).splitlines()[0]}. "
                         "Was it trained with other settings? Keep its .json beside it.") from exc
    return model.eval()


def teacher_path(dataset: str) -> Path:
    """Where the teacher for ``dataset`` lives: shipped in ``data/`` (synthetic) or cached in ``artifacts/models/``.

    Example:
        >>> teacher_path("speech_commands").name
        'kws_teacher_speech_commands.pt'
    """
    from ..data import DATASETS

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}")
    if dataset == "synthetic":
        return config.data_dir() / TEACHER_RELPATH
    return config.artifacts_dir("models") / f"kws_teacher_{dataset}.pt"


def get_teacher(dataset: str = "synthetic", download: bool = False) -> KWSTeacherCNN:
    """The teacher for ``dataset``: the shipped one for the bundled synthetic set; for Google
    Speech Commands (``"speech_commands"``) the one trained once and cached in ``artifacts/models/``.

    This module only builds and loads models. Training a missing teacher is the script's job:
    :func:`tinyml_helpers.scripts.train_teacher.get_teacher` loads it or trains it first
    (tens of minutes on a laptop CPU). ``download`` is accepted for the same call signature.

    Example:
        >>> get_teacher().classifier.out_features  # doctest: +SKIP
        12
    """
    path = teacher_path(dataset)
    if dataset == "synthetic":
        return load_kws_teacher()
    if not path.exists():
        raise FileNotFoundError(
            f"no teacher trained on {dataset} yet ({path}). Train it once (tens of minutes) with "
            f"`python -m tinyml_helpers.scripts.train_teacher --dataset {dataset} --out {path} --download`, "
            "or call tinyml_helpers.scripts.train_teacher.get_teacher(dataset, download=True)")
    return load_kws_teacher(path, verify=False)
