"""Worked solutions to notebook 00 (why TinyML): one block per exercise cell."""

# SOLUTION 00.audio_rate
# EXERCISE 00.audio_rate
def audio_bytes_per_second(sample_rate_hz, bits_per_sample, channels=1):
    """Bytes per second of raw (uncompressed PCM) audio."""
    return sample_rate_hz * (bits_per_sample / 8) * channels

check_audio_rate(audio_bytes_per_second)

# SOLUTION 00.conv_macs
# EXERCISE 00.conv_macs
def conv2d_macs(c_in, c_out, kernel, out_hw, groups=1):
    """Multiply-accumulates of one Conv2d that produces an out_h x out_w map (batch of 1).

    kernel = (k_h, k_w), out_hw = (out_h, out_w); groups = c_in for a depthwise conv.
    """
    (k_h, k_w), (out_h, out_w) = kernel, out_hw
    return out_h * out_w * c_out * (c_in // groups) * k_h * k_w

check_conv_macs(conv2d_macs)

# SOLUTION 00.int8_flash
# EXERCISE 00.int8_flash
def int8_conv_flash_bytes(c_in, c_out, kernel, groups=1):
    """Flash bytes of one int8 Conv2d with a bias: int8 weights + int32 biases."""
    k_h, k_w = kernel
    weights = c_out * (c_in // groups) * k_h * k_w  # int8: 1 byte each
    return weights + 4 * c_out  # int32 biases

check_int8_flash(int8_conv_flash_bytes)

# SOLUTION 00.frame_budget
# EXERCISE 00.frame_budget
def frame_budget(params, macs, joules_per_frame, fps):
    """Power (W), int8 weight bytes, joules per MAC and MACs per second of a vision model."""
    return {"power_w": joules_per_frame * fps,          # J/frame x frames/s = J/s = W
            "int8_weight_bytes": params * 1,            # one byte per int8 weight
            "j_per_mac": joules_per_frame / macs,       # the frame's energy over the frame's MACs
            "macs_per_second": macs * fps}

check_frame_budget(frame_budget)
