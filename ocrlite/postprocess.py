"""Turning network outputs into boxes, angles and strings (numpy/cv2/shapely/pyclipper only).

``DBPostProcess`` maps a DB probability map to quads, ``sort_reading_order`` orders them,
``classify_angles``/``needs_flip`` read the 0/180 classifier, ``ctc_greedy_decode`` reads
the recognizer and ``ctc_word_boxes`` places each word of a line from its CTC time steps
(``text_quad``: along the direction the line's text runs on the page).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

from ocrlite.charset import Charset
from ocrlite.preprocess import is_tall, quad_size
from ocrlite.results import TextLine, TextWord
from ocrlite.settings import setting

__all__ = [
    "DBPostProcess",
    "order_quad",
    "sort_reading_order",
    "CTCDecoded",
    "ctc_greedy_decode",
    "ctc_word_boxes",
    "line_words",
    "quad_span",
    "run_angle",
    "text_quad",
    "text_turns",
    "classify_angles",
    "needs_flip",
]

_SAME_LINE_PX = 10
_WORD = re.compile(r"\S+")
_MIN_BOX_SIDE_PX = 3


def order_quad(points: np.ndarray) -> np.ndarray:
    """Order 4 points clockwise from top-left.

    Of the two leftmost points (by x) the upper is top-left and the lower bottom-left; of
    the two rightmost the upper is top-right and the lower bottom-right (PaddleOCR's
    ``get_mini_boxes`` rule; unlike the min(x+y) rule it has no tie at 45 degrees).
    Returns a new 4x2 array of the input's dtype.
    """
    pts = np.asarray(points).reshape(4, 2)
    xs, ys = pts[:, 0].tolist(), pts[:, 1].tolist()  # Python's sort is stable; on 4 points it beats numpy's calls
    by_x = sorted(range(4), key=xs.__getitem__)
    left, right = sorted(by_x[:2], key=ys.__getitem__), sorted(by_x[2:], key=ys.__getitem__)
    return pts[[left[0], right[0], right[1], left[1]]]


def _mini_box(contour: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimum-area rectangle of a point set: (ordered 4x2 float32 corners, shorter side)."""
    rect = cv2.minAreaRect(contour)
    return order_quad(cv2.boxPoints(rect)), float(min(rect[1]))


def _mean_inside(prob: np.ndarray, polygon: np.ndarray) -> float:
    """Mean of ``prob`` over a polygon filled at int-truncated vertices (within its clipped bbox)."""
    h, w = prob.shape
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    xmin = int(np.clip(np.floor(poly[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(poly[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(poly[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(poly[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    shifted = (poly - [xmin, ymin]).astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0])


def _unclip(box: np.ndarray, unclip_ratio: float) -> np.ndarray | None:
    """Grow a box outward by area * ratio / perimeter with round joins; None unless one polygon results."""
    poly = Polygon(box)
    distance = poly.area * unclip_ratio / poly.length
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    expanded = offset.Execute(distance)
    if len(expanded) != 1:
        return None
    return np.asarray(expanded[0], dtype=np.float32).reshape(-1, 1, 2)


@dataclass
class DBPostProcess:
    """DB probability map -> text quads in source-image pixels (PaddleOCR's defaults).

    ``score_mode`` "fast" averages the map inside the rectangle, "slow" inside the contour.
    """

    thresh: float = setting(0.3, low=0.0, high=1.0)
    box_thresh: float = setting(0.6, low=0.0, high=1.0)
    unclip_ratio: float = setting(1.5, low=0.0, high=10.0)
    max_candidates: int = setting(1000, low=1)
    min_size: int = setting(3, low=0)
    score_mode: str = setting("fast", choices=("fast", "slow"))
    use_dilation: bool = setting(False)

    def text_mask(self, prob: np.ndarray) -> np.ndarray:
        """The text pixels of an HxW probability map: above ``thresh``, dilated 2x2 with ``use_dilation``; boxes
        are found in this mask."""
        mask = prob > self.thresh
        if self.use_dilation:
            mask = cv2.dilate(mask.astype(np.uint8), np.ones((2, 2), dtype=np.uint8)).astype(bool)
        return mask

    def __call__(self, prob_map: np.ndarray, src_h: int, src_w: int) -> list[tuple[np.ndarray, float]]:
        """Return (int32 4x2 quad clockwise from top-left, score) per box, in detection order.

        ``prob_map`` is the HxW map for the resized input; quads are scaled to
        ``src_h`` x ``src_w``, clipped to the image, and boxes with a side of 3 px or less dropped.
        """
        if prob_map.ndim != 2:
            raise ValueError(f"prob_map must be HxW, got shape {prob_map.shape}")
        prob = np.ascontiguousarray(prob_map, dtype=np.float32)
        mask = self.text_mask(prob).astype(np.uint8)
        contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        map_h, map_w = prob.shape
        results: list[tuple[np.ndarray, float]] = []
        for contour in contours[: self.max_candidates]:
            box, short_side = _mini_box(contour)
            if short_side < self.min_size:
                continue
            score = _mean_inside(prob, box if self.score_mode == "fast" else contour)
            if score < self.box_thresh:
                continue
            expanded = _unclip(box, self.unclip_ratio)
            if expanded is None:
                continue
            box, short_side = _mini_box(expanded)
            if short_side < self.min_size + 2:
                continue
            # Column by column in float32 with Python ints, as PaddleOCR does, for identical rounding.
            xs = np.clip(np.rint(box[:, 0] / map_w * src_w), 0, src_w - 1)
            ys = np.clip(np.rint(box[:, 1] / map_h * src_h), 0, src_h - 1)
            quad = order_quad(np.stack([xs, ys], axis=1).astype(np.int32))
            if (
                int(np.linalg.norm(quad[0] - quad[1])) <= _MIN_BOX_SIDE_PX
                or int(np.linalg.norm(quad[0] - quad[3])) <= _MIN_BOX_SIDE_PX
            ):
                continue
            results.append((quad, score))
        return results


def sort_reading_order(quads: Sequence[np.ndarray]) -> list[int]:
    """Indices of ``quads`` in reading order: top to bottom, left to right on one line.

    Sort by point 0's (y, x), then one bubble pass swaps neighbours whose top-left y differ
    by less than 10 px when the later one is further left (PaddleOCR's ``sorted_boxes``).
    """
    tops = [tuple(np.asarray(q).reshape(4, 2)[0]) for q in quads]
    order = sorted(range(len(quads)), key=lambda i: (tops[i][1], tops[i][0]))
    for i in range(len(order) - 1):
        for j in range(i, -1, -1):
            a, b = tops[order[j]], tops[order[j + 1]]
            if abs(b[1] - a[1]) < _SAME_LINE_PX and b[0] < a[0]:
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return order


class CTCDecoded(NamedTuple):
    """One decoded line: text, mean max-probability of its kept steps, and each char's time step.

    ``probs[i]`` is char ``i``'s probability. ``step_width`` is the width of one time step as a fraction of
    the crop's width (set by the recognizer, which knows the resize and padding; 0.0 when unknown).
    """

    text: str
    score: float
    steps: tuple[int, ...]
    probs: tuple[float, ...] = ()
    step_width: float = 0.0


def ctc_greedy_decode(probs: np.ndarray, charset: Charset) -> list[CTCDecoded]:
    """Greedy CTC decode of N x T x C probabilities (softmax already applied).

    Per step take the argmax class and its probability; keep a step when its class is not
    blank (0) and differs from the previous step's class. Score = mean probability of the
    kept steps, 0.0 when none is kept. ``steps[i]`` is the time step that emitted char ``i``.
    """
    if probs.ndim != 3:
        raise ValueError(f"probs must be N x T x C, got shape {probs.shape}")
    best = probs.argmax(axis=2)
    return ctc_decode_top1(best, np.take_along_axis(probs, best[:, :, None], axis=2)[:, :, 0], charset)


def ctc_decode_top1(best: np.ndarray, best_prob: np.ndarray, charset: Charset) -> list[CTCDecoded]:
    """Greedy CTC decode from the best class per step and its probability (N x T each); see ``ctc_greedy_decode``."""
    keep = best != 0
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    decoded = []
    for row, row_keep, row_prob in zip(best, keep, best_prob):
        steps = np.flatnonzero(row_keep)
        score = float(row_prob[steps].mean()) if steps.size else 0.0
        step_probs = tuple(float(p) for p in row_prob[steps])
        decoded.append(CTCDecoded(charset.decode(row[steps]), score, tuple(steps.tolist()), step_probs))
    return decoded


def ctc_word_boxes(decoded: CTCDecoded, quad: np.ndarray, angle: int = 0) -> tuple[TextWord, ...]:
    """Split a decoded line into space-separated words, each with a quad cut from the line's ``quad``.

    Character ``i`` was emitted at time step ``s_i``, centred at ``(s_i + 0.5) * step_width`` along the
    crop (a fraction of its width). Each character owns the stretch between the midpoints to its
    neighbours' centres; the first and last extend by half the median spacing between characters (one
    step when the line has a single character), clipped to the crop. A word spans its characters'
    stretches, and its quad interpolates the line's edges along its text (``text_quad``: ``angle`` 180
    means the crop was read turned 180 degrees) at those two fractions; its corners run clockwise from
    the top-left like the line's. Lines without step geometry (``step_width`` 0) or text give no words.
    """
    text, steps = decoded.text, decoded.steps
    if not text.strip() or decoded.step_width <= 0 or len(steps) != len(text):
        return ()
    # plain floats: a line's few dozen characters cost more in numpy calls than in arithmetic
    centres = [(step + 0.5) * decoded.step_width for step in steps]
    middles = [(left + right) / 2 for left, right in zip(centres, centres[1:])]
    half = statistics.median(right - left for left, right in zip(centres, centres[1:])) / 2 if middles \
        else decoded.step_width
    bounds = [min(1.0, max(0.0, bound)) for bound in (centres[0] - half, *middles, centres[-1] + half)]
    probs = decoded.probs or (decoded.score,) * len(text)
    along, turns = text_quad(quad, angle), text_turns(quad, angle)
    words = []
    for match in _WORD.finditer(text):
        start, end = bounds[match.start()], bounds[match.end()]
        score = float(np.mean(probs[match.start() : match.end()]))
        words.append(TextWord(match.group(), np.roll(quad_span(along, start, end), turns, axis=0), score))
    return tuple(words)


def line_words(line: TextLine) -> tuple[TextWord, ...]:
    """The words of ``line``: its CTC word boxes when the recognizer gave them, else quads cut along the
    line's text (``text_quad``) by character position (each character an equal share), scored with the
    line's score."""
    if line.words:
        return line.words
    count = len(line.text)
    along, turns = text_quad(line.points, line.angle), text_turns(line.points, line.angle)
    return tuple(
        TextWord(m.group(), np.roll(quad_span(along, m.start() / count, m.end() / count), turns, axis=0),
                 float(line.score))
        for m in _WORD.finditer(line.text)
    )


def text_quad(quad: np.ndarray, angle: int = 0) -> np.ndarray:
    """A line's quad (clockwise from its top-left on the page) starting at the corner where its text starts,
    so its first edge runs along the text as the recognizer read it: ``crop_quad`` turns a tall crop a
    quarter counter-clockwise (text running down the page), and a line read turned 180 degrees (``angle``)
    starts at the opposite corner; float64 4x2."""
    return np.roll(np.asarray(quad, dtype=np.float64).reshape(4, 2), -text_turns(quad, angle), axis=0)


def text_turns(quad: np.ndarray, angle: int) -> int:
    """Corners from a quad's top-left to where its text starts (see ``text_quad``)."""
    return (1 if is_tall(*quad_size(quad)) else 0) + (2 if angle == 180 else 0)


def run_angle(quad: np.ndarray) -> float:
    """Clockwise angle (degrees; y grows downwards) at which a quad (clockwise from the corner where its text
    starts, e.g. a ``text_quad``) runs on the page: the mean direction of its top and bottom edges."""
    top_left, top_right, bottom_right, bottom_left = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    dx, dy = (top_right - top_left + bottom_right - bottom_left) / 2
    return float(np.degrees(np.arctan2(dy, dx)))


def quad_span(quad: np.ndarray, start: float, end: float) -> np.ndarray:
    """The part of ``quad`` (clockwise from top-left) between fractions ``start`` and ``end`` of its length,
    interpolated along its top and bottom edges; float64 4x2."""
    top_left, top_right, bottom_right, bottom_left = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return np.array([
        top_left + (top_right - top_left) * start,
        top_left + (top_right - top_left) * end,
        bottom_left + (bottom_right - bottom_left) * end,
        bottom_left + (bottom_right - bottom_left) * start,
    ])


def classify_angles(probs: np.ndarray, labels: Sequence[int] = (0, 180)) -> list[tuple[int, float]]:
    """(angle label, probability) of the most likely class for each row of N x 2 probabilities."""
    best = probs.argmax(axis=1)
    return [(int(labels[i]), float(probs[row, i])) for row, i in enumerate(best)]


def needs_flip(angle: int, score: float, thresh: float = 0.9) -> bool:
    """Whether a crop should be turned 180 degrees: angle 180 with score strictly above ``thresh``
    (PaddleOCR/RapidOCR compare with ``>``)."""
    return angle == 180 and score > thresh
