"""Exercise checks for notebook 03 (ad-hoc pipelines).

Each check compares the learner's answer with the reference in
:mod:`tinyml_helpers.classical` and, when they differ, names the usual slip.

Example:
    >>> from tinyml_helpers.classical import moments_by_hand, svm_rbf_ops
    >>> check_blob_moments(moments_by_hand)
    ✅ 03.blob_moments: correct on 4 test case(s).
    True
    >>> check_svm_ops(svm_rbf_ops)
    ✅ 03.svm_ops: correct on 4 test case(s).
    True
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import Hint, check_function, check_value, register_hints
from ..classical import blob_stage_ops, generate_frames, clean_mask, detect_blobs, moments_by_hand, svm_rbf_ops, OPS_MODEL

HINTS = register_hints({
    "03.blob_moments": Hint(
        "np.nonzero gives the coordinates of the blob's pixels: which array is the row (y), which the "
        "column (x)? The centroid is a mean; a central moment sums products of distances from it",
        "xs, ys = np.nonzero(b) gives columns and rows; cx = xs.mean(); mu20 = ((xs - cx) ** 2).sum()"),
    "03.cleaning_ops": Hint(
        "count the operations per pixel of each pass in the table above (how many passes make a "
        "closing?), then multiply by the number of pixels",
        "pixels x (majority + dilation + erosion) operations per pixel, from C.OPS_MODEL"),
    "03.svm_ops": Hint(
        "write the cost of ONE support vector's term first (distance, scaling, exp, weighting), then "
        "what is done once per decision",
        "per support vector: d + d + 1 + exp + 1; then + 2 once"),
})

__all__ = ["check_blob_moments", "check_svm_ops", "check_cleaning_ops"]


def _moment_cases() -> list:
    rect = np.zeros((6, 7), np.uint8)
    rect[1:4, 2:7] = 1
    ell = np.zeros((5, 3), np.uint8)
    ell[:, 0] = 1
    ell[4, :] = 1
    frame = generate_frames(1, seed=7, noise=0.0, min_objects=2)[0]
    blobs = detect_blobs(clean_mask(frame.mask))
    real = blobs[0].pixels if blobs else rect
    diag = np.eye(5, dtype=np.uint8)
    return [((rect,), {}), ((ell,), {}), ((diag,), {}), ((real,), {})]


def _explain_moments(got: Any, want: np.ndarray, case: Any) -> str | None:
    (binary,), _ = case
    got = np.asarray(got, dtype=float).ravel()
    if got.shape != (6,):
        return f"return 6 numbers [m00, cx, cy, mu20, mu11, mu02]; you returned {got.size}"
    if np.allclose(got[[1, 2]], want[[2, 1]]) and not np.allclose(want[1], want[2]):
        return "cx and cy are swapped: x is the column index (axis 1), y the row index (axis 0)"
    if np.allclose(got[[3, 5]], want[[5, 3]]) and not np.allclose(want[3], want[5]):
        return "mu20 and mu02 are swapped: mu20 spreads along x (columns), mu02 along y (rows)"
    ys, xs = np.nonzero(binary)
    raw = np.array([(xs * xs).sum(), (xs * ys).sum(), (ys * ys).sum()], float)
    if np.allclose(got[3:], raw):
        return "these are raw moments m20, m11, m02: subtract the centroid first (central moments)"
    if want[0] and np.allclose(got[3:], want[3:] / want[0]):
        return "you divided by the area: OpenCV's mu_pq are sums, not means (keep them unnormalised)"
    return None


def check_blob_moments(fn: Callable[[np.ndarray], Any]) -> bool:
    """Check ``fn(binary) -> [m00, cx, cy, mu20, mu11, mu02]`` (also against ``cv2.moments``)."""
    return check_function("03.blob_moments", fn, moments_by_hand, _moment_cases(), rtol=1e-6, atol=1e-6,
                          explain=_explain_moments,
                          hint=HINTS["03.blob_moments"])


def _explain_ops(got: Any, want: int, case: Any) -> str | None:
    (n_sv, d), _ = case
    exp = OPS_MODEL["exp"][0]
    try:
        got = int(got)
    except (TypeError, ValueError):
        return f"return a whole number of operations, got {got!r}"
    if got == n_sv * (2 * d + 2) + 2:
        return f"you left out the exp of each kernel value ({exp} operations each)"
    if got == want - 2:
        return "you forgot the final bias add and the sign compare (2 operations per decision)"
    if got == n_sv * (d + 2 + exp) + 2:
        return "the squared distance needs d subtractions AND d multiply-accumulates per support vector"
    if got == n_sv * (2 * d + exp + 1) + 2 or got == n_sv * (2 * d + exp) + 2:
        return "per support vector there are 2 more scalar steps: times gamma, and the MAC with the dual coefficient"
    return None


def check_svm_ops(fn: Callable[[int, int], Any]) -> bool:
    """Check ``fn(n_support, n_features) -> operations`` of one RBF-SVM decision."""
    cases = [((1, 1), {}), ((100, 10), {}), ((37, 10), {}), ((250, 4), {})]
    return check_function("03.svm_ops", fn, svm_rbf_ops, cases, rtol=0, atol=0.5, explain=_explain_ops,
                          hint=HINTS["03.svm_ops"])


def check_cleaning_ops(value: Any, height: int = 72, width: int = 96) -> bool:
    """Check the operations of the two cleaning passes (majority filter + closing) on one frame."""
    ops = blob_stage_ops(height, width, 0, 0, 0, 0)
    want = ops["majority_filter"] + ops["closing"]
    if value is not None and value is not Ellipsis:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = None
        if v == ops["majority_filter"]:
            return check_value("03.cleaning_ops", value, want, rtol=0,
                               hint="you counted the majority filter only; the closing is a dilation AND an erosion")
        if v == height * width * (9 + 8):
            return check_value("03.cleaning_ops", value, want, rtol=0,
                               hint="a closing is two passes: a dilation (8 ORs) then an erosion (8 ANDs)")
    return check_value("03.cleaning_ops", value, want, rtol=0, what="operations of the cleaning passes",
                       hint=HINTS["03.cleaning_ops"])
