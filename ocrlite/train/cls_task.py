"""Direction-classifier training task: 0/180 on text-line crops, evaluated through the inference
``TextClassifier``.

Crops are cut from FUNSD forms (line or word boxes) or read from a PaddleOCR rec label file; forms/files are
split deterministically (every ``holdout_every``-th held out). A training crop is turned 180 degrees with
probability 0.5, which sets its label; each held-out crop is scored upright and turned. Config
(``train:`` section of a cls stage config)::

    data:    {format: funsd | labels, root: FOLDER or LABEL FILE, unit: lines | words, holdout_every: 5,
              min_width: 8, eval_limit: 0}
    augment: {num_ops: 2, magnitude: 0.5, bda_prob: 0.4}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backends.torch import TorchRunner
from ..errors import ConfigError
from ..io.images import read_image
from ..predictors import TextClassifier
from ..preprocess import crop_quad, line_batch
from ..settings import ClsPostprocess, LinePreprocess
from ..stages import StageSpec, stage_spec
from .augment import ClsAugment
from .data import box_quad, holdout_split, load_funsd_boxes
from .settings import from_mapping

__all__ = ["ClsData", "ClsAugmentSettings", "ClsTask", "funsd_crops", "label_file_crops", "upright_and_turned"]


@dataclass(frozen=True)
class ClsData:
    """The ``train.data`` section."""

    format: str = "funsd"
    root: str = ""
    unit: str = "lines"
    holdout_every: int = 5
    min_width: int = 8  # crops narrower or lower than this (pixels) are left out
    eval_limit: int = 0  # score only the first N held-out crops (0: all)


@dataclass(frozen=True)
class ClsAugmentSettings:
    """The ``train.augment`` section (see ``ClsAugment``)."""

    num_ops: int = 2
    magnitude: float = 0.5
    bda_prob: float = 0.4


def funsd_crops(root: str | Path, unit: str, every: int, min_width: int) -> tuple[list[np.ndarray], ...]:
    """(train crops, held-out crops) cut with the pipeline's ``crop_quad`` from FUNSD forms split by form."""
    if unit not in ("lines", "words"):
        raise ConfigError(f"train.data.unit must be lines or words, got {unit!r}")
    train_forms, held_forms = holdout_split(load_funsd_boxes(root), every)

    def cut(forms: Sequence[Any]) -> list[np.ndarray]:
        crops = []
        for form in forms:
            image = read_image(form.image)
            for box in getattr(form, unit):
                crop = crop_quad(image, box_quad(box))
                if crop is not None and min(crop.shape[:2]) >= min_width and crop.shape[1] >= crop.shape[0]:
                    crops.append(crop)
        return crops

    return cut(train_forms), cut(held_forms)


def label_file_crops(path: str | Path, every: int, min_width: int) -> tuple[list[np.ndarray], ...]:
    """(train crops, held-out crops) from the images of a ``path<TAB>text`` label file, split by line."""
    path = Path(path)
    try:
        lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except OSError as exc:
        raise ConfigError(f"cannot read label file {path}: {exc.strerror}") from None
    train_lines, held_lines = holdout_split(lines, every)

    def load(chosen: Sequence[str]) -> list[np.ndarray]:
        crops = [read_image(path.parent / line.partition("\t")[0]) for line in chosen]
        return [c for c in crops if min(c.shape[:2]) >= min_width]

    return load(train_lines), load(held_lines)


def upright_and_turned(crops: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """Each crop as given (label 0) followed by the same crop turned 180 degrees (label 180)."""
    images, angles = [], []
    for crop in crops:
        images += [crop, np.ascontiguousarray(crop[::-1, ::-1])]
        angles += [0, 180]
    return images, angles


class ClsTask:
    """0/180 classifier training (see the module docstring); implements ``ocrlite.train.task.Task``."""

    name = "cls"
    metric = "accuracy"

    def __init__(self, stage: dict[str, Any], batch_size: int) -> None:
        self.stage = stage
        train = stage.get("train") or {}
        self.data: ClsData = from_mapping(ClsData, "train.data", train.get("data"))
        aug: ClsAugmentSettings = from_mapping(ClsAugmentSettings, "train.augment", train.get("augment"))
        self.augment = ClsAugment(aug.num_ops, aug.magnitude, aug.bda_prob)
        self.spec: StageSpec = stage_spec("cls", stage)
        self.pre: LinePreprocess = self.spec.pre
        self.post: ClsPostprocess = self.spec.post
        if not self.data.root:
            raise ConfigError("train.data.root: give the FUNSD folder or a label file")
        if self.data.format == "funsd":
            self.train_crops, held = funsd_crops(self.data.root, self.data.unit, self.data.holdout_every,
                                                 self.data.min_width)
        elif self.data.format == "labels":
            self.train_crops, held = label_file_crops(self.data.root, self.data.holdout_every, self.data.min_width)
        else:
            raise ConfigError(f"train.data.format must be funsd or labels, got {self.data.format!r}")
        if not self.train_crops:
            raise ConfigError(f"train.data: no training crops in {self.data.root}")
        if self.data.eval_limit > 0:
            held = held[: self.data.eval_limit]
        self.eval_crops, self.eval_angles = upright_and_turned(held)
        self.batch_size = batch_size

    def files(self) -> list[Path]:
        """The files read: the FUNSD images and annotations, or the label file and its images."""
        root = Path(self.data.root)
        if self.data.format == "funsd":
            return sorted((root / "annotations").glob("*.json")) + sorted((root / "images").glob("*.png"))
        return [root] + [root.parent / line.partition("\t")[0]
                         for line in root.read_text(encoding="utf-8-sig").splitlines() if line.strip()]

    def build_model(self) -> nn.Module:
        """The net from the config; converted/parent weights when the config names them, else fresh init."""
        return self.spec.build_net()

    def collate(self, crops: Sequence[np.ndarray], labels: Sequence[int]) -> dict[str, Tensor]:
        """Crops batched exactly as ``TextClassifier`` batches them, and class indices."""
        images = line_batch(crops, self.pre.height, self.pre.width, self.pre.mean, self.pre.std)
        return {"image": torch.from_numpy(images), "label": torch.tensor(labels, dtype=torch.long)}

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        """Random crops, each turned 180 degrees (class 1) with probability 0.5, augmented."""
        classes = list(self.post.labels)
        crops, labels = [], []
        for index in rng.integers(0, len(self.train_crops), size=self.batch_size):
            crop = self.train_crops[int(index)]
            turned = bool(rng.random() < 0.5)
            if turned:
                crop = np.ascontiguousarray(crop[::-1, ::-1])
            crops.append(self.augment(crop, rng))
            labels.append(classes.index(180 if turned else 0))
        return self.collate(crops, labels)

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        loss = F.cross_entropy(model(batch["image"]), batch["label"])
        return loss, {"ce": float(loss.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Accuracy of the classifier's decision (argmax angle) on held-out crops, upright and turned."""
        if not self.eval_crops:
            return {}
        was_training = model.training
        classifier = TextClassifier(TorchRunner(model, softmax=True, channels_last=False), self.pre, self.post)
        try:
            angles = [angle for angle, _ in classifier(self.eval_crops)]
        finally:
            model.train(was_training)
        correct = sum(a == b for a, b in zip(angles, self.eval_angles, strict=True))
        return {"accuracy": correct / len(self.eval_angles)}
