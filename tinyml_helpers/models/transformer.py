"""A small transformer encoder for keyword spotting, with LayerDrop (Fan et al. 2019).

The log-mel spectrogram ``(N, 1, T=49, F=40)`` is read as a sequence of ``T`` frames: each
frame is projected to ``d_model``, a learned position embedding is added, a few pre-norm
encoder layers (self-attention + feed-forward) mix the frames, and the mean over time
feeds a linear classifier.

**LayerDrop** (Fan, Grave and Joulin 2019, *Reducing Transformer Depth on Demand with
Structured Dropout*, ICLR 2020): during training each encoder layer is skipped with
probability ``layerdrop`` (the residual connection carries the input through unchanged).
The network learns not to rely on any single layer, so at inference whole layers can be
removed (:func:`keep_layers`, "every other layer" as in the paper) with a small loss, and
without retraining. A model trained without it has never seen a missing layer.

The encoder layer is written out (rather than ``nn.TransformerEncoderLayer``) so that its
MACs are easy to count exactly (:meth:`KeywordTransformer.macs`, attention's two matrix
products included, which hook-based counters miss) and it exports to ONNX with plain ops.

Example:
    >>> import torch
    >>> net = KeywordTransformer(n_classes=12, n_layers=4, layerdrop=0.2)
    >>> net(torch.randn(2, 1, 49, 40)).shape
    torch.Size([2, 12])
    >>> small = keep_layers(net, 2)
    >>> len(small.layers), small.macs() < net.macs()
    (2, True)
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EncoderLayer", "KeywordTransformer", "every_other_layers", "keep_layers"]


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer: ``x + MHA(LN(x))`` then ``x + FFN(LN(x))``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.n_heads, d // self.n_heads) \
            .permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.n_heads), dim=-1)
        mixed = (attn @ v).transpose(1, 2).reshape(n, t, d)
        x = x + self.dropout(self.proj(mixed))
        return x + self.dropout(self.ff2(F.gelu(self.ff1(self.norm2(x)))))


class KeywordTransformer(nn.Module):
    """Transformer encoder classifier on ``(N, 1, frames, n_mels)`` features, with LayerDrop.

    Args:
        n_classes: number of keyword classes.
        n_mels: feature bands per frame (40 log-mel, or 10 MFCC).
        frames: frames per clip (49 for 1 s at a 20 ms hop).
        d_model, n_heads, d_ff, n_layers: encoder size.
        layerdrop: probability of skipping each layer at each training step (0 disables).
        dropout: ordinary dropout inside the layers.

    Example:
        >>> KeywordTransformer(n_classes=3, n_layers=2).macs() > 0
        True
    """

    def __init__(self, n_classes: int, n_mels: int = 40, frames: int = 49, d_model: int = 48,
                 n_heads: int = 4, d_ff: int = 96, n_layers: int = 6, layerdrop: float = 0.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        if not 0.0 <= layerdrop < 1.0:
            raise ValueError(f"layerdrop is a probability in [0, 1), e.g. 0.2; got {layerdrop}")
        self.config = dict(n_classes=n_classes, n_mels=n_mels, frames=frames, d_model=d_model,
                           n_heads=n_heads, d_ff=d_ff, n_layers=n_layers, layerdrop=layerdrop,
                           dropout=dropout)
        self.layerdrop = layerdrop
        self.embed = nn.Linear(n_mels, d_model)
        self.position = nn.Parameter(torch.zeros(1, frames, d_model))
        nn.init.normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or tuple(x.shape[2:]) != (self.config["frames"], self.config["n_mels"]):
            raise ValueError(f"expected input (N, 1, {self.config['frames']}, {self.config['n_mels']}), "
                             f"got {tuple(x.shape)}; use keyword_features(..., kind='logmel')")
        h = self.embed(x[:, 0]) + self.position
        for layer in self.layers:
            # LayerDrop: one coin per layer per batch; at eval every kept layer runs.
            if self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop:
                continue
            h = layer(h)
        return self.head(self.norm(h).mean(dim=1))

    def macs(self) -> int:
        """Exact multiply-accumulates of one clip through the current layers.

        Per layer with ``T`` frames, width ``d``, feed-forward ``f``: ``T*3d*d`` (q, k, v)
        + ``2*T*T*d`` (scores and weighted sum) + ``T*d*d`` (output projection) + ``2*T*d*f``
        (feed-forward). Plus the input embedding ``T*F*d`` and the classifier ``d*C``.
        Norms, softmax and GELU are counted as 0 MACs (they are elementwise).

        Example:
            >>> KeywordTransformer(n_classes=2, n_mels=4, frames=3, d_model=4, n_heads=1, d_ff=8, n_layers=1).macs()
            512
        """
        c = self.config
        t, d, f = c["frames"], c["d_model"], c["d_ff"]
        per_layer = t * 3 * d * d + 2 * t * t * d + t * d * d + 2 * t * d * f
        return int(t * c["n_mels"] * d + len(self.layers) * per_layer + d * c["n_classes"])


def every_other_layers(n_layers: int, n_keep: int) -> list[int]:
    """Which layer indices to keep: spread evenly, as Fan et al.'s "every other" strategy.

    Example:
        >>> every_other_layers(6, 3), every_other_layers(6, 6), every_other_layers(6, 1)
        ([0, 2, 4], [0, 1, 2, 3, 4, 5], [0])
    """
    if not 1 <= n_keep <= n_layers:
        raise ValueError(f"n_keep must be between 1 and n_layers={n_layers}, got {n_keep}")
    return sorted({int(math.floor(i * n_layers / n_keep)) for i in range(n_keep)})


def keep_layers(model: KeywordTransformer, keep: int | Sequence[int]) -> KeywordTransformer:
    """A copy of ``model`` holding only some encoder layers (physically removed, not skipped).

    ``keep`` is a number of layers (chosen by :func:`every_other_layers`) or explicit indices.

    Example:
        >>> net = KeywordTransformer(n_classes=3, n_layers=4)
        >>> len(keep_layers(net, [0, 3]).layers)
        2
    """
    if not isinstance(model, KeywordTransformer):
        raise TypeError(f"keep_layers works on a KeywordTransformer, got {type(model).__name__}")
    n = len(model.layers)
    indices = every_other_layers(n, keep) if isinstance(keep, int) else sorted(set(int(i) for i in keep))
    if not indices or any(not 0 <= i < n for i in indices):
        raise ValueError(f"layer indices must be within 0..{n - 1} and not empty, got {keep!r}")
    small = copy.deepcopy(model)
    small.layers = nn.ModuleList(small.layers[i] for i in indices)
    small.config = dict(small.config, n_layers=len(indices))
    return small.eval()
