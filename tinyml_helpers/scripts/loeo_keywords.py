"""Leave-one-engine-family-out test of the keyword PhiNet (also of the old single-engine recipe and of other networks).

The keyword corpus is spoken by five speech-engine families. A model that has learned the
words, not one synthesiser's sound, must recognise a family it never heard. For each family
F this script trains the keyword PhiNet (the shipped recipe of ``train_kws_phinet``) on the
*train* clips of the other four families (validating on their *val* clips), then tests it on
every clip of F (all three splits), in float32 (PyTorch) and in int8 (onnxruntime, the
course's quantization pipeline, calibrated on training clips).

``--single espeak`` instead trains on one family alone and tests on each of the others: what
the course's first, espeak-only corpus could teach a model.

``--network dscnn`` or ``--network teacher`` runs the same leave-one-family-out test with another
network on the same data (the same clips, virtual-speaker copies and epochs), each at its own
learning rate: MLPerf Tiny's DS-CNN on its 49x10 MFCCs, and the knowledge-distillation teacher,
a CNN many times the PhiNet's size. It answers whether a bigger or different network
would hear an unheard engine better; their results go to the file's ``other_networks`` section.

Every model is trained with three seeds by default (one run moves a family by several points).
Results go to ``data/checkpoints/kws_loeo.json`` (shown by notebooks 01 and 04): each seed's
scores with clip counts and Wilson intervals, and per family the mean with a 95 % interval over
the seeds. Each run also keeps the tally of its int8 answers on the held-out family (confusion
matrix, right and total per voice and per word; pooled over the seeds in the family's summary),
which says how the model goes wrong, not only how often. Runs of other seeds or families already
in the file are kept, so the work can be split over processes. Two to seven minutes per model on one core, by network and load (18 PhiNet models in all)::

    python -m tinyml_helpers.scripts.loeo_keywords                  # all five families, seeds 0 1 2
    python -m tinyml_helpers.scripts.loeo_keywords --seeds 1        # one seed (e.g. in a second process)
    python -m tinyml_helpers.scripts.loeo_keywords --single espeak  # the single-engine baseline
    python -m tinyml_helpers.scripts.loeo_keywords --network dscnn  # the same test for the DS-CNN
    python -m tinyml_helpers.scripts.loeo_keywords --epochs 1 --families pico --seeds 0 --out /tmp/l.json  # quick try

Example:
    >>> RESULTS_RELPATH
    'checkpoints/kws_loeo.json'
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

RESULTS_RELPATH = "checkpoints/kws_loeo.json"
# Three training seeds per family: one run moves a family's accuracy by a few points.
DEFAULT_SEEDS = (0, 1, 2)
# The networks compared with the keyword PhiNet, each with its own features and tuned step size:
# the DS-CNN's learning rate is the one notebook 04 found best on the validation voices, the
# teacher's is train_teacher's. Both use the PhiNet recipe's batch size, optimizer and schedule.
OTHER_NETWORKS = {"dscnn": "DS-CNN (MLPerf Tiny reference, models.dscnn) on 49x10 MFCCs",
                  "teacher": "KD teacher CNN (models.kws_cnn.KWSTeacherCNN) on 49x40 log-mels"}
NETWORKS = ("phinet", *OTHER_NETWORKS)
TALLIES_NOTE = ("confusion, voices and words: the int8 answers (confusion matrix rows true, columns predicted; "
                "{name: [right, clips]}), per seed and pooled over the seeds")


def network_recipe(network: str) -> dict[str, Any]:
    """How ``network`` is trained here: the PhiNet's shipped recipe, or the other network's own step size.

    Example:
        >>> network_recipe("dscnn")["features"], network_recipe("dscnn")["lr"]
        ('mfcc', 0.01)
    """
    from .train_kws_phinet import KWS_RECIPE

    if network == "phinet":
        return dict(KWS_RECIPE)
    if network not in OTHER_NETWORKS:
        raise ValueError(f"unknown network {network!r}; valid: {', '.join(NETWORKS)}")
    shared = {k: KWS_RECIPE[k] for k in ("batch_size", "optimizer", "schedule", "voice_copies")}
    if network == "dscnn":
        return {**shared, "features": "mfcc", "lr": 1e-2, "weight_decay": 1e-4}
    from .train_teacher import TEACHER_RECIPE

    return {**shared, "features": "logmel", "lr": TEACHER_RECIPE["lr"], "weight_decay": TEACHER_RECIPE["weight_decay"]}


def fit_network(network: str, trained_on: Sequence[str], seed: int, epochs: int,
                smoke: bool | None = None, progress: bool = False) -> tuple[Any, str]:
    """Train ``network`` on the train clips of ``trained_on``: (TrainResult, feature kind it reads).

    Example:
        >>> result, kind = fit_network("dscnn", ["pico"], seed=0, epochs=1, smoke=True)  # doctest: +SKIP
    """
    import torch

    from .. import config, data, training
    from . import train_kws_phinet as phinet

    if network == "phinet":
        result, _ = phinet.fit_kws_phinet(phinet.kws_loaders(seed, families=trained_on, smoke=smoke), epochs,
                                          seed, progress)
        return result, "logmel"
    how = network_recipe(network)  # the PhiNet recipe's data, in this network's features
    loaders = phinet.kws_loaders(seed, families=trained_on, smoke=smoke, kind=how["features"])
    n_classes = len(data.keyword_classes())
    torch.set_num_threads(1)  # small convolutions; runs are spread over processes instead
    config.seed_everything(seed)
    if network == "dscnn":
        from ..models.dscnn import DSCNN

        model = DSCNN(num_classes=n_classes)
    else:
        from ..models.kws_cnn import TEACHER_CONFIG, KWSTeacherCNN

        model = KWSTeacherCNN(**{**TEACHER_CONFIG, "n_classes": n_classes})
    result = training.train_classifier(model, loaders, epochs=epochs, lr=how["lr"], weight_decay=how["weight_decay"],
                                       optimizer=how["optimizer"], schedule=how["schedule"], seed=seed,
                                       progress=progress, save_checkpoint=False, num_classes=n_classes)
    return result, how["features"]


def family_test_set(family: str, smoke: bool | None = None,
                    kind: str = "logmel") -> tuple[np.ndarray, np.ndarray]:
    """Every clip of ``family`` (train, val and test splits): features and labels."""
    from .. import data

    parts = [(data.keyword_features(s, kind, smoke=smoke), data.keyword_families(s, smoke=smoke) == family)
             for s in data.SPLITS]
    return (np.concatenate([X[m] for (X, _), m in parts]), np.concatenate([y[m] for (_, y), m in parts]))


def family_clip_rows(family: str, smoke: bool | None = None) -> list[dict[str, str]]:
    """The ``clips.csv`` rows of every clip of ``family``, in :func:`family_test_set`'s order.

    Example:
        >>> {r["family"] for r in family_clip_rows("pico", smoke=True)}
        {'pico'}
    """
    from .. import config
    from ..data import keywords

    smoke = config.is_smoke() if smoke is None else smoke
    return [r for s in keywords.SPLITS for r in keywords.split_rows(s, smoke) if r["family"] == family]


def error_tally(predicted: np.ndarray, labels: np.ndarray, rows: Sequence[dict[str, str]],
                n_classes: int) -> dict[str, Any]:
    """Where a held-out family's clips went: confusion matrix, and (right, clips) per voice and per word.

    The confusion matrix has true classes as rows and predictions as columns, in
    ``data.keyword_classes()`` order; words are the spoken words (an ``_unknown_`` clip's word), so
    near misses such as *yet* show up by name. ``_silence_`` clips count under that name as voice and word.

    Example:
        >>> rows = [{"voice": "pico:en-US", "word": "yes"}, {"voice": "pico:en-US", "word": "yet"}]
        >>> t = error_tally(np.array([0, 0]), np.array([0, 1]), rows, n_classes=2)
        >>> t["confusion"], t["voices"], t["words"]
        ([[1, 0], [1, 0]], {'pico:en-US': [1, 2]}, {'yes': [1, 1], 'yet': [0, 1]})
    """
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if not (len(predicted) == len(labels) == len(rows)):
        raise ValueError(f"predictions ({len(predicted)}), labels ({len(labels)}) and clip rows ({len(rows)}) "
                         "must describe the same clips")
    confusion = np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes)
    tally: dict[str, Any] = {"confusion": confusion.reshape(n_classes, n_classes).tolist(), "voices": {}, "words": {}}
    for row, right in zip(rows, (predicted == labels).tolist()):
        noise_only = row.get("label", "_silence_")  # _silence_ clips have neither voice nor word
        _count(tally["voices"], row["voice"] or noise_only, int(right), 1)
        _count(tally["words"], row["word"] or noise_only, int(right), 1)
    return tally


def _count(tally: dict[str, list[int]], name: str, right: int, clips: int) -> None:
    """Add ``right`` of ``clips`` answers to ``tally[name]`` (a ``[right, clips]`` pair)."""
    counts = tally.setdefault(name, [0, 0])
    counts[0] += right
    counts[1] += clips


def pooled_tally(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The :func:`error_tally` fields of several seed runs, summed (empty if any run lacks them).

    Example:
        >>> a = {"confusion": [[1, 0], [1, 0]], "voices": {"v": [1, 2]}, "words": {"yes": [1, 1], "yet": [0, 1]}}
        >>> pooled_tally([a, a])["voices"]
        {'v': [2, 4]}
    """
    if not runs or not all("confusion" in r for r in runs):
        return {}
    pooled: dict[str, Any] = {"confusion": np.sum([r["confusion"] for r in runs], axis=0).tolist()}
    for key in ("voices", "words"):
        pooled[key] = {}
        for r in runs:
            for name, (right, clips) in r[key].items():
                _count(pooled[key], name, int(right), int(clips))
    return pooled


def calibration_clips(families: Sequence[str], seed: int = 0, n: int = 256,
                      smoke: bool | None = None, kind: str = "logmel") -> np.ndarray:
    """Clean training features of ``families``, class-stratified, for int8 calibration."""
    from .. import data, export

    X, y = data.keyword_features("train", kind, smoke=smoke)
    mask = np.isin(data.keyword_families("train", smoke=smoke), list(families))
    return export.calibration_subset(X[mask], y[mask], n, seed)


def score_families(model: Any, calibration: np.ndarray, families: Sequence[str],
                   smoke: bool | None = None, kind: str = "logmel") -> dict[str, dict[str, Any]]:
    """Quantize ``model`` to int8 once, then score it (and its float self) on every clip of each family."""
    scores = {}
    with int8_copy(model, calibration) as int8:
        for family in families:
            X, y = family_test_set(family, smoke, kind)
            scores[family], logits = accuracy_scores(model, int8, X, y)
            scores[family].update(error_tally(logits.argmax(axis=1), y, family_clip_rows(family, smoke),
                                              logits.shape[1]))
    return scores


@contextlib.contextmanager
def int8_copy(model: Any, calibration: np.ndarray) -> Iterator[Path]:
    """A temporary int8 ONNX copy of ``model`` (the course's pipeline, calibrated on ``calibration``).

    Example:
        >>> with int8_copy(model, calibration) as int8:  # doctest: +SKIP
        ...     scores, logits = accuracy_scores(model, int8, X, y)
    """
    from .. import export

    with tempfile.TemporaryDirectory(prefix="tinyml-kws-int8-") as tmp:
        fp32 = export.export_onnx(model, Path(tmp) / "m.onnx", tuple(calibration.shape[1:]))
        yield export.quantize_onnx(fp32, Path(tmp) / "m_int8.onnx", calibration)


def accuracy_scores(model: Any, int8: Path, X: np.ndarray, y: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """The int8 copy's accuracy on ``(X, y)`` with its Wilson interval, the float model's, and the int8 logits.

    Example:
        >>> scores, logits = accuracy_scores(model, int8, X, y)  # doctest: +SKIP
        >>> sorted(scores)  # doctest: +SKIP
        ['accuracy', 'ci95', 'clips', 'fp32_accuracy']
    """
    from .. import export
    from ..stats import wilson_interval

    logits = export.onnx_logits(int8, X)
    right = export.accuracy(logits, y)
    return ({"clips": int(len(y)), "fp32_accuracy": round(export.accuracy(export.torch_logits(model, X), y), 4),
             "accuracy": round(right, 4),
             "ci95": [round(v, 4) for v in wilson_interval(round(right * len(y)), len(y))]}, logits)


def run(families: Sequence[str] | None = None, epochs: int | None = None, seeds: Sequence[int] = (0,),
        single: str | None = None, progress: bool = True, smoke: bool | None = None,
        network: str = "phinet") -> dict[str, Any]:
    """Train and test one model per held-out family and seed (or single-family models); return results.

    Returns ``{key: {"trained_on": [...], "seeds": {seed: {family tested: scores}}}}`` with one key
    per held-out family (or the single family). ``smoke=None`` follows ``TINYML_SMOKE`` (the tests'
    tiny configuration). A seed changes everything random in the recipe: initial weights, batch
    order and the virtual speakers of the copies. ``network`` is one of :data:`NETWORKS`.
    """
    from .. import config, data
    from . import train_kws_phinet as recipe

    config.quiet_noisy_libraries()
    every = data.engine_families()
    unknown = [f for f in list(families or []) + ([single] if single else []) if f not in every]
    if unknown:
        raise ValueError(f"unknown engine families {unknown}; the corpus has {', '.join(every)}")
    seeds = check_seeds(seeds)
    network_recipe(network)  # an unknown network fails here, before any training
    epochs = epochs or recipe.SHIPPED_EPOCHS
    # (families trained on, families tested on) per model
    plans = ({single: ([single], [f for f in every if f != single])} if single else
             {f: ([g for g in every if g != f], [f]) for f in (families or every)})
    results: dict[str, Any] = {}
    for key, (trained_on, tested_on) in plans.items():
        results[key] = {"trained_on": trained_on, "seeds": {}}
        for seed in seeds:
            started = time.perf_counter()
            result, kind = fit_network(network, trained_on, seed, epochs, smoke, progress)
            scores = score_families(result.model, calibration_clips(trained_on, seed, smoke=smoke, kind=kind),
                                    tested_on, smoke, kind)
            for family in tested_on:
                scores[family]["val_accuracy"] = round(float(result.best_val_accuracy), 4)
            results[key]["seeds"][str(seed)] = scores
            headline = {f: {k: v for k, v in r.items() if k not in ("confusion", "voices", "words")}
                        for f, r in scores.items()}
            print(f"{key}, seed {seed}: {json.dumps(headline)} ({time.perf_counter() - started:.0f} s)", flush=True)
    return results


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as a list of ints, or ValueError unless they are distinct integers >= 0.

    Example:
        >>> check_seeds((0, 1, 2))
        [0, 1, 2]
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct integers >= 0, got {seeds}")
    return seeds


def corpus_fingerprint() -> str:
    """A short digest of the bundled keyword corpus's files (changes when it is re-rendered).

    Example:
        >>> len(corpus_fingerprint())
        16
    """
    from ..data import keywords

    return keywords._dataset_fingerprint(keywords.keywords_dir())[:16]


def summarise_seeds(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One family's scores over training seeds: means, and a 95 % interval over the seeds.

    With two or more seeds ``ci95`` is the Student-t interval of the mean over seeds (what
    retraining moves, ``interval: "seeds"``); with one seed it is that run's Wilson interval over
    the clips (``interval: "clips"``).

    Example:
        >>> s = summarise_seeds({"0": {"accuracy": 0.70, "fp32_accuracy": 0.71, "ci95": [0.67, 0.73], "clips": 900},
        ...                      "1": {"accuracy": 0.74, "fp32_accuracy": 0.74, "ci95": [0.71, 0.77], "clips": 900}})
        >>> s["accuracy"], s["interval"], s["seed_accuracies"]
        (0.72, 'seeds', [0.7, 0.74])
    """
    from ..stats import seed_mean_interval

    if not per_seed:
        raise ValueError("no seeds to summarise")
    order = sorted(per_seed, key=int)
    runs = [per_seed[s] for s in order]
    accuracies = [float(r["accuracy"]) for r in runs]
    mean, low, high = seed_mean_interval(accuracies)
    summary = {"clips": int(runs[0]["clips"]), "accuracy": round(mean, 4),
               "fp32_accuracy": round(float(np.mean([r["fp32_accuracy"] for r in runs])), 4),
               "seed_accuracies": [round(a, 4) for a in accuracies], "seeds_run": [int(s) for s in order]}
    if len(runs) > 1:
        summary.update(ci95=[round(max(low, 0.0), 4), round(min(high, 1.0), 4)], interval="seeds")
    else:
        summary.update(ci95=list(runs[0]["ci95"]), interval="clips")
    if all("val_accuracy" in r for r in runs):
        summary["val_accuracy"] = round(float(np.mean([r["val_accuracy"] for r in runs])), 4)
    summary.update(pooled_tally(runs))  # int8 errors of all seeds together: where they go
    return summary


def _seed_runs(entry: dict[str, Any]) -> dict[str, Any]:
    """The per-seed scores of a stored family entry (older files kept one run and its seed)."""
    if "seeds" in entry:
        return dict(entry["seeds"])
    if "accuracy" not in entry:
        return {}
    keys = ("clips", "accuracy", "fp32_accuracy", "ci95", "val_accuracy")
    return {str(entry.get("seed", 0)): {k: entry[k] for k in keys if k in entry}}


def _with_new_seeds(stored: dict[str, Any], new_seeds: dict[str, Any], family: str) -> dict[str, Any]:
    """A family's stored seed runs plus this run's (which replace a rerun seed), summarised."""
    seeds = _seed_runs(stored)
    seeds.update({s: scores[family] for s, scores in new_seeds.items()})
    return {**summarise_seeds(seeds), "seeds": seeds}


def merge_results(out: Path, section: str, results: dict[str, Any], how: dict[str, Any],
                  run_info: dict[str, Any], network: str = "phinet") -> dict[str, Any]:
    """Merge one run's ``results`` (from :func:`run`) into the JSON at ``out`` under a lock.

    Families and seeds are often run in parallel processes (``--families`` / ``--seeds``
    subsets), so the read-merge-write holds a file lock and merges seed by seed: no process loses
    another's runs. A result made with another recipe or epoch count (``how``) is dropped rather
    than averaged with the new ones, and ``min_accuracy`` is over the families of the current
    recipe only. Each family's figures are re-summarised over all its seeds (:func:`summarise_seeds`).
    Another network's leave-one-family-out results go to ``other_networks.<network>``; ``min_accuracy``
    stays the PhiNet's.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "loeo.json"
        >>> run = {"pico": {"trained_on": ["espeak"], "seeds": {"0": {"pico": {"accuracy": 0.7,
        ...        "fp32_accuracy": 0.7, "ci95": [0.6, 0.8], "clips": 10}}}}}
        >>> merge_results(path, "leave_one_family_out", run, {"epochs": 1}, {})["min_accuracy"]
        0.7
    """
    from filelock import FileLock

    from ..files import atomic_write_json

    if network != "phinet" and section == "single_family":
        raise ValueError("the single-family baseline is kept for the PhiNet only")
    network_recipe(network)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock", timeout=600):
        existing = json.loads(out.read_text()) if out.exists() else {}
        holder = existing if network == "phinet" else existing.setdefault("other_networks", {})
        slot = section if network == "phinet" else network
        stored = holder.get(slot, {})
        if section == "single_family":
            (key, new), = results.items()
            same = stored.get("trained_on") == new["trained_on"] and all(stored.get(k) == how[k] for k in how)
            tested = {}
            for family in new["seeds"][next(iter(new["seeds"]))]:
                tested[family] = _with_new_seeds(stored.get("tested_on", {}).get(family, {}) if same else {},
                                                 new["seeds"], family)
            merged: dict[str, Any] = {"trained_on": new["trained_on"], "tested_on": tested, **how}
        else:
            kept = {f: v for f, v in stored.items() if all(v.get(k) == how[k] for k in how)}
            dropped = sorted(set(stored) - set(kept) - set(results))
            if dropped:
                print(f"dropping results of {', '.join(dropped)}: made with another recipe or corpus; rerun those families")
            merged = dict(kept)
            for family, new in results.items():
                merged[family] = {"trained_on": new["trained_on"],
                                  **_with_new_seeds(kept.get(family, {}), new["seeds"], family), **how}
        holder[slot] = merged
        existing.setdefault("runs", {})[section if network == "phinet" else f"{section}:{network}"] = run_info
        if network == "phinet" and section != "single_family" and merged:
            existing["min_accuracy"] = min(v["accuracy"] for v in merged.values())
        atomic_write_json(out, existing)
    return existing


def refresh_manifest() -> None:
    """Record the shipped results file's new sha256 in ``data/manifest.json``."""
    from ..data.manifest import update_manifest

    update_manifest({RESULTS_RELPATH: None}, made_by="python -m tinyml_helpers.scripts.loeo_keywords",
                    licence="CC0-1.0",
                    what="leave-one-engine-family-out and espeak-only accuracies of the keyword PhiNet recipe "
                         "(int8, with 95 % intervals)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from .. import config
    from . import train_kws_phinet as recipe

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=None, help="families to leave out (default: all)")
    parser.add_argument("--single", default=None, help="train on this family alone, test on the others")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                        help="training seeds (default: %(default)s); runs of other seeds already in --out are kept")
    parser.add_argument("--out", type=Path, default=None, help=f"results JSON (default data/{RESULTS_RELPATH})")
    parser.add_argument("--network", default="phinet", choices=NETWORKS,
                        help="network to train (default: %(default)s, the shipped keyword PhiNet)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.single and args.network != "phinet":
        parser.error("--single is the PhiNet's single-engine baseline; leave out --network")
    out = args.out or config.data_dir() / RESULTS_RELPATH
    started = time.perf_counter()
    try:
        check_seeds(args.seeds)
    except ValueError as exc:
        parser.error(f"--{exc}")
    results = run(args.families, args.epochs, args.seeds, args.single, smoke=None, network=args.network)
    # Seeds are averaged only over runs of one recipe on one corpus: a re-rendered corpus starts afresh.
    how = {"recipe": network_recipe(args.network), "epochs": args.epochs or recipe.SHIPPED_EPOCHS,
           "corpus": corpus_fingerprint()}
    section = "single_family" if args.single else "leave_one_family_out"
    run_info = {
        "model": OTHER_NETWORKS.get(args.network, "keyword PhiNet (scaling.solve_phinet for scaling.KWS_TARGET), "
                                                  "recipe of train_kws_phinet"), **how,
        "accuracy": "int8 (onnxruntime, per-channel QOperator) on every clip of the family; fp32_accuracy in PyTorch",
        "tallies": TALLIES_NOTE,
        "made_by": " ".join(["python -m tinyml_helpers.scripts.loeo_keywords",
                             *(sys.argv[1:] if argv is None else argv)]),
        "seconds": round(time.perf_counter() - started, 1), "torch_version": torch.__version__}
    merge_results(out, section, results, how, run_info, args.network)
    if args.out is None:  # the shipped file: keep data/manifest.json (checked on load) in step
        refresh_manifest()
    print(f"wrote {out}")
    return json.loads(out.read_text())


if __name__ == "__main__":
    main()
