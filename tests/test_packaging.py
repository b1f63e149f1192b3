"""A non-editable install must carry the package's non-Python files (C kernels, cost tables)."""
from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyml_helpers"


def _data_files() -> list[Path]:
    """Every file under the package that is not Python source or bytecode."""
    return sorted(p for p in PACKAGE.rglob("*")
                  if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)


def _declared(path: Path, package_data: dict[str, list[str]]) -> bool:
    # setuptools matches each pattern relative to the directory of the package it is listed under
    for package, patterns in package_data.items():
        pkg_dir = ROOT.joinpath(*package.split("."))
        try:
            rel = path.relative_to(pkg_dir).as_posix()
        except ValueError:
            continue
        if any(fnmatch.fnmatch(rel, pat) for pat in patterns):
            return True
    return False


def test_every_data_file_is_declared_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = config.get("tool", {}).get("setuptools", {}).get("package-data", {})
    files = _data_files()
    names = {p.name for p in files}
    assert {"kernel_costs.json", "tm_kernels.c", "tm_kernels.h"} <= names, names   # what deployment reads
    missing = [str(p.relative_to(ROOT)) for p in files if not _declared(p, package_data)]
    assert not missing, f"not in [tool.setuptools.package-data] of pyproject.toml: {missing}"


def test_wheel_carries_the_kernels_and_cost_tables(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the repository.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "tinyml_helpers", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(tmp_path / "out")], check=True, timeout=300)
    wheel = next((tmp_path / "out").glob("*.whl"))
    inside = set(zipfile.ZipFile(wheel).namelist())
    wanted = {p.relative_to(ROOT).as_posix() for p in _data_files()}
    assert wanted <= inside, f"missing from the wheel: {sorted(wanted - inside)}"
