"""Image arguments of the Python API (``OCR`` and the predictors): a path, an array or a PIL image as a BGR uint8
array, and a list of them. What cannot be taken is a TypeError or ValueError saying what can."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TypeAlias, TypeVar

import numpy as np
from PIL import Image, ImageFile

from ocrlite.errors import ImageReadError
from ocrlite.io.images import bgr_array, decode_frame, read_image
from ocrlite.io.pages import PDF_EXTENSIONS, count_pages

__all__ = ["ImageLike", "image_array", "image_arrays", "listed"]

_T = TypeVar("_T")
ImageLike: TypeAlias = np.ndarray | str | Path | Image.Image
"""What the API takes as an image: a path, a numpy array or a PIL image (``image_array``)."""


def listed(values: Iterable[_T], name: str, items: str, kinds: tuple[type, ...] = (object,)) -> list[_T]:
    """``values`` as a list; None, or one str, bytes, path or array in place of a list, is a TypeError, and so is
    an item that is none of ``kinds``."""
    if isinstance(values, (str, bytes, os.PathLike, np.ndarray)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of {items}, got {type(values).__name__}"
                        + ("" if values is None else "; put a single one in a list"))
    found = list(values)
    for item in found:
        if not isinstance(item, kinds):
            raise TypeError(f"{name} must be a list of {items}, got the item {item!r} ({type(item).__name__})")
    return found


def image_array(image: ImageLike) -> np.ndarray:
    """An image argument as a BGR uint8 HxWx3 array: a path is read, an array converted (``bgr_array``; a BGR
    uint8 array is returned as it is), a Pillow image (its current frame) converted as its file would be read
    (``decode_frame``: channels to BGR, alpha on white, EXIF orientation). A PDF path is an ImageReadError, a
    multi-page TIFF path warns that page 1 is read."""
    if isinstance(image, np.ndarray):
        return bgr_array(image)
    if isinstance(image, Image.Image):
        name = str(getattr(image, "filename", "") or "<PIL image>")
        if isinstance(image, ImageFile.ImageFile) and image.fp is None and image.tile:  # file closed, pixels unread
            raise ImageReadError(f"{name}: the PIL image was closed before its pixels were read (a with block "
                                 "ended?); pass it inside the block, or image.copy() of it")
        return decode_frame(image, name)
    if isinstance(image, (str, os.PathLike)):
        if Path(image).suffix.lower() in PDF_EXTENSIONS:
            raise ImageReadError(f"{image}: a PDF is not an image; read its pages with OCR.read_documents")
        array = read_image(image)
        if (pages := count_pages(image)) > 1:  # a multi-page TIFF: one image is read, say so rather than lose pages
            warnings.warn(f"{image}: the first of its {pages} pages is read; OCR.read_documents reads them all",
                          stacklevel=3)
        return array
    hint = "; decode encoded image bytes with ocrlite.io.images.decode_image_bytes" if isinstance(
        image, (bytes, bytearray)) else ""
    raise TypeError(f"expected an image path (str or Path), a numpy image array or a PIL image, got "
                    f"{type(image).__name__}{hint}")


def image_arrays(images: Iterable[ImageLike]) -> list[np.ndarray]:
    """A list of images (crops) as BGR uint8 arrays (``image_array``); one image in place of the list is a
    TypeError saying to put it in a list."""
    return [image_array(image) for image in listed(images, "crops", "images (arrays or paths)")]
