"""Reading images from disk or bytes into BGR uint8 arrays, and expanding input paths.

Every failure is an ``ImageReadError`` with a one-line message naming the file; nothing
returns a half-decoded image. Numpy/Pillow only, no torch.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ocrlite.errors import ImageReadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "read_image",
    "natural_key",
    "decode_image_bytes",
    "expand_inputs",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 80_000_000

# Modes decoded to more than 8 bits per sample; Pillow stores 16-bit PNG/TIFF grey in them.
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as a contiguous BGR uint8 HxWx3 array.

    Alpha is composited on white, 16-bit samples are scaled to 8 bits, EXIF orientation is
    applied. Raises ``ImageReadError`` for a missing, empty, non-image, truncated or corrupt
    file, and for an image whose header declares more than ``max_pixels`` pixels (checked
    before any pixel data is decoded). Truncation is detected as long as Pillow's global
    ``ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default, False.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory, not an image file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    try:
        with path.open("rb") as stream:
            return _decode(stream, str(path), max_pixels)
    except OSError as exc:  # open() itself failed: permissions, special files
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def decode_image_bytes(
    data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode encoded image bytes exactly like ``read_image``; ``name`` labels error messages."""
    if not data:
        raise ImageReadError(f"{name}: empty data (0 bytes)")
    return _decode(io.BytesIO(data), name, max_pixels)


def _decode(stream: BinaryIO, name: str, max_pixels: int) -> np.ndarray:
    """Open, size-check, fully load and convert one image; all Pillow failures become ImageReadError."""
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our max_pixels check below replaces Pillow's bomb check
    try:
        image: Image.Image = Image.open(stream)
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{name}: not a recognised image file") from exc
    except Exception as exc:  # Pillow raises many types for malformed headers
        raise ImageReadError(f"{name}: cannot decode image header ({exc})") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit

    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageReadError(f"{name}: image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageReadError(
                f"{name}: image is {width}x{height} = {width * height} pixels, more than the "
                f"limit of {max_pixels}; pass a larger max_pixels to read it"
            )
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
            array = _to_bgr(image)
        except Exception as exc:  # truncated data, bad CRC, broken zlib/JPEG stream, ...
            raise ImageReadError(f"{name}: corrupt or truncated image data ({exc})") from exc

    expected = (image.size[1], image.size[0], 3)
    if array.shape != expected or array.dtype != np.uint8:
        raise ImageReadError(f"{name}: decoded to {array.shape} {array.dtype}, expected {expected} uint8")
    return array


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Convert any loaded Pillow image to a contiguous BGR uint8 array (alpha over white)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image).astype(np.float64)
        # Full 16-bit range onto 0..255, rounded: 65535 -> 255, 32768 -> 128.
        grey8 = np.clip(np.rint(grey * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    if image.mode == "F":
        grey8 = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))

    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA")).astype(np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = np.rint(rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    else:
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def expand_inputs(
    paths: Iterable[str | Path],
    recursive: bool = True,
    extensions: Collection[str] = IMAGE_EXTENSIONS,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Turn user-given paths into image files to read, plus (path, message) errors.

    Files named explicitly are kept whatever their extension (reading reports bad ones).
    Directories are expanded to files with a suffix in ``extensions`` (lower case, dot
    included; matched in any case; ``IMAGE_EXTENSIONS`` by default), in
    natural order ("p2" before "p10"), descending into subdirectories when ``recursive``.
    A missing path, or a directory holding no images, gives an error entry instead.
    """
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _images_in(path, recursive, extensions)
            if found:
                files.extend(found)
            else:
                errors.append((str(raw), f"no images found in {path}"))
        elif path.exists():
            files.append(path)
        else:
            errors.append((str(raw), f"{path}: no such file or directory"))
    return files, errors


def _images_in(directory: Path, recursive: bool, extensions: Collection[str]) -> list[Path]:
    """Files under ``directory`` with one of ``extensions``, in natural order (symlinked directories not followed)."""
    found: list[Path] = []
    for root, dirnames, filenames in os.walk(directory):
        for filename in filenames:
            if os.path.splitext(filename)[1].lower() in extensions:
                found.append(Path(root, filename))
        if not recursive:
            dirnames.clear()
    return sorted(found, key=lambda p: natural_key(p.relative_to(directory)))


def natural_key(path: Path) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """Sort key comparing digit runs as numbers, part by part ("a/p2" < "a/p10" < "b/p1")."""
    return tuple(
        tuple((0, int(tok)) if tok.isdigit() else (1, tok.lower()) for tok in re.split(r"(\d+)", part) if tok)
        for part in path.parts
    )
