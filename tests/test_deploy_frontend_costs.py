"""The shipped front-end cost table notebook 00 reads must be what the firmware measures today."""
from __future__ import annotations

import json

import pytest

from tinyml_helpers.deploy import frontend_costs as FC


def test_shipped_table_has_its_provenance():
    t = FC.load_frontend_costs()
    assert t["mcu"] == "nRF52840" and "measured" in t["source"] and "timing_for_mcu" in t["timing"]
    assert t["frame_hop_samples"] == 320 and t["infer_hop_samples"] == 4000 and t["sample_rate"] == 16000
    # the timing model charges at least one cycle per instruction
    assert t["frontend_cycles_per_frame"] >= t["frontend_instructions_per_frame"] > 10_000


def test_shipped_table_matches_a_fresh_measurement(tmp_path):
    pytest.importorskip("unicorn")
    fresh = FC.measure_frontend_costs(tmp_path, out_path=None)
    shipped = FC.load_frontend_costs()
    keys = ("frontend_instructions_per_frame", "frontend_cycles_per_frame", "overhead_instructions_per_inference",
            "overhead_cycles_per_inference", "frame_hop_samples", "infer_hop_samples")
    stale = {k: (shipped[k], fresh[k]) for k in keys if shipped[k] != fresh[k]}
    assert not stale, (f"deploy/frontend_costs.json is stale (shipped, measured): {stale}; "
                       "run python -m tinyml_helpers.scripts.measure_frontend_costs")


def test_missing_or_incomplete_tables_say_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="measure_frontend_costs"):
        FC.load_frontend_costs(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"frontend_cycles_per_frame": 1}))
    with pytest.raises(ValueError, match="lacks"):
        FC.load_frontend_costs(bad)
