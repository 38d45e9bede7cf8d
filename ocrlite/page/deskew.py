"""Small-angle deskew: the text's tilt measured from the detected boxes (the median angle of the long ones),
and the page turned back by it on a canvas grown to hold it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ocrlite.postprocess import run_angle
from ocrlite.results import TextBox

__all__ = ["estimate_skew", "deskew_image"]


def estimate_skew(boxes: Sequence[TextBox], min_aspect: float = 4.0, min_boxes: int = 3,
                  max_angle: float = 10.0) -> float:
    """Clockwise tilt (degrees) of the text: the median angle of boxes at least ``min_aspect`` times longer
    than high; 0 when fewer than ``min_boxes`` such boxes tilt by at most ``max_angle``."""
    angles = []
    for box in boxes:
        top_left, top_right, bottom_right, bottom_left = np.asarray(box.points, dtype=np.float64).reshape(4, 2)
        length = float(np.linalg.norm(top_right - top_left + bottom_right - bottom_left)) / 2
        height = (np.linalg.norm(bottom_left - top_left) + np.linalg.norm(bottom_right - top_right)) / 2
        angle = run_angle(box.points)
        if height > 0 and length >= min_aspect * height and abs(angle) <= max_angle:
            angles.append(angle)
    return float(np.median(angles)) if len(angles) >= min_boxes else 0.0


def deskew_image(image: np.ndarray, skew: float) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``image`` counter-clockwise by ``skew`` degrees on a canvas grown to hold it (white fill);
    return the image and the 3x3 map of old pixels to new ones."""
    height, width = image.shape[:2]
    matrix = np.vstack([cv2.getRotationMatrix2D((width / 2, height / 2), skew, 1.0), [0, 0, 1]])
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(math.ceil(width * cos + height * sin)), int(math.ceil(width * sin + height * cos))
    matrix[0, 2] += (new_w - width) / 2
    matrix[1, 2] += (new_h - height) / 2
    fill = (255,) * (image.shape[2] if image.ndim == 3 else 1)
    turned = cv2.warpAffine(image, matrix[:2], (new_w, new_h), flags=cv2.INTER_CUBIC,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return turned, matrix
