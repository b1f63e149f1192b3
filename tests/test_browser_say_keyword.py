"""'Say a keyword' in a real browser: JupyterLab, headless Chromium with a fake microphone that
plays a WAV file, the notebook widget's Record button, the emulated chip, a detection on screen.

Chromium's fake-device flags make getUserMedia deliver the file's samples (at the browser's
audio rate, 44.1 or 48 kHz, like a laptop's), so the whole path runs: browser capture -> base64 to the kernel -> resampling ->
tm_push_samples on the emulated Cortex-M4 -> detection printed in the widget's output. The
network is the streaming tests' stub (class "loud" = a loud sound), so no trained model is
needed. Skipped without Chromium or anywidget. A screenshot goes to
artifacts/browser/say_keyword.png.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from browser_support import CHROMIUM, CHROMIUM_FLAGS, config_dir_without_autosave, open_until_kernel_idle, \
    stop_process_group

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tinyml-say-keyword-test"

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(fw_dir: Path) -> dict:
    src = f"""
from tinyml_helpers.deploy import streaming
from tinyml_helpers.deploy.say_keyword import KeywordSpotterUI
fw = streaming.build_pcm_firmware(None, {str(fw_dir)!r}, ["_silence_", "loud", "_unknown_"],
                                  input_scale=0.0415, input_zero_point=-5)
ui = KeywordSpotterUI(fw, seconds=1.5)
display(ui.widget)
"""
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": src.strip().splitlines(keepends=True)}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture()
def lab(tmp_path):
    pytest.importorskip("anywidget")
    pytest.importorskip("unicorn")
    from scipy.io import wavfile

    (tmp_path / "say.ipynb").write_text(json.dumps(_notebook(tmp_path / "fw")))
    t = np.arange(int(48000 * 1.0)) / 48000
    tone = (0.6 * np.sin(2 * np.pi * 700 * t) * 32767).astype(np.int16)   # loops while recording
    wav = tmp_path / "mic.wav"
    wavfile.write(wav, 48000, tone)
    config_dir = config_dir_without_autosave(tmp_path)
    port = _free_port()
    env = {**os.environ, "TINYML_SMOKE": "1", "JUPYTER_CONFIG_DIR": str(config_dir),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("DISPLAY", None)
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                             "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
                             f"--ServerApp.root_dir={tmp_path}",
                             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
                            cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("JupyterLab exited during start-up")
                time.sleep(1)
        else:
            pytest.fail("JupyterLab did not answer within 120 s")
        yield f"{base}/lab/tree/say.ipynb?token={TOKEN}", wav
    finally:
        stop_process_group(proc)


def test_say_a_keyword_through_the_browser_microphone(lab):
    from playwright.sync_api import sync_playwright

    url, wav = lab
    shots = ROOT / "artifacts" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    flags = CHROMIUM_FLAGS + ["--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-audio-capture={wav}"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            open_until_kernel_idle(page, url)
            page.locator(".jp-Cell").first.click()
            page.keyboard.press("Shift+Enter")
            button = page.locator("button.tm-record")
            button.wait_for(timeout=180_000)
            button.click()
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-OutputArea-output')]
                        .some(e => /detected 'loud'|cannot use|no keyword detected/.test(e.innerText))""",
                timeout=180_000)
            text = "\n".join(page.eval_on_selector_all(".jp-OutputArea-output", "els => els.map(e => e.innerText)"))
            # the kernel reports back through the widget's status trait as well
            page.wait_for_function(
                "() => /loud/.test(document.querySelector('.tm-record-status').innerText)", timeout=30_000)
            status = page.locator(".tm-record-status").inner_text()
        finally:
            page.screenshot(path=str(shots / "say_keyword.png"), full_page=False)
            browser.close()
    assert "detected 'loud'" in text, text[-2000:]
    # the browser records at its audio device's rate (44.1 or 48 kHz), the kernel resamples
    assert "resampled" in text and "to 16 kHz" in text, text[-2000:]
    assert "Traceback" not in text
    assert "loud" in status, status
