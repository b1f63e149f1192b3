"""Unit tests of the keyword transformer with LayerDrop."""
from __future__ import annotations

import pytest
import torch

from tinyml_helpers.models.transformer import KeywordTransformer, every_other_layers, keep_layers


def small(**kw) -> KeywordTransformer:
    torch.manual_seed(0)
    cfg = dict(n_classes=4, n_mels=8, frames=5, d_model=16, n_heads=2, d_ff=32, n_layers=4)
    cfg.update(kw)
    return KeywordTransformer(**cfg)


def test_forward_shape_and_input_check():
    net = small().eval()
    assert net(torch.randn(3, 1, 5, 8)).shape == (3, 4)
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 5, 8\)"):
        net(torch.randn(3, 5, 8))


def test_layerdrop_only_in_training():
    net = small(layerdrop=0.5)
    x = torch.randn(2, 1, 5, 8)
    net.eval()
    assert torch.equal(net(x), net(x)), "eval must be deterministic: every layer runs"
    net.train()
    torch.manual_seed(1)
    outs = {tuple(net(x).detach().flatten().round(decimals=5).tolist()) for _ in range(12)}
    assert len(outs) > 1, "with layerdrop=0.5, training passes should skip different layers"


def test_macs_formula_and_it_shrinks_with_layers():
    net = small()
    t, d, f = 5, 16, 32
    per_layer = t * 3 * d * d + 2 * t * t * d + t * d * d + 2 * t * d * f
    assert net.macs() == t * 8 * d + 4 * per_layer + d * 4
    assert keep_layers(net, 2).macs() == net.macs() - 2 * per_layer


def test_keep_layers_copies_the_chosen_layers():
    net = small().eval()
    two = keep_layers(net, [1, 3])
    assert len(two.layers) == 2 and len(net.layers) == 4
    assert torch.equal(two.layers[0].qkv.weight, net.layers[1].qkv.weight)
    assert two.config["n_layers"] == 2
    x = torch.randn(1, 1, 5, 8)
    assert two(x).shape == net(x).shape


def test_every_other_layers():
    assert every_other_layers(4, 2) == [0, 2]
    assert every_other_layers(5, 5) == list(range(5))
    with pytest.raises(ValueError, match="n_keep"):
        every_other_layers(4, 0)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="divisible"):
        small(d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="layerdrop"):
        small(layerdrop=1.0)
    with pytest.raises(ValueError, match="n_layers"):
        small(n_layers=0)
    with pytest.raises(ValueError, match="within"):
        keep_layers(small(), [7])
    with pytest.raises(TypeError, match="KeywordTransformer"):
        keep_layers(torch.nn.Linear(2, 2), 1)
