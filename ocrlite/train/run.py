"""``ocrlite train``: a stage config with a ``train:`` section -> a run folder and an exported model.

The run folder gets ``data_manifest.json`` (every file read, with its sha256; for a recognizer also each label
file's lines and how many were rejected), ``log.csv``, ``evals.json``, ``checkpoints/`` and
``best.safetensors``; ``export/`` then holds ``<name>.safetensors``, its manifest ``<name>.json`` and a stage
config ``<name>.yaml`` that ``--config`` loads (it names its weights ``./<name>``: the file beside it, never a
shipped model of the same name).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import yaml

from ..config import apply_overrides
from ..errors import ConfigError
from ..files import find_charset, weights_roots
from ..io.atomic import atomic_write_bytes, atomic_write_text, ensure_folder, remove_stale_parts
from ..settings import build_settings
from ..stages import (
    PIPELINE_KEYS,
    StageSpec,
    load_stage_config,
    stage_kind,
    stage_overrides,
    stage_sections,
    stage_spec,
)
from ..weights import sha256_file
from .data import file_entries
from .task import Task
from .trainer import (
    TASK_KEYS,
    TASK_SECTIONS,
    TrainResult,
    TrainSettings,
    check_device,
    check_resume,
    run_checkpoint,
    scored_by,
    train,
)

__all__ = ["TASKS", "SECTIONS", "task_name", "build_task", "write_data_manifest", "export_model",
           "load_training_config", "run_training"]

# task name -> "module:class"; each class is built as cls(stage, batch_size) and implements Task
TASKS = {
    "rec": "ocrlite.train.rec_task:RecTask",
    "det": "ocrlite.train.det_task:DetTask",
    "cls": "ocrlite.train.cls_task:ClsTask",
}


# the train sections each task reads besides task, distill and qat (which every task takes)
SECTIONS = {task: tuple(sections) for task, sections in TASK_SECTIONS.items()}


def task_name(stage: dict[str, Any]) -> str:
    """``train.task`` of ``stage``, checked: a section of ``TASK_KEYS`` that the task does not read (it would be
    ignored) is a ConfigError."""
    train = stage.get("train") or {}
    name = train.get("task")
    if name not in TASKS:
        raise ConfigError(f"train.task must be one of {', '.join(TASKS)}, got {name!r}")
    for key in TASK_KEYS:
        if train.get(key) is not None and key not in ("task", "distill", "qat", *SECTIONS[name]):
            users = " and ".join(task for task, keys in SECTIONS.items() if key in keys)
            raise ConfigError(f"train.{key} is for {users} tasks, not {name}")
    return str(name)


def build_task(stage: dict[str, Any], batch_size: int) -> Task:
    """The task named by ``train.task`` for ``stage`` (``task_name``)."""
    module, _, cls = TASKS[task_name(stage)].partition(":")
    task: Task = getattr(importlib.import_module(module), cls)(stage, batch_size)
    return task


def write_data_manifest(path: Path, files: Sequence[Path], label_files: dict[str, dict[str, int]]) -> str:
    """Write ``{"files": [{"path", "sha256"}]}`` (``data.file_entries``) for ``files`` to ``path``, with
    ``label_files`` (lines read and rejected per label file) when there are any; return the manifest's sha256."""
    data = json.dumps({"files": file_entries(files), **({"label_files": label_files} if label_files else {})},
                      indent=0).encode("utf-8")
    remove_stale_parts([path])  # left by a run killed while writing it
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def export_model(
    run_dir: Path, stage: dict[str, Any], name: str, task: Task, result: TrainResult, training: dict[str, Any]
) -> Path:
    """Write ``run_dir/export/<name>.{safetensors,json,yaml}`` from ``best.safetensors``; return the yaml."""
    out = run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(out / f"{name}{end}" for end in (".safetensors", ".json", ".yaml", "_charset.txt"))
    tensors = out / f"{name}.safetensors"
    weights = getattr(task, "export_weights", None)  # QAT: the best weights without the clip bounds
    atomic_write_bytes(tensors, weights(run_dir) if weights else (run_dir / "best.safetensors").read_bytes())
    kind = stage_kind(stage)
    spec = stage_spec(kind, stage) if kind else None
    parent = spec.manifest if spec else {}
    parent_sha = parent.get("sha256") or (sha256_file(spec.weights) if spec and spec.weights else None)
    pre = getattr(task, "pre", None)
    preprocess = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(pre).items()} if pre else {}
    preprocess.pop("batch_size", None)
    postprocess = dict(parent.get("postprocess") or {}, **(stage.get("postprocess") or {}))
    if spec is not None and spec.charset is not None:
        postprocess["charset"] = _export_charset(out, name, spec)
    from ..models import build_model

    manifest = {
        "name": name,
        "file": tensors.name,
        "sha256": sha256_file(tensors),
        "config": f"{name}.yaml",
        "parent": {"name": parent.get("name", stage.get("weights")), "sha256": parent_sha},
        "licence": parent.get("licence", "unknown"),
        "channel_order": parent.get("channel_order", "BGR"),
        "preprocess": preprocess,
        "postprocess": postprocess,
        "parameters": sum(p.numel() for p in build_model(task.stage["model"]).parameters()),
        "training": {
            **training,
            "steps": result.steps,
            "samples_seen": result.samples_seen,
            "cpu_seconds": round(result.cpu_seconds, 1),
            "wall_seconds": round(result.wall_seconds, 1),
            "best": result.best,
        },
    }
    atomic_write_text(out / f"{name}.json", json.dumps(manifest, indent=2) + "\n")
    config = {"model": task.stage["model"], "weights": f"./{name}", "preprocess": preprocess,
              "postprocess": postprocess}
    target = out / f"{name}.yaml"
    parent_name = manifest["parent"]["name"]
    how = f"fine-tuned from {parent_name}" if parent_name else "trained from scratch"
    distill = training.get("distill") or {}
    if distill.get("mode") == "udml":
        how += " as student 1 of a U-DML pair"
    elif distill.get("mode") == "pseudo":
        how += f", distilled from {distill['teacher']} through its pseudo-labels"
    elif distill:
        how += f", distilled from {distill['teacher']}"
    if training.get("qat"):
        how += ", quantization-aware (PACT; the int8 model is in int8/)"
    atomic_write_text(target, f"# {name}: {how} by ocrlite train\n"
                      + yaml.safe_dump(config, sort_keys=False))
    return target


def _export_charset(out: Path, name: str, spec: StageSpec) -> str:
    """The ``charset`` an export names: a shipped charset by its name; the user's own (beside the config, the
    parent's weights, or anywhere) copied beside the export as ``<name>_charset.txt``, so the export folder
    reads as it is, moved or not."""
    source = find_charset(spec.post.charset, spec.weights.parent if spec.weights else None, spec.config_dir)
    if any(source.parent == root for root in weights_roots()):
        return source.name
    copy = f"{name}_charset.txt"
    atomic_write_bytes(out / copy, source.read_bytes())
    return copy


class _Notice(logging.Handler):
    """Passes the message of each INFO record it handles to ``say``."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        self.say(record.getMessage())


@contextmanager
def _logged_to(say: Callable[[str], None]) -> Iterator[None]:
    """While inside, the training modules' INFO log lines (``ocrlite.train.*``, e.g. the detector's
    threshold-branch initialisation) also go to ``say``."""
    logger = logging.getLogger("ocrlite.train")
    handler, level = _Notice(say), logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def load_training_config(config: str, overrides: Sequence[str], teacher: str | None = None,
                         distill: bool = False) -> dict[str, Any]:
    """The stage mapping to train, ``overrides`` applied (the stage prefix, e.g. ``rec.train.steps``, may be
    given, as on every command); with ``distill`` or ``teacher`` (``ocrlite distill``) it gets a
    ``train.distill`` section (which ``--set train.distill.KEY=...`` may address), naming ``teacher`` if given."""
    stage = load_stage_config(config)
    if "model" not in stage and set(stage) & set(PIPELINE_KEYS):
        raise ConfigError(f"{config}: a pipeline config; train and distill take a stage config (model, weights, "
                          "train), e.g. the det, cls or rec config it names")
    overrides = stage_overrides(stage_kind(stage), overrides, config)
    if distill or teacher is not None:
        section = stage.get("train") or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{config}: train must be a mapping, got {section!r}")
        stage["train"] = {**section, "distill": section.get("distill") or {}}
    if teacher is not None:
        overrides = [*overrides, f"train.distill.teacher={json.dumps(teacher)}"]
    return apply_overrides(stage, overrides, stage_sections)


def _wrapped_task(stage: dict[str, Any], batch_size: int, run_dir: Path, progress: bool,
                  notify: Callable[[str], None] | None, pseudo: bool
                  ) -> tuple[dict[str, Any], Task, dict[str, Any], dict[str, Any]]:
    """The stage to train and its task, wrapped for ``train.distill`` and ``train.qat``: (stage, task, the
    distillation's record or {}, ``{"qat": settings}`` of a quantization-aware run or {}). A ``pseudo`` run's
    teacher first labels its images (``ocrlite.slim.pseudo``, summary to ``notify``) and its stage trains on them."""
    about: dict[str, Any] = {}
    if pseudo:
        from ..slim.pseudo import pseudo_stage

        stage, about = pseudo_stage(stage, run_dir, progress, notify)
    task = build_task(stage, batch_size)
    quantized: dict[str, Any] = {}
    if stage["train"].get("distill") is not None:
        from ..slim.distill import distill_task

        wrapped = distill_task(task, stage)
        task, about = wrapped, wrapped.about
    if stage["train"].get("qat") is not None:
        from ..slim.qat import qat_task

        qat = qat_task(task, stage)
        task, quantized = qat, qat.about
    return stage, task, about, quantized


def run_training(
    config: str,
    overrides: Sequence[str],
    run_dir: Path,
    device: str = "cpu",
    resume: Path | None = None,
    export: bool = True,
    name: str | None = None,
    progress: bool = True,
    teacher: str | None = None,
    distill: bool = False,
    notify: Callable[[str], None] | None = None,
) -> tuple[TrainResult, Path | None]:
    """Load ``config`` with ``overrides``, train, and export (see the module docstring).

    A ``train.distill`` section (``distill`` or ``teacher`` add one) wraps the task (``ocrlite.slim.distill``):
    a frozen teacher's KD term (mode kd), a U-DML student pair (udml) or a CML trio (cml); the trainer is the
    same. Mode pseudo instead has the teacher label its unlabelled images first (``ocrlite.slim.pseudo``; its
    one-line summary goes to ``notify``) and trains the plain rec task on them.
    A ``train.qat`` section wraps it for quantization-aware fine-tuning (``ocrlite.slim.qat``); the returned
    config is then the int8 model's (``export/int8/<kind>.yaml``), the float export lies beside it.
    The device, the run folder and the checkpoint to resume are checked (``trainer.run_checkpoint``,
    ``check_resume``) before anything is written to the run folder, and that it can be written before any data
    is read. ``notify`` gets one line when ``resume`` finds no checkpoint in the run folder (the run starts at
    step 0), one when it names a run that already finished (nothing is trained; the export is made again), one
    per label file with rejected lines, the task's ``notes`` (an evaluation split that came out
    empty), and, in a run that does not resume a checkpoint, the training modules' log lines (a converted
    detector's threshold branch initialised).
    """
    stage = load_training_config(config, overrides, teacher, distill)
    if not set(stage.get("train") or {}) - {"distill"}:  # ocrlite distill adds the distill section itself
        raise ConfigError(f"{config}: no train: section (task, data, steps, ...)")
    settings = TrainSettings.from_stage(stage)
    task_name(stage)
    if export and stage["train"].get("qat") is not None:  # the int8 export after training needs onnx: say so now
        from ..extras import require_onnx

        require_onnx("train.qat (its int8 export at the end)", load=True)
    check_device(device)
    checkpoint = run_checkpoint(run_dir, resume)
    pseudo = False
    if stage["train"].get("distill") is not None:  # checked before the task reads any data
        from ..slim.distill import DistillSettings

        pseudo = build_settings(DistillSettings, "train.distill", stage["train"]["distill"]).mode == "pseudo"
    finished = None  # the step of a resumed run that has already run train.steps
    if checkpoint is not None:  # a pseudo-label run's config is checked once it has made its own
        step = int(check_resume(checkpoint, settings, None if pseudo else stage)["step"])
        finished = step if step >= settings.steps else None
    ensure_folder(run_dir)
    say = notify or (lambda _line: None)
    if resume is not None and checkpoint is None:
        say(f"--resume {resume}: no checkpoint in {run_dir} yet; training starts from step 0")
    if finished is not None:
        say(f"--resume {resume}: the run already finished at step {finished} (train.steps={settings.steps}); "
            "nothing to train (raise train.steps to go on)")
    stage, task, about, quantized = _wrapped_task(stage, settings.batch_size, run_dir, progress, notify, pseudo)
    identity = None
    if about:  # a distillation: its teacher must stay the checkpoint's
        from ..slim.distill import teacher_identity

        identity = teacher_identity(about)
    scored = scored_by(task)  # hashes every evaluation sample: once, for this check and the trainer's
    if checkpoint is not None:
        check_resume(checkpoint, settings, stage, identity, scored)
    label_files: dict[str, dict[str, int]] = getattr(task, "label_files", {})
    for label_file, counts in label_files.items():
        if counts["rejected"]:
            say(f"{label_file}: {counts['rejected']} of {counts['lines']} lines rejected (empty, or characters "
                "outside the charset)")
    for note in getattr(task, "notes", []):  # e.g. an empty evaluation split (det, cls)
        say(note)
    files: list[Path] = getattr(task, "files", lambda: [])()
    data_hash = write_data_manifest(run_dir / "data_manifest.json", files, label_files)
    with _logged_to(say) if notify is not None and checkpoint is None else nullcontext():
        result = train(task, settings, run_dir, device, checkpoint, progress, config=stage, identity=identity,
                       scored=scored)
    if not export:
        return result, None
    center = getattr(task, "center", None)  # a rec task's center-loss settings (Enhanced CTC)
    training = {
        "command": " ".join(["ocrlite", *sys.argv[1:]]) if sys.argv else "",
        "config": str(config),
        "overrides": list(overrides),
        "data_manifest_sha256": data_hash,
        **({"label_files": label_files} if label_files else {}),
        "device": device,
        "torch": torch.__version__,
        "settings": vars(settings),
        **({"distill": about} if about else {}),
        **quantized,
        **({"center_loss": asdict(center)} if center is not None else {}),
    }
    exported = export_model(run_dir, stage, name or Path(config).stem, task, result, training)
    finish = getattr(task, "finish_export", None)  # QAT: the int8 model beside the float export
    return result, finish(run_dir, exported) if finish is not None else exported
