"""DBNet training targets: shrunk text kernels (probability map), threshold map and their masks.

Conventions: polygons are N x 2 float arrays in pixel coordinates of the net input, pixel (x, y) is the
point (x, y) (PaddleOCR's convention), maps are H x W float32. The shrink distance of a polygon with area A
and perimeter L is D = A (1 - r^2) / L (r = ``shrink_ratio``, 0.4); the kernel is the polygon offset inwards by
D, the threshold band lies between the polygon offset inwards and outwards by D.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

__all__ = ["DBTargets", "shrink_distance", "offset_polygon", "make_shrink_map", "make_threshold_map", "make_db_targets"]


@dataclass(frozen=True)
class DBTargets:
    """The four target maps of one image (each H x W float32).

    ``shrink``: 1 inside text kernels. ``shrink_mask``: 0 over ignored polygons (don't care, too small, or
    whose kernel split or vanished), 1 elsewhere. ``thresh``: threshold target in [thresh_min, thresh_max].
    ``thresh_mask``: 1 inside the dilated (outward-offset) polygons of the cared-for text.
    """

    shrink: np.ndarray
    shrink_mask: np.ndarray
    thresh: np.ndarray
    thresh_mask: np.ndarray


def shrink_distance(polygon: np.ndarray, shrink_ratio: float = 0.4) -> float:
    """D = A (1 - r^2) / L of a polygon (0 for a degenerate one)."""
    poly = Polygon(np.asarray(polygon, dtype=np.float64).reshape(-1, 2))
    if poly.length <= 0:
        return 0.0
    return abs(poly.area) * (1 - shrink_ratio**2) / poly.length


def offset_polygon(polygon: np.ndarray, distance: float) -> list[np.ndarray]:
    """Offset a polygon by ``distance`` pixels (negative: inwards) with round joins; one array per piece."""
    offset = pyclipper.PyclipperOffset()
    path = [tuple(p) for p in np.asarray(polygon, dtype=np.float64).reshape(-1, 2)]
    offset.AddPath(path, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [np.asarray(piece, dtype=np.float64).reshape(-1, 2) for piece in offset.Execute(distance)]


def _box_size(polygon: np.ndarray) -> tuple[float, float]:
    """(height, width) of a polygon's axis-aligned bounding box."""
    return float(np.ptp(polygon[:, 1])), float(np.ptp(polygon[:, 0]))


def make_shrink_map(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    shrink_ratio: float = 0.4,
    min_text_size: int = 8,
) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """Kernel map, its mask and the final ignore flag per polygon.

    A polygon is ignored (its area zeroed in the mask, no kernel drawn) when flagged in ``ignore`` (e.g. '###'),
    when its bounding box is under ``min_text_size`` on a side or its area is 0, or when the inward offset leaves
    nothing or splits it into several pieces.
    """
    shrink = np.zeros((height, width), dtype=np.float32)
    mask = np.ones((height, width), dtype=np.float32)
    flags: list[bool] = []
    for polygon, skip in zip(polygons, ignore, strict=False):
        poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        box_h, box_w = _box_size(poly)
        pieces: list[np.ndarray] = []
        if not skip and min(box_h, box_w) >= min_text_size and Polygon(poly).area > 0:
            pieces = offset_polygon(poly, -shrink_distance(poly, shrink_ratio))
        if len(pieces) != 1:
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 0.0)
            flags.append(True)
            continue
        cv2.fillPoly(shrink, [np.round(pieces[0]).astype(np.int32)], 1.0)
        flags.append(False)
    return shrink, mask, flags


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance from each grid point (xs, ys) to the segment a-b."""
    ab = b - a
    length2 = float(ab @ ab)
    if length2 == 0:
        return np.hypot(xs - a[0], ys - a[1])
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / length2, 0.0, 1.0)
    return np.hypot(xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1]))


def _draw_border(polygon: np.ndarray, canvas: np.ndarray, mask: np.ndarray, shrink_ratio: float) -> None:
    """Fill the dilated polygon into ``mask`` and max-combine 1 - (edge distance / D), clipped to [0, 1]."""
    distance = shrink_distance(polygon, shrink_ratio)
    if distance <= 0:
        return
    dilated = offset_polygon(polygon, distance)
    if len(dilated) != 1:
        return
    cv2.fillPoly(mask, [np.round(dilated[0]).astype(np.int32)], 1.0)
    height, width = canvas.shape
    x0, y0 = np.floor(dilated[0].min(axis=0)).astype(int)
    x1, y1 = np.ceil(dilated[0].max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)
    if x1 < x0 or y1 < y0:
        return
    ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float64)
    nearest = np.full(xs.shape, np.inf)
    for i in range(len(polygon)):
        seg = _segment_distance(xs, ys, polygon[i], polygon[(i + 1) % len(polygon)])
        nearest = np.minimum(nearest, seg)
    closeness = 1.0 - np.clip(nearest / distance, 0.0, 1.0)
    region = canvas[y0 : y1 + 1, x0 : x1 + 1]
    np.maximum(region, closeness.astype(np.float32), out=region)


def make_threshold_map(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
) -> tuple[np.ndarray, np.ndarray]:
    """Threshold target and mask: ``thresh_max`` on the text edges falling linearly to ``thresh_min`` at
    distance D from them (and beyond); the mask covers the dilated cared-for polygons."""
    canvas = np.zeros((height, width), dtype=np.float32)
    mask = np.zeros((height, width), dtype=np.float32)
    for polygon, skip in zip(polygons, ignore, strict=False):
        if not skip:
            _draw_border(np.asarray(polygon, dtype=np.float64).reshape(-1, 2), canvas, mask, shrink_ratio)
    return canvas * (thresh_max - thresh_min) + thresh_min, mask


def make_db_targets(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    shrink_ratio: float = 0.4,
    min_text_size: int = 8,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
) -> DBTargets:
    """All DB targets of one image; polygons ignored for the kernel are left out of the threshold map too."""
    shrink, shrink_mask, flags = make_shrink_map(polygons, ignore, height, width, shrink_ratio, min_text_size)
    thresh, thresh_mask = make_threshold_map(polygons, flags, height, width, shrink_ratio, thresh_min, thresh_max)
    return DBTargets(shrink, shrink_mask, thresh, thresh_mask)
