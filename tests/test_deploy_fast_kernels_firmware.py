"""The hand-scheduled (Cortex-M4 only) paths of the fast kernels, on the emulated chip: a small
network whose layers hit each of them (one-channel stem, depthwise 3x3 at stride 2 and 1 with
channel counts not a multiple of 4 and heights not a multiple of 4, pointwise convs with K not
a multiple of 4 and odd channel counts, a residual add), against the firmware's NumPy
simulation, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from test_deploy_pipeline import _export_int8  # noqa: E402
from tinyml_helpers.deploy import codegen, pipeline, toolchain  # noqa: E402

LAYOUT = toolchain.MemoryLayout(flash_bytes=64 * 1024, ram_bytes=32 * 1024, stack_bytes=4 * 1024)


def _assert_firmware_matches_simulation(dep, rng, shape, n_inputs=4):
    for _ in range(n_inputs):
        x = dep.model.quantize_input(rng.normal(size=shape).astype(np.float32))
        want, _ = codegen.simulate(dep.model, x, requant="float")
        np.testing.assert_array_equal(dep.firmware.infer(x), want)


class OddNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 1, 3, stride=2, padding=1)                      # one-channel: depthwise
        self.expand = nn.Sequential(nn.Conv2d(1, 6, 1), nn.ReLU6())               # K = 1
        self.dw2 = nn.Sequential(nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6), nn.ReLU6())
        self.pw = nn.Conv2d(6, 7, 1)                                              # K = 6, odd cout
        self.dw1 = nn.Sequential(nn.Conv2d(7, 7, 3, padding=1, groups=7), nn.ReLU6())
        self.project = nn.Conv2d(7, 7, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(7, 5))

    def forward(self, x):
        x = self.pw(self.dw2(self.expand(self.stem(x))))
        return self.head(x + self.project(self.dw1(x)))


def test_fast_kernels_on_the_emulated_chip_match_the_simulation(tmp_path):
    torch.manual_seed(0)
    shape = (1, 1, 27, 21)   # -> 14x11 after the stem, 7x6 after the stride-2 depthwise
    int8 = _export_int8(OddNet(), tmp_path, shape=shape, n_cal=8, seed=0)
    rng = np.random.default_rng(1000)   # inputs the calibration never saw
    dep = pipeline.deploy_onnx(int8, tmp_path / "fw", layout=LAYOUT)
    kinds = [(l.kind, tuple(l.params.get("stride", ()))) for l in dep.model.layers]
    assert ("dwconv", (2, 2)) in kinds and ("dwconv", (1, 1)) in kinds and ("add", ()) in kinds
    assert all(codegen.dw3x3_fast_path(l) for l in dep.model.layers if l.kind == "dwconv")
    # the cost table's kinds, from the PyTorch model and from what codegen deployed, agree
    from tinyml_helpers.deploy import kernel_costs
    # (torch_layer_costs sees residual adds only in micromind blocks; OddNet's is in forward)
    deployed = [r.kind for r in kernel_costs.deployed_layer_costs(dep) if r.kind != "add"]
    assert deployed == [r.kind for r in kernel_costs.torch_layer_costs(OddNet(), shape[1:])]
    assert deployed[1] == "conv1x1c1"
    _assert_firmware_matches_simulation(dep, rng, shape)


class WideNet(nn.Module):
    """The asm paths OddNet does not reach: pointwise convs whose K / 4 is odd and at least 3
    (the odd group before the unrolled loop of the channel-pair block), the one-channel 1x1 conv
    over a pixel count that is not a multiple of 4, and four-channel plane fills on inputs of
    odd and even width with channel counts 12 and 10 (three or two fills, then single planes)."""

    def __init__(self):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(1, 12, 1), nn.ReLU6())              # one channel, 1x1
        self.dw1 = nn.Sequential(nn.Conv2d(12, 12, 3, padding=1, groups=12), nn.ReLU6())
        self.pw1 = nn.Conv2d(12, 10, 1)                                            # K = 12: K / 4 = 3
        self.dw2 = nn.Sequential(nn.Conv2d(10, 10, 3, stride=2, padding=1, groups=10), nn.ReLU6())
        self.pw2 = nn.Conv2d(10, 9, 1)                                             # K = 10 -> 12, odd cout
        self.pw3 = nn.Conv2d(9, 21, 1)                                             # K = 9 -> 12
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(21, 4))

    def forward(self, x):
        return self.head(self.pw3(self.pw2(self.dw2(self.pw1(self.dw1(self.expand(x)))))))


# heights: quads and single pixels (9, 10, 5), quads only (8, 4), single pixels only (3, 2)
@pytest.mark.parametrize("shape", [(1, 1, 9, 7), (1, 1, 10, 8), (1, 1, 8, 6), (1, 1, 3, 5)],
                         ids=["9x7", "10x8", "8x6", "3x5"])
def test_wide_fast_kernel_paths_on_the_emulated_chip_match_the_simulation(tmp_path, shape):
    torch.manual_seed(1)
    int8 = _export_int8(WideNet(), tmp_path, shape=shape, n_cal=8, seed=1)
    rng = np.random.default_rng(1001)
    dep = pipeline.deploy_onnx(int8, tmp_path / "fw", layout=LAYOUT)
    convs = [l for l in dep.model.layers if l.kind == "conv"]
    assert dep.model.tensors[convs[0].inputs[0]].shape[0] == 1            # the one-channel 1x1 conv
    assert any((int(np.prod(l.params["w"].shape[1:])) + 3) // 4 % 2 == 1 for l in convs[1:])
    assert all(codegen.dw3x3_fast_path(l) for l in dep.model.layers if l.kind == "dwconv")
    # the cost table's kinds, from the PyTorch model and from what codegen deployed, agree
    from tinyml_helpers.deploy import kernel_costs
    deployed = [r.kind for r in kernel_costs.deployed_layer_costs(dep)]
    assert deployed == [r.kind for r in kernel_costs.torch_layer_costs(WideNet(), shape[1:])]
    assert deployed[0] == "conv1x1c1"
    _assert_firmware_matches_simulation(dep, rng, shape)
