"""``--draw``: the text panel beside the page puts each line's text in its box."""

from __future__ import annotations

import numpy as np
import pytest

from ocrlite.io.draw import draw_lines
from ocrlite.results import TextLine

_BOX = np.array([[100, 100], [300, 100], [300, 130], [100, 130]], dtype=np.float64)  # clockwise from top-left
_TALL = np.array([[100, 40], [130, 40], [130, 240], [100, 240]], dtype=np.float64)


def _text_pixels(drawing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the black text pixels of the panel (the right half; boxes are drawn in colour)."""
    panel = drawing[:, drawing.shape[1] // 2:]
    ys, xs = np.nonzero(panel.max(axis=2) < 60)
    return xs, ys


@pytest.mark.parametrize(("quad", "turns", "angle"), [(_BOX, 2, 180), (_TALL, 1, 0), (_TALL, 3, 180)])
def test_a_line_of_a_turned_page_is_drawn_as_the_same_line_read_as_given(quad: np.ndarray, turns: int,
                                                                         angle: int) -> None:
    """``--rotate-pages`` maps each quad back to the page starting at the corner where its text starts (upside
    down: bottom-right); the panel wrote the text from that corner, outside the box. The same line read without
    the page turned (quad from its top-left, read turned 180 degrees or as a tall crop) is drawn the same."""
    page = np.full((300, 400, 3), 255, dtype=np.uint8)
    mapped = TextLine(np.roll(quad, -turns, axis=0), "HELLO", 0.9, 0.9, 0)
    as_given = TextLine(quad, "HELLO", 0.9, 0.9, angle)
    drawn = draw_lines(page, [mapped])
    assert np.array_equal(drawn, draw_lines(page, [as_given]))
    xs, ys = _text_pixels(drawn)
    assert xs.size and xs.min() >= quad[:, 0].min() and ys.min() >= quad[:, 1].min()
    assert ys.max() <= quad[:, 1].min() + 30  # one text line high: the line's height, not its length
