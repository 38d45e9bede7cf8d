"""Image pre-processing shared by inference, training and evaluation (numpy/cv2 only).

Detector input: ``det_resize`` then ``normalize``. Text lines: ``crop_quad`` cuts each
detected quad upright, ``line_batch`` resizes, normalises and right-pads a batch for the
classifier or recognizer. All images are BGR uint8 HxWx3.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "det_resize", "normalize", "quad_size", "is_tall", "crop_quad", "line_width", "resize_line", "line_batch",
    "rec_batch_width", "MAX_LINE_RATIO",
]

_DET_STRIDE = 32
# "min" enlarges a page at most until its long side reaches this (PaddleOCR's ``max_side_limit``): a thin strip
# (2 x 2000 px, short side scaled 368 times) otherwise became a detector input too large for memory.
_MAX_ENLARGED_SIDE = 4000
_TALL_CROP_RATIO = 1.5
# Widest width/height a recognition batch is padded to. Real lines stay far below it: of the crops the
# pipeline cuts from the 299 FUNSD and ICDAR 2015 dev pages, the widest is 64.4:1 (ppocr-v2/v3 detector;
# 58.8 with v5 and v6-small, 37.9 with v4; FUNSD ground-truth lines reach 35.7). A wider crop (a 1 x 10000 px
# image is 10000:1) is squeezed to it, which bounds the recognizer's memory.
MAX_LINE_RATIO = 200


def det_resize(
    image: np.ndarray, limit_side_len: int = 960, limit_type: str = "max"
) -> tuple[np.ndarray, float, float]:
    """Resize for the detector so both sides are multiples of 32; return (resized, ratio_h, ratio_w).

    ``"max"`` shrinks so the longer side is at most ``limit_side_len`` (never enlarges);
    ``"min"`` enlarges so the shorter side is at least ``limit_side_len`` (never shrinks), but not past a
    longer side of 4000 (a thin strip).
    Each side becomes ``int(side * ratio)`` rounded to the nearest multiple of 32 (Python
    ``round``), at least 32. ``ratio_*`` = new size / old size, for mapping boxes back.
    """
    height, width = image.shape[:2]
    if limit_type == "max":
        ratio = limit_side_len / max(height, width) if max(height, width) > limit_side_len else 1.0
    elif limit_type == "min":
        ratio = limit_side_len / min(height, width) if min(height, width) < limit_side_len else 1.0
        ratio = min(ratio, max(1.0, _MAX_ENLARGED_SIDE / max(height, width)))
    else:
        raise ValueError(f"limit_type must be 'max' or 'min', got {limit_type!r}")
    new_h = max(round(int(height * ratio) / _DET_STRIDE) * _DET_STRIDE, _DET_STRIDE)
    new_w = max(round(int(width * ratio) / _DET_STRIDE) * _DET_STRIDE, _DET_STRIDE)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return resized, new_h / height, new_w / width


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """HWC uint8 -> CHW float32 ``(x / 255 - mean) / std``, per channel in the image's own order.

    Each pixel is looked up (``cv2.LUT``) in a table of the 256 values a channel can take, computed with the
    same float32 operations in the same order (``_normalize_table``), so the numbers are those of computing
    them pixel by pixel, at a fraction of the cost (a FUNSD page's detector input: 19 -> 1.6 ms; a line crop:
    0.33 -> 0.07 ms). Returned as a CHW view of the HWC result (channels-last memory): the torch runner's nets
    take that layout as it is, where a contiguous CHW copy used to be turned back by torch (the PP-OCRv6
    detector's input: 6.9-8.3 -> 4.7 ms per FUNSD page, same numbers). Callers that need contiguous CHW
    memory make it with ``np.ascontiguousarray`` (the onnxruntime runner does).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != len(mean):
        raise ValueError(f"normalize takes H x W x {len(mean)} uint8 images, got {image.dtype} {image.shape}")
    table = _normalize_table(tuple(map(float, mean)), tuple(map(float, std)))
    return cv2.LUT(np.ascontiguousarray(image), table).transpose(2, 0, 1)


@functools.lru_cache(maxsize=16)
def _normalize_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """``(level / 255 - mean) / std`` in float32 for the 256 levels, one column per channel: 256 x 1 x C."""
    levels = np.repeat(np.arange(256, dtype=np.float32)[:, None], len(mean), axis=1)
    levels /= np.float32(255.0)
    levels -= np.asarray(mean, dtype=np.float32)
    levels /= np.asarray(std, dtype=np.float32)
    return levels.reshape(256, 1, len(mean))


def quad_size(quad: np.ndarray) -> tuple[int, int]:
    """(width, height) of a quad's crop (before any turn): the longer of the top/bottom and of the left/right
    edges, truncated to int."""
    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    width = int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3])))
    height = int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2])))
    return width, height


def is_tall(width: int, height: int) -> bool:
    """Whether ``crop_quad`` turns a crop of this size (at least 1.5 times taller than wide) counter-clockwise."""
    return width >= 1 and height / width >= _TALL_CROP_RATIO


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray | None:
    """Warp a 4-point quad (clockwise from top-left) to an upright rectangle.

    Size: width = max of the top/bottom edge lengths, height = max of the left/right edge
    lengths (both truncated to int). A crop at least 1.5 times taller than wide is turned
    90 degrees counter-clockwise, so vertical text reads left to right. Returns None when
    the quad is degenerate (a side shorter than 1 pixel).
    """
    pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    crop_w, crop_h = quad_size(pts)
    if crop_w < 1 or crop_h < 1:
        return None
    target = np.array([[0, 0], [crop_w, 0], [crop_w, crop_h], [0, crop_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(pts, target)
    crop = cv2.warpPerspective(
        image, matrix, (crop_w, crop_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if is_tall(crop_w, crop_h):
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def line_width(image: np.ndarray, height: int) -> int:
    """Width of ``image`` scaled to ``height`` keeping its aspect ratio, rounded up, at least 1."""
    h, w = image.shape[:2]
    return max(1, math.ceil(height * w / h))


def resize_line(image: np.ndarray, height: int, max_width: int) -> np.ndarray:
    """Resize a text-line crop to ``height`` keeping its aspect ratio, width capped at ``max_width``."""
    new_w = min(max_width, line_width(image, height))
    return cv2.resize(image, (new_w, height), interpolation=cv2.INTER_LINEAR)


def line_batch(
    crops: Sequence[np.ndarray],
    height: int,
    width: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> np.ndarray:
    """N x 3 x height x width float32 batch: each crop resized by ``resize_line``, normalised,
    then zero-padded on the right (0 in normalised units). Channels-last memory, like ``normalize``."""
    batch = np.zeros((len(crops), height, width, 3), dtype=np.float32)
    for i, crop in enumerate(crops):
        line = normalize(resize_line(crop, height, width), mean, std)
        batch[i, :, : line.shape[2]] = line.transpose(1, 2, 0)
    return batch.transpose(0, 3, 1, 2)


def rec_batch_width(crops: Sequence[np.ndarray], height: int, min_width: int) -> int:
    """Padded width for one recognition batch, PaddleOCR's current rule.

    ``int(height * max_ratio)`` where ``max_ratio`` is the largest w/h of the crops, but at
    least ``min_width / height`` (320/32 = 10 for the v2 recognizer), so W >= ``min_width``.
    Like PaddleOCR this truncates, so the widest crop may be narrowed by under one pixel;
    the padded width matters for parity because the BiLSTM also runs over the padding.
    The ratio is capped at ``MAX_LINE_RATIO``, so ``line_batch`` squeezes a wider crop to that width.
    """
    max_ratio = max([min_width / height] + [crop.shape[1] / crop.shape[0] for crop in crops])
    return int(height * min(max_ratio, MAX_LINE_RATIO))
