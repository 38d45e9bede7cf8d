"""One trainer for every task: optimiser, schedule, checkpoints, evaluation, keep-best, logs.

Adam or AdamW (over the task's ``param_groups(model)`` when it has that method, each group's
``lr_scale`` times the schedule, e.g. QAT's clip bounds); linear warmup then cosine decay to ``min_lr``;
gradient-norm clipping; optional frozen BatchNorm (statistics and affine kept in eval mode) and frozen
modules (``freeze``: name prefixes, e.g. the early backbone, which also saves their backward pass); AMP
only on CUDA; on CPU denormal floats are flushed to zero while training (converted Paddle weights produce
them). Every ``eval_every`` steps the task evaluates through its inference predictor and the best weights
by ``task.metric`` (then ``task.tiebreak``) are kept in ``RUN/best.safetensors`` (the net
``task.deployed(model)`` names when the task has that method, e.g. student 1 of a U-DML pair, else the whole
model; checkpoints hold the whole model). Step ``k``'s batch is made from the generator seeded by
``(seed, k)``, in the trainer's process or, with ``workers`` > 0, ahead of time in that many worker processes
(same batches either way). Logs: ``RUN/log.csv`` (one row per ``log_every`` steps; ``data_seconds`` is the
time spent waiting for batches, so a run that is data-bound shows it) and ``RUN/evals.json``. A task that
keeps tensors of its own (the recognizer's center-loss centers) has ``task_tensors()`` and
``load_task_tensors(tensors)``: checkpoints hold them. A run resumed from a checkpoint continues bit-exact.

A run folder that already holds a run (a checkpoint or an export) is refused unless ``resume`` names that run
or one of its checkpoints; resumed into its own folder, the run first makes the checkpoint its ``LATEST`` (a run
stopped again before its next checkpoint resumes from it) and drops what came after it (log rows, evaluations, a
later best). A folder without a checkpoint has nothing to resume: what a run
stopped before its first checkpoint left there (log, evaluations, best weights) is replaced by a run from
step 0, also when ``resume`` names that folder. Checkpoints carry the best weights, so a run
resumed into another folder exports the best it claims. What a resumed run may change is in ``check_resume``.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, OcrliteError
from ..io.atomic import atomic_write_bytes, atomic_write_text, remove_stale_parts
from ..settings import build_settings, check_keys, range_error, setting
from ..stages import resolved_sections, stage_kind, weights_manifest
from .checkpoint import (
    BEST_FILE,
    find_checkpoint,
    load_checkpoint,
    read_state,
    save_checkpoint,
    set_latest,
    state_tensors,
)
from .task import Task

__all__ = ["TrainSettings", "TrainResult", "train", "lr_at", "freeze_batchnorm", "freeze_modules", "run_checkpoint",
           "check_device", "check_resume", "scored_by"]

# The train sections each task reads, and those of the wrappers every task takes: "module:class" of each one's
# settings (imported only to tell where a misplaced key belongs)
TASK_SECTIONS = {
    "rec": {"data": "ocrlite.train.rec_task:RecData", "augment": "ocrlite.train.rec_task:RecAugment",
            "center_loss": "ocrlite.train.center_loss:CenterLossSettings"},
    "det": {"data": "ocrlite.train.det_task:DetData", "augment": "ocrlite.train.det_task:DetAugmentSettings",
            "loss": "ocrlite.train.det_task:DetLossSettings"},
    "cls": {"data": "ocrlite.train.cls_task:ClsData", "augment": "ocrlite.train.cls_task:ClsAugmentSettings"},
}
WRAPPER_SECTIONS = {"distill": "ocrlite.slim.distill:DistillSettings", "qat": "ocrlite.slim.qat:QATSettings"}
SWITCHES = ("center_loss", *WRAPPER_SECTIONS)  # sections whose presence turns them on (absent: off, not defaults)
# the keys of train: read elsewhere (by the task and its wrappers)
TASK_KEYS = ("task", *dict.fromkeys(s for sections in TASK_SECTIONS.values() for s in sections), *WRAPPER_SECTIONS)
LEFT_FILES = ("log.csv", "evals.json", BEST_FILE)  # what a run stopped before its first checkpoint leaves
RESUMABLE = ("steps", "eval_every", "save_every", "log_every", "workers")  # settings a resumed run may change


@dataclass
class TrainSettings:
    """The generic part of a stage config's ``train:`` section."""

    steps: int = setting(1000, low=1)
    batch_size: int = setting(64, low=1)
    optimizer: str = setting("adam", choices=("adam", "adamw"))
    lr: float = 1e-4  # more than 0 (checked in __post_init__)
    weight_decay: float = setting(0.0, low=0.0)
    beta1: float = 0.9  # 0 <= beta < 1, as torch's Adam requires (checked in __post_init__)
    beta2: float = 0.999
    warmup_steps: int = setting(100, low=0)
    min_lr: float = setting(0.0, low=0.0)  # at most lr (checked in __post_init__)
    clip_grad_norm: float = setting(5.0, low=0.0)
    freeze_bn: bool = False
    freeze: list[str] = field(default_factory=list)  # module name prefixes kept fixed, e.g. backbone.stem
    amp: bool = True
    channels_last: bool = False  # NHWC net and images (on CUDA, much faster depthwise convolutions)
    seed: int = setting(0, low=0)
    workers: int = setting(0, low=0)  # processes making batches ahead of the training step (0: made in-process)
    eval_every: int = setting(500, low=1)
    save_every: int = setting(250, low=1)
    log_every: int = setting(10, low=1)

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise range_error("train.lr", self.lr, "more than 0")
        if not self.min_lr <= self.lr:
            raise range_error("train.min_lr", self.min_lr, f"0.0..{self.lr} (train.lr)")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise range_error(f"train.{name}", getattr(self, name), "0.0 up to but not including 1.0")

    @classmethod
    def from_stage(cls, stage: dict[str, Any]) -> TrainSettings:
        """The settings of ``stage``'s ``train`` section (a ConfigError when it is not a mapping). An unknown
        key is a ConfigError listing these settings and the sections, and naming the sections that have it."""
        train = stage.get("train")
        if isinstance(train, dict):  # anything else is build_settings' one-line error
            task = train.get("task")
            check_keys("train", train, [*(f.name for f in dataclasses.fields(cls)), *TASK_KEYS],
                       lambda key: _section_keys(key, task))
            train = {k: v for k, v in train.items() if k not in TASK_KEYS}
        return build_settings(cls, "train", train)


def _section_keys(key: str, task: Any) -> list[str]:
    """``train.SECTION.key`` for each section that has a setting ``key``: the sections of ``task`` (every task's
    when it names none of them) and the wrappers'."""
    tables = [TASK_SECTIONS[task]] if task in TASK_SECTIONS else list(TASK_SECTIONS.values())
    found: list[str] = []
    for table in [*tables, WRAPPER_SECTIONS]:
        for section, target in table.items():
            settings = _settings_class(target)
            place = f"train.{section}.{key}"
            if key in {f.name for f in dataclasses.fields(settings)} and place not in found:
                found.append(place)
    return found


def _settings_class(target: str) -> type[Any]:
    """The settings dataclass ``"module:class"`` names."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    steps: int
    samples_seen: int
    cpu_seconds: float
    wall_seconds: float
    best: dict[str, float]
    last_loss: float


def lr_at(step: int, s: TrainSettings) -> float:
    """Learning rate of 0-based ``step``: linear warmup to ``lr``, then cosine down to ``min_lr``."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    span = max(1, s.steps - s.warmup_steps)
    progress = min(1.0, (step - s.warmup_steps) / span)
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode and stop its affine parameters from training."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for param in module.parameters():
                param.requires_grad_(False)


def _frozen(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def freeze_modules(model: nn.Module, prefixes: list[str]) -> None:
    """Keep the modules named by ``prefixes`` fixed: no gradients, eval mode (BatchNorm statistics kept); a
    prefix that names no module (a typo would train the whole net), or prefixes that leave nothing to train, are
    a ConfigError."""
    names = [name for name, _ in model.named_modules() if name]
    unmatched = [p for p in prefixes if not any(_frozen(name, [p]) for name in names)]
    if unmatched:
        tops = sorted({name.split(".")[0] for name in names})
        raise ConfigError(f"train.freeze: {unmatched[0]!r} names no module of the net (its top modules: "
                          f"{', '.join(tops)})")
    for name, module in model.named_modules():
        if name and _frozen(name, prefixes):
            module.eval()
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)
    if prefixes and not any(param.requires_grad for param in model.parameters()):
        raise ConfigError(f"train.freeze: {', '.join(prefixes)} leaves no parameter of the net to train")


def _optimizer(model: nn.Module, s: TrainSettings, task: Task) -> torch.optim.Optimizer:
    """Adam(W) over the trainable parameters, in the groups ``task.param_groups(model)`` makes if the task
    has that method (a group's ``lr_scale`` multiplies the scheduled learning rate)."""
    groups = getattr(task, "param_groups", None)
    params = groups(model) if groups is not None else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    kind = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)


def _to(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    moved = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        moved = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in moved.items()}
    return moved


def _train_mode(model: nn.Module, s: TrainSettings) -> None:
    model.train()
    if s.freeze_bn:
        freeze_batchnorm(model)
    freeze_modules(model, s.freeze)


class _StepBatches(torch.utils.data.Dataset):
    """Item ``k`` is step ``k``'s batch: ``task.batch`` with the generator seeded by ``(seed, k)``, or the
    ``OcrliteError`` that made it fail (e.g. an unreadable image), which ``_batches`` raises as it is: a worker
    process's own exception would come back with its traceback in the message."""

    def __init__(self, task: Task, seed: int) -> None:
        self.task, self.seed = task, seed

    def __getitem__(self, step: int) -> dict[str, torch.Tensor] | OcrliteError:
        try:
            return self.task.batch(np.random.default_rng([self.seed, step]))
        except OcrliteError as exc:
            return exc


def _batches(task: Task, s: TrainSettings, first: int, last: int, pin: bool) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of steps ``first .. last-1`` in order (made by ``s.workers`` processes when > 0).

    Workers are forked; OpenCV's thread pool does not survive a fork (a worker that touches it waits
    forever), so OpenCV runs on one thread from then on. A loader worker runs torch on one thread.
    """
    if s.workers:
        import cv2

        cv2.setNumThreads(1)
    loader = torch.utils.data.DataLoader(
        _StepBatches(task, s.seed), batch_size=None, sampler=range(first, last), num_workers=s.workers,
        prefetch_factor=4 if s.workers else None,
        pin_memory=pin, multiprocessing_context="fork" if s.workers else None,
        generator=torch.Generator().manual_seed(s.seed),  # its own: the iterator draws no default-RNG number
    )
    for batch in loader:
        if isinstance(batch, OcrliteError):
            raise batch
        yield batch


class _Log:
    """CSV rows appended per ``log_every`` steps (header written once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                self.fields = next(csv.reader(fh), None)

    def write(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields or list(row), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def drop_after(self, step: int) -> None:
        """Drop the rows past ``step`` (written after the checkpoint that a run resumes from)."""
        if self.fields is None:
            return
        with open(self.path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        column = self.fields.index("step") if "step" in self.fields else 0
        out = io.StringIO()
        csv.writer(out).writerows([rows[0], *(r for r in rows[1:] if _row_step(r, column) <= step)])
        atomic_write_text(self.path, out.getvalue())


def _row_step(row: list[str], column: int) -> float:
    """The step of a log row; infinite for a torn one (a run killed while writing it)."""
    try:
        return int(row[column])
    except (IndexError, ValueError):
        return math.inf


def run_checkpoint(run_dir: Path, resume: Path | None) -> Path | None:
    """The checkpoint folder ``resume`` names, once ``run_dir`` is checked: a folder that already holds a run (a
    checkpoint or an export) is refused unless the checkpoint is one of its own. None without ``resume``, and
    when ``resume`` is inside ``run_dir`` but it holds no checkpoint (nothing to resume: the run starts at 0)."""
    try:
        own: Path | None = find_checkpoint(run_dir)
    except ConfigError:
        own = None
    if resume is not None and own is None and run_dir.resolve() in (resume.resolve(), *resume.resolve().parents):
        resume = None
    folder = find_checkpoint(resume) if resume is not None else None
    if own is not None and (folder is None or folder.resolve().parent.parent != run_dir.resolve()):
        raise ConfigError(f"{run_dir} already holds a training run (checkpoints): continue it with --resume {run_dir}"
                          " or train into another folder")
    if own is None and (run_dir / "export").exists():
        raise ConfigError(f"{run_dir} already holds an exported model (export): train into another folder")
    return folder


def check_device(device: str) -> torch.device:
    """The torch device ``device`` names (``--device cuda`` without CUDA is a ConfigError)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available")
    return dev


def check_resume(folder: Path, settings: TrainSettings, config: dict[str, Any] | None,
                 identity: dict[str, Any] | None = None, scored: dict[str, str] | None = None) -> dict[str, Any]:
    """``state.json`` of checkpoint ``folder``, checked against the run that resumes it.

    A resumed run may change ``train.steps`` (not to fewer than the checkpoint's step; more extends the
    schedule), ``eval_every``, ``save_every``, ``log_every``, ``workers`` and ``train.data`` (a moved
    dataset; ``data_manifest.json`` records what each run read). Every other train setting (optimizer,
    learning rates, batch size, seed, ``freeze``, ...), the net (``model``), ``weights``, pre/postprocess and
    the task's sections (augment, loss, distill, center_loss, qat) must be the checkpoint's: the config is
    compared when both this run and the checkpoint have one, its train sections as the task reads them and its
    model, preprocess and postprocess as the stage runs them (a default given equals one left out; center_loss,
    distill and qat, which their presence turns on, left out are off, not their defaults). So must a
    distillation's teacher (``identity``, ``slim.distill.teacher_identity``: its weights by SHA-256), when the
    checkpoint records one. The data may change, but not what is scored (``scored``, ``scored_by``: the
    evaluation samples by content, so a moved set is the same) when both this run and the checkpoint score
    something: keep-best would compare new scores with a best scored on other samples. The first difference is
    a one-line ConfigError.
    """
    state = read_state(folder, ("counters", "best", "evals"))  # besides what every checkpoint holds
    step = int(state["step"])
    if settings.steps < step:
        raise ConfigError(f"--resume {folder}: train.steps={settings.steps} is fewer than the checkpoint's step {step}")
    both = bool(config) and bool(state.get("config"))
    kind = _kind(config) if both and config else None
    manifest = weights_manifest(kind, config) if kind and config else {}  # the weights both must share
    ours = _fixed(asdict(settings), config if both and config else {}, manifest)
    try:
        theirs = _fixed(state.get("settings") or {}, state["config"] if both else {}, manifest)
    except ConfigError as exc:  # a setting this version no longer takes
        raise ConfigError(f"--resume {folder}: the checkpoint's config does not fit this version: {exc}") from None
    difference = _difference(ours, theirs, "")
    if difference:
        raise ConfigError(f"--resume {folder}: {difference} (a resumed run may change only train.steps, "
                          f"{', '.join(RESUMABLE[1:])} and data)")
    theirs_scored = state.get("scored")
    if scored is not None and theirs_scored is not None and scored["sha256"] != theirs_scored.get("sha256"):
        raise ConfigError(f"--resume {folder}: {scored['key']} scores other samples than the checkpoint's "
                          "evaluations, and its best was scored on those; resume with the checkpoint's evaluation "
                          "data, or train a new run")
    if identity is not None and state.get("identity") is not None:
        difference = _difference(identity, state["identity"], "train.distill")
        if difference:
            raise ConfigError(f"--resume {folder}: the teacher is not the checkpoint's: {difference} (a resumed "
                              "distillation keeps its teacher and its weights)")
    return state


def _kind(config: dict[str, Any]) -> str | None:
    """The kind of stage (det, cls, rec) a stage config trains, by its head; None for another head."""
    kind = stage_kind(config)
    return kind if kind in TASK_SECTIONS else None


def _fixed(settings: dict[str, Any], config: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """What a resumed run shares with its checkpoint (``check_resume``), as JSON values: the train sections as
    their settings classes build them, the model, preprocess and postprocess as the stage runs them with the
    weights' ``manifest`` (``stages.resolved_sections``); a bad value is their one-line ConfigError."""
    train = {k: v for k, v in settings.items() if k not in RESUMABLE}
    section = config.get("train")
    if isinstance(section, dict):
        train.update({k: v for k, v in section.items() if k in TASK_KEYS and k != "data"})
        targets = {**TASK_SECTIONS.get(str(section.get("task")), {}), **WRAPPER_SECTIONS}
        train.update({k: _resolved(f"train.{k}", section.get(k), target) for k, target in targets.items()
                      if k != "data" and (k not in SWITCHES or section.get(k) is not None)})
    fixed = {**{k: v for k, v in config.items() if k != "train"}, "train": train}
    kind = _kind(config)
    if kind is not None:
        fixed.update(resolved_sections(kind, config, manifest))
    return dict(json.loads(json.dumps(_jsonable(fixed))))


def _resolved(key: str, section: Any, target: str) -> dict[str, Any]:
    """A train section as its task reads it: every setting, defaults filled (so a default given and one left out
    compare equal)."""
    return asdict(build_settings(_settings_class(target), key, section))


def _difference(ours: Any, theirs: Any, where: str) -> str | None:
    """The first difference between two JSON values (a missing key counts as null), said in words."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(ours.keys() | theirs.keys()):
            found = _difference(ours.get(key), theirs.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if ours == theirs:
        return None

    def show(value: Any) -> str:
        text = "not set" if value is None else json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."

    return f"{where} is {show(ours)} here but {show(theirs)} in the checkpoint"


def _restore_run_files(run_dir: Path, checkpoint: Path, state: dict[str, Any], log: _Log) -> bool:
    """Make ``run_dir``'s best weights, evaluations and log the checkpoint's; True when it holds best weights.
    A checkpoint of ``run_dir``'s own becomes its ``LATEST`` first, so that a run stopped before its next
    checkpoint resumes from this one, whose log rows are the ones kept, not from a later one left by the run before."""
    if checkpoint.resolve().parent == (run_dir / "checkpoints").resolve():
        set_latest(checkpoint)
    best = run_dir / BEST_FILE
    held = BEST_FILE in state["sha256"]
    if held:
        atomic_write_bytes(best, (checkpoint / BEST_FILE).read_bytes())
    else:
        best.unlink(missing_ok=True)
    if state["evals"]:
        atomic_write_text(run_dir / "evals.json", json.dumps(state["evals"], indent=1))
    else:
        (run_dir / "evals.json").unlink(missing_ok=True)
    log.drop_after(int(state["step"]))
    return held


_ASK_TASK: Any = object()  # train's ``scored`` when not given: asked of the task (``scored_by``)


def train(
    task: Task,
    settings: TrainSettings,
    run_dir: Path,
    device: str = "cpu",
    resume: Path | None = None,
    progress: bool = True,
    config: dict[str, Any] | None = None,
    stop_at: int | None = None,
    identity: dict[str, Any] | None = None,
    scored: dict[str, str] | None = _ASK_TASK,
) -> TrainResult:
    """Train ``task`` for ``settings.steps`` steps into ``run_dir`` (see the module docstring).

    ``stop_at`` ends the run early (with a checkpoint) while the schedule still spans ``settings.steps``;
    ``identity`` (a distillation's teacher) is kept in each checkpoint and checked on resume (``check_resume``),
    as is ``scored``, what the task scores: ``scored_by(task)``, given by a caller that has it already (its
    fingerprint hashes every evaluation sample).
    """
    from tqdm import tqdm

    dev = check_device(device)
    checkpoint = run_checkpoint(run_dir, resume)
    scored = scored_by(task) if scored is _ASK_TASK else scored
    if checkpoint is not None:
        check_resume(checkpoint, settings, config, identity, scored)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(run_dir / name for name in LEFT_FILES)  # the temp files of a run killed while writing them
    if checkpoint is None:
        for name in LEFT_FILES:  # left by a run stopped before its first checkpoint
            (run_dir / name).unlink(missing_ok=True)
    model = _build_model(task, settings, dev)
    optimizer = _optimizer(model, settings, task)
    use_amp = settings.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    # "loss": the last step's, kept in checkpoints so that resuming a finished run still reports it
    counters = {"step": 0, "samples_seen": 0, "cpu_seconds": 0.0, "wall_seconds": 0.0, "data_seconds": 0.0,
                "loss": math.nan}
    best: dict[str, float] = {}
    evals: list[dict[str, Any]] = []
    log = _Log(run_dir / "log.csv")
    have_best = False  # whether RUN/best.safetensors holds weights of this run (or of the run it resumes)
    if checkpoint is not None:
        state = _restore(checkpoint, task, model, optimizer, scaler)
        counters.update(state["counters"])
        evals = state["evals"]
        have_best = _restore_run_files(run_dir, checkpoint, state, log)
        best = state["best"] if have_best else {}  # a checkpoint without its best's weights claims none
    bar = tqdm(total=settings.steps, initial=counters["step"], disable=not progress, unit="step")
    cpu0, wall0 = time.process_time() - counters["cpu_seconds"], time.perf_counter() - counters["wall_seconds"]
    last = min(settings.steps, stop_at or settings.steps)
    batches = _batches(task, settings, int(counters["step"]), last, pin=dev.type == "cuda")
    for step in range(int(counters["step"]), last):
        lr = lr_at(step, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        waited = time.perf_counter()
        batch = _to(next(batches), dev, settings.channels_last)
        counters["data_seconds"] += time.perf_counter() - waited
        loss_value, grad_norm, logs = _step(task, model, optimizer, scaler, batch, settings, dev.type, use_amp)
        counters["step"], counters["loss"] = step + 1, loss_value
        counters["samples_seen"] += int(next(iter(batch.values())).shape[0])
        counters["cpu_seconds"] = time.process_time() - cpu0
        counters["wall_seconds"] = time.perf_counter() - wall0
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}")
        done = step + 1
        if done % settings.log_every == 0 or done == settings.steps:
            log.write({"step": done, "lr": lr, "loss": loss_value, "grad_norm": grad_norm, **logs,
                       "samples_seen": counters["samples_seen"], "cpu_seconds": round(counters["cpu_seconds"], 2),
                       "wall_seconds": round(counters["wall_seconds"], 2),
                       "data_seconds": round(counters["data_seconds"], 2)})
        if done % settings.eval_every == 0 or done == settings.steps:
            scores = _evaluate(task, model, settings, run_dir, done, evals)
            if task.metric in scores and _rank(task, scores) >= _rank(task, best):
                best = {"step": done, **scores}
                _save_best(run_dir, task, model)
                have_best = True
            if scores:
                bar.write(f"step {done}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
        if done % settings.save_every == 0 or done == last:
            extra = {"counters": counters, "best": best, "evals": evals, "settings": asdict(settings),
                     "scaler": scaler.state_dict() if use_amp else None, "config": _jsonable(config or {}),
                     **({"identity": identity} if identity is not None else {}),
                     **({"scored": scored} if scored is not None else {})}
            own = getattr(task, "task_tensors", None)
            save_checkpoint(run_dir, done, model, optimizer, extra, task_tensors=own() if own else None,
                            best=run_dir / BEST_FILE if have_best else None)
    bar.close()
    if not have_best:  # no evaluation data: the last weights are the result
        _save_best(run_dir, task, model)
    return TrainResult(run_dir, int(counters["step"]), int(counters["samples_seen"]), counters["cpu_seconds"],
                       counters["wall_seconds"], best, counters["loss"])


def _build_model(task: Task, s: TrainSettings, dev: torch.device) -> nn.Module:
    """The task's net on ``dev`` in training mode, seeded by ``s.seed`` (on CPU, denormals flushed from now on)."""
    if dev.type == "cpu":
        torch.set_flush_denormal(True)
    torch.manual_seed(s.seed)
    model = task.build_model().to(dev)
    if s.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    _train_mode(model, s)
    return model


def _evaluate(task: Task, model: nn.Module, s: TrainSettings, run_dir: Path, done: int,
              evals: list[dict[str, Any]]) -> dict[str, float]:
    """Step ``done``'s scores: evaluated, appended to ``evals`` and written to RUN/evals.json; the net is back in
    training mode."""
    scores = task.evaluate(model)
    _train_mode(model, s)
    evals.append({"step": done, **scores})
    atomic_write_text(run_dir / "evals.json", json.dumps(evals, indent=1))
    return scores


def scored_by(task: Task) -> dict[str, str] | None:
    """What ``task`` scores during training (its optional ``scored_data()``), kept in checkpoints and compared on
    resume (``check_resume``); None when it scores nothing or cannot tell."""
    scored = getattr(task, "scored_data", None)
    return scored() if scored is not None else None


def _restore(checkpoint: Path, task: Task, model: nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler) -> dict[str, Any]:
    """Load a checkpoint into the net, optimizer, task (its own tensors) and AMP scaler; return its state."""
    state, task_tensors = load_checkpoint(checkpoint, model, optimizer)
    restore = getattr(task, "load_task_tensors", None)
    if restore is not None:
        restore(task_tensors)
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    return state


def _step(task: Task, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
          batch: dict[str, Any], settings: TrainSettings, device_type: str,
          use_amp: bool) -> tuple[float, float, dict[str, float]]:
    """One optimisation step on ``batch``: (loss, gradient norm before clipping, the task's own log values)."""
    with torch.autocast(device_type, enabled=use_amp):
        loss, logs = task.loss(model, batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad],
        settings.clip_grad_norm if settings.clip_grad_norm > 0 else float("inf"),
    )
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach()), float(grad_norm), logs


def _rank(task: Task, scores: dict[str, float]) -> tuple[float, ...]:
    """What keep-best compares (higher is better; an equal rank goes to the later evaluation): ``task.metric``,
    then the score a task's optional ``tiebreak`` names (rec: 1 - NED when word accuracy is level)."""
    tiebreak: str | None = getattr(task, "tiebreak", None)
    keys = (task.metric, tiebreak) if tiebreak else (task.metric,)
    return tuple(scores.get(key, -math.inf) for key in keys)


def _save_best(run_dir: Path, task: Task, model: nn.Module) -> None:
    """Write the run's result weights (``task.deployed`` net) to RUN/best.safetensors."""
    from safetensors.torch import save

    atomic_write_bytes(run_dir / BEST_FILE, save(state_tensors(_deployed(task, model))))


def _deployed(task: Task, model: nn.Module) -> nn.Module:
    """The net the run's best weights are saved from: ``task.deployed(model)`` if the task defines it."""
    deployed = getattr(task, "deployed", None)
    return deployed(model) if deployed is not None else model


def _jsonable(obj: Any) -> Any:
    """``obj`` with paths turned into strings and private keys (``_dir``) dropped."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
