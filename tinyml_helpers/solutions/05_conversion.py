"""Worked solutions for notebook 05 (conversion and int8 quantization)."""
# ruff: noqa

# SOLUTION 05.quantize_dequantize
# EXERCISE 05.quantize_dequantize
# Write the two formulas above with numpy. quantize returns an int8 array;
# dequantize returns float32. (Hint: do the arithmetic in float / int32, not int8.)
def quantize(x, scale, zero_point):
    q = np.rint(np.asarray(x, dtype=np.float64) / scale) + zero_point   # round half to even, like ONNX
    return np.clip(q, -128, 127).astype(np.int8)

def dequantize(q, scale, zero_point):
    return ((np.asarray(q).astype(np.int32) - zero_point) * scale).astype(np.float32)

checks.check_round_trip(quantize, dequantize, x=np.linspace(-1.0, 1.5, 101), scale=0.01, zero_point=-28);

# SOLUTION 05.symmetric_scale
# EXERCISE 05.symmetric_scale
# The scale onnxruntime gives a weight tensor w (symmetric int8, zero point 0): the largest
# weight in magnitude must land exactly on level +127 or -127.
def symmetric_scale(w):
    return float(np.abs(w).max()) / 127

checks.check_symmetric_scale(symmetric_scale);

# SOLUTION 05.expected_int8_bytes
# EXERCISE 05.expected_int8_bytes
# Bytes the parameters of an int8 model take: int8 weights, int32 biases (no overhead).
def expected_int8_bytes(num_weights, num_biases):
    return num_weights * 1 + num_biases * 4

checks.check_expected_int8_bytes(expected_int8_bytes);
