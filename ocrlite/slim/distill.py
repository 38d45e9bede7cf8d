"""Distillation losses and the task wrapper that adds them to any training task's loss.

Distillation runs on the project trainer: ``KDTask`` wraps a task (the trainer's ``Task`` protocol:
``build_model``, ``batch``, ``loss``, ``evaluate``) and returns the task's own loss plus the
teacher terms, so there is no second training loop. A stage config's ``train.distill`` section
(``DistillSettings``: mode, teacher, weights) makes ``ocrlite train`` wrap its task (``distill_task``):
``KDTask`` (mode kd), ``ocrlite.slim.mutual.UDMLTask`` (udml) or ``ocrlite.slim.cml.CMLTask`` (cml);
``ocrlite distill`` adds the section and ``--teacher`` names the teacher. The teacher is any preset or
stage/pipeline config, built through ``ocrlite.stages``; a rec/cls teacher must read the student's input
(line height, normalisation) and have the student's classes (charset or labels). A rec teacher that does not
teaches through its decoded text instead: mode pseudo (``ocrlite.slim.pseudo``). Terms:

- ``kd_loss``: Hinton KD, ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` over the class axis
  (classifier logits [N, C]; CTC logits [N, T, C] per time step);
- ``dml_loss``: deep mutual learning between two students, the symmetric KL halved (U-DML; CML's shrink maps);
- ``feature_l2``: mean squared distance between two students' backbone features (U-DML's feature term).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.errors import ConfigError, WeightsError
from ocrlite.settings import build_settings, range_error, setting
from ocrlite.stages import StageSpec, command_stage, stage_spec
from ocrlite.train.task import Task

if TYPE_CHECKING:
    from ocrlite.train.det_task import DetTask

INPUTS = ("crops", "pages")  # what mode pseudo's unlabelled images are

__all__ = ["kd_loss", "dml_loss", "feature_l2", "WrappedTask", "KDTask", "DistillSettings", "teacher_spec",
           "distill_task", "weights_identity", "teacher_identity"]


def kd_loss(student: Tensor, teacher: Tensor, temperature: float = 2.0) -> Tensor:
    """``T^2 KL(p_teacher || p_student)`` at temperature T, averaged over every position but the class axis."""
    log_student = F.log_softmax(student / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher.detach() / temperature, dim=-1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)
    return kl.mean() * temperature**2


def dml_loss(a: Tensor, b: Tensor) -> Tensor:
    """Symmetric KL between two students' class distributions, halved; gradients reach both."""
    log_a, log_b = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    kl_ab = (log_a.exp() * (log_a - log_b)).sum(dim=-1)
    kl_ba = (log_b.exp() * (log_b - log_a)).sum(dim=-1)
    return (kl_ab + kl_ba).mean() / 2


def feature_l2(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared distance between two feature maps of the same shape."""
    return F.mse_loss(a, b)


class WrappedTask:
    """A training task wrapped to change its loss: attributes the wrapper does not define (``pre``,
    ``files``, ...) are the base task's; ``about`` is recorded in the exported manifest."""

    def __init__(self, base: Task, about: dict[str, Any] | None = None) -> None:
        self.base = base
        self.about = about or {}
        self.name, self.metric, self.stage = base.name, base.metric, base.stage

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def build_model(self) -> nn.Module:
        return self.base.build_model()

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        return self.base.batch(rng)


class KDTask(WrappedTask):
    """A training task whose loss adds ``weight * kd_loss(student(image), teacher(image))`` (frozen teacher).

    The student's output is taken from the base task's own forward pass (a forward hook), so a step runs
    the student once. ``about`` holds the teacher's name, weights and the settings.
    """

    def __init__(self, base: Any, teacher: nn.Module, weight: float = 1.0, temperature: float = 2.0,
                 about: dict[str, Any] | None = None) -> None:
        super().__init__(base, about)
        self.weight, self.temperature = weight, temperature
        self.teacher = teacher.eval().requires_grad_(False)

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        outputs: list[Tensor] = []
        hook = model.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
        try:
            total, logs = self.base.loss(model, batch)
        finally:
            hook.remove()
        if len(outputs) != 1:
            raise RuntimeError(f"KD needs the base task to run the student once per step; it ran {len(outputs)}")
        image = batch["image"]
        self.teacher.to(image.device)
        with torch.no_grad():
            target = self.teacher(image)
        if target.shape != outputs[0].shape:
            raise ConfigError(f"train.distill.teacher: its output {tuple(target.shape)} does not match the "
                              f"student's {tuple(outputs[0].shape)} on the same batch")
        kd = kd_loss(outputs[0], target, self.temperature)
        return total + self.weight * kd, {**logs, "kd": float(kd.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return self.base.evaluate(model)


MODES = ("kd", "cml", "udml", "pseudo")
FEATURES = ("backbone", "neck")


@dataclass(frozen=True)
class DistillSettings:
    """The ``train.distill`` section.

    ``mode``: ``kd`` (a frozen teacher's KD term on a rec/cls task), ``udml`` (two recognizer students,
    no teacher), ``cml`` (a frozen detector teacher and two detector students). ``weight`` scales the KD
    term (kd) or the DML term between the students (udml, cml); ``temperature`` is KD's; ``feature_weight``
    scales U-DML's L2 between the students' ``feature`` outputs (backbone or neck); ``teacher_weight``
    scales CML's teacher-map loss. ``peer_weights`` (udml, cml) starts the second student from other
    weights of the same architecture (a shipped name or a file); by default both students start from
    the config's weights, and since these nets have no dropout two students fed the same batches then
    stay identical, so the mutual terms are zero. ``pseudo`` (rec): the teacher, whatever its charset
    and line height, labels the ``unlabelled`` images (``inputs``: crops or pages) with its decoded text,
    texts scored below ``min_score`` dropped, and the student trains on them (``ocrlite.slim.pseudo``).
    """

    mode: str = setting("kd", choices=MODES)
    teacher: str = ""
    weight: float = 1.0  # more than 0 (checked in __post_init__)
    temperature: float = 2.0  # more than 0 (checked in __post_init__)
    feature_weight: float = setting(1.0, low=0.0)
    feature: str = setting("backbone", choices=FEATURES)
    teacher_weight: float = setting(1.0, low=0.0)
    peer_weights: str = ""
    unlabelled: list[str] = field(default_factory=list)
    inputs: str = setting("crops", choices=INPUTS)
    min_score: float = 0.9  # 0 or more, less than 1 (checked in __post_init__)

    def __post_init__(self) -> None:
        if self.mode == "udml" and self.teacher:
            raise ConfigError("train.distill.teacher: mode udml trains two students and takes no teacher")
        if self.mode != "udml" and not self.teacher:
            raise ConfigError("train.distill.teacher: give a preset name or a config file (--teacher)")
        for key in ("weight", "temperature"):
            if not getattr(self, key) > 0:
                raise range_error(f"train.distill.{key}", getattr(self, key), "more than 0")
        if self.peer_weights and self.mode == "kd":
            raise ConfigError("train.distill.peer_weights: mode kd has one student; peer_weights is for udml and cml")
        if self.mode == "pseudo" and not self.unlabelled:
            raise ConfigError("train.distill.unlabelled: mode pseudo needs unlabelled images (files or folders)")
        if self.mode != "pseudo" and self.unlabelled:
            raise ConfigError(f"train.distill.unlabelled: only mode pseudo reads unlabelled images (mode {self.mode})")
        if not 0 <= self.min_score < 1:
            raise range_error("train.distill.min_score", self.min_score, "0.0 up to but not including 1.0")


def weights_identity(spec: StageSpec) -> dict[str, Any]:
    """A stage's weights by name and SHA-256 (the manifest's, which loading checks, else the file's own)."""
    from ocrlite.weights import sha256_file

    sha = spec.manifest.get("sha256") or (sha256_file(spec.weights) if spec.weights else None)
    return {"weights": spec.manifest.get("name"), "sha256": sha}


def teacher_identity(about: dict[str, Any]) -> dict[str, Any] | None:
    """What of a distillation's record (``about``) a resumed run must share with its checkpoint: the teacher, its
    weights and their SHA-256. A teacher in the loss (kd, cml) is frozen and not in the checkpoints, so the
    config's teacher name alone would let another file of that name teach the rest of the run. None for udml
    (no teacher) and pseudo, whose teacher makes data (its labels, which a resumed run may change)."""
    keys = ("teacher", "teacher_weights", "teacher_sha256")
    return {key: about.get(key) for key in keys} if about.get("mode") in ("kd", "cml") else None


def teacher_spec(kind: str, teacher: str, config_dir: Path | None = None) -> StageSpec:
    """The ``kind`` stage of ``teacher``: a preset name, or a stage/pipeline config (also looked up beside
    the student's config); a bad name or a stage without weights is one ConfigError."""
    from ocrlite.files import find_config
    from ocrlite.presets import PRESETS
    from ocrlite.slim.save import config_stage_kind

    if teacher in PRESETS:
        spec = command_stage(kind, model=teacher)
    else:
        try:
            path = find_config(teacher, config_dir)
        except ConfigError:
            raise ConfigError(f"train.distill.teacher: {teacher!r} is neither a preset ({', '.join(PRESETS)}) "
                              "nor a config file") from None
        own = config_stage_kind(path)
        if own is not None and own != kind:
            raise ConfigError(f"train.distill.teacher: {teacher} is a {own} stage; the student is a {kind} stage")
        spec = command_stage(kind, str(path))
    if spec is None:
        raise ConfigError(f"train.distill.teacher: {teacher} has no {kind} stage")
    if spec.weights is None:
        raise ConfigError(f"train.distill.teacher: {teacher}'s {kind} stage has no weights (weights: null); "
                          "a random net has nothing to teach")
    return spec


PSEUDO_HINT = "; such a teacher teaches through its text: train.distill.mode=pseudo with train.distill.unlabelled=DIR"


def _check_pair(student: StageSpec, teacher: StageSpec, name: str) -> None:
    """The teacher must read the student's batches and (rec, cls) score the same classes."""
    where = f"train.distill.teacher: {name}"
    if student.kind == "det":  # CML renormalises the student's images for the teacher
        mine, theirs = student.manifest.get("channel_order", "BGR"), teacher.manifest.get("channel_order", "BGR")
        if mine != theirs:
            raise ConfigError(f"{where} reads {theirs} images, the student {mine}")
        return
    if teacher.outputs != "logits":
        raise ConfigError(f"{where} returns {teacher.outputs}; KD needs logits")
    for key in ("height", "mean", "std"):
        mine, theirs = getattr(student.pre, key), getattr(teacher.pre, key)
        if mine != theirs:
            raise ConfigError(f"{where} reads lines with preprocess.{key} {theirs}, the student {mine}{PSEUDO_HINT}")
    if student.kind == "rec":
        assert student.charset is not None and teacher.charset is not None
        if student.charset.chars != teacher.charset.chars:
            raise ConfigError(f"{where} has another charset ({len(teacher.charset)} classes, the student "
                              f"{len(student.charset)}); KD needs the same classes{PSEUDO_HINT}")
    elif student.post.labels != teacher.post.labels:
        raise ConfigError(f"{where} has labels {teacher.post.labels}, the student {student.post.labels}")


def distill_task(task: Task, stage: dict[str, Any]) -> WrappedTask:
    """``task`` wrapped for the stage's ``train.distill`` section: ``KDTask`` (mode kd, with its teacher),
    ``UDMLTask`` (mode udml) or ``CMLTask`` (mode cml, with its teacher)."""
    section = (stage.get("train") or {}).get("distill")
    settings: DistillSettings = build_settings(DistillSettings, "train.distill", section)
    if settings.mode == "udml":
        from ocrlite.slim.mutual import UDMLTask

        if task.name != "rec":
            raise ConfigError(f"train.distill.mode: udml trains recognizers (rec); this is a {task.name} task")
        if (stage.get("train") or {}).get("center_loss") is not None:
            raise ConfigError("train.center_loss: not available with train.distill.mode udml (two students)")
        return UDMLTask(task, settings.weight, settings.feature_weight, settings.feature, asdict(settings),
                        _peer_builder(task, stage, settings.peer_weights))
    if settings.mode == "pseudo":
        raise ConfigError("train.distill.mode: pseudo labels its data before the task is built (ocrlite train/distill)")
    if settings.mode == "cml" and task.name != "det":
        raise ConfigError(f"train.distill.mode: cml trains detectors (det); this is a {task.name} task")
    if settings.mode == "kd" and task.name not in ("rec", "cls"):
        raise ConfigError(f"train.distill: KD distils class logits (rec, cls); the {task.name} task has none "
                          "(detectors: mode cml)")
    config_dir = Path(stage["_dir"]) if stage.get("_dir") else None
    teacher = teacher_spec(task.name, settings.teacher, config_dir)
    if teacher.onnx is not None:  # the loss runs the teacher's torch net: its float weights, not this file
        raise ConfigError(f"train.distill.teacher: {settings.teacher} runs its own ONNX file {teacher.onnx.name} (an "
                          f"int8 model, e.g. from ocrlite quantize), which mode {settings.mode} cannot run in the "
                          "loss: it would teach with the float weights the config names; give the float config")
    _check_pair(stage_spec(task.name, stage), teacher, settings.teacher)
    weights = weights_identity(teacher)
    about = {**asdict(settings), "teacher_weights": weights["weights"], "teacher_sha256": weights["sha256"]}
    if settings.mode == "cml":
        from ocrlite.slim.cml import CMLTask

        student = stage_spec("det", stage)
        scale = [s / t for s, t in zip(student.pre.std, teacher.pre.std)]
        shift = [(m - n) / t for m, n, t in zip(student.pre.mean, teacher.pre.mean, teacher.pre.std)]
        det_task = cast("DetTask", task)  # its name was checked above
        return CMLTask(det_task, teacher.build_net(), teacher.outputs == "logits", (scale, shift),
                       settings.teacher_weight, settings.weight, about,
                       _peer_builder(task, stage, settings.peer_weights))
    return KDTask(task, teacher.build_net(), settings.weight, settings.temperature, about)


def _peer_builder(task: Task, stage: dict[str, Any], weights: str) -> Callable[[], nn.Module]:
    """What builds the second student: the task's own net, or the same architecture with ``weights``, built
    here once (each call returns a copy), so that weights not found or not fitting the student's net are one
    ConfigError naming ``train.distill.peer_weights`` (once: not the student's ``rec.weights`` key, nor an override of
    the student's) before the run starts."""
    if not weights:
        return task.build_model
    # neither the student's file nor its overrides named these weights: an error must not blame them
    peer_stage = {**stage, "weights": weights, "_file": None, "_overrides": []}
    try:
        if task.name == "det":
            from ocrlite.train.det_task import build_det_model

            net = build_det_model(peer_stage)
        else:
            net = stage_spec(task.name, peer_stage).build_net()
    except (ConfigError, WeightsError) as exc:
        raise ConfigError(f"train.distill.peer_weights: {str(exc).removeprefix(f'{task.name}.weights: ')}") from None
    return lambda: copy.deepcopy(net)
