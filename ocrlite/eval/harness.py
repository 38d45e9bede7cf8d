"""The one evaluation harness: systems under test, timed runs over a data set, and per-task scores.

A *system* is anything that reads pages and crops: an ``ocrlite.OCR`` pipeline (``ocrlite_system``),
the same pipeline driving other runners, or a peer package (``ocrlite.eval.peers``). ``evaluate``
runs a task (det, cls, rec, e2e) on a benchmark folder whose layout it recognises and returns one
row of scores per system; ``ocrlite eval`` and the scripts in ``scripts/`` are thin callers of it.
Images are read outside the timed part; each system gets one untimed warm-up call; systems run
interleaved item by item so that they share the machine's state alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ocrlite.errors import ConfigError
from ocrlite.eval.datasets import (
    FunsdBox,
    box_crops,
    box_quad,
    check_funsd_unit,
    load_funsd,
    load_funsd_boxes,
    load_icdar2015,
    load_word_crops,
    read_det_label_file,
    upright_crops,
)
from ocrlite.eval.metrics import (
    GtRegion,
    PRScores,
    alphanumeric_accuracy,
    bag_of_words,
    direction_accuracy,
    edit_distance,
    evaluate_detection,
    evaluate_end_to_end,
    evaluate_recognition,
    upright_and_turned,
)
from ocrlite.io.images import IMAGE_EXTENSIONS, read_image
from ocrlite.postprocess import line_words
from ocrlite.results import PageResult
from ocrlite.weights import sha256_file

__all__ = [
    "TASKS",
    "System",
    "TimedRun",
    "ocrlite_system",
    "run_timed",
    "data_layout",
    "load_samples",
    "unique_names",
    "evaluate",
    "format_table",
]

TASKS = ("det", "cls", "rec", "e2e")
T = TypeVar("T")
Item = TypeVar("Item")


@dataclass
class System:
    """A named OCR system: whole pages, text boxes, crop reading and crop direction (each optional)."""

    name: str
    page: Callable[[np.ndarray], PageResult] | None = None
    detect: Callable[[np.ndarray], list[np.ndarray]] | None = None
    read_crops: Callable[[list[np.ndarray]], list[str]] | None = None
    classify_crops: Callable[[list[np.ndarray]], list[int]] | None = None


def ocrlite_system(name: str, ocr: Any) -> System:
    """An ``ocrlite.OCR`` pipeline as a system. Crops are read by the recognizer alone (no direction
    classifier, as benchmarks of word crops do) and classified by ``OCR.classify`` (its cls stage, whether or
    not ``use_cls`` is on; a pipeline without a cls stage cannot classify crops)."""

    def detect(image: np.ndarray) -> list[np.ndarray]:
        return [box.points for box in ocr.detect(image)]

    def read_crops(crops: list[np.ndarray]) -> list[str]:
        return [d.text for d in ocr.recognizer(crops)]

    def classify_crops(crops: list[np.ndarray]) -> list[int]:
        return [angle for angle, _ in ocr.classify(crops)]

    return System(name, ocr.__call__, detect, read_crops, classify_crops if ocr.spec.cls is not None else None)


@dataclass
class TimedRun(Generic[T]):
    """One system's outputs (one per item) and the seconds spent inside the system."""

    outputs: list[T] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seconds_per_item(self) -> float:
        return self.seconds / len(self.outputs) if self.outputs else 0.0


def run_timed(
    systems: Sequence[System],
    items: Sequence[Item],
    call: Callable[[System, Item], T],
) -> dict[str, TimedRun[T]]:
    """``call(system, item)`` for every system on every item, interleaved item by item; only the call is timed.

    Each system's first call is repeated untimed before the timed one (warm-up).
    """
    runs: dict[str, TimedRun[T]] = {s.name: TimedRun() for s in systems}
    for k, item in enumerate(items):
        for system in systems:
            if k == 0:
                call(system, item)
            start = time.perf_counter()
            output = call(system, item)
            runs[system.name].seconds += time.perf_counter() - start
            runs[system.name].outputs.append(output)
    return runs


def data_layout(root: Path) -> str:
    """Which benchmark layout ``root`` holds: "icdar2015", "funsd", "crops" (word crops), or "det_labels" when
    ``root`` is a file (a PaddleOCR det label file, ``read_det_label_file``)."""
    if root.is_file():
        return "det_labels"
    if (root / "annotations").is_dir() and (root / "images").is_dir():
        return "funsd"
    if any((root / "gt").glob("gt_img_*.txt")):
        return "icdar2015"
    if (root / "gt" / "gt.txt").is_file() or any((root / "gt").glob("*.tags")) or (root / "labels.txt").is_file():
        return "crops"
    raise ConfigError(f"{root}: not a benchmark folder (ICDAR 2015 images+gt, FUNSD images+annotations, "
                      "or word crops with gt/gt.txt, gt/*.tags or labels.txt)")


_LAYOUTS = {"det": ("icdar2015", "funsd", "det_labels"), "e2e": ("icdar2015", "funsd", "det_labels"),
            "rec": ("crops", "funsd"),
            "cls": ("crops", "funsd")}
# FUNSD's boxes each task scores by default: the detector and the direction classifier work on text lines (an
# entity's words on one row), the recognizer on words; its e2e score is the page's bag of words
FUNSD_UNITS = {"det": "lines", "cls": "lines", "rec": "words"}


def _split_files(split: Path) -> dict[str, str | None]:
    """The files named in a split manifest (JSON: ``{"root": ..., "files": [...]}``; each file a path or
    ``{"path", "sha256"}``, relative ones under ``root``, itself relative to the manifest's folder): resolved
    path -> its recorded sha256 (None when the manifest gives none)."""
    try:
        manifest = json.loads(split.read_text(encoding="utf-8"))
        root = split.parent / str(manifest.get("root") or ".")
        entries = [e if isinstance(e, dict) else {"path": e} for e in manifest["files"]]
        if not all(isinstance(e["path"], str) and isinstance(e.get("sha256", ""), str) for e in entries):
            raise TypeError("each file must be a path or an object with a path (and a sha256) as strings")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cannot read split manifest {split}: {type(exc).__name__}: {exc}") from None
    return {str((root / e["path"]).resolve()): e.get("sha256") for e in entries}


def _check_split_hashes(split: Path, files: dict[str, str | None]) -> None:
    """ConfigError naming the first file whose content is not the one the manifest recorded (or is gone):
    the split would score other data than it names."""
    changed = [path for path, digest in files.items()
               if digest is not None and (not Path(path).is_file() or sha256_file(Path(path)) != digest.lower())]
    if changed:
        raise ConfigError(f"{split}: {len(changed)} of its files are missing or differ from their sha256 in the "
                          f"manifest (first: {changed[0]})")


def load_samples(task: str, root: Path, limit: int | None = None, split: Path | None = None,
                 unit: str | None = None) -> tuple[str, list[Any]]:
    """The layout and (image path, ground truth) samples of ``root`` for ``task``, optionally restricted
    to the files of a split manifest, then to the first ``limit``. On FUNSD, det samples are (form, its
    ``unit`` boxes as ``GtRegion``s) and rec/cls samples (form, its ``unit`` boxes), ``unit`` (words or lines)
    defaulting to ``FUNSD_UNITS``; the crops are cut when scored."""
    if task not in _LAYOUTS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if limit is not None and limit < 1:  # samples[:-1] would silently leave out the last one
        raise ConfigError(f"limit must be at least 1, got {limit}")
    if not root.exists():
        raise ConfigError(f"data folder not found: {root}")
    layout = data_layout(root)
    if layout not in _LAYOUTS[task]:
        raise ConfigError(f"{task} evaluation needs {' or '.join(_LAYOUTS[task])} data; {root} holds {layout}")
    if unit is not None and (layout != "funsd" or task == "e2e"):
        raise ConfigError("a unit (words or lines) chooses the FUNSD boxes of det, cls and rec evaluations; "
                          f"{task} on {layout} data has none")
    loaders: dict[str, Callable[[Path], list[Any]]] = {
        "icdar2015": load_icdar2015, "funsd": load_funsd, "crops": load_word_crops, "det_labels": read_det_label_file}
    if layout == "funsd" and task != "e2e":
        loaders["funsd"] = partial(_funsd_boxes, unit=unit or FUNSD_UNITS[task], regions=task == "det")
    samples = loaders[layout](root)
    if split is not None:
        keep = _split_files(split)
        _check_split_hashes(split, keep)
        samples = [s for s in samples if str(Path(s[0]).resolve()) in keep]
        images = {name for name in keep if Path(name).suffix.lower() in IMAGE_EXTENSIONS}  # not label files
        missing = sorted(images - {str(Path(s[0]).resolve()) for s in samples})
        if missing:  # scoring a part of the split silently would misreport it
            raise ConfigError(f"{split}: {len(missing)} of its {len(images)} images are not samples of {root} "
                              f"(first: {missing[0]})")
    return layout, samples if limit is None else samples[:limit]


def _funsd_boxes(root: Path, unit: str, regions: bool) -> list[tuple[Path, list[Any]]]:
    """FUNSD forms with their word or line boxes (``regions``: as ``GtRegion``s, for detection)."""
    check_funsd_unit(unit)
    return [(form.image, [GtRegion(box_quad(box), box.text) if regions else box for box in form.boxes(unit)])
            for form in load_funsd_boxes(root)]


def _form_crops(forms: Sequence[Path], boxes: Sequence[list[FunsdBox]]) -> tuple[list[np.ndarray], list[str]]:
    """The crops of every form's boxes (cut as the pipeline cuts its lines; a box without area is left out)
    and their texts."""
    cut = [pair for form, form_boxes in zip(forms, boxes, strict=True)
           for pair in box_crops(read_image(form), form_boxes)]
    return [crop for crop, _ in cut], [box.text for _, box in cut]


def _pct(value: float) -> float:
    return round(100 * value, 2)


def _det_row(quads: list[list[np.ndarray]], gts: list[list[GtRegion]]) -> dict[str, Any]:
    """P/R/H in percent and the counts they come from (``PRScores.row``: matched, n_pred, n_gt)."""
    return evaluate_detection(quads, gts).row()


def _icdar_e2e_row(pages: list[PageResult], gts: list[list[GtRegion]]) -> dict[str, Any]:
    """Word-level P/R/H in percent with their counts (``PRScores.row``), and the hmean of whole lines."""
    words = [[(w.points, w.text) for line in page.lines for w in line_words(line)] for page in pages]
    lines = [[(line.points, line.text) for line in page.lines] for page in pages]
    return {**evaluate_end_to_end(words, gts).row(), "hmean_lines": _pct(evaluate_end_to_end(lines, gts).hmean)}


def _funsd_row(pages: list[PageResult], gts: list[list[str]]) -> dict[str, Any]:
    """Bag-of-words P/R/F1 in percent, case-insensitive and case-sensitive (``_cs``), each with its counts
    (``matched``, ``n_pred``, ``n_gt``: matched, predicted and ground-truth words; ``_cs`` too)."""
    row: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for suffix, case_sensitive in (("", False), ("_cs", True)):
        bow = sum((bag_of_words([line.text for line in page.lines], words, case_sensitive)
                   for page, words in zip(pages, gts)), PRScores())
        row.update({f"bow_precision{suffix}": _pct(bow.precision), f"bow_recall{suffix}": _pct(bow.recall),
                    f"bow_f1{suffix}": _pct(bow.f1)})
        counts.update({f"matched{suffix}": bow.matched, f"n_pred{suffix}": bow.n_pred, f"n_gt{suffix}": bow.n_gt})
    return {**row, **counts}


def _rec_row(texts: list[str], labels: list[str]) -> dict[str, Any]:
    insensitive = evaluate_recognition(texts, labels)
    sensitive = evaluate_recognition(texts, labels, case_sensitive=True)
    errors = sum(edit_distance(t.strip(), g.strip()) for t, g in zip(texts, labels))
    chars = sum(len(g.strip()) for g in labels)
    return {"accuracy": _pct(insensitive.accuracy), "accuracy_cs": _pct(sensitive.accuracy),
            "accuracy_alnum": _pct(alphanumeric_accuracy(texts, labels)),
            "1-NED": _pct(insensitive.one_minus_ned), "CER": _pct(errors / chars if chars else 0.0)}


def unique_names(names: Sequence[str]) -> None:
    """ConfigError when a system name is given twice (rows are kept by name)."""
    twice = next((name for k, name in enumerate(names) if name in names[:k]), None)
    if twice is not None:
        raise ConfigError(f"system {twice!r} is given twice; each row needs its own name")


def evaluate(task: str, systems: Sequence[System], root: Path, limit: int | None = None,
             split: Path | None = None,
             outputs: dict[str, tuple[list[Any], list[Any]]] | None = None,
             unit: str | None = None) -> list[dict[str, Any]]:
    """One row of scores per system for ``task`` on the benchmark folder ``root``.

    det: ICDAR 2015 P/R/H (IoU > 0.5, fixed settings); e2e: ICDAR 2015 word-level end-to-end P/R/H (+ whole
    lines; a PaddleOCR det label file, given as ``root``, is scored as ICDAR 2015 is, for det and e2e) or FUNSD
    bag-of-words P/R/F1, case-insensitive and case-sensitive (``_cs``); rec: word accuracy (case-insensitive,
    ``_cs`` sensitive, ``_alnum`` under the 36-symbol protocol: ``alphanumeric_accuracy``), 1 - NED
    (case-insensitive) and CER (case-sensitive); cls: accuracy on every crop upright
    (0) and turned 180 degrees (a direction label file's 180 crops turned upright first: ``upright_crops``). det
    and ICDAR-style e2e rows also give the counts behind P/R/H (``matched``, ``n_pred``, ``n_gt``: matches,
    cared-for detections and cared-for ground truths), FUNSD e2e rows those behind P/R/F1 (matched, predicted and
    ground-truth words; ``_cs`` too). Every row has ``n`` (items) and ``s_per_item`` (seconds
    inside the system). Crops go to a system in one call (which the predictors sort by ratio).
    ``outputs``, when given, receives each system's (outputs, ground truths) per item by name, for paired
    comparisons of systems on the same items. FUNSD serves det (P/R/H against its line or word boxes), rec and
    cls (the crops of its word or line boxes; ``unit``, see ``load_samples``) too.
    """
    unique_names([system.name for system in systems])
    layout, samples = load_samples(task, root, limit, split, unit)
    if not samples:
        raise ConfigError(f"no samples to evaluate in {root}")
    paths = [Path(p) for p, _ in samples]
    truths = [gt for _, gt in samples]
    runs: dict[str, TimedRun[Any]]
    if task in ("det", "e2e"):
        method = "detect" if task == "det" else "page"
        _require(systems, method)
        runs = run_timed(systems, [read_image(p) for p in paths],
                         lambda s, image: getattr(s, method)(image))
    else:
        method = "read_crops" if task == "rec" else "classify_crops"
        _require(systems, method)
        if layout == "funsd":
            crops, truths = _form_crops(paths, truths)
        else:
            crops = [read_image(p) for p in paths]
        if task == "cls":
            crops, truths = upright_and_turned(upright_crops(crops, truths) if layout == "crops" else crops)
        runs = run_timed(systems, [crops], lambda s, all_crops: getattr(s, method)(all_crops))
        runs = {name: TimedRun(run.outputs[0], run.seconds) for name, run in runs.items()}
    rows = []
    for system in systems:
        run = runs[system.name]
        if outputs is not None:
            outputs[system.name] = (run.outputs, truths)
        if task == "det":
            scores = _det_row(run.outputs, truths)
        elif task == "e2e":
            scores = _funsd_row(run.outputs, truths) if layout == "funsd" else _icdar_e2e_row(run.outputs, truths)
        elif task == "rec":
            scores = _rec_row(run.outputs, truths)
        else:
            scores = {"accuracy": _pct(direction_accuracy(run.outputs, truths))}
        rows.append({"system": system.name, "task": task, "data": str(root), "n": len(run.outputs), **scores,
                     "s_per_item": round(run.seconds_per_item, 4)})
    return rows


_ABILITIES = {"page": "page reading", "detect": "text detector", "read_crops": "crop reading",
              "classify_crops": "direction classifier (cls stage)"}


def _require(systems: Sequence[System], method: str) -> None:
    for system in systems:
        if getattr(system, method) is None:
            raise ConfigError(f"{system.name} cannot be evaluated on this task: it has no {_ABILITIES[method]}")


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as a plain-text table: the keys of the first row as columns, the first column left-aligned."""
    if not rows:
        return ""
    headers = [k for k in rows[0] if k not in ("task", "data")]
    cells = [headers] + [[str(row.get(h, "")) for h in headers] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])])
