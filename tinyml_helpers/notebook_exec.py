"""Run a notebook headless with nbclient, without the rare stall of its message polling.

The benchmark, the deck build and the worked-solutions test all execute notebooks with
nbclient. Under load we saw a cell whose kernel had long finished (kernel idle, its
variables defined) while nbclient kept waiting, until its per-cell timeout fired and the
reply was suddenly "found": nbclient then reported the cell as fine, 180.0 s late. The
reply had been sitting in the client's socket all along. ZeroMQ signals a socket's file
descriptor edge-triggered (see ``ZMQ_FD`` in the libzmq ``zmq_getsockopt`` manual), and
the asyncio poll behind jupyter_client's ``get_msg`` only re-checks the socket's real
state when its timeout ends. With nbclient's default "wait for the whole cell timeout", one
missed wake-up costs that whole timeout.

:class:`NotebookRunner` is nbclient's ``NotebookClient`` with one change: its kernel
client waits for messages in short slices (:data:`POLL_SLICE_S`), so a missed wake-up costs
at most one slice. The overall deadlines stay exactly nbclient's. This is our own code
because nbclient and jupyter_client have no option for it.
"""
from __future__ import annotations

import time
from pathlib import Path
from queue import Empty
from typing import Any, Awaitable, Callable

from nbclient import NotebookClient

__all__ = ["POLL_SLICE_S", "NotebookRunner", "notebook_runner", "poll_in_slices"]

POLL_SLICE_S = 1.0


def poll_in_slices(get_msg: Callable[..., Awaitable[Any]], slice_s: float = POLL_SLICE_S
                   ) -> Callable[..., Awaitable[Any]]:
    """Wrap an async ``get_msg(timeout=...)`` so it waits in slices of ``slice_s`` seconds.

    Each slice ends with the socket's own readiness check, so a message whose wake-up was
    missed is picked up within one slice. ``timeout=None`` still means "wait for ever" and
    a finite timeout still raises ``queue.Empty`` at the same deadline.

    Example:
        >>> import asyncio
        >>> calls = []
        >>> async def flaky_get_msg(timeout=None):
        ...     calls.append(timeout)
        ...     if len(calls) < 3:
        ...         raise Empty
        ...     return {"msg_type": "execute_reply"}
        >>> asyncio.run(poll_in_slices(flaky_get_msg, 0.01)(timeout=None))["msg_type"], calls
        ('execute_reply', [0.01, 0.01, 0.01])
    """
    if not isinstance(slice_s, (int, float)) or not slice_s > 0:
        raise ValueError(f"slice_s must be a positive number of seconds, got {slice_s!r}")

    async def get_msg_in_slices(timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=slice_s if remaining is None else min(slice_s, remaining))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_in_slices


class NotebookRunner(NotebookClient):
    """``nbclient.NotebookClient`` whose kernel client polls in short slices (see module doc).

    Example:
        >>> import nbformat
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
        >>> _ = NotebookRunner(nb, timeout=60, kernel_name="python3").execute()  # doctest: +SKIP
        >>> nb.cells[0].outputs[0]["text"]  # doctest: +SKIP
        '42\\n'
    """

    async def async_start_new_kernel_client(self) -> Any:
        kernel_client = await super().async_start_new_kernel_client()
        for channel in (kernel_client.shell_channel, kernel_client.iopub_channel):
            channel.get_msg = poll_in_slices(channel.get_msg)
        return kernel_client


def notebook_runner(nb: Any, folder: str | Path, timeout: int) -> NotebookRunner:
    """A :class:`NotebookRunner` for notebook node ``nb`` whose kernel starts in ``folder``.

    ``timeout`` is the per-cell limit in seconds. Call ``.execute()`` (optionally with
    ``env=...`` for the kernel's environment) to run every cell in place.

    Example:
        >>> notebook_runner(nb, "notebooks", timeout=600).execute()  # doctest: +SKIP
    """
    if not (isinstance(timeout, int) and timeout > 0):
        raise ValueError(f"timeout must be a positive whole number of seconds per cell, got {timeout!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder} to run the notebook in")
    return NotebookRunner(nb, timeout=timeout, kernel_name="python3",
                          resources={"metadata": {"path": str(folder.resolve())}})
