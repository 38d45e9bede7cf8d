"""The torch backend with and without its oneDNN layers (``ocrlite.backends.onednn``): same process, same
pages and crops, runs interleaved, best of ``--repeats``; seconds per page of the detector and the
recognizer, the ratio, and whether texts and boxes (within 1 px) are the same.

    python scripts/bench_onednn.py --models ppocr-v2 ppocr-v6-tiny --data ../shared/data/funsd --limit 3
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ocrlite.api import OCR
from ocrlite.errors import exit_on_error
from ocrlite.eval.datasets import load_funsd, load_icdar2015
from ocrlite.io.images import read_image
from ocrlite.results import TextBox
from ocrlite.stages import pipeline_spec

T = TypeVar("T")


def _engine(model: str, onednn: bool) -> OCR:
    spec = pipeline_spec(model=model)
    return OCR(model=model, det_runner=spec.det.build_runner(onednn=onednn),
               rec_runner=spec.rec.build_runner(onednn=onednn))


def _best(engines: dict[str, OCR], read: Callable[[OCR], T], repeats: int) -> tuple[dict[str, float], dict[str, T]]:
    """Best time of ``read(engine)`` for each engine over ``repeats`` interleaved rounds, and its result."""
    best = dict.fromkeys(engines, float("inf"))
    out: dict[str, T] = {}
    for _ in range(repeats):
        for name, engine in engines.items():
            start = time.perf_counter()
            out[name] = read(engine)
            best[name] = min(best[name], time.perf_counter() - start)
    return best, out


def _same_boxes(a: list[list[TextBox]], b: list[list[TextBox]]) -> bool:
    return all(len(x) == len(y) and all(np.abs(np.subtract(p.points, q.points)).max() <= 1.0 for p, q in zip(x, y))
               for x, y in zip(a, b))


def _compare(model: str, pages: list[np.ndarray], repeats: int) -> None:
    engines = {"fast": _engine(model, True), "plain": _engine(model, False)}
    det, boxes = _best(engines, lambda ocr: [ocr.detector(p) for p in pages], repeats)
    crops = [list(engines["fast"].lines(p).crops) for p in pages]
    rec, texts = _best(engines, lambda ocr: [[d.text for d in ocr.recognizer(c)] for c in crops], repeats)
    for stage, times, same in (("det", det, _same_boxes(boxes["fast"], boxes["plain"])),
                               ("rec", rec, texts["fast"] == texts["plain"])):
        print(f"{model:16s} {stage:5s} {times['fast'] / len(pages):8.3f} {times['plain'] / len(pages):8.3f} "
              f"{times['fast'] / times['plain']:6.3f}  {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["ppocr-v2", "ppocr-v6-tiny", "ppocr-v6-small", "ppocr-v3"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "funsd",
                        help="FUNSD or ICDAR 2015 dev folder (default: ../shared/data/funsd beside the repository)")
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reader = load_icdar2015 if "icdar" in args.data.name else load_funsd
    pages = [read_image(path) for path, _ in reader(args.data)[: args.limit]]
    print(f"{args.data.name}, {len(pages)} pages, {args.threads} threads, best of {args.repeats}; s/page")
    print(f"{'model':16s} {'stage':5s} {'oneDNN':>8s} {'without':>8s} {'ratio':>6s}  same")
    for model in args.models:
        _compare(model, pages, args.repeats)


if __name__ == "__main__":
    exit_on_error(main, "bench_onednn.py")
