"""Re-measure the kernel cost table the solver budgets with (``deploy/kernel_costs.json``).

Usage::

    python -m tinyml_helpers.scripts.measure_kernel_costs            # rewrites the shipped table
    python -m tinyml_helpers.scripts.measure_kernel_costs --out /tmp/costs.json

Deploys random-weight PhiNets of several widths and the DS-CNN on the emulated Cortex-M4
and fits cycles per MAC / per output / per layer for each layer kind
(:func:`tinyml_helpers.deploy.kernel_costs.measure_cost_table`). Run it after changing a
kernel in ``deploy/kernels/``; about a minute on one core.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tinyml_helpers.deploy import kernel_costs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=kernel_costs.COST_TABLE_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        table = kernel_costs.measure_cost_table(tmp, args.out)
    for kind, k in table["kinds"].items():
        print(f"{kind:8s} {k['cycles_per_mac']:6.3f} cyc/MAC {k['cycles_per_output']:7.2f} cyc/output "
              f"{k['cycles_per_layer']:8.0f} cyc/layer  ({k['layers']} layers, max error {k['max_rel_error']:.1%})")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
