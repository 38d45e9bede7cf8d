"""Result objects compare by value, their arrays included, as a user checking two reads expects, and read back
from the JSON ocrlite writes."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite import OCR, PageResult, TextBox
from ocrlite.cli import main
from ocrlite.io.images import read_image
from ocrlite.io.writers import json_text

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


def test_a_page_of_the_json_ocrlite_writes_reads_back_as_its_result(shared_data: Path, tmp_path: Path) -> None:
    """``PageResult.from_dict`` is ``to_dict``'s inverse: a batch JSON page of a real form reads back into the result
    the API gives (scores at the JSON's 5 decimals, word corners at its 0.1 px) and writes the same JSON again."""
    form = shared_data / "funsd" / "images" / "0000971160.png"
    run = CliRunner().invoke(main, ["ocr", str(form), "--rotate-pages", "--deskew", "-q", "-o", str(tmp_path)])
    assert run.exit_code == 0, run.stderr
    [written] = json.loads((tmp_path / f"{form.name}.json").read_text(encoding="utf-8"))["pages"]
    assert {"rotation", "skew", "dpi"} <= set(written)
    page = PageResult.from_dict(written)
    direct = OCR(overrides=["pipeline.page_orientation=true", "pipeline.deskew=true"])(form)
    assert page.to_dict() == direct.to_dict() == {k: v for k, v in written.items() if k not in ("page", "dpi")}
    assert PageResult.from_dict(json.loads(json_text(page.to_dict()))) == page
    assert (page.width, page.height, page.rotation, page.skew, page.text) == \
        (direct.width, direct.height, direct.rotation, direct.skew, direct.text)
    assert len(page.lines) > 20 and sum(len(line.words) for line in page.lines) > 50
    for got, want in zip(page.lines, direct.lines, strict=True):
        assert np.array_equal(got.points, want.points) and got.points.dtype == want.points.dtype
        assert (got.angle, got.text) == (want.angle, want.text) and got.score == pytest.approx(want.score, abs=1e-5)
        for word, wanted in zip(got.words, want.words, strict=True):
            assert word.text == wanted.text and np.allclose(word.points, wanted.points, atol=0.05)


@pytest.fixture(scope="module")
def sample_page() -> dict[str, Any]:
    """The sample's page as ``ocrlite ocr`` writes it (read once: each case changes a copy)."""
    return OCR()(SAMPLE).to_dict()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("width"), r"^page: missing 'width'$"),
    (lambda d: d["lines"][1].update(points=[[0, 0], [5, 0], [5, 5]]), r"^lines\[1\]\.points: expected four \[x, y\]"),
    (lambda d: d["lines"][0]["words"][0].update(score="high"), r"^lines\[0\]\.words\[0\]\.score: expected a number"),
    (lambda d: d.update(error="cannot render", lines=None) or d.pop("lines"), r"^page 1 was not read: cannot render$"),
    # JSON's NaN and huge numbers: were numpy's "cannot convert float NaN to integer" and an OverflowError, or
    # a NaN score taken as it was
    (lambda d: d["lines"][0]["points"][2].__setitem__(0, float("nan")), r"^lines\[0\]\.points: expected four"),
    (lambda d: d["lines"][2]["points"][0].__setitem__(1, 1e300), r"^lines\[2\]\.points: expected four"),
    (lambda d: d["lines"][3].update(det_score=float("nan")), r"^lines\[3\]\.det_score: expected a finite number"),
    # the page's own values: were taken as they were
    (lambda d: d.update(skew=float("nan")), r"^page\.skew: expected a finite number, got nan$"),
    (lambda d: d.update(width=-5), r"^page\.width, page\.height: expected sizes of 0 or more, got -5 x "),
    (lambda d: d.update(rotation=45), r"^page\.rotation: expected 0, 90, 180 or 270, got 45$"),
])
def test_malformed_page_json_is_a_value_error_naming_the_value(change: object, message: str,
                                                               sample_page: dict[str, Any]) -> None:
    data = {"page": 1, **copy.deepcopy(sample_page)}
    change(data)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        PageResult.from_dict(data)


def test_the_boxes_detect_prints_read_back() -> None:
    run = CliRunner().invoke(main, ["detect", str(SAMPLE)])
    assert run.exit_code == 0, run.stderr
    printed = json.loads(run.stdout)["boxes"]
    boxes = [TextBox.from_dict(box) for box in printed]
    assert [box.to_dict() for box in boxes] == printed
    assert [box.points.tolist() for box in boxes] == [box.points.tolist() for box in OCR().detect(SAMPLE)]
