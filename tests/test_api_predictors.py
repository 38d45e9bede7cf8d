"""The public predictors (``ocrlite.TextDetector``, ``TextClassifier``, ``TextRecognizer``) and ``OCR.orient`` /
``OCR.confidences`` take images as ``OCR`` takes them, or say what they take: never a numpy error from inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ocrlite import OCR, TextClassifier, TextDetector, TextRecognizer
from ocrlite.errors import ConfigError
from ocrlite.io.images import read_image

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"
PAGE = read_image(SAMPLE)
LINE = PAGE[30:62, 40:285]  # "OCRLITE 2026"
GREY_LINE = cv2.cvtColor(LINE, cv2.COLOR_BGR2GRAY)
SINGLE = r"^crops must be a list of images \(arrays or paths\), got ndarray; put a single one in a list$"


@pytest.fixture(scope="module")
def ocr() -> OCR:
    return OCR(use_cls=True)


def bgr_of(grey: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def _boxes(boxes: list[Any]) -> list[tuple[list[list[int]], float]]:
    return [(box.points.tolist(), box.score) for box in boxes]


def test_the_detector_takes_a_path_or_a_grey_array_as_ocr_does(ocr: OCR) -> None:
    det = ocr.detector
    found = _boxes(det(PAGE))
    assert len(found) == 4
    assert _boxes(det(SAMPLE)) == _boxes(det(str(SAMPLE))) == found  # was: 'str' object has no attribute 'shape'
    grey = cv2.cvtColor(PAGE, cv2.COLOR_BGR2GRAY)  # was: operands could not be broadcast together
    assert _boxes(det(grey)) == _boxes(ocr.detect(grey))
    assert np.array_equal(det.probability_map(grey), det.probability_map(bgr_of(grey)))
    with pytest.raises(TypeError, match=r"^expected a uint8 \(or uint16\) image array, got float64"):
        det(PAGE / 255.0)  # was: read as an image of values 0..1, no text found, no error
    with pytest.raises(TypeError, match="^expected an image path .*, a numpy image array or a PIL image, got list$"):
        det([PAGE])


def test_the_recognizer_and_classifier_take_a_list_of_crops_as_ocr_does(ocr: OCR) -> None:
    rec, cls = ocr.recognizer, ocr.line_classifier
    assert [d.text for d in rec([GREY_LINE, LINE, SAMPLE])][:2] == ["OCRLITE 2026"] * 2
    assert rec([GREY_LINE]) == rec([bgr_of(GREY_LINE)])
    assert cls([GREY_LINE]) == cls([bgr_of(GREY_LINE)])
    assert cls([LINE, cv2.rotate(LINE, cv2.ROTATE_180)])[1][0] == 180
    for predictor in (rec, cls):  # one crop in place of the list: was a broadcast error / an ambiguous truth value
        with pytest.raises(TypeError, match=SINGLE):
            predictor(LINE)
        with pytest.raises(ValueError, match="no pixels"):
            predictor([np.zeros((0, 5, 3), np.uint8)])
    assert rec([]) == [] and cls(()) == []


def test_predictors_built_alone_check_their_input_too() -> None:
    with pytest.raises(TypeError, match=SINGLE):
        TextRecognizer.from_config("rec_ppocrv2.yaml")(LINE)
    with pytest.raises(TypeError, match=SINGLE):
        TextClassifier.from_config()(LINE)
    assert len(TextDetector.from_config()(str(SAMPLE))) == 4


def test_a_resolved_spec_builds_only_its_own_stage_and_takes_no_overrides(ocr: OCR) -> None:
    with pytest.raises(ConfigError, match="^expected a det stage spec, got the rec stage's$"):
        TextDetector.from_config(ocr.spec.rec)  # was: a "detector" with the recognizer's net and settings
    with pytest.raises(ConfigError, match="^expected a rec stage spec, got the cls stage's$"):
        TextRecognizer.from_config(ocr.spec.cls)  # was: a bare AssertionError
    with pytest.raises(ConfigError, match="^overrides apply to a stage config, not to a resolved StageSpec"):
        TextRecognizer.from_config(ocr.spec.rec, ["preprocess.batch_size=2"])  # was: left aside without a word
    rec = TextRecognizer.from_config(ocr.spec.rec, (), runner=ocr.recognizer.runner)
    assert [d.text for d in rec([LINE])] == ["OCRLITE 2026"]


def test_predictor_overrides_take_the_stage_prefix_their_hint_and_set_give() -> None:
    """A stage key left without its section was "did you mean rec.preprocess.batch_size?", and that key was
    "config has no section 'rec'": predictors now take the pipeline tree's keys as ``--set`` does."""
    with pytest.raises(ConfigError, match="did you mean rec.preprocess.batch_size"):
        TextRecognizer.from_config(overrides=["batch_size=3"])
    rec = TextRecognizer.from_config(overrides=["rec.preprocess.batch_size=3"])
    assert rec.pre.batch_size == 3 and [d.text for d in rec([LINE])] == ["OCRLITE 2026"]
    assert TextRecognizer.from_config("rec_ppocrv2.yaml", ["preprocess.batch_size=4"]).pre.batch_size == 4
    with pytest.raises(ConfigError, match="^override 'det.postprocess.box_thresh=0.5' does not apply to the rec "
                                          "stage config shipped with ocrlite$"):
        TextRecognizer.from_config(overrides=["det.postprocess.box_thresh=0.5"])


def test_a_pipeline_config_or_a_preset_name_given_to_a_predictor_says_where_it_goes() -> None:
    """A pipeline config was "rec: unknown key 'det'"; a preset's name said to pass it as model=..., which the
    predictors do not take: both now name OCR(...), which builds these predictors from them."""
    with pytest.raises(ConfigError, match=r"^ocr_ppocr_v2.yaml is a pipeline config; give a rec stage config here "
                                          r"\(or the pipeline config to OCR\(config=...\)"):
        TextRecognizer.from_config("ocr_ppocr_v2.yaml")
    with pytest.raises(ConfigError, match="^the mapping given is a pipeline config; give a det stage config here"):
        TextDetector.from_config({"det": "det_ppocrv3.yaml", "rec": "rec_ppocrv2.yaml"})
    with pytest.raises(ConfigError, match=r"that is a preset's name: give it as the model \(OCR\(model=...\), "
                                          r"--model\)$"):
        TextClassifier.from_config("ppocr-v3")
    assert OCR(model="ppocr-v3", stages=("rec",)).recognizer([LINE])[0].text == "OCRLITE 2026"


def test_orient_and_confidences_take_crops_as_recognize_does(ocr: OCR) -> None:
    with pytest.raises(TypeError, match=SINGLE):
        ocr.orient(LINE)  # was: The truth value of an array with more than one element is ambiguous
    with pytest.raises(TypeError, match=SINGLE):
        ocr.confidences(LINE)  # was: non-broadcastable output operand
    with pytest.raises(TypeError, match=r"^crops must be a list \(its crops are turned in place\), got tuple$"):
        ocr.orient((LINE,))
    crops = [cv2.rotate(GREY_LINE, cv2.ROTATE_180), LINE]
    assert ocr.orient(crops) == [180, 0]
    assert np.array_equal(crops[0], bgr_of(GREY_LINE)) and crops[1] is LINE  # turned in place; BGR kept as it is
    assert ocr.confidences([GREY_LINE]) == ocr.confidences([bgr_of(GREY_LINE)])
