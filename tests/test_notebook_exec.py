"""Headless notebook execution that survives a missed ZeroMQ wake-up."""
from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest

from tinyml_helpers.notebook_exec import notebook_runner, poll_in_slices


def test_a_finite_timeout_still_raises_empty_at_its_deadline():
    async def never(timeout=None):
        await asyncio.sleep(timeout)
        raise Empty

    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(poll_in_slices(never, 0.05)(timeout=0.3))
    assert 0.25 <= time.monotonic() - start < 1.0


def test_a_message_missed_by_the_first_slice_is_returned_by_a_later_one():
    seen = []

    async def wakes_late(timeout=None):
        seen.append(timeout)
        if len(seen) < 4:
            raise Empty
        return "reply"

    assert asyncio.run(poll_in_slices(wakes_late, 0.01)(timeout=5)) == "reply"
    assert all(t <= 0.01 for t in seen), "each wait is one slice, never the whole timeout"


@pytest.mark.parametrize("bad", [0, -1.0, None])
def test_slice_must_be_positive(bad):
    with pytest.raises(ValueError, match="slice_s"):
        poll_in_slices(lambda timeout=None: None, bad)


def test_runner_rejects_bad_timeout_and_missing_folder(tmp_path):
    nb = nbformat.v4.new_notebook()
    with pytest.raises(ValueError, match="timeout"):
        notebook_runner(nb, tmp_path, timeout=0)
    with pytest.raises(FileNotFoundError, match="no folder"):
        notebook_runner(nb, tmp_path / "missing", timeout=10)


def test_runner_executes_a_notebook_in_its_folder(tmp_path):
    (tmp_path / "marker.txt").write_text("here")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(open('marker.txt').read(), 6 * 7)")])
    notebook_runner(nb, tmp_path, timeout=120).execute()
    assert nb.cells[0].outputs[0]["text"] == "here 42\n"
