"""Patch-based execution (deploy/schedule.py, MCUNetV2): the receptive-field and halo
arithmetic on small synthetic graphs, the cost model's peak and MAC overhead, the firmware
run patch by patch bit-exactly against onnxruntime, the whole-tensor fallback and the
budget error."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from tinyml_helpers.cost import (SpatialGraph, SpatialOp, patch_schedule_lifetimes, patch_schedule_peak,
                                 peak_live_bytes, whole_tensor_peak)
from tinyml_helpers.deploy import schedule as S


def _chain(h: int = 16, w: int = 16) -> SpatialGraph:
    """conv 3x3 s1 p1 (1->8) -> dw 3x3 s2 p1 -> conv 1x1 (8->4) -> global pool."""
    return SpatialGraph("x", {"x": (1, h, w), "a": (8, h, w), "b": (8, h // 2, w // 2),
                              "c": (4, h // 2, w // 2), "y": (4, 1, 1)}, [
        SpatialOp("conv", "window", ("x",), "a", (3, 3), (1, 1), (1, 1, 1, 1), macs=h * w * 8 * 9),
        SpatialOp("dw", "window", ("a",), "b", (3, 3), (2, 2), (1, 1, 1, 1), macs=h * w // 4 * 8 * 9),
        SpatialOp("pw", "window", ("b",), "c", macs=h * w // 4 * 32),
        SpatialOp("gap", "global", ("c",), "y", macs=h * w // 4 * 4)])


def test_window_span_covers_kernel_stride_padding_dilation():
    # 3x3 stride 2 pad 1 on 80 rows: tile [10, 20) reads 19..39 (a one-row halo on each side)
    assert S.window_span(10, 20, 80, 3, 2, 1) == (19, 40, 0, 0)
    assert S.window_span(0, 10, 80, 3, 2, 1) == (0, 20, 1, 0)       # top border: one row of padding
    assert S.window_span(30, 40, 80, 3, 2, 1) == (59, 80, 0, 0)     # last window ends at row 79
    assert S.window_span(0, 4, 8, 5, 1, 2) == (0, 6, 2, 0)          # 5x5 pad 2
    assert S.window_span(4, 8, 8, 5, 1, 2) == (2, 8, 0, 2)
    assert S.window_span(2, 5, 10, 3, 1, 0, dilation=2) == (2, 9, 0, 0)   # dilated: span (k-1)*d + 1
    # every output's taps lie inside the span (or in the padding it reports), brute force
    for size, k, s, p, d in [(17, 3, 2, 1, 1), (16, 5, 1, 2, 1), (15, 3, 1, 2, 2), (9, 1, 1, 0, 1)]:
        n_out = (size + 2 * p - (k - 1) * d - 1) // s + 1
        for o0 in range(n_out):
            for o1 in range(o0 + 1, n_out + 1):
                i0, i1, pb, pa = S.window_span(o0, o1, size, k, s, p, d)
                taps = [o * s - p + t * d for o in range(o0, o1) for t in range(k)]
                assert i0 - pb == min(taps) and i1 + pa == max(taps) + 1
                assert 0 <= i0 <= i1 <= size


def test_tiles_halos_and_mac_overhead_by_hand():
    g = _chain()
    s = S.plan_patches(g, (2, 2), split=2)
    assert s.patched and s.n_patches == 4 and [t.area for t in s.tiles] == [16] * 4
    # tile rows 0..4 of c -> b rows 0..4 -> a rows 0..8 (padding above) -> x rows 0..9 (padding above);
    # the next tile down reads a rows 7..16: rows 7 is the halo both patches compute
    first = dict(zip([a.kind + a.tensor for a in s.template], s.geometry[0]))
    last = dict(zip([a.kind + a.tensor for a in s.template], s.geometry[3]))
    assert first["opb"][2] == S.Box(0, 4, 0, 4)
    assert first["opb"][0][0] == S.Box(0, 8, 0, 8) and first["opb"][1] == (1, 1, 0, 0)
    assert first["opa"][0][0] == S.Box(0, 9, 0, 9) and first["opa"][1] == (1, 1, 0, 0)
    assert last["opb"][0][0] == S.Box(7, 16, 7, 16) and last["opb"][1] == (0, 0, 0, 0)
    assert last["opa"][0][0] == S.Box(6, 16, 6, 16) and last["opa"][1] == (0, 0, 1, 1)
    # the conv computes 8x8, 8x9, 9x8 and 9x9 pixels of a instead of 256, 72 MACs each
    assert s.extra_macs == (64 + 72 + 72 + 81 - 256) * 8 * 9
    assert s.mac_overhead == pytest.approx(s.extra_macs / g.macs)
    # peak by hand, at the dw step of the last patch: x (256) and c (256) whole, a's 9x9x8 box, b's tile
    peak, overhead = patch_schedule_peak(s)
    assert overhead == s.mac_overhead
    assert peak == 256 + 256 + 648 + 128 == s.peak_bytes
    assert whole_tensor_peak(g) == 2048 + 512  # a and b live together at the dw step
    lts = patch_schedule_lifetimes(s)
    assert peak_live_bytes(lts)[0] == peak


def test_residual_branch_needs_a_crop_and_stays_exact_in_numpy():
    g = SpatialGraph("x", {"x": (2, 12, 12), "a": (4, 12, 12), "b": (4, 12, 12), "c": (4, 12, 12),
                           "y": (4, 1, 1)}, [
        SpatialOp("a", "window", ("x",), "a", (3, 3), pads=(1, 1, 1, 1), macs=12 * 12 * 4 * 18),
        SpatialOp("b", "window", ("a",), "b", (5, 5), pads=(2, 2, 2, 2), macs=12 * 12 * 4 * 25),
        SpatialOp("add", "elementwise", ("b", "a"), "c", macs=12 * 12 * 4),
        SpatialOp("gap", "global", ("c",), "y")])
    s = S.plan_patches(g, (3, 2), split=2)
    crops = [a for a in s.template if a.kind == "crop"]
    # the input (whole) and the skip branch (a holds the 5x5 halo, the add reads the tile only)
    assert [(a.tensor, a.op_index) for a in crops] == [("x", 0), ("a", 2)]
    inner = s.geometry[2]  # middle row of tiles, left column: rows 4..8
    add_geo = [geo for a, geo in zip(s.template, inner) if a.kind == "op" and a.op_index == 2][0]
    assert add_geo[2] == S.Box(4, 8, 0, 6) and add_geo[0][1] == S.Box(4, 8, 0, 6)


def test_global_operator_in_region_falls_back_with_reason():
    g = _chain()
    with pytest.warns(S.PatchFallbackWarning, match="'gap' inside the patch region is global"):
        s = S.plan_patches(g, 2, split=3)
    assert not s.patched and s.n_patches == 1 and s.extra_macs == 0
    assert s.peak_bytes == whole_tensor_peak(g)
    # a graph whose first operator is global cannot be split at all
    g2 = SpatialGraph("x", {"x": (3, 8, 8), "y": (3, 1, 1)}, [SpatialOp("gap", "global", ("x",), "y")])
    with pytest.warns(S.PatchFallbackWarning, match="global"):
        assert not S.plan_patches(g2, 2).patched


def test_shape_that_does_not_tile_falls_back_with_reason():
    g = _chain(h=4, w=4)   # the split candidates are 2x2 or 4x4: a 5x5 grid leaves empty patches
    with pytest.warns(S.PatchFallbackWarning, match="does not tile"):
        s = S.plan_patches(g, 5, split=2)
    assert not s.patched and "does not tile into 5x5" in s.reason
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not S.plan_patches(g, 5, split=2, warn=False).patched


def test_budget_no_schedule_meets_names_smallest_peak():
    g = _chain()
    best = min((S.plan_patches(g, n, warn=False) for n in (2, 4, 8)), key=lambda s: s.peak_bytes)
    with pytest.raises(S.ScheduleBudgetError, match=f"smallest peak found is {best.peak_bytes:,} B") as err:
        S.choose_patch_schedule(g, 300, grids=(2, 4, 8))
    assert err.value.smallest_peak == best.peak_bytes and err.value.best.patched
    # a budget the whole-tensor run meets needs no patches; a tighter one takes the cheapest fitting grid
    assert not S.choose_patch_schedule(g, whole_tensor_peak(g)).patched
    chosen = S.choose_patch_schedule(g, whole_tensor_peak(g) - 1, grids=(2, 4, 8))
    assert chosen.patched and chosen.peak_bytes < whole_tensor_peak(g)
    with pytest.raises(ValueError, match="ram_budget"):
        S.choose_patch_schedule(g, 0)


def test_spatial_graph_from_torch_matches_layers():
    torch = pytest.importorskip("torch")
    from torch import nn

    from tinyml_helpers.cost import spatial_graph_from_torch

    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.Conv2d(8, 4, 1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    g = spatial_graph_from_torch(net, (3, 16, 16))
    assert [op.kind for op in g.ops] == ["window"] * 3 + ["global"] * 3
    assert g.ops[0].stride == (2, 2) and g.shapes[g.ops[0].output] == (8, 8, 8)
    assert g.ops[1].macs == 8 * 8 * 8 * 9 and g.ops[0].macs == 8 * 8 * 8 * 27
    s = S.plan_patches(g, 2, warn=False)
    assert s.patched and s.split <= 2


# ------------------------------------------------------------------ the int8 graph and the firmware

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


class PatchNet(nn.Module):
    """Window operators of several kinds in the first stages, at full resolution and wide
    (the tensors patching shrinks): a 3x3 conv, 3x3 depthwise (fast path), 1x1 conv, a
    residual add, a 5x5 stride-2 depthwise (general kernel), a padded max-pool; then a
    strided conv, a global pool and a dense head."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6(), nn.Conv2d(16, 16, 1))
        self.dw5 = nn.Sequential(nn.Conv2d(16, 16, 5, stride=2, padding=2, groups=16), nn.ReLU6(), nn.Conv2d(16, 8, 1))
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.head = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(16, classes))

    def forward(self, x):
        x = self.stem(x)
        x = x + self.dw(x)
        return self.head(self.pool(self.dw5(x)))


SHAPE = (1, 3, 30, 26)


@pytest.fixture(scope="module")
def patch_int8(tmp_path_factory):
    from test_deploy_pipeline import _export_int8

    torch.manual_seed(0)
    return _export_int8(PatchNet(), tmp_path_factory.mktemp("patchnet"), shape=SHAPE)


def test_numpy_schedule_is_bit_exact_for_every_grid_and_split(patch_int8):
    from tinyml_helpers.deploy import codegen

    model = codegen.parse_int8_onnx(patch_int8)
    g = S.graph_from_int8(model)
    assert len(g.ops) == len(model.layers)
    x = model.quantize_input(np.random.default_rng(1).normal(size=SHAPE).astype(np.float32))
    ref = codegen.simulate(model, x, "float")[0]
    n_checked = 0
    for grid in [(2, 2), (3, 2), (4, 3)]:
        for k in S._valid_splits(g, grid):
            s = S.plan_patches(g, grid, split=k, warn=False)
            if s.patched:
                np.testing.assert_array_equal(S.simulate_schedule(model, s, x, "float"), ref)
                n_checked += 1
    assert n_checked >= 6


def test_firmware_patch_by_patch_matches_onnxruntime(patch_int8, tmp_path):
    import onnxruntime as ort

    from tinyml_helpers.deploy import pipeline, toolchain

    layout = toolchain.MemoryLayout(flash_bytes=64 * 1024, ram_bytes=64 * 1024, stack_bytes=4 * 1024)
    whole = pipeline.deploy_onnx(patch_int8, tmp_path / "whole", layout=layout)
    g = S.graph_from_int8(whole.model)
    pool = [i for i, layer in enumerate(whole.model.layers) if layer.kind == "maxpool"][0]
    sched = S.plan_patches(g, 3, split=pool)   # every window kind of the net inside the region
    assert sched.patched and {whole.model.layers[i].kind for i in range(pool + 1)} >= {"conv", "dwconv", "add"}
    dep = pipeline.deploy_onnx(patch_int8, tmp_path / "patched", layout=layout, patches=sched)
    assert "tm_copy2d" in dep.generated.c_path.read_text()
    assert dep.generated.manifest["schedule"]["n_patches"] == 9
    assert dep.arena_bytes < whole.arena_bytes   # the point of it
    sess = ort.InferenceSession(str(patch_int8), providers=["CPUExecutionProvider"])
    X = np.random.default_rng(2).normal(size=(6, *SHAPE[1:])).astype(np.float32)
    ref = np.concatenate([sess.run(None, {"x": X[i:i + 1]})[0] for i in range(len(X))])
    q, logits = pipeline.run_firmware(dep, X, progress=False)
    report = pipeline.compare_with_reference(logits, ref, dep.model.tensors[dep.model.output].scale)
    assert report["max_lsb"] == 0 and report["top1_agreement"] == 1.0, report
    # recomputed halos cost instructions; per-layer counts still add up to one entry per layer
    assert dep.instructions > whole.instructions
    assert len(dep.stats.per_layer) == len(dep.model.layers) and sum(dep.stats.per_layer) <= dep.instructions
    # a grid planned inside deploy_onnx picks the region with the smallest peak
    auto = pipeline.deploy_onnx(patch_int8, tmp_path / "grid", layout=layout, patches=3)
    assert auto.generated.schedule.peak_bytes <= sched.peak_bytes
    np.testing.assert_array_equal(pipeline.run_firmware(auto, X[:2], progress=False)[0], q[:2])


def test_seed_pick_small_resolution_runs_patch_by_patch_bit_exact(tmp_path):
    """The notebook's chain (deploy.seed_pick) at 48x48: the deck's pick quantized on
    representative images, its first stages 2x2 patch by patch, equal to onnxruntime."""
    from tinyml_helpers import export
    from tinyml_helpers.deploy import pipeline, seed_pick

    _, int8 = seed_pick.seed_pick_int8(tmp_path, hw=48, n_calibration=8)
    res = seed_pick.deploy_patched(int8, tmp_path / "fw", grid=2, split=6)
    assert res.schedule.patched and res.schedule.n_patches == 4
    assert res.deployment.generated.arena_bytes < res.whole_arena_bytes
    assert res.ram_bytes == res.deployment.memory["ram_bytes"] <= seed_pick.SEED_MCU_LAYOUT.ram_bytes
    assert res.instruction_overhead > 0   # halos and copies cost instructions
    X = seed_pick.representative_images(3, 48, "test", seed=1)
    ref = export.onnx_logits(int8, X)
    _, logits = pipeline.run_firmware(res.deployment, X, progress=False)
    report = pipeline.compare_with_reference(logits, ref, res.deployment.model.tensors[res.deployment.model.output].scale)
    assert report["max_lsb"] == 0 and report["top1_agreement"] == 1.0


def test_deploy_falls_back_to_whole_tensors_with_the_reason(patch_int8, tmp_path):
    from tinyml_helpers.deploy import pipeline, toolchain

    layout = toolchain.MemoryLayout(flash_bytes=64 * 1024, ram_bytes=64 * 1024, stack_bytes=4 * 1024)
    with pytest.warns(S.PatchFallbackWarning, match="does not tile into 40x40"):
        dep = pipeline.deploy_onnx(patch_int8, tmp_path / "fallback", layout=layout, patches=40)
    assert dep.generated.schedule is None and "schedule" not in dep.generated.manifest
    assert "tm_copy2d" not in dep.generated.c_path.read_text()
    assert dep.arena_bytes == pipeline.codegen.plan_model_arena(dep.model).total_bytes
