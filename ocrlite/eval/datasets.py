"""Readers for the evaluation benchmarks' ground truth (ICDAR 2015, FUNSD, word-crop sets).

Each reader takes the data set's root folder and returns (image path, ground truth) in a stable
order; images are not opened here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ocrlite.eval.metrics import DONT_CARE, GtRegion
from ocrlite.io.images import natural_key

__all__ = ["load_icdar2015", "load_funsd", "load_word_crops", "parse_icdar_line"]


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"expected a folder at {path}")
    return path


def parse_icdar_line(line: str) -> GtRegion:
    """One ICDAR 2015 GT line ``x1,y1,...,x4,y4,text``; the text may itself contain commas."""
    parts = line.lstrip("\ufeff").rstrip("\r\n").split(",", 8)
    if len(parts) != 9:
        raise ValueError(f"not an ICDAR 2015 GT line: {line!r}")
    points = np.array([float(v) for v in parts[:8]], dtype=np.float64).reshape(4, 2)
    text = parts[8]
    return GtRegion(points, text, dont_care=text == DONT_CARE)


def load_icdar2015(root: str | Path) -> list[tuple[Path, list[GtRegion]]]:
    """``images/img_N.jpg`` with ``gt/gt_img_N.txt``, sorted by N; a missing GT file is an error."""
    root = Path(root)
    images = sorted(_require_dir(root / "images").glob("img_*.jpg"), key=natural_key)
    samples = []
    for image in images:
        gt_file = root / "gt" / f"gt_{image.stem}.txt"
        lines = gt_file.read_text(encoding="utf-8-sig").splitlines()
        samples.append((image, [parse_icdar_line(line) for line in lines if line.strip()]))
    return samples


def load_funsd(root: str | Path) -> list[tuple[Path, list[str]]]:
    """``images/<id>.png`` with the word texts of ``annotations/<id>.json`` (all entities, file order)."""
    root = Path(root)
    samples = []
    for ann in sorted(_require_dir(root / "annotations").glob("*.json")):
        form = json.loads(ann.read_text(encoding="utf-8"))["form"]
        words = [word["text"] for entity in form for word in entity["words"]]
        samples.append((root / "images" / f"{ann.stem}.png", words))
    return samples


_QUOTED_LABEL = re.compile(r'^(?P<name>[^,]+),\s*"(?P<text>(?:[^"\\]|\\.)*)"\s*$')


def _read_icdar_word_gt(gt_file: Path) -> list[tuple[str, str]]:
    """``word_N.png, "text"`` lines (CRLF allowed, ``\\"`` and ``\\\\`` escapes) -> (file name, text)."""
    pairs = []
    for line in gt_file.read_text(encoding="utf-8-sig").splitlines():
        if not line.strip():
            continue
        match = _QUOTED_LABEL.match(line)
        if match is None:
            raise ValueError(f"{gt_file}: cannot parse {line!r}")
        text = re.sub(r"\\(.)", r"\1", match["text"])
        pairs.append((match["name"].strip(), text))
    return pairs


def _read_tags(tags_file: Path) -> list[tuple[str, str]]:
    """``relative/path.png LABEL`` lines (IIIT5K ``train.tags``) -> (path, label)."""
    pairs = []
    for line in tags_file.read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            name, _, label = line.strip().partition(" ")
            pairs.append((name, label))
    return pairs


def _read_label_file(path: Path) -> list[tuple[Path, str]]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if line.strip():
            name, sep, text = line.partition("\t")
            if not sep:
                raise ValueError(f"{path}:{number}: expected 'image path<TAB>text'")
            pairs.append((path.parent / name, text))
    return pairs


def load_word_crops(root: str | Path) -> list[tuple[Path, str]]:
    """Word crops with their labels, in GT-file order.

    Recognises the layout by its GT file: ``gt/gt.txt`` (ICDAR 2015 Task 4.3, names relative to
    ``images/``), ``gt/*.tags`` (IIIT5K, paths relative to ``images/``) or a PaddleOCR label file
    ``labels.txt`` (``path<TAB>text``, paths relative to the folder; what ``ocrlite synth`` and the
    FUNSD crop export write).
    """
    root = Path(root)
    if (root / "labels.txt").is_file():
        return _read_label_file(root / "labels.txt")
    gt_dir = _require_dir(root / "gt")
    if (gt_dir / "gt.txt").is_file():
        pairs = _read_icdar_word_gt(gt_dir / "gt.txt")
    else:
        tags = sorted(gt_dir.glob("*.tags"))
        if not tags:
            raise FileNotFoundError(f"{gt_dir}: neither gt.txt nor a *.tags file")
        pairs = [pair for tag_file in tags for pair in _read_tags(tag_file)]
    return [(root / "images" / name, text) for name, text in pairs]
