"""``OCR(stages=...)`` loads only the nets asked for, and ``OCR.classify`` reads crop directions (0/180) with the
pipeline's cls stage whether or not ``use_cls`` is on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrlite import OCR
from ocrlite.errors import ConfigError
from ocrlite.io.images import read_image

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"
PAGE = read_image(SAMPLE)
LINE = PAGE[30:62, 40:285]  # "OCRLITE 2026"


def test_a_stage_left_out_is_not_loaded_and_using_it_is_a_config_error() -> None:
    detect_only = OCR(stages=("det",))
    assert len(detect_only.detect(PAGE)) == 4
    with pytest.raises(ConfigError, match=r"^this OCR was built without its recognizer \(stages=...\)$"):
        detect_only.recognizer  # noqa: B018
    with pytest.raises(ConfigError, match="without its recognizer"):
        detect_only(PAGE)
    with pytest.raises(ConfigError, match=r"^this OCR was built without its direction classifier \(stages=...\)$"):
        detect_only.classify([LINE])
    read_only = OCR(stages=("rec",))
    assert read_only.recognize([LINE])[0][0] == "OCRLITE 2026"
    with pytest.raises(ConfigError, match="without its detector"):
        read_only.detect(PAGE)


def test_classify_reads_directions_even_when_the_pipeline_does_not_flip_crops() -> None:
    ocr = OCR(use_cls=False)  # the default pipeline has a cls stage; use_cls off: it is loaded on first use
    assert ocr.classifier is None
    [(up, up_score), (down, down_score)] = ocr.classify([LINE, cv2.rotate(LINE, cv2.ROTATE_180)])
    assert (up, down) == (0, 180) and min(up_score, down_score) > 0.9
    assert ocr.classify([SAMPLE]) == ocr.classify([PAGE])  # a path is read like __call__ reads one
    assert ocr.classify([]) == []
    # classifying crops does not switch the classifier on in the pipeline itself
    assert ocr.classifier is None and ocr.lines(PAGE).directions is None
    with pytest.raises(TypeError, match="^crops must be a list of images .*; put a single one in a list$"):
        ocr.classify(LINE)


def test_classify_without_a_cls_stage_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "no_cls.yaml"
    config.write_text("det: det_ppocrv3.yaml\nrec: rec_ppocrv2.yaml\n")
    ocr = OCR(config, stages=("cls",))
    with pytest.raises(ConfigError, match=r"^this pipeline has no direction classifier \(cls\)$"):
        ocr.classify([LINE])


def test_a_single_stage_config_takes_its_own_keys_without_the_stage_prefix() -> None:
    assert OCR("det_ppocrv3.yaml", ["postprocess.box_thresh=0.99"]).detect(PAGE) == []
    assert OCR("det_ppocrv3.yaml", ["det.postprocess.box_thresh=0.99"]).detect(PAGE) == []
    assert len(OCR("det_ppocrv3.yaml", ["pipeline.drop_score=0.5"]).detect(PAGE)) == 4  # other parts of the tree
    with pytest.raises(ConfigError, match=r"^det.postprocess: unknown key 'box_treshold'"):
        OCR("det_ppocrv3.yaml", ["postprocess.box_treshold=0.99"])


def test_read_documents_reads_every_page_of_pdfs_and_images_and_keeps_failures_apart(tmp_path: Path) -> None:
    from PIL import Image

    upright = Image.fromarray(cv2.cvtColor(PAGE, cv2.COLOR_BGR2RGB))
    upright.save(tmp_path / "two.pdf", save_all=True, append_images=[upright], resolution=100)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    cv2.imwrite(str(tmp_path / "one.png"), PAGE)
    paths = [tmp_path / "two.pdf", tmp_path / "broken.pdf", tmp_path / "one.png"]
    pages = list(OCR().read_documents(paths))
    assert [(p.path.name, p.number, p.count, p.paged, p.error is None) for p in pages] == [
        ("two.pdf", 1, 2, True, True), ("two.pdf", 2, 2, True, True), ("broken.pdf", 0, 0, True, False),
        ("one.png", 1, 1, False, True)]
    assert all("Invoice" in p.result.text for p in pages if p.result is not None)
    assert "broken.pdf" in str(pages[2].error)
    with pytest.raises(TypeError, match="paths must be a list of file paths"):
        list(OCR().read_documents(str(tmp_path / "one.png")))


@pytest.mark.parametrize(("arguments", "message"), [
    ({"dpi": 0}, "dpi must be a number from 10 to 1200"), ({"dpi": float("nan")}, "dpi must be a number"),
    ({"dpi": 1e6}, "dpi must be a number"), ({"max_pixels": 0}, "max_pixels must be a positive integer"),
])
def test_read_documents_checks_its_settings(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):  # they made every PDF page fail as if it were corrupt
        list(OCR(stages=("det", "rec")).read_documents([SAMPLE], **arguments))


def test_the_line_classifier_is_built_once_when_threads_ask_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from ocrlite.predictors import TextClassifier

    built = []
    original = TextClassifier.from_config.__func__  # type: ignore[attr-defined]

    def counting(cls: type, *args: object, **kwargs: object) -> TextClassifier:
        built.append(1)
        return original(cls, *args, **kwargs)

    ocr = OCR(model="ppocr-v6-tiny")  # use_cls off: its classifier is built on first use
    monkeypatch.setattr(TextClassifier, "from_config", classmethod(counting))
    threads = [threading.Thread(target=ocr.classify, args=([LINE],)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1


@pytest.mark.parametrize(("arguments", "message"), [
    ({"dpi": "300"}, "^dpi must be a number from 10 to 1200 \\(as --dpi\\), got str$"),
    ({"dpi": True}, "got bool"), ({"max_pixels": 1e8}, "^max_pixels must be a positive integer, got float$"),
])
def test_read_documents_arguments_of_the_wrong_type_are_type_errors_when_called(arguments: dict, message: str) -> None:
    ocr = OCR(stages=("det", "rec"))
    with pytest.raises(TypeError, match=message):  # was a ValueError, and only once the first page was asked for
        ocr.read_documents([SAMPLE], **arguments)


def test_read_documents_takes_numpy_numbers(tmp_path: Path) -> None:
    """A dpi or a max_pixels computed with numpy (np.float32(200), np.int64(...)) was a TypeError, "got float32"."""
    from PIL import Image

    pdf = tmp_path / "sample.pdf"
    Image.open(SAMPLE).convert("RGB").save(pdf, resolution=100)
    ocr = OCR(stages=("det", "rec"))
    [plain] = ocr.read_documents([pdf], dpi=150, max_pixels=10**6)
    [numpy] = ocr.read_documents([pdf], dpi=np.float32(150), max_pixels=np.int64(10**6))
    assert numpy.error is None and numpy.result is not None and plain.result is not None
    assert numpy.image is not None and plain.image is not None and numpy.image.shape[1] == 960  # 640 px at 100 dpi
    assert np.array_equal(numpy.image, plain.image)
    assert numpy.result.text == plain.result.text
    [small] = ocr.read_documents([pdf], dpi=150, max_pixels=np.int64(1000))
    assert small.image is not None and small.image.shape[0] * small.image.shape[1] <= 1000  # rendered to fit it

@pytest.mark.parametrize(("item", "kind"), [(5, "int"), (None, "NoneType"), (b"sample.png", "bytes")])
def test_read_documents_names_an_item_that_is_not_a_path(item: object, kind: str) -> None:
    """A list item that is not a path is a TypeError naming the argument and the item, not pathlib's own."""
    ocr = OCR(stages=("det", "rec"))
    with pytest.raises(TypeError) as error:
        ocr.read_documents([SAMPLE, item])  # type: ignore[list-item]
    assert str(error.value) == f"paths must be a list of file paths, got the item {item!r} ({kind})"


def test_a_page_over_max_pixels_says_to_raise_the_callers_max_pixels() -> None:
    [page] = OCR(stages=("det", "rec")).read_documents([SAMPLE], max_pixels=1000)
    assert str(page.error) == (f"{SAMPLE}: image is 640x300 = 192000 pixels, more than the limit of 1000 that bounds "
                               "memory; scale it down (in Python: pass a larger max_pixels to the call that read it)")
