"""Training data: detection records from PaddleOCR label files, ICDAR 2015 and FUNSD (its boxes: eval.datasets);
deterministic splits with a file manifest; text-line crops written as a PaddleOCR rec label file.

(The ``path<TAB>text`` rec label reader is ``ocrlite.eval.datasets.read_rec_label_file``, filtered by a charset
in ``ocrlite.train.rec_task.read_label_file``.) Text outside a charset
is counted and the sample rejected, never shortened.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError
from ..eval.datasets import FunsdForm, box_quad, check_funsd_unit, load_funsd_boxes, load_icdar2015, read_det_label_file
from ..eval.metrics import GtRegion
from ..io.atomic import atomic_write_text, write_image
from ..io.images import read_image
from ..preprocess import crop_quad
from ..settings import build_settings
from ..weights import sha256_file

__all__ = [
    "DetRecord",
    "det_label_records",
    "icdar2015_records",
    "funsd_records",
    "data_settings",
    "holdout_split",
    "Splits",
    "three_way_split",
    "check_eval_on",
    "empty_split_notes",
    "write_split_manifest",
    "file_entries",
    "scored_data",
    "image_size",
    "write_crops",
    "export_funsd_crops",
]

T = TypeVar("T")


class _DataSection(Protocol):
    """A det or cls task's ``train.data`` settings: what ``data_settings`` reads of them."""

    @property
    def format(self) -> str: ...


D = TypeVar("D", bound=_DataSection)


@dataclass(frozen=True)
class DetRecord:
    """One detection training image: its path, text polygons (N_i x 2), transcriptions, ignore flags and the
    ground-truth file they were read from (for the data manifest)."""

    image: Path
    polygons: tuple[np.ndarray, ...]
    texts: tuple[str, ...]
    ignore: tuple[bool, ...]
    label: Path | None = None

    def regions(self) -> list[GtRegion]:
        """The ground truth in the form ``ocrlite.eval.metrics`` scores."""
        return [GtRegion(p, t, dont_care=i) for p, t, i in zip(self.polygons, self.texts, self.ignore, strict=True)]


def _det_records(samples: Sequence[tuple[Path, list[GtRegion]]], label: Callable[[Path], Path]) -> list[DetRecord]:
    """Detection records of (image, ground truth) samples; ``label``: the ground-truth file of an image."""
    return [DetRecord(image, tuple(np.asarray(r.points, dtype=np.float64) for r in regions),
                      tuple(r.text for r in regions), tuple(r.dont_care for r in regions), label(image))
            for image, regions in samples]


def det_label_records(path: str | Path) -> list[DetRecord]:
    """A PaddleOCR det label file (``ocrlite.eval.datasets.read_det_label_file``) as detection records."""
    return _det_records(read_det_label_file(path), lambda image: Path(path))


def icdar2015_records(root: str | Path) -> list[DetRecord]:
    """ICDAR 2015 ``images/img_N.jpg`` + ``gt/gt_img_N.txt`` as detection records (sorted by N)."""
    return _det_records(load_icdar2015(root), lambda image: Path(root) / "gt" / f"gt_{image.stem}.txt")


def funsd_records(root: str | Path, unit: str = "words", key: str = "FUNSD unit") -> list[DetRecord]:
    """FUNSD forms as detection records with word or line boxes as quads (a bad ``unit`` is an error naming
    ``key``)."""
    check_funsd_unit(unit, key)
    records = []
    for form in load_funsd_boxes(root):
        boxes = form.boxes(unit)
        records.append(DetRecord(form.image, tuple(box_quad(b) for b in boxes), tuple(b.text for b in boxes),
                                 (False,) * len(boxes), Path(root) / "annotations" / f"{form.image.stem}.json"))
    return records


def data_settings(cls: type[D], section: Any) -> D:
    """The det or cls task's ``train.data`` mapping ``section`` as ``cls`` (with ``format`` and ``unit``):
    ``unit: null`` is not set (FUNSD's default unit), as ``eval: null`` is for the rec task; a ``unit`` given for
    data that is not FUNSD's is a ConfigError: only FUNSD has word and line boxes to choose from, other data its
    own boxes or crops."""
    given = isinstance(section, dict) and section.get("unit") is not None
    if isinstance(section, dict) and not given:
        section = {key: value for key, value in section.items() if key != "unit"}
    data = build_settings(cls, "train.data", section)
    if given and data.format != "funsd":
        raise ConfigError(f"train.data.unit: only FUNSD data (format funsd) has word and line boxes to choose from; "
                          f"format {data.format} has its own, so leave unit out")
    return data


def holdout_split(items: Sequence[T], every: int) -> tuple[list[T], list[T]]:
    """(train, held out): item k (0-based) is held out when k % every == every - 1 (every 5th); every <= 0
    holds nothing out. Items are whole images/forms, so no image is on both sides."""
    if every <= 0:
        return list(items), []
    held = [x for k, x in enumerate(items) if k % every == every - 1]
    train = [x for k, x in enumerate(items) if k % every != every - 1]
    return train, held


@dataclass(frozen=True)
class Splits(Generic[T]):
    """Training, validation (picks checkpoints) and held-out (reported, never looked at while training) items."""

    train: list[T]
    val: list[T]
    held_out: list[T]

    def pick(self, name: str) -> list[T]:
        """The split a task evaluates on: ``holdout``, ``val`` or ``train``."""
        return {"holdout": self.held_out, "val": self.val, "train": self.train}[name]


def three_way_split(items: Sequence[T], holdout_every: int, val_every: int) -> Splits[T]:
    """``holdout_split`` by ``holdout_every``, then the same rule by ``val_every`` moves part of the rest to a
    validation split, so keep-best never sees the held-out items (``val_every`` <= 0: no validation split)."""
    rest, held = holdout_split(items, holdout_every)
    train, val = holdout_split(rest, val_every)
    return Splits(train, val, held)


EVAL_SPLITS = ("holdout", "val", "train")


def check_eval_on(eval_on: str, val_every: int) -> None:
    """ConfigError unless ``train.data.eval_on`` names a split that exists."""
    if eval_on not in EVAL_SPLITS:
        raise ConfigError(f"train.data.eval_on must be one of {', '.join(EVAL_SPLITS)}, got {eval_on!r}")
    if eval_on == "val" and val_every <= 0:
        raise ConfigError("train.data.eval_on: val needs train.data.val_every > 0")


def empty_split_notes(eval_on: str, scored: Sequence[Any], holdout_every: int, val_every: int) -> list[str]:
    """One line when the ``train.data.eval_on`` split to score came out empty (too little data for its rule): no
    step is scored, so the run keeps its last weights; it names the setting to change. No line when it is not."""
    if scored:
        return []
    key, every = ("holdout_every", holdout_every) if eval_on == "holdout" else ("val_every", val_every)
    change = f"lower train.data.{key} (now {every})" if every > 0 else f"set train.data.{key} above 0"
    return [f"train.data.eval_on: the {eval_on} split is empty, so no step is scored and the run keeps its last "
            f"weights; {change} or set train.data.eval_on=train"]


def file_entries(files: Sequence[Path]) -> list[dict[str, str]]:
    """The file list of a data manifest: ``{"path", "sha256"}`` per file, the path absolute (resolved), since
    ``ocrlite eval --split`` reads relative ones against the manifest's folder, not the run's working folder."""
    return [{"path": str(Path(f).resolve()), "sha256": sha256_file(Path(f))} for f in files]


def scored_data(key: str, samples: Sequence[Sequence[Any]]) -> dict[str, str] | None:
    """What a task scores during training, for checkpoints (``trainer.check_resume``): ``key``, the setting that
    names it, and the SHA-256 of ``samples`` (each a sequence of JSON values and numpy arrays: an image's
    sha256 and its labels, or a crop's pixels and angle), so that the same samples moved elsewhere are equal.
    None when nothing is scored."""
    if not samples:
        return None
    digest = hashlib.sha256()
    for sample in samples:
        for part in sample:
            if isinstance(part, np.ndarray):
                digest.update(json.dumps([part.shape, str(part.dtype)]).encode("utf-8"))
                digest.update(np.ascontiguousarray(part).tobytes())
            else:
                digest.update(json.dumps(part).encode("utf-8"))
            digest.update(b"\0")
        digest.update(b"\n")
    return {"key": key, "sha256": digest.hexdigest()}


def image_size(path: Path) -> tuple[int, int]:
    """Width and height of a training or evaluation image, from its header: a missing file, or one that is no
    image, is a ConfigError naming it when a run starts, not when a batch draws it."""
    try:
        with Image.open(path) as image:
            return image.size
    except UnidentifiedImageError:
        reason = "not a recognised image file"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    raise ConfigError(f"cannot read image {path}: {reason}")


def write_split_manifest(out_dir: str | Path, rule: str, splits: dict[str, Sequence[Path]],
                         extra: dict[str, Any] | None = None) -> list[Path]:
    """One JSON manifest per split, ``out_dir/split_<name>.json`` = ``{"rule", "split", "files": [{"path",
    "sha256"}], ...extra}`` (the form ``ocrlite eval --split`` reads), written atomically; returns the paths."""
    written = []
    for name, files in splits.items():
        data = {"rule": rule, "split": name, "files": file_entries(files), **(extra or {})}
        path = Path(out_dir) / f"split_{name}.json"
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
        written.append(path)
    return written


def write_crops(
    samples: Iterable[tuple[np.ndarray, np.ndarray, str]],
    out_dir: str | Path,
    allowed: Callable[[str], bool],
    prefix: str = "crop",
) -> tuple[Path, int, int]:
    """Cut (image, quad, text) samples with the pipeline's ``crop_quad`` into ``out_dir`` and write
    ``labels.txt`` (``name<TAB>text``). Samples whose text fails ``allowed`` (e.g. a character outside the
    recognizer's charset) or whose quad is degenerate are counted and skipped. Returns (label file, written,
    rejected)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines, rejected = [], 0
    for index, (image, quad, text) in enumerate(samples):
        crop = crop_quad(image, quad) if text and allowed(text) else None
        if crop is None:
            rejected += 1
            continue
        name = f"{prefix}_{index:06d}.png"
        write_image(out_dir / name, crop)
        lines.append(f"{name}\t{text}")
    label_file = out_dir / "labels.txt"
    atomic_write_text(label_file, "".join(line + "\n" for line in lines))
    return label_file, len(lines), rejected


def _form_samples(forms: Sequence[FunsdForm], unit: str) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """(form image, box quad, text) for every word or line box, one form image in memory at a time."""
    for form in forms:
        image = read_image(form.image)
        for text_box in form.boxes(unit):
            yield image, box_quad(text_box), text_box.text


def export_funsd_crops(
    root: str | Path, out_dir: str | Path, allowed: Callable[[str], bool], unit: str = "words", every: int = 5,
    limit: int = 0,
) -> dict[str, Any]:
    """FUNSD word or line crops as PaddleOCR rec label files, split by form (every ``every``-th form held out):
    ``out_dir/{train,held_out}/labels.txt`` and ``out_dir/split_{train,held_out}.json`` (forms with sha256,
    counts, rejected).
    ``limit`` keeps only the first N forms (0: all). Returns the counts."""
    check_funsd_unit(unit)
    forms = load_funsd_boxes(root)
    forms = forms[:limit] if limit > 0 else forms
    out_dir = Path(out_dir)
    splits = dict(zip(("train", "held_out"), holdout_split(forms, every), strict=True))
    counts: dict[str, Any] = {}
    for name, chosen in splits.items():
        _, written, rejected = write_crops(_form_samples(chosen, unit), out_dir / name, allowed, prefix=unit[:-1])
        counts[name] = {"forms": len(chosen), "crops": written, "rejected": rejected}
    write_split_manifest(out_dir, f"FUNSD forms sorted by id, every {every}th form held out",
                         {name: [f.image for f in chosen] for name, chosen in splits.items()},
                         {"unit": unit, "counts": counts})
    return counts
