"""The recognizer's character set: index 0 is the CTC blank, characters follow from 1."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["Charset"]


class Charset:
    """Maps class indices to characters and back (PaddleOCR convention).

    Index 0 is the CTC blank, ``chars[i]`` has index ``i + 1``, and with ``use_space_char``
    a space is appended as the last class. ``len()`` is the number of classes, blank included.
    """

    def __init__(self, chars: Sequence[str], use_space_char: bool = True) -> None:
        self.chars: tuple[str, ...] = tuple(chars) + ((" ",) if use_space_char else ())
        self._table: tuple[str, ...] = ("",) + self.chars
        # Later duplicates win, as in PaddleOCR's label encoder.
        self._index: dict[str, int] = {ch: i for i, ch in enumerate(self._table) if i}

    @classmethod
    def from_file(cls, path: str | Path, use_space_char: bool = True) -> Charset:
        """Load one character per line; CRLF or LF endings, final newline optional.

        Blank lines inside the file are kept as empty entries so indices stay aligned with
        the weights; only the empty piece after a final newline is dropped.
        """
        text = Path(path).read_text(encoding="utf-8-sig")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls([line.rstrip("\r") for line in lines], use_space_char)

    def __len__(self) -> int:
        return len(self._table)

    def decode(self, indices: Iterable[int]) -> str:
        """Characters for class indices, blank (0) skipped; no CTC collapsing here."""
        out = []
        for index in indices:
            i = int(index)
            if not 0 <= i < len(self._table):
                raise ValueError(f"class index {i} outside 0..{len(self._table) - 1}")
            out.append(self._table[i])
        return "".join(out)

    def encode(self, text: str) -> list[int]:
        """Class indices for ``text``; characters not in the set are dropped."""
        return [self._index[ch] for ch in text if ch in self._index]
