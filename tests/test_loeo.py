"""The leave-one-engine-family-out script on the smoke-sized corpus: trains, quantizes, scores, merges."""
from __future__ import annotations

import json

import pytest

from tinyml_helpers.scripts import loeo_keywords


def test_loeo_and_single_family_runs_merge_into_one_results_file(tmp_path):
    out = tmp_path / "loeo.json"
    loeo_keywords.main(["--families", "pico", "--epochs", "1", "--out", str(out)])
    loeo_keywords.main(["--single", "espeak", "--epochs", "1", "--out", str(out)])
    results = json.loads(out.read_text())
    pico = results["leave_one_family_out"]["pico"]
    assert pico["trained_on"] == ["espeak", "mbrola", "festival", "flite"]
    assert pico["clips"] > 0 and 0.0 <= pico["ci95"][0] <= pico["accuracy"] <= pico["ci95"][1] <= 1.0
    assert results["min_accuracy"] == pico["accuracy"]
    single = results["single_family"]
    assert single["trained_on"] == ["espeak"] and sorted(single["tested_on"]) == ["festival", "flite", "mbrola", "pico"]
    assert set(results["runs"]) == {"leave_one_family_out", "single_family"}


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown engine families \\['sam'\\]"):
        loeo_keywords.run(families=["sam"], epochs=1)
