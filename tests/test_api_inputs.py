"""The Python API's arguments: clear errors for what it cannot take, file-like conversions for what it can."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ocrlite import OCR, TextDetector
from ocrlite.errors import ConfigError, ImageReadError
from ocrlite.io.arguments import image_array
from ocrlite.io.images import bgr_array, read_image

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"
PAGE = read_image(SAMPLE)
LINE = PAGE[30:62, 40:285]  # "OCRLITE 2026"


@pytest.fixture(scope="module")
def ocr() -> OCR:
    return OCR()


def _texts(ocr: OCR, image: Any) -> list[str]:
    return [line.text for line in ocr(image).lines]


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (None, TypeError, "expected an image path (str or Path), a numpy image array or a PIL image, got NoneType"),
        (SAMPLE.read_bytes(), TypeError, "got bytes; decode encoded image bytes with"),
        (PAGE.tolist(), TypeError, "got list"),
        (PAGE / 255.0, TypeError, "expected a uint8 (or uint16) image array, got float64; convert it first: "
                                  "image.astype(np.uint8) for values in 0..255, (image * 255).round().astype(np.uint8) "
                                  "for values in 0..1"),
        (PAGE.astype(np.float32), TypeError, "got float32"),
        (PAGE.astype(np.int64), TypeError, "got int64"),
        (PAGE > 128, TypeError, "got bool"),
        (np.zeros((0, 0, 3), np.uint8), ValueError, "image array has no pixels (shape (0, 0, 3))"),
        (np.zeros((10, 0, 3), np.uint8), ValueError, "no pixels"),
        (np.zeros(10, np.uint8), ValueError, "HxW or HxWx1 (grey) or HxWx4 (BGRA), got shape (10,)"),
        (PAGE[None], ValueError, "got shape (1, 300, 640, 3)"),
        (PAGE[:, :, :2], ValueError, "got shape (300, 640, 2)"),
    ],
)
def test_an_image_it_cannot_take_is_a_clear_error(ocr: OCR, image: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        ocr(image)
    assert message in str(raised.value)
    with pytest.raises(error):
        ocr.recognize([image])


@pytest.mark.parametrize(
    "convert",
    [
        lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),  # HxW
        lambda bgr: cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None],  # HxWx1
        lambda bgr: bgr.astype(np.uint16) * 257,  # 16 bits: the same image exactly
        lambda bgr: np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]),  # BGRA, opaque
    ],
    ids=["grey", "grey-1-channel", "uint16", "bgra"],
)
def test_grey_bgra_and_16_bit_arrays_read_like_the_image(ocr: OCR, convert: Any) -> None:
    texts = _texts(ocr, PAGE)
    assert texts[:2] == ["OCRLITE2026", "Invoice No.48213"]
    assert _texts(ocr, convert(PAGE)) == texts


def test_arrays_are_converted_as_read_image_converts_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bgra = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    for name, array in (("bgra.png", bgra), ("grey16.png", grey16)):
        cv2.imwrite(str(tmp_path / name), array)
        assert np.array_equal(bgr_array(array), read_image(tmp_path / name)), name
    transparent = np.zeros((1, 2, 4), np.uint8)
    transparent[0, 1] = (0, 0, 255, 255)
    assert bgr_array(transparent).tolist() == [[[255, 255, 255], [0, 0, 255]]]  # on white
    assert bgr_array(PAGE) is PAGE  # BGR uint8: used as it is


def test_a_pillow_image_is_read_as_its_file_would_be(ocr: OCR, tmp_path: Path) -> None:
    """A PIL image (Pillow is a dependency) was a TypeError, "got PngImageFile", and ``np.asarray(image)``, the way
    round it, hands the nets RGB as BGR in silence. It is now converted as ``read_image`` converts its file:
    channels to BGR, alpha on white, 16-bit scaled, EXIF orientation applied."""
    from PIL import Image

    with Image.open(SAMPLE) as image:
        assert np.array_equal(image_array(image), PAGE)
        assert _texts(ocr, image) == _texts(ocr, PAGE)
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: stored upside down
    Image.fromarray(cv2.rotate(PAGE, cv2.ROTATE_180)[:, :, ::-1]).save(turned, exif=exif)
    rng = np.random.default_rng(0)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(rng.integers(0, 256, (20, 30, 4), dtype=np.uint8), "RGBA").save(rgba)
    grey16 = tmp_path / "grey16.png"
    cv2.imwrite(str(grey16), rng.integers(0, 65536, (20, 30), dtype=np.uint16))
    for path in (turned, rgba, grey16):
        with Image.open(path) as image:
            assert np.array_equal(image_array(image), read_image(path)), path.name
    with Image.open(turned) as image:
        texts = _texts(ocr, image)
    assert texts == _texts(ocr, turned) and texts[0] == "OCRLITE2026"  # upright, as its file is read
    assert [text for text, _ in ocr.recognize([Image.fromarray(LINE[:, :, ::-1])])] == ["OCRLITE 2026"]


def test_a_pillow_image_closed_before_it_was_read_is_said_so(ocr: OCR) -> None:
    """``Image.open`` reads pixels lazily: an image whose with block ended unread was "corrupt or truncated image
    data ()", sending the caller after a sound file."""
    from PIL import Image

    with Image.open(SAMPLE) as image:
        pass
    with pytest.raises(ImageReadError, match=r"sample\.png: the PIL image was closed before its pixels were read"):
        ocr(image)
    with Image.open(SAMPLE) as image:
        kept = image.copy()
    assert _texts(ocr, kept) == _texts(ocr, PAGE)  # what the message advises works


def test_recognize_takes_a_list_of_crops(ocr: OCR, tmp_path: Path) -> None:
    path = tmp_path / "line.png"
    cv2.imwrite(str(path), LINE)
    assert [text for text, _ in ocr.recognize([LINE, path, str(path)])] == ["OCRLITE 2026"] * 3
    for single in (str(path), path, LINE):
        with pytest.raises(TypeError, match=r"^crops must be a list of images \(arrays or paths\), got .*; put a "):
            ocr.recognize(single)
    with pytest.raises(TypeError, match="^crops must be a list of images .*, got NoneType$"):
        ocr.recognize(None)
    with pytest.raises(ValueError, match="no pixels"):
        ocr.recognize([np.zeros((0, 5, 3), np.uint8)])


def test_bad_constructor_arguments_are_clear_errors() -> None:
    with pytest.raises(TypeError, match="^overrides must be a list of 'section.key=value' strings, got str"):
        OCR(overrides="pipeline.drop_score=0.3")
    with pytest.raises(ConfigError, match="^unknown stage 'foo' in stages; choose from: det, cls, rec$"):
        OCR(stages=("foo",))
    with pytest.raises(TypeError, match="^stages must be a list of stage names, got str"):
        OCR(stages="rec")
    with pytest.raises(TypeError, match=r"^config must be a config file path or name \(str or Path\), got int$"):
        OCR(config=123)
    assert OCR(overrides=["pipeline.drop_score=0.3"], stages=["rec"]).settings.drop_score == 0.3
    with pytest.raises(TypeError, match="^drop_score must be a number or None, got '0.5'$"):
        OCR(drop_score="0.5")
    with pytest.raises(TypeError, match="^use_cls must be True, False or None, got 'yes'$"):
        OCR(use_cls="yes")
    with pytest.raises(ConfigError, match="^pipeline.drop_score: expected a finite number, got nan$"):
        OCR(drop_score=float("nan"))
    switched = OCR(drop_score=1e-5, use_cls=False, stages=["rec"]).settings
    assert (switched.drop_score, switched.use_cls) == (1e-5, False)
    # numpy's scalars, as a caller computing them passes them: np.float64 was yaml's RepresenterError from inside,
    # np.float32 and np.False_ a TypeError saying to pass a number or a bool
    numpy_given = OCR(drop_score=np.float64(0.3), use_cls=np.False_, stages=["rec"]).settings
    assert (numpy_given.drop_score, numpy_given.use_cls) == (0.3, False)
    assert OCR(drop_score=np.float32(0.25), stages=["rec"]).settings.drop_score == 0.25
    with pytest.raises(TypeError, match=r"^drop_score must be a number or None, got np\.True_$"):
        OCR(drop_score=np.True_)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"backend": 1}, r"^backend must be a backend name \(str\) or None, got int$"),
    ({"backend": ["onnxruntime"]}, r"^backend must be a backend name \(str\) or None, got list$"),
    ({"model": 2}, r"^model must be a preset name \(str\) or None, got int$"),
])
def test_a_wrong_typed_backend_or_model_is_a_type_error(arguments: dict[str, Any], message: str) -> None:
    """As every other argument of the wrong type is: it was a ConfigError ("backend 1 is not allowed")."""
    with pytest.raises(TypeError, match=message):
        OCR(**arguments)
    with pytest.raises(ConfigError, match="^backend 'tpu' is not allowed; choose one of: torch, onnxruntime$"):
        OCR(backend="tpu")  # a name that is not a backend stays a ConfigError


@pytest.mark.parametrize("item", [3, None, b"pipeline.drop_score=0.3", ("pipeline.drop_score", 0.3)])
def test_an_override_that_is_not_a_string_is_a_type_error_naming_it(item: Any) -> None:
    message = rf"^overrides must be a list of 'section.key=value' strings, got the item {re.escape(repr(item))} "
    with pytest.raises(TypeError, match=message):  # was AttributeError: 'int' object has no attribute 'partition'
        OCR(overrides=["pipeline.drop_score=0.3", item], stages=["rec"])
    with pytest.raises(TypeError, match=message):  # a single stage config splits keys before applying them
        OCR("det_ppocrv3.yaml", [item], stages=["det"])
    with pytest.raises(TypeError, match=message):
        TextDetector.from_config(overrides=[item])
    with pytest.raises(TypeError, match=r"^overrides must be a list of .*, got str; put a single one in a list$"):
        TextDetector.from_config(overrides="postprocess.box_thresh=0.9")


def test_a_pdf_or_multi_page_tiff_path_is_not_read_as_one_image_in_silence(tmp_path: Path) -> None:
    from PIL import Image

    from ocrlite.errors import ImageReadError

    ocr = OCR(stages=("det",))
    upright = Image.fromarray(cv2.cvtColor(PAGE, cv2.COLOR_BGR2RGB))
    upright.save(tmp_path / "scan.pdf", save_all=True, append_images=[upright])
    with pytest.raises(ImageReadError, match=r"scan.pdf: a PDF is not an image; read its pages with OCR.read_docu"):
        ocr.detect(tmp_path / "scan.pdf")  # was: not a recognised image file
    upright.save(tmp_path / "fax.tiff", save_all=True, append_images=[upright.rotate(180)])
    with pytest.warns(UserWarning, match=r"fax.tiff: the first of its 2 pages is read; OCR.read_documents reads"):
        boxes = ocr.detect(tmp_path / "fax.tiff")
    assert len(boxes) == 4
    upright.save(tmp_path / "one.tiff")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a one-page file: no warning
        assert len(ocr.detect(str(tmp_path / "one.tiff"))) == 4


def test_a_preset_name_given_as_the_config_says_to_give_it_as_the_model() -> None:
    with pytest.raises(ConfigError, match=r"^config file not found: ppocr-v6-tiny; that is a preset's name: give it "
                                          r"as the model \(OCR\(model=...\), --model\)$"):
        OCR("ppocr-v6-tiny")
    with pytest.raises(ConfigError, match="^config file not found: no-such.yaml$"):
        OCR("no-such.yaml")


def test_a_config_file_given_as_the_model_says_to_give_it_as_the_config() -> None:
    """The converse slip: ``model="ocr_ppocr_v3.yaml"`` (``--model configs/x.yaml``) only listed the presets."""
    with pytest.raises(ConfigError, match=r"^unknown model 'ocr_ppocr_v3.yaml'; that is a config file: give it as "
                                          r"the config \(config=..., --config\); the models: ppocr-v2, "):
        OCR(model="ocr_ppocr_v3.yaml")
    with pytest.raises(ConfigError, match=r"^unknown model 'nope'; choose one of: ppocr-v2, "):
        OCR(model="nope")


def test_a_directory_given_as_the_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"^config {re.escape(str(tmp_path))} is a directory, not a config file; "
                                          r"give the path of a .yaml file$"):  # was: config file not found
        OCR(tmp_path)
    with pytest.raises(ConfigError, match=r"^config zoo is a directory \(.*zoo\), not a config file"):
        OCR("zoo")  # the shipped configs' folder


@pytest.mark.parametrize("name", ["det_runner", "cls_runner", "rec_runner"])
def test_a_runner_argument_that_is_no_runner_is_refused_when_the_ocr_is_built(name: str) -> None:
    """It was accepted and failed on the first page (``'int' object is not callable``); cls_runner even only
    on the first ``classify``."""
    with pytest.raises(TypeError, match=rf"^{name} must be a runner \(a callable: .*\) or None, got int$"):
        OCR(stages=["rec"], **{name: 3})
    with pytest.raises(TypeError, match=r"^runner must be a runner \(a callable: .*\) or None, got str$"):
        TextDetector.from_config(runner="det.onnx")
