"""Reusable code for the *Hands-on TinyML for IoT* workshop.

The notebooks in ``notebooks/`` tell the story; this package does the work. Modules are
split by concern and read top-down: computation modules (``data``, ``cost``, ``training``,
the lesson techniques, ``export``, ``deploy``) never import the presentation layer
(``plots``, ``widgets``, ``checks``).

Example:
    >>> import tinyml_helpers as th
    >>> th.config.run_mode() in ("workshop", "smoke")
    True
"""
from __future__ import annotations

from . import config, results  # noqa: F401  (light modules; the rest import on demand)
from .config import by_mode, is_smoke, run_mode, seed_everything, start_lesson  # noqa: F401
from .results import record  # noqa: F401

config.maybe_block_network()

__version__ = "0.1.0"
