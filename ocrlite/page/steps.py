"""The optional page steps before a page is read: turn it upright (``ocrlite.page.orientation``), then level
a small tilt (``ocrlite.page.deskew``); every quad of the result is mapped back to the original page's pixels
through the inverse of the applied transform."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ocrlite.page.deskew import deskew_image, estimate_skew
from ocrlite.page.orientation import PageLines, PageOrientationClassifier, TextProbe
from ocrlite.results import PageResult, TextLine
from ocrlite.stages import StageSpec

__all__ = ["rotate_upright", "PageSteps", "page_steps"]

_ROTATE_CCW = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def rotate_upright(image: np.ndarray, angle: int) -> np.ndarray:
    """Turn ``image`` counter-clockwise by ``angle`` (0/90/180/270), undoing a clockwise turn of its content."""
    angle %= 360
    return image if angle == 0 else cv2.rotate(image, _ROTATE_CCW[angle])


def _quarter_turn_matrix(angle: int, width: int, height: int) -> np.ndarray:
    """3x3 map of page pixels to the pixels of the page turned counter-clockwise by ``angle``."""
    angle %= 360
    if angle == 90:
        return np.array([[0, 1, 0], [-1, 0, width], [0, 0, 1]], dtype=np.float64)
    if angle == 180:
        return np.array([[-1, 0, width], [0, -1, height], [0, 0, 1]], dtype=np.float64)
    if angle == 270:
        return np.array([[0, -1, height], [1, 0, 0], [0, 0, 1]], dtype=np.float64)
    return np.eye(3)


def _map_points(points: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """``points`` mapped by ``matrix``, clipped to a ``width`` x ``height`` page as the detector clips its quads
    (a corner of the deskewed canvas, grown to hold the turned page, maps back outside the page)."""
    quad = np.asarray(points, dtype=np.float64).reshape(-1, 2) @ matrix[:2, :2].T + matrix[:2, 2]
    return np.clip(quad, 0, [width - 1, height - 1])


def _map_line(line: TextLine, matrix: np.ndarray, width: int, height: int) -> TextLine:
    words = tuple(replace(word, points=_map_points(word.points, matrix, width, height)) for word in line.words)
    points = np.rint(_map_points(line.points, matrix, width, height)).astype(np.int32)
    return replace(line, points=points, words=words)


@dataclass(frozen=True)
class PageSteps:
    """The optional page steps run before reading a page: turn it upright, then deskew it."""

    classifier: PageOrientationClassifier | None
    deskew: bool
    min_skew: float = 0.1  # degrees; smaller tilts are left alone

    def __call__(self, image: np.ndarray, probe: TextProbe,
                 read: Callable[[np.ndarray, PageLines], PageResult]) -> PageResult:
        """Read ``image`` after the page steps: ``probe.detect`` finds its lines (``probe`` also serves a page in
        doubt), ``read`` reads them. The detector runs again only on a page that was turned or levelled (or in
        doubt). Quads are mapped back to ``image``'s pixels and the result reports the applied ``rotation``
        (clockwise angle undone) and ``skew`` (degrees)."""
        height, width = image.shape[:2]
        to_work = np.eye(3)
        rotation: int | None = None
        skew: float | None = None
        detect = probe.detect
        lines = detect(image)
        if self.classifier is not None:
            rotation, _ = self.classifier.correction(image, lines, probe)
            if rotation:
                to_work = _quarter_turn_matrix(rotation, width, height)
                image = rotate_upright(image, rotation)
                lines = detect(image)
        if self.deskew:
            skew = estimate_skew(lines.boxes)
            if abs(skew) >= self.min_skew:
                image, turn = deskew_image(image, skew)
                to_work = turn @ to_work
                lines = detect(image)
            else:
                skew = 0.0
        result = read(image, lines)
        back = np.linalg.inv(to_work)
        mapped = tuple(_map_line(line, back, width, height) for line in result.lines)
        return PageResult(width=width, height=height, lines=mapped, rotation=rotation,
                          skew=None if skew is None else round(skew, 3))


def page_steps(page_orientation: bool, deskew: bool, page: StageSpec | None = None) -> PageSteps | None:
    """The page steps switched on (None when neither is): the page classifier of ``page`` (default: the shipped
    one) and/or deskew."""
    if not (page_orientation or deskew):
        return None
    return PageSteps(PageOrientationClassifier.from_config(page) if page_orientation else None, deskew)
