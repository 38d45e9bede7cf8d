"""ICDAR 2015 text detection: ocrlite's torch detector vs the original ONNX detector, same pipeline.

    python scripts/eval_det.py [--data ../shared/data] [--limit N] [--onnx-dir DIR] [--threads N]

Prints precision / recall / hmean (ICDAR 2015 IoU protocol, see ``ocrlite.evaluate``) and seconds
per image (detection only: resize, net, DB post-processing) for both, and the hmean difference.
"""

from __future__ import annotations

import argparse

import numpy as np
from _bench_common import add_common_args, build_systems, limited, print_table, run_systems

from ocrlite import OCR
from ocrlite.datasets import load_icdar2015
from ocrlite.evaluate import evaluate_detection


def detect_quads(ocr: OCR, image: np.ndarray) -> list[np.ndarray]:
    return [box.points for box in ocr.detect(image)]


def same_quads(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args()

    samples = limited(load_icdar2015(args.data / "icdar2015"), args.limit)
    systems = build_systems(args, stages=["det"])
    runs = run_systems(systems, [path for path, _ in samples], detect_quads)
    gts = [regions for _, regions in samples]

    rows, hmeans = [], []
    for name, run in runs.items():
        scores = evaluate_detection(run.outputs, gts)
        hmeans.append(100 * scores.hmean)
        rows.append([name, 100 * scores.precision, 100 * scores.recall, 100 * scores.hmean,
                     scores.matched, scores.n_pred, scores.n_gt, f"{run.seconds_per_image:.3f}"])
    print(f"\nICDAR 2015 detection, {len(samples)} images (IoU > 0.5, '###' don't care)")
    print_table(["system", "P %", "R %", "H %", "matched", "n_pred", "n_gt", "s/image"], rows)
    first, second = runs.values()
    identical = sum(same_quads(a, b) for a, b in zip(first.outputs, second.outputs))
    print(f"hmean difference (ocrlite - onnxruntime): {hmeans[0] - hmeans[1]:+.2f} points")
    print(f"images with identical boxes: {identical}/{len(samples)}")


if __name__ == "__main__":
    main()
