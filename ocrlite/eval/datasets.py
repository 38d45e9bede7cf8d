"""Readers for the evaluation benchmarks' ground truth (ICDAR 2015, FUNSD, word-crop sets, PaddleOCR label files).

Each reader takes the data set's root folder and returns (image path, ground truth) in a stable
order; images are not opened here. A missing, unreadable, non-UTF-8 or malformed ground-truth file is a
``ConfigError`` naming the file (and line): the whole set is refused, as a corrupt image in it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.errors import ConfigError
from ocrlite.eval.metrics import DONT_CARE, GtRegion
from ocrlite.io.images import natural_key
from ocrlite.preprocess import crop_quad

__all__ = ["load_icdar2015", "load_funsd", "load_funsd_boxes", "load_word_crops", "parse_icdar_line", "read_funsd_form",
           "read_det_label_file", "read_rec_label_file", "read_text_file", "quad_edges_cross", "FunsdBox", "FunsdForm",
           "check_funsd_unit", "box_quad", "box_crops", "upright_crops"]


def _require_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ConfigError(f"expected a folder at {path}")
    return path


def read_text_file(path: Path, kind: str = "ground truth") -> str:
    """The text of a ``kind`` file (ground truth, label) read as UTF-8, a BOM dropped; a ConfigError naming the
    file if it is missing, unreadable or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {kind} file not found") from None
    except IsADirectoryError:  # e.g. the crop folder that `eval rec --data` takes, given for its labels.txt
        raise ConfigError(f"{path}: a folder, not a {kind} file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {kind}: {exc.strerror or exc}") from None


def _read_gt_lines(path: Path, kind: str = "ground truth") -> list[tuple[int, str]]:
    """The non-blank lines of a ground-truth (``kind``) text file with their 1-based numbers."""
    return [(number, line) for number, line in enumerate(read_text_file(path, kind).splitlines(), 1) if line.strip()]


def read_funsd_form(path: Path) -> list[Any]:
    """The ``form`` list (entities) of a FUNSD annotation JSON file."""
    try:
        form = json.loads(read_text_file(path))["form"]
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: not a FUNSD annotation (no 'form' list)") from None
    if not isinstance(form, list):
        raise ConfigError(f"{path}: not a FUNSD annotation (no 'form' list)")
    return form


@dataclass(frozen=True)
class FunsdBox:
    """An axis-aligned FUNSD box (x0, y0, x1, y1, inclusive pixels) and its text."""

    box: tuple[int, int, int, int]
    text: str


@dataclass(frozen=True)
class FunsdForm:
    """A FUNSD form: image path, its words and its text lines (words of one entity on one row)."""

    image: Path
    words: tuple[FunsdBox, ...]
    lines: tuple[FunsdBox, ...]

    def boxes(self, unit: str) -> tuple[FunsdBox, ...]:
        """The word or line boxes (``unit``: see ``check_funsd_unit``)."""
        return self.words if unit == "words" else self.lines


def _rows(words: list[FunsdBox]) -> list[list[FunsdBox]]:
    """Group an entity's words into rows: a word joins the row whose vertical span it overlaps by half its
    height; rows top to bottom, words left to right."""
    rows: list[list[FunsdBox]] = []
    for word in sorted(words, key=lambda w: (w.box[1], w.box[0])):
        height = word.box[3] - word.box[1] + 1
        for row in rows:
            top, bottom = min(w.box[1] for w in row), max(w.box[3] for w in row)
            if min(bottom, word.box[3]) - max(top, word.box[1]) + 1 >= height / 2:
                row.append(word)
                break
        else:
            rows.append([word])
    return [sorted(row, key=lambda w: w.box[0]) for row in rows]


def _union(words: Sequence[FunsdBox]) -> FunsdBox:
    boxes = np.array([w.box for w in words])
    box = (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max()))
    return FunsdBox(box, " ".join(w.text for w in words))


def load_funsd_boxes(root: str | Path) -> list[FunsdForm]:
    """FUNSD forms (sorted by id; an image without its annotation is an error) with word boxes and line boxes.
    Words with empty text are left out; a line is a row of one entity's words, its box their union and its text
    the words joined by single spaces."""
    root = Path(root)
    ann_dir = root / "annotations"
    if not ann_dir.is_dir():
        raise ConfigError(f"FUNSD annotations not found at {ann_dir}")
    forms = []
    for image, ann in _funsd_files(ann_dir):
        words, lines = [], []
        for entity in read_funsd_form(ann):
            try:
                kept = [_funsd_word(w) for w in entity["words"] if w["text"].strip()]
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ConfigError(f"{ann}: not a FUNSD annotation (a word without 'text' and a 'box' of 4 "
                                  "numbers)") from None
            words += kept
            lines += [_union(row) for row in _rows(kept)]
        forms.append(FunsdForm(image, tuple(words), tuple(lines)))
    return forms


def _funsd_files(ann_dir: Path) -> list[tuple[Path, Path]]:
    """(``images/<id>.png``, ``annotations/<id>.json``) of every form, sorted by id, that has either file: an image
    without its annotation is refused when the annotation is read (ground truth file not found), as ICDAR 2015
    refuses an image without its GT file, not left out without a word."""
    images = ann_dir.parent / "images"
    ids = {path.stem for path in ann_dir.glob("*.json")} | {path.stem for path in images.glob("*.png")}
    return [(images / f"{form}.png", ann_dir / f"{form}.json") for form in sorted(ids)]


def _funsd_word(word: dict[str, Any]) -> FunsdBox:
    """A FUNSD word as a ``FunsdBox`` (text stripped); ValueError when its box is not 4 numbers."""
    x0, y0, x1, y1 = (int(v) for v in word["box"])
    return FunsdBox((x0, y0, x1, y1), word["text"].strip())


def check_funsd_unit(unit: str, key: str = "FUNSD unit") -> str:
    """``unit`` when it names FUNSD boxes (``words`` or ``lines``), else a ConfigError naming ``key``."""
    if unit not in ("words", "lines"):
        raise ConfigError(f"{key} must be 'words' or 'lines', got {unit!r}")
    return unit


def box_quad(box: FunsdBox) -> np.ndarray:
    """The 4 corners of an inclusive pixel box, clockwise from top-left, as polygon points."""
    x0, y0, x1, y1 = box.box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def box_crops(image: np.ndarray, boxes: Sequence[FunsdBox]) -> list[tuple[np.ndarray, FunsdBox]]:
    """(crop, box) for each of a form's ``boxes`` cut from its ``image`` as the pipeline cuts its lines
    (``crop_quad``), clipped to the image (a box reaching far outside it asked for a crop of gigabytes); a box
    without area there is left out."""
    bounds = np.array([image.shape[1] - 1, image.shape[0] - 1], dtype=np.float64)
    cut = ((crop_quad(image, np.clip(box_quad(box), 0, bounds)), box) for box in boxes)
    return [(crop, box) for crop, box in cut if crop is not None]


def parse_icdar_line(line: str) -> GtRegion:
    """One ICDAR 2015 GT line ``x1,y1,...,x4,y4,text``; the text may itself contain commas, and a text wrapped in
    double quotes is unquoted (``\\"`` and ``\\\\`` unescaped), as the official parser does."""
    parts = line.lstrip("\ufeff").rstrip("\r\n").split(",", 8)
    if len(parts) != 9:
        raise ValueError(f"not an ICDAR 2015 GT line: {line!r}")
    points = np.array([float(v) for v in parts[:8]], dtype=np.float64).reshape(4, 2)
    if not np.isfinite(points).all():
        raise ValueError(f"not finite coordinates: {line!r}")
    text = parts[8]
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return GtRegion(points, text, dont_care=text == DONT_CARE)


def load_icdar2015(root: str | Path) -> list[tuple[Path, list[GtRegion]]]:
    """``images/img_N.jpg`` with ``gt/gt_img_N.txt``, sorted by N; a missing GT file is an error."""
    root = Path(root)
    images = sorted(_require_dir(root / "images").glob("img_*.jpg"), key=natural_key)
    samples = []
    for image in images:
        gt_file = root / "gt" / f"gt_{image.stem}.txt"
        regions = []
        for number, line in _read_gt_lines(gt_file):
            try:
                regions.append(parse_icdar_line(line))
            except ValueError:
                raise ConfigError(f"{gt_file}:{number}: expected 'x1,y1,...,x4,y4,text', got {line!r}") from None
        samples.append((image, regions))
    return samples


def load_funsd(root: str | Path) -> list[tuple[Path, list[str]]]:
    """``images/<id>.png`` with the word texts of ``annotations/<id>.json`` (all entities, file order); an image
    without its annotation is an error."""
    root = Path(root)
    samples = []
    for image, ann in _funsd_files(_require_dir(root / "annotations")):
        try:
            words = [word["text"] for entity in read_funsd_form(ann) for word in entity["words"]]
            if not all(isinstance(word, str) for word in words):
                raise TypeError("a word's text is not a string")
        except (KeyError, TypeError):
            raise ConfigError(f"{ann}: not a FUNSD annotation (an entity without 'words' or a word without "
                              "'text' as a string)") from None
        samples.append((image, words))
    return samples


_IGNORED_TEXTS = (DONT_CARE, "*")  # PaddleOCR's don't-care transcriptions
_QUOTED_LABEL = re.compile(r'^(?P<name>[^,]+),\s*"(?P<text>(?:[^"\\]|\\.)*)"\s*$')


def _read_icdar_word_gt(gt_file: Path) -> list[tuple[str, str]]:
    """``word_N.png, "text"`` lines (CRLF allowed, ``\\"`` and ``\\\\`` escapes) -> (file name, text)."""
    pairs = []
    for number, line in _read_gt_lines(gt_file):
        match = _QUOTED_LABEL.match(line)
        if match is None:
            raise ConfigError(f"{gt_file}:{number}: expected 'name, \"text\"', got {line!r}")
        text = re.sub(r"\\(.)", r"\1", match["text"])
        pairs.append((match["name"].strip(), text))
    return pairs


def _read_tags(tags_file: Path) -> list[tuple[str, str]]:
    """``relative/path.png LABEL`` lines (IIIT5K ``train.tags``) -> (path, label)."""
    pairs = []
    for number, line in _read_gt_lines(tags_file):
        name, _, label = line.strip().partition(" ")
        if not label:
            raise ConfigError(f"{tags_file}:{number}: expected 'path LABEL', got {line!r}")
        pairs.append((name, label))
    return pairs


def read_rec_label_file(path: str | Path) -> list[tuple[Path, str]]:
    """``path<TAB>text`` lines (PaddleOCR recognition label file) -> (image path relative to the file's folder,
    text); blank lines skipped, a line without a tab is a ConfigError naming the file and line."""
    path = Path(path)
    pairs = []
    for number, line in _read_gt_lines(path, "label"):
        name, sep, text = line.partition("\t")
        if not sep:
            raise ConfigError(f"{path}:{number}: expected 'image path<TAB>text', got {line!r}")
        pairs.append((path.parent / name, text))
    return pairs


def quad_edges_cross(quad: np.ndarray) -> bool:
    """Whether two opposite edges of a 4-point polygon cross (its points are not in order around the box, e.g.
    top left, top right, bottom left, bottom right): such a 'bow tie' has no area a DB kernel or an IoU can use."""

    def side(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float(np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])))

    def cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
        return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0

    p = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return cross(p[0], p[1], p[2], p[3]) or cross(p[1], p[2], p[3], p[0])


def read_det_label_file(path: str | Path) -> list[tuple[Path, list[GtRegion]]]:
    """A PaddleOCR det label file, ``image path<TAB>[{"transcription": ..., "points": [[x, y], ...]}, ...]`` lines
    (paths relative to the file's folder) -> (image path, its regions), in file order; '###' and '*' transcriptions
    are don't care; the one reader of the format (``ocrlite eval det/e2e --data FILE``, the detector trainer). A
    malformed line (also a point that is not an ``[x, y]`` pair, a coordinate that is not a finite number: JSON's
    NaN or null, or a box of 4 points out of order: ``quad_edges_cross``) is a ConfigError,
    and so is an image listed on two lines (each line's boxes would train the other's text as background, and the
    splits, which are by line, could put the image on both sides)."""
    path = Path(path)
    lines = read_text_file(path, "label").splitlines()
    samples = []
    first_line: dict[Path, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, payload = line.partition("\t")
        try:
            if not sep:
                raise ValueError("no TAB")
            items = json.loads(payload)
            polygons = tuple(np.asarray(item["points"], dtype=np.float64) for item in items)
            texts = tuple(str(item["transcription"]) for item in items)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: expected 'image<TAB>[{{transcription, points}}]' ({exc})") from None
        flat = next((k for k, p in enumerate(polygons) if p.ndim != 2 or p.shape[1] != 2), None)
        if flat is not None:  # reshaped to pairs, [[x, y, z], ...] or [x1, y1, ...] made a box of other corners
            raise ConfigError(f"{path}:{number}: box {flat + 1} ({texts[flat]!r}): points must be [x, y] pairs, "
                              f"got {json.dumps(items[flat]['points'])[:60]}")
        if any(len(p) < 3 for p in polygons):
            raise ConfigError(f"{path}:{number}: a polygon has fewer than 3 points")
        if not all(np.isfinite(p).all() for p in polygons):  # JSON's NaN, Infinity, 1e400 or null
            raise ConfigError(f"{path}:{number}: a polygon has a coordinate that is not a finite number")
        crossed = next((k for k, p in enumerate(polygons) if len(p) == 4 and quad_edges_cross(p)), None)
        if crossed is not None:
            raise ConfigError(f"{path}:{number}: box {crossed + 1} ({texts[crossed]!r}) has its 4 points out of "
                              "order (two of its edges cross); list the corners around the box, e.g. clockwise "
                              "from the top left")
        image = (path.parent / name).resolve()
        if image in first_line:
            raise ConfigError(f"{path}:{number}: {name} is already listed on line {first_line[image]}; give all "
                              "of an image's boxes on one line")
        first_line[image] = number
        samples.append((path.parent / name, [GtRegion(p, t, dont_care=t in _IGNORED_TEXTS)
                                              for p, t in zip(polygons, texts, strict=True)]))
    return samples


def upright_crops(crops: Sequence[np.ndarray], labels: Sequence[str]) -> list[np.ndarray]:
    """Line crops made upright for direction scoring and training. A label file whose every label is 0 or 180 is
    PaddleOCR's direction (cls) label file: a crop labelled 180 is upside down and is turned 180 degrees. The
    crops of any other label file (text labels) are upright as given."""
    angles = [label.strip() for label in labels]
    if not all(angle in ("0", "180") for angle in angles):
        return list(crops)
    return [np.ascontiguousarray(crop[::-1, ::-1]) if angle == "180" else crop
            for crop, angle in zip(crops, angles, strict=True)]


def load_word_crops(root: str | Path) -> list[tuple[Path, str]]:
    """Word crops with their labels, in GT-file order.

    Recognises the layout by its GT file: ``gt/gt.txt`` (ICDAR 2015 Task 4.3, names relative to
    ``images/``), ``gt/*.tags`` (IIIT5K, paths relative to ``images/``) or a PaddleOCR label file
    ``labels.txt`` (``path<TAB>text``, paths relative to the folder; what ``ocrlite synth`` and the
    FUNSD crop export write).
    """
    root = Path(root)
    if (root / "labels.txt").is_file():
        return read_rec_label_file(root / "labels.txt")
    gt_dir = _require_dir(root / "gt")
    if (gt_dir / "gt.txt").is_file():
        pairs = _read_icdar_word_gt(gt_dir / "gt.txt")
    else:
        tags = sorted(gt_dir.glob("*.tags"))
        if not tags:
            raise ConfigError(f"{gt_dir}: neither gt.txt nor a *.tags file")
        pairs = [pair for tag_file in tags for pair in _read_tags(tag_file)]
    return [(root / "images" / name, text) for name, text in pairs]
