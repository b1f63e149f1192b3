# Worked solutions for notebook 02 (pruning). Each block is the full solved exercise cell.

# SOLUTION 02.magnitude_prune
# EXERCISE 02.magnitude_prune
def my_magnitude_prune(weights: torch.Tensor, sparsity: float) -> torch.Tensor:
    # theta = the k-th smallest |w| (k = round(sparsity * numel)); zero every |w| <= theta
    k = round(sparsity * weights.numel())
    pruned = weights.detach().clone()
    if k == 0:
        return pruned
    theta = weights.detach().abs().flatten().kthvalue(k).values
    pruned[weights.detach().abs() <= theta] = 0.0
    return pruned

check_magnitude_prune(my_magnitude_prune)

# SOLUTION 02.csr_bytes
# EXERCISE 02.csr_bytes
def my_csr_bytes(rows: int, cols: int, nnz: int, value_bytes: int, index_bytes: int, ptr_bytes: int) -> int:
    # values + column indices + row pointers
    values = nnz * value_bytes
    col_indices = nnz * index_bytes
    row_ptr = (rows + 1) * ptr_bytes
    return values + col_indices + row_ptr

check_csr_bytes(my_csr_bytes)
