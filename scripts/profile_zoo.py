"""Print the backbone zoo's cost table: every backbone as a det and as a rec backbone.

Each cell comes from the zoo config (configs/zoo/<backbone>_det.yaml / _rec.yaml: DBFPN 96 + DB head, or
BiLSTM 48 + CTC over 6625 classes) with ``ocrlite.profile``; the shipped PP-OCR stages are listed first for
reference. MACs are multiply-accumulates (FLOPs ~ 2 x MACs); latency is the median CPU forward time of
``--runs`` passes at batch 1.

    python scripts/profile_zoo.py --runs 5 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch

from ocrlite.errors import exit_on_error
from ocrlite.models import build_model
from ocrlite.profile import Profile, parse_input, profile_model
from ocrlite.stages import load_stage_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# (row label, det config, rec config); None where the backbone has no such use.
ROWS = [
    ("MobileNetV3-large x0.5, no SE (shipped PP-OCRv3 det)", "det_ppocrv3.yaml", None),
    ("MobileNetV1Enhance x0.5 (shipped PP-OCRv2 rec)", None, "rec_ppocrv2.yaml"),
    ("MobileNetV1 x0.5", "zoo/mobilenet_v1_det.yaml", "zoo/mobilenet_v1_rec.yaml"),
    ("MobileNetV2 x0.5", "zoo/mobilenet_v2_det.yaml", "zoo/mobilenet_v2_rec.yaml"),
    ("MobileNetV3-large x0.5, SE", "zoo/mobilenet_v3_large_det.yaml", "zoo/mobilenet_v3_large_rec.yaml"),
    ("MobileNetV3-small x0.5, SE", None, "zoo/mobilenet_v3_small_rec.yaml"),
    ("PP-LCNet x0.5", "zoo/pp_lcnet_det.yaml", "zoo/pp_lcnet_rec.yaml"),
    ("ShuffleNetV2 0.5x", "zoo/shufflenet_v2_det.yaml", "zoo/shufflenet_v2_rec.yaml"),
    ("SqueezeNet 1.1", "zoo/squeezenet_det.yaml", "zoo/squeezenet_rec.yaml"),
    ("CRNN VGG (seed, plain)", None, "zoo/crnn_vgg_rec.yaml"),
    ("CRNN VGG (seed, depthwise-separable)", None, "zoo/crnn_vgg_dw_rec.yaml"),
]


def _cell(config: str | None, shape: tuple[int, ...], runs: int, threads: int) -> list[str]:
    if config is None:
        return ["-"] * 4
    net = build_model(load_stage_config(str(CONFIGS / config))["model"])
    report: Profile = profile_model(net, shape, config, runs, threads)
    backbone = sum(p.numel() for p in net.backbone.parameters())
    latency = f"{report.latency_ms:.1f}" if report.latency_ms is not None else "-"
    return [f"{backbone / 1e6:.3f}", f"{report.params / 1e6:.3f}", f"{report.macs / 1e9:.3f}", latency]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model (0: no timing)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for the timing")
    parser.add_argument("--det-input", default="3x640x640")
    parser.add_argument("--rec-input", default="3x32x320")
    args = parser.parse_args()
    det_shape, rec_shape = parse_input(args.det_input), parse_input(args.rec_input)
    header = [
        "backbone",
        "det backbone Mparams", "det model Mparams", f"det GMACs {args.det_input}", "det ms",
        "rec backbone Mparams", "rec model Mparams", f"rec GMACs {args.rec_input}", "rec ms",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, det, rec in ROWS:
        cells = [label, *_cell(det, det_shape, args.runs, args.threads)]
        cells += _cell(rec, rec_shape, args.runs, args.threads)
        print("| " + " | ".join(cells) + " |", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nCPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads, "
        + (f"median of {args.runs} runs after 2 warm-up runs" if args.runs > 0 else "not timed (--runs 0)")
        + ", batch 1, "
        f"load average {load:.1f} when finished."
    )


if __name__ == "__main__":
    exit_on_error(main, "profile_zoo.py")
