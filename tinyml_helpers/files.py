"""Small file utilities shared by every module: atomic writes and checksums.

Nothing half-written is ever left behind: data goes to a temporary file in the target
folder and is renamed over the target in one step (``os.replace`` is atomic on POSIX and
Windows when both paths are on the same volume).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> _ = atomic_write_text(p, "hi")
    >>> sha256_file(p)[:8]
    '8f434346'
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "atomic_path",
    "private_dir",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "sha256_file",
    "verify_sha256",
    "ChecksumError",
    "clean_stale_temporaries",
    "STALE_AFTER_S",
]

# A temporary file older than this is left over from a killed write (a real write of the
# course takes seconds to minutes; the Speech Commands download, ~10 min on slow links).
STALE_AFTER_S = 3600.0

# tempfile.mkstemp/mkdtemp(prefix=".<target>.") names: a dot, the target's name, a dot and
# 8 random characters from [a-z0-9_], then the suffix (".tmp", ".onnx", ...).
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?$")


class ChecksumError(ValueError):
    """A file's sha256 does not match the one it was published with."""


def _read_umask() -> int:
    """The process's umask (read once, at import: setting it back and forth is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    Use it for writers that want a filename (``torch.save``, ``np.savez``, ``onnx.save``).
    On error the temporary file is removed and ``target`` is left untouched.

    Example:
        >>> import tempfile, pathlib
        >>> t = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> with atomic_path(t) as tmp:
        ...     _ = tmp.write_bytes(b"ok")
        >>> t.read_bytes()
        b'ok'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp",
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode an ordinary write would have
        # (or the mode of the file it replaces), so shared installs can still read the results.
        os.chmod(tmp, stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def private_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh folder beside ``target`` (same file system: renaming out of it is atomic).

    Build a set of files in it, then rename them (or the folder) into place; whatever is left
    is removed on exit. It is named like the course's other temporaries (``.<name>.<random>.tmp``),
    so a folder left by a killed run is swept by :func:`clean_stale_temporaries`.

    Example:
        >>> import tempfile, pathlib
        >>> with private_dir(pathlib.Path(tempfile.mkdtemp()) / "out") as work:
        ...     work.name.startswith(".out.") and work.name.endswith(".tmp")
        True
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy / torch scalars and arrays show up in results; store them as plain Python.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} as JSON")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks so large files are fine."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> Path:
    """Raise :class:`ChecksumError` (saying what to do) unless ``path`` has sha256 ``expected``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a"; _ = p.write_bytes(b"")
        >>> verify_sha256(p, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").name
        'a'
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. Restore it with `git checkout -- {path}` "
            "or regenerate it with the script named in data/README.md.")
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"{path} is corrupted or out of date: sha256 is {actual}, expected {expected}. "
            "Restore it with `git checkout -- <file>` or regenerate it with the script "
            "named in data/README.md.")
    return path


def clean_stale_temporaries(folder: str | os.PathLike, max_age_s: float = STALE_AFTER_S,
                            recursive: bool = True) -> list[Path]:
    """Delete temporary files/folders of killed writes (our naming, older than ``max_age_s``).

    :func:`atomic_path` cleans up after an exception, but not after ``kill -9``, a kernel
    restart or a power cut; a killed Speech Commands download alone left up to 2.3 GB.
    Only names made by this module's temp naming (``.<target>.<8 random chars>[.suffix]``)
    and not modified for ``max_age_s`` are removed, so a write in progress elsewhere is
    never touched. Returns what was removed.

    Example:
        >>> import tempfile, pathlib, os
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> old = d / ".big.tar.gz.k2j4h5g_.tmp"; _ = old.write_bytes(b"x")
        >>> os.utime(old, (0, 0))
        >>> [p.name for p in clean_stale_temporaries(d)]
        ['.big.tar.gz.k2j4h5g_.tmp']
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    cutoff = time.time() - max_age_s
    removed = []
    entries = folder.rglob(".*") if recursive else folder.glob(".*")
    for path in sorted(entries, key=lambda p: len(p.parts)):
        try:
            if not _TEMP_NAME.match(path.name) or path.lstat().st_mtime > cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except FileNotFoundError:  # inside a folder removed just before, or by another process
            continue
    return removed
