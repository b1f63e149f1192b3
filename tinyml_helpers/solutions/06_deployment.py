"""Worked solutions for notebook 06 (deployment). One block per exercise cell."""

# SOLUTION 06.arena_size
# EXERCISE 06.arena_size
def arena_size(tensors):
    """Largest sum of sizes of tensors live at the same step (first <= step <= last)."""
    last_step = max(last for _, _, _, last in tensors)
    return max(sum(size for _, size, first, last in tensors if first <= step <= last)
               for step in range(last_step + 1))


for row in checks.SMALL_GRAPH:
    print(row)
checks.check_arena_lower_bound(arena_size);

# SOLUTION 06.requantize
# EXERCISE 06.requantize
def requantize(acc, mult, shift, zp_out):
    """int8 outputs of int32 accumulators: saturate(zp_out + round(acc * mult / 2**shift))."""
    acc = np.asarray(acc, dtype=np.int64)
    scaled = (acc * mult + (1 << (shift - 1))) >> shift   # round half up
    return np.clip(zp_out + scaled, -128, 127).astype(np.int8)


checks.check_requantize(requantize);
