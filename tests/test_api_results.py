"""Result objects compare by value, their arrays included, as a user checking two reads expects."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ocrlite import OCR
from ocrlite.io.images import read_image

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"


def test_two_reads_of_one_image_are_equal_and_a_moved_quad_is_not() -> None:
    ocr = OCR()
    first, again = ocr(SAMPLE), ocr(read_image(SAMPLE))
    assert len(first.lines) == 4 and first.lines[0].words
    assert first == again  # was ValueError: the truth value of an array ... is ambiguous
    assert first.lines[1] in again.lines and ocr.detect(SAMPLE) == ocr.detect(SAMPLE)
    line = first.lines[0]
    assert line != replace(line, points=line.points + 1)
    assert line != replace(line, words=(replace(line.words[0], points=line.words[0].points[::-1]),))
    assert first != replace(first, lines=first.lines[1:]) and first != first.to_dict()
    with pytest.raises(TypeError, match="unhashable type: 'PageResult'"):
        hash(first)
    points = np.array(line.points)
    assert replace(line, points=points) == line and replace(line, points=points.tolist()) != line
