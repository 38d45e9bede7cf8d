"""Page steps: the 0/90/180/270 page orientation (page classifier fused with the text lines), deskew from the
detected boxes, and quads mapped back to the page as given (ocrlite.page, ``pipeline.page_orientation``
/ ``pipeline.deskew``, ``ocr --rotate-pages --deskew``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite import OCR
from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.page.deskew import deskew_image, estimate_skew
from ocrlite.page.orientation import (
    PageLines,
    PageOrientationClassifier,
    TextProbe,
    page_crop,
    page_views,
    reading_evidence,
    text_evidence,
)
from ocrlite.page.steps import PageSteps, _quarter_turn_matrix, rotate_upright
from ocrlite.results import PageResult, TextBox, TextLine, TextWord
from ocrlite.settings import PagePreprocess
from ocrlite.stages import PAGE_KIND, stage_spec

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"
FORM = "0000971160"
HARD_FORM = "00922237"  # the page classifier alone gets this form wrong at every quarter turn
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


def test_page_views_pad_the_whole_page_and_tile_its_long_side() -> None:
    page = np.zeros((100, 300, 3), np.uint8)
    page[:, 100:200] = 100  # three 100x100 thirds: 0, 100, 200
    page[:, 200:] = 200
    pre = PagePreprocess(views=("centre", "padded", "tiles"), resize_short=8, crop=8)
    centre, padded, tiles = page_views(page, pre)
    assert [len(centre), len(padded), len(tiles)] == [1, 1, 3]
    assert all(square.shape == (8, 8, 3) for view in (centre, padded, tiles) for square in view)
    assert [int(tile.mean()) for tile in tiles] == [0, 100, 200]  # start, middle, end of the long side
    assert int(centre[0].mean()) == 100
    band = padded[0]
    assert (band[:2] == 255).all() and (band[-2:] == 255).all()  # white above and below the page
    assert [int(band[4, x].mean()) for x in (0, 4, 7)] == [0, 100, 200]
    tall = page_views(cv2.rotate(page, cv2.ROTATE_90_CLOCKWISE), pre)[2]
    assert [int(tile.mean()) for tile in tall] == [0, 100, 200]  # tiles run down a tall page


def test_page_views_are_checked() -> None:
    with pytest.raises(ConfigError, match="page.preprocess.views: \\('sideways',\\) is not allowed"):
        stage_spec(PAGE_KIND, None, ["preprocess.views=[sideways]"])
    with pytest.raises(ConfigError, match="at least one of centre, padded, tiles"):
        PageOrientationClassifier.from_config(overrides=["preprocess.views=[]"])


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_quarter_turn_matrix_follows_the_pixels(angle: int) -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    image[7, 11] = 255  # pixel (x=11, y=7)
    turned = rotate_upright(image, angle)
    x, y = (_quarter_turn_matrix(angle, 60, 40) @ [11.5, 7.5, 1.0])[:2]
    assert turned[int(y), int(x)].max() == 255


def _rect(width: float, height: float) -> TextBox:
    return TextBox(np.array([[10, 10], [10 + width, 10], [10 + width, 10 + height], [10, 10 + height]]), 0.9)


def test_text_evidence_reads_axis_from_shape_and_side_from_direction() -> None:
    def best(boxes: list[TextBox], directions: list[tuple[int, float]] | None) -> int:
        evidence = text_evidence(PageLines(tuple(boxes), (), None if directions is None else tuple(directions)))
        return (0, 90, 180, 270)[int(np.argmax(evidence))]

    wide, tall = [_rect(200, 20)] * 3, [_rect(20, 200)] * 3
    assert best(wide, [(0, 0.95)] * 3) == 0
    assert best(wide, [(180, 0.95)] * 3) == 180
    assert best(tall, [(0, 0.95)] * 3) == 90  # crop_quad turns tall crops counter-clockwise: upright at 90
    assert best(tall, [(180, 0.95)] * 3) == 270
    # squares say nothing; without a line classifier the axis still counts, split evenly
    assert not text_evidence(PageLines((_rect(30, 30),) * 5, (), ((180, 1.0),) * 5)).any()
    axis_only = text_evidence(PageLines(tuple(tall), (), None))
    assert axis_only[1] == axis_only[3] > axis_only[0] == axis_only[2]
    # a long line weighs more than a short word: one 10:1 line against two 2:1 words
    assert best([_rect(300, 30), _rect(40, 20), _rect(40, 20)], [(0, 0.9), (180, 0.9), (180, 0.9)]) == 0


def test_classifier_is_skipped_only_when_the_lines_decide_beyond_its_reach() -> None:
    calls = []

    def uniform(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        return np.full((len(batch), 4), 0.25, np.float32)

    classifier = PageOrientationClassifier.from_config(runner=uniform)  # recheck 0.9, line doubt 0.2
    page = np.full((100, 100, 3), 255, np.uint8)
    # a sure 10:1 wide line: log(0.85 / 0.05) = 2.83 for 0 over each other angle; beyond reach takes
    # -log(1e-6) + log(3 * 0.9 / 0.1) = 17.11, so 7 such lines (19.8) skip the classifier and 6 (17.0) do not
    for count, runs in ((7, 0), (6, 1)):
        calls.clear()
        lines = PageLines((_rect(300, 30),) * count, (), ((0, 1.0),) * count)
        angle, probability = classifier.decide(page, lines)
        assert (angle, len(calls)) == (0, runs) and probability >= 0.9


@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_reading_evidence_prefers_the_side_the_recognizer_reads_best(angle: int) -> None:
    upright = cv2.imread(str(SAMPLE))
    page = upright if angle == 0 else cv2.rotate(upright, _TURN_CW[angle])
    engine = OCR(use_cls=False)
    read: list[int] = []

    def confidence(crops: list[np.ndarray]) -> list[float]:
        read.append(len(crops))
        return engine.confidences(crops)

    evidence = reading_evidence(engine.lines(page), confidence, count=2, weight=1.0)
    assert read == [4]  # the two longest lines, each as given and turned 180 degrees, in one call
    side = angle // 90
    other_axis = (side + 1) % 4, (side + 3) % 4
    assert evidence[side] > evidence[(side + 2) % 4] + 1.0  # upside-down text reads with low confidence
    assert evidence[other_axis[0]] == evidence[other_axis[1]] == 0.0  # the lines' shape gives the axis


def test_estimate_skew_is_the_median_of_long_boxes() -> None:
    def box(angle: float, length: float = 200, height: float = 20) -> TextBox:
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        along, across = np.array([c, s]) * length, np.array([-s, c]) * height
        return TextBox(np.array([[0, 0], along, along + across, across]), 0.9)

    assert estimate_skew([box(1.0), box(2.0), box(3.0), box(30.0, 40, 30)]) == pytest.approx(2.0)
    assert estimate_skew([box(2.0), box(2.0)]) == 0.0  # too few long boxes to tell


def test_deskewed_quads_are_clipped_to_the_page() -> None:
    """The deskewed page lies on a canvas grown to hold it: a line read up to the canvas's corners maps back
    outside the page as given, and its points, and its words', are clipped to the page as the detector's are."""
    def tilted(y: float) -> TextBox:
        c, s = np.cos(np.radians(5.0)), np.sin(np.radians(5.0))
        along, across = np.array([c, s]) * 300, np.array([-s, c]) * 20
        return TextBox(np.array([[10, y], along + [10, y], along + across + [10, y], across + [10, y]]), 0.9)

    image = np.full((200, 400, 3), 255, np.uint8)
    lines = PageLines(tuple(tilted(y) for y in (20, 70, 120)), (), None)
    probe = TextProbe(detect=lambda page: lines, confidence=lambda crops: [])

    def read(page: np.ndarray, found: PageLines) -> PageResult:
        height, width = page.shape[:2]
        assert (width, height) > (400, 200)  # the grown canvas
        corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
        word = TextWord("EDGE", corners.astype(np.float64), 0.9)
        return PageResult(width, height, (TextLine(corners, "EDGE", 0.9, 0.9, 0, (word,)),))

    page = PageSteps(None, deskew=True)(image, probe, read)
    assert page.skew == pytest.approx(5.0) and (page.width, page.height) == (400, 200)
    for points in (page.lines[0].points, page.lines[0].words[0].points):
        assert points[:, 0].min() == 0 and points[:, 0].max() == 399
        assert points[:, 1].min() == 0 and points[:, 1].max() == 199
    assert all(0 <= x <= 399 and 0 <= y <= 199 for word in page.to_dict()["lines"][0]["words"]
               for x, y in word["points"])


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
    runs = []
    net = engine.detector.runner
    engine.detector.runner = lambda batch: runs.append(batch.shape) or net(batch)  # type: ignore[assignment]
    reference = engine(upright)  # left as it is: the plain reading
    assert reference.rotation == 0 and len(runs) == 1  # the upright page's detections were reused
    height, width = upright.shape[:2]
    turned = cv2.rotate(upright, _TURN_CW[180])
    page = engine(turned)
    assert len(runs) == 3  # the page as given, then the page turned upright
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


@pytest.mark.data
def test_fused_decision_is_right_where_the_classifier_alone_is_not(shared_data: Path) -> None:
    engine = OCR(overrides=["pipeline.page_orientation=true"])
    assert engine.page_steps is not None and engine.page_steps.classifier is not None
    classifier = engine.page_steps.classifier
    as_trained = PageOrientationClassifier.from_config(overrides=["preprocess.views=[centre]"])
    upright = cv2.imread(str(shared_data / "funsd" / "images" / f"{HARD_FORM}.png"))
    for angle in (0, 90, 180, 270):
        page = upright if angle == 0 else cv2.rotate(upright, _TURN_CW[angle])
        assert as_trained(page)[0] != angle  # the converted classifier alone, on its centre crop, is wrong here
        decided, probability = classifier.correction(page, engine.lines(page))
        assert decided == angle and probability > 0.9, (angle, decided, probability)


@pytest.mark.data
def test_recognizer_readings_turn_a_street_photo_the_line_votes_got_wrong(shared_data: Path, tmp_path: Path) -> None:
    # ICDAR 2015 img_94 (book-shop signs: FICTION, NON-FICTION, ...) turned a quarter clockwise: the page
    # classifier and the lines' shape and line-classifier votes pick the wrong side (180); reading the words
    # and the page turned a quarter, as --rotate-pages does while a page is in doubt, turns it back right.
    upright = cv2.imread(str(shared_data / "icdar2015" / "images" / "img_94.jpg"))
    page = cv2.rotate(upright, _TURN_CW[90])
    engine = OCR(overrides=["pipeline.page_orientation=true"])
    assert engine.page_steps is not None and engine.page_steps.classifier is not None
    classifier = engine.page_steps.classifier
    lines = engine.lines(page)
    assert classifier.correction(page, lines)[0] != 90  # without the recognizer: wrong
    assert classifier.decide(page, lines, engine.probe)[0] == 90
    path = tmp_path / "turned.jpg"
    cv2.imwrite(str(path), page)
    result = CliRunner().invoke(main, ["ocr", "--rotate-pages", str(path)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["rotation"] == 90
    assert "FICTION" in " ".join(line["text"] for line in record["lines"]).upper()
    # the pipeline's page section takes --set: never asking the recognizer leaves the wrong side
    result = CliRunner().invoke(main, ["ocr", "--rotate-pages", "--set", "page.postprocess.recheck=0", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rotation"] != 90


def test_page_settings_are_checked_like_every_stage_setting() -> None:
    result = CliRunner().invoke(main, ["ocr", "--rotate-pages", "--set", "page.postprocess.thresh=2", str(SAMPLE)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "ocrlite: error: page.postprocess.thresh: 2.0 is out of range; allowed: 0.0..1.0 "
        "(from the override 'page.postprocess.thresh=2')"]


def test_searchable_pdf_of_an_upside_down_page_copies_each_line_in_reading_order() -> None:
    """``--rotate-pages --format pdf`` on a page turned 180 degrees: each line's quad, mapped back, runs right to
    left on the page, and its text must copy as read (one stretch, as for a line read turned 180 degrees); placed
    word by word it copied backwards ("No.48213 Invoice")."""
    import pypdfium2 as pdfium

    from ocrlite.io.writers import PageRecord, PdfWriter

    turned = cv2.rotate(cv2.imread(str(SAMPLE)), cv2.ROTATE_180)
    page = OCR(overrides=["pipeline.page_orientation=true"])(turned)
    assert page.rotation == 180 and any(" " in line.text for line in page.lines)
    writer = PdfWriter("turned.png")
    writer.add(PageRecord(1, page, 72.0, image=turned))
    doc = pdfium.PdfDocument(writer.render())
    try:
        copied = doc[0].get_textpage().get_text_range().split("\r\n")
    finally:
        doc.close()
    assert sorted(" ".join(text.split()) for text in copied) == sorted(line.text for line in page.lines)
