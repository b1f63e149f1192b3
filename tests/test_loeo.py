"""The leave-one-engine-family-out script on the smoke-sized corpus: trains, quantizes, scores, merges."""
from __future__ import annotations

import json

import pytest

from tinyml_helpers.scripts import loeo_keywords


def test_loeo_and_single_family_runs_merge_into_one_results_file(tmp_path):
    out = tmp_path / "loeo.json"
    loeo_keywords.main(["--families", "pico", "--epochs", "1", "--seeds", "0", "--out", str(out)])
    loeo_keywords.main(["--single", "espeak", "--epochs", "1", "--seeds", "0", "--out", str(out)])
    results = json.loads(out.read_text())
    pico = results["leave_one_family_out"]["pico"]
    assert pico["trained_on"] == ["espeak", "mbrola", "festival", "flite"]
    assert pico["clips"] > 0 and 0.0 <= pico["ci95"][0] <= pico["accuracy"] <= pico["ci95"][1] <= 1.0
    assert results["min_accuracy"] == pico["accuracy"]
    assert pico["interval"] == "clips" and pico["seed_accuracies"] == [pico["seeds"]["0"]["accuracy"]]
    assert pico["corpus"] == loeo_keywords.corpus_fingerprint()  # seeds of another corpus are never averaged in
    # where the held-out family's clips went: every clip counted once, in the confusion matrix and per voice
    confusion = pico["confusion"]
    assert sum(map(sum, confusion)) == pico["clips"] == sum(n for _, n in pico["voices"].values())
    assert sum(confusion[i][i] for i in range(len(confusion))) == round(pico["accuracy"] * pico["clips"])
    assert {v.split(":")[0] for v in pico["voices"]} <= {"pico", "_silence_"}
    assert pico["seeds"]["0"]["confusion"] == confusion  # one seed: the pooled tally is that seed's
    single = results["single_family"]
    assert single["trained_on"] == ["espeak"] and sorted(single["tested_on"]) == ["festival", "flite", "mbrola", "pico"]
    assert set(results["runs"]) == {"leave_one_family_out", "single_family"}


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown engine families \\['sam'\\]"):
        loeo_keywords.run(families=["sam"], epochs=1)


def _run(family, seed, accuracy, trained_on=("espeak",)):
    """One family's result as ``run`` returns it (one seed)."""
    return {family: {"trained_on": list(trained_on), "seeds": {str(seed): {family: {
        "accuracy": accuracy, "fp32_accuracy": accuracy, "ci95": [accuracy - 0.03, accuracy + 0.03], "clips": 900}}}}}


def test_parallel_runs_keep_each_others_families_and_drop_other_recipes(tmp_path):
    # Families run in parallel processes used to read-modify-write the JSON unlocked (one could
    # lose the other's families), and results of an older recipe were shown beside new ones.
    import threading

    out = tmp_path / "loeo.json"
    old = {"epochs": 30, "recipe": {"voice_copies": 0}}
    new = {"epochs": 40, "recipe": {"voice_copies": 4}}
    loeo_keywords.merge_results(out, "leave_one_family_out", _run("pico", 0, 0.5), old, {})
    threads = [threading.Thread(target=loeo_keywords.merge_results,
                                args=(out, "leave_one_family_out", _run(family, 0, acc), new, {}))
               for family, acc in (("espeak", 0.8), ("flite", 0.7), ("mbrola", 0.75))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = json.loads(out.read_text())
    assert sorted(results["leave_one_family_out"]) == ["espeak", "flite", "mbrola"]  # old-recipe pico dropped
    assert results["min_accuracy"] == 0.7
    assert all(v["epochs"] == 40 for v in results["leave_one_family_out"].values())


def test_seeds_run_in_parallel_are_averaged_with_an_interval_over_seeds(tmp_path):
    # One training run moves a family's accuracy by a few points, so the shipped figures are means
    # over seeds; seeds run in separate processes must all land, and a stored one-seed entry of the
    # same recipe (the older file format) counts as its seed.
    import threading

    out = tmp_path / "loeo.json"
    how = {"epochs": 40, "recipe": {"voice_copies": 4}}
    legacy = {"pico": {"trained_on": ["espeak"], "accuracy": 0.70, "fp32_accuracy": 0.70, "ci95": [0.67, 0.73],
                       "clips": 900, "seed": 0, **how}}
    out.write_text(json.dumps({"leave_one_family_out": legacy}))
    threads = [threading.Thread(target=loeo_keywords.merge_results,
                                args=(out, "leave_one_family_out", _run("pico", seed, acc), how, {}))
               for seed, acc in ((2, 0.76), (1, 0.73))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pico = json.loads(out.read_text())["leave_one_family_out"]["pico"]
    assert pico["seed_accuracies"] == [0.70, 0.73, 0.76] and pico["seeds_run"] == [0, 1, 2]
    assert pico["accuracy"] == pytest.approx(0.73) and pico["interval"] == "seeds"
    assert pico["ci95"][0] < 0.70 and pico["ci95"][1] > 0.76  # t over three seeds is wider than their range
    # A single-family run merges seed by seed too, per family tested.
    for seed, acc in ((0, 0.5), (1, 0.6)):
        run = {"espeak": {"trained_on": ["espeak"], "seeds": {str(seed): {
            f: {"accuracy": acc, "fp32_accuracy": acc, "ci95": [0.4, 0.7], "clips": 100} for f in ("pico", "flite")}}}}
        merged = loeo_keywords.merge_results(out, "single_family", run, how, {})
    assert merged["single_family"]["tested_on"]["flite"]["seed_accuracies"] == [0.5, 0.6]
    assert merged["single_family"]["tested_on"]["flite"]["accuracy"] == pytest.approx(0.55)


@pytest.mark.parametrize("seeds", [[], [1, 1], [-1]])
def test_bad_seed_lists_are_refused(seeds):
    with pytest.raises(ValueError, match="seeds must be distinct integers >= 0"):
        loeo_keywords.run(families=["pico"], epochs=1, seeds=seeds)


def test_seeds_of_another_corpus_are_not_averaged_in(tmp_path):
    # Seeds now merge into one mean: a run on a re-rendered corpus (same recipe) must start afresh
    # rather than be averaged with scores on clips that no longer exist.
    out = tmp_path / "loeo.json"
    recipe = {"epochs": 40, "recipe": {"voice_copies": 4}}
    loeo_keywords.merge_results(out, "leave_one_family_out", _run("pico", 0, 0.5), {**recipe, "corpus": "old"}, {})
    merged = loeo_keywords.merge_results(out, "leave_one_family_out", _run("pico", 1, 0.8),
                                         {**recipe, "corpus": "new"}, {})
    pico = merged["leave_one_family_out"]["pico"]
    assert pico["seeds_run"] == [1] and pico["accuracy"] == 0.8 and pico["corpus"] == "new"


def test_repeated_seed_on_the_command_line_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        loeo_keywords.main(["--families", "pico", "--seeds", "1", "1"])
    assert stop.value.code == 2 and "--seeds must be distinct" in capsys.readouterr().err


def test_other_networks_go_to_their_own_section_and_leave_the_phinet_figures_alone(tmp_path):
    out = tmp_path / "loeo.json"
    for network in ("phinet", "dscnn", "teacher"):
        loeo_keywords.main(["--network", network, "--families", "pico", "--epochs", "1", "--seeds", "0",
                            "--out", str(out)])
    results = json.loads(out.read_text())
    phinet = results["leave_one_family_out"]["pico"]
    assert results["min_accuracy"] == phinet["accuracy"]  # the PhiNet's, whatever the others score
    dscnn, teacher = (results["other_networks"][n]["pico"] for n in ("dscnn", "teacher"))
    assert dscnn["recipe"]["features"] == "mfcc" and teacher["recipe"]["features"] == "logmel"
    assert dscnn["clips"] == teacher["clips"] == phinet["clips"]  # the same clips, whatever the features
    assert dscnn["trained_on"] == phinet["trained_on"] and 0.0 <= dscnn["accuracy"] <= 1.0
    assert set(results["runs"]) == {"leave_one_family_out", "leave_one_family_out:dscnn",
                                    "leave_one_family_out:teacher"}


def test_single_family_baseline_with_another_network_is_refused(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        loeo_keywords.main(["--network", "dscnn", "--single", "espeak", "--out", str(tmp_path / "l.json")])
    assert stop.value.code == 2 and "--single is the PhiNet's" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        loeo_keywords.run(families=["pico"], epochs=1, network="resnet")


def test_error_tally_counts_each_clip_by_voice_and_word_and_refuses_mismatched_inputs():
    import numpy as np

    rows = [{"voice": "pico:en-US", "word": "yes", "label": "yes"},
            {"voice": "pico:en-US", "word": "yet", "label": "_unknown_"},
            {"voice": "", "word": "", "label": "_silence_"}]
    tally = loeo_keywords.error_tally(np.array([0, 0, 1]), np.array([0, 2, 1]), rows, n_classes=3)
    assert tally["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert tally["voices"] == {"pico:en-US": [1, 2], "_silence_": [1, 1]}
    assert tally["words"] == {"yes": [1, 1], "yet": [0, 1], "_silence_": [1, 1]}
    with pytest.raises(ValueError, match="same clips"):
        loeo_keywords.error_tally(np.array([0]), np.array([0, 1]), rows, n_classes=3)


def test_seeds_pool_their_tallies_and_older_runs_without_them_pool_nothing():
    tally = {"confusion": [[2, 1], [0, 3]], "voices": {"v": [5, 6]}, "words": {"yes": [5, 6]}}
    run = {"accuracy": 0.8, "fp32_accuracy": 0.8, "ci95": [0.5, 0.9], "clips": 6}
    summary = loeo_keywords.summarise_seeds({"0": {**run, **tally}, "1": {**run, **tally}})
    assert summary["confusion"] == [[4, 2], [0, 6]] and summary["voices"] == {"v": [10, 12]}
    # a seed stored before tallies were recorded: the pooled figures would not be over all seeds, so none
    assert "confusion" not in loeo_keywords.summarise_seeds({"0": {**run, **tally}, "1": run})
