"""ocrlite as OCRmyPDF's engine, end to end: ``ocrmypdf --plugin ocrlite.ocrmypdf_plugin`` in a subprocess.

The input PDFs are built from FUNSD dev scans (the top half of each form, to keep the runs short); one
page is turned 90 degrees clockwise. The main run uses the ppocr-v6-small preset (optional weights),
which reads at least 80 % of the ground-truth words of each half page; the sandwich/--jobs run uses the
default preset. Skipped without ocrmypdf, tesseract, the data or the optional weights (failed in CI).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from ocrlite.eval.metrics import bag_of_words

pytest.importorskip("img2pdf")  # comes with ocrmypdf
pytest.importorskip("pypdfium2")

FORMS = ("0000971160", "0000989556")
DPI = 100  # FUNSD scans are about 100 dpi
PRESET = "ppocr-v6-small"


def _half_page(shared_data: Path, form: str) -> tuple[np.ndarray, list[str]]:
    """The top half of a FUNSD form and the ground-truth words whose boxes lie inside it."""
    image = cv2.imread(str(shared_data / "funsd" / "images" / f"{form}.png"))
    cut = image.shape[0] // 2
    annotation = json.loads((shared_data / "funsd" / "annotations" / f"{form}.json").read_text(encoding="utf-8"))
    words = [w["text"] for entity in annotation["form"] for w in entity["words"] if w["box"][3] <= cut]
    return image[:cut], words


def _pdf(images: list[np.ndarray], folder: Path, name: str) -> Path:
    import img2pdf

    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"{name}_{i}.png")
        cv2.imwrite(str(paths[-1]), image)
    target = folder / f"{name}.pdf"
    layout = img2pdf.get_fixed_dpi_layout_fun((DPI, DPI))
    target.write_bytes(img2pdf.convert([str(p) for p in paths], layout_fun=layout))
    return target


def _texts(pdf: Path) -> list[str]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def _run(command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, "--plugin", "ocrlite.ocrmypdf_plugin", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def halves(shared_data: Path) -> list[tuple[np.ndarray, list[str]]]:
    return [_half_page(shared_data, form) for form in FORMS]


@pytest.mark.data
def test_rotated_page_is_turned_and_read(ocrmypdf_command: list[str], halves: list, preset_weights: Path,
                                         tmp_path: Path) -> None:
    from ocrlite.page.orientation import PageOrientationClassifier

    pages = [halves[0][0], cv2.rotate(halves[1][0], cv2.ROTATE_90_CLOCKWISE)]
    source = _pdf(pages, tmp_path, "in")
    out, sidecar = tmp_path / "out.pdf", tmp_path / "out.txt"
    done = _run(ocrmypdf_command, "--rotate-pages", "--ocrlite-model", PRESET, "--sidecar", str(sidecar),
                str(source), str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    texts = _texts(out)
    assert len(texts) == 2
    for text, (_, words) in zip(texts, halves, strict=True):
        assert bag_of_words([text], words).recall >= 0.8, text
    assert bag_of_words([sidecar.read_text(encoding="utf-8")], halves[0][1] + halves[1][1]).recall >= 0.8

    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(out))
    try:
        assert "ocrlite" in (doc.get_metadata_dict().get("Creator", "") + doc.get_metadata_dict().get("Producer", ""))
        shown = cv2.cvtColor(np.asarray(doc[1].render(scale=1).to_pil().convert("RGB")), cv2.COLOR_RGB2BGR)
    finally:
        doc.close()
    assert shown.shape[1] > shown.shape[0]  # the landscape half page is landscape again
    assert PageOrientationClassifier.from_config()(shown)[0] == 0  # ... and upright


@pytest.mark.data
def test_sandwich_renderer_with_two_jobs_builds_once_per_process(ocrmypdf_command: list[str], halves: list,
                                                                 tmp_path: Path) -> None:
    pages = [image for image, _ in halves] * 2
    source = _pdf(pages, tmp_path, "four")
    out = tmp_path / "out.pdf"
    done = _run(ocrmypdf_command, "--pdf-renderer", "sandwich", "--jobs", "2", "--output-type", "pdf",
                str(source), str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    texts = _texts(out)
    assert len(texts) == 4
    for text, (_, words) in zip(texts, [*halves, *halves], strict=True):
        assert bag_of_words([text], words).recall >= 0.5, text  # the default preset drops some spaces
    builds = Counter(re.findall(r"ocrlite: built ppocr-v2 in process (\d+)", done.stderr))
    assert 1 <= len(builds) <= 2 and set(builds.values()) == {1}, done.stderr[-2000:]


@pytest.mark.data
def test_get_orientation_is_the_pipelines_fused_decision(halves: list, tmp_path: Path) -> None:
    pytest.importorskip("ocrmypdf")
    from ocrlite import OCR
    from ocrlite.ocrmypdf_plugin import OcrliteEngine, OcrliteOptions, orientation_confidence

    options = SimpleNamespace(ocrlite=OcrliteOptions(threads=1), jobs=1)
    engine = OCR(overrides=["pipeline.page_orientation=true"])  # what ``ocrlite ocr --rotate-pages`` decides with
    assert engine.page_steps is not None and engine.page_steps.classifier is not None
    classifier = engine.page_steps.classifier
    for angle, turn in ((90, cv2.ROTATE_90_CLOCKWISE), (270, cv2.ROTATE_90_COUNTERCLOCKWISE)):
        image = cv2.rotate(halves[1][0], turn)
        cv2.imwrite(str(tmp_path / "page.png"), image)
        found = OcrliteEngine.get_orientation(tmp_path / "page.png", options)
        decided, probability = classifier.decide(image, engine.lines(image), engine.probe)
        assert found.angle == decided == angle
        assert found.confidence == pytest.approx(orientation_confidence(probability, classifier.post.thresh))
        assert found.confidence >= 14.0  # turned at OCRmyPDF's default --rotate-pages-threshold


@pytest.mark.parametrize("option", [("--ocrlite-model", "nope"), ("--ocrlite-threads", "0")])
def test_bad_option_is_a_clear_error(ocrmypdf_command: list[str], tmp_path: Path, option: tuple[str, str]) -> None:
    blank = _pdf([np.full((200, 300, 3), 255, np.uint8)], tmp_path, "blank")
    done = _run(ocrmypdf_command, *option, str(blank), str(tmp_path / "out.pdf"))
    assert done.returncode != 0
    assert option[0] in done.stderr and "Traceback" not in done.stderr


def test_languages_and_confidence_scale() -> None:
    pytest.importorskip("ocrmypdf")
    from ocrlite.ocrmypdf_plugin import orientation_confidence, preset_languages

    assert preset_languages("en-ppocr-v4") == {"eng"}
    assert {"eng", "chi_sim", "jpn", "fra"} <= preset_languages("ppocr-v6-small")
    assert orientation_confidence(0.25, 0.6) == 0.0
    assert orientation_confidence(0.6, 0.6) == pytest.approx(14.0)  # OCRmyPDF's default threshold
    assert orientation_confidence(1.0, 0.6) == pytest.approx(20.0)
    assert orientation_confidence(0.5, 0.6) < 14.0 < orientation_confidence(0.7, 0.6)


def test_engine_outputs_agree_on_a_page(tmp_path: Path) -> None:
    """generate_ocr, generate_hocr and generate_pdf called as OCRmyPDF calls them, on the sample image."""
    pytest.importorskip("ocrmypdf")
    from types import SimpleNamespace

    import pypdfium2 as pdfium
    from PIL import Image

    from ocrlite.ocrmypdf_plugin import OcrliteEngine, OcrliteOptions

    image = tmp_path / "page.png"
    Image.open(Path(__file__).resolve().parent / "images" / "sample.png").save(image, dpi=(150, 150))
    options = SimpleNamespace(ocrlite=OcrliteOptions(threads=1), jobs=1)
    tree, text = OcrliteEngine.generate_ocr(image, options, page_number=3)
    assert tree.page_number == 3 and tree.dpi == pytest.approx(150, abs=0.1)
    assert (tree.bbox.right, tree.bbox.bottom) == (640, 300)
    words = [word.text for word in tree.words]
    assert words and " ".join(words) == " ".join(text.split())
    assert all(0 <= w.bbox.left < w.bbox.right <= 640 and 0 <= w.bbox.top < w.bbox.bottom <= 300 for w in tree.words)

    hocr, hocr_text, pdf, pdf_text = (tmp_path / name for name in ("p.hocr", "p.txt", "p.pdf", "q.txt"))
    OcrliteEngine.generate_hocr(image, hocr, hocr_text, options)
    assert hocr_text.read_text(encoding="utf-8") == text
    assert all(word in hocr.read_text(encoding="utf-8") for word in words)
    OcrliteEngine.generate_pdf(image, pdf, pdf_text, options)
    doc = pdfium.PdfDocument(str(pdf))
    try:
        assert len(doc) == 1 and doc[0].get_size() == pytest.approx((640 * 72 / 150, 300 * 72 / 150), rel=1e-3)
        assert " ".join(doc[0].get_textpage().get_text_range().split()) == " ".join(text.split())
        assert not list(doc[0].get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_IMAGE]))  # text only
    finally:
        doc.close()


@pytest.mark.parametrize(("angle", "textangle", "first"), [(0, 270.0, (60, 149)), (180, 90.0, (171, 260))])
def test_a_vertical_line_has_its_text_angle_and_words_along_it(angle: int, textangle: float, first: tuple) -> None:
    """A tall line (its crop turned counter-clockwise to be read) runs down the page, or up when read turned
    180 degrees: OCRmyPDF gets that text angle (counter-clockwise) and word boxes stacked along the line."""
    pytest.importorskip("ocrmypdf")
    from ocrlite.ocrmypdf_plugin import page_element
    from ocrlite.results import PageResult, TextLine

    tall = np.array([[250, 60], [280, 60], [280, 260], [250, 260]], dtype=np.float64)
    tree = page_element(PageResult(300, 300, (TextLine(tall, "abcd efgh", 0.9, 0.9, angle),)), 72.0, 1)
    (line,) = tree.lines
    assert line.textangle == textangle
    word = line.children[0]  # "abcd": 4 of the line's 9 characters, from where the text starts
    assert word.text == "abcd"
    assert (word.bbox.left, word.bbox.top, word.bbox.right, word.bbox.bottom) == (250, first[0], 280, first[1])


def test_a_page_the_engine_cannot_read_gets_no_text_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """As OCRmyPDF does when Tesseract fails on a page: one warning, the page left without text (it crashed
    the whole run, every page lost); pages as large as OCRmyPDF accepts are read at all."""
    pytest.importorskip("ocrmypdf")
    from PIL import Image

    import ocrlite.io.images
    from ocrlite import ocrmypdf_plugin
    from ocrlite.errors import ImageReadError
    from ocrlite.ocrmypdf_plugin import OcrliteEngine, OcrliteOptions

    image = tmp_path / "page.png"
    Image.new("RGB", (640, 300), "white").save(image, dpi=(150, 150))
    limits: list[int] = []

    def refuse(path: Path, max_pixels: int) -> np.ndarray:
        limits.append(max_pixels)
        raise ImageReadError(f"{path}: cannot decode")

    monkeypatch.setattr(ocrlite.io.images, "read_image", refuse)
    monkeypatch.setattr(ocrmypdf_plugin._MODELS, "pipeline", lambda options: None)
    options = SimpleNamespace(ocrlite=OcrliteOptions(threads=1), jobs=1, max_image_mpixels=250.0)
    with caplog.at_level("WARNING"):
        tree, text = OcrliteEngine.generate_ocr(image, options, page_number=2)
    assert limits == [250_000_000] and text == "" and not tree.lines
    assert (tree.bbox.right, tree.bbox.bottom, tree.page_number) == (640, 300, 2)
    assert "page.png" in caplog.text and "cannot decode; the page gets no text" in caplog.text
    assert OcrliteEngine.get_deskew(image, options) == 0.0


def test_a_page_over_pillows_own_limit_is_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OCRmyPDF has accepted the page's size (``--max-image-mpixels``): Pillow's own bomb limit, twice of which
    it refuses to open, must not refuse it (lowered here so a small page shows it)."""
    pytest.importorskip("ocrmypdf")
    from PIL import Image

    from ocrlite.ocrmypdf_plugin import _page_info

    Image.new("RGB", (640, 300), "white").save(tmp_path / "page.png", dpi=(150, 150))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # the page, 192,000 pixels, is over twice that
    assert _page_info(tmp_path / "page.png") == (640, 300, pytest.approx(150, abs=0.1))


def test_another_engine_does_not_need_the_preset_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--ocr-engine tesseract`` switches back to Tesseract even where ocrlite's weights are missing."""
    pytest.importorskip("ocrmypdf")
    from ocrmypdf.exceptions import MissingDependencyError

    import ocrlite.presets
    from ocrlite.ocrmypdf_plugin import OcrliteOptions, check_options

    monkeypatch.setattr(ocrlite.presets, "preset_status", lambda preset: SimpleNamespace(installed=False))
    check_options(SimpleNamespace(ocrlite=OcrliteOptions(), ocr_engine="tesseract"))
    with pytest.raises(MissingDependencyError, match="not installed"):
        check_options(SimpleNamespace(ocrlite=OcrliteOptions(), ocr_engine="auto"))


def test_the_sandwich_page_sets_every_script_in_its_one_font(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OCRmyPDF's sandwich renderer copies one font of the engine's text page: a page with Helvetica for Latin
    lines and a CID font for the others lost the second, and its Chinese and Polish text came out garbled."""
    pytest.importorskip("ocrmypdf")
    import pikepdf
    import pypdfium2 as pdfium
    from PIL import Image

    from ocrlite import ocrmypdf_plugin
    from ocrlite.ocrmypdf_plugin import OcrliteEngine, OcrliteOptions
    from ocrlite.results import PageResult, TextLine

    texts = ["Invoice No. 48213", "Zażółć gęślą jaźń", "北京市朝阳区人民政府"]
    lines = tuple(TextLine(np.array([[20, 20 + 40 * i], [380, 20 + 40 * i], [380, 50 + 40 * i], [20, 50 + 40 * i]],
                                    dtype=np.float64), text, 0.9, 0.9, 0) for i, text in enumerate(texts))
    monkeypatch.setattr(ocrmypdf_plugin, "_recognise", lambda path, options: (PageResult(400, 160, lines), 72.0))
    image, pdf, text = tmp_path / "page.png", tmp_path / "page.pdf", tmp_path / "page.txt"
    Image.new("RGB", (400, 160), "white").save(image, dpi=(72, 72))
    OcrliteEngine.generate_pdf(image, pdf, text, SimpleNamespace(ocrlite=OcrliteOptions(threads=1), jobs=1))
    with pikepdf.open(pdf) as doc:
        assert len(doc.pages[0].Resources.Font.keys()) == 1
    doc = pdfium.PdfDocument(str(pdf))
    try:
        assert doc[0].get_textpage().get_text_range().split("\r\n") == texts
    finally:
        doc.close()


@pytest.mark.skipif(not Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc").is_file(),
                    reason="WenQuanYi Micro Hei is not installed (fonts-wqy-microhei)")
def test_sandwich_output_keeps_chinese_text(ocrmypdf_command: list[str], tmp_path: Path) -> None:
    """A Chinese line read by the default preset is in the text of OCRmyPDF's sandwich output as read."""
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("RGB", (900, 160), "white")
    ImageDraw.Draw(page).text((40, 50), "北京市朝阳区人民政府", fill="black",
                              font=ImageFont.truetype("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 56))
    source = _pdf([cv2.cvtColor(np.asarray(page), cv2.COLOR_RGB2BGR)], tmp_path, "zh")
    out, sidecar = tmp_path / "out.pdf", tmp_path / "out.txt"
    done = _run(ocrmypdf_command, "-l", "chi_sim", "--pdf-renderer", "sandwich", "--output-type", "pdf",
                "--sidecar", str(sidecar), "--ocrlite-threads", "1", str(source), str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    read = sidecar.read_text(encoding="utf-8").split()
    assert "北京市朝阳区人民政府" in read
    assert _texts(out)[0].split() == read


def test_languages_the_preset_does_not_read_are_one_line_naming_presets_that_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``-l deu`` with the default preset: OCRmyPDF's own message told the user to install language data."""
    pytest.importorskip("ocrmypdf")
    from ocrmypdf.exceptions import BadArgsError

    import ocrlite.presets
    from ocrlite.ocrmypdf_plugin import OcrliteOptions, check_options, preset_languages

    monkeypatch.setattr(ocrlite.presets, "preset_status", lambda preset: SimpleNamespace(installed=True))
    check_options(SimpleNamespace(ocrlite=OcrliteOptions(), ocr_engine="auto", languages=["eng", "chi_sim"]))
    with pytest.raises(BadArgsError, match=r"ppocr-v2 does not read deu; presets that read eng\+deu: ") as raised:
        check_options(SimpleNamespace(ocrlite=OcrliteOptions(), ocr_engine="auto", languages=["eng", "deu"]))
    named = str(raised.value).rsplit(": ", 1)[1].split(", ")
    assert named and all({"eng", "deu"} <= preset_languages(name) for name in named)
    assert "\n" not in str(raised.value)


def _hocr_page(result: Any, dpi: float, folder: Path) -> Any:
    """ocrlite's hOCR of ``result`` (written to ``folder/page.hocr``) as OCRmyPDF's hOCR parser reads it back."""
    from ocrmypdf.hocrtransform.hocr_parser import HocrParser

    from ocrlite.io.writers import PageRecord, make_writer

    writer = make_writer("hocr", "page.png")
    writer.add(PageRecord(1, result, dpi))
    (folder / "page.hocr").write_bytes(writer.render())
    return HocrParser(folder / "page.hocr").parse()


def test_hocr_lines_carry_the_text_angle_and_baseline_the_engine_gives(tmp_path: Path) -> None:
    """hOCR (``generate_hocr``, ``ocrlite ocr --format hocr``) describes each line as ``generate_ocr`` does: a line
    running down or up the page has its ``textangle``, a tilted one its baseline slope, every one its text height
    as ``x_size``. The hOCR had no text angle, so OCRmyPDF's hOCR renderer took a vertical line for an upright one
    in an implausibly tall box and dropped its text."""
    pytest.importorskip("ocrmypdf")
    from ocrlite.ocrmypdf_plugin import page_element
    from ocrlite.results import PageResult, TextLine

    quads = [[[20, 40], [220, 30], [221, 50], [21, 60]],  # upright, rising 2.9 degrees
             [[250, 60], [280, 60], [280, 260], [250, 260]],  # tall: runs down the page (read as a quarter turn)
             [[20, 200], [200, 200], [200, 230], [20, 230]]]  # read turned 180 degrees
    lines = tuple(TextLine(np.array(quad, dtype=np.float64), "abcd efgh", 0.9, 0.9, angle)
                  for quad, angle in zip(quads, (0, 0, 180), strict=True))
    result = PageResult(300, 300, lines)
    parsed, given = _hocr_page(result, 72.0, tmp_path).lines, page_element(result, 72.0, 1).lines
    assert [line.textangle or 0.0 for line in parsed] == [line.textangle for line in given] == [0.0, 270.0, 180.0]
    assert [line.bbox for line in parsed] == [line.bbox for line in given]
    assert parsed[0].baseline is not None and given[0].baseline is not None
    assert parsed[0].baseline.slope == pytest.approx(given[0].baseline.slope, abs=1e-3) == -0.05
    assert parsed[0].baseline.intercept == round(given[0].baseline.intercept)
    hocr = (tmp_path / "page.hocr").read_text(encoding="utf-8")
    assert re.findall(r"x_size (\d+)", hocr) == ["20", "30", "30"]


def _ocrmypdf_text(page: Any, folder: Path) -> list[str]:
    """The lines a PDF reader (pdfium) copies from the page OCRmyPDF's default renderer makes of ``page`` (an
    ``OcrElement`` page), its text drawn visibly; runs of white space squeezed to one space."""
    import ocrmypdf
    import pypdfium2 as pdfium
    from ocrmypdf.font import MultiFontManager
    from ocrmypdf.fpdf_renderer import Fpdf2PdfRenderer

    fonts = MultiFontManager(Path(ocrmypdf.__file__).parent / "data")
    Fpdf2PdfRenderer(page=page, dpi=page.dpi, multi_font_manager=fonts, invisible_text=False).render(folder / "p.pdf")
    doc = pdfium.PdfDocument(str(folder / "p.pdf"))
    try:
        return [" ".join(line.split()) for line in doc[0].get_textpage().get_text_range().split("\r\n")]
    finally:
        doc.close()


def test_a_page_turned_a_quarter_keeps_its_text_through_ocrmypdfs_hocr_renderer(tmp_path: Path) -> None:
    """ocrlite's hOCR of a page turned 90 degrees (every line vertical), rendered by OCRmyPDF's hOCR renderer
    (``python -m ocrmypdf.hocrtransform``), keeps the words ocrlite read: it kept 0 of them."""
    pytest.importorskip("ocrmypdf")
    from ocrlite import OCR

    image = cv2.rotate(cv2.imread(str(Path(__file__).resolve().parent / "images" / "sample.png")),
                       cv2.ROTATE_90_CLOCKWISE)
    result = OCR()(image)
    words = [word for line in result.lines for word in line.text.split()]
    assert len(words) >= 10 and all(np.ptp(line.points[:, 1]) > np.ptp(line.points[:, 0]) for line in result.lines)
    rendered = _ocrmypdf_text(_hocr_page(result, 72.0, tmp_path), tmp_path)
    assert Counter(" ".join(rendered).split()) == Counter(words)


def test_an_upside_down_line_copies_in_reading_order_from_ocrmypdfs_renderer(tmp_path: Path) -> None:
    """A page left upside down (no ``--rotate-pages``, or below its threshold): each line read turned 180 degrees
    is one stretch of text in OCRmyPDF's default renderer, as in ocrlite's own PDF; word by word, a PDF reader
    (pdfium) copied its words backwards ("EUR 42.50 Total:")."""
    pytest.importorskip("ocrmypdf")
    from ocrlite import OCR
    from ocrlite.ocrmypdf_plugin import page_element

    turned = cv2.rotate(cv2.imread(str(Path(__file__).resolve().parent / "images" / "sample.png")), cv2.ROTATE_180)
    result = OCR()(turned)
    assert all(line.angle == 180 for line in result.lines) and sum(" " in line.text for line in result.lines) >= 2
    copied = _ocrmypdf_text(page_element(result, 72.0, 0), tmp_path)
    assert sorted(copied) == sorted(line.text for line in result.lines)


def test_ocrlite_set_overrides_the_presets_settings(ocrmypdf_command: list[str], tmp_path: Path) -> None:
    """``--ocrlite-set KEY=VALUE`` reaches the pipeline, as ``ocrlite --set`` (there was no way to change a
    preset's settings: e.g. its detector's 960-pixel limit, at which a dense 300-dpi page lost 7 of its 67
    lines), and ``/Creator`` names it; a bad one is one line before any page is read."""
    import pikepdf

    source = _pdf([cv2.imread(str(Path(__file__).resolve().parent / "images" / "sample.png"))], tmp_path, "sample")
    sidecar, out = tmp_path / "out.txt", tmp_path / "out.pdf"
    done = _run(ocrmypdf_command, "--ocrlite-set", "det.preprocess.limit_side_len=1600",
                "--ocrlite-set", "pipeline.drop_score=1.0", "--sidecar", str(sidecar), str(source), str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert sidecar.read_text(encoding="utf-8").strip() == ""  # its 4 lines (read by default) scored below 1.0
    with pikepdf.open(out) as pdf:
        assert str(pdf.docinfo["/Creator"]).endswith(
            "(ppocr-v2, det.preprocess.limit_side_len=1600, pipeline.drop_score=1.0)")
    bad = _run(ocrmypdf_command, "--ocrlite-set", "det.preprocess.nope=1", str(source), str(out))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("--ocrlite-set: det.preprocess: unknown key 'nope'")


def test_get_orientation_uses_line_directions_where_the_preset_leaves_use_cls_off(tmp_path: Path) -> None:
    """ppocr-v6-tiny reads without the line classifier; its directions still weigh in the page's orientation, as
    with ``ocrlite ocr --rotate-pages``."""
    pytest.importorskip("ocrmypdf")
    from ocrlite import OCR
    from ocrlite.ocrmypdf_plugin import OcrliteEngine, OcrliteOptions, orientation_confidence

    options = SimpleNamespace(ocrlite=OcrliteOptions(model="ppocr-v6-tiny", threads=1), jobs=1)
    engine = OCR(model="ppocr-v6-tiny", overrides=["pipeline.page_orientation=true"])
    assert not engine.settings.use_cls and engine.page_steps is not None and engine.page_steps.classifier is not None
    classifier = engine.page_steps.classifier
    image = cv2.rotate(cv2.imread(str(Path(__file__).resolve().parent / "images" / "sample.png")), cv2.ROTATE_180)
    cv2.imwrite(str(tmp_path / "page.png"), image)
    found = OcrliteEngine.get_orientation(tmp_path / "page.png", options)
    decided, probability = classifier.decide(image, engine.lines(image), engine.probe)
    assert found.angle == decided == 180
    assert found.confidence == pytest.approx(orientation_confidence(probability, classifier.post.thresh))
