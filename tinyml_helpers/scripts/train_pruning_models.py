"""Train the three models notebook 02 (pruning) starts from, and ship them in ``data/checkpoints/``.

* ``pruning_dscnn.pt``: the MLPerf Tiny DS-CNN (:class:`tinyml_helpers.models.dscnn.DSCNN`)
  on the bundled synthetic keywords, 49x10 MFCC input (MLPerf Tiny's front end).
* ``pruning_transformer.pt`` and ``pruning_transformer_layerdrop.pt``: the same small
  :class:`~tinyml_helpers.models.transformer.KeywordTransformer` on 49x40 log-mel features,
  trained without and with LayerDrop (Fan et al. 2019), same seed, same epochs.

Training these takes several minutes on two CPU cores, more than the notebook's 3-minute
budget, hence the shipped checkpoints. Everything is seeded: same code, same data, same
files. Weights are fp32 state_dicts (loaded with ``weights_only=True``); their sha256 and
size go to ``data/manifest.json``.

Run:
    python -m tinyml_helpers.scripts.train_pruning_models
    python -m tinyml_helpers.scripts.train_pruning_models --quick   # smoke-size check, writes to artifacts/
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from .. import config
from ..files import atomic_path

MADE_BY = "python -m tinyml_helpers.scripts.train_pruning_models"


def _train(name: str, model: torch.nn.Module, kind: str, epochs: int, lr: float, smoke: bool) -> tuple[torch.nn.Module, float]:
    from ..data import keyword_loaders
    from ..training import evaluate, train_classifier

    loaders = keyword_loaders(batch_size=64, kind=kind, smoke=smoke)
    start = time.time()
    result = train_classifier(model, loaders, epochs=epochs, lr=lr, weight_decay=1e-4 if kind == "mfcc" else 0.0,
                              optimizer="adamw", schedule="cosine", seed=0, progress=True,
                              run_name=f"pruning_{name}", save_checkpoint=False)
    acc = evaluate(result.model, loaders["test"]).accuracy
    print(f"{name}: test accuracy {acc:.4f} (best val {result.best_val_accuracy:.4f} at epoch "
          f"{result.best_epoch}), {time.time() - start:.0f} s")
    return result.model.eval(), float(acc)


def main(argv: list[str] | None = None) -> dict[str, float]:
    from ..models.dscnn import DSCNN
    from ..models.transformer import KeywordTransformer
    from ..pruning import CHECKPOINTS, DSCNN_KWARGS, TRANSFORMER_KWARGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke data, 1 epoch, write to artifacts/")
    parser.add_argument("--epochs-dscnn", type=int, default=40)
    parser.add_argument("--epochs-transformer", type=int, default=30)
    parser.add_argument("--only", choices=sorted(CHECKPOINTS), default=None, help="train one model only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the machines are shared; run the three models in parallel with --only
    config.quiet_noisy_libraries()
    out_dir = config.artifacts_dir("checkpoints", "pruning_quick") if args.quick else config.data_dir() / "checkpoints"
    e_cnn, e_tf = (1, 1) if args.quick else (args.epochs_dscnn, args.epochs_transformer)
    accuracies: dict[str, float] = {}
    for name in sorted(CHECKPOINTS):
        if args.only and name != args.only:
            continue
        config.seed_everything(0)
        if name == "dscnn":
            model, acc = _train(name, DSCNN(**DSCNN_KWARGS), "mfcc", e_cnn, 3e-3, args.quick)
        else:
            layerdrop = CHECKPOINTS[name]["layerdrop"]
            model, acc = _train(name, KeywordTransformer(**dict(TRANSFORMER_KWARGS, layerdrop=layerdrop)),
                                "logmel", e_tf, 1e-3, args.quick)
        accuracies[name] = acc
        target = out_dir / CHECKPOINTS[name]["file"]
        with atomic_path(target, suffix=".pt") as tmp:
            torch.save({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, tmp)
        print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    if not args.quick:
        from ..data.manifest import update_manifest

        update_manifest({f"checkpoints/{CHECKPOINTS[n]['file']}": None for n in accuracies}, made_by=MADE_BY,
                        licence="CC0-1.0", what={f"checkpoints/{CHECKPOINTS[n]['file']}": CHECKPOINTS[n]["what"]
                                                 for n in accuracies})
    print(json.dumps(accuracies, indent=2))
    return accuracies


if __name__ == "__main__":
    main()
