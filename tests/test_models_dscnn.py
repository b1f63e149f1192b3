"""The MLPerf Tiny DS-CNN reproduces the reference's size and cost."""
from __future__ import annotations

import pytest
import torch

from tinyml_helpers import cost
from tinyml_helpers.models.dscnn import DSCNN, MLPERF_KWS_INPUT_SHAPE


def test_reference_cost_at_mfcc_input():
    model = DSCNN()
    assert cost.count_params(model) == 23_756          # ~23.8K (Banbury et al. 2021)
    assert cost.count_macs(model, MLPERF_KWS_INPUT_SHAPE) == 2_656_768  # ~2.66M MACs
    # layer by layer: 10x4 stem, 4 x (depthwise 3x3 + pointwise 1x1), classifier
    macs = [m for _, _, m in cost.layer_macs(model, MLPERF_KWS_INPUT_SHAPE)]
    assert macs == [320_000] + [72_000, 512_000] * 4 + [768]


def test_shapes_for_mfcc_and_logmel():
    model = DSCNN().eval()
    assert tuple(model(torch.zeros(3, 1, 49, 10)).shape) == (3, 12)
    assert tuple(model(torch.zeros(2, 1, 49, 40)).shape) == (2, 12)  # log-mel works too
    assert tuple(model.stem(torch.zeros(1, 1, 49, 10)).shape) == (1, 64, 25, 5)  # TF "same" size


def test_options_and_bad_arguments():
    assert cost.count_params(DSCNN(num_classes=4, channels=8, num_blocks=1)) < 2_000
    with pytest.raises(ValueError, match="num_classes"):
        DSCNN(num_classes=0)
    with pytest.raises(ValueError, match="dropout"):
        DSCNN(dropout=1.5)
    with pytest.raises(RuntimeError):
        DSCNN()(torch.zeros(1, 2, 49, 10))  # wrong channel count fails in the first conv
