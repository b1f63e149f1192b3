"""Every shipped file in data/ matches the sha256 recorded for it.

Two records are checked: data/manifest.json (machine-readable, one entry per file) and every
64-hex sha256 written in data/README.md (matched to the nearest backticked path on the same
line or above it). See the top of data/README.md for the format.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tinyml_helpers.files import sha256_file

DATA = Path(__file__).resolve().parent.parent / "data"
SHA_RE = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
PATH_RE = re.compile(r"`([^`\s]+)`")


def _manifest_entries() -> list[tuple[str, str]]:
    manifest = json.loads((DATA / "manifest.json").read_text())
    return [(path, entry["sha256"]) for path, entry in manifest["files"].items()]


def _resolve(token: str) -> Path | None:
    token = token.strip()
    for candidate in (DATA / token, DATA.parent / token):
        if candidate.is_file():
            return candidate
    return None


def readme_checksums(text: str) -> list[tuple[int, str, Path | None]]:
    """(line number, sha256, file it belongs to or None) for every sha256 in the README."""
    found = []
    last_path: Path | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            last_path = None  # a new section: do not attach a checksum to a file above it
        same_line = [p for p in (_resolve(t) for t in PATH_RE.findall(line)) if p is not None]
        if same_line:
            last_path = same_line[-1]
        for sha in SHA_RE.findall(line):
            found.append((number, sha, same_line[0] if same_line else last_path))
    return found


def test_manifest_lists_files_and_they_match():
    entries = _manifest_entries()
    assert entries, "data/manifest.json lists no files"
    for path, sha in entries:
        target = DATA / path
        assert target.is_file(), f"data/manifest.json lists {path} but data/{path} does not exist"
        assert sha256_file(target) == sha, f"data/{path} does not match its sha256 in data/manifest.json"


def test_every_sha256_in_readme_matches_its_file():
    text = (DATA / "README.md").read_text()
    checks = readme_checksums(text)
    assert checks, "data/README.md records no sha256 at all"
    for line, sha, path in checks:
        assert path is not None, (
            f"data/README.md line {line}: sha256 {sha[:12]}... is not next to a backticked path of an "
            "existing file; write rows like | `keywords/clips.csv` | bytes | `sha256` |")
        assert sha256_file(path) == sha, f"data/README.md line {line}: {path.name} has a different sha256"


def test_readme_and_manifest_agree():
    manifest = dict(_manifest_entries())
    for line, sha, path in readme_checksums((DATA / "README.md").read_text()):
        rel = path.relative_to(DATA).as_posix() if path and DATA in path.parents else None
        if rel in manifest:
            assert manifest[rel] == sha, f"data/README.md line {line} and data/manifest.json disagree on {rel}"


def test_readme_parser_links_checksum_to_file_above(tmp_path):
    text = "## x\n`keywords/clips.csv`\nsha256: " + "0" * 64 + "\n## y\nsha256 " + "1" * 64 + "\n"
    (line1, _, path1), (line2, _, path2) = readme_checksums(text)
    assert path1 is not None and path1.name == "clips.csv"
    assert path2 is None  # a new heading starts a new section


def test_shipped_data_stays_small():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < 25 * 2**20, f"data/ holds {total / 2**20:.1f} MiB; the course keeps it under 25 MiB"
    keywords = sum(p.stat().st_size for p in (DATA / "keywords").glob("*"))
    assert keywords < 14 * 2**20, f"data/keywords holds {keywords / 2**20:.1f} MiB (budget 14 MiB)"
