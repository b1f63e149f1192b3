"""Sparse storage arithmetic: when does storing only the non-zeros actually save bytes?

Zeroing weights saves nothing by itself: a dense tensor stores every zero in full. A sparse
format stores the non-zeros *plus* where they are, and that "where" costs bytes too. This
module does the bookkeeping for the classic **CSR** (compressed sparse row) layout of a
2-D weight matrix with ``rows x cols`` entries and ``nnz`` non-zeros:

* ``values``      ``nnz`` numbers, ``value_bytes`` each (4 for fp32, 1 for int8);
* ``col_indices`` ``nnz`` column numbers, each wide enough to hold ``cols - 1``;
* ``row_ptr``     ``rows + 1`` offsets into ``values``, each wide enough to hold ``nnz``.

Index widths are the smallest unsigned integer that fits (1, 2 or 4 bytes), as an MCU
inference engine would choose; pass ``index_bytes`` to force a width (e.g. 4 for the
int32 indices most desktop libraries use).

Dense costs ``rows*cols*value_bytes``; CSR costs ``nnz*(value_bytes+index_bytes) +
(rows+1)*ptr_bytes``. With ``nnz = (1 - s) * rows * cols`` the two are equal at the
**crossover sparsity** ``s* = 1 - (rows*cols*value_bytes - (rows+1)*ptr_bytes) /
(rows*cols*(value_bytes + index_bytes))``. For fp32 values with 2-byte column indices that
is about 1/3; with int8 values and 1-byte indices about 1/2, and with int8 values and
2-byte indices about 2/3: quantized models need *more* sparsity before CSR pays off,
because an index costs as much as (or more than) the value it locates.

No library computes these storage sizes for a chosen index width (scipy and torch always
use int32/int64 indices), so the arithmetic is written here; :func:`to_csr_arrays` builds
the real arrays with ``scipy.sparse`` and narrows their dtypes to prove the formula.

Example:
    >>> csr_bytes(rows=64, cols=64, nnz=410, value_bytes=4)   # 1-byte cols, 2-byte ptrs
    2180
    >>> round(crossover_sparsity(64, 64, value_bytes=4), 3)
    0.206
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "index_bytes_for",
    "dense_bytes",
    "csr_bytes",
    "crossover_sparsity",
    "CsrArrays",
    "to_csr_arrays",
    "csr_model_bytes",
    "dense_model_bytes",
    "model_crossover_sparsity",
]


def _check_shape(rows: int, cols: int) -> None:
    for name, value in (("rows", rows), ("cols", cols)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer (a matrix dimension), got {value!r}")


def _check_value_bytes(value_bytes: int) -> None:
    if value_bytes not in (1, 2, 4, 8):
        raise ValueError(f"value_bytes must be 1 (int8), 2 (fp16), 4 (fp32) or 8 (fp64), got {value_bytes!r}")


def index_bytes_for(max_value: int) -> int:
    """Smallest unsigned integer width (1, 2 or 4 bytes) that can hold ``max_value``.

    Example:
        >>> index_bytes_for(255), index_bytes_for(256), index_bytes_for(70_000)
        (1, 2, 4)
    """
    if not isinstance(max_value, (int, np.integer)) or max_value < 0:
        raise ValueError(f"max_value must be a non-negative integer, got {max_value!r}")
    if max_value <= 0xFF:
        return 1
    if max_value <= 0xFFFF:
        return 2
    if max_value <= 0xFFFFFFFF:
        return 4
    raise ValueError(f"{max_value} does not fit a 32-bit index; split the matrix into blocks")


def dense_bytes(rows: int, cols: int, value_bytes: int = 4) -> int:
    """Bytes of a dense ``rows x cols`` matrix: every entry, zero or not.

    Example:
        >>> dense_bytes(64, 64, value_bytes=1)
        4096
    """
    _check_shape(rows, cols)
    _check_value_bytes(value_bytes)
    return int(rows * cols * value_bytes)


def csr_bytes(rows: int, cols: int, nnz: int, value_bytes: int = 4,
              index_bytes: int | None = None, ptr_bytes: int | None = None) -> int:
    """Bytes of a ``rows x cols`` matrix with ``nnz`` non-zeros stored in CSR.

    ``index_bytes`` (column indices) defaults to the smallest width holding ``cols - 1``;
    ``ptr_bytes`` (row pointers) to the smallest width holding ``rows * cols`` (the largest
    ``nnz`` the matrix can have, so the width does not change as you prune).

    Example:
        >>> csr_bytes(4, 4, nnz=0)          # empty: only the 5 row pointers (1 byte each)
        5
        >>> csr_bytes(4, 4, nnz=16, value_bytes=4, index_bytes=4, ptr_bytes=4)
        148
    """
    _check_shape(rows, cols)
    _check_value_bytes(value_bytes)
    if not isinstance(nnz, (int, np.integer)) or isinstance(nnz, bool) or not 0 <= nnz <= rows * cols:
        raise ValueError(f"nnz must be an integer between 0 and rows*cols={rows * cols}, got {nnz!r}")
    index_bytes = index_bytes_for(cols - 1) if index_bytes is None else index_bytes
    ptr_bytes = index_bytes_for(rows * cols) if ptr_bytes is None else ptr_bytes
    for name, width in (("index_bytes", index_bytes), ("ptr_bytes", ptr_bytes)):
        if width not in (1, 2, 4, 8):
            raise ValueError(f"{name} must be 1, 2, 4 or 8 bytes, got {width!r}")
    return int(nnz * (value_bytes + index_bytes) + (rows + 1) * ptr_bytes)


def crossover_sparsity(rows: int, cols: int, value_bytes: int = 4,
                       index_bytes: int | None = None, ptr_bytes: int | None = None) -> float:
    """The sparsity above which CSR is smaller than dense storage (a fraction in [0, 1]).

    Solves ``csr_bytes(nnz=(1-s)*rows*cols) == dense_bytes`` for ``s``. Below it, the
    "compressed" format is *larger* than the dense one.

    Example:
        >>> round(crossover_sparsity(128, 128, value_bytes=4, index_bytes=4), 3)
        0.502
    """
    _check_shape(rows, cols)
    _check_value_bytes(value_bytes)
    index_bytes = index_bytes_for(cols - 1) if index_bytes is None else index_bytes
    ptr_bytes = index_bytes_for(rows * cols) if ptr_bytes is None else ptr_bytes
    n = rows * cols
    s = 1.0 - (n * value_bytes - (rows + 1) * ptr_bytes) / (n * (value_bytes + index_bytes))
    return float(min(max(s, 0.0), 1.0))


@dataclass(frozen=True)
class CsrArrays:
    """The three CSR arrays of one matrix, with the narrowest index dtypes."""

    values: np.ndarray
    col_indices: np.ndarray
    row_ptr: np.ndarray
    shape: tuple[int, int]

    @property
    def nbytes(self) -> int:
        """Total bytes of the three arrays (what a firmware would store)."""
        return int(self.values.nbytes + self.col_indices.nbytes + self.row_ptr.nbytes)

    def to_dense(self) -> np.ndarray:
        """Rebuild the dense matrix (to prove nothing was lost)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.values, self.col_indices.astype(np.int64),
                              self.row_ptr.astype(np.int64)), shape=self.shape).toarray()


_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def to_csr_arrays(matrix: Any, value_dtype: Any = np.float32) -> CsrArrays:
    """Store a 2-D array (or a conv weight, flattened to ``out x rest``) as real CSR arrays.

    Uses ``scipy.sparse.csr_matrix`` and then narrows the index arrays to the widths
    :func:`csr_bytes` assumes, so ``to_csr_arrays(w).nbytes == csr_bytes(...)``.

    Example:
        >>> a = to_csr_arrays(np.eye(4, dtype=np.float32))
        >>> a.nbytes, csr_bytes(4, 4, nnz=4)
        (25, 25)
    """
    import scipy.sparse as sp

    if hasattr(matrix, "detach"):
        matrix = matrix.detach().cpu().numpy()
    matrix = np.asarray(matrix)
    if matrix.ndim < 2:
        raise ValueError(f"expected a matrix (2-D, or a conv weight with >= 2 dims), got shape {matrix.shape}")
    matrix = matrix.reshape(matrix.shape[0], -1)
    rows, cols = matrix.shape
    csr = sp.csr_matrix(matrix.astype(value_dtype))
    csr.eliminate_zeros()
    return CsrArrays(values=csr.data.astype(value_dtype),
                     col_indices=csr.indices.astype(_UINT[index_bytes_for(cols - 1)]),
                     row_ptr=csr.indptr.astype(_UINT[index_bytes_for(rows * cols)]),
                     shape=(rows, cols))


def _weight_matrices(model: Any) -> list[np.ndarray]:
    import torch

    mats = []
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            w = module.weight.detach().cpu().numpy()
            mats.append(w.reshape(w.shape[0], -1))
    if not mats:
        raise ValueError("the model has no Conv or Linear layers to store; pass a torch.nn.Module with weights")
    return mats


def dense_model_bytes(model: Any, value_bytes: int = 4) -> int:
    """Bytes of all Conv/Linear weight matrices of ``model`` stored dense (biases excluded).

    Example:
        >>> import torch
        >>> dense_model_bytes(torch.nn.Linear(8, 4))
        128
    """
    _check_value_bytes(value_bytes)
    return int(sum(m.size * value_bytes for m in _weight_matrices(model)))


def csr_model_bytes(model: Any, value_bytes: int = 4, index_bytes: int | None = None) -> int:
    """Bytes of all Conv/Linear weight matrices of ``model`` stored as CSR (biases excluded).

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(8, 4)
        >>> with torch.no_grad(): _ = lin.weight.zero_()
        >>> csr_model_bytes(lin)        # only the 5 row pointers survive
        5
    """
    total = 0
    for m in _weight_matrices(model):
        rows, cols = m.shape
        total += csr_bytes(rows, cols, int(np.count_nonzero(m)), value_bytes, index_bytes)
    return int(total)


def model_crossover_sparsity(model: Any, value_bytes: int = 4, index_bytes: int | None = None) -> float:
    """Crossover sparsity for a whole model when every layer has the same sparsity.

    Sums the per-layer formula: dense ``D = sum(r*c)*v`` equals CSR
    ``(1-s)*sum(r*c*(v+i_l)) + sum((r+1)*p_l)`` at ``s* = 1 - (D - P) / sum(r*c*(v+i_l))``.
    (With *global* pruning the layers end up with different sparsities; use layer-wise
    pruning to compare with this number.)

    Example:
        >>> import torch
        >>> round(model_crossover_sparsity(torch.nn.Linear(64, 64)), 3) == round(crossover_sparsity(64, 64), 3)
        True
    """
    _check_value_bytes(value_bytes)
    dense = ptrs = csr_full = 0
    for m in _weight_matrices(model):
        rows, cols = m.shape
        i_bytes = index_bytes_for(cols - 1) if index_bytes is None else index_bytes
        dense += rows * cols * value_bytes
        ptrs += (rows + 1) * index_bytes_for(rows * cols)
        csr_full += rows * cols * (value_bytes + i_bytes)
    return float(min(max(1.0 - (dense - ptrs) / csr_full, 0.0), 1.0))
