"""Opt-in downloads of real public datasets, verified by sha256 and written atomically.

Nothing here runs unless a learner asks for it (e.g. ``download=True``). :func:`download`
streams a URL into the cache folder (``artifacts/cache/downloads`` by default) under a
temporary name, checks its sha256 and only then renames it into place, so an interrupted or
tampered download never looks like a good file. Offline, it fails at once with a message
that says to use the bundled synthetic set instead.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty.bin"; _ = p.write_bytes(b"")
    >>> EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    >>> download("https://example.invalid/empty.bin", EMPTY, p).name   # already there: no network
    'empty.bin'
"""
from __future__ import annotations

import gzip
import hashlib
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from .. import config
from ..files import ChecksumError, atomic_path, clean_stale_temporaries, sha256_file

__all__ = ["download", "download_cache_dir", "NoInternetError", "ChecksumError"]

_CHUNK = 1 << 20


class NoInternetError(ConnectionError):
    """The network cannot be reached (offline, firewall, or ``TINYML_BLOCK_NETWORK=1``)."""


def download_cache_dir(*parts: str) -> Path:
    """Where opt-in downloads go: ``$TINYML_DOWNLOADS`` or ``artifacts/cache/downloads``."""
    base = os.environ.get("TINYML_DOWNLOADS")
    path = Path(base).joinpath(*parts) if base else config.artifacts_dir("cache", "downloads", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def download(url: str, sha256: str, dest: str | os.PathLike, timeout: float = 60.0,
             progress: bool = True, gunzip: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with that sha256 is already there.

    Raises :class:`NoInternetError` when offline and :class:`ChecksumError` when the bytes
    received (or an existing ``dest``) do not match ``sha256``; a bad file is never left at
    ``dest``. With ``gunzip=True`` the response is gzip-decoded on the fly and ``sha256``
    is that of the decoded file (useful when only the content's checksum is known).

    Example:
        >>> # download("https://.../speech_commands_v0.02.tar.gz", "<sha256>", "/tmp/sc.tgz")
    """
    dest = Path(dest)
    # A killed earlier download left its partial file (up to 2.3 GB) under a temp name.
    clean_stale_temporaries(dest.parent, recursive=False)
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if dest.exists():
        actual = sha256_file(dest)
        if actual == sha256.lower():
            return dest
        raise ChecksumError(f"{dest} exists but its sha256 is {actual}, expected {sha256}. "
                            f"Delete it and call download() again to fetch a fresh copy.")
    config.maybe_block_network()
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(None if gunzip else total, dest.name) if progress else None
            stream = gzip.GzipFile(fileobj=response) if gunzip else response
            with open(tmp, "wb") as handle:
                for block in iter(lambda: stream.read(_CHUNK), b""):
                    handle.write(block)
                    digest.update(block)
                    if bar is not None:
                        bar.update(len(block))
            if bar is not None:
                bar.close()
            if digest.hexdigest() != sha256.lower():
                raise ChecksumError(f"downloaded {url} but its sha256 is {digest.hexdigest()}, expected "
                                    f"{sha256}: the file changed upstream or the transfer was corrupted. "
                                    "Nothing was saved; try again later.")
    except gzip.BadGzipFile as exc:
        raise ChecksumError(f"{url} did not send gzip data as expected; nothing was saved.") from exc
    except (urllib.error.URLError, socket.timeout, ConnectionError, config.NetworkBlockedError) as exc:
        # Only network failures land here; a full disk or a bad path keeps its own OSError.
        if isinstance(exc, urllib.error.HTTPError):
            raise ConnectionError(f"the server answered {exc.code} for {url}; the file may have moved.") from exc
        raise NoInternetError(
            f"no internet: could not download {url} ({exc}). Use the bundled synthetic set "
            "(the default), or copy the file by hand to " f"{dest} and call again.") from exc
    return dest


def _progress_bar(total: int | None, name: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}")
