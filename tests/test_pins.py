"""The pins in requirements.txt, environment.yml and binder/ agree, and repo2docker accepts binder/."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch", "torchvision": "torchvision", "python": "python", "pip": "pip"}
TEST_ONLY = {"pytest", "nbval", "pytest-xdist", "jupyter-repo2docker", "playwright"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    text = (ROOT / "requirements.txt").read_text()
    assert "--extra-index-url" not in text and "--index-url" not in text, \
        "requirements.txt must not add package indexes (they are unreachable on the course machines)"
    lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
    pins = {}
    for line in filter(None, lines):
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"requirements.txt line {line!r} is not an exact pin (name==version)"
        pins[_norm(match.group(1))] = match.group(2)
    return pins


def environment_pins(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    conda, pip = {}, {}
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].rstrip()
        if m := re.fullmatch(r"\s{6}- ([A-Za-z0-9_.\-]+)==(\S+)", line):
            pip[_norm(m.group(1))] = m.group(2)
        elif m := re.fullmatch(r"\s{2}- ([A-Za-z0-9_.\-]+)(?:=([^=\s]+))?(?:=\S+)?", line):
            conda[CONDA_NAMES.get(m.group(1), m.group(1))] = m.group(2) or ""
    return conda, pip


@pytest.mark.parametrize("relpath,skip", [("environment.yml", set()), ("binder/environment.yml", TEST_ONLY)])
def test_environment_files_match_requirements(relpath, skip):
    pins = requirement_pins()
    conda, pip = environment_pins(ROOT / relpath)
    assert conda.get("python") == "3.11"
    for name in ("torch", "torchvision"):
        assert conda.get(name) == pins[name], f"{relpath}: {name} pin differs from requirements.txt"
    expected = {n: v for n, v in pins.items() if n not in {"torch", "torchvision"} and n not in skip}
    assert pip == expected, (f"{relpath} pip section disagrees with requirements.txt: "
                             f"missing {sorted(set(expected) - set(pip))}, extra {sorted(set(pip) - set(expected))}, "
                             f"different {sorted(n for n in set(pip) & set(expected) if pip[n] != expected[n])}")


def test_binder_uses_cpu_pytorch():
    text = (ROOT / "binder/environment.yml").read_text()
    assert re.search(r"- pytorch=\S+=cpu\*", text), "Binder must use the CPU build of PyTorch (2 GB limit)"


def test_repo2docker_accepts_binder_folder():
    exe = shutil.which("jupyter-repo2docker", path=str(Path(sys.executable).parent))
    assert exe, "jupyter-repo2docker is not installed; run `make setup`"
    out = subprocess.run([exe, "--no-build", "--debug", str(ROOT)], capture_output=True, text=True, timeout=120)
    dockerfile = out.stdout + out.stderr
    assert out.returncode == 0, dockerfile[-2000:]
    assert 'binder/environment.yml' in dockerfile, "repo2docker did not pick up binder/environment.yml"
    assert "binder/postBuild" in dockerfile, "repo2docker did not pick up binder/postBuild"


def lock_pins() -> dict[str, tuple[str, int]]:
    """``{name: (version, number of hashes)}`` of requirements.lock."""
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, tuple[str, int]] = {}
    name = None
    for line in text.splitlines():
        if m := re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line):
            name = _norm(m.group(1))
            pins[name] = (m.group(2), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}( \\)?", line.strip()), line
            pins[name] = (pins[name][0], pins[name][1] + 1)
    return pins


def test_lock_pins_every_package_with_hashes_and_agrees_with_requirements():
    text = (ROOT / "requirements.lock").read_text()
    assert not re.search(r"^\s*-(-index-url|-extra-index-url|i|-find-links|f)\b", text, re.M), \
        "requirements.lock must not name package indexes or local folders"
    assert "pip-compile" in text.split("\n\n")[0], "the lock's header must say how to refresh it"
    locked = lock_pins()
    unhashed = sorted(n for n, (_, hashes) in locked.items() if hashes == 0)
    assert not unhashed, f"packages without a sha256 in requirements.lock: {unhashed}"
    for name, version in requirement_pins().items():
        assert name in locked, f"{name} is pinned in requirements.txt but missing from requirements.lock"
        assert locked[name][0] == version, (f"{name}: requirements.txt pins {version}, requirements.lock "
                                            f"{locked[name][0]}; refresh the lock (see its header)")
    assert "setuptools" in locked, "make setup's `pip install --no-build-isolation -e .` needs setuptools"


def test_make_setup_installs_the_lock_with_hashes():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements.lock" in makefile
    assert re.search(r"^\$\(STAMP\):.*requirements\.lock", makefile, re.M), "setup must rerun when the lock changes"
