"""PhiNet classifiers built on micromind, and the keyword PhiNet handed to notebooks 05/06.

PhiNets (Paissan, Ancilotto, Farella, "PhiNets: a scalable backbone for low-power AI at
the edge", ACM TECS 2022) are stacks of inverted-residual blocks whose size is set by
three knobs: ``alpha`` (width multiplier), ``t0`` (base expansion factor) and ``beta``
(shape factor: how the expansion changes with depth). We use micromind's implementation
(``micromind.networks.PhiNet``, version 0.2.1) as a dependency and only add:

* :func:`build_phinet`: a classifier (``include_top=True``) with MCU-friendly defaults:
  ``compatibility=True`` (ReLU6 instead of hard-swish, no squeeze-excite, so the ONNX graph
  only holds Conv / Clip / Add / GlobalAveragePool / Flatten / Gemm) and the stem's
  ``ZeroPad2d`` folded into the first convolution's own padding (same output size, one op
  and one tensor fewer; int8 MCU kernels pad inside the convolution).
* :func:`save_kws_phinet` / :func:`load_kws_phinet`: the trained keyword PhiNet as a
  state_dict plus a JSON config (hyper-parameters, classes, sha256 of the weights).

How micromind 0.2.1 handles our inputs (read from its source): it takes ``(C, H, W)``,
any C (a 1-channel log-mel image is fine: the stem's depthwise conv has one group);
non-square inputs work, but the stem's padding is computed from ``max(H, W)``; every
stride-2 stage halves H and W with rounding up, so a 49x40 input ends at 2x2 after the
default five halvings (stem, blocks 1 and 3, and the ``downsampling_layers`` 5 and 7).

Example:
    >>> model = build_phinet((1, 49, 40), num_classes=12, alpha=0.5, beta=1.0, t0=4, num_layers=7)
    >>> import torch
    >>> tuple(model(torch.zeros(2, 1, 49, 40)).shape)
    (2, 12)
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .. import config as _config
from ..files import ChecksumError, atomic_path, atomic_write_json, sha256_file, verify_sha256

__all__ = [
    "build_phinet",
    "build_phinet_from_config",
    "phinet_config",
    "save_kws_phinet",
    "load_kws_phinet",
    "KWS_PHINET_NAME",
    "shipped_kws_phinet_paths",
]

KWS_PHINET_NAME = "kws_phinet"
_CONFIG_KEYS = ("input_shape", "num_classes", "alpha", "beta", "t0", "num_layers",
                "compatibility", "downsampling_layers", "fold_stem_padding")


def _validate(input_shape: Sequence[int], num_classes: int, alpha: float, beta: float,
              t0: float, num_layers: int, downsampling_layers: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (channels, height, width) with positive sizes, "
                         f"got {tuple(input_shape)!r}; e.g. (1, 49, 40) for log-mel keywords")
    if min(shape[1:]) < 8:
        raise ValueError(f"input {shape[1]}x{shape[2]} is too small for a PhiNet: it halves the "
                         "resolution at least three times; use at least 8x8 pixels")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    for name, value, low, high in (("alpha", alpha, 0.01, 8.0), ("beta", beta, 0.05, 8.0),
                                   ("t0", t0, 0.5, 16.0)):
        if not isinstance(value, (int, float)) or not low <= float(value) <= high:
            raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    if not isinstance(num_layers, int) or not 3 <= num_layers <= 16:
        raise ValueError(f"num_layers must be an integer in [3, 16] (micromind builds at least "
                         f"blocks 1-3), got {num_layers!r}")
    if any(int(d) < 4 for d in downsampling_layers):
        raise ValueError(f"downsampling_layers index blocks 4..num_layers (blocks 1 and 3 "
                         f"always downsample), got {list(downsampling_layers)}")
    return shape  # type: ignore[return-value]


def _fold_stem_padding(model: nn.Module) -> bool:
    """Move the stem's ZeroPad2d into its depthwise conv (padding=1, same output size)."""
    layers = model._layers
    if not (isinstance(layers[0], nn.ZeroPad2d) and hasattr(layers[1], "_layers")):
        return False
    stem_dw = layers[1]._layers[0]
    if not (isinstance(stem_dw, nn.Conv2d) and stem_dw.kernel_size == (3, 3)):
        return False
    # For an odd side micromind pads (1, 1): identical. For an even side it pads (0, 1);
    # padding 1 on both sides gives the same output size with the window shifted by one
    # pixel, which a network trained from scratch does not notice.
    stem_dw.padding = (1, 1)
    layers[0] = nn.Identity()
    return True


def build_phinet(input_shape: Sequence[int], num_classes: int, alpha: float, beta: float,
                 t0: float, num_layers: int = 7, compatibility: bool = True, *,
                 downsampling_layers: Sequence[int] = (5, 7), fold_stem_padding: bool = True,
                 seed: int | None = None) -> nn.Module:
    """A micromind PhiNet with a classification head (global average pool + linear).

    Args:
        input_shape: ``(C, H, W)``, e.g. ``(1, 49, 40)`` for 49 frames x 40 log-mel bands.
        num_classes: number of output logits.
        alpha: width multiplier (channels scale with alpha, MACs with about alpha**2).
        beta: shape factor; block B expands by ``t0 * (beta*B/N + (N-B)/N)`` (micromind).
        t0: base expansion factor of the inverted-residual blocks.
        num_layers: number of expansion blocks N (micromind's ``num_layers``).
        compatibility: micromind's MCU mode: ReLU6 and no squeeze-excite (deployable by the
            int8 code generator of notebook 06). ``False`` gives hard-swish + SE.
        downsampling_layers: blocks (>= 4) with stride 2 that double the channels.
        fold_stem_padding: replace the stem's ZeroPad2d by conv padding (no Pad op in ONNX).
        seed: if given, seeds torch before building so the initial weights are reproducible.

    Example:
        >>> m = build_phinet((3, 32, 32), 10, alpha=0.25, beta=1.0, t0=4, num_layers=5)
        >>> sum(p.numel() for p in m.parameters()) > 0
        True
    """
    from micromind.networks import PhiNet

    shape = _validate(input_shape, num_classes, alpha, beta, t0, num_layers, downsampling_layers)
    if seed is not None:
        torch.manual_seed(seed)
    model = PhiNet(list(shape), num_layers=int(num_layers), alpha=float(alpha), beta=float(beta),
                   t_zero=float(t0), include_top=True, num_classes=int(num_classes),
                   compatibility=bool(compatibility),
                   downsampling_layers=[int(d) for d in downsampling_layers])
    if fold_stem_padding:
        _fold_stem_padding(model)
    model.phinet_config = phinet_config(shape, num_classes, alpha, beta, t0, num_layers,
                                        compatibility, downsampling_layers=downsampling_layers,
                                        fold_stem_padding=fold_stem_padding)
    return model


def phinet_config(input_shape: Sequence[int], num_classes: int, alpha: float, beta: float,
                  t0: float, num_layers: int = 7, compatibility: bool = True, *,
                  downsampling_layers: Sequence[int] = (5, 7), fold_stem_padding: bool = True,
                  **extra: Any) -> dict[str, Any]:
    """The JSON-able dict that rebuilds a PhiNet with :func:`build_phinet_from_config`.

    Extra keys (classes, feature kind, accuracy, ...) are stored alongside.

    Example:
        >>> phinet_config((1, 49, 40), 12, 0.5, 1.0, 4.0)["family"]
        'phinet'
    """
    cfg: dict[str, Any] = {
        "family": "phinet",
        "input_shape": [int(v) for v in input_shape],
        "num_classes": int(num_classes),
        "alpha": float(alpha), "beta": float(beta), "t0": float(t0),
        "num_layers": int(num_layers), "compatibility": bool(compatibility),
        "downsampling_layers": [int(d) for d in downsampling_layers],
        "fold_stem_padding": bool(fold_stem_padding),
    }
    cfg.update(extra)
    return cfg


def build_phinet_from_config(cfg: dict[str, Any], seed: int | None = None) -> nn.Module:
    """Rebuild the (untrained) PhiNet that a config dict describes.

    Example:
        >>> m = build_phinet_from_config(phinet_config((1, 49, 40), 12, 0.5, 1.0, 4.0))
        >>> m.phinet_config["alpha"]
        0.5
    """
    missing = [k for k in _CONFIG_KEYS if k not in cfg and k not in ("downsampling_layers", "fold_stem_padding")]
    if missing:
        raise KeyError(f"PhiNet config lacks {missing}; make it with phinet_config(...)")
    model = build_phinet(cfg["input_shape"], cfg["num_classes"], cfg["alpha"], cfg["beta"], cfg["t0"],
                         cfg["num_layers"], cfg.get("compatibility", True),
                         downsampling_layers=cfg.get("downsampling_layers", (5, 7)),
                         fold_stem_padding=cfg.get("fold_stem_padding", True), seed=seed)
    model.phinet_config = dict(cfg)
    return model


def save_kws_phinet(model: nn.Module, config: dict[str, Any],
                    path: str | Path | None = None) -> Path:
    """Save a trained PhiNet's state_dict to ``path`` (.pt) and its config to the .json beside it.

    The JSON also records the sha256 of the weights file, which :func:`load_kws_phinet`
    verifies. Defaults to ``artifacts/models/kws_phinet.pt``. Both files are written
    atomically. Returns the .pt path.

    Example:
        >>> import tempfile, pathlib
        >>> m = build_phinet((1, 49, 40), 12, 0.25, 1.0, 3.0, 5)
        >>> p = save_kws_phinet(m, m.phinet_config, pathlib.Path(tempfile.mkdtemp()) / "k.pt")
        >>> p.with_suffix(".json").exists()
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if not isinstance(config, dict) or config.get("family") != "phinet":
        raise ValueError("config must be the dict from phinet_config(...) (with family='phinet'); "
                         "pass model.phinet_config after build_phinet")
    rebuilt = build_phinet_from_config(config)
    want = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if want != have:
        raise ValueError("the config does not describe this model (state_dict keys or shapes "
                         "differ); save with the config the model was built from")
    path = Path(path) if path is not None else _config.artifacts_dir("models") / f"{KWS_PHINET_NAME}.pt"
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    doc = dict(config)
    doc["weights_file"] = path.name
    doc["weights_sha256"] = sha256_file(path)
    atomic_write_json(path.with_suffix(".json"), doc)
    return path


def shipped_kws_phinet_paths() -> tuple[Path, Path]:
    """``(weights, config)`` paths of the pretrained keyword PhiNet shipped in ``data/checkpoints``."""
    folder = _config.data_dir() / "checkpoints"
    return folder / f"{KWS_PHINET_NAME}.pt", folder / f"{KWS_PHINET_NAME}.json"


def _load_from(weights: Path, cfg_path: Path) -> tuple[nn.Module, dict[str, Any]]:
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} is missing: the weights {weights.name} need their "
                                "config JSON beside them (save with save_kws_phinet)")
    cfg = json.loads(cfg_path.read_text())
    expected = cfg.get("weights_sha256")
    if not expected:
        raise ValueError(f"{cfg_path} has no weights_sha256; re-save the model with save_kws_phinet")
    verify_sha256(weights, expected)
    model = build_phinet_from_config(cfg)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, cfg


def _load_run_copy(weights: Path) -> tuple[nn.Module, dict[str, Any]]:
    # artifacts/ is not in git: the way to repair it is re-running notebook 04, never
    # `git checkout` (which verify_sha256's generic advice would suggest).
    cfg_path = weights.with_suffix(".json")
    redo = "re-run notebook 04_phinets (it saves both files)"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} is missing, so the weights {weights} cannot be checked "
                                f"or rebuilt (was notebook 04 stopped while saving?); {redo}.")
    try:
        return _load_from(weights, cfg_path)
    except ChecksumError as err:
        raise ValueError(f"{weights} does not match the sha256 in {cfg_path.name} beside it (notebook 04 "
                         f"was probably stopped between saving the weights and their config); {redo}.") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{cfg_path} is damaged ({err}); {redo}.") from err


def load_kws_phinet(source: str = "auto") -> tuple[nn.Module, dict[str, Any]]:
    """Load the trained keyword PhiNet (eval mode) and its config.

    ``source="auto"`` prefers the copy notebook 04 wrote (``artifacts/models/kws_phinet.pt``)
    and falls back to the pretrained copy shipped in ``data/checkpoints/``;
    ``"artifacts"`` or ``"shipped"`` force one. The weights are checked against the sha256
    in the config and loaded with ``weights_only=True``. With ``"auto"``, a half-saved or
    damaged run copy (its ``.json`` missing, or a hash mismatch) falls back to the shipped
    checkpoint with a warning that says what happened.

    Example:
        >>> model, cfg = load_kws_phinet("shipped")  # doctest: +SKIP
        >>> cfg["input_shape"]  # doctest: +SKIP
        [1, 49, 40]
    """
    if source not in ("auto", "artifacts", "shipped"):
        raise ValueError(f"source must be 'auto', 'artifacts' or 'shipped', got {source!r}")
    run_weights = _config.artifacts_dir("models") / f"{KWS_PHINET_NAME}.pt"
    if source == "artifacts" or (source == "auto" and run_weights.exists()):
        if not run_weights.exists():
            raise FileNotFoundError(f"{run_weights} does not exist: run notebook 04_phinets first, "
                                    "or use load_kws_phinet('shipped') for the pretrained copy")
        try:
            return _load_run_copy(run_weights)
        except (FileNotFoundError, ValueError) as err:
            if source == "artifacts":
                raise
            # The run copy is half-saved (killed between the .pt and the .json) or damaged:
            # use the shipped checkpoint, and say exactly that -- not "the checkpoint is missing".
            warnings.warn(f"{err} Using the pretrained PhiNet shipped in data/checkpoints/ instead; "
                          "re-run notebook 04_phinets to use your own.", UserWarning, stacklevel=2)
    weights, cfg_path = shipped_kws_phinet_paths()
    if not weights.exists():
        raise FileNotFoundError(
            f"{weights} is missing. Restore it with `git checkout -- data/checkpoints` or remake it "
            "with `python -m tinyml_helpers.scripts.train_kws_phinet`.")
    from ..data.manifest import verify_file

    # the shipped pair is listed in data/manifest.json: check both files against it
    for path in (weights, cfg_path):
        verify_file(f"checkpoints/{path.name}")
    return _load_from(weights, cfg_path)
