"""Page steps: the 0/90/180/270 page classifier, deskew from the detected boxes, and quads mapped back to
the page as given (ocrlite.orientation, ``pipeline.page_orientation`` / ``pipeline.deskew``, ``ocr
--rotate-pages --deskew``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite import OCR
from ocrlite.cli import main
from ocrlite.orientation import _quarter_turn_matrix, deskew_image, estimate_skew, page_crop, rotate_upright
from ocrlite.results import PageResult, TextBox

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"
FORM = "0000971160"
_TURN_CW = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def _centres(page: PageResult) -> dict[str, np.ndarray]:
    return {line.text: np.asarray(line.points, dtype=np.float64).mean(axis=0) for line in page.lines}


def _half_form(shared_data: Path) -> np.ndarray:
    image = cv2.imread(str(shared_data / "funsd" / "images" / f"{FORM}.png"))
    return image[: image.shape[0] // 2]


def test_page_crop_is_short_side_resize_then_centre() -> None:
    image = np.zeros((512, 1024, 3), np.uint8)
    image[:, 512:] = 255  # right half white: the centre crop of the 256x512 resize shows both halves
    crop = page_crop(image, 256, 224)
    assert crop.shape == (224, 224, 3)
    assert crop[:, :100].max() <= 5 and crop[:, 124:].min() >= 250


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_quarter_turn_matrix_follows_the_pixels(angle: int) -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    image[7, 11] = 255  # pixel (x=11, y=7)
    turned = rotate_upright(image, angle)
    x, y = (_quarter_turn_matrix(angle, 60, 40) @ [11.5, 7.5, 1.0])[:2]
    assert turned[int(y), int(x)].max() == 255


def test_estimate_skew_is_the_median_of_long_boxes() -> None:
    def box(angle: float, length: float = 200, height: float = 20) -> TextBox:
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        along, across = np.array([c, s]) * length, np.array([-s, c]) * height
        return TextBox(np.array([[0, 0], along, along + across, across]), 0.9)

    assert estimate_skew([box(1.0), box(2.0), box(3.0), box(30.0, 40, 30)]) == pytest.approx(2.0)
    assert estimate_skew([box(2.0), box(2.0)]) == 0.0  # too few long boxes to tell


def test_deskew_levels_a_tilted_page_and_maps_boxes_back() -> None:
    upright = cv2.imread(str(SAMPLE))
    tilted, _ = deskew_image(upright, -3.0)  # turned 3 degrees clockwise: lines fall to the right
    plain = OCR(use_cls=False)
    page = OCR(use_cls=False, overrides=["pipeline.deskew=true"])(tilted)
    assert page.skew == pytest.approx(3.0, abs=0.5)
    assert (page.width, page.height) == tilted.shape[1::-1]
    assert page.to_dict()["skew"] == page.skew and "rotation" not in page.to_dict()
    reference = _centres(plain(tilted))
    found = _centres(page)
    common = set(reference) & set(found)
    assert len(common) >= 2
    for text in common:  # same places on the tilted page as when read without deskew
        assert np.abs(found[text] - reference[text]).max() <= 4.0, text


@pytest.mark.data
def test_turned_page_is_read_upright_with_boxes_on_the_input(shared_data: Path) -> None:
    upright = _half_form(shared_data)
    engine = OCR(use_cls=False, overrides=["pipeline.page_orientation=true"])
    reference = engine(upright)  # left as it is: the plain reading
    assert reference.rotation == 0
    height, width = upright.shape[:2]
    turned = cv2.rotate(upright, _TURN_CW[180])
    page = engine(turned)
    assert page.rotation == 180 and (page.width, page.height) == (width, height)
    expected = {text: np.array([width, height]) - centre for text, centre in _centres(reference).items()}
    found = _centres(page)
    common = set(expected) & set(found)
    assert len(common) >= 0.8 * len(expected)
    for text in common:
        assert np.abs(found[text] - expected[text]).max() <= 3.0, text


@pytest.mark.data
def test_cli_rotate_pages_reports_the_rotation(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "turned.png"
    cv2.imwrite(str(path), cv2.rotate(_half_form(shared_data), _TURN_CW[90]))
    result = CliRunner().invoke(main, ["ocr", "--rotate-pages", "--deskew", str(path)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["rotation"] == 90 and abs(record["skew"]) < 3
    assert "QUALITY IMPROVEMENT" in " ".join(line["text"] for line in record["lines"])
