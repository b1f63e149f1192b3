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
TEST_ONLY = {"pytest", "nbval", "jupyter-repo2docker", "playwright"}


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
