"""Scripts that make the files shipped in ``data/`` (run as ``python -m tinyml_helpers.scripts.<name>``).

Each one is seeded and deterministic; ``data/README.md`` records the exact command,
licence and sha256 of what it wrote.
"""
