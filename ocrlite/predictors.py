"""The three stage predictors: image or crops in, typed results out.

Each predictor = pre-processing (``preprocess``) -> a runner (a net) -> post-processing
(``postprocess``), with settings from a resolved ``StageSpec`` (``ocrlite.stages``). Each takes an image, or a
list of crops, as ``OCR`` does (``ocrlite.io.arguments``): a BGR uint8 array is used as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.backends import Runner
from ocrlite.charset import Charset
from ocrlite.config import override_strings
from ocrlite.errors import ConfigError
from ocrlite.io.arguments import ImageLike, image_array, image_arrays
from ocrlite.postprocess import (
    CTCDecoded,
    DBPostProcess,
    classify_angles,
    ctc_decode_top1,
    ctc_greedy_decode,
    needs_flip,
    sort_reading_order,
)
from ocrlite.preprocess import MAX_LINE_RATIO, det_resize, line_batch, line_width, normalize, rec_batch_width
from ocrlite.results import TextBox
from ocrlite.settings import ClsPostprocess, DetPreprocess, LinePreprocess, RecPreprocess
from ocrlite.stages import StageSpec, stage_overrides, stage_spec

__all__ = [
    "check_runner",
    "runner_and_spec",
    "TextDetector",
    "TextClassifier",
    "TextRecognizer",
]


def check_runner(runner: Runner | None, name: str) -> None:
    """A TypeError naming argument ``name`` when ``runner`` is neither None nor a runner (a callable)."""
    if runner is not None and not callable(runner):
        raise TypeError(f"{name} must be a runner (a callable: float32 NCHW batch -> numpy array) or None, "
                        f"got {type(runner).__name__}")


def runner_and_spec(kind: str, config: str | Path | dict[str, Any] | StageSpec | None,
                     overrides: Iterable[str], runner: Runner | None) -> tuple[Runner, StageSpec]:
    """The stage's spec and a runner: the given one (same pre/post settings), else the spec's own. ``overrides``
    may name keys with the stage's prefix, as ``--set`` does (``rec.preprocess.batch_size=8``). A resolved spec
    of another stage, or one given with ``overrides`` (they apply to a config), is a ConfigError."""
    check_runner(runner, "runner")
    if not isinstance(config, StageSpec):  # keys as the pipeline tree names them (rec.preprocess...) or stage-local
        named = "shipped with ocrlite" if config is None else (
            config if isinstance(config, (str, Path)) else "given as a mapping")
        spec = stage_spec(kind, config, stage_overrides(kind, override_strings(overrides), named))
    elif config.kind != kind:
        raise ConfigError(f"expected a {kind} stage spec, got the {config.kind} stage's")
    elif override_strings(overrides):
        raise ConfigError("overrides apply to a stage config, not to a resolved StageSpec: resolve the spec with "
                          "them (ocrlite.stages.stage_spec)")
    else:
        spec = config
    return (runner if runner is not None else spec.build_runner()), spec


_CLS_CHUNK = 64  # crops per classifier call


def _ratio_batches(crops: Sequence[np.ndarray], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``crops`` in batches of similar width/height ratio (narrowest first).

    Crops wider than ``MAX_LINE_RATIO`` (no real text line is) come last, batched only with each other: each is
    squeezed to exactly the capped width, so they neither pad the lines' batches nor change each other's input.
    """
    ratios = [crop.shape[1] / crop.shape[0] for crop in crops]
    order = sorted(range(len(crops)), key=ratios.__getitem__)
    lines = [i for i in order if ratios[i] <= MAX_LINE_RATIO]
    for group in (lines, order[len(lines):]):
        for start in range(0, len(group), max(1, batch_size)):
            yield group[start : start + batch_size]


class TextDetector:
    """DBNet text detection: BGR image -> text boxes in reading order."""

    def __init__(self, runner: Runner, pre: DetPreprocess, post: DBPostProcess) -> None:
        self.runner, self.pre, self.post = runner, pre, post

    @classmethod
    def from_config(
        cls, config: str | Path | dict[str, Any] | StageSpec | None = None, overrides: Iterable[str] = (), *,
        runner: Runner | None = None,
    ) -> TextDetector:
        """Build from a stage config (default: the shipped detector) or a resolved spec."""
        runner, spec = runner_and_spec("det", config, overrides, runner)
        return cls(runner, spec.pre, spec.post)

    def probability_map(self, image: ImageLike) -> np.ndarray:
        """The net's text probability map for ``image`` at the resized input's size."""
        resized, _, _ = det_resize(image_array(image), self.pre.limit_side_len, self.pre.limit_type)
        batch = normalize(resized, self.pre.mean, self.pre.std)[None]
        return self.runner(batch)[0, 0]

    def __call__(self, image: ImageLike) -> list[TextBox]:
        """Text boxes of ``image`` (a path or an array, as ``OCR`` takes it) in reading order."""
        image = image_array(image)
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
        cls, config: str | Path | dict[str, Any] | StageSpec | None = None, overrides: Iterable[str] = (), *,
        runner: Runner | None = None,
    ) -> TextClassifier:
        """Build from a stage config (default: the shipped classifier) or a resolved spec."""
        runner, spec = runner_and_spec("cls", config, overrides, runner)
        return cls(runner, spec.pre, spec.post)

    def __call__(self, crops: Iterable[ImageLike]) -> list[tuple[int, float]]:
        """(angle, score) per crop (a list of paths or arrays, as ``OCR.classify`` takes it), in input order."""
        crops = image_arrays(crops)
        if not crops:
            return []
        # The input size is fixed (each crop padded to pre.width), so batching cannot change a crop's
        # result: one call for all crops, in chunks of _CLS_CHUNK to bound memory.
        results: list[tuple[int, float]] = []
        for start in range(0, len(crops), _CLS_CHUNK):
            chunk = crops[start : start + _CLS_CHUNK]
            inputs = line_batch(chunk, self.pre.height, self.pre.width, self.pre.mean, self.pre.std)
            results += classify_angles(self.runner(inputs), self.post.labels)
        return results

    def should_flip(self, angle: int, score: float) -> bool:
        """Rotate a crop by 180 degrees only when the classifier is confident it is upside down."""
        return needs_flip(angle, score, self.post.thresh)


class TextRecognizer:
    """CTC text-line recognizer: crops -> decoded text with scores and time steps."""

    def __init__(self, runner: Runner, pre: RecPreprocess, charset: Charset) -> None:
        self.runner, self.pre, self.charset = runner, pre, charset

    @classmethod
    def from_config(
        cls, config: str | Path | dict[str, Any] | StageSpec | None = None, overrides: Iterable[str] = (), *,
        runner: Runner | None = None,
    ) -> TextRecognizer:
        """Build from a stage config (default: the shipped recognizer) or a resolved spec."""
        runner, spec = runner_and_spec("rec", config, overrides, runner)
        assert spec.charset is not None  # every rec spec has one
        return cls(runner, spec.pre, spec.charset)

    def __call__(self, crops: Iterable[ImageLike]) -> list[CTCDecoded]:
        """Decoded text per crop (a list of paths or arrays, as ``OCR.recognize`` takes it), in input order;
        batches share the widest ratio's width.

        A runner with ``map_batches`` (``ocrlite.backends.lanes``) reads several batches at once."""
        crops = image_arrays(crops)
        results: list[CTCDecoded] = [CTCDecoded("", 0.0, ())] * len(crops)
        batches = list(_ratio_batches(crops, self.pre.batch_size))
        map_batches = getattr(self.runner, "map_batches", None)

        def read(runner: Runner, batch: list[int]) -> list[CTCDecoded]:
            return self._read_batch(runner, [crops[i] for i in batch])

        decoded = map_batches(read, batches) if map_batches is not None else [
            read(self.runner, batch) for batch in batches]
        for batch, decoded_batch in zip(batches, decoded):
            for i, text in zip(batch, decoded_batch):
                results[i] = text
        return results

    def _read_batch(self, runner: Runner, group: list[np.ndarray]) -> list[CTCDecoded]:
        """One padded batch through ``runner``: decoded texts with each crop's input pixels per time step."""
        width = rec_batch_width(group, self.pre.height, self.pre.width)
        inputs = line_batch(group, self.pre.height, width, self.pre.mean, self.pre.std)
        top1 = getattr(runner, "top1", None)
        if top1 is not None:  # best class + probability computed by the runner, no N x T x C array
            best, best_prob = top1(inputs)
            decoded_batch = ctc_decode_top1(best, best_prob, self.charset)
        else:
            best = runner(inputs)
            decoded_batch = ctc_greedy_decode(best, self.charset)
        step = width / best.shape[1]  # input pixels per time step
        return [decoded._replace(step_width=step / min(width, line_width(crop, self.pre.height)))
                for crop, decoded in zip(group, decoded_batch)]
