"""The voice curve: training on a share of the voices (data.sample_train_voices) and its script."""
from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from tinyml_helpers import data
from tinyml_helpers.data import keywords
from tinyml_helpers.scripts import voice_curve_keywords as curve


def _train_voices_by_family() -> dict[str, set[str]]:
    by_family: dict[str, set[str]] = {}
    for row in keywords.split_rows("train", True):
        if row["voice"]:
            by_family.setdefault(row["family"], set()).add(row["voice"])
    return by_family


def test_each_family_keeps_its_share_of_voices_and_at_least_one():
    by_family = _train_voices_by_family()
    for fraction in (0.01, 0.25, 0.5, 1.0):
        kept = data.sample_train_voices(fraction, seed=0, smoke=True)
        for family, voices in by_family.items():
            mine = [v for v in kept if v in voices]
            assert len(mine) == max(1, math.ceil(fraction * len(voices))), (fraction, family)
    assert set(data.sample_train_voices(1.0, smoke=True)) == set().union(*by_family.values())


def test_the_seed_picks_which_voices_not_how_many():
    a, b = (data.sample_train_voices(0.5, seed=s, smoke=True) for s in (0, 1))
    assert len(a) == len(b) and a != b
    assert a == data.sample_train_voices(0.5, seed=0, smoke=True)  # reproducible


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_fractions_are_refused_with_the_valid_range(fraction):
    with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\]"):
        data.sample_train_voices(fraction, smoke=True)


def test_voice_mask_keeps_the_silence_clips_and_only_the_drawn_voices():
    rows = keywords.split_rows("train", True)
    mask = data.train_voice_mask(0.25, seed=3, smoke=True)
    kept = set(data.sample_train_voices(0.25, seed=3, smoke=True))
    assert len(mask) == len(rows) and 0 < mask.sum() < len(rows)
    assert all(m == (r["voice"] in kept or not r["voice"]) for m, r in zip(mask, rows))


def test_loaders_train_on_the_drawn_voices_only():
    full = data.keyword_loaders(batch_size=8, smoke=True)
    part = data.keyword_loaders(batch_size=8, smoke=True, voice_fraction=0.25, seed=3)
    assert len(part["train"].dataset) == data.train_voice_mask(0.25, seed=3, smoke=True).sum()
    assert len(part["train"].dataset) < len(full["train"].dataset)
    assert len(part["test"].dataset) == len(full["test"].dataset)  # the test voices stay whole
    with pytest.raises(ValueError, match="fraction must be a number"):
        data.keyword_loaders(batch_size=8, smoke=True, voice_fraction=0.0)
    with pytest.raises(ValueError, match="needs dataset='synthetic'"):  # refused before any download is tried
        data.keyword_loaders(batch_size=8, dataset="speech_commands", voice_fraction=0.5)


def test_script_trains_scores_and_merges_seeds_and_thinnings_under_one_recipe(tmp_path):
    # one file, three models: two seeds of a curve point, and one thinning espeak-ng alone beside it
    out = tmp_path / "curve.json"
    curve.main(["--epochs", "1", "--fractions", "0.25", "--seeds", "0", "1", "--out", str(out)])
    curve.main(["--epochs", "1", "--fractions", "0.25", "--seeds", "0", "--only", "espeak", "--out", str(out)])
    results = json.loads(out.read_text())
    low, alone = results["fractions"]["0.25"], results["thinned_alone"]["espeak"]["0.25"]
    assert list(results["fractions"]) == ["0.25"]  # the thinning did not touch the curve
    assert low["seeds_run"] == [0, 1] and low["interval"] == "seeds" and alone["interval"] == "clips"
    assert low["voices"] == len(data.sample_train_voices(0.25, smoke=True))
    assert alone["voices"] == len(data.sample_train_voices({"espeak": 0.25}, smoke=True))
    assert low["voices"] < alone["voices"] < len(data.sample_train_voices(1.0, smoke=True))
    assert low["train_clips"] < alone["train_clips"] < len(data.keyword_features("train", smoke=True)[1])
    assert 0 <= low["ci95"][0] <= low["accuracy"] <= low["ci95"][1] <= 1
    assert low["clips"] == alone["clips"] == len(data.keyword_features("test", smoke=True)[1])
    assert results["epochs"] == 1 and results["corpus"]
    with pytest.raises(SystemExit):
        curve.main(["--only", "sam", "--out", str(out)])


def _one(fraction, seed, accuracy):
    return {fraction: {str(seed): {"accuracy": accuracy, "fp32_accuracy": accuracy, "ci95": [accuracy - 0.02,
            accuracy + 0.02], "clips": 900, "voices": 40, "train_clips": 2000}}}


def test_parallel_seeds_all_land_and_another_recipe_is_dropped(tmp_path):
    out = tmp_path / "curve.json"
    curve.merge_results(out, _one("0.5", 0, 0.5), {"epochs": 30}, {})
    threads = [threading.Thread(target=curve.merge_results, args=(out, _one("0.5", s, acc), {"epochs": 40}, {}))
               for s, acc in ((0, 0.80), (1, 0.82), (2, 0.84))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    point = json.loads(out.read_text())["fractions"]["0.5"]
    assert point["seeds_run"] == [0, 1, 2] and point["accuracy"] == pytest.approx(0.82)  # the epochs-30 run is gone
    assert point["ci95"][0] < 0.82 < point["ci95"][1]


@pytest.mark.parametrize("argv", [["--fractions", "0"], ["--fractions", "nan"], ["--fractions", "1.2"],
                                  ["--seeds", "0", "0"], ["--epochs", "0"]])
def test_bad_command_lines_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        curve.main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_repeated_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions must be distinct"):
        curve.run([0.5, 0.5], seeds=[0], epochs=1)


def test_a_share_per_family_thins_those_families_only():
    by_family = _train_voices_by_family()
    kept = set(data.sample_train_voices({"espeak": 0.25}, seed=2, smoke=True))
    for family, voices in by_family.items():
        expected = max(1, math.ceil(0.25 * len(voices))) if family == "espeak" else len(voices)
        assert len(kept & voices) == expected, family
    # thinning every family through the mapping draws the same voices as one share for all
    every = dict.fromkeys(data.engine_families(), 0.5)
    assert data.sample_train_voices(every, seed=4, smoke=True) == data.sample_train_voices(0.5, seed=4, smoke=True)


@pytest.mark.parametrize("fraction", [{"sam": 0.5}, {}, {"espeak": 0.0}, {"espeak": float("nan")}])
def test_bad_per_family_shares_are_refused(fraction):
    with pytest.raises(ValueError, match="fraction"):
        data.sample_train_voices(fraction, smoke=True)
