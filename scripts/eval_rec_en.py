"""Recognizers side by side on the dev data, one run: FUNSD page bag-of-words and word-crop accuracy.

Every recognizer reads the very same crops: FUNSD pages go through the default detector and
direction classifier once, then each recognizer decodes the crops (lines under the pipeline's
drop_score are dropped, as ``OCR`` does). Columns: FUNSD bag-of-words F1 case-sensitive (cs) and
case-insensitive (ci), ICDAR 2015 word crops and IIIT5K word accuracy (ci, and cs).

Usage: python scripts/eval_rec_en.py REC_CONFIG_OR_WEIGHTS... [--pages N] [--crops N] [--data DIR]
A name ending in .safetensors is loaded into the rec_ppocrv2.yaml net (a training checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocrlite import OCR  # noqa: E402
from ocrlite.config import load_stage_config  # noqa: E402
from ocrlite.datasets import load_funsd, load_word_crops  # noqa: E402
from ocrlite.evaluate import PRScores, bag_of_words, word_accuracy  # noqa: E402
from ocrlite.imageio import read_image  # noqa: E402
from ocrlite.models import build_model  # noqa: E402
from ocrlite.predictors import TextRecognizer  # noqa: E402
from ocrlite.preprocess import crop_quad  # noqa: E402
from ocrlite.runtime import TorchRunner  # noqa: E402
from ocrlite.weights import load_weights  # noqa: E402


def recognizer(name: str) -> TextRecognizer:
    """A stage config by name, or a safetensors file loaded into the PP-OCRv2 net."""
    if name.endswith(".safetensors"):
        stage = load_stage_config("rec_ppocrv2.yaml")
        model = build_model(stage["model"])
        load_weights(model, Path(name))
        return TextRecognizer.from_config(stage, TorchRunner(model.eval(), softmax=True))
    return TextRecognizer.from_config(load_stage_config(name))


def page_crops(ocr: OCR, path: Path) -> list[np.ndarray]:
    image = read_image(path)
    crops = [c for box in ocr.detect(image) if (c := crop_quad(image, box.points)) is not None]
    ocr.orient(crops)
    return crops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recognizers", nargs="+")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pages", type=int, help="first N FUNSD pages (default: all 149)")
    parser.add_argument("--crops", type=int, help="first N crops of each word set (default: all)")
    args = parser.parse_args(argv)
    ocr = OCR()
    drop = ocr.settings.drop_score
    recs = {name: recognizer(name) for name in args.recognizers}
    rows: dict[str, dict[str, float]] = {name: {} for name in recs}
    start = time.perf_counter()
    funsd = load_funsd(args.data / "funsd")[: args.pages]
    bow = {name: [PRScores(), PRScores()] for name in recs}
    for path, gt_words in funsd:
        crops = page_crops(ocr, path)
        for name, rec in recs.items():
            texts = [d.text for d in rec(crops) if d.text and d.score >= drop]
            bow[name][0] += bag_of_words(texts, gt_words, case_sensitive=True)
            bow[name][1] += bag_of_words(texts, gt_words)
    for name in recs:
        rows[name]["FUNSD cs"], rows[name]["FUNSD ci"] = bow[name][0].f1, bow[name][1].f1
    for column, folder in (("IC15", "icdar2015_words"), ("IIIT5K", "iiit5k")):
        samples = load_word_crops(args.data / folder)[: args.crops]
        images = [read_image(path) for path, _ in samples]
        labels = [label for _, label in samples]
        for name, rec in recs.items():
            texts = [d.text for d in rec(images)]
            rows[name][f"{column} ci"] = word_accuracy(texts, labels)
            rows[name][f"{column} cs"] = word_accuracy(texts, labels, case_sensitive=True)
    columns = ["FUNSD cs", "FUNSD ci", "IC15 ci", "IC15 cs", "IIIT5K ci", "IIIT5K cs"]
    print(f"FUNSD pages: {len(funsd)}, crops per word set: {args.crops or 'all'}, "
          f"{time.perf_counter() - start:.0f} s")
    width = max(len(n) for n in recs)
    print(f"{'recognizer':<{width}}  " + "  ".join(f"{c:>9}" for c in columns))
    for name in recs:
        print(f"{name:<{width}}  " + "  ".join(f"{100 * rows[name][c]:>8.1f}%" for c in columns), flush=True)


if __name__ == "__main__":
    main()
