"""Split recognized lines into words with boxes, for word-level outputs (hOCR).

The boxes are an approximation: every character of a line gets an equal share of the
line's length, and a word's quad spans the shares of its characters along the line's top
and bottom edges. ``line_words`` is the single place to swap in exact geometry later
(e.g. from the CTC time step of each character).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .results import TextLine

__all__ = ["Word", "line_words", "quad_bbox"]

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    """A whitespace-separated word of a line and its (approximate) quad, float pixels."""

    text: str
    points: np.ndarray


def line_words(line: TextLine) -> list[Word]:
    """The words of ``line``: its CTC word boxes (``line.words``) when the recognizer gave them, else
    quads cut from the line's quad by character position."""
    if line.words:
        return [Word(word.text, np.asarray(word.points, dtype=np.float64)) for word in line.words]
    quad = np.asarray(line.points, dtype=np.float64).reshape(4, 2)
    count = len(line.text)
    if count == 0:
        return []
    top_left, top_right, bottom_right, bottom_left = quad
    words = []
    for match in _WORD.finditer(line.text):
        start, end = match.start() / count, match.end() / count
        points = np.array([
            top_left + (top_right - top_left) * start,
            top_left + (top_right - top_left) * end,
            bottom_left + (bottom_right - bottom_left) * end,
            bottom_left + (bottom_right - bottom_left) * start,
        ])
        words.append(Word(match.group(), points))
    return words


def quad_bbox(points: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Axis-aligned ``(x0, y0, x1, y1)`` around a quad, rounded and clipped to the page."""
    quad = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, width))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, height))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), x0, width))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), y0, height))
    return x0, y0, x1, y1
