"""Make the bundled synthetic keyword set in ``data/keywords/`` (deterministic).

Usage::

    python -m tinyml_helpers.scripts.make_keywords            # writes data/keywords/
    python -m tinyml_helpers.scripts.make_keywords --out /tmp/kw --seed 7

Needs only the pip packages in requirements.txt (``espeakng-loader`` bundles
libespeak-ng and its voice data). Takes about 15 s on one CPU core. After regenerating,
the script refreshes their entries in ``data/manifest.json`` and prints the table rows to
paste into ``data/README.md`` (the checksum test compares both with the files).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinyml_helpers import config
from tinyml_helpers.data import keywords
from tinyml_helpers.data.manifest import markdown_rows, update_manifest


WHAT = {
    "keywords/speech_train.flac": "synthetic keyword speech (espeak-ng), train voices, 16 kHz FLAC",
    "keywords/speech_val.flac": "synthetic keyword speech (espeak-ng), val voices, 16 kHz FLAC",
    "keywords/speech_test.flac": "synthetic keyword speech (espeak-ng), test voices, 16 kHz FLAC",
    "keywords/clips.csv": "one row per keyword clip: label, voice, sample range, offset, gain, noise",
    "keywords/info.json": "generator settings, counts, voices per split, file checksums",
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: data/keywords)")
    parser.add_argument("--seed", type=int, default=keywords.GeneratorSettings.seed)
    parser.add_argument("--store-bits", type=int, default=keywords.GeneratorSettings.store_bits)
    parser.add_argument("--accents-per-variant", type=int,
                        default=keywords.GeneratorSettings.accents_per_variant)
    args = parser.parse_args(argv)
    out = args.out or config.data_dir() / "keywords"
    settings = keywords.GeneratorSettings(seed=args.seed, store_bits=args.store_bits,
                                          accents_per_variant=args.accents_per_variant)
    start = time.perf_counter()
    info = keywords.write_keyword_set(out, settings)
    seconds = time.perf_counter() - start
    if out.resolve() == (config.data_dir() / "keywords").resolve():
        update_manifest({f"keywords/{name}": meta for name, meta in info["files"].items()} |
                        {"keywords/info.json": None}, made_by=keywords.MAKE_COMMAND,
                        licence="CC0-1.0", what=WHAT)
        print("rows for data/README.md:\n" + markdown_rows("keywords/"))
    summary = {"seconds": round(seconds, 1), "counts": {s: info["counts"][s]["total"] for s in keywords.SPLITS},
               "voices": {s: len(v) for s, v in info["voices"].items()},
               "bytes": sum(f["bytes"] for f in info["files"].values())}
    print(json.dumps(summary, indent=2))
    return info


if __name__ == "__main__":
    main()
