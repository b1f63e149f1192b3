"""The voice curve: how the keyword PhiNet's accuracy on unseen voices grows with the voices it trains on.

The corpus has about a hundred training voices, most of them espeak-ng variants, and the
shipped PhiNet scores about 84 % on the test split's voices (which no model heard), short of
the 95 % target. This script asks whether more voices of the same kind would close that gap:
for each fraction f it trains the shipped recipe (``train_kws_phinet``: same network, epochs
and virtual-speaker copies) on a share f of each engine family's train voices (at least one
per family; ``data.sample_train_voices``, drawn with the training seed) and tests it, int8
through onnxruntime, on the whole test split. Three seeds per fraction by default; a seed
changes the voices drawn as well as the weights, batch order and virtual speakers.

``--only espeak`` thins only that family's voices (the others keep all theirs), which asks
*which* voices count: espeak-ng's many timbres, or the other engines' few voices.

Results go to ``data/checkpoints/kws_voice_curve.json`` (shown by notebook 01): per fraction
the voices and train clips used, each seed's scores with clip count and Wilson interval, and
the mean with a 95 % interval over the seeds. Fractions and seeds already in the file are kept
(the work can be split over processes); results of another recipe, epoch count or corpus are
dropped. Two to four minutes per model on one core::

    python -m tinyml_helpers.scripts.voice_curve_keywords                     # fractions 0.25 0.5 1, seeds 0 1 2
    python -m tinyml_helpers.scripts.voice_curve_keywords --fractions 0.5 --seeds 1   # one point (second process)
    python -m tinyml_helpers.scripts.voice_curve_keywords --fractions 0.25 --only espeak   # thin espeak-ng alone
    python -m tinyml_helpers.scripts.voice_curve_keywords --epochs 1 --fractions 0.25 --seeds 0 --out /tmp/v.json

Example:
    >>> fraction_key(0.25), fraction_key(1)
    ('0.25', '1.0')
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

RESULTS_RELPATH = "checkpoints/kws_voice_curve.json"
DEFAULT_FRACTIONS = (0.25, 0.5, 1.0)


def fraction_key(fraction: float) -> str:
    """The results file's key for a share of the training voices, or ValueError if it is not in (0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(fraction) \
            or not 0 < fraction <= 1:
        raise ValueError(f"fractions must be numbers in (0, 1] (shares of each family's train voices), got {fraction!r}")
    return repr(float(fraction))


def only_label(only: Sequence[str]) -> str:
    """The results file's key for thinning only the families ``only`` (in the corpus's order).

    Example:
        >>> only_label(["pico", "espeak"])
        'espeak+pico'
    """
    from .. import data

    every = data.engine_families()
    unknown = sorted(set(only) - set(every))
    if unknown or not only:
        raise ValueError(f"--only takes engine families from {', '.join(every)}; got {list(only)}")
    return "+".join(f for f in every if f in only)


def run(fractions: Sequence[float] = DEFAULT_FRACTIONS, seeds: Sequence[int] = (0,), epochs: int | None = None,
        smoke: bool | None = None, progress: bool = False,
        only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Train and test one model per fraction and seed: ``{fraction_key: {seed: scores}}``.

    Scores are :func:`loeo_keywords.accuracy_scores` on the test split plus ``voices`` and
    ``train_clips`` (what the model trained on) and ``val_accuracy``. ``only`` thins only those
    families' voices. ``smoke=None`` follows ``TINYML_SMOKE`` (the tests' tiny configuration).
    """
    from .. import config, data, export
    from . import train_kws_phinet as recipe
    from .loeo_keywords import accuracy_scores, check_seeds, int8_copy

    config.quiet_noisy_libraries()
    keys = [fraction_key(f) for f in fractions]
    if not keys or len(set(keys)) != len(keys):
        raise ValueError(f"fractions must be distinct, got {list(fractions)}")
    seeds = check_seeds(seeds)
    thinned = only_label(only).split("+") if only is not None else data.engine_families()
    epochs = epochs or recipe.SHIPPED_EPOCHS
    X_train, y_train = data.keyword_features("train", smoke=smoke)
    X_test, y_test = data.keyword_features("test", smoke=smoke)
    results: dict[str, dict[str, Any]] = {}
    for key in keys:
        results[key] = {}
        for seed in seeds:
            started = time.perf_counter()
            fraction = dict.fromkeys(thinned, float(key))
            loaders = recipe.kws_loaders(seed, smoke=smoke, voice_fraction=fraction)
            result, _ = recipe.fit_kws_phinet(loaders, epochs, seed, progress)
            heard = data.train_voice_mask(fraction, seed, smoke)  # calibrate on voices the model trained on
            calibration = export.calibration_subset(X_train[heard], y_train[heard], 256, seed)
            with int8_copy(result.model, calibration) as int8:
                scores, _ = accuracy_scores(result.model, int8, X_test, y_test)
            scores.update(voices=len(data.sample_train_voices(fraction, seed, smoke)), train_clips=int(heard.sum()),
                          val_accuracy=round(float(result.best_val_accuracy), 4))
            results[key][str(seed)] = scores
            print(f"fraction {key}, seed {seed}: {json.dumps(scores)} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    return results


def merge_results(out: Path, results: dict[str, dict[str, Any]], how: dict[str, Any],
                  run_info: dict[str, Any], only: str | None = None) -> dict[str, Any]:
    """Merge one run's ``results`` (from :func:`run`) into the JSON at ``out`` under a file lock.

    Seeds of a fraction run in parallel processes all land; a rerun seed replaces its old
    result; everything made with another recipe, epoch count or corpus (``how``) is dropped.
    Each fraction is re-summarised over its seeds (``loeo_keywords.summarise_seeds``). Runs
    that thinned only some families (``only``, an :func:`only_label`) go to
    ``thinned_alone[only]``, beside the curve in ``fractions``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "curve.json"
        >>> one = {"0.5": {"0": {"accuracy": 0.8, "fp32_accuracy": 0.8, "ci95": [0.78, 0.82], "clips": 900,
        ...                      "voices": 40, "train_clips": 2000}}}
        >>> merge_results(path, one, {"epochs": 1}, {})["fractions"]["0.5"]["voices"]
        40
    """
    from filelock import FileLock

    from ..files import atomic_write_json
    from .loeo_keywords import summarise_seeds

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock", timeout=600):
        existing = json.loads(out.read_text()) if out.exists() else {}
        same = all(existing.get(k) == v for k, v in how.items())
        if existing.get("fractions") and not same:
            print("dropping the stored curve: made with another recipe, epoch count or corpus")
        sections = {"fractions": existing.get("fractions", {}) if same else {},
                    "thinned_alone": existing.get("thinned_alone", {}) if same else {}}
        holder = sections["fractions"] if only is None else sections["thinned_alone"].setdefault(only, {})
        for key, new_seeds in results.items():
            seeds = {**holder.get(key, {}).get("seeds", {}), **new_seeds}
            runs = [seeds[s] for s in sorted(seeds, key=int)]
            holder[key] = {"voices": int(runs[0]["voices"]),
                           "train_clips": round(sum(r["train_clips"] for r in runs) / len(runs)),
                           **summarise_seeds(seeds), "seeds": seeds}
        def by_share(points: dict[str, Any]) -> dict[str, Any]:
            return dict(sorted(points.items(), key=lambda item: float(item[0])))

        merged = {"fractions": by_share(sections["fractions"]),
                  "thinned_alone": {name: by_share(points) for name, points in sections["thinned_alone"].items()},
                  **how, "run": run_info}
        atomic_write_json(out, merged)
    return merged


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from .. import config
    from . import train_kws_phinet as recipe
    from .loeo_keywords import check_seeds, corpus_fingerprint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS),
                        help="shares of each family's train voices (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training seeds (default: %(default)s); runs of other seeds already in --out are kept")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help=f"results JSON (default data/{RESULTS_RELPATH})")
    parser.add_argument("--only", nargs="+", default=None, metavar="FAMILY",
                        help="thin only these families' voices (the others keep all theirs)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    try:
        check_seeds(args.seeds)
        for fraction in args.fractions:
            fraction_key(fraction)
        only = only_label(args.only) if args.only is not None else None
    except ValueError as exc:
        parser.error(str(exc))
    out = args.out or config.data_dir() / RESULTS_RELPATH
    started = time.perf_counter()
    results = run(args.fractions, args.seeds, args.epochs, smoke=None, only=args.only)
    how = {"recipe": dict(recipe.KWS_RECIPE), "epochs": args.epochs or recipe.SHIPPED_EPOCHS,
           "corpus": corpus_fingerprint()}
    run_info = {"model": "keyword PhiNet (scaling.solve_phinet for scaling.KWS_TARGET), recipe of train_kws_phinet, "
                         "trained on a share of each family's train voices (data.sample_train_voices)",
                "accuracy": "int8 (onnxruntime, per-channel QOperator) on the test split; fp32_accuracy in PyTorch",
                "made_by": " ".join(["python -m tinyml_helpers.scripts.voice_curve_keywords",
                                     *(sys.argv[1:] if argv is None else argv)]),
                "seconds": round(time.perf_counter() - started, 1), "torch_version": torch.__version__}
    merge_results(out, results, how, run_info, only)
    if args.out is None:  # the shipped file: keep data/manifest.json (checked on load) in step
        from ..data.manifest import update_manifest

        update_manifest({RESULTS_RELPATH: None}, made_by="python -m tinyml_helpers.scripts.voice_curve_keywords",
                        licence="CC0-1.0",
                        what="unseen-voice accuracy of the keyword PhiNet recipe against the number of training "
                             "voices (int8, with 95 % intervals over seeds)")
    print(f"wrote {out}")
    return json.loads(out.read_text())


if __name__ == "__main__":
    main()
