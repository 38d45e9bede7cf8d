"""Slimmed variants side by side: params, MACs, file size, CPU latency (median, 2 threads) and accuracy.

    python scripts/bench_slim.py --det fp32=ocr_ppocr_v2.yaml --det pruned=RUN/pruned/ocr.yaml \\
        --rec fp32=ocr_ppocr_v2.yaml --rec int8=RUN/int8/ocr.yaml [--limit 50] [--det-split SPLIT.json] [--threads 2]

Each ``--det``/``--rec`` is NAME=PIPELINE_CONFIG; the first of each stage is the reference of the ratio
columns. Accuracy: det hmean on ICDAR 2015 (``--icdar``), rec word accuracy on word crops (``--words``);
``--no-accuracy`` skips it. The logic is ocrlite.slim.bench.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ocrlite.errors import ConfigError, exit_on_error
from ocrlite.io.atomic import atomic_write_text, ensure_folder
from ocrlite.slim.bench import bench_variant, check_variant, format_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _pairs(values: list[str]) -> list[tuple[str, Path]]:
    out = []
    for value in values:
        name, sep, config = value.partition("=")
        if not sep:
            raise ConfigError(f"--det/--rec: expected NAME=CONFIG, got {value!r}")
        out.append((name, Path(config)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--det", action="append", default=[], metavar="NAME=CONFIG")
    parser.add_argument("--rec", action="append", default=[], metavar="NAME=CONFIG")
    parser.add_argument("--icdar", type=Path, default=DATA / "icdar2015")
    parser.add_argument("--words", type=Path, default=DATA / "iiit5k")
    parser.add_argument("--limit", type=int, help="first N samples of each data set")
    parser.add_argument("--det-split", type=Path, help="split manifest (JSON with 'files'): det accuracy on those "
                        "images only, e.g. the held-out images of a fine-tune")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.json:  # before the measurements, not after them
        ensure_folder(args.json.absolute().parent)
    stages = [("det", _pairs(args.det), args.icdar), ("rec", _pairs(args.rec), args.words)]
    for kind, variants, _ in stages:  # every config checked before the first measurement
        for _, config in variants:
            check_variant(kind, config)
    rows = []
    for kind, variants, data in stages:
        for name, config in variants:
            rows.append(bench_variant(name, kind, config, None if args.no_accuracy else data, args.limit,
                                      args.threads, args.runs, args.det_split if kind == "det" else None))
    print(format_table(rows))
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    exit_on_error(main, "bench_slim.py")
