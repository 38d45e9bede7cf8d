"""Image reading: every kind of bad input is one clear ImageReadError; odd formats decode right."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ocrlite.errors import ImageReadError
from ocrlite.io.images import decode_image_bytes, expand_inputs, read_image


def _noise(h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _pil_bytes(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 grey PNG whose IHDR (with a fixed CRC) claims ``width`` x ``height``."""
    data = bytearray(_pil_bytes(Image.new("L", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# ---------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageReadError, match="no such file") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="empty"):
        read_image(_write(tmp_path / "empty.png", b""))


def test_text_named_png(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not a recognised image"):
        read_image(_write(tmp_path / "notes.png", b"just some text\n"))


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_file(tmp_path: Path, ext: str) -> None:
    data = cv2.imencode(ext, _noise())[1].tobytes()
    with pytest.raises(ImageReadError, match="truncated") as info:
        read_image(_write(tmp_path / f"cut{ext}", data[: len(data) // 2]))
    assert "\n" not in str(info.value)


def test_truncated_jpeg_missing_only_tail(tmp_path: Path) -> None:
    data = cv2.imencode(".jpg", _noise())[1].tobytes()
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(_write(tmp_path / "tail.jpg", data[:-40]))


def test_corrupt_png_data(tmp_path: Path) -> None:
    data = bytearray(cv2.imencode(".png", _noise())[1].tobytes())
    data[data.find(b"IDAT") + 20] ^= 0xFF
    with pytest.raises(ImageReadError, match="corrupt"):
        read_image(_write(tmp_path / "bad.png", bytes(data)))


@pytest.mark.parametrize("side", [30000, 10000])  # above Pillow's own refusal / its warning
def test_huge_header_refused_fast(tmp_path: Path, side: int) -> None:
    path = _write(tmp_path / "huge.png", _png_claiming(side, side))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning leaks out
        with pytest.raises(ImageReadError, match="max_pixels"):
            read_image(path)
    assert time.perf_counter() - start < 0.5


def test_max_pixels_is_adjustable(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.png", cv2.imencode(".png", _noise(100, 100))[1].tobytes())
    with pytest.raises(ImageReadError, match="10000 pixels"):
        read_image(path, max_pixels=9999)
    assert read_image(path, max_pixels=10000).shape == (100, 100, 3)


def test_decode_bytes_errors_name_the_source() -> None:
    with pytest.raises(ImageReadError, match="^upload.png: empty"):
        decode_image_bytes(b"", "upload.png")
    with pytest.raises(ImageReadError, match="^upload.png: not a recognised"):
        decode_image_bytes(b"<html>", "upload.png")


# ---------------------------------------------------------------- good input


def _check(array: np.ndarray, shape: tuple[int, int]) -> None:
    assert array.dtype == np.uint8
    assert array.shape == (*shape, 3)
    assert array.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_round_trip_is_bgr(tmp_path: Path, ext: str) -> None:
    image = _noise(30, 50)
    path = tmp_path / f"x{ext}"
    Image.fromarray(image[:, :, ::-1]).save(path, lossless=True)
    out = read_image(path)
    _check(out, (30, 50))
    np.testing.assert_array_equal(out, image)


def test_decode_bytes_matches_read_image(tmp_path: Path) -> None:
    data = cv2.imencode(".png", _noise())[1].tobytes()
    np.testing.assert_array_equal(decode_image_bytes(data), read_image(_write(tmp_path / "a.png", data)))


def test_grayscale(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.new("L", (7, 5), 100).save(path)
    out = read_image(path)
    _check(out, (5, 7))
    assert (out == 100).all()


def test_grayscale_alpha_on_white(tmp_path: Path) -> None:
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[0, 0] = (40, 255)  # opaque dark
    la[0, 1] = (40, 0)  # fully transparent -> white
    la[1, :] = (0, 128)  # half black over white -> 127
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    out = read_image(path)
    _check(out, (2, 2))
    assert (out[0, 0] == 40).all() and (out[0, 1] == 255).all() and (out[1] == 127).all()


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgba[0, 1] = (255, 0, 0, 128)
    rgba[0, 2] = (0, 0, 0, 0)
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = read_image(path)
    np.testing.assert_array_equal(out[0], [[0, 0, 255], [127, 127, 255], [255, 255, 255]])


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)  # 0 = blue, 1 = green
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    path = tmp_path / "p.png"
    image.save(path, transparency=1)
    out = read_image(path)
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [255, 255, 255]])


def test_palette_opaque(tmp_path: Path) -> None:
    image = Image.new("P", (1, 1))
    image.putpalette([10, 20, 30] + [0] * 765)
    path = tmp_path / "p.png"
    image.save(path)
    np.testing.assert_array_equal(read_image(path)[0, 0], [30, 20, 10])


def test_16bit_grey_png_scaled(tmp_path: Path) -> None:
    grey = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    cv2.imwrite(str(path), grey)
    out = read_image(path)
    _check(out, (1, 4))
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert (out == out[:, :, :1]).all()


def test_16bit_colour_png(tmp_path: Path) -> None:
    bgr = np.zeros((1, 2, 3), dtype=np.uint16)
    bgr[0, 0] = (65535, 0, 0)
    bgr[0, 1] = (0, 0, 65535)
    path = tmp_path / "c16.png"
    cv2.imwrite(str(path), bgr)
    np.testing.assert_array_equal(read_image(path)[0], [[255, 0, 0], [0, 0, 255]])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red
    out = read_image(path)
    _check(out, (16, 16))
    np.testing.assert_allclose(out[8, 8], [0, 0, 255], atol=12)


@pytest.mark.parametrize(("orientation", "red_at"), [(6, (8, -8)), (8, (-8, 8))])
def test_exif_orientation_applied(tmp_path: Path, orientation: int, red_at: tuple[int, int]) -> None:
    """A 64x32 image with a red top-left block comes back 32x64 with the block moved.

    Orientation 6 is displayed turned 90 degrees clockwise (block top-right), 8 counter-clockwise
    (block bottom-left).
    """
    rgb = np.full((32, 64, 3), 255, dtype=np.uint8)
    rgb[:16, :16] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(path, quality=95, exif=exif)
    out = read_image(path)
    _check(out, (64, 32))
    np.testing.assert_allclose(out[red_at], [0, 0, 255], atol=40)
    np.testing.assert_allclose(out[8, 8] if orientation == 6 else out[8, -8], [255, 255, 255], atol=40)


def test_one_pixel(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (1, 2, 3)).save(path)
    np.testing.assert_array_equal(read_image(path), [[[3, 2, 1]]])


# ---------------------------------------------------------------- expand_inputs


def test_expand_inputs(tmp_path: Path) -> None:
    root = tmp_path / "pages"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for name in ["p10.png", "p2.jpg", "sub/a.JPG", "notes.txt", "p1.TIFF"]:
        (root / name).write_bytes(b"x")
    explicit = tmp_path / "readme.txt"
    explicit.write_text("hi")

    files, errors = expand_inputs([root, tmp_path / "empty", tmp_path / "gone.png", str(explicit)])

    assert files == [root / "p1.TIFF", root / "p2.jpg", root / "p10.png", root / "sub" / "a.JPG", explicit]
    assert errors == [
        (str(tmp_path / "empty"), f"no images found in {tmp_path / 'empty'}"),
        (str(tmp_path / "gone.png"), f"{tmp_path / 'gone.png'}: no such file or directory"),
    ]


def test_expand_inputs_not_recursive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    assert expand_inputs([tmp_path], recursive=False) == ([tmp_path / "b.png"], [])
    files, errors = expand_inputs([tmp_path / "sub"], recursive=False)
    assert files == [tmp_path / "sub" / "a.png"] and errors == []


def test_reading_from_several_threads_leaves_pillows_own_limit_in_place(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "page.png"
    Image.new("RGB", (64, 32), "white").save(path)
    before = Image.MAX_IMAGE_PIXELS

    def read_many() -> None:
        for _ in range(200):
            read_image(path)

    threads = [threading.Thread(target=read_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Image.MAX_IMAGE_PIXELS == before  # a lost restore switched Pillow's bomb check off process-wide
