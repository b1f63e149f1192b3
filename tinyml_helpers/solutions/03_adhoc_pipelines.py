"""Worked solutions to the exercises of notebook 03 (ad-hoc pipelines)."""

# SOLUTION 03.blob_moments
# EXERCISE 03.blob_moments
def my_blob_moments(binary):
    """Return np.array([m00, cx, cy, mu20, mu11, mu02]) of a 0/1 image (x = column, y = row)."""
    ys, xs = np.nonzero(binary)          # rows are y, columns are x
    m00 = float(len(xs))
    cx, cy = xs.mean(), ys.mean()
    dx, dy = xs - cx, ys - cy
    return np.array([m00, cx, cy, (dx * dx).sum(), (dx * dy).sum(), (dy * dy).sum()])

check_blob_moments(my_blob_moments)

# SOLUTION 03.cleaning_ops
# EXERCISE 03.cleaning_ops
# majority filter (8 adds + 1 compare) + dilation (8 ORs) + erosion (8 ANDs), per pixel
cleaning_ops = H * W * (9 + 8 + 8)

check_cleaning_ops(cleaning_ops, H, W)

# SOLUTION 03.svm_ops
# EXERCISE 03.svm_ops
def my_svm_rbf_ops(n_support, n_features):
    """Operations of one RBF-SVM decision under the counting model above."""
    exp_ops = C.OPS_MODEL["exp"][0]
    per_support_vector = n_features + n_features + 1 + exp_ops + 1
    return n_support * per_support_vector + 2

check_svm_ops(my_svm_rbf_ops)
