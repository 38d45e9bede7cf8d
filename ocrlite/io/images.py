"""Reading images from disk or bytes into BGR uint8 arrays, and expanding input paths.

Every failure is an ``ImageReadError`` with a one-line message naming the file; nothing
returns a half-decoded image. ``bgr_array`` converts in-memory arrays the same way. Numpy/Pillow only, no torch.
"""

from __future__ import annotations

import io
import os
import re
import stat
import threading
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ocrlite.errors import ImageReadError

__all__ = [
    "IMAGE_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "check_input",
    "open_image",
    "read_image",
    "natural_key",
    "decode_image_bytes",
    "decode_frame",
    "image_dpi",
    "bgr_array",
    "expand_inputs",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 80_000_000

# Modes decoded to more than 8 bits per sample; Pillow stores 16-bit PNG/TIFF grey in them.
_PILLOW_LIMIT_LOCK = threading.Lock()
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def check_input(path: Path, name: str | None = None, kind: str = "an image file") -> None:
    """Make sure input file ``path`` can be read: every reader of input files looks them up here first.

    Raises ``ImageReadError`` naming ``name`` (default: ``path``) for a missing path, a folder (not ``kind``),
    anything but a regular file (a FIFO or device would block the read or never end), and an empty file.
    """
    where = name or str(path)
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise ImageReadError(f"{where}: no such file") from exc
    except OSError as exc:
        raise ImageReadError(f"{where}: cannot read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageReadError(f"{where}: is a directory, not {kind}")
    if not stat.S_ISREG(info.st_mode):
        raise ImageReadError(f"{where}: not a regular file")
    if info.st_size == 0:
        raise ImageReadError(f"{where}: empty file (0 bytes)")


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as a contiguous BGR uint8 HxWx3 array.

    Alpha is composited on white, 16-bit samples are scaled to 8 bits, EXIF orientation is
    applied. Raises ``ImageReadError`` for a missing, empty, non-image, truncated or corrupt
    file, for anything but a regular file (``check_input``), and for an image whose header declares more
    than ``max_pixels`` pixels (checked before any pixel data is decoded). Truncation is detected as long as
    Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default, False.
    """
    path = Path(path)
    check_input(path)
    try:
        with path.open("rb") as stream:
            return _decode(stream, str(path), max_pixels)
    except OSError as exc:  # open() itself failed: permissions
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
    with open_image(stream, name) as image:
        return decode_frame(image, name, max_pixels)


def open_image(source: BinaryIO | Path, name: str) -> Image.Image:
    """Open an image (its first frame) without loading pixels, Pillow's own pixel limit off: ``decode_frame``'s
    ``max_pixels`` check replaces it, frame by frame, so one oversized frame costs only itself. Raises
    ``ImageReadError`` naming ``name`` when Pillow cannot open it."""
    with _PILLOW_LIMIT_LOCK:  # threads reading at once must not leave Pillow's process-wide limit switched off
        pillow_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(source)
        except UnidentifiedImageError as exc:
            raise ImageReadError(f"{name}: not a recognised image file") from exc
        except Exception as exc:  # Pillow raises many types for malformed headers
            raise ImageReadError(f"{name}: cannot decode image header ({exc})") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit


def decode_frame(image: Image.Image, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Size-check, fully load and convert the open Pillow image's current frame (EXIF orientation applied);
    all failures become ImageReadError naming ``name``."""
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageReadError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageReadError(
            f"{name}: image is {width}x{height} = {width * height} pixels, more than the "
            f"limit of {max_pixels} that bounds memory; scale it down (in Python: pass a larger max_pixels to the "
            "call that read it)"
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
        array = _to_bgr(upright)
    except Exception as exc:  # truncated data, bad CRC, broken zlib/JPEG stream, ...
        raise ImageReadError(f"{name}: corrupt or truncated image data ({exc})") from exc
    expected = (upright.size[1], upright.size[0], 3)
    if array.shape != expected or array.dtype != np.uint8:
        raise ImageReadError(f"{name}: decoded to {array.shape} {array.dtype}, expected {expected} uint8")
    return array


_MIN_RECORDED_DPI = 10.0  # below it (Pillow reports 1 for a TIFF without resolution tags): not a real DPI


def image_dpi(image: Image.Image, fallback: float) -> tuple[float, float]:
    """The horizontal and vertical DPI an open image records (a fax: 204 x 98), ``fallback`` when it records none
    (or an implausible one) across, the horizontal one when it records none down."""
    dpi = image.info.get("dpi")
    across, down = (dpi[0], dpi[-1]) if isinstance(dpi, tuple) and dpi else (dpi, dpi)
    x = _plausible_dpi(across) or fallback
    return x, _plausible_dpi(down) or x


def _plausible_dpi(value: Any) -> float:
    """``value`` as a DPI, 0.0 when it is none or implausible."""
    try:
        number = float(value) if value else 0.0
    except (TypeError, ValueError):
        return 0.0
    return number if number >= _MIN_RECORDED_DPI else 0.0


def _to_bgr(image: Image.Image) -> np.ndarray:
    """Convert any loaded Pillow image to a contiguous BGR uint8 array (alpha over white)."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return np.ascontiguousarray(np.repeat(_eight_bit(np.asarray(image))[:, :, None], 3, axis=2))
    if image.mode == "F":
        grey8 = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))

    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgb = _over_white(np.asarray(image.convert("RGBA")))
    else:
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _eight_bit(samples: np.ndarray) -> np.ndarray:
    """16-bit samples onto uint8 over the full range, rounded: 65535 -> 255, 32768 -> 128."""
    return np.clip(np.rint(samples.astype(np.float64) * (255.0 / 65535.0)), 0, 255).astype(np.uint8)


def _over_white(colour_alpha: np.ndarray) -> np.ndarray:
    """uint8 HxWx4 (three colours, then alpha) composited on white: uint8 HxWx3, colours in the same order."""
    samples = colour_alpha.astype(np.float32)
    alpha = samples[:, :, 3:4] / 255.0
    return np.rint(samples[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def bgr_array(image: np.ndarray) -> np.ndarray:
    """An in-memory image as a BGR uint8 HxWx3 array, converted the way ``read_image`` converts files.

    Accepted: uint8 or uint16 (scaled to 8 bits, 65535 -> 255), shaped HxWx3 (BGR, returned as it is when
    uint8), HxW or HxWx1 (grey, repeated to 3 channels) or HxWx4 (BGRA, composited on white). Any other
    dtype (float, signed int, bool) is a TypeError, as its range is ambiguous (0..1 or 0..255?); any other
    shape, or an image with no pixels, is a ValueError.
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"expected a uint8 (or uint16) image array, got {image.dtype}; convert it first: "
                        "image.astype(np.uint8) for values in 0..255, (image * 255).round().astype(np.uint8) for "
                        "values in 0..1")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected an image array shaped HxWx3 (BGR), HxW or HxWx1 (grey) or HxWx4 (BGRA), "
                         f"got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image array has no pixels (shape {image.shape})")
    if image.dtype == np.uint16:
        image = _eight_bit(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:
        return _over_white(image)
    return np.ascontiguousarray(np.repeat(image, 3, axis=2)) if image.shape[2] == 1 else image


def expand_inputs(
    paths: Iterable[str | Path],
    recursive: bool = True,
    extensions: Collection[str] = IMAGE_EXTENSIONS,
    keep_missing: bool = False,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Turn user-given paths into image files to read, plus (path, message) errors.

    Files named explicitly are kept whatever their extension (reading reports bad ones).
    Directories are expanded to files with a suffix in ``extensions`` (lower case, dot
    included; matched in any case; ``IMAGE_EXTENSIONS`` by default), in
    natural order ("p2" before "p10"), descending into subdirectories when ``recursive``.
    A missing path, or a directory holding no images, gives an error entry instead, and so does each folder
    that cannot be listed (no permission): its files are not silently left out; with
    ``keep_missing`` a missing path stays among the files, in its place, for its reader to report.
    """
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, unlisted = _images_in(path, recursive, extensions)
            files.extend(found)
            errors.extend(unlisted)
            if not found and not unlisted:
                errors.append((str(raw), f"no images found in {path}"))
        elif path.exists() or keep_missing:
            files.append(path)
        else:
            errors.append((str(raw), f"{path}: no such file or directory"))
    return files, errors


def _images_in(directory: Path, recursive: bool, extensions: Collection[str]) -> tuple[list[Path],
                                                                                    list[tuple[str, str]]]:
    """Files under ``directory`` with one of ``extensions``, in natural order (symlinked directories not followed),
    and a (folder, message) error for each folder that could not be listed."""
    found: list[Path] = []
    unlisted: list[tuple[str, str]] = []

    def cannot_list(exc: OSError) -> None:
        unlisted.append((str(exc.filename), f"{exc.filename}: cannot list folder ({exc.strerror or exc})"))

    for root, dirnames, filenames in os.walk(directory, onerror=cannot_list):
        for filename in filenames:
            if os.path.splitext(filename)[1].lower() in extensions:
                found.append(Path(root, filename))
        if not recursive:
            dirnames.clear()
    return sorted(found, key=lambda p: natural_key(p.relative_to(directory))), unlisted


def natural_key(path: Path) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """Sort key comparing digit runs as numbers, part by part ("a/p2" < "a/p10" < "b/p1")."""
    return tuple(
        tuple((0, int(tok)) if tok.isdigit() else (1, tok.lower()) for tok in re.split(r"(\d+)", part) if tok)
        for part in path.parts
    )
