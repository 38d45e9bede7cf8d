"""Pseudo-label distillation: a teacher with other classes (or another line height) teaches through its text.

KD needs the teacher's classes and input; a teacher with another charset (PP-OCRv6 small's 18,708 characters
teaching the card's PP-OCRv2 CRNN) teaches through its decoded text instead. ``train.distill.mode: pseudo``
(rec only, explicit: ``kd`` refuses such a teacher and names this mode). Before training, the teacher reads
the unlabelled images of ``train.distill.unlabelled``:

- ``inputs: crops`` (line or word crops): its recognizer (``ocrlite.predictors.TextRecognizer``) reads them;
- ``inputs: pages`` (page images, PDFs): its pipeline (``ocrlite.api.OCR``: detect, crop, orient, recognize)
  reads them and the crops it read are written to ``RUN/pseudo/crops/``.

Each decoded text becomes a CTC label in ``RUN/pseudo/labels.txt`` (``path<TAB>text``, PaddleOCR's rec label
form), with ``RUN/pseudo/manifest.json``: the teacher's weights and SHA-256s, the settings, every image's
SHA-256 and the counts. A text is dropped and counted, in this order, when it is empty, when the teacher's
score (mean probability of its characters) is below ``min_score``, or when it has a character outside the
student's charset (never shortened; the missing characters are counted too). The label file is then added to
``train.data.train`` and the stage trains as a plain rec task on the one trainer. A run folder whose manifest
matches (same teacher weights, images, settings and student charset) reuses its labels.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..charset import Charset
from ..errors import ConfigError, OcrliteError, error_reason
from ..io.atomic import atomic_write_text, write_image
from ..io.images import IMAGE_EXTENSIONS, expand_inputs, read_image
from ..settings import build_settings
from ..stages import StageSpec, stage_spec
from ..train.data import file_entries
from ..weights import sha256_file
from .distill import INPUTS, DistillSettings, teacher_spec, weights_identity

__all__ = ["Tally", "pseudo_labels", "summary", "pseudo_stage"]

CHUNK = 64  # crops read per recognizer call


@dataclass
class Tally:
    """What the teacher read and what was kept: texts (``read``) and why the others were dropped."""

    images: int = 0
    unreadable: list[str] = field(default_factory=list)
    read: int = 0
    kept: int = 0
    empty: int = 0
    low_score: int = 0
    outside_charset: int = 0
    missing: Counter[str] = field(default_factory=Counter)

    def judge(self, text: str, score: float, allowed: set[str], min_score: float) -> bool:
        """Whether ``text`` is kept as a label; a dropped text is counted under its first reason."""
        self.read += 1
        if not text:
            self.empty += 1
        elif score < min_score:
            self.low_score += 1
        elif not set(text) <= allowed:
            self.outside_charset += 1
            self.missing.update(ch for ch in text if ch not in allowed)
        else:
            self.kept += 1
            return True
        return False

    def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = {k: v for k, v in asdict(self).items() if k not in ("missing", "unreadable")}
        counts["unreadable"] = len(self.unreadable)
        counts["unreadable_files"] = self.unreadable
        counts["missing_characters"] = dict(self.missing.most_common())
        return counts


def _charset_sha256(charset: Charset) -> str:
    return hashlib.sha256("\n".join(charset.chars).encode("utf-8")).hexdigest()


def _pipeline_source(teacher: str, config_dir: Path | None) -> dict[str, Any]:
    """``OCR``'s arguments for the teacher's whole pipeline (a preset or a pipeline config)."""
    from ..files import find_config
    from ..presets import PRESETS
    from .save import config_stage_kind

    if teacher in PRESETS:
        return {"model": teacher}
    path = find_config(teacher, config_dir)
    if config_stage_kind(path) is not None:
        raise ConfigError(f"train.distill.teacher: {teacher} is a single stage config; inputs: pages needs a "
                          "preset or a pipeline config (a detector to find the lines)")
    return {"config": str(path)}


def _read_crops(teacher: StageSpec, files: Sequence[Path], tally: Tally,
                bar: Callable[[int], Any]) -> Iterator[tuple[Path, np.ndarray | None, str, float]]:
    """(crop path, None, text, score) per readable crop file: the teacher's recognizer, CHUNK crops a call."""
    from ..predictors import TextRecognizer

    recognizer = TextRecognizer.from_config(teacher)
    for start in range(0, len(files), CHUNK):
        chunk = []
        for path in files[start : start + CHUNK]:
            try:
                chunk.append((path, read_image(path)))
            except OcrliteError as exc:
                tally.unreadable.append(error_reason(exc))
        for (path, _), decoded in zip(chunk, recognizer([crop for _, crop in chunk]), strict=True):
            yield path, None, decoded.text, decoded.score
        bar(len(files[start : start + CHUNK]))


def _read_pages(source: dict[str, Any], files: Sequence[Path], tally: Tally,
                bar: Callable[[int], Any]) -> Iterator[tuple[Path, np.ndarray | None, str, float]]:
    """(crop name, crop, text, score) per line the teacher's pipeline finds on each page of ``files``."""
    from ..api import OCR
    from ..io.pages import open_pages

    ocr = OCR(**source)
    for index, path in enumerate(files):
        try:
            with open_pages(path) as pages:
                for number in range(1, len(pages) + 1):
                    image = pages.page(number).image
                    lines = ocr.lines(image)
                    crops = list(lines.crops)
                    _, readings = ocr.orient_and_read(crops, lines.directions)  # crops turned as read
                    for k, (crop, decoded) in enumerate(zip(crops, readings, strict=True)):
                        yield Path(f"{index:05d}_{path.stem}_p{number}_{k:04d}.png"), crop, decoded.text, decoded.score
        except OcrliteError as exc:
            tally.unreadable.append(error_reason(exc))
        bar(1)


def pseudo_labels(teacher: str, inputs: str, unlabelled: Sequence[str], charset: Charset, min_score: float,
                  out_dir: Path, config_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Have ``teacher`` (a preset or config) label ``unlabelled`` (files, folders) into ``out_dir/labels.txt``
    for a student with ``charset``; return the manifest (also ``out_dir/manifest.json``; see the module
    docstring). A matching manifest already in ``out_dir`` is returned as it is (``"reused": true``)."""
    from tqdm import tqdm

    from ..io.pages import INPUT_EXTENSIONS

    if inputs not in INPUTS:
        raise ConfigError(f"train.distill.inputs: must be one of {', '.join(INPUTS)}, got {inputs!r}")
    files, errors = expand_inputs(unlabelled, extensions=IMAGE_EXTENSIONS if inputs == "crops" else INPUT_EXTENSIONS)
    if errors:
        raise ConfigError(f"train.distill.unlabelled: {errors[0][1]}")
    spec = teacher_spec("rec", teacher, config_dir)  # a bad name: one line naming the presets
    if inputs == "crops":
        identity = {"rec": weights_identity(spec)}
    else:
        from ..stages import pipeline_spec

        source = _pipeline_source(teacher, config_dir)
        pipeline = pipeline_spec(source.get("config"), model=source.get("model"))
        identity = {kind: weights_identity(s) for kind in ("det", "cls", "rec")
                    if (s := getattr(pipeline, kind)) is not None and (kind != "cls" or pipeline.settings.use_cls)}
    key = {
        "teacher": teacher, "teacher_weights": identity, "inputs": inputs, "min_score": min_score,
        "student_charset": {"classes": len(charset), "sha256": _charset_sha256(charset)},
        "images": file_entries(files),
    }
    labels, manifest_path = out_dir / "labels.txt", out_dir / "manifest.json"
    if manifest_path.is_file() and labels.is_file():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        if {k: old.get(k) for k in key} == key and old.get("labels_sha256") == sha256_file(labels):
            return {**old, "reused": True}
    tally, allowed = Tally(images=len(files)), set(charset.chars)
    lines = []
    with tqdm(total=len(files), unit="img", desc="pseudo-labels", disable=not progress) as bar:
        read = (_read_crops(spec, files, tally, bar.update) if inputs == "crops"
                else _read_pages(source, files, tally, bar.update))
        for path, crop, text, score in read:
            if not tally.judge(text, score, allowed, min_score):
                continue
            if crop is not None:  # a page's line: written where the label file points
                path = Path("crops") / path
                write_image(out_dir / path, crop)
            lines.append(f"{path.resolve() if crop is None else path}\t{text}")
    if not lines:
        raise ConfigError(f"train.distill: the teacher {teacher} kept no pseudo-label "
                          f"({json.dumps(tally.counts(), ensure_ascii=False)})")
    atomic_write_text(labels, "".join(line + "\n" for line in lines))
    manifest = {**key, "labels": labels.name, "labels_sha256": sha256_file(labels), "counts": tally.counts()}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return {**manifest, "reused": False}


def summary(manifest: dict[str, Any]) -> str:
    """One line: what the teacher kept and dropped."""
    c = manifest["counts"]
    missing = "".join(list(c["missing_characters"])[:12])
    reused = " (reused)" if manifest["reused"] else ""
    return (f"pseudo-labels from {manifest['teacher']}{reused}: kept {c['kept']} of {c['read']} texts from "
            f"{c['images']} {manifest['inputs'][:-1]} files; dropped {c['low_score']} below score "
            f"{manifest['min_score']:g}, {c['outside_charset']} with characters the student cannot write"
            f"{f' ({missing})' if missing else ''}, {c['empty']} empty; {c['unreadable']} unreadable files")


def pseudo_stage(stage: dict[str, Any], run_dir: Path, progress: bool = True,
                 notify: Callable[[str], None] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``stage`` (a rec stage with ``train.distill.mode: pseudo``) labelled by its teacher into
    ``run_dir/pseudo``: the stage to train (the label file added to ``train.data.train``, no ``distill``
    section) and what the export's manifest records under ``training.distill``."""
    train = stage["train"]
    settings: DistillSettings = build_settings(DistillSettings, "train.distill", train.get("distill"))
    if train.get("task") != "rec":
        raise ConfigError(f"train.distill.mode: pseudo trains recognizers (rec); this is a {train.get('task')} task")
    data = dict(train.get("data") or {})
    if not isinstance(data, dict):
        raise ConfigError(f"train.data must be a mapping, got {data!r}")
    if data.get("synth") and data.get("synth_share", 1.0) == 1:
        raise ConfigError("train.data.synth_share: 1 renders every sample, so the pseudo-labels would never be "
                          "read; lower it (e.g. 0.3) or drop train.data.synth")
    student = stage_spec("rec", stage)
    assert student.charset is not None  # a rec stage always has one
    config_dir = Path(stage["_dir"]) if stage.get("_dir") else None
    manifest = pseudo_labels(settings.teacher, settings.inputs, settings.unlabelled, student.charset,
                             settings.min_score, run_dir / "pseudo", config_dir, progress)
    if notify is not None:
        notify(summary(manifest))
    labels = str(run_dir / "pseudo" / manifest["labels"])
    given = data.get("train") or []
    data["train"] = [*([given] if isinstance(given, str) else given), labels]
    trained = {**stage, "train": {**{k: v for k, v in train.items() if k != "distill"}, "data": data}}
    about = {**asdict(settings), "teacher_weights": manifest["teacher_weights"], "labels": labels,
             "labels_sha256": manifest["labels_sha256"], "counts": manifest["counts"]}
    return trained, about
