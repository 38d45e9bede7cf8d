"""Direction-classifier training task: 0/180 on text-line crops, evaluated through the inference
``TextClassifier``.

Crops are cut from FUNSD forms (line or word boxes) or read from a PaddleOCR rec label file (``path<TAB>text``,
upright crops) or direction label file (``path<TAB>0`` or ``180``: a 180 crop is turned upright when it is
read); forms/files are split deterministically (every ``holdout_every``-th held out, then every ``val_every``-th
of the rest is a validation item; ``eval_on`` names the split scored during training, which keep-best picks
on). A training crop is turned 180 degrees with probability 0.5, which sets its label; each scored crop is
scored upright and turned. Config (``train:`` section of a cls stage config)::

    data:    {format: funsd | labels, root: FOLDER or LABEL FILE, unit: lines | words, holdout_every: 5,
              val_every: 0, eval_on: holdout | val | train, min_width: 8, eval_limit: 0, pairs: false}
    augment: {num_ops: 2, magnitude: 0.5, bda_prob: 0.4, at_input: true}

``at_input``: the crop is resized to the net's input before it is augmented (see ``ClsAugment``).
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
from ..eval.datasets import (
    FunsdForm,
    box_crops,
    check_funsd_unit,
    load_funsd_boxes,
    read_rec_label_file,
    upright_crops,
)
from ..eval.metrics import direction_accuracy, upright_and_turned
from ..io.images import read_image
from ..predictors import TextClassifier
from ..preprocess import line_batch
from ..settings import ClsPostprocess, LinePreprocess, build_settings, setting
from ..stages import StageSpec, stage_spec
from .augment import ClsAugment
from .data import Splits, check_eval_on, data_settings, empty_split_notes, scored_data, three_way_split

__all__ = ["ClsData", "ClsAugmentSettings", "ClsTask", "funsd_crops", "label_file_crops"]


@dataclass(frozen=True)
class ClsData:
    """The ``train.data`` section."""

    format: str = "funsd"
    root: str = ""
    unit: str = "lines"  # funsd only (given for label files: an error)
    holdout_every: int = setting(5, low=0)  # every N-th form (or line of a label file) is held out (0: none)
    val_every: int = setting(0, low=0)  # every N-th remaining form (or line of a label file) validates (0: none)
    eval_on: str = "holdout"  # the split scored during training: holdout, val or train
    min_width: int = setting(8, low=0)  # crops narrower or lower than this (pixels) are left out
    eval_limit: int = setting(0, low=0)  # score only the first N crops of the eval_on split (0: all)
    pairs: bool = False  # each batch holds every drawn crop upright and turned (see ClsTask.batch)


@dataclass(frozen=True)
class ClsAugmentSettings:
    """The ``train.augment`` section (see ``ClsAugment``)."""

    num_ops: int = setting(2, low=0)
    magnitude: float = setting(0.5, low=0.0, high=1.0)
    bda_prob: float = setting(0.4, low=0.0, high=1.0)
    at_input: bool = True  # augment after resizing to the net's input (strengths in input pixels)


def funsd_crops(root: str | Path, unit: str, holdout_every: int, val_every: int,
                min_width: int) -> Splits[np.ndarray]:
    """Train, validation and held-out crops cut with the pipeline's ``crop_quad`` from FUNSD forms split by form;
    crops narrower or lower than ``min_width``, or taller than wide (vertical text), are left out."""
    check_funsd_unit(unit, "train.data.unit")
    forms = three_way_split(load_funsd_boxes(root), holdout_every, val_every)

    def cut(forms: Sequence[FunsdForm]) -> list[np.ndarray]:
        crops = []
        for form in forms:
            for crop, _ in box_crops(read_image(form.image), form.boxes(unit)):
                if min(crop.shape[:2]) >= min_width and crop.shape[1] >= crop.shape[0]:
                    crops.append(crop)
        return crops

    return Splits(cut(forms.train), cut(forms.val), cut(forms.held_out))


def label_file_crops(path: str | Path, holdout_every: int, val_every: int, min_width: int) -> Splits[np.ndarray]:
    """Train, validation and held-out crops, upright, from the images of a ``path<TAB>text`` label file or of
    PaddleOCR's direction label file (``path<TAB>0`` or ``180``: see ``upright_crops``), split by line."""
    pairs = read_rec_label_file(path)
    upright = upright_crops([read_image(image) for image, _ in pairs], [text for _, text in pairs])
    split = three_way_split(upright, holdout_every, val_every)

    def kept(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [c for c in crops if min(c.shape[:2]) >= min_width]

    return Splits(kept(split.train), kept(split.val), kept(split.held_out))


class ClsTask:
    """0/180 classifier training (see the module docstring); implements ``ocrlite.train.task.Task``."""

    name = "cls"
    metric = "accuracy"

    def __init__(self, stage: dict[str, Any], batch_size: int) -> None:
        self.stage = stage
        train = stage.get("train") or {}
        self.data: ClsData = data_settings(ClsData, train.get("data"))
        aug: ClsAugmentSettings = build_settings(ClsAugmentSettings, "train.augment", train.get("augment"))
        self.spec: StageSpec = stage_spec("cls", stage)
        self.pre: LinePreprocess = self.spec.pre
        size = (self.pre.height, self.pre.width) if aug.at_input else (0, 0)
        self.augment = ClsAugment(aug.num_ops, aug.magnitude, aug.bda_prob, *size)
        self.post: ClsPostprocess = self.spec.post
        classes = (self.spec.model.get("head") or {}).get("class_num", 2)
        if classes != len(self.post.labels):  # a third output would be trained as a class no crop has
            raise ConfigError(f"model.head.class_num must be {len(self.post.labels)}, one class per "
                              f"postprocess.labels angle {list(self.post.labels)}, got {classes!r}")
        if not self.data.root:
            raise ConfigError("train.data.root: give the FUNSD folder or a label file")
        check_eval_on(self.data.eval_on, self.data.val_every)
        d = self.data
        if d.format == "funsd":
            splits = funsd_crops(d.root, d.unit, d.holdout_every, d.val_every, d.min_width)
        elif d.format == "labels":
            splits = label_file_crops(d.root, d.holdout_every, d.val_every, d.min_width)
        else:
            raise ConfigError(f"train.data.format must be funsd or labels, got {d.format!r}")
        self.train_crops = splits.train
        if not self.train_crops:
            raise ConfigError(f"train.data: no training crops in {d.root}")
        scored = splits.pick(d.eval_on)
        if d.eval_limit > 0:
            scored = scored[: d.eval_limit]
        self.eval_crops, self.eval_angles = upright_and_turned(scored)  # scored during training (keep-best)
        self.notes = empty_split_notes(d.eval_on, scored, d.holdout_every, d.val_every)
        self.held_out_crops, self.held_out_angles = upright_and_turned(splits.held_out)
        self.batch_size = batch_size

    def files(self) -> list[Path]:
        """The files read: the FUNSD images and annotations, or the label file and its images."""
        root = Path(self.data.root)
        if self.data.format == "funsd":
            return sorted((root / "annotations").glob("*.json")) + sorted((root / "images").glob("*.png"))
        return [root] + [image for image, _ in read_rec_label_file(root)]

    def scored_data(self) -> dict[str, str] | None:
        """The evaluation crops (``data.scored_data``): each one's pixels and angle."""
        return scored_data("train.data (its eval_on split)",
                           [(crop, angle) for crop, angle in zip(self.eval_crops, self.eval_angles, strict=True)])

    def build_model(self) -> nn.Module:
        """The net from the config; converted/parent weights when the config names them, else fresh init."""
        return self.spec.build_net()

    def collate(self, crops: Sequence[np.ndarray], labels: Sequence[int]) -> dict[str, Tensor]:
        """Crops batched exactly as ``TextClassifier`` batches them, and class indices."""
        images = np.ascontiguousarray(line_batch(crops, self.pre.height, self.pre.width, self.pre.mean, self.pre.std))
        return {"image": torch.from_numpy(images), "label": torch.tensor(labels, dtype=torch.long)}

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        """Random crops, each turned 180 degrees (class 1) with probability 0.5, augmented. With ``pairs`` each
        drawn crop comes both ways (upright then turned, augmented separately): classes exactly balanced and
        the only difference inside a pair is the direction."""
        classes = list(self.post.labels)
        crops, labels = [], []
        if self.data.pairs:
            drawn = rng.integers(0, len(self.train_crops), size=(self.batch_size + 1) // 2)
            picks = [(int(i), turn) for i in drawn for turn in (False, True)][: self.batch_size]
        else:
            picks = [(int(i), bool(rng.random() < 0.5))
                     for i in rng.integers(0, len(self.train_crops), size=self.batch_size)]
        for index, turned in picks:
            crop = self.train_crops[index]
            if turned:
                crop = np.ascontiguousarray(crop[::-1, ::-1])
            crops.append(self.augment(crop, rng))
            labels.append(classes.index(180 if turned else 0))
        return self.collate(crops, labels)

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        loss = F.cross_entropy(model(batch["image"]), batch["label"])
        return loss, {"ce": float(loss.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Accuracy of the classifier's decision (argmax angle) on the ``eval_on`` split's crops (at most
        ``eval_limit``), each upright and turned."""
        if not self.eval_crops:
            return {}
        was_training = model.training
        classifier = TextClassifier(TorchRunner(model, softmax=True, channels_last=False), self.pre, self.post)
        try:
            angles = [angle for angle, _ in classifier(self.eval_crops)]
        finally:
            model.train(was_training)
        return {"accuracy": direction_accuracy(angles, self.eval_angles)}
