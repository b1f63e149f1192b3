"""Make ``data/images/fashion_mnist_subset.npz``: a stratified Fashion-MNIST subset.

Usage (needs the Debian package with the full set; learners never run this, the npz ships)::

    apt-get install -y dataset-fashion-mnist
    python -m tinyml_helpers.scripts.make_fashion_subset

Reads the idx files from ``/usr/share/datasets/fashion-mnist`` (or ``--source``), keeps
``--train-per-class`` and ``--val-per-class`` images of each class from the official train
set (disjoint) and ``--test-per-class`` from the official test set, chosen with a seeded
generator, and writes a compressed npz with ``x_<split>`` (uint8, N x 28 x 28) and
``y_<split>`` (uint8). Fashion-MNIST: Xiao, Rasul, Vollgraf 2017, MIT licence.
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

from tinyml_helpers import config
from tinyml_helpers.data.images import FASHION_SUBSET_FILE, MAKE_COMMAND
from tinyml_helpers.data.manifest import markdown_rows, update_manifest
from tinyml_helpers.files import atomic_path

DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read an (optionally gzipped) idx file (the MNIST format) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or dtype_code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator, exclude: np.ndarray | None = None) -> np.ndarray:
    chosen = []
    for c in range(10):
        members = np.nonzero(labels == c)[0]
        if exclude is not None:
            members = np.setdiff1d(members, exclude)
        chosen.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEBIAN_FOLDER)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--train-per-class", type=int, default=400)
    parser.add_argument("--val-per-class", type=int, default=100)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2017)
    args = parser.parse_args(argv)
    files = {name: args.source / f"{name}-ubyte.gz" for name in
             ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise SystemExit(f"Fashion-MNIST idx files not found: {missing}. Install them with "
                         "`apt-get install -y dataset-fashion-mnist` or pass --source <folder>.")
    x_train_all, y_train_all = read_idx(files["train-images-idx3"]), read_idx(files["train-labels-idx1"])
    x_test_all, y_test_all = read_idx(files["t10k-images-idx3"]), read_idx(files["t10k-labels-idx1"])
    rng = np.random.default_rng(args.seed)
    train = pick(y_train_all, args.train_per_class, rng)
    val = pick(y_train_all, args.val_per_class, rng, exclude=train)
    test = pick(y_test_all, args.test_per_class, rng)
    out = args.out or config.data_dir() / FASHION_SUBSET_FILE
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, x_train=x_train_all[train], y_train=y_train_all[train],
                                x_val=x_train_all[val], y_val=y_train_all[val],
                                x_test=x_test_all[test], y_test=y_test_all[test],
                                source_index_train=train.astype(np.int32),
                                source_index_val=val.astype(np.int32),
                                source_index_test=test.astype(np.int32))
    if out.resolve() == (config.data_dir() / FASHION_SUBSET_FILE).resolve():
        update_manifest({FASHION_SUBSET_FILE: None}, made_by=MAKE_COMMAND, licence="MIT",
                        what="Fashion-MNIST subset (Xiao et al. 2017): "
                             f"{args.train_per_class}/{args.val_per_class}/{args.test_per_class} "
                             "images per class for train/val/test")
        print("row for data/README.md:\n" + markdown_rows(FASHION_SUBSET_FILE))
    summary = {"train": int(train.size), "val": int(val.size), "test": int(test.size), "bytes": out.stat().st_size}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
