"""One way to open an ONNX file: a missing, empty, truncated or non-ONNX file gets one clear message.

``onnx.load`` on a damaged file raises a bare protobuf ``DecodeError`` without the path,
and on a 0-byte file it *succeeds* with an empty model, which then passed every operator
check (no nodes, nothing unsupported). Every helper that reads ONNX goes through
:func:`load_onnx` instead.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty.onnx"; _ = p.write_bytes(b"")
    >>> load_onnx(p)
    Traceback (most recent call last):
    ...
    tinyml_helpers.onnx_file.BadOnnxFileError: .../empty.onnx is not a usable ONNX model: the file is empty (0 bytes). Re-export it (tinyml_helpers.export.export_onnx / quantize_onnx) or re-run the notebook that writes it
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["BadOnnxFileError", "load_onnx", "check_onnx_file", "REDO"]

REDO = "Re-export it (tinyml_helpers.export.export_onnx / quantize_onnx) or re-run the notebook that writes it"


class BadOnnxFileError(ValueError):
    """The file exists but does not hold a readable ONNX model."""


def load_onnx(path: str | os.PathLike, external_data: bool = True) -> Any:
    """The ``onnx.ModelProto`` in ``path``; FileNotFoundError or :class:`BadOnnxFileError` naming it.

    Example:
        >>> load_onnx("no/such/model.onnx")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no/such/model.onnx does not exist: export the model first (tinyml_helpers.export.export_onnx) or check the path
    """
    import onnx

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: export the model first "
                                "(tinyml_helpers.export.export_onnx) or check the path")
    if path.is_dir():
        raise BadOnnxFileError(f"{path} is a folder, not an ONNX file; pass the .onnx file inside it")
    if path.stat().st_size == 0:
        raise BadOnnxFileError(f"{path} is not a usable ONNX model: the file is empty (0 bytes). {REDO}")
    try:
        model = onnx.load(str(path), load_external_data=external_data)
    except Exception as err:  # DecodeError, RuntimeError, OSError (missing .data): one message
        raise BadOnnxFileError(f"{path} is not a usable ONNX model: it is truncated, damaged or another "
                               f"kind of file ({type(err).__name__}: {err}). {REDO}") from err
    # Random bytes sometimes parse as a protobuf with no graph at all.
    if not model.graph.node or not model.graph.output:
        raise BadOnnxFileError(f"{path} is not a usable ONNX model: it holds no graph (nodes "
                               f"{len(model.graph.node)}, outputs {len(model.graph.output)}). {REDO}")
    return model


def check_onnx_file(path: str | os.PathLike) -> Path:
    """Return ``path`` if it holds a readable ONNX graph (see :func:`load_onnx`), else raise.

    Example:
        >>> check_onnx_file("missing.onnx")
        Traceback (most recent call last):
        ...
        FileNotFoundError: missing.onnx does not exist: export the model first (tinyml_helpers.export.export_onnx) or check the path
    """
    load_onnx(path, external_data=False)
    return Path(path)
