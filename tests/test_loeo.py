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


def test_parallel_runs_keep_each_others_families_and_drop_other_recipes(tmp_path):
    # Families run in parallel processes used to read-modify-write the JSON unlocked (one could
    # lose the other's families), and results of an older recipe were shown beside new ones.
    import threading

    out = tmp_path / "loeo.json"
    old = {"epochs": 30, "seed": 0, "recipe": {"voice_copies": 0}}
    new = {"epochs": 40, "seed": 0, "recipe": {"voice_copies": 4}}
    loeo_keywords.merge_results(out, "leave_one_family_out", {"pico": {"accuracy": 0.5}}, old, {})
    threads = [threading.Thread(target=loeo_keywords.merge_results,
                                args=(out, "leave_one_family_out", {family: {"accuracy": acc}}, new, {}))
               for family, acc in (("espeak", 0.8), ("flite", 0.7), ("mbrola", 0.75))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = json.loads(out.read_text())
    assert sorted(results["leave_one_family_out"]) == ["espeak", "flite", "mbrola"]  # old-recipe pico dropped
    assert results["min_accuracy"] == 0.7
    assert all(v["epochs"] == 40 for v in results["leave_one_family_out"].values())
