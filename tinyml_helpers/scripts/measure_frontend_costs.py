"""Re-measure the on-chip front end's cost table notebook 00 reads (``deploy/frontend_costs.json``).

Usage::

    python -m tinyml_helpers.scripts.measure_frontend_costs            # rewrites the shipped table
    python -m tinyml_helpers.scripts.measure_frontend_costs --out /tmp/frontend_costs.json

Builds the streaming firmware with a stub network and counts one 20 ms log-mel frame and one
inference on the emulated Cortex-M4F with the timing model
(:func:`tinyml_helpers.deploy.frontend_costs.measure_frontend_costs`). Run it after changing
``deploy/kernels/tm_frontend.c``, ``tm_stream.c`` or the front end's tables; about ten seconds.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tinyml_helpers.deploy import frontend_costs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=frontend_costs.FRONTEND_COSTS_PATH)
    parser.add_argument("--mcu", default="nRF52840", help="catalog MCU whose flash wait states the timing model uses")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        table = frontend_costs.measure_frontend_costs(tmp, args.out, mcu=args.mcu)
    print(f"front end: {table['frontend_instructions_per_frame']:,} instructions, "
          f"{table['frontend_cycles_per_frame']:,} cycles per {table['frame_hop_samples']}-sample frame; "
          f"per-inference overhead {table['overhead_cycles_per_inference']:,} cycles")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
