"""Visualisations: detected polygons, and recognized text beside its box."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocrlite.postprocess import text_quad
from ocrlite.results import TextBox, TextLine

__all__ = ["draw_boxes", "draw_lines", "find_font"]

# Debian font packages that cover the recognizer's CJK + Latin charset, best first.
_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
_COLOR = (0, 160, 255)


def draw_boxes(image: np.ndarray, boxes: Sequence[TextBox | TextLine]) -> np.ndarray:
    """A copy of ``image`` with each box's polygon drawn."""
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 600))
    for box in boxes:
        pts = np.asarray(box.points, dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], isClosed=True, color=_COLOR, thickness=thickness)
    return canvas


@lru_cache(maxsize=1)
def find_font() -> str | None:
    """Path of the first installed font from the candidates, warning once if only Latin is covered."""
    for candidate in _FONT_CANDIDATES:
        if Path(candidate).is_file():
            if "DejaVu" in candidate:
                print("ocrlite: note: no CJK font installed (e.g. Debian fonts-wqy-microhei); "
                      "Chinese text will draw as boxes", file=sys.stderr)
            return candidate
    print("ocrlite: note: no TrueType font found; drawing text with Pillow's basic font", file=sys.stderr)
    return None


def draw_lines(image: np.ndarray, lines: Sequence[TextLine]) -> np.ndarray:
    """Boxes on the image (left) beside a white panel with each line's text in its box (right): written across
    the page from the box's top-left, as high as the line's text (``text_quad``: a vertical or upside-down line,
    whatever corner its quad starts at)."""
    left = draw_boxes(image, lines)
    height, width = image.shape[:2]
    panel = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(panel)
    font_path = find_font()
    for line in lines:
        pts = np.asarray(line.points).reshape(4, 2)
        pen.polygon([tuple(map(int, p)) for p in pts], outline=_COLOR[::-1])
        quad = text_quad(pts, line.angle)
        box_h = max(8, int(np.linalg.norm(quad[0] - quad[3])))
        size = max(8, int(box_h * 0.8))
        font = ImageFont.truetype(font_path, size) if font_path else ImageFont.load_default()
        pen.text((int(pts[:, 0].min()) + 2, int(pts[:, 1].min())), line.text, fill="black", font=font)
    right = cv2.cvtColor(np.asarray(panel), cv2.COLOR_RGB2BGR)
    return np.hstack([left, right])
