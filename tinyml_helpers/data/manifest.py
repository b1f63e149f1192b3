"""``data/manifest.json``: the machine-readable list of every shipped file and its sha256.

Format (one entry per file, path relative to ``data/``)::

    {
      "files": {
        "keywords/speech_train.flac": {
          "sha256": "<64 hex digits>",
          "bytes": 5900958,
          "what": "synthetic keyword speech, train split",
          "made_by": "python -m tinyml_helpers.scripts.make_keywords",
          "licence": "CC0-1.0"
        },
        ...
      }
    }

Anyone who ships a file in ``data/`` adds its entry (by hand or with :func:`update_manifest`)
and ``tests/test_data_checksums.py`` verifies every entry. Loaders call :func:`verify_file`
so a corrupted file raises :class:`~tinyml_helpers.files.ChecksumError` instead of
training on garbage.

Example:
    >>> "files" in load_manifest()
    True
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Mapping

from .. import config
from ..files import ChecksumError, atomic_write_json, sha256_file

__all__ = ["MANIFEST_NAME", "manifest_path", "load_manifest", "update_manifest", "verify_file",
           "verify_manifest", "file_sha256", "markdown_rows", "ChecksumError"]

MANIFEST_NAME = "manifest.json"


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so repeated checks cost nothing."""
    stat = os.stat(path)
    return _sha256_memo(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256_memo(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def manifest_path() -> Path:
    """``data/manifest.json`` (or under ``$TINYML_DATA``)."""
    return config.data_dir() / MANIFEST_NAME


def load_manifest(missing_ok: bool = True) -> dict[str, Any]:
    """The manifest as a dict (``{"files": {}}`` when it does not exist yet, if ``missing_ok``).

    A damaged manifest raises ValueError naming it; with ``missing_ok=False`` a deleted one
    raises FileNotFoundError saying how to restore it.

    Example:
        >>> sorted(load_manifest(missing_ok=False))[:1]
        ['files']
    """
    path = manifest_path()
    if not path.exists():
        if missing_ok:
            return {"files": {}}
        raise FileNotFoundError(f"{path} is missing: it lists the sha256 of every shipped file. Restore "
                                f"it with `git checkout -- data/{MANIFEST_NAME}`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is damaged ({err}); restore it with `git checkout -- data/{MANIFEST_NAME}`") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"{path} must hold an object {{\"files\": {{path: entry}}}}; see its module docstring")
    return manifest


def update_manifest(entries: Mapping[str, Mapping[str, Any] | None], made_by: str, licence: str,
                    what: Mapping[str, str] | str = "") -> dict[str, Any]:
    """Add or refresh entries (sha256 and size are measured from the files themselves).

    ``entries`` maps a path relative to ``data/`` to extra fields (or None).

    Example:
        >>> # update_manifest({"images/fashion_mnist_subset.npz": None},
        >>> #                 made_by="python -m tinyml_helpers.scripts.make_fashion_subset",
        >>> #                 licence="MIT", what="Fashion-MNIST subset")
    """
    from filelock import FileLock

    # Training scripts run side by side (teacher, PhiNet, leave-one-out): without the lock each
    # read-modify-write could drop the entry another process had just added.
    with FileLock(str(manifest_path()) + ".lock", timeout=600):
        manifest = load_manifest()
        root = config.data_dir()
        for relpath, extra in entries.items():
            path = root / relpath
            if not path.exists():
                raise FileNotFoundError(f"cannot add {relpath} to the manifest: {path} does not exist")
            old = manifest["files"].get(relpath, {})
            entry = {**old, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                     "made_by": made_by, "licence": licence}
            description = what.get(relpath, "") if isinstance(what, Mapping) else what
            if description:
                entry["what"] = description
            entry.setdefault("what", "")
            for key in ("what",):
                if extra and key in extra:
                    entry[key] = extra[key]
            manifest["files"][relpath] = entry
        manifest["files"] = dict(sorted(manifest["files"].items()))
        atomic_write_json(manifest_path(), manifest)
    return manifest


def verify_file(relpath: str) -> Path:
    """Check one shipped file against the manifest; return its absolute path.

    Raises FileNotFoundError (naming the script that makes it) when it is missing and
    :class:`ChecksumError` when its sha256 differs.

    Example:
        >>> verify_file("keywords/clips.csv").name
        'clips.csv'
    """
    # A deleted manifest is "restore it", not "this file is not listed".
    entry = load_manifest(missing_ok=False)["files"].get(relpath)
    path = config.data_dir() / relpath
    how = f"`{entry['made_by']}`" if entry and entry.get("made_by") else "the script named in data/README.md"
    if not path.exists():
        raise FileNotFoundError(f"bundled file data/{relpath} is missing. Restore it with "
                                f"`git checkout -- data/{relpath}` or regenerate it with {how}.")
    if entry is None:
        raise ChecksumError(f"data/{relpath} is not listed in data/{MANIFEST_NAME}; add its sha256 there "
                            "(see tinyml_helpers/data/manifest.py)")
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ChecksumError(f"data/{relpath} is corrupted or out of date: sha256 {actual}, expected "
                            f"{entry['sha256']}. Restore it with `git checkout -- data/{relpath}` "
                            f"or regenerate it with {how}.")
    return path


def markdown_rows(prefix: str = "") -> str:
    """README table rows ``| `path` | bytes | `sha256` |`` for manifest entries under ``prefix``.

    Scripts print these after writing files, ready to paste into data/README.md.

    Example:
        >>> markdown_rows("images/").startswith("| `images/")
        True
    """
    rows = [f"| `{path}` | {entry['bytes']:,} | `{entry['sha256']}` |"
            for path, entry in load_manifest()["files"].items() if path.startswith(prefix)]
    return "\n".join(rows)


def verify_manifest() -> list[str]:
    """Check every entry; return a list of problems (empty when all files are intact)."""
    problems = []
    for relpath in load_manifest()["files"]:
        try:
            verify_file(relpath)
        except (FileNotFoundError, ChecksumError) as exc:
            problems.append(str(exc))
    return problems
