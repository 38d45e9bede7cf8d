"""Result types returned by the Python API; the CLI and writers serialise these (``to_dict``), and ``from_dict``
reads what they wrote back (``PageResult.from_dict(json.loads(line))``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np

__all__ = ["TextBox", "TextWord", "TextLine", "PageResult", "DocumentPage"]

_MAX_COORDINATE = np.iinfo(np.int32).max


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


def _field(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
    """``data[key]`` of type ``kind`` (``default`` when absent, if given); anything else is a ValueError naming
    ``where.key``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    if key not in data and default is not ...:
        return default
    if key not in data:
        raise ValueError(f"{where}: missing {key!r}")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{where}.{key}: expected {getattr(kind, '__name__', 'a number')}, got {value!r}")
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> float:
    value = _field(data, key, (int, float), where)
    if not abs(value) <= sys.float_info.max:  # NaN, infinity, an int too large for a float
        raise ValueError(f"{where}.{key}: expected a finite number, got {value!r}")
    return float(value)


def _is_coordinate(value: Any) -> bool:
    """A number a quad's corner may have: finite and within int32 (NaN, infinity and 1e300 compare False)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= _MAX_COORDINATE


def _quad(data: Mapping[str, Any], dtype: type, where: str) -> np.ndarray:
    """``data["points"]``, four [x, y] numbers, as a 4x2 array of ``dtype``."""
    value = _field(data, "points", list, where)
    if len(value) != 4 or not all(isinstance(pair, list) and len(pair) == 2 and all(map(_is_coordinate, pair))
                                  for pair in value):
        raise ValueError(f"{where}.points: expected four [x, y] numbers (finite, within int32), got {value!r}")
    return np.array(value, dtype=dtype)


@dataclass(frozen=True, eq=False)
class TextBox(_ValueEquality):
    """A detected text region: a clockwise quad (top-left first) in image pixels."""

    points: np.ndarray
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"points": _points_list(self.points), "score": round(float(self.score), 5)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "box") -> TextBox:
        """The box ``to_dict`` gave ``data``; a missing or malformed value is a ValueError naming it."""
        return cls(_quad(data, np.int32, where), _number(data, "score", where))


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "word") -> TextWord:
        """The word ``to_dict`` gave ``data``; a missing or malformed value is a ValueError naming it."""
        return cls(_field(data, "text", str, where), _quad(data, np.float64, where),
                   _number(data, "score", where))


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "line") -> TextLine:
        """The line ``to_dict`` gave ``data``; a missing or malformed value is a ValueError naming it."""
        words = _field(data, "words", list, where, default=[])
        return cls(_quad(data, np.int32, where), _field(data, "text", str, where),
                   _number(data, "score", where), _number(data, "det_score", where),
                   _field(data, "angle", int, where),
                   tuple(TextWord.from_dict(word, f"{where}.words[{i}]") for i, word in enumerate(words)))


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageResult:
        """The page ``to_dict`` gave ``data`` (``to_dict`` of the result is ``data`` again), e.g. a line ``ocrlite
        ocr`` prints or a page of a batch JSON file; their other keys (image, page, dpi) are left aside. A missing
        or malformed value is a ValueError naming it (a batch JSON file's page that was not read: its error)."""
        if isinstance(data, Mapping) and "error" in data and "lines" not in data:
            raise ValueError(f"page {data.get('page', '?')} was not read: {data['error']}")
        width, height = _field(data, "width", int, "page"), _field(data, "height", int, "page")
        if width < 0 or height < 0:
            raise ValueError(f"page.width, page.height: expected sizes of 0 or more, got {width} x {height}")
        rotation = _field(data, "rotation", int, "page", default=None)
        if rotation not in (None, 0, 90, 180, 270):
            raise ValueError(f"page.rotation: expected 0, 90, 180 or 270, got {rotation!r}")
        skew = None if data.get("skew") is None else _number(data, "skew", "page")
        return cls(width, height, tuple(TextLine.from_dict(line, f"lines[{i}]")
                                        for i, line in enumerate(_field(data, "lines", list, "page"))),
                   rotation, skew)


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
