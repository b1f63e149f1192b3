"""Exercise checks for notebook 00 (why TinyML): data rates and what a layer costs.

The references are the computation modules: :func:`tinyml_helpers.edge.raw_data_rate` and
:mod:`tinyml_helpers.cost` measured on a real ``torch.nn.Conv2d``.

Example:
    >>> check_audio_rate(lambda sample_rate_hz, bits_per_sample, channels=1: None)
    ❌ 00.audio_rate: not attempted yet (your function returned None).
       Hint: how many bytes does one sample take (bits are not bytes), and how many samples arrive per second? (full hint: th.checks.hint("00.audio_rate"))
    False
"""
from __future__ import annotations

from typing import Any, Callable

from . import Hint, check_function, register_hints

HINTS = register_hints({
    "00.frame_budget": Hint(
        "energy per frame times frames per second is a power; an int8 weight is one byte; "
        "spread one frame's energy over its MACs",
        "power_w = joules_per_frame * fps; int8_weight_bytes = params; j_per_mac = joules_per_frame / macs; "
        "macs_per_second = macs * fps"),
    "00.audio_rate": Hint(
        "how many bytes does one sample take (bits are not bytes), and how many samples arrive per second?",
        "samples per second x bytes per sample x channels (16 bits = 2 bytes)"),
    "00.conv_macs": Hint(
        "count the outputs (out_h x out_w x c_out), then the multiply-accumulates behind ONE output: "
        "a group sees only c_in / groups input channels",
        "MACs = out_h x out_w x c_out x (c_in / groups) x k_h x k_w"),
    "00.int8_flash": Hint(
        "two kinds of numbers: how many weights does the kernel hold (groups!), and how many biases; "
        "how many bytes does each take in int8 inference?",
        "int8 weights (1 byte each, c_out x c_in/groups x k_h x k_w) + int32 biases (4 bytes x c_out)"),
})

__all__ = ["check_audio_rate", "check_conv_macs", "check_int8_flash", "check_frame_budget",
           "reference_conv_macs", "reference_int8_conv_flash"]


def _reference_audio_rate(sample_rate_hz: float, bits_per_sample: int, channels: int = 1) -> float:
    from ..edge import raw_data_rate

    return raw_data_rate(sample_rate_hz, bits_per_sample / 8, channels)


def check_audio_rate(learner_fn: Callable[..., Any]) -> bool:
    """Check ``audio_bytes_per_second(sample_rate_hz, bits_per_sample, channels=1)``."""
    cases = [((16_000, 16), {}), ((44_100, 16), {"channels": 2}), ((8_000, 8), {})]

    def explain(got: Any, want: float, case: Any) -> str | None:
        try:
            got = float(got)
        except (TypeError, ValueError):
            return None
        if got == want * 8:
            return f"got {got:,.0f}, expected {want:,.0f}: that is bits per second; divide by 8 for bytes"
        channels = case[1].get("channels", 1)
        if channels > 1 and got * channels == want:
            return f"got {got:,.0f}, expected {want:,.0f}: multiply by the number of channels"
        return None

    return check_function("00.audio_rate", learner_fn, _reference_audio_rate, cases, explain=explain,
                          hint=HINTS["00.audio_rate"])


def _conv(c_in: int, c_out: int, kernel: tuple[int, int], groups: int, bias: bool = True) -> Any:
    from torch import nn

    return nn.Conv2d(c_in, c_out, kernel, groups=groups, bias=bias)


def reference_conv_macs(c_in: int, c_out: int, kernel: tuple[int, int], out_hw: tuple[int, int],
                        groups: int = 1) -> int:
    """MACs of a Conv2d producing an ``out_hw`` map, measured by the cost model.

    Example:
        >>> reference_conv_macs(1, 64, (10, 4), (25, 5))
        320000
    """
    from ..cost import count_macs

    kh, kw = kernel
    oh, ow = out_hw
    # a stride-1 unpadded conv on an input of (out + kernel - 1) gives exactly out_hw
    return count_macs(_conv(c_in, c_out, kernel, groups), (c_in, oh + kh - 1, ow + kw - 1))


def check_conv_macs(learner_fn: Callable[..., Any]) -> bool:
    """Check ``conv2d_macs(c_in, c_out, kernel, out_hw, groups=1)``."""
    cases = [((1, 64, (10, 4), (25, 5)), {}),            # the DS-CNN's first layer
             ((64, 64, (1, 1), (25, 5)), {}),            # a pointwise conv
             ((64, 64, (3, 3), (25, 5)), {"groups": 64})]  # a depthwise conv

    def explain(got: Any, want: int, case: Any) -> str | None:
        groups = case[1].get("groups", 1)
        c_in, c_out, (kh, kw), (oh, ow) = case[0]
        if groups > 1 and got == want * groups:
            return (f"got {got:,}, expected {want:,}: in a grouped/depthwise conv each output channel "
                    f"only sees c_in / groups = {c_in // groups} input channel(s)")
        if got == c_in * c_out * kh * kw // groups:
            return f"got {got:,}: that is the number of weights; each one is used at every output position"
        if got == want + oh * ow * c_out:
            return (f"got {got:,}, expected {want:,}: you counted the bias additions; a bias is added, "
                    "not multiplied, so it is not a MAC")
        return None

    return check_function("00.conv_macs", learner_fn, reference_conv_macs, cases, explain=explain,
                          hint=HINTS["00.conv_macs"])


def reference_int8_conv_flash(c_in: int, c_out: int, kernel: tuple[int, int], groups: int = 1) -> int:
    """int8 flash bytes of a Conv2d with bias (int8 weights, int32 biases), by the cost model.

    Example:
        >>> reference_int8_conv_flash(1, 64, (10, 4))
        2816
    """
    from ..cost import flash_bytes

    return flash_bytes(_conv(c_in, c_out, kernel, groups), "int8")


def check_int8_flash(learner_fn: Callable[..., Any]) -> bool:
    """Check ``int8_conv_flash_bytes(c_in, c_out, kernel, groups=1)``."""
    cases = [((1, 64, (10, 4)), {}), ((64, 64, (1, 1)), {}), ((64, 64, (3, 3)), {"groups": 64})]

    def explain(got: Any, want: int, case: Any) -> str | None:
        c_in, c_out, (kh, kw) = case[0]
        groups = case[1].get("groups", 1)
        weights = c_out * c_in // groups * kh * kw
        if got == weights + c_out:
            return f"got {got:,}, expected {want:,}: the biases are int32 (4 bytes each), not int8"
        if got == weights:
            return f"got {got:,}, expected {want:,}: you forgot the {c_out} biases (int32, 4 bytes each)"
        if got == 4 * (weights + c_out):
            return f"got {got:,}: that is fp32; int8 weights take 1 byte each"
        if groups > 1 and got == c_out * c_in * kh * kw + 4 * c_out:
            return f"got {got:,}: a depthwise kernel has c_in / groups = {c_in // groups} input channel(s)"
        return None

    return check_function("00.int8_flash", learner_fn, reference_int8_conv_flash, cases, explain=explain,
                          hint=HINTS["00.int8_flash"])


def check_frame_budget(learner_fn: Callable[..., Any]) -> bool:
    """Check ``frame_budget(params, macs, joules_per_frame, fps) -> dict`` against
    :func:`tinyml_helpers.edge.frame_budget` (the four keys, in SI units)."""
    from ..edge import frame_budget

    keys = ("power_w", "int8_weight_bytes", "j_per_mac", "macs_per_second")
    cases = [((984_000, 62e6, 28e-3, 9), {}), ((260_000, 63e6, 5e-3, 2), {}), ((24_000, 2.7e6, 1e-3, 4), {})]

    def as_tuple(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            out = fn(*args)
            if not isinstance(out, dict):
                return out
            missing = [k for k in keys if k not in out]
            if missing:
                raise KeyError(f"your dict has no {missing}")
            return [float(out[k]) for k in keys]
        return run

    def explain(got: Any, want: Any, case: Any) -> str | None:
        params, macs, jpf, fps = case[0]
        if got is None or len(got) != 4:
            return None
        if abs(got[0] - jpf / fps) < 1e-12:
            return "power_w: you divided by the frame rate; energy per frame x frames per second = joules per second"
        if abs(got[1] - 4 * params) < 1e-6:
            return "int8_weight_bytes: 4 bytes per weight is float32; int8 stores one byte per weight"
        if abs(got[2] - jpf / (macs * fps)) < 1e-18:
            return "j_per_mac: one frame's energy is spent on one frame's MACs; the frame rate cancels"
        return None

    return check_function("00.frame_budget", as_tuple(learner_fn), as_tuple(frame_budget), cases, rtol=1e-6,
                          explain=explain, hint=HINTS["00.frame_budget"])
