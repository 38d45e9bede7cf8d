"""Output formats for one input file's pages: json, txt, tsv, hocr and searchable pdf.

Each writer collects pages with ``add`` and returns the whole file's bytes from
``render``; the caller writes them atomically (``fileio.atomic_write_bytes``), so an
output is either absent or complete.

The searchable PDF is written with reportlab: a mature, BSD-licensed PDF generator that
embeds JPEG page images without re-encoding, supports invisible text (render mode 3) with
horizontal scaling, and ships CID fonts (STSong-Light): set with Identity-H and a ToUnicode map
(``_unicode_font``), one of them gives text of any script a proper Unicode mapping without bundling
a font file. pypdfium2 (used to read PDFs) can
also create text objects, but only through its low-level C bindings; pikepdf would mean
writing content streams by hand.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from ocrlite.postprocess import line_words, run_angle, text_quad, text_turns
from ocrlite.results import PageResult, TextBox, TextLine, TextWord

__all__ = ["FORMATS", "STREAM_FORMATS", "PageRecord", "Writer", "make_writer", "quad_bbox", "LineLayout", "line_layout",
           "pdf_runs", "tsv_rows", "TsvWriter", "PdfWriter", "DETECTION_TSV_HEADER", "detection_lines", "json_text",
           "page_text", "tsv_field"]

FORMATS = ("json", "txt", "tsv", "hocr", "pdf")  # files written by batch mode
STREAM_FORMATS = ("json", "txt", "tsv")  # what commands print on stdout

_SURROGATES = re.compile("[\ud800-\udfff]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # what XML 1.0 disallows


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON, non-ASCII text kept as it is, that always encodes as valid UTF-8: a file name that is
    not UTF-8 (Linux allows any bytes) holds lone surrogates, which are escaped (``\\udcff``) so that
    ``json.loads`` gives the name back. The JSON that names input files (outputs, stdout, the batch report)
    goes through here."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _SURROGATES.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


@dataclass(frozen=True)
class PageRecord:
    """One OCR'd page: its 1-based number, result, resolution, (for pdf) image and, for a PDF page, its own
    size in points (``Page.points``)."""

    number: int
    result: PageResult
    dpi: float
    image: np.ndarray | None = None
    points: tuple[float, float] | None = None


class Writer(Protocol):
    """Collects the pages of one input file and renders one output file. ``missing`` stands for a page that
    could not be read, where the format numbers pages by position (txt's form feeds, pdf's pages)."""

    def add(self, page: PageRecord) -> None: ...

    def missing(self, number: int, reason: str) -> None: ...

    def render(self) -> bytes: ...


class JsonWriter:
    """The full result of every page: size, dpi, and each line's quad, text and scores."""

    def __init__(self, source: str) -> None:
        self.doc: dict[str, Any] = {"source": source, "pages": []}

    def add(self, page: PageRecord) -> None:
        self.doc["pages"].append({"page": page.number, "dpi": round(page.dpi, 2), **page.result.to_dict()})

    def missing(self, number: int, reason: str) -> None:
        self.doc["pages"].append({"page": number, "error": reason})

    def render(self) -> bytes:
        return (json_text(self.doc) + "\n").encode("utf-8")


def page_text(result: PageResult) -> str:
    """A page as plain text: its lines in reading order, each ended by a newline."""
    return "".join(f"{line.text}\n" for line in result.lines)


class TextWriter:
    """Lines in reading order (``page_text``); pages separated by a form feed, as pdftotext does."""

    def __init__(self, source: str) -> None:
        self.pages: list[str] = []

    def add(self, page: PageRecord) -> None:
        self.pages.append(page_text(page.result))

    def missing(self, number: int, reason: str) -> None:
        self.pages.append("")  # an empty page keeps the later pages at their form feeds

    def render(self) -> bytes:
        return "\f".join(self.pages).encode("utf-8")


class TsvWriter:
    """Tesseract-like table, one row per line: page, line, left, top, width, height, conf, text."""

    HEADER = ("page", "line", "left", "top", "width", "height", "conf", "text")

    def __init__(self, source: str) -> None:
        self.rows: list[str] = ["\t".join(self.HEADER)]

    def add(self, page: PageRecord) -> None:
        self.rows += tsv_rows(page.number, page.result)

    def missing(self, number: int, reason: str) -> None:
        """Rows carry their page number: nothing to keep."""

    def render(self) -> bytes:
        return ("\n".join(self.rows) + "\n").encode("utf-8")


_XHTML = "http://www.w3.org/1999/xhtml"
_HOCR_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
)


class HocrWriter:
    """hOCR 1.2 as XHTML: ocr_page > ocr_carea > ocr_par > ocr_line > ocrx_word.

    Bboxes are in page pixels; ``x_wconf`` is each word's score (0-100): word boxes and scores come from
    ``postprocess.line_words`` (CTC time steps and the mean probability of the word's characters when known, else
    the line's score).
    """

    def __init__(self, source: str) -> None:
        from ocrlite import __version__

        self.source = _xml_safe(source)  # a file name may hold control characters
        self.html = ET.Element("html", {"xmlns": _XHTML, "xml:lang": "en", "lang": "en"})
        head = ET.SubElement(self.html, "head")
        ET.SubElement(head, "title").text = self.source
        for name, content in (("ocr-system", f"ocrlite {__version__}"),
                              ("ocr-capabilities", "ocr_page ocr_carea ocr_par ocr_line ocrx_word"),
                              ("ocr-number-of-pages", "0")):
            ET.SubElement(head, "meta", {"name": name, "content": content})
        self.page_count = head[-1]
        self.unread = 0  # pages that could not be read: pages of the document all the same
        self.body = ET.SubElement(self.html, "body")

    def add(self, page: PageRecord) -> None:
        result, n = page.result, page.number
        dpi_y = result.height * 72.0 / page.points[1] if page.points else page.dpi  # a fax: 204 x 98 dpi
        div = ET.SubElement(self.body, "div", {
            "class": "ocr_page", "id": f"page_{n}",
            "title": f'image "{_title_safe(self.source)}"; bbox 0 0 {result.width} {result.height}; '
                     f"ppageno {n - 1}; scan_res {round(page.dpi)} {round(dpi_y)}"})
        if not result.lines:
            return
        boxes = [quad_bbox(line.points, result.width, result.height) for line in result.lines]
        area = _union(boxes)
        carea = ET.SubElement(div, "div", {"class": "ocr_carea", "id": f"block_{n}_1", "title": _bbox(area)})
        par = ET.SubElement(carea, "p", {"class": "ocr_par", "id": f"par_{n}_1", "title": _bbox(area)})
        for i, (line, box) in enumerate(zip(result.lines, boxes), start=1):
            self._add_line(par, line, box, f"{n}_{i}", result)

    def missing(self, number: int, reason: str) -> None:
        """Pages carry their number (``ppageno``): only counted, in ``ocr-number-of-pages``."""
        self.unread += 1

    def _add_line(self, parent: ET.Element, line: TextLine, box: tuple[int, int, int, int],
                  ident: str, result: PageResult) -> None:
        layout = line_layout(line, result.width, result.height)
        turned = f"; textangle {layout.textangle:g}" if layout.textangle else ""  # the spec's order: after bbox
        baseline = f"; baseline {layout.baseline[0]:.3f} {round(layout.baseline[1])}" if layout.baseline else ""
        span = ET.SubElement(parent, "span", {
            "class": "ocr_line", "id": f"line_{ident}",
            "title": f"{_bbox(box)}{turned}{baseline}; x_size {round(layout.size)}; "
                     f"x_descenders 0; x_ascenders 0"})
        for j, word in enumerate(line_words(line), start=1):
            conf = int(round(100 * float(word.score)))
            item = ET.SubElement(span, "span", {
                "class": "ocrx_word", "id": f"word_{ident}_{j}",
                "title": f"{_bbox(quad_bbox(word.points, result.width, result.height))}; x_wconf {conf}"})
            item.text = _xml_safe(word.text)
            item.tail = " "

    def render(self) -> bytes:
        self.page_count.set("content", str(len(self.body) + self.unread))
        ET.indent(self.html, space=" ")
        return (_HOCR_HEAD + ET.tostring(self.html, encoding="unicode") + "\n").encode("utf-8")


_UNICODE_FONT = "ocrlite-Unicode"
_LATIN_FONT = "Helvetica"
_JPEG_QUALITY = 80


class PdfWriter:
    """Searchable PDF: each page image (JPEG) with an invisible text line over each text line
    (a page added without an image holds only the invisible text).

    The page measures the image at its DPI; a rendered PDF page keeps its own size (``PageRecord.points``).
    Each word of a line (``pdf_runs``: its CTC word box; a line upside down on the page as a whole) is
    stretched over its own box and laid along the quarter turn nearest the direction the line runs on the page
    (``text_quad``: vertical and upside-down lines too; a tilted line's words each on their own baseline,
    ``_quarter_turn``), words apart by a space, so selecting, copying and searching work in a viewer and text
    extraction returns the lines.

    Text that Helvetica can encode (cp1252) is set in Helvetica, other text in ``_unicode_font`` (any script of
    the Unicode BMP); ``one_font`` sets all text in the CID font, for a page whose fonts are copied one
    only (OCRmyPDF's sandwich renderer).
    """

    def __init__(self, source: str, one_font: bool = False) -> None:
        from reportlab.pdfgen import canvas

        self.buffer = io.BytesIO()
        self.one_font = one_font
        initial = _font_for(None) if one_font else _LATIN_FONT  # each page's content starts by setting it
        self.canvas = canvas.Canvas(self.buffer, pageCompression=1, invariant=1, initialFontName=initial)
        self.canvas.setTitle(source)
        self.canvas.setCreator("ocrlite")
        self.blanks = 0  # pages that could not be read, still to draw (blank, the size of a neighbour)
        self.size: tuple[float, float] | None = None

    def add(self, page: PageRecord) -> None:
        from reportlab.lib.utils import ImageReader

        width, height = page.points or (page.result.width * 72.0 / page.dpi, page.result.height * 72.0 / page.dpi)
        scale = np.array([width / page.result.width, height / page.result.height])  # points per pixel, x and y
        self.size = (width, height)
        self._draw_blanks()
        self.canvas.setPageSize((width, height))
        if page.image is not None:  # without it: a text-only page, e.g. a layer to lay over a scan
            self.canvas.drawImage(ImageReader(io.BytesIO(_jpeg(page.image))), 0, 0, width, height)
        for line in page.result.lines:
            self._add_line(line, scale, height)
        self.canvas.showPage()

    def _add_line(self, line: TextLine, scale: np.ndarray, page_height: float) -> None:
        from reportlab.pdfbase.pdfmetrics import stringWidth

        words = pdf_runs(line)
        turns = text_turns(line.points, line.angle)  # the corner where the line's text starts
        line_quad = text_quad(line.points, line.angle)
        size = _text_height(self._pdf_quad(line_quad, scale, page_height))
        if not words or size <= 0:
            return
        along, up = _quarter_turn(run_angle(line_quad))
        font = _font_for(None if self.one_font else line.text)
        text = self.canvas.beginText()
        text.setTextRenderMode(3)  # invisible: selectable and searchable, never drawn
        text.setFont(font, size)
        for i, word in enumerate(words):  # one text object: a copy keeps the words in reading order
            quad = self._pdf_quad(np.roll(word.points, -turns, axis=0), scale, page_height)
            start, end = float((quad[0] + quad[3]) @ along) / 2, float((quad[1] + quad[2]) @ along) / 2  # mid-edges
            natural = stringWidth(word.text, font, size)
            if end <= start or natural <= 0:
                continue
            baseline = float((quad @ up).mean()) - 0.3 * size  # the text's body centred on the word's box
            origin = along * start + up * baseline
            text.setTextTransform(along[0], along[1], up[0], up[1], float(origin[0]), float(origin[1]))
            text.setHorizScale(100.0 * (end - start) / natural)  # the word spans its own box
            text.textOut(word.text + (" " if i < len(words) - 1 else ""))  # the space: words stay apart in a copy
        self.canvas.drawText(text)

    @staticmethod
    def _pdf_quad(quad: np.ndarray, scale: np.ndarray, page_height: float) -> np.ndarray:
        """A quad in page pixels as PDF points (y grows upwards)."""
        points = np.asarray(quad, dtype=np.float64).reshape(4, 2) * scale
        points[:, 1] = page_height - points[:, 1]
        return points

    def missing(self, number: int, reason: str) -> None:
        self.blanks += 1
        self._draw_blanks()

    def _draw_blanks(self) -> None:
        """Blank pages for the pages that could not be read, so every later page keeps its number (once a
        read page has given their size)."""
        if self.size is None:
            return
        for _ in range(self.blanks):
            self.canvas.setPageSize(self.size)
            self.canvas.showPage()
        self.blanks = 0

    def render(self) -> bytes:
        self._draw_blanks()
        self.canvas.save()
        return self.buffer.getvalue()


_WRITERS: dict[str, type] = {"json": JsonWriter, "txt": TextWriter, "tsv": TsvWriter,
                             "hocr": HocrWriter, "pdf": PdfWriter}


def quad_bbox(points: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Axis-aligned ``(x0, y0, x1, y1)`` around a quad, rounded and clipped to the page."""
    quad = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, width))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, height))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), x0, width))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), y0, height))
    return x0, y0, x1, y1


@dataclass(frozen=True)
class LineLayout:
    """How a line's text lies on the page, as hOCR and OCRmyPDF describe a line: its axis-aligned ``bbox``, the
    counter-clockwise ``textangle`` (a multiple of 90) its text runs at, for text running left to right its
    ``baseline`` (slope in image coordinates, offset from the bbox's bottom at its left edge) and the text's
    height ``size`` (pixels)."""

    bbox: tuple[int, int, int, int]
    textangle: float
    baseline: tuple[float, float] | None
    size: float


def line_layout(line: TextLine, width: int, height: int) -> LineLayout:
    """``line``'s layout on a ``width`` x ``height`` page: its quad read from where its text starts
    (``text_quad``); the baseline lies 0.2 of the text height above the quad's bottom edge (as ``PdfWriter``
    sets it)."""
    quad = text_quad(line.points, line.angle)
    top_left, _, _, bottom_left = quad
    angle = run_angle(quad)
    textangle = float(round(-angle / 90.0) * 90 % 360)
    bbox = quad_bbox(quad, width, height)
    size = float(np.linalg.norm(bottom_left - top_left))
    baseline = None
    if textangle == 0.0:
        slope = float(np.tan(np.radians(angle)))
        at_left = bottom_left[1] + slope * (bbox[0] - bottom_left[0]) - 0.2 * size
        baseline = (slope, float(at_left - bbox[3]))
    return LineLayout(bbox, textangle, baseline, size)


def pdf_runs(line: TextLine) -> tuple[TextWord, ...]:
    """The stretches of a line's text to lay in a PDF text layer: its words (``line_words``), or the whole line
    as one where its text runs upside down on the page (read turned 180 degrees, or turned upright by
    ``--rotate-pages``): placed word by word, a PDF reader copies such words in page order, right to left."""
    if abs(run_angle(text_quad(line.points, line.angle))) > 135:
        return (TextWord(line.text, np.asarray(line.points, dtype=np.float64), float(line.score)),)
    return line_words(line)


def tsv_rows(page_number: int, result: PageResult) -> list[str]:
    """The tsv rows of one page (``TsvWriter.HEADER`` columns), tab-separated."""
    rows = []
    for number, line in enumerate(result.lines, start=1):
        x0, y0, x1, y1 = quad_bbox(line.points, result.width, result.height)
        cells = (page_number, number, x0, y0, x1 - x0, y1 - y0, f"{100 * line.score:.2f}", tsv_field(line.text))
        rows.append("\t".join(str(cell) for cell in cells))
    return rows


DETECTION_TSV_HEADER = ("image", "box", "score", "points")


def detection_lines(fmt: str, image: str, width: int, height: int, boxes: Sequence[TextBox]) -> list[str]:
    """What ``detect`` prints for one image in ``fmt``: json, one object; txt, ``x1,y1,...,x4,y4`` per box
    (ICDAR style); tsv, one ``DETECTION_TSV_HEADER`` row per box."""
    if fmt == "json":
        boxed = [box.to_dict() for box in boxes]
        return [json_text({"image": image, "width": width, "height": height, "boxes": boxed})]
    rows = []
    for number, box in enumerate(boxes, start=1):
        points = ",".join(str(int(v)) for v in box.points.reshape(-1))
        rows.append(points if fmt == "txt" else f"{tsv_field(image)}\t{number}\t{box.score:.5f}\t{points}")
    return rows


def make_writer(fmt: str, source: str) -> Writer:
    """A fresh writer of format ``fmt`` (one of ``FORMATS``) for the input named ``source`` (a name that is not
    valid UTF-8, which Linux allows, is written with U+FFFD where its bad bytes were)."""
    try:
        return _WRITERS[fmt](source.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}") from None


def _font_for(text: str | None) -> str:
    """Helvetica for text it can encode (readable by every PDF tool), else (and for None) a CID font."""
    try:
        if text is not None:
            text.encode("cp1252")
            return _LATIN_FONT
    except UnicodeEncodeError:
        pass
    _register_unicode_font()
    return _UNICODE_FONT


def _register_unicode_font() -> None:
    from reportlab.pdfbase import pdfmetrics

    if _UNICODE_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(_unicode_font())


def _unicode_font() -> Any:
    """A reportlab font that writes text as UTF-16 code units, each read back as itself through a ToUnicode map
    (as Tesseract's text layer does): STSong-Light's own CMap (UniGB-UCS2-H) maps only the characters of Adobe-GB1
    to glyphs, and poppler (pdftotext, Evince, Okular) reads text through those glyphs, so Polish, Czech, Romanian
    or accented Greek letters (in the PP-OCRv5/v6 charsets) came out missing. Every code unit is 1000 units wide
    (reportlab's ``stringWidth`` as the PDF's DW); the glyphs are never drawn (render mode 3)."""
    import copy

    from reportlab.pdfbase import pdfdoc
    from reportlab.pdfbase.cidfonts import CIDFontInfo, UnicodeCIDFont, structToPDF

    class _UnicodeFont(UnicodeCIDFont):
        def __init__(self) -> None:
            super().__init__("STSong-Light")
            self.name = self.fontName = _UNICODE_FONT

        def stringWidth(self, text: str, size: float, encoding: str | None = None) -> float:  # noqa: N802
            return size * len(text.encode("utf-16-be")) / 2

        def addObjects(self, doc: Any) -> None:  # noqa: N802
            internal = f"F{len(doc.fontMapping) + 1}"
            info = copy.deepcopy(CIDFontInfo[self.face.name])
            info.update(Name=f"/{internal}", Encoding="/Identity-H")
            del info["DescendantFonts"][0]["W"]  # Adobe-GB1 widths; the codes are now Unicode's
            font = structToPDF(info)
            font.dict["ToUnicode"] = doc.Reference(pdfdoc.PDFStream(content=_identity_to_unicode()))
            doc.idToObject["BasicFonts"].dict[internal] = doc.Reference(font, internal)
            doc.fontMapping[self.name] = f"/{internal}"

    return _UnicodeFont()


def _identity_to_unicode() -> str:
    """A ToUnicode CMap mapping each 2-byte code to the same BMP code point (surrogate halves left unmapped: a
    character beyond the BMP, an emoji, is dropped by readers that cannot pair them rather than garbled)."""
    highs = [high for high in range(256) if not 0xD8 <= high <= 0xDF]
    blocks = [highs[i : i + 100] for i in range(0, len(highs), 100)]  # at most 100 entries per block
    ranges = [f"{len(block)} beginbfrange\n" + "".join(f"<{h:02X}00> <{h:02X}FF> <{h:02X}00>\n" for h in block)
              + "endbfrange" for block in blocks]
    return "\n".join(["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
                      "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
                      "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
                      "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange", *ranges,
                      "endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"])



def _jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of a BGR image, greyscale when all channels agree (smaller files)."""
    grey = image[:, :, 0]
    if np.array_equal(grey, image[:, :, 1]) and np.array_equal(grey, image[:, :, 2]):
        image = grey
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise ValueError("cannot encode the page image as JPEG")
    return encoded.tobytes()


def _quarter_turn(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The unit vectors along and up the text, in PDF points (y upwards), of the quarter turn (0, 90, 180 or 270
    degrees) nearest a line running at clockwise ``angle`` on the image (``run_angle``): poppler (pdftotext, Evince)
    starts a new word wherever a character's baseline drifts from the word's, so text laid along a line tilted 4
    degrees came back cut inside its words ("unseate d")."""
    turn = round(angle / 90.0) % 4
    along = np.array([(1.0, 0.0), (0.0, -1.0), (-1.0, 0.0), (0.0, 1.0)][turn])
    return along, np.array([-along[1], along[0]])


def _text_height(quad: np.ndarray) -> float:
    """The height of a quad starting where its text starts: the mean of its two sides across the text."""
    top_left, top_right, bottom_right, bottom_left = quad
    return float(np.linalg.norm(bottom_left - top_left) + np.linalg.norm(bottom_right - top_right)) / 2


def tsv_field(text: str) -> str:
    """``text`` as one tab-separated field: its tabs and line breaks (in a line's text, in a file name) as spaces,
    so that a row keeps its columns."""
    return " ".join(text.split("\t")).replace("\n", " ").replace("\r", " ")


def _bbox(box: tuple[int, int, int, int]) -> str:
    return "bbox {} {} {} {}".format(*box)


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _xml_safe(text: str) -> str:
    """``text`` with each character XML 1.0 does not allow (control characters, lone surrogates) replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def _title_safe(name: str) -> str:
    return name.replace('"', "'").replace(";", ",")
