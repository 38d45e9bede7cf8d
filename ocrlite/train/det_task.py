"""Detection training task: DBNet on ICDAR 2015 / PaddleOCR det label files / FUNSD, evaluated through the
inference ``TextDetector`` with the ICDAR 2015 protocol.

Config (``train:`` section of a det stage config)::

    data:    {format: icdar2015 | paddle | funsd, root: FOLDER or LABEL FILE, holdout_every: 5, val_every: 0,
              limit: 0, eval_on: holdout | val | train, unit: lines | words}
    augment: {size: 640, flip: 0.5, max_angle: 10, scale_min: 0.5, scale_max: 3.0, color: 0.3, copy_paste: 0.0,
              keep_scale: false}
    loss:    {main_loss: dice | bce, alpha: 5, beta: 10, ohem_ratio: 3, shrink_ratio: 0.4, min_text_size: 8,
              thresh_min: 0.3, thresh_max: 0.7}

Converted detectors ship without the threshold branch (it is only used in training): ``build_det_model``
loads them strictly except for exactly those keys, initialises the branch explicitly and logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..backends.torch import TorchRunner
from ..errors import ConfigError, WeightsError
from ..eval.metrics import PRScores, evaluate_detection
from ..io.images import read_image
from ..models import build_model
from ..postprocess import DBPostProcess
from ..predictors import TextDetector
from ..preprocess import normalize
from ..settings import DetPreprocess, build_settings, range_error, setting
from ..stages import stage_spec
from ..weights import load_weights, sha256_file
from .augment import DetAugment, DetSample
from .data import (
    DetRecord,
    check_eval_on,
    data_settings,
    det_label_records,
    empty_split_notes,
    funsd_records,
    icdar2015_records,
    image_size,
    scored_data,
    three_way_split,
)
from .db_loss import DBLoss
from .db_targets import make_db_targets

__all__ = [
    "DetData",
    "DetAugmentSettings",
    "DetLossSettings",
    "DetTask",
    "build_det_model",
    "with_threshold_branch",
    "init_db_branch",
    "detect_counts",
]

log = logging.getLogger(__name__)

_THRESH_PREFIX = "head.thresh."


@dataclass(frozen=True)
class DetData:
    """The ``train.data`` section."""

    format: str = "icdar2015"
    root: str = ""
    unit: str = "lines"  # funsd only (given for other data: an error): line boxes, what the pipeline detects
    holdout_every: int = setting(5, low=0)  # every N-th image is held out (0: none)
    val_every: int = setting(0, low=0)  # every N-th remaining image is a validation image (0: none)
    limit: int = setting(0, low=0)  # use only the first N training images (0: all)
    eval_on: str = "holdout"  # the images scored during training: holdout, val (keep-best on them) or train


@dataclass(frozen=True)
class DetAugmentSettings:
    """The ``train.augment`` section (see ``DetAugment``)."""

    size: int = setting(640, low=64)  # a multiple of the detector's stride, 32 (checked in __post_init__)
    flip: float = setting(0.5, low=0.0, high=1.0)
    max_angle: float = setting(10.0, low=0.0)
    scale_min: float = 0.5
    scale_max: float = 3.0
    color: float = setting(0.3, low=0.0, high=1.0)
    copy_paste: float = setting(0.0, low=0.0, high=1.0)
    keep_scale: bool = False  # crop windows of at most size x size, padded, never resized

    def __post_init__(self) -> None:
        if self.size % 32:  # the net's feature maps would not line up (inference rounds pages to 32 too)
            raise range_error("train.augment.size", self.size, "a multiple of 32 (the detector's stride), 64 or more")
        if not 0 < self.scale_min <= self.scale_max:
            raise ConfigError(f"train.augment.scale_min and scale_max must be 0 < scale_min <= scale_max, "
                              f"got {self.scale_min}, {self.scale_max}")


@dataclass(frozen=True)
class DetLossSettings:
    """The ``train.loss`` section: DB loss weights and target parameters."""

    main_loss: str = setting("dice", choices=("dice", "bce"))
    alpha: float = setting(5.0, low=0.0)
    beta: float = setting(10.0, low=0.0)
    ohem_ratio: float = setting(3.0, low=0.0)
    shrink_ratio: float = 0.4  # strictly between 0 and 1 (checked in __post_init__)
    min_text_size: int = setting(8, low=0)
    thresh_min: float = setting(0.3, low=0.0, high=1.0)
    thresh_max: float = setting(0.7, low=0.0, high=1.0)

    def __post_init__(self) -> None:
        if not 0 < self.shrink_ratio < 1:
            raise range_error("train.loss.shrink_ratio", self.shrink_ratio, "more than 0 and less than 1")
        if not self.thresh_min < self.thresh_max:
            raise ConfigError(f"train.loss.thresh_min and thresh_max must be thresh_min < thresh_max, "
                              f"got {self.thresh_min}, {self.thresh_max}")


def init_db_branch(branch: nn.Module, source: nn.Module) -> None:
    """Initialise the threshold branch from the trained probability branch ``source``: its hidden layers
    (conv1, bn1, conv2, bn2, running statistics included) are copied, the last transposed conv is zeroed, so T
    starts at sigmoid(0) = 0.5 everywhere and B = sigmoid(k (P - 0.5)) is already a sensible binarisation.

    (A fresh Kaiming init saturates the sigmoid: PyTorch's fan-in of a transposed conv counts its output
    channels, 1 here, and with frozen BatchNorm the new branch's statistics would never adapt.)
    """
    hidden = {k: v for k, v in source.state_dict().items() if not k.startswith("conv3.")}
    branch.load_state_dict(hidden, strict=False)
    last = branch.get_submodule("conv3")
    assert isinstance(last, nn.ConvTranspose2d) and last.bias is not None
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)


def with_threshold_branch(stage: dict[str, Any]) -> dict[str, Any]:
    """``stage`` whose DB head config has the threshold branch: the net that is trained, saved and exported
    (inference ignores the branch; the exported config must name it for its weights to load strictly)."""
    model = stage.get("model") or {}
    return {**stage, "model": {**model, "head": {**(model.get("head") or {}), "with_threshold": True}}}


def build_det_model(stage: dict[str, Any]) -> nn.Module:
    """The stage's DB net with the threshold branch, its weights loaded strictly.

    Only the threshold branch's keys may be missing from the weights (converted inference weights lack it);
    then the branch is initialised by ``init_db_branch`` and a log line names what happened.
    A file missing part of the branch, or anything else, is a WeightsError.
    """
    spec = stage_spec("det", with_threshold_branch(stage))
    model = build_model(spec.model, "det.model")
    if spec.weights is None:
        return model
    path = spec.weights
    thresh_keys = [k for k in model.state_dict() if k.startswith(_THRESH_PREFIX)]
    missing = load_weights(model, path, spec.manifest.get("sha256"), allow_missing=thresh_keys)
    required = [k for k in thresh_keys if not k.endswith("num_batches_tracked")]
    if missing:
        if sorted(missing) != sorted(required):
            raise WeightsError(f"{path.name}: the DB threshold branch is only partly present ({len(missing)} of "
                               f"{len(required)} tensors missing)")
        init_db_branch(model.get_submodule("head.thresh"), model.get_submodule("head.binarize"))
        log.info("%s has no DB threshold branch: initialised its %d tensors (hidden layers copied from the "
                 "probability branch, last conv zero: T = 0.5)", path.name, len(missing))
    return model


def _load_records(data: DetData) -> list[DetRecord]:
    if not data.root:
        raise ConfigError("train.data.root: give the data folder or label file")
    if data.format == "icdar2015":
        return icdar2015_records(data.root)
    if data.format == "paddle":
        return det_label_records(data.root)
    if data.format == "funsd":
        return funsd_records(data.root, data.unit, "train.data.unit")
    raise ConfigError(f"train.data.format must be icdar2015, paddle or funsd, got {data.format!r}")


def detect_counts(detector: TextDetector, records: Sequence[DetRecord]) -> list[PRScores]:
    """Per-image ICDAR 2015 match counts of ``detector`` on ``records`` (sum them for the data set)."""
    counts = []
    for record in records:
        boxes = detector(read_image(record.image))
        counts.append(evaluate_detection([[b.points for b in boxes]], [record.regions()]))
    return counts


class DetTask:
    """DBNet training (see the module docstring); implements ``ocrlite.train.task.Task``."""

    name = "det"
    metric = "hmean"

    def __init__(self, stage: dict[str, Any], batch_size: int) -> None:
        self.stage = with_threshold_branch(stage)
        train = stage.get("train") or {}
        self.data: DetData = data_settings(DetData, train.get("data"))
        aug: DetAugmentSettings = build_settings(DetAugmentSettings, "train.augment", train.get("augment"))
        self.loss_cfg: DetLossSettings = build_settings(DetLossSettings, "train.loss", train.get("loss"))
        check_eval_on(self.data.eval_on, self.data.val_every)
        self.augment = DetAugment((aug.size, aug.size), aug.flip, aug.max_angle, (aug.scale_min, aug.scale_max),
                                  aug.color, aug.copy_paste, aug.keep_scale)
        self.criterion = DBLoss(self.loss_cfg.alpha, self.loss_cfg.beta, self.loss_cfg.ohem_ratio,
                                self.loss_cfg.main_loss)
        spec = stage_spec("det", stage)
        self.pre: DetPreprocess = spec.pre
        self.post: DBPostProcess = spec.post
        splits = three_way_split(_load_records(self.data), self.data.holdout_every, self.data.val_every)
        if self.data.limit > 0:
            splits.train[self.data.limit :] = []
        self.train_records, self.held_out_records = splits.train, splits.held_out
        self.eval_records = list(splits.pick(self.data.eval_on))  # scored during training (keep-best)
        self.notes = empty_split_notes(self.data.eval_on, self.eval_records, self.data.holdout_every,
                                       self.data.val_every)
        if not self.train_records:
            raise ConfigError(f"train.data: no training images in {self.data.root}")
        for image in self.images():  # a missing or broken image fails the start, not the batch that draws it
            image_size(image)
        self.batch_size = batch_size

    def images(self) -> list[Path]:
        """Every image the task reads (training first, then evaluation)."""
        return list(dict.fromkeys(r.image for r in [*self.train_records, *self.eval_records]))

    def files(self) -> list[Path]:
        """The ground-truth files read (the label file, ICDAR 2015 gt files or FUNSD annotations), then the
        images, for the data manifest."""
        records = [*self.train_records, *self.eval_records, *self.held_out_records]
        labels = dict.fromkeys(r.label for r in records if r.label is not None)
        return [*labels, *self.images()]

    def scored_data(self) -> dict[str, str] | None:
        """The evaluation images (``data.scored_data``): each one's sha256 and its boxes, texts and flags."""
        return scored_data("train.data (its eval_on split)", [
            (sha256_file(r.image), *r.polygons, list(r.texts), list(r.ignore)) for r in self.eval_records])

    def build_model(self) -> nn.Module:
        return build_det_model(self.stage)

    def sample(self, index: int, rng: np.random.Generator) -> DetSample:
        """Training image ``index`` augmented (with a random CopyPaste donor when enabled)."""
        record = self.train_records[index]
        sample = DetSample(read_image(record.image), record.polygons, record.ignore)
        donor = None
        if self.augment.copy_paste > 0:
            other = self.train_records[int(rng.integers(len(self.train_records)))]
            donor = DetSample(read_image(other.image), other.polygons, other.ignore)
        return self.augment(sample, rng, donor)

    def collate(self, samples: Sequence[DetSample]) -> dict[str, Tensor]:
        """Normalised images (as ``TextDetector`` normalises) and the DB targets, stacked."""
        maps: dict[str, list[np.ndarray]] = {k: [] for k in ("image", "shrink", "shrink_mask", "thresh",
                                                             "thresh_mask")}
        c = self.loss_cfg
        for sample in samples:
            height, width = sample.image.shape[:2]
            targets = make_db_targets(sample.polygons, sample.ignore, height, width, c.shrink_ratio,
                                      c.min_text_size, c.thresh_min, c.thresh_max)
            maps["image"].append(normalize(sample.image, self.pre.mean, self.pre.std))
            for key in ("shrink", "shrink_mask", "thresh", "thresh_mask"):
                maps[key].append(getattr(targets, key))
        return {k: torch.from_numpy(np.stack(v)) for k, v in maps.items()}

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        """``batch_size`` images drawn with replacement; all randomness from ``rng``."""
        picks = rng.integers(0, len(self.train_records), size=self.batch_size)
        return self.collate([self.sample(int(i), rng) for i in picks])

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        return self.map_loss(model.forward_train(batch["image"]), batch)  # type: ignore[operator]

    def map_loss(self, maps: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The DB loss of the head's training output ``maps`` (``forward_train``) against the batch's targets."""
        parts = self.criterion(maps, batch["shrink"], batch["shrink_mask"], batch["thresh"], batch["thresh_mask"])
        return parts["loss"], {k: float(v.detach()) for k, v in parts.items()}

    def detector(self, model: nn.Module) -> TextDetector:
        """The inference detector around ``model`` (it switches the net to eval mode)."""
        return TextDetector(TorchRunner(model, softmax=False, channels_last=False), self.pre, self.post)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """ICDAR 2015 precision, recall and hmean on the evaluation images through ``TextDetector``."""
        if not self.eval_records:
            return {}
        was_training = model.training
        try:
            total = sum(detect_counts(self.detector(model), self.eval_records), PRScores())
        finally:
            model.train(was_training)
        return {"precision": total.precision, "recall": total.recall, "hmean": total.hmean}
