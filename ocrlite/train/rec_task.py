"""Recognition training task: CTC over label files, batches padded exactly as inference pads them.

Batches go through ``ocrlite.preprocess.line_batch`` at ``rec_batch_width`` (the BiLSTM reads the
padding, so training sees the padding inference will show it). Samples are grouped by width/height
ratio like the inference predictor groups crops. Augmentation: TIA-style distort / stretch /
perspective warps and BDA-style degradations (``synth.degrade``). The loss is CTC with blank 0,
summed over the batch and divided by the batch size, as in PaddleOCR; a ``train.center_loss`` section adds
PP-OCRv2's Enhanced CTC center loss (``ocrlite.train.center_loss``), logged as ``center``. A label CTC cannot
align to the batch's time steps (its length plus its adjacent repeats exceed them; the steps follow the padded
batch width, so this is known only per batch) adds no loss: each batch with such labels logs one warning
with their count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backends.torch import TorchRunner
from ..charset import Charset
from ..errors import ConfigError
from ..eval.datasets import read_rec_label_file
from ..eval.metrics import evaluate_recognition
from ..io.images import read_image
from ..predictors import TextRecognizer
from ..preprocess import line_batch, rec_batch_width
from ..settings import RecPreprocess, build_settings, setting
from ..stages import StageSpec, stage_spec
from ..weights import sha256_file
from .center_loss import CenterBank, CenterLossSettings, ctc_align, greedy_labels
from .data import image_size, scored_data
from .synth import FONT_ROOT, LANGS, SCENE_SHARE, WORDS_FILE, ZH_SHARE, FontBank, Synthesizer, degrade, load_words

__all__ = ["RecData", "RecTask", "ctc_loss", "read_label_file", "tia_distort", "tia_stretch", "tia_perspective"]

log = logging.getLogger(__name__)


def read_label_file(path: str | Path, charset: Charset) -> tuple[list[tuple[Path, str]], int]:
    """``(image path, text)`` pairs of a ``path<TAB>text`` label file (``read_rec_label_file``), and the number
    of lines rejected because their text is empty or has characters outside ``charset``."""
    allowed = set(charset.chars)
    pairs = read_rec_label_file(path)
    samples = [(image, text) for image, text in pairs if text and all(ch in allowed for ch in text)]
    return samples, len(pairs) - len(samples)


def _ctc_too_long(targets: Tensor, target_lengths: Tensor, steps: int) -> int:
    """How many of the concatenated ``targets`` CTC cannot align to ``steps`` time steps: a label needs its
    length plus one blank between each pair of equal adjacent characters."""
    owner = torch.repeat_interleave(torch.arange(len(target_lengths), device=targets.device),
                                    target_lengths.to(targets.device))
    repeated = (targets[1:] == targets[:-1]) & (owner[1:] == owner[:-1])
    repeats = torch.zeros(len(target_lengths), dtype=torch.long, device=targets.device)
    repeats.index_add_(0, owner[1:], repeated.long())
    return int((target_lengths.to(targets.device) + repeats > steps).sum())


def ctc_loss(logits: Tensor, targets: Tensor, target_lengths: Tensor) -> Tensor:
    """CTC (blank 0) of [N, T, C] logits against concatenated targets: sum over the batch / N. A label longer
    than CTC can align to T (``_ctc_too_long``) adds no loss; one warning per batch counts them."""
    log_probs = logits.float().log_softmax(dim=2).transpose(0, 1)  # T, N, C
    n, steps = logits.shape[0], logits.shape[1]
    too_long = _ctc_too_long(targets, target_lengths, steps)
    if too_long:
        log.warning("%d of %d labels in this batch need more than its %d CTC time steps (length + repeated "
                    "adjacent characters; the steps follow the padded batch width): they add no loss",
                    too_long, n, steps)
    input_lengths = torch.full((n,), steps, dtype=torch.long, device=logits.device)
    loss = F.ctc_loss(log_probs, targets.to(logits.device), input_lengths, target_lengths.to(logits.device),
                      blank=0, reduction="sum", zero_infinity=True)
    return loss / n


def _warp_grid(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Piecewise-bilinear warp moving the 2 x K control points ``src`` (top row, bottom row) to ``dst``."""
    h, w = image.shape[:2]
    xs = np.arange(w, dtype=np.float32)
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    # displacement at the top and bottom edges, interpolated along x between control columns
    top = np.stack([np.interp(xs, dst[0, :, 0], src[0, :, k] - dst[0, :, k]) for k in (0, 1)], -1)
    bottom = np.stack([np.interp(xs, dst[1, :, 0], src[1, :, k] - dst[1, :, k]) for k in (0, 1)], -1)
    disp = top[None] * (1 - ys[..., None]) + bottom[None] * ys[..., None]
    map_x = (xs[None, :] + disp[..., 0]).astype(np.float32)
    map_y = (ys * (h - 1) + disp[..., 1]).astype(np.float32)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _control(w: int, h: int, segments: int) -> np.ndarray:
    xs = np.linspace(0, w - 1, segments + 1, dtype=np.float32)
    return np.stack([np.stack([xs, np.zeros_like(xs)], -1), np.stack([xs, np.full_like(xs, h - 1)], -1)])


def tia_distort(rng: np.random.Generator, image: np.ndarray, segments: int = 4) -> np.ndarray:
    """TIA distort: every control point of the top and bottom edges moves up to h/4 in x and y."""
    h, w = image.shape[:2]
    src = _control(w, h, segments)
    dst = src + rng.uniform(-h / 4, h / 4, src.shape).astype(np.float32)
    dst[:, 0, 0], dst[:, -1, 0] = 0, w - 1  # keep the ends inside
    dst[:, :, 0] = np.sort(dst[:, :, 0], axis=1)
    return _warp_grid(image, src, dst)


def tia_stretch(rng: np.random.Generator, image: np.ndarray, segments: int = 4) -> np.ndarray:
    """TIA stretch: inner column positions move in x only, so segments widen and narrow."""
    h, w = image.shape[:2]
    src = _control(w, h, segments)
    shift = rng.uniform(-0.4, 0.4, segments + 1).astype(np.float32) * (w / segments)
    shift[0] = shift[-1] = 0
    dst = src.copy()
    dst[:, :, 0] = np.sort(np.clip(src[:, :, 0] + shift, 0, w - 1), axis=1)
    return _warp_grid(image, src, dst)


def tia_perspective(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """TIA perspective: the left and right edges shrink or grow vertically by up to h/3."""
    h, w = image.shape[:2]
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float32)
    d = rng.uniform(0, h / 3, 4).astype(np.float32)
    dst = np.array([[0, d[0]], [w - 1, d[1]], [w - 1, h - 1 - d[2]], [0, h - 1 - d[3]]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def augment(rng: np.random.Generator, image: np.ndarray, tia_prob: float, bda_prob: float) -> np.ndarray:
    """One of the TIA warps with ``tia_prob`` (images at least 20 px high and wide), then degradations with
    ``bda_prob``."""
    if rng.random() < tia_prob and image.shape[0] >= 20 and image.shape[1] >= 20:
        kind = int(rng.integers(3))
        image = (tia_distort, tia_stretch, tia_perspective)[kind](rng, image)
    if rng.random() < bda_prob:
        image = degrade(rng, image, strength=0.6)
    return image


# a synthetic batch's width/height limit and how often each is drawn: 10 is the v2 input's own
# 320/32 (inference pads every shorter crop to it), the others admit longer lines
SYNTH_RATIO_LIMITS = (10.0, 20.0, 40.0)
SYNTH_LIMIT_SHARES = (0.55, 0.25, 0.2)


@dataclass
class RecData:
    """The ``train.data`` section: label files to train on, synthetic lines rendered on the fly, and
    a label file to evaluate on.

    ``synth`` names a synthetic language (``en`` or ``en+zh``, see ``ocrlite.train.synth``); each
    training sample is then rendered fresh with probability ``synth_share`` (always when there are
    no label files), with fonts from ``fonts`` and words from ``words``; ``scene_share`` of the
    English samples are scene-style words rather than document lines, and with ``en+zh``, ``zh_share`` of all
    samples are Chinese lines. ``width_multiple`` rounds every
    batch's padded width up to a multiple of it: 1 pads exactly as inference does; on CUDA, 32 keeps
    the number of distinct input shapes small, so cuDNN reuses its execution plans instead of
    building new ones for almost every batch (measured on an H100: 0.5 s/step before, see
    configs/train/rec_ppocrv2_en.yaml).
    """

    train: list[str] = field(default_factory=list)
    eval: str | None = ""  # the label file scored during training; "" or null: no evaluation
    eval_limit: int = setting(500, low=0)  # score only the first N lines of ``eval`` (0: all, as in the cls task)
    synth: str = setting("", choices=("", *LANGS))  # "": no synthetic lines
    synth_share: float = setting(1.0, low=0.0, high=1.0)
    scene_share: float = setting(SCENE_SHARE, low=0.0, high=1.0)
    zh_share: float = setting(ZH_SHARE, low=0.0, high=1.0)
    width_multiple: int = setting(1, low=1)
    fonts: str = str(FONT_ROOT)
    words: str = str(WORDS_FILE)

    def __post_init__(self) -> None:
        if self.eval is None:
            self.eval = ""
        if not self.train and not self.synth:
            raise ConfigError("train.data: give label files (train) or a synthetic language (synth)")


@dataclass
class RecAugment:
    """The ``train.augment`` section."""

    tia_prob: float = setting(0.3, low=0.0, high=1.0)
    bda_prob: float = setting(0.3, low=0.0, high=1.0)


class RecTask:
    """CTC recognizer training from ``path<TAB>text`` label files (see the module docstring)."""

    name = "rec"
    metric = "word_acc"
    tiebreak = "one_minus_ned"  # keep-best: of evaluations with the same word accuracy, the closer reading

    def __init__(self, stage: dict[str, Any], batch_size: int) -> None:
        self.stage = stage
        train = stage.get("train") or {}
        self.data: RecData = build_settings(RecData, "train.data", train.get("data"))
        self.augment: RecAugment = build_settings(RecAugment, "train.augment", train.get("augment"))
        self.center: CenterLossSettings | None = None
        if train.get("center_loss") is not None:
            self.center = build_settings(CenterLossSettings, "train.center_loss", train["center_loss"])
        self.centers: CenterBank | None = None
        self.spec: StageSpec = stage_spec("rec", stage)
        self.pre: RecPreprocess = self.spec.pre
        assert self.spec.charset is not None  # a rec stage always has one
        self.charset: Charset = self.spec.charset
        self.batch_size = batch_size
        self.samples: list[tuple[Path, str]] = []
        self.label_files: dict[str, dict[str, int]] = {}  # per label file read: its lines and how many rejected
        for label_file in self.data.train:
            self.samples += self._read(label_file)
        if self.data.train and not self.samples:
            raise ConfigError(f"train.data.train: no usable samples in {', '.join(self.data.train)}")
        self.eval_samples: list[tuple[Path, str]] = []  # read now: a bad eval file fails the start, not step N
        if self.data.eval:
            self.eval_samples = self._read(self.data.eval)[: self.data.eval_limit or None]
            if not self.eval_samples:
                raise ConfigError(f"train.data.eval: no usable samples in {self.data.eval}")
            for path, _ in self.eval_samples:  # decoded whole: a truncated image fails here, not the evaluation
                image_size(path)
                read_image(path)
        ratios = np.array([_ratio(path) for path, _ in self.samples], dtype=np.float64)
        self.order = np.argsort(ratios, kind="stable")  # samples by width/height, for ratio batches
        self.synth: Synthesizer | None = None
        if self.data.synth:
            fonts = FontBank(Path(self.data.fonts))
            self.synth = Synthesizer(self.charset, self.data.synth, self.pre.height, fonts,
                                     load_words(Path(self.data.words)), self.data.scene_share,
                                     self.data.zh_share)

    def _read(self, label_file: str) -> list[tuple[Path, str]]:
        """The samples of ``label_file``; its line and rejected counts go to ``label_files``."""
        samples, rejected = read_label_file(label_file, self.charset)
        self.label_files[label_file] = {"lines": len(samples) + rejected, "rejected": rejected}
        return samples

    def files(self) -> list[Path]:
        """Every file the task reads: label files, images (training, then evaluation), fonts and the word list
        (for the data manifest)."""
        files = [Path(f) for f in self.label_files] + [path for path, _ in [*self.samples, *self.eval_samples]]
        if self.synth is not None:
            files += self.synth.fonts.files()
            files += [Path(self.data.words)] if Path(self.data.words).is_file() else []
        return list(dict.fromkeys(files))

    def scored_data(self) -> dict[str, str] | None:
        """The evaluation samples (``data.scored_data``): each image's sha256 and its text."""
        return scored_data("train.data.eval", [(sha256_file(path), text) for path, text in self.eval_samples])

    def build_model(self) -> nn.Module:
        """The stage's net; with the center loss also a fresh ``CenterBank`` sized by its last Linear."""
        net = self.spec.build_net()
        if self.center is not None:
            last = _last_linear(net)
            self.centers = CenterBank(last.out_features, last.in_features)
        return net

    def task_tensors(self) -> dict[str, Tensor]:
        """The center-loss centers (for the checkpoint); none without the center loss."""
        return self.centers.tensors() if self.centers is not None else {}

    def load_task_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore the centers from a checkpoint (after ``build_model``)."""
        if self.centers is not None:
            self.centers.load(tensors)

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        """``batch_size`` samples, every random choice from ``rng``.

        Label-file samples come from a random window of ``4 * batch_size`` neighbours in ratio order,
        so they have similar widths, as the inference predictor batches crops; synthetic samples
        (``train.data.synth``) are rendered fresh, all under one width/height limit drawn per batch
        (``SYNTH_RATIO_LIMITS``), so short lines are not padded to the width of the longest.
        """
        n, size = len(self.order), self.batch_size
        rendered = size if not n else int(rng.binomial(size, self.data.synth_share)) if self.synth else 0
        picks: np.ndarray = np.zeros(0, dtype=np.int64)
        if size - rendered:
            window = min(n, 4 * size)
            start = int(rng.integers(0, n - window + 1))
            picks = self.order[start + rng.choice(window, size=min(size - rendered, window), replace=False)]
        crops, texts = [], []
        for index in picks:
            path, text = self.samples[int(index)]
            crops.append(read_image(path))
            texts.append(text)
        limit = float(rng.choice(SYNTH_RATIO_LIMITS, p=SYNTH_LIMIT_SHARES))
        for _ in range(rendered):
            crop, text = self._render(rng, limit)
            crops.append(crop)
            texts.append(text)
        crops = [augment(rng, crop, self.augment.tia_prob, self.augment.bda_prob) for crop in crops]
        return self.collate(crops, texts)

    def _render(self, rng: np.random.Generator, limit: float, tries: int = 8) -> tuple[np.ndarray, str]:
        """A synthetic sample no wider than ``limit`` times its height (the last try is kept regardless)."""
        assert self.synth is not None
        for _ in range(tries):
            crop, text = self.synth.draw(rng)
            if crop.shape[1] <= limit * crop.shape[0]:
                break
        return crop, text

    def collate(self, crops: Sequence[np.ndarray], texts: Sequence[str]) -> dict[str, Tensor]:
        """Images padded exactly as ``TextRecognizer`` pads them, and the CTC targets."""
        multiple = self.data.width_multiple
        width = -(-rec_batch_width(crops, self.pre.height, self.pre.width) // multiple) * multiple
        images = np.ascontiguousarray(line_batch(crops, self.pre.height, width, self.pre.mean, self.pre.std))
        encoded = [self.charset.encode(text) for text in texts]
        return {
            "image": torch.from_numpy(images),
            "targets": torch.tensor([i for e in encoded for i in e], dtype=torch.long),
            "target_lengths": torch.tensor([len(e) for e in encoded], dtype=torch.long),
        }

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """CTC, plus ``weight`` x the center loss on the last Linear's input when ``train.center_loss`` is set."""
        if self.center is None:
            loss = ctc_loss(model(batch["image"]), batch["targets"], batch["target_lengths"])
            return loss, {"ctc": float(loss.detach())}
        if self.centers is None:
            raise RuntimeError("the center loss needs RecTask.build_model to have made the centers")
        features: list[Tensor] = []
        hook = _last_linear(model).register_forward_pre_hook(lambda _module, args: features.append(args[0]))
        try:
            logits = model(batch["image"])
        finally:
            hook.remove()
        ctc = ctc_loss(logits, batch["targets"], batch["target_lengths"])
        if self.center.labels == "aligned":
            labels = ctc_align(logits, batch["targets"], batch["target_lengths"])
        else:
            labels = greedy_labels(logits)
        center = self.centers.step(features[-1], labels, self.center.rate)
        return ctc + self.center.weight * center, {"ctc": float(ctc.detach()), "center": float(center.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Case-sensitive word accuracy and 1 - NED on the eval label file, through ``TextRecognizer``."""
        if not self.eval_samples:
            return {}
        samples = self.eval_samples
        was_training = model.training
        recognizer = TextRecognizer(TorchRunner(model, softmax=True, channels_last=False), self.pre, self.charset)
        try:
            preds = [d.text for d in recognizer([read_image(path) for path, _ in samples])]
        finally:
            model.train(was_training)
        scores = evaluate_recognition(preds, [text for _, text in samples], case_sensitive=True)
        return {"word_acc": scores.accuracy, "one_minus_ned": scores.one_minus_ned}


def _last_linear(model: nn.Module) -> nn.Linear:
    """The Linear that makes the CTC logits: the last one in the model's head."""
    head = model.get_submodule("head") if hasattr(model, "head") else model
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("train.center_loss: the model's head has no Linear layer to take features from")
    return linears[-1]


def _ratio(path: Path) -> float:
    """Width / height of an image, from its header."""
    width, height = image_size(path)
    return width / max(height, 1)
