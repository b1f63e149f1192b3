"""Make the bundled synthetic keyword corpus in ``data/keywords/`` (deterministic).

Usage::

    python -m tinyml_helpers.scripts.make_keywords            # writes data/keywords/
    python -m tinyml_helpers.scripts.make_keywords --out /tmp/kw --families espeak flite

Only maintainers run this; learners use the shipped files. It needs the five engine
families' programs and voices from Debian's packages (as root, Debian 12):

1. Enable the contrib and non-free components (MBROLA voices and SVOX Pico live there): add
   ``contrib non-free`` to the ``Components:`` line of ``/etc/apt/sources.list.d/debian.sources``
   (or to each ``deb`` line of ``/etc/apt/sources.list``), then ``apt-get update``.
2. ``apt-get install espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 mbrola-af1
   mbrola-de1 mbrola-de2 mbrola-de3 mbrola-de4 mbrola-de5 mbrola-de6 mbrola-fr1 mbrola-fr4
   mbrola-gr2 mbrola-hu1 mbrola-nl2 mbrola-pl1 mbrola-ro1 mbrola-sw1 mbrola-sw2 festival
   festvox-kallpc16k festvox-kdlpc16k festvox-rablpc16k festvox-don festvox-us-slt-hts flite
   libttspico-utils``

A missing engine stops the run before anything is written, naming the package. The espeak
family needs nothing beyond requirements.txt (the ``espeakng-loader`` wheel). The corpus is
written to a temporary folder and renamed into place, so an interrupted run leaves the old
corpus untouched. Takes about 2 minutes on one core. Afterwards the script refreshes the
entries in ``data/manifest.json`` and prints the table rows for ``data/README.md`` (the
checksum test compares both with the files).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinyml_helpers import config
from tinyml_helpers.data import engines, keywords
from tinyml_helpers.data.manifest import markdown_rows, update_manifest


WHAT = {
    "keywords/speech_train.flac": "synthetic keyword speech (five engine families), train voices, 16 kHz FLAC",
    "keywords/speech_val.flac": "synthetic keyword speech (five engine families), val voices, 16 kHz FLAC",
    "keywords/speech_test.flac": "synthetic keyword speech (five engine families), test voices, 16 kHz FLAC",
    "keywords/clips.csv": "one row per clip: family, label, voice, sample range, rate, pitch, room, offset, gain, noise",
    "keywords/info.json": "generator settings, counts, voices per split and family, engine versions, dropped "
                          "renderings, file checksums",
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: data/keywords)")
    parser.add_argument("--seed", type=int, default=keywords.GeneratorSettings.seed)
    parser.add_argument("--store-bits", type=int, default=keywords.GeneratorSettings.store_bits)
    parser.add_argument("--families", nargs="+", default=list(keywords.GeneratorSettings.families),
                        choices=list(engines.FAMILIES), help="engine families to render (default: all five)")
    parser.add_argument("--clips-per-family", type=int, default=keywords.GeneratorSettings.clips_per_family)
    args = parser.parse_args(argv)
    out = args.out or config.data_dir() / "keywords"
    settings = keywords.GeneratorSettings(seed=args.seed, store_bits=args.store_bits, families=tuple(args.families),
                                          clips_per_family=args.clips_per_family)
    start = time.perf_counter()
    try:
        info = keywords.write_keyword_set(out, settings, progress=True)
    except engines.EngineMissingError as exc:
        raise SystemExit(f"error: {exc}") from None
    seconds = time.perf_counter() - start
    if out.resolve() == (config.data_dir() / "keywords").resolve():
        update_manifest({f"keywords/{name}": meta for name, meta in info["files"].items()} |
                        {"keywords/info.json": None}, made_by=keywords.MAKE_COMMAND,
                        licence="CC0-1.0", what=WHAT)
        print("rows for data/README.md:\n" + markdown_rows("keywords/"))
    summary = {"seconds": round(seconds, 1), "counts": {s: info["counts"][s]["total"] for s in keywords.SPLITS},
               "voices": {s: len(v) for s, v in info["voices"].items()},
               "dropped_renderings": {f: d["dropped_renderings"] for f, d in info["families"].items()},
               "bytes": sum(f["bytes"] for f in info["files"].values())}
    print(json.dumps(summary, indent=2))
    return info


if __name__ == "__main__":
    main()
