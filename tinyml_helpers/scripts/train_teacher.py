"""Train the knowledge-distillation teacher and ship it as ``data/checkpoints/kws_teacher.pt``.

Run from the repository root::

    python -m tinyml_helpers.scripts.train_teacher

It trains :class:`~tinyml_helpers.models.kws_cnn.KWSTeacherCNN` on the bundled synthetic
keyword corpus's *train* split (log-mel features; optional extra noise copies and SpecAugment),
keeps the epoch with the best *validation* accuracy, measures *test*
accuracy once, stores the state_dict in float16 (checking that the round trip to float32
keeps the test accuracy), writes ``kws_teacher.json`` beside it (settings, accuracies,
command) and refreshes both files' entries in ``data/manifest.json``. Seeded: the same
command on the same machine gives the same weights.

``--dataset speech_commands --out <path>`` trains a teacher on Google Speech Commands v2
instead (downloads it once, about 2.4 GB; not shipped).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


# The teacher's training settings (the CLI's defaults; loeo_keywords trains it the same way).
TEACHER_RECIPE = {"epochs": 20, "batch_size": 64, "lr": 2e-3, "weight_decay": 5e-4, "optimizer": "adamw",
                  "schedule": "cosine"}


def main(argv: list[str] | None = None) -> dict:
    from .. import config, data
    from ..files import atomic_write_json
    from ..models.kws_cnn import (TEACHER_CONFIG, TEACHER_INFO_RELPATH, TEACHER_RELPATH, KWSTeacherCNN,
                                  load_kws_teacher, save_kws_teacher)
    from ..training import evaluate, is_main_process, train_classifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TEACHER_RECIPE["epochs"])
    parser.add_argument("--batch-size", type=int, default=TEACHER_RECIPE["batch_size"])
    parser.add_argument("--lr", type=float, default=TEACHER_RECIPE["lr"])
    parser.add_argument("--weight-decay", type=float, default=TEACHER_RECIPE["weight_decay"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augment-copies", type=int, default=0,
                        help="extra noisy/shifted versions of each train clip (0 = none: the corpus's takes "
                             "already vary rate, pitch, room and noise)")
    parser.add_argument("--voice-copies", type=int, default=0,
                        help="extra copies of the train split said by new virtual speakers (formants, pitch, "
                             "bandwidth; data.VoiceAugmenter); the synthetic set only")
    parser.add_argument("--spec-augment", action=argparse.BooleanOptionalAction, default=False,
                        help="mask random bands and frames of the training features (SpecAugment)")
    parser.add_argument("--dataset", default="synthetic", choices=data.DATASETS)
    parser.add_argument("--download", action="store_true", help="allow downloading Speech Commands")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write the checkpoint (default: data/{TEACHER_RELPATH})")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.voice_copies < 0:
        parser.error("--voice-copies must be >= 0")

    if args.threads:
        torch.set_num_threads(args.threads)
    config.quiet_noisy_libraries()
    shipped = args.out is None
    if shipped and args.dataset != "synthetic":
        parser.error("only the synthetic-set teacher ships in data/; give --out for other datasets")
    out = args.out or config.data_dir() / TEACHER_RELPATH

    # smoke=None follows TINYML_SMOKE: the tests' tiny configuration (also under `accelerate launch`).
    loaders = data.keyword_loaders(batch_size=args.batch_size, kind="logmel", augment=args.augment_copies > 0,
                                   augment_copies=max(1, args.augment_copies), seed=args.seed, smoke=None,
                                   dataset=args.dataset, download=args.download,
                                   spec_augment=args.spec_augment, voice_copies=args.voice_copies)
    n_classes = len(data.keyword_classes())
    config.seed_everything(args.seed)
    model = KWSTeacherCNN(**{**TEACHER_CONFIG, "n_classes": n_classes})
    t0 = time.perf_counter()
    result = train_classifier(model, loaders, epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                              optimizer=TEACHER_RECIPE["optimizer"], schedule=TEACHER_RECIPE["schedule"],
                              seed=args.seed, run_name=f"kws_teacher-seed{args.seed}", num_classes=n_classes)
    seconds = time.perf_counter() - t0
    test_fp32 = evaluate(result.model, loaders["test"]).accuracy

    info = {
        "what": "KD teacher for notebook 01: KWSTeacherCNN on 49x40 log-mel features",
        "made_by": "python -m tinyml_helpers.scripts.train_teacher" + (" " + " ".join(argv) if argv else ""),
        "model": {**TEACHER_CONFIG, "n_classes": n_classes, "widths": list(TEACHER_CONFIG["widths"])},
        "storage": "state_dict, floating-point tensors stored as float16; load_kws_teacher casts to float32",
        "dataset": args.dataset,
        "features": "logmel 49x40 (tinyml_helpers.data.keyword_features)",
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "weight_decay": args.weight_decay, "optimizer": TEACHER_RECIPE["optimizer"],
                     "schedule": TEACHER_RECIPE["schedule"],
                     "augment_copies": args.augment_copies, "voice_copies": args.voice_copies, "spec_augment": args.spec_augment, "seed": args.seed,
                     "best_epoch": result.best_epoch, "seconds": round(seconds, 1),
                     "torch": torch.__version__, "threads": torch.get_num_threads()},
        "val_accuracy": result.best_val_accuracy,
        "test_accuracy_fp32": test_fp32,
        "params": sum(p.numel() for p in result.model.parameters()),
        "history": result.history,
    }
    if not is_main_process():  # `accelerate launch`: one process writes the files
        return {"val_accuracy": info["val_accuracy"], "test_accuracy_fp32": test_fp32}
    save_kws_teacher(result.model, out, info)
    reloaded = load_kws_teacher(out, verify=False)
    test_fp16 = evaluate(reloaded, loaders["test"]).accuracy
    if abs(test_fp16 - test_fp32) > 0.01:
        raise RuntimeError(f"float16 storage changed test accuracy from {test_fp32:.4f} to {test_fp16:.4f}; "
                           "store float32 instead")
    info["test_accuracy"] = test_fp16
    atomic_write_json(out.with_suffix(".json"), info)

    if shipped:
        from ..data.manifest import update_manifest

        update_manifest({TEACHER_RELPATH: None, TEACHER_INFO_RELPATH: None},
                        made_by="python -m tinyml_helpers.scripts.train_teacher", licence="CC0-1.0",
                        what={TEACHER_RELPATH: "KD teacher state_dict (float16), notebook 01",
                              TEACHER_INFO_RELPATH: "KD teacher settings, accuracies and training history"})
    summary = {k: info[k] for k in ("val_accuracy", "test_accuracy_fp32", "test_accuracy", "params")}
    summary.update(path=str(out), bytes=out.stat().st_size, seconds=round(seconds, 1), best_epoch=result.best_epoch)
    print(json.dumps(summary, indent=2))
    return summary


def get_teacher(dataset: str = "synthetic", download: bool = False) -> "torch.nn.Module":
    """The teacher for ``dataset``, training and caching it first if there is none yet.

    The rebuild entry point (the model module only builds and loads, so the package has
    no import circle). An unknown dataset is a ValueError, never argparse's SystemExit.

    Example:
        >>> get_teacher("speech_commands", download=True)  # doctest: +SKIP
    """
    from ..models import kws_cnn

    path = kws_cnn.teacher_path(dataset)  # validates the name
    if dataset != "synthetic" and not path.exists():
        main(["--dataset", dataset, "--out", str(path)] + (["--download"] if download else []))
    return kws_cnn.get_teacher(dataset, download=download)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
