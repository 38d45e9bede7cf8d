"""The three stage predictors: image or crops in, typed results out.

Each predictor = pre-processing (``preprocess``) -> a runner (a net) -> post-processing
(``postprocess``). Settings come from the weights' manifest, then the stage config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .charset import Charset
from .config import check_keys, load_stage_config
from .postprocess import (
    CTCDecoded,
    DBPostProcess,
    classify_angles,
    ctc_greedy_decode,
    needs_flip,
    sort_reading_order,
)
from .preprocess import det_resize, line_batch, line_width, normalize, rec_batch_width
from .results import TextBox
from .runtime import Runner, TorchRunner, load_stage_model, stage_manifest, weights_paths

__all__ = [
    "DetPreprocess",
    "LinePreprocess",
    "TextDetector",
    "TextClassifier",
    "TextRecognizer",
]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class DetPreprocess:
    """Detector input: resize under a side limit to multiples of 32, then normalise."""

    limit_side_len: int = 960
    limit_type: str = "max"
    mean: tuple[float, ...] = _IMAGENET_MEAN
    std: tuple[float, ...] = _IMAGENET_STD


@dataclass(frozen=True)
class LinePreprocess:
    """Text-line input (classifier and recognizer): fixed height, keep ratio, right-pad."""

    height: int = 48
    width: int = 192
    mean: tuple[float, ...] = _HALF
    std: tuple[float, ...] = _HALF
    batch_size: int = 6


@dataclass(frozen=True)
class ClsPostprocess:
    """Classifier decision: labels of the two outputs and the flip threshold."""

    labels: tuple[int, ...] = (0, 180)
    thresh: float = 0.9


@dataclass(frozen=True)
class RecPostprocess:
    """Recognizer decoding: the charset file (relative to the weights) and the space switch."""

    charset: str = "ppocr_keys_v1.txt"
    use_space_char: bool = True


def _settings(cls: type, section: str, *sources: dict[str, Any]) -> Any:
    """Merge mappings (later wins) into dataclass ``cls``; unknown keys are a ConfigError."""
    merged: dict[str, Any] = {}
    for source in sources:
        merged.update(source or {})
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(section, merged, names)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in merged.items()})


def _load_stage(
    config: str | Path | dict[str, Any] | None,
    default: str,
    runner: Runner | None,
    softmax: bool,
    section: str,
    pre_cls: type,
    post_cls: type,
) -> tuple[Runner, Any, Any, dict[str, Any]]:
    """Runner (our torch net unless one is given), pre- and post-settings, and the stage config.

    Settings merge the weights' manifest, then the stage config; this holds for a swapped-in
    runner too, so an ONNX Runtime run uses exactly the same pre/post-processing.
    """
    stage = config if isinstance(config, dict) else load_stage_config(config or default)
    if runner is None:
        model, manifest = load_stage_model(stage)
        runner = TorchRunner(model, softmax=softmax)
    else:
        manifest = stage_manifest(stage)
    pre = _settings(pre_cls, f"{section}.preprocess", manifest.get("preprocess"), stage["preprocess"])
    post = _settings(post_cls, f"{section}.postprocess", manifest.get("postprocess"), stage["postprocess"])
    return runner, pre, post, stage


def _ratio_batches(crops: Sequence[np.ndarray], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``crops`` in batches of similar width/height ratio (narrowest first)."""
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / crops[i].shape[0])
    for start in range(0, len(order), max(1, batch_size)):
        yield order[start : start + batch_size]


class TextDetector:
    """DBNet text detection: BGR image -> text boxes in reading order."""

    def __init__(self, runner: Runner, pre: DetPreprocess, post: DBPostProcess) -> None:
        self.runner, self.pre, self.post = runner, pre, post

    @classmethod
    def from_config(
        cls, config: str | Path | dict[str, Any] | None = None, runner: Runner | None = None
    ) -> TextDetector:
        runner, pre, post, _ = _load_stage(
            config, "det_ppocrv3.yaml", runner, False, "det", DetPreprocess, DBPostProcess
        )
        return cls(runner, pre, post)

    def probability_map(self, image: np.ndarray) -> np.ndarray:
        """The net's text probability map for ``image`` at the resized input's size."""
        resized, _, _ = det_resize(image, self.pre.limit_side_len, self.pre.limit_type)
        batch = normalize(resized, self.pre.mean, self.pre.std)[None]
        return self.runner(batch)[0, 0]

    def __call__(self, image: np.ndarray) -> list[TextBox]:
        height, width = image.shape[:2]
        found = self.post(self.probability_map(image), height, width)
        order = sort_reading_order([quad for quad, _ in found])
        return [TextBox(points=found[i][0], score=float(found[i][1])) for i in order]


class TextClassifier:
    """0/180 degree text-line direction classifier."""

    def __init__(self, runner: Runner, pre: LinePreprocess, post: ClsPostprocess) -> None:
        self.runner, self.pre, self.post = runner, pre, post

    @classmethod
    def from_config(
        cls, config: str | Path | dict[str, Any] | None = None, runner: Runner | None = None
    ) -> TextClassifier:
        runner, pre, post, _ = _load_stage(
            config, "cls_ppocr_mobile_v2.yaml", runner, True, "cls", LinePreprocess, ClsPostprocess
        )
        return cls(runner, pre, post)

    def __call__(self, crops: Sequence[np.ndarray]) -> list[tuple[int, float]]:
        """(angle, score) per crop, in input order."""
        results: list[tuple[int, float]] = [(0, 0.0)] * len(crops)
        for batch in _ratio_batches(crops, self.pre.batch_size):
            inputs = line_batch([crops[i] for i in batch], self.pre.height, self.pre.width, self.pre.mean, self.pre.std)
            for i, decision in zip(batch, classify_angles(self.runner(inputs), self.post.labels)):
                results[i] = decision
        return results

    def should_flip(self, angle: int, score: float) -> bool:
        """Rotate a crop by 180 degrees only when the classifier is confident it is upside down."""
        return needs_flip(angle, score, self.post.thresh)


class TextRecognizer:
    """CTC text-line recognizer: crops -> decoded text with scores and time steps."""

    def __init__(self, runner: Runner, pre: LinePreprocess, charset: Charset) -> None:
        self.runner, self.pre, self.charset = runner, pre, charset

    @classmethod
    def from_config(
        cls, config: str | Path | dict[str, Any] | None = None, runner: Runner | None = None
    ) -> TextRecognizer:
        runner, pre, post, stage = _load_stage(
            config, "rec_ppocrv2.yaml", runner, True, "rec", LinePreprocess, RecPostprocess
        )
        charset = Charset.from_file(_charset_path(post.charset, stage), use_space_char=post.use_space_char)
        return cls(runner, pre, charset)

    def __call__(self, crops: Sequence[np.ndarray]) -> list[CTCDecoded]:
        """Decoded text per crop, in input order; batches share the widest ratio's width."""
        results: list[CTCDecoded] = [CTCDecoded("", 0.0, ())] * len(crops)
        for batch in _ratio_batches(crops, self.pre.batch_size):
            group = [crops[i] for i in batch]
            width = rec_batch_width(group, self.pre.height, self.pre.width)
            inputs = line_batch(group, self.pre.height, width, self.pre.mean, self.pre.std)
            probs = self.runner(inputs)
            step = width / probs.shape[1]  # input pixels per time step
            for i, decoded in zip(batch, ctc_greedy_decode(probs, self.charset)):
                resized = min(width, line_width(crops[i], self.pre.height))  # the crop's share of the input
                results[i] = decoded._replace(step_width=step / resized)
        return results


def _charset_path(name: str, stage: dict[str, Any]) -> Path:
    """The charset file: absolute, beside the weights, beside the config, or shipped."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else []
    if stage.get("weights"):
        candidates.append(weights_paths(stage["weights"], stage.get("_dir"))[0].parent / path)
    if stage.get("_dir"):
        candidates.append(Path(stage["_dir"]) / path)
    shipped = Path(str(resources.files("ocrlite.weights").joinpath(name)))
    return next((c for c in candidates if c.is_file()), shipped)
