"""Launch check in a real browser: `make lab`, open notebook 00 in headless Chromium, run all cells.

It uses the README's launch command exactly, parses the URL JupyterLab prints, and drives
Debian's Chromium with Playwright (browser downloads are blocked on the course machines, so
Playwright points at the system browser). Without Chromium the test is skipped with the
reason; CI installs it first (see .ci/run). A screenshot is saved to
artifacts/browser/notebook00.png.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from browser_support import CHROMIUM, CHROMIUM_FLAGS, config_dir_without_autosave, open_until_kernel_idle, \
    stop_process_group

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                "(Debian: apt-get install chromium); CI installs it")


@pytest.fixture()
def lab_url(tmp_path):
    config_dir = config_dir_without_autosave(tmp_path)  # it must not write into the course's notebooks
    opened = ROOT / "notebooks" / "00_why_tinyml.ipynb"
    before = opened.read_bytes()
    env = {**os.environ, "TINYML_SMOKE": "1", "JUPYTER_CONFIG_DIR": str(config_dir),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime")}
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(["make", "lab"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url, seen = None, []
    deadline = time.time() + 120
    while time.time() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(r"(http://(?:127\.0\.0\.1|localhost)[^\s]*/lab[^\s]*\?token=\w+)", line)
        url = match.group(1) if match else None
    try:
        assert url, "JupyterLab did not print its URL:\n" + "".join(seen[-30:])
        yield url
    finally:
        stop_process_group(proc)
        if opened.read_bytes() != before:  # never leave the course notebook modified
            opened.write_bytes(before)
            pytest.fail(f"the browser session wrote to {opened.name} (autosave should be off)")


def test_notebook_00_runs_in_a_real_browser(lab_url):
    from playwright.sync_api import sync_playwright

    shots = ROOT / "artifacts" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            open_until_kernel_idle(page, lab_url)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
            # Busy or queued cells show [*] or [ ]; wait until every prompt has a number.
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
                    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
                }""", timeout=400_000)
            errors = page.eval_on_selector_all(
                ".jp-OutputArea-output", "els => els.map(e => e.innerText).filter(t => /Traceback|Error:/.test(t))")
        finally:
            page.screenshot(path=str(shots / "notebook00.png"), full_page=False)
            browser.close()
    assert not errors, "notebook 00 showed errors in the browser:\n" + "\n---\n".join(e[:800] for e in errors)
