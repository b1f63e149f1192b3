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

__all__ = ["FASHION_CLASSES", "FASHION_SUBSET_FILE", "fashion_mnist_subset", "fashion_classes",
           "torchvision_fashion_mnist", "torchvision_cifar10"]

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


# ----------------------------------------------------------------------------- opt-in full sets

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# sha256 of the DECOMPRESSED idx files (the .gz wrappers differ between mirrors; the content
# does not). Measured on Debian's dataset-fashion-mnist copy of the official files.
FASHION_IDX_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


def torchvision_fashion_mnist(train: bool = True, download: bool = False, transform=None):
    """The full Fashion-MNIST (60k/10k) as a ``torchvision.datasets.FashionMNIST`` (opt-in).

    Files are fetched with :func:`~tinyml_helpers.data.downloads.download` (sha256 of the
    decoded idx files, atomic writes) into ``artifacts/cache/downloads/torchvision``; torchvision
    then reads them without downloading anything itself.

    Example:
        >>> # ds = torchvision_fashion_mnist(train=False, download=True); len(ds) -> 10000
    """
    from .downloads import download as fetch, download_cache_dir

    root = download_cache_dir("torchvision")
    raw = root / "FashionMNIST" / "raw"
    for name, sha in FASHION_IDX_SHA256.items():
        target = raw / name
        if not target.exists() and not download:
            raise FileNotFoundError(f"full Fashion-MNIST is not in {raw}. It is opt-in: call with "
                                    "download=True, or use the bundled fashion_mnist_subset(split).")
        fetch(FASHION_URL + name + ".gz", sha, target, gunzip=True)
    from torchvision.datasets import FashionMNIST

    return FashionMNIST(str(root), train=train, download=False, transform=transform)


def torchvision_cifar10(train: bool = True, download: bool = False, transform=None):
    """CIFAR-10 (Krizhevsky, 2009) as a ``torchvision.datasets.CIFAR10`` (opt-in, 163 MB).

    Example:
        >>> # ds = torchvision_cifar10(train=False, download=True); len(ds) -> 10000
    """
    import tarfile

    from .downloads import download as fetch, download_cache_dir

    root = download_cache_dir("torchvision")
    archive = root / "cifar-10-python.tar.gz"
    if not (root / "cifar-10-batches-py").exists():
        if not archive.exists() and not download:
            raise FileNotFoundError(f"CIFAR-10 is not in {root}. It is opt-in: call with download=True.")
        fetch(CIFAR10_URL, CIFAR10_SHA256, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    from torchvision.datasets import CIFAR10

    return CIFAR10(str(root), train=train, download=False, transform=transform)
