"""Input files as pages, from their path or from their bytes (``open_pages(path, data=read_input(path))``):
the same pages, resolutions and error messages either way."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ocrlite.errors import ImageReadError
from ocrlite.io.images import read_image
from ocrlite.io.pages import count_pages, open_pages, read_input


def _page(word: str, size: tuple[int, int] = (240, 80)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((10, 30), word, fill="black")
    return image


def _inputs(folder: Path) -> list[Path]:
    """One of each kind of input, good and bad."""
    _page("png").save(folder / "a.png", dpi=(150, 150))
    _page("jpeg").save(folder / "b.jpg", quality=90)
    _page("one").save(folder / "c.tiff", save_all=True, append_images=[_page("two", (200, 60))], dpi=(300, 300))
    _page("first").save(folder / "d.pdf", save_all=True, append_images=[_page("second", (120, 300))], resolution=72)
    jpeg = (folder / "b.jpg").read_bytes()
    (folder / "corrupt.jpg").write_bytes(jpeg[:-30])  # the header is whole, the data cut short
    (folder / "empty.png").write_bytes(b"")
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    (folder / "text.png").write_bytes(b"not an image at all")
    (folder / "cut.tiff").write_bytes((folder / "c.tiff").read_bytes()[:300])  # its second frame's tags cut off
    return sorted(folder.iterdir())


def _read(path: Path, data: bytes | None) -> list[Any]:
    """Each page as (number, dpi, shape, pixels), or the error message where opening or a page fails."""
    try:
        with open_pages(path, dpi=100, data=data) as source:
            pages: list[Any] = []
            for number in range(1, len(source) + 1):
                try:
                    page = source.page(number)
                    pages.append((page.number, page.dpi, page.image.shape, page.image.tobytes()))
                except ImageReadError as exc:
                    pages.append(str(exc))
            return pages
    except ImageReadError as exc:
        return [str(exc)]


def _read_bytes(path: Path) -> list[Any]:
    """``_read`` of the file's contents (``read_input``), or the error message where they cannot be read."""
    try:
        data = read_input(path)
    except ImageReadError as exc:
        return [str(exc)]
    return _read(path, data)


@pytest.mark.filterwarnings("error")  # Pillow's warnings about a cut file: the one error line says it
def test_pages_from_bytes_equal_pages_from_the_path(tmp_path: Path) -> None:
    paths = _inputs(tmp_path)
    from_paths = {p.name: _read(p, None) for p in paths}
    assert {p.name: _read_bytes(p) for p in paths} == from_paths
    assert [len(from_paths[name]) for name in ("a.png", "c.tiff", "d.pdf")] == [1, 2, 2]
    assert [round(page[1]) for page in from_paths["a.png"] + from_paths["c.tiff"]] == [150, 300, 300]
    assert from_paths["d.pdf"][1][2] == (417, 167, 3)  # the second page's own size, rendered at 100 dpi
    errors = {name: pages[0] for name, pages in from_paths.items() if isinstance(pages[0], str)}
    assert sorted(errors) == ["broken.pdf", "corrupt.jpg", "cut.tiff", "empty.pdf", "empty.png", "text.png"]
    assert errors["cut.tiff"].startswith(f"{tmp_path / 'cut.tiff'}: corrupt or truncated image data")
    assert errors["empty.png"] == f"{tmp_path / 'empty.png'}: empty file (0 bytes)"
    assert errors["corrupt.jpg"].startswith(f"{tmp_path / 'corrupt.jpg'}: corrupt or truncated image data")


def test_read_input_names_the_file_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"^scans/gone\.png: no such file$"):
        read_input(tmp_path / "gone.png", "scans/gone.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_input(tmp_path)
    (tmp_path / "x.png").write_bytes(b"\x89PNG\x00\x00")
    assert read_input(tmp_path / "x.png") == b"\x89PNG\x00\x00"


def test_a_tiff_without_resolution_tags_gets_the_fallback_dpi(tmp_path: Path) -> None:
    """Pillow reports 1 dpi for such a TIFF: a 640 px page would be a 640-inch searchable PDF page."""
    path = tmp_path / "bare.tiff"
    Image.new("RGB", (64, 30), "white").save(path, save_all=True, append_images=[Image.new("RGB", (64, 30))])
    with Image.open(path) as image:
        assert image.info["dpi"] == (1, 1)  # what Pillow reports: no real resolution
    with open_pages(path, dpi=200) as source:
        assert [source.page(n).dpi for n in (1, 2)] == [200, 200]
    Image.new("RGB", (64, 30), "white").save(tmp_path / "tagged.tiff", dpi=(300, 300))
    with open_pages(tmp_path / "tagged.tiff", dpi=200) as source:
        assert source.page(1).dpi == pytest.approx(300)


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result, or its exception, from a thread given ``seconds`` (a read that blocks fails the test)."""
    done: list[Any] = []

    def run() -> None:
        try:
            done.append(call())
        except Exception as exc:  # the error is the result here
            done.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert done, f"still reading after {seconds} s"
    return done[0]


@pytest.fixture()
def fifos(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Makes FIFOs named like inputs: opening one for reading waits for a writer (released at the end)."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path / name)
        os.mkfifo(made[-1])
        return made[-1]

    yield make
    for path in made:
        try:  # a reader still waiting (a failed test) gets end-of-file
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader waiting
            pass


def test_a_fifo_is_refused_by_every_reader_not_waited_on(fifos: Callable[[str], Path]) -> None:
    """A FIFO (or device) named like an input would block a read for ever: each reader refuses it in one line."""
    def error(call: Callable[[], Any]) -> str:
        result = _within(10, call)
        assert isinstance(result, ImageReadError), result
        return str(result)

    image, pdf = fifos("pipe.png"), fifos("pipe.pdf")
    assert error(lambda: read_image(image)) == f"{image}: not a regular file"
    assert error(lambda: open_pages(image)) == f"{image}: not a regular file"
    assert error(lambda: open_pages(pdf)) == f"{pdf}: not a regular file"
    assert error(lambda: read_input(image, "scans/pipe.png")) == "scans/pipe.png: not a regular file"
    assert _within(10, lambda: count_pages(image)) == 1 and _within(10, lambda: count_pages(pdf)) == 1


def test_a_first_page_over_pillows_bomb_limit_costs_only_itself(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow refuses to open an image of more than twice its ``MAX_IMAGE_PIXELS`` (a DecompressionBombError); a
    multi-page TIFF whose first page is that large must still give every page, the large one failing alone on
    ``max_pixels``. Pillow's limit is lowered here so a small file shows it."""
    path = tmp_path / "first.tiff"
    _page("big", (300, 200)).save(path, save_all=True, append_images=[_page("two", (100, 40)), _page("3", (100, 40))])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # the first page, 60,000 pixels, is over twice that
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    assert count_pages(path) == 3
    with open_pages(path, max_pixels=50_000) as source:
        assert len(source) == 3
        with pytest.raises(ImageReadError, match=r"page 1: image is 300x200 = 60000 pixels, more than the limit"):
            source.page(1)
        assert [source.page(n).image.shape for n in (2, 3)] == [(40, 100, 3), (40, 100, 3)]
    assert Image.MAX_IMAGE_PIXELS == 20_000  # Pillow's own limit is back


def test_threads_reading_pdfs_never_call_pdfium_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PDFium is not thread-safe: read-ahead threads and a service's threads reading PDFs must take turns.
    A stand-in for pypdfium2's document counts the threads inside it at once (each call lingers a little)."""
    import time

    import numpy as np
    import pypdfium2

    inside, most = [0], [0]
    guard = threading.Lock()

    def call() -> None:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        with guard:
            inside[0] -= 1

    class Bitmap:
        def to_numpy(self) -> np.ndarray:
            call()
            return np.zeros((20, 30, 4), np.uint8)

        def close(self) -> None:
            call()

    class PdfPage:
        def get_size(self) -> tuple[float, float]:
            call()
            return 72.0, 48.0

        def render(self, scale: float) -> Bitmap:
            call()
            return Bitmap()

        def close(self) -> None:
            call()

    class Document:
        def __init__(self, source: Any) -> None:
            call()

        def init_forms(self) -> None:
            call()

        def __len__(self) -> int:
            call()
            return 3

        def __getitem__(self, index: int) -> PdfPage:
            call()
            return PdfPage()

        def close(self) -> None:
            call()

    monkeypatch.setattr(pypdfium2, "PdfDocument", Document)
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(b"%PDF-1.4 stand-in")

    shapes: list[Any] = []

    def read() -> None:
        with open_pages(pdf) as pages:
            shapes.append((count_pages(pdf), [pages.page(n).image.shape for n in range(1, len(pages) + 1)]))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shapes == [(3, [(20, 30, 3)] * 3)] * 4
    assert most[0] == 1


def test_a_filled_in_pdf_form_is_rendered_with_its_values(tmp_path: Path) -> None:
    """The text typed into a PDF form's fields (AcroForm widgets, a viewer shows them) is part of the page: it was
    rendered blank (pdfium draws form fields only for a document with its form environment)."""
    from reportlab.pdfgen import canvas

    path = tmp_path / "form.pdf"
    form = canvas.Canvas(str(path), pagesize=(400, 200))
    form.acroForm.textfield(name="name", value="JOHN SMITH", x=50, y=100, width=300, height=40, fontSize=24,
                            borderWidth=0, fillColor=None)
    form.showPage()
    form.save()
    for data in (None, read_input(path)):
        with open_pages(path, dpi=144, data=data) as source:
            image = source.page(1).image
        dark = image.min(axis=2) < 128
        assert dark[120:200, 100:700].sum() > 1000  # the field's value, at (50..350, 100..140) pt from the bottom
        assert dark.sum() == dark[120:200, 100:700].sum()  # and nothing else
