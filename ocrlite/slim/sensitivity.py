"""Per-group pruning sensitivity: each group alone at 10..80 %, scored against the unpruned net.

The score is the output divergence on real images: 1 - IoU of the text masks (probability > the
stage's binarisation threshold) of the pruned and the unpruned detector, averaged over the images.
It needs no labels and tracks detection quality (a mask that stays the same gives the same boxes).
Curves are saved as JSON (``--sensitivity`` reads them back) and drawn as a PNG. The JSON records the
criterion and a fingerprint of the detector they were measured on (``stage_fingerprint``); reading them
back for another criterion or detector is a ConfigError (the ratios would be chosen on the wrong curves).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Collection, Sequence

import cv2
import numpy as np
from torch import Tensor, nn

from ocrlite.backends.torch import TorchRunner
from ocrlite.errors import ConfigError, OcrliteError
from ocrlite.io.atomic import atomic_write_text, write_image
from ocrlite.predictors import TextDetector
from ocrlite.slim.groups import prunable_roots
from ocrlite.slim.prune import prune_net
from ocrlite.stages import StageSpec

__all__ = ["RATIOS", "mask_divergence", "measure", "measured_here", "stage_fingerprint", "save_curves", "load_curves",
           "plot_curves"]

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def mask_divergence(prob: np.ndarray, ref: np.ndarray, thresh: float) -> float:
    """1 - IoU of the two text masks (0 when both are empty)."""
    a, b = prob > thresh, ref > thresh
    union = np.logical_or(a, b).sum()
    return 0.0 if union == 0 else float(1.0 - np.logical_and(a, b).sum() / union)


def _maps(spec: StageSpec, net: nn.Module, images: Sequence[np.ndarray], side: int) -> list[np.ndarray]:
    detector = TextDetector(TorchRunner(net), replace(spec.pre, limit_side_len=side), spec.post)
    return [detector.probability_map(image) for image in images]


def measure(
    spec: StageSpec, net: nn.Module, images: Sequence[np.ndarray], criterion: str, example: Tensor,
    ratios: Sequence[float] = RATIOS, side: int = 640, groups: Sequence[str] | None = None,
) -> dict[str, dict[float, float]]:
    """Curves ``{group: {ratio: divergence}}`` for the named (default: every) prunable group of ``net``."""
    if not images:
        raise ConfigError("sensitivity needs at least one image")
    thresh = float(spec.post.thresh)
    reference = _maps(spec, net, images, side)
    curves: dict[str, dict[float, float]] = {}
    for name in groups if groups is not None else prunable_roots(net):
        curves[name] = {}
        for ratio in ratios:
            pruned = prune_net(net, {name: ratio}, criterion, example)
            maps = _maps(spec, pruned, images, side)
            curves[name][ratio] = float(np.mean([mask_divergence(m, r, thresh) for m, r in zip(maps, reference)]))
    return curves


def stage_fingerprint(spec: StageSpec) -> str:
    """SHA-256 of what the curves depend on: the net config, the weights' SHA-256, the normalisation and the
    binarisation threshold of the mask (not the side limit: ``measure`` sets its own)."""
    from ocrlite.weights import sha256_file

    weights = spec.manifest.get("sha256") or (sha256_file(spec.weights) if spec.weights else None)
    text = json.dumps([spec.model, weights, spec.pre.limit_type, list(spec.pre.mean), list(spec.pre.std),
                       float(spec.post.thresh)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_curves(path: Path, curves: dict[str, dict[float, float]], meta: dict[str, Any]) -> None:
    """Write the curves (ratios as strings) and how they were measured as JSON (an OcrliteError naming the
    file when it cannot be written)."""
    data = {**meta, "metric": "1 - IoU of text masks vs the unpruned net",
            "curves": {name: {f"{r:g}": round(v, 6) for r, v in curve.items()} for name, curve in curves.items()}}
    try:
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise OcrliteError(f"cannot write the sensitivity curves {path}: {exc.strerror or exc}") from None


def _check_curves(curves: dict[str, dict[float, float]], groups: Collection[str] | None) -> None:
    if not curves:
        raise ValueError("no curves")
    for name, curve in curves.items():
        if groups is not None and name not in groups:
            raise ValueError(f"unknown prunable group {name!r}; groups: {', '.join(groups)}")
        if not curve:
            raise ValueError(f"{name}: an empty curve")
        for ratio, value in curve.items():
            if not 0.0 < ratio < 1.0 or not math.isfinite(value):
                raise ValueError(f"{name}: ratio {ratio:g} -> {value:g}; ratios must lie in (0, 1) and losses be "
                                 "finite")


def load_curves(path: Path, groups: Collection[str] | None = None, criterion: str | None = None,
                stage: str | None = None) -> dict[str, dict[float, float]]:
    """Read curves written by ``save_curves``: ConfigError on a bad file, on an empty curve set or curve, a
    group not in ``groups``, a ratio outside (0, 1), a value that is not finite, or -- when the file records
    them -- another criterion than ``criterion`` or another detector than ``stage`` (``stage_fingerprint``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        given = data.get("curves") if isinstance(data, dict) else None
        if not isinstance(given, dict) or not all(isinstance(curve, dict) for curve in given.values()):
            raise ValueError('expected {"curves": {group: {ratio: loss, ...}, ...}}')
        curves = {name: {float(r): float(v) for r, v in curve.items()} for name, curve in given.items()}
        _check_curves(curves, groups)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read sensitivity curves {path}: {exc}") from None
    if criterion is not None and data.get("criterion", criterion) != criterion:
        raise ConfigError(f"{path}: these curves were measured with --criterion {data['criterion']}, not {criterion}; "
                          "pass that criterion or measure again (--images, another --sensitivity file)")
    if stage is not None and data.get("stage_sha256", stage) != stage:
        raise ConfigError(f"{path}: these curves were measured on another detector (weights, net or threshold "
                          f"differ; measured for {data.get('config', '?')}); measure again with --images")
    return curves


def measured_here(path: Path, criterion: str, stage: str, images: list[dict[str, str]]) -> bool:
    """Whether ``path`` holds curves measured with ``criterion`` on detector ``stage`` (``stage_fingerprint``) and
    on exactly ``images`` (path and SHA-256 each, as ``save_curves`` is given them): what measuring again would
    give, so a rerun reads them instead."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("criterion"), data.get("stage_sha256"), data.get("images")) == (
        criterion, stage, images)


def plot_curves(path: Path, curves: dict[str, dict[float, float]], size: tuple[int, int] = (900, 560)) -> None:
    """Draw every curve (x: ratio 0..0.8, y: divergence 0..1) with a label at its end, as a PNG."""
    width, height = size
    left, right, top, bottom = 50, 170, 20, 40
    canvas = np.full((height, width, 3), 255, np.uint8)

    def xy(ratio: float, loss: float) -> tuple[int, int]:
        x = left + ratio / 0.8 * (width - left - right)
        y = top + (1.0 - min(loss, 1.0)) * (height - top - bottom)
        return int(x), int(y)

    cv2.rectangle(canvas, xy(0, 1), xy(0.8, 0), (0, 0, 0), 1)
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8):
        cv2.putText(canvas, f"{tick:.1f}", (xy(tick, 0)[0] - 10, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1)
        cv2.putText(canvas, f"{tick:.1f}", (10, xy(0, tick)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1)
    rng = np.random.default_rng(0)
    for name, curve in curves.items():
        color = tuple(int(c) for c in rng.integers(0, 200, 3))
        points = [xy(0.0, 0.0)] + [xy(r, v) for r, v in sorted(curve.items())]
        cv2.polylines(canvas, [np.array(points, np.int32)], False, color, 1, cv2.LINE_AA)
        cv2.putText(canvas, name, (points[-1][0] + 4, points[-1][1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1)
    cv2.putText(canvas, "pruned ratio (x) vs 1 - IoU of text masks (y)", (left, 14), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, 0, 1)
    try:
        write_image(path, canvas)
    except OSError as exc:
        raise OcrliteError(f"cannot write the sensitivity plot {path}: {exc.strerror or exc}") from None
