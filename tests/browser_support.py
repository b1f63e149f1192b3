"""What the real-browser tests share: where Chromium is, how it starts, JupyterLab without
autosave, opening a notebook page until its kernel is idle, and stopping the server."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def config_dir_without_autosave(tmp_path: Path) -> Path:
    """A JUPYTER_CONFIG_DIR whose JupyterLab never autosaves: a test must not write notebooks."""
    config_dir = tmp_path / "jupyter-config"
    docmanager = config_dir / "lab" / "user-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    return config_dir


def open_until_kernel_idle(page, url: str) -> None:
    """Open a notebook URL, accept the kernel dialog if JupyterLab shows one, wait for an idle kernel."""
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    try:
        # JupyterLab may still ask which kernel to start; the course kernel is preselected.
        page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=10_000)
    except Exception:
        pass  # no dialog: the kernel started on its own
    # The kernel is ready when the toolbar's execution indicator reads idle.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)


def stop_process_group(proc: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and everything it spawned."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
