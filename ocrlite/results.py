"""Result types returned by the Python API; the CLI and writers serialise these."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TextBox", "TextWord", "TextLine", "PageResult", "DocumentPage"]


class _ValueEquality:
    """``==`` field by field, arrays by value: the ``==`` dataclasses generate compares arrays with ``==``, whose
    element-wise result has no truth value (ValueError). Not hashable: the arrays can change."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))  # type: ignore[arg-type]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


def _points_list(points: np.ndarray) -> list[list[int]]:
    return [[int(x), int(y)] for x, y in np.asarray(points).reshape(4, 2)]


@dataclass(frozen=True, eq=False)
class TextBox(_ValueEquality):
    """A detected text region: a clockwise quad (top-left first) in image pixels."""

    points: np.ndarray
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"points": _points_list(self.points), "score": round(float(self.score), 5)}


@dataclass(frozen=True, eq=False)
class TextWord(_ValueEquality):
    """A word of a recognized line: its text, quad (float image pixels, clockwise from top-left) and the mean
    probability of its characters. The quad is cut from the line's quad at the word's CTC time steps."""

    text: str
    points: np.ndarray
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "points": [[round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(self.points).reshape(4, 2)],
            "score": round(float(self.score), 5),
        }


@dataclass(frozen=True, eq=False)
class TextLine(_ValueEquality):
    """A recognized line of text with its quad, recognition and detection scores."""

    points: np.ndarray
    text: str
    score: float
    det_score: float
    angle: int = 0
    words: tuple[TextWord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            "points": _points_list(self.points),
            "text": self.text,
            "score": round(float(self.score), 5),
            "det_score": round(float(self.det_score), 5),
            "angle": int(self.angle),
        }
        if self.words:
            out["words"] = [word.to_dict() for word in self.words]
        return out


@dataclass(frozen=True, eq=False)
class PageResult(_ValueEquality):
    """Everything read from one image: its size and the lines in reading order.

    ``rotation`` (clockwise angle of the content that was undone, 0/90/180/270) and ``skew`` (degrees the
    page was turned counter-clockwise to level the text) are set only when those page steps ran; the
    quads are always in the pixels of the image as given (after a turn each starts at the corner where its
    text starts).
    """

    width: int
    height: int
    lines: tuple[TextLine, ...] = field(default_factory=tuple)
    rotation: int | None = None
    skew: float | None = None

    @property
    def text(self) -> str:
        """The recognized lines joined by newlines, in reading order."""
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        steps = {key: value for key, value in (("rotation", self.rotation), ("skew", self.skew)) if value is not None}
        return {
            "width": self.width,
            "height": self.height,
            **steps,
            "lines": [line.to_dict() for line in self.lines],
        }


@dataclass(frozen=True, eq=False)
class DocumentPage(_ValueEquality):
    """One page of a file read by ``OCR.read_documents``: the file, the page's 1-based ``number`` of ``count``
    (``paged``: the file is a PDF or has several pages), its image and result, or the ``error`` that cost it.
    A file that could not be opened at all is one entry with number 0, count 0 and its error."""

    path: Path
    number: int
    count: int
    paged: bool
    image: np.ndarray | None = None
    result: PageResult | None = None
    error: Exception | None = None
