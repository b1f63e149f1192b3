"""Fashion-MNIST subset bundled in ``data/images/`` (offline), stratified by class.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747; MIT licence) has 60,000 train
and 10,000 test greyscale 28x28 images of 10 clothing classes. The bundled subset keeps
a fixed number per class: train and val come from the official train set (disjoint), test
from the official test set. ``python -m tinyml_helpers.scripts.make_fashion_subset``
rebuilds it from the Debian package ``dataset-fashion-mnist``; learners never need that,
the npz ships. The full set (and CIFAR-10) is available opt-in through
:mod:`tinyml_helpers.data.downloads`.

Example:
    >>> X, y = fashion_mnist_subset("test", smoke=True)
    >>> X.shape[1:], X.dtype, y.dtype
    ((28, 28), dtype('uint8'), dtype('int64'))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import config
from .keywords import smoke_subset
from .manifest import verify_file

__all__ = ["FASHION_CLASSES", "FASHION_SUBSET_FILE", "fashion_mnist_subset", "fashion_classes"]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
FASHION_SUBSET_FILE = "images/fashion_mnist_subset.npz"
MAKE_COMMAND = "python -m tinyml_helpers.scripts.make_fashion_subset"
SPLITS = ("train", "val", "test")
SMOKE_PER_CLASS = {"train": 16, "val": 8, "test": 8}


def fashion_classes() -> list[str]:
    """The 10 Fashion-MNIST class names in label order.

    Example:
        >>> fashion_classes()[0]
        'T-shirt/top'
    """
    return list(FASHION_CLASSES)


def fashion_mnist_subset(split: str, smoke: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) in 0..255 and labels int64 (N,) of one split of the subset.

    Smoke mode (``smoke=None`` follows ``th.is_smoke()``) returns 16 (train) or 8 (val,
    test) images per class.

    Example:
        >>> X, y = fashion_mnist_subset("val", smoke=True)
        >>> len(X) == len(y) == 80
        True
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    path = config.data_dir() / FASHION_SUBSET_FILE
    if not path.exists():
        raise FileNotFoundError(f"bundled image file {path} is missing. Restore it with "
                                f"`git checkout -- data/{FASHION_SUBSET_FILE}` or regenerate it with "
                                f"`{MAKE_COMMAND}` (needs the Debian package dataset-fashion-mnist).")
    verify_file(FASHION_SUBSET_FILE)
    with np.load(Path(path)) as stored:
        X, y = stored[f"x_{split}"], stored[f"y_{split}"].astype(np.int64)
    if config.is_smoke() if smoke is None else smoke:
        keep = smoke_subset(y, SMOKE_PER_CLASS[split])
        X, y = X[keep], y[keep]
    return X, y
