"""Run mode, seeds, device and folders: the one place the course reads its settings.

* **Run mode.** ``workshop`` (default) is the real lesson, minutes on a laptop. ``smoke``
  (``TINYML_SMOKE=1``, set by the tests) runs the same code path on tiny data in seconds.
  Notebooks choose sizes with :func:`by_mode` so both paths stay one path.
* **Folders.** Artifacts (checkpoints, ONNX files, firmware, results JSON) go to
  ``artifacts/`` at the repo root, or to ``$TINYML_ARTIFACTS``. Bundled data is read from
  ``data/`` at the repo root, or ``$TINYML_DATA``.
* **Network.** With ``TINYML_BLOCK_NETWORK=1`` (set by the test command) any socket
  connection outside loopback fails at once, which proves the course runs offline.

Example:
    >>> from tinyml_helpers import config
    >>> config.by_mode(workshop=20, smoke=1) in (20, 1)
    True
"""
from __future__ import annotations

import ipaddress
import logging
import os
import random
import socket
import warnings
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

SMOKE_ENV = "TINYML_SMOKE"
ARTIFACTS_ENV = "TINYML_ARTIFACTS"
DATA_ENV = "TINYML_DATA"
BLOCK_NETWORK_ENV = "TINYML_BLOCK_NETWORK"
DEFAULT_SEED = 0

REPO_ROOT = Path(__file__).resolve().parent.parent

_current_lesson: str | None = None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def is_smoke() -> bool:
    """True when ``TINYML_SMOKE`` asks for the fast test path."""
    return _truthy(os.environ.get(SMOKE_ENV))


def run_mode() -> str:
    """``"smoke"`` or ``"workshop"``."""
    return "smoke" if is_smoke() else "workshop"


def by_mode(*, workshop: T, smoke: T) -> T:
    """Pick the workshop-mode or the smoke-mode value of a setting.

    Example:
        >>> epochs = by_mode(workshop=12, smoke=1)
    """
    return smoke if is_smoke() else workshop


def seed_everything(seed: int = DEFAULT_SEED) -> int:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so reruns give the same figures.

    Example:
        >>> seed_everything(3)
        3
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard requirement of the course
        return seed
    torch.manual_seed(seed)
    return seed


def get_device(prefer: str | None = None) -> "Any":
    """Return a ``torch.device``: CPU by default, CUDA or Apple MPS when asked and present.

    ``prefer="auto"`` picks the fastest available. The course's figures are computed on CPU
    so that they are the same on every laptop.

    Example:
        >>> str(get_device())
        'cpu'
    """
    import torch

    choice = (prefer or os.environ.get("TINYML_DEVICE") or "cpu").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {prefer!r}: use 'cpu', 'cuda', 'mps' or 'auto'")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but no CUDA GPU is visible; use 'cpu' or 'auto'")
    if choice == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("Apple MPS was asked for but is not available; use 'cpu' or 'auto'")
    return torch.device(choice)


def artifacts_dir(*parts: str) -> Path:
    """The run folder (or a sub-folder of it), created if needed.

    Smoke runs (the tests) write under ``<run folder>/smoke/`` so that a one-epoch model or a
    smoke-sized result never stands in for the real one in a later workshop run.
    ``$TINYML_ARTIFACTS`` replaces ``artifacts/`` in both modes and keeps that split: with
    the override a smoke run writes to ``$TINYML_ARTIFACTS/smoke/``.

    Example:
        >>> artifacts_dir("results").name
        'results'
    """
    base = Path(os.environ.get(ARTIFACTS_ENV) or REPO_ROOT / "artifacts")
    if is_smoke():
        base = base / "smoke"
    path = base.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        how = ("point $%s at a writable folder" % ARTIFACTS_ENV if ARTIFACTS_ENV not in os.environ
               else "check $%s=%s, or unset it" % (ARTIFACTS_ENV, os.environ[ARTIFACTS_ENV]))
        raise OSError(err.errno, f"cannot create the artifacts folder {path} ({err.strerror}); "
                                 f"{how}, e.g. `export {ARTIFACTS_ENV}=$HOME/tinyml-artifacts`") from err
    return path


def data_dir() -> Path:
    """The folder holding the bundled datasets and checkpoints (``data/``)."""
    path = Path(os.environ.get(DATA_ENV) or REPO_ROOT / "data")
    if not path.is_dir():
        raise FileNotFoundError(
            f"the course data folder {path} does not exist. Run from a clone of the course "
            f"repository, or point ${DATA_ENV} at its data/ folder.")
    return path


def current_lesson() -> str:
    """The notebook stem set by :func:`start_lesson` (``"scratch"`` before that)."""
    return _current_lesson or os.environ.get("TINYML_LESSON") or "scratch"


def start_lesson(stem: str, seed: int = DEFAULT_SEED, quiet_libraries: bool = True,
                 torch_threads: int | None = 1) -> str:
    """Call once at the top of a notebook: names its results file, seeds, quiets chatter.

    It also runs PyTorch on ``torch_threads`` CPU threads (one by default): the course's
    networks are tiny, and splitting such small layers across threads costs more than it
    saves; on a laptop busy with anything else, two threads measured up to 8x slower than
    one. Pass ``None`` to keep PyTorch's default.

    Each call starts the lesson's results record afresh (the previous run's file is kept as
    ``<stem>.previous.json``, see :func:`tinyml_helpers.results.start_run`) and removes
    temporary files that killed writes left in the artifacts folder over an hour ago.

    Returns a one-line summary that the notebook prints.

    Example:
        >>> start_lesson("00_why_tinyml").startswith("00_why_tinyml")
        True
    """
    global _current_lesson
    if not stem or any(ch in stem for ch in "/\\ "):
        raise ValueError(f"lesson stem must be a plain notebook name like '00_why_tinyml', got {stem!r}")
    _current_lesson = stem
    seed_everything(seed)
    if torch_threads is not None:
        if not isinstance(torch_threads, int) or torch_threads < 1:
            raise ValueError(f"torch_threads must be a positive integer or None, got {torch_threads!r}")
        import torch

        torch.set_num_threads(torch_threads)
    if quiet_libraries:
        quiet_noisy_libraries()
    maybe_block_network()
    # A (re-)run starts its results record fresh: figures of an earlier run never mix in.
    from .files import clean_stale_temporaries
    from .results import start_run

    start_run(stem)
    # Temporary files of writes killed in an earlier session (an hour old or more).
    clean_stale_temporaries(artifacts_dir())
    return f"{stem}: {run_mode()} mode, seed {seed}, artifacts in {artifacts_dir()}"


def quiet_noisy_libraries() -> None:
    """Tame the log output of micromind (loguru), accelerate and friends in notebooks."""
    try:
        from loguru import logger

        logger.remove()
        logger.add(lambda msg: None, level="WARNING")
    except ImportError:  # pragma: no cover
        pass
    for name in ("accelerate", "torch.onnx", "onnxscript", "numba", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*TracerWarning.*")


class NetworkBlockedError(OSError):
    """Raised when code tries to reach the network while the course runs offline."""


_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise NetworkBlockedError(
            f"network access to {address!r} is blocked ({BLOCK_NETWORK_ENV}=1): the course "
            "must run offline. Use the bundled data, or unset the variable to opt in to downloads.")
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        _guarded_connect(self, address)
    return _original_connect_ex(self, address)


def maybe_block_network() -> bool:
    """Refuse non-loopback sockets when ``TINYML_BLOCK_NETWORK=1``; return whether blocked."""
    if not _truthy(os.environ.get(BLOCK_NETWORK_ENV)):
        return False
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    return True
