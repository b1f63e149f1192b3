"""The C kernels against the NumPy references, compiled for the host (fast) and, once, for
the emulated Cortex-M4; plus the fixed-point arithmetic they rely on."""
from __future__ import annotations

import ctypes
import zlib

import numpy as np
import pytest

from tinyml_helpers.deploy import quant, toolchain
from tinyml_helpers.deploy import codegen
from tinyml_helpers.deploy.codegen import pack_conv_weights


class ConvParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int16) for n in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c")] + \
               [(n, ctypes.c_int8) for n in ("kh", "kw", "sh", "sw", "pad_top", "pad_left", "dh", "dw")] + \
               [(n, ctypes.c_int32) for n in ("in_zp", "out_zp", "act_min", "act_max")]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    so = toolchain.compile_host_library(tmp_path_factory.mktemp("host") / "tm_kernels.so")
    return ctypes.CDLL(str(so))


def ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def rand_requant(rng, n, lo=1e-4, hi=0.9):
    reals = rng.uniform(lo, hi, n)
    m, s = zip(*(quant.quantize_multiplier(r) for r in reals))
    return np.array(m, np.int32), np.array(s, np.int32)


# ----------------------------------------------------------------------------- fixed point

def test_quantize_multiplier_is_accurate():
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-6, 2.0, 200):
        mult, shift = quant.quantize_multiplier(real)
        assert 2**30 <= mult < 2**31
        assert abs(mult / 2.0**shift - real) / real < 2**-30


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_quantize_multiplier_rejects_bad_factors(bad):
    with pytest.raises(ValueError, match="positive finite"):
        quant.quantize_multiplier(bad)


def test_requantize_rounds_half_up_and_matches_onnxruntime_off_ties():
    mult, shift = quant.quantize_multiplier(0.5)
    assert quant.requantize(5, mult, shift) == 3          # 2.5 -> 3 (half up)
    assert quant.requantize_like_onnxruntime(5, 0.5) == 2  # 2.5 -> 2 (half to even)
    rng = np.random.default_rng(1)
    acc = rng.integers(-2**20, 2**20, 5000)
    real = np.float32(0.0123)
    m, s = quant.quantize_multiplier(float(real))
    diff = np.abs(quant.requantize(acc, m, s) - quant.requantize_like_onnxruntime(acc, real))
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_requantize_c_matches_numpy_on_both_paths(lib):
    # tm_requantize has a fast path (shift > 32) and a general one; tm_global_avgpool exposes it.
    rng = np.random.default_rng(2)
    for real in (0.9, 0.3, 0.01, 1e-5):
        m, s = quant.quantize_multiplier(real)
        x = rng.integers(-128, 128, (7, 5, 3)).astype(np.int8)
        out = np.zeros(3, np.int8)
        lib.tm_global_avgpool(ptr(x), ptr(out), 35, 3, 4, m, s, -3)
        np.testing.assert_array_equal(out, quant.global_avgpool_ref(x, 4, m, s, -3))


# ----------------------------------------------------------------------------- conv kernels

CONV_CASES = [  # (H, W, Cin, Cout, kh, kw, stride, pads (t, l, b, r), dilation)
    (5, 4, 3, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (7, 9, 1, 4, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (6, 6, 8, 7, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    (9, 8, 5, 3, 3, 2, (2, 1), (0, 1, 2, 0), (1, 1)),
    (8, 8, 4, 6, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2)),
    (3, 3, 13, 1, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1)),
    # one input channel, 1x1 (tm_conv1x1_c1): pixel counts with and without a remainder of 4,
    # odd and even channel counts; stride 2 and padding take the general path
    (6, 7, 1, 5, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    (4, 4, 1, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    (1, 3, 1, 3, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1)),
    (7, 5, 1, 4, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1)),
    (5, 5, 1, 3, 1, 1, (1, 1), (1, 1, 1, 1), (1, 1)),
]


@pytest.mark.parametrize("requant", ["fixed", "float"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:6])))
def test_conv2d_matches_reference(lib, case, requant):
    h, w, cin, cout, kh, kw, stride, pads, dil = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.integers(-128, 128, (h, w, cin)).astype(np.int8)
    wt = rng.integers(-127, 128, (cout, kh, kw, cin)).astype(np.int8)
    bias = rng.integers(-5000, 5000, cout).astype(np.int32)
    mult, shift = rand_requant(rng, cout, 1e-3, 0.05)
    real = rng.uniform(1e-3, 0.05, cout).astype(np.float32)
    zx, zy = int(rng.integers(-20, 20)), int(rng.integers(-20, 20))
    want = quant.conv2d_ref(x, wt, bias, zx, zy, mult, shift, stride, pads, dil,
                            real=real if requant == "float" else None)
    oh, ow, _ = want.shape
    p = ConvParams(h, w, cin, oh, ow, cout, kh, kw, stride[0], stride[1], pads[0], pads[1], dil[0], dil[1],
                   zx, zy, -128, 127)
    out = np.zeros(want.shape, np.int8)
    col = np.full(2 * ((kh * kw * cin + 3) // 4 * 4) + 2, 0x5555, np.int16)
    packed = np.ascontiguousarray(pack_conv_weights(wt))
    if requant == "float":  # float32 scales passed as bit patterns, shift = NULL
        lib.tm_conv2d(ctypes.byref(p), ptr(x), ptr(packed), ptr(bias), ptr(real), None, ptr(out), ptr(col))
    else:
        lib.tm_conv2d(ctypes.byref(p), ptr(x), ptr(packed), ptr(bias), ptr(mult), ptr(shift), ptr(out), ptr(col))
    np.testing.assert_array_equal(out, want)
    assert (col[-2:] == 0x5555).all(), "the kernel wrote past the im2col buffer codegen sizes for it"


DW_CASES = [  # (H, W, C, kh, kw, stride, pads, dilation)
    (6, 5, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    (7, 9, 6, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    (5, 5, 3, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1)),
    (9, 7, 12, 5, 3, (2, 1), (2, 1, 2, 1), (1, 1)),
    (9, 9, 5, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2)),
]


@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: "x".join(map(str, c[:5])))
def test_depthwise_conv_matches_reference(lib, case):
    h, w, c, kh, kw, stride, pads, dil = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    wt = rng.integers(-127, 128, (kh, kw, c)).astype(np.int8)
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    mult, shift = rand_requant(rng, c, 1e-3, 0.1)
    zx, zy = int(rng.integers(-30, 30)), int(rng.integers(-30, 30))
    bias_zp = (bias - zx * wt.astype(np.int64).sum(axis=(0, 1))).astype(np.int32)
    want = quant.dwconv2d_ref(x, wt, bias, zx, zy, mult, shift, stride, pads, dil)
    oh, ow, _ = want.shape
    p = ConvParams(h, w, c, oh, ow, c, kh, kw, stride[0], stride[1], pads[0], pads[1], dil[0], dil[1],
                   zx, zy, -128, 127)
    out = np.zeros(want.shape, np.int8)
    lib.tm_dwconv2d(ctypes.byref(p), ptr(x), ptr(wt), ptr(bias), ptr(bias_zp), ptr(mult), ptr(shift), ptr(out))
    np.testing.assert_array_equal(out, want)


DW3_CASES = [  # (H, W, C, stride, pads (t, l, b, r)): odd sizes, C not a multiple of 4, asymmetric pads
    (6, 5, 8, 1, (1, 1, 1, 1)),
    (7, 9, 6, 2, (1, 1, 1, 1)),
    (5, 5, 3, 1, (0, 0, 0, 0)),
    (9, 7, 5, 2, (0, 0, 1, 1)),
    (4, 6, 1, 2, (1, 1, 1, 1)),
    (49, 40, 1, 2, (1, 1, 1, 1)),
    (3, 3, 7, 1, (2, 2, 2, 2)),
    (8, 3, 13, 2, (1, 0, 0, 1)),
]


@pytest.mark.parametrize("requant", ["fixed", "float"])
@pytest.mark.parametrize("case", DW3_CASES, ids=lambda c: "x".join(map(str, c[:4])))
def test_depthwise_3x3_fast_kernel_matches_reference(lib, case, requant):
    h, w, c, s, pads = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    wt = rng.integers(-127, 128, (3, 3, c)).astype(np.int8)
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    mult, shift = rand_requant(rng, c, 1e-3, 0.1)
    real = rng.uniform(1e-3, 0.1, c).astype(np.float32)
    zx, zy = int(rng.integers(-30, 30)), int(rng.integers(-30, 30))
    bias_zp = (bias - zx * wt.astype(np.int64).sum(axis=(0, 1))).astype(np.int32)
    want = quant.dwconv2d_ref(x, wt, bias, zx, zy, mult, shift, (s, s), pads, (1, 1),
                              real=real if requant == "float" else None)
    oh, ow, _ = want.shape
    p = ConvParams(h, w, c, oh, ow, c, 3, 3, s, s, pads[0], pads[1], 1, 1, zx, zy, -128, 127)
    out = np.zeros(want.shape, np.int8)
    plane = np.full(codegen.dw3x3_plane_entries(oh, ow, s, c) + 2, 0x7777, np.int16)
    packed = np.ascontiguousarray(codegen.pack_dw3x3_weights(wt))
    rq = (ptr(real), None) if requant == "float" else (ptr(mult), ptr(shift))
    lib.tm_dwconv3x3(ctypes.byref(p), ptr(x), ptr(packed), ptr(bias_zp), *rq, ptr(out), ptr(plane))
    np.testing.assert_array_equal(out, want)
    assert (plane[-2:] == 0x7777).all(), "the kernel wrote past the plane codegen sizes for it"


def _dw_layer(kernel, stride, dil):
    return codegen.Layer("d", "QLinearConv", "dwconv", [], "y", dict(kernel=kernel, stride=list(stride),
                                                                         dil=list(dil)))


def test_shapes_the_fast_depthwise_kernel_cannot_run_fall_back_to_the_general_one():
    assert codegen.dw3x3_fast_path(_dw_layer((3, 3), (1, 1), (1, 1)))
    for kernel, stride, dil in [((5, 3), (1, 1), (1, 1)), ((3, 3), (2, 1), (1, 1)), ((3, 3), (3, 3), (1, 1)),
                                ((3, 3), (1, 1), (2, 2)), ((1, 1), (1, 1), (1, 1))]:
        assert not codegen.dw3x3_fast_path(_dw_layer(kernel, stride, dil)), (kernel, stride, dil)
    with pytest.raises(ValueError, match=r"\(3, 3, C\)"):
        codegen.pack_dw3x3_weights(np.zeros((5, 3, 2), np.int8))
    with pytest.raises(ValueError, match=">= 1"):
        codegen.dw3x3_plane_entries(0, 4, 1)
    with pytest.raises(ValueError, match=">= 1"):
        codegen.dw3x3_plane_entries(3, 4, 1, channels=0)


def test_add_matches_reference(lib):
    rng = np.random.default_rng(3)
    a, b = (rng.integers(-128, 128, 37).astype(np.int8) for _ in range(2))
    ma, mb, sh = quant.add_multipliers(0.7, 0.4)
    out = np.zeros(37, np.int8)
    lib.tm_add(ptr(a), ptr(b), ptr(out), 37, 5, -7, ma, mb, sh, 3, -128, 127)
    np.testing.assert_array_equal(out, quant.add_ref(a, b, 5, -7, ma, mb, sh, 3))
    # the real-valued sum, within rounding: (a-5)*0.7 + (b+7)*0.4 + 3
    exact = np.clip(np.round((a - 5.0) * 0.7 + (b + 7.0) * 0.4) + 3, -128, 127)
    assert np.abs(out - exact).max() <= 1


@pytest.mark.parametrize("ratios", [(0.7, 0.4), (1.6, 0.9), (0.003, 0.001)], ids=["shift31", "shift30", "shift>32"])
def test_add_fast_and_general_paths_match_reference(lib, ratios):
    rng = np.random.default_rng(5)
    a, b = (rng.integers(-128, 128, 101).astype(np.int8) for _ in range(2))
    ma, mb, sh = quant.add_multipliers(*ratios)
    want = quant.add_ref(a, b, 9, -4, ma, mb, sh, -2)
    out = np.zeros(101, np.int8)
    lib.tm_add(ptr(a), ptr(b), ptr(out), 101, 9, -4, ma, mb, sh, -2, -128, 127)
    np.testing.assert_array_equal(out, want)
    lib.tm_add(ptr(a), ptr(b), ptr(out), 101, 9, -4, ma, mb, sh, -2, -20, 50)  # a fused clamp
    np.testing.assert_array_equal(out, np.clip(want, -20, 50))


def test_maxpool_pad_and_clamp_match_reference(lib):
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, (7, 6, 3)).astype(np.int8)
    want = quant.maxpool2d_ref(x, (3, 2), (2, 2), (1, 0, 1, 0))
    out = np.zeros(want.shape, np.int8)
    lib.tm_maxpool2d(ptr(x), ptr(out), 7, 6, 3, want.shape[0], want.shape[1], 3, 2, 2, 2, 1, 0)
    np.testing.assert_array_equal(out, want)
    want = quant.pad2d_ref(x, (1, 2, 0, 1), -5)
    out = np.zeros(want.shape, np.int8)
    lib.tm_pad2d(ptr(x), ptr(out), 7, 6, 3, 1, 0, 2, 1, -5)
    np.testing.assert_array_equal(out, want)
    out = np.zeros(x.size, np.int8)
    lib.tm_clamp(ptr(x), ptr(out), x.size, -10, 60)
    np.testing.assert_array_equal(out, np.clip(x, -10, 60).reshape(-1))


def test_pack_conv_weights_interleaves_channel_pairs():
    # rows zero-padded to a multiple of 4, groups permuted (w0, w2, w1, w3), pairs interleaved
    w = np.arange(10, dtype=np.int8).reshape(1, 1, 1, 10)
    assert pack_conv_weights(w).tolist() == [0, 2, 1, 3, 4, 6, 5, 7, 8, 0, 9, 0]
    w = np.arange(15, dtype=np.int8).reshape(3, 1, 1, 5)
    assert pack_conv_weights(w).tolist() == [0, 2, 1, 3, 5, 7, 6, 8, 4, 0, 0, 0, 9, 0, 0, 0,
                                             10, 12, 11, 13, 14, 0, 0, 0]


def test_reference_rejects_nothing_silently():
    with pytest.raises(ValueError, match="too large"):
        quant.quantize_multiplier(2.0**31)


def _random_shapes(seed, n):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, 12, 2))
        c = int(rng.integers(1, 19))
        s = int(rng.integers(1, 3))
        pads = tuple(int(v) for v in rng.integers(0, 2, 4))
        if (h + pads[0] + pads[2] - 3) < 0 or (w + pads[1] + pads[3] - 3) < 0:
            continue  # the 3x3 window must fit the padded input
        yield h, w, c, s, pads


@pytest.mark.parametrize("case", list(_random_shapes(7, 24)), ids=lambda c: "x".join(map(str, c[:4])) + "p" + "".join(map(str, c[4])))
def test_kernels_on_random_shapes(lib, case):
    """Both fast kernels (depthwise 3x3 and the padded-row conv) against the references on
    random sizes, channel counts (most not a multiple of 4), strides and asymmetric padding."""
    h, w, c, s, pads = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.integers(-128, 128, (h, w, c)).astype(np.int8)
    zx, zy = int(rng.integers(-30, 30)), int(rng.integers(-30, 30))
    real = rng.uniform(1e-3, 0.05, 20).astype(np.float32)
    # depthwise 3x3
    wt = rng.integers(-127, 128, (3, 3, c)).astype(np.int8)
    bias = rng.integers(-3000, 3000, c).astype(np.int32)
    bias_zp = (bias - zx * wt.astype(np.int64).sum(axis=(0, 1))).astype(np.int32)
    want = quant.dwconv2d_ref(x, wt, bias, zx, zy, None, None, (s, s), pads, (1, 1), real=real[:c])
    oh, ow, _ = want.shape
    p = ConvParams(h, w, c, oh, ow, c, 3, 3, s, s, pads[0], pads[1], 1, 1, zx, zy, -128, 127)
    out = np.zeros(want.shape, np.int8)
    plane = np.zeros(codegen.dw3x3_plane_entries(oh, ow, s, c), np.int16)
    lib.tm_dwconv3x3(ctypes.byref(p), ptr(x), ptr(np.ascontiguousarray(codegen.pack_dw3x3_weights(wt))),
                     ptr(bias_zp), ptr(real), None, ptr(out), ptr(plane))
    np.testing.assert_array_equal(out, want)
    # standard conv, 3x3 and 1x1, odd output channel counts
    for k in (3, 1):
        cout = int(rng.integers(1, 8))
        wc = rng.integers(-127, 128, (cout, k, k, c)).astype(np.int8)
        bc = rng.integers(-5000, 5000, cout).astype(np.int32)
        kp = pads if k == 3 else (0, 0, 0, 0)
        want = quant.conv2d_ref(x, wc, bc, zx, zy, None, None, (s, s), kp, (1, 1), real=real[:cout])
        oh, ow, _ = want.shape
        p = ConvParams(h, w, c, oh, ow, cout, k, k, s, s, kp[0], kp[1], 1, 1, zx, zy, -128, 127)
        out = np.zeros(want.shape, np.int8)
        col = np.zeros(2 * ((k * k * c + 3) // 4 * 4), np.int16)
        lib.tm_conv2d(ctypes.byref(p), ptr(x), ptr(np.ascontiguousarray(pack_conv_weights(wc))), ptr(bc), ptr(real),
                      None, ptr(out), ptr(col))
        np.testing.assert_array_equal(out, want)


def test_the_pixel_pair_smlad_loop_is_written_once():
    # The hand-scheduled SMLAD loop of the pixel pair x channel pair pass was pasted into two
    # kernels; a fix to one copy would silently miss the other. One macro holds it now.
    src = (toolchain.KERNEL_DIR / "tm_kernels.c").read_text()
    assert src.count('"1:\\n\\t" TM_PAIR_BODY TM_PAIR_BODY') == 1
    assert src.count('"2:\\n\\t" TM_PAIR_BODY TM_PAIR_BODY') == 1   # TM_PAIRS_ASM: the float block's loop
    assert src.count("#define TM_PAIR_BODY") == 1
    assert src.count("TM_PAIR_MACS(K4);") == 2   # tm_conv_pixel_pair_body and tm_conv_pairs_k4_float
