"""Turn one input file into pages: an image is one page, a multi-page TIFF one page per
frame, a PDF one page per PDF page rendered with pypdfium2 at a chosen DPI. The file is read
from its path, or from its contents already in memory (``open_pages(path, data=...)``: a
distributed run ships the bytes to a machine that cannot see the path), decoded the same way.

Every failure is an ``ImageReadError`` naming the file (and page): opening failures
(corrupt, encrypted, empty) fail the whole file, rendering failures only that page.
Huge pages are guarded against: image frames above ``max_pixels`` are refused before
decoding, and PDF pages are rendered at a lower DPI so they stay within ``max_pixels``.
PDFium is not thread-safe (not even across documents): every call into it holds one process-wide lock, so
readers in several threads (read-ahead, an ``OCR`` shared by a service's threads) take turns.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from ocrlite.errors import ImageReadError
from ocrlite.io.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    check_input,
    decode_frame,
    decode_image_bytes,
    image_dpi,
    open_image,
    read_image,
)

__all__ = [
    "DEFAULT_DPI",
    "INPUT_EXTENSIONS",
    "PDF_EXTENSIONS",
    "Page",
    "PageSource",
    "count_pages",
    "open_pages",
    "read_input",
]

DEFAULT_DPI = 200
PDF_EXTENSIONS = frozenset({".pdf"})
INPUT_EXTENSIONS = IMAGE_EXTENSIONS | PDF_EXTENSIONS
_POINTS_PER_INCH = 72.0
_PDFIUM_LOCK = threading.RLock()  # held around every pypdfium2 call (PDFium is not thread-safe)


@dataclass(frozen=True)
class Page:
    """One page ready for OCR: 1-based number, BGR uint8 image, its (horizontal) resolution and, for a PDF page,
    its own size in points (the rendered pixels round it up) or, for an image whose vertical resolution is not
    its horizontal one (a fax at 204 x 98 dpi), its size at those resolutions (``_image_page``)."""

    number: int
    image: np.ndarray
    dpi: float
    points: tuple[float, float] | None = None


def _image_page(number: int, image: np.ndarray, dpi: tuple[float, float]) -> Page:
    """Page ``number`` of an image file at its horizontal and vertical ``dpi`` (``image_dpi``): where they differ,
    with its size in points, so that a searchable PDF page keeps the scan's proportions."""
    x, y = dpi
    if x == y:
        return Page(number, image, x)
    height, width = image.shape[:2]
    return Page(number, image, x, (width * _POINTS_PER_INCH / x, height * _POINTS_PER_INCH / y))


class PageSource(ABC):
    """An opened input: ``len()`` pages, each loaded on demand by 1-based number.

    Use it in a ``with`` block so file handles are released.
    """

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def page(self, number: int) -> Page:
        """Page ``number`` (1-based); raises ``ImageReadError`` if it cannot be read."""

    def close(self) -> None:  # noqa: B027  (optional hook: most sources hold nothing open)
        """Release what the source holds open."""

    def __enter__(self) -> "PageSource":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class _ImageSource(PageSource):
    """A single-frame image, read with ``read_image`` or, from its contents, ``decode_image_bytes`` (same checks)."""

    def __init__(self, path: Path, dpi: tuple[float, float], max_pixels: int, data: bytes | None) -> None:
        self.path, self.dpi, self.max_pixels, self.data = path, dpi, max_pixels, data

    def __len__(self) -> int:
        return 1

    def page(self, number: int) -> Page:
        if self.data is not None:
            return _image_page(number, decode_image_bytes(self.data, str(self.path), self.max_pixels), self.dpi)
        return _image_page(number, read_image(self.path, max_pixels=self.max_pixels), self.dpi)


class _FramesSource(PageSource):
    """A multi-frame image (TIFF): each frame size-checked, then decoded like ``read_image``."""

    def __init__(self, path: Path, image: Image.Image, dpi: float, max_pixels: int) -> None:
        self.path, self.image, self.dpi, self.max_pixels = path, image, dpi, max_pixels
        self.frames = _frame_count(image, str(path))  # counted already (_open_frames): Pillow keeps the count

    def __len__(self) -> int:
        return self.frames

    def page(self, number: int) -> Page:
        where = f"{self.path} page {number}"
        try:
            self.image.seek(number - 1)
        except Exception as exc:
            raise ImageReadError(f"{where}: cannot seek to frame ({exc})") from exc
        return _image_page(number, decode_frame(self.image, where, self.max_pixels), image_dpi(self.image, self.dpi))

    def close(self) -> None:
        self.image.close()


class _PdfSource(PageSource):
    """A PDF opened with pypdfium2; pages rendered one at a time, buffers freed after each, with their
    annotations and form fields (the values typed into a PDF form) as a viewer shows them."""

    def __init__(self, path: Path, dpi: float, max_pixels: int, data: bytes | None) -> None:
        import pypdfium2 as pdfium

        self.path, self.dpi, self.max_pixels = path, dpi, max_pixels
        with _PDFIUM_LOCK:
            try:
                self.doc = pdfium.PdfDocument(data if data is not None else str(path))
            except pdfium.PdfiumError as exc:
                raise ImageReadError(f"{path}: {_pdf_open_reason(exc)}") from exc
            self.doc.init_forms()  # else the filled-in fields of a form (AcroForm widgets) are rendered blank
            self.count = len(self.doc)
            if self.count == 0:
                self.doc.close()
                raise ImageReadError(f"{path}: PDF has no pages")

    def __len__(self) -> int:
        return self.count

    def page(self, number: int) -> Page:
        with _PDFIUM_LOCK:
            return self._render(number)

    def _render(self, number: int) -> Page:
        try:
            pdf_page = self.doc[number - 1]
        except Exception as exc:
            raise ImageReadError(f"{self.path} page {number}: cannot load page ({exc})") from exc
        try:
            width_pt, height_pt = pdf_page.get_size()
            scale = _render_scale(width_pt, height_pt, self.dpi, self.max_pixels)
            bitmap = pdf_page.render(scale=scale)
            try:
                image = np.array(bitmap.to_numpy()[:, :, :3], copy=True)  # BGR(x) -> BGR
            finally:
                bitmap.close()
        except ImageReadError:
            raise
        except Exception as exc:
            raise ImageReadError(f"{self.path} page {number}: cannot render ({exc})") from exc
        finally:
            pdf_page.close()
        return Page(number, np.ascontiguousarray(image), scale * _POINTS_PER_INCH, (width_pt, height_pt))

    def close(self) -> None:
        with _PDFIUM_LOCK:
            self.doc.close()


def open_pages(path: str | Path, dpi: float = DEFAULT_DPI,
               max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None) -> PageSource:
    """Open ``path`` as a ``PageSource`` (use it in a ``with`` block).

    ``dpi`` is the PDF render resolution, and the resolution assumed for images that
    don't record their own. ``data``, when given, is the file's contents (from ``read_input``):
    it is decoded instead of reading ``path``, which then only names the file (its type, the
    errors). Raises ``ImageReadError`` if the file cannot be opened.
    """
    path = Path(path)
    pdf = path.suffix.lower() in PDF_EXTENSIONS
    if data is None:
        check_input(path, kind="a PDF file" if pdf else "an image file")
    elif not data:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    if pdf:
        return _PdfSource(path, dpi, max_pixels, data)
    frames, own_dpi = _open_frames(path, dpi, data)
    if frames is None:
        return _ImageSource(path, own_dpi, max_pixels, data)
    return _FramesSource(path, frames, dpi, max_pixels)


def read_input(path: str | Path, name: str | None = None) -> bytes:
    """The contents of input file ``path``, for ``open_pages(..., data=)``.

    Raises ``ImageReadError`` naming ``name`` (default: ``path``) when the file cannot be read (``check_input``).
    """
    where = name or str(path)
    check_input(Path(path), where)
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageReadError(f"{where}: cannot read ({exc.strerror or exc})") from exc


def count_pages(path: str | Path) -> int:
    """Number of pages in ``path`` for progress totals; 1 when it can't be told cheaply."""
    path = Path(path)
    try:
        check_input(path)
        if path.suffix.lower() in PDF_EXTENSIONS:
            import pypdfium2 as pdfium

            with _PDFIUM_LOCK:
                doc = pdfium.PdfDocument(str(path))
                try:
                    return max(1, len(doc))
                finally:
                    doc.close()
        with open_image(path, str(path)) as image:
            return max(1, _frame_count(image, str(path)))
    except Exception:
        return 1


def _open_frames(path: Path, dpi: float, data: bytes | None) -> tuple[Image.Image | None, tuple[float, float]]:
    """The open Pillow image if ``path`` (or its contents ``data``) has several frames (else None), and its DPI."""
    try:
        image = open_image(io.BytesIO(data) if data is not None else path, str(path))
    except ImageReadError:
        return None, (dpi, dpi)  # read_image gives the precise error
    own_dpi = image_dpi(image, dpi)
    try:
        if _frame_count(image, str(path)) > 1:
            return image, own_dpi
    except ImageReadError:
        image.close()
        raise
    image.close()
    return None, own_dpi


def _frame_count(image: Image.Image, name: str) -> int:
    """The frames of the open image (1 for a one-frame format); a TIFF cut short, whose frames Pillow cannot
    count (a TypeError, after its warnings about the cut tags, silenced here), is an ImageReadError naming
    ``name``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(getattr(image, "n_frames", 1))
    except Exception as exc:
        raise ImageReadError(f"{name}: corrupt or truncated image data (its frames cannot be counted: {exc})") from exc


def _render_scale(width_pt: float, height_pt: float, dpi: float, max_pixels: int) -> float:
    """Pixels per point for ``dpi``, lowered so the rendered page holds at most ``max_pixels``."""
    if width_pt <= 0 or height_pt <= 0:
        raise ImageReadError(f"page has no area ({width_pt}x{height_pt} pt)")
    scale = dpi / _POINTS_PER_INCH
    if (width_pt * scale + 1) * (height_pt * scale + 1) > max_pixels:
        # largest scale with (w*s + 1) * (h*s + 1) <= max_pixels: pdfium rounds sizes up
        area, side = width_pt * height_pt, width_pt + height_pt
        scale = (math.sqrt(side * side + 4 * area * (max_pixels - 1)) - side) / (2 * area)
    return scale


def _pdf_open_reason(exc: Exception) -> str:
    """A one-line reason for a PDF that pdfium refused to open."""
    import pypdfium2.raw as pdfium_c

    code = getattr(exc, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return "encrypted PDF (a password is required)"
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return "PDF uses an unsupported security handler"
    if code == pdfium_c.FPDF_ERR_FORMAT:
        return "not a PDF or corrupt PDF"
    return f"cannot open PDF ({exc})"
