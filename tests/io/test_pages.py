"""Input files as pages, from their path or from their bytes (``open_pages(path, data=read_input(path))``):
the same pages, resolutions and error messages either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from ocrlite.errors import ImageReadError
from ocrlite.io.pages import open_pages, read_input


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


def test_pages_from_bytes_equal_pages_from_the_path(tmp_path: Path) -> None:
    paths = _inputs(tmp_path)
    from_paths = {p.name: _read(p, None) for p in paths}
    assert {p.name: _read(p, read_input(p)) for p in paths} == from_paths
    assert [len(from_paths[name]) for name in ("a.png", "c.tiff", "d.pdf")] == [1, 2, 2]
    assert [round(page[1]) for page in from_paths["a.png"] + from_paths["c.tiff"]] == [150, 300, 300]
    assert from_paths["d.pdf"][1][2] == (417, 167, 3)  # the second page's own size, rendered at 100 dpi
    errors = {name: pages[0] for name, pages in from_paths.items() if isinstance(pages[0], str)}
    assert sorted(errors) == ["broken.pdf", "corrupt.jpg", "empty.pdf", "empty.png", "text.png"]
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
