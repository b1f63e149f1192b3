"""Leave-one-engine-family-out test of the keyword PhiNet (and the old single-engine recipe).

The keyword corpus is spoken by five speech-engine families. A model that has learned the
words, not one synthesiser's sound, must recognise a family it never heard. For each family
F this script trains the keyword PhiNet (the shipped recipe of ``train_kws_phinet``) on the
*train* clips of the other four families (validating on their *val* clips), then tests it on
every clip of F (all three splits), in float32 (PyTorch) and in int8 (onnxruntime, the
course's quantization pipeline, calibrated on training clips).

``--single espeak`` instead trains on one family alone and tests on each of the others: what
the course's first, espeak-only corpus could teach a model.

Results go to ``data/checkpoints/kws_loeo.json`` (shown by notebooks 01 and 04) with the clip
counts and 95 % Wilson intervals. Run (about 5 minutes per family on one core)::

    python -m tinyml_helpers.scripts.loeo_keywords                  # all five families
    python -m tinyml_helpers.scripts.loeo_keywords --single espeak  # the single-engine baseline
    python -m tinyml_helpers.scripts.loeo_keywords --epochs 1 --families pico --out /tmp/l.json  # quick try

Example:
    >>> RESULTS_RELPATH
    'checkpoints/kws_loeo.json'
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

RESULTS_RELPATH = "checkpoints/kws_loeo.json"


def family_test_set(family: str, smoke: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every clip of ``family`` (train, val and test splits): features and labels."""
    from .. import data

    parts = [(data.keyword_features(s, smoke=smoke), data.keyword_families(s, smoke=smoke) == family)
             for s in data.SPLITS]
    return (np.concatenate([X[m] for (X, _), m in parts]), np.concatenate([y[m] for (_, y), m in parts]))


def calibration_clips(families: Sequence[str], seed: int = 0, n: int = 256,
                      smoke: bool | None = None) -> np.ndarray:
    """Clean training features of ``families``, class-stratified, for int8 calibration."""
    from .. import data, export

    X, y = data.keyword_features("train", smoke=smoke)
    mask = np.isin(data.keyword_families("train", smoke=smoke), list(families))
    return export.calibration_subset(X[mask], y[mask], n, seed)


def score_families(model: Any, calibration: np.ndarray, families: Sequence[str],
                   smoke: bool | None = None) -> dict[str, dict[str, Any]]:
    """Quantize ``model`` to int8 once, then score it (and its float self) on every clip of each family."""
    from .. import export
    from ..stats import wilson_interval

    scores = {}
    with tempfile.TemporaryDirectory(prefix="tinyml-loeo-") as tmp:
        fp32 = export.export_onnx(model, Path(tmp) / "m.onnx", tuple(calibration.shape[1:]))
        int8 = export.quantize_onnx(fp32, Path(tmp) / "m_int8.onnx", calibration)
        for family in families:
            X, y = family_test_set(family, smoke)
            right = export.accuracy(export.onnx_logits(int8, X), y)
            scores[family] = {"clips": int(len(y)),
                              "fp32_accuracy": round(export.accuracy(export.torch_logits(model, X), y), 4),
                              "accuracy": round(right, 4),
                              "ci95": [round(v, 4) for v in wilson_interval(round(right * len(y)), len(y))]}
    return scores


def run(families: Sequence[str] | None = None, epochs: int | None = None, seed: int = 0,
        single: str | None = None, progress: bool = True, smoke: bool | None = None) -> dict[str, Any]:
    """Train and test one model per held-out family (or one single-family model); return results.

    ``smoke=None`` follows ``TINYML_SMOKE`` (the tests' tiny configuration).
    """
    from .. import config, data
    from . import train_kws_phinet as recipe

    config.quiet_noisy_libraries()
    every = data.engine_families()
    unknown = [f for f in list(families or []) + ([single] if single else []) if f not in every]
    if unknown:
        raise ValueError(f"unknown engine families {unknown}; the corpus has {', '.join(every)}")
    epochs = epochs or recipe.SHIPPED_EPOCHS
    # (families trained on, families tested on) per model
    plans = ({single: ([single], [f for f in every if f != single])} if single else
             {f: ([g for g in every if g != f], [f]) for f in (families or every)})
    results: dict[str, Any] = {}
    for key, (trained_on, tested_on) in plans.items():
        started = time.perf_counter()
        result, _ = recipe.fit_kws_phinet(recipe.kws_loaders(seed, families=trained_on, smoke=smoke), epochs,
                                          seed, progress)
        scores = score_families(result.model, calibration_clips(trained_on, seed, smoke=smoke), tested_on, smoke)
        if single:
            results = {"trained_on": trained_on, "tested_on": scores}
        else:
            results[key] = {"trained_on": trained_on, **scores[key],
                            "val_accuracy": round(float(result.best_val_accuracy), 4)}
        print(f"{key}: {json.dumps(results if single else results[key])} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return results


def merge_results(out: Path, section: str, results: dict[str, Any], how: dict[str, Any],
                  run_info: dict[str, Any]) -> dict[str, Any]:
    """Merge one run's ``results`` into the JSON at ``out`` under a lock; return the merged file.

    Families are often run in parallel processes (``--families`` subsets), so the read-merge-write
    holds a file lock: no process loses another's families. A family result made with another
    recipe, epoch count or seed (``how``) is dropped rather than shown beside the new ones, and
    ``min_accuracy`` is over the families of the current recipe only.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "loeo.json"
        >>> merged = merge_results(path, "leave_one_family_out", {"pico": {"accuracy": 0.7}}, {"epochs": 1}, {})
        >>> merged["min_accuracy"]
        0.7
    """
    from filelock import FileLock

    from ..files import atomic_write_json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock", timeout=600):
        existing = json.loads(out.read_text()) if out.exists() else {}
        if section == "single_family":
            merged = {**results, **how}
        else:
            kept = {f: v for f, v in existing.get(section, {}).items()
                    if all(v.get(k) == how[k] for k in how)}
            dropped = sorted(set(existing.get(section, {})) - set(kept) - set(results))
            if dropped:
                print(f"dropping results of {', '.join(dropped)}: made with another recipe; rerun those families")
            merged = {**kept, **{f: {**v, **how} for f, v in results.items()}}
        existing[section] = merged
        existing.setdefault("runs", {})[section] = run_info
        if section != "single_family" and merged:
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help=f"results JSON (default data/{RESULTS_RELPATH})")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be >= 1")
    out = args.out or config.data_dir() / RESULTS_RELPATH
    started = time.perf_counter()
    results = run(args.families, args.epochs, args.seed, args.single, smoke=None)
    how = {"recipe": recipe.KWS_RECIPE, "epochs": args.epochs or recipe.SHIPPED_EPOCHS, "seed": args.seed}
    section = "single_family" if args.single else "leave_one_family_out"
    run_info = {
        "model": "keyword PhiNet (scaling.solve_phinet for scaling.KWS_TARGET), recipe of train_kws_phinet", **how,
        "accuracy": "int8 (onnxruntime, per-channel QOperator) on every clip of the family; fp32_accuracy in PyTorch",
        "made_by": "python -m tinyml_helpers.scripts.loeo_keywords" + (" " + " ".join(argv) if argv else ""),
        "seconds": round(time.perf_counter() - started, 1), "torch_version": torch.__version__}
    merge_results(out, section, results, how, run_info)
    if args.out is None:  # the shipped file: keep data/manifest.json (checked on load) in step
        refresh_manifest()
    print(f"wrote {out}")
    return json.loads(out.read_text())


if __name__ == "__main__":
    main()
