"""The MLPerf Tiny keyword-spotting reference model: a depthwise-separable CNN (DS-CNN).

Architecture (Zhang, Suda, Lai, Chandra, "Hello Edge: Keyword Spotting on
Microcontrollers", arXiv:1711.07128, 2017 -- the "DS-CNN small" model; adopted as the KWS
reference network of Banbury et al., "MLPerf Tiny Benchmark", NeurIPS Datasets and
Benchmarks 2021): input 1 x 49 x 10 MFCC (49 frames of 10 coefficients, 1 s of 16 kHz
audio), a 10x4 convolution with stride 2 to 64 channels, then four blocks of
3x3 depthwise + 1x1 pointwise convolution (64 channels), each conv followed by BatchNorm
and ReLU, global average pooling and a linear layer to 12 classes (10 keywords, silence,
unknown).

Costs at 1x49x10 (measured by ``tinyml_helpers.cost`` in the tests): 23,756 parameters
(22,604 conv/linear weights and biases + 1,152 BatchNorm scale/shift) and 2,656,768 MACs
(320,000 in the first conv, 4 x (72,000 + 512,000) in the blocks, 768 in the classifier).

Padding: the reference uses TensorFlow "same" padding; PyTorch has no "same" for stride 2,
so the first conv pads (5, 1) symmetrically. That gives the same 25 x 5 output (and MACs)
as TensorFlow's 4-above/5-below padding; the one-row shift does not matter when training
from scratch. It also works for 49 x 40 log-mel input (25 x 20 after the first conv).
The dropout layers of the reference (training only) are kept for fidelity.

Example:
    >>> import torch
    >>> model = DSCNN()
    >>> tuple(model(torch.zeros(2, 1, 49, 10)).shape)
    (2, 12)
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["DSCNN", "MLPERF_KWS_INPUT_SHAPE", "MLPERF_KWS_CLASSES"]

MLPERF_KWS_INPUT_SHAPE = (1, 49, 10)
MLPERF_KWS_CLASSES = 12


def _conv_bn_relu(cin: int, cout: int, kernel: Sequence[int] | int, stride: int | Sequence[int],
                  padding: Sequence[int] | int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups),
                         nn.BatchNorm2d(cout), nn.ReLU())


class DSCNN(nn.Module):
    """MLPerf Tiny / Hello Edge DS-CNN keyword spotter (logits out, no softmax).

    Args:
        num_classes: output classes (12 in the MLPerf Tiny setup).
        in_channels: input channels (1: an MFCC or log-mel image).
        channels: filters in every layer (64 in the reference).
        num_blocks: depthwise-separable blocks (4 in the reference).
        dropout: dropout probability after the first conv and before the classifier
            (the reference uses 0.2 and 0.4; 0 disables it).

    Example:
        >>> sum(p.numel() for p in DSCNN().parameters())
        23756
    """

    def __init__(self, num_classes: int = MLPERF_KWS_CLASSES, in_channels: int = 1, channels: int = 64,
                 num_blocks: int = 4, dropout: float = 0.2) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels),
                            ("channels", channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(num_blocks, int) or num_blocks < 0:
            raise ValueError(f"num_blocks must be a non-negative integer, got {num_blocks!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.stem = _conv_bn_relu(in_channels, channels, (10, 4), stride=2, padding=(5, 1))
        self.stem_dropout = nn.Dropout(dropout)
        blocks = []
        for _ in range(num_blocks):
            blocks.append(nn.Sequential(
                _conv_bn_relu(channels, channels, 3, stride=1, padding=1, groups=channels),  # depthwise
                _conv_bn_relu(channels, channels, 1, stride=1, padding=0),                    # pointwise
            ))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_dropout = nn.Dropout(min(2 * dropout, 0.9))
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # no shape check here: it would stop torch.fx tracing (the cost model's graph walk);
        # a wrong shape fails in the first conv with PyTorch's own message
        x = self.stem_dropout(self.stem(x))
        x = self.blocks(x)
        x = self.head_dropout(self.pool(x))
        return self.classifier(self.flatten(x))
