"""The end-to-end pipeline: detect -> crop -> classify direction -> recognize -> filter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

from .config import check_keys, load_pipeline_config
from .errors import ConfigError
from .imageio import read_image
from .orientation import page_steps
from .postprocess import ctc_word_boxes
from .predictors import TextClassifier, TextDetector, TextRecognizer
from .presets import get_preset
from .preprocess import crop_quad
from .results import PageResult, TextBox, TextLine
from .runtime import Runner

__all__ = ["OCR", "PipelineSettings"]


@dataclass(frozen=True)
class PipelineSettings:
    """Pipeline switches: use the direction classifier, drop low-scoring lines, turn pages upright
    (0/90/180/270) and level small tilts first (``ocrlite.orientation``)."""

    use_cls: bool = True
    drop_score: float = 0.5
    page_orientation: bool = False
    deskew: bool = False


class OCR:
    """Read text from images with the three-stage PP-OCR design.

    >>> ocr = OCR()                       # shipped default models
    >>> page = ocr("page.png")            # or a BGR uint8 numpy array
    >>> print(page.text)
    >>> OCR(model="en-ppocr-v4")          # a named preset (see ``ocrlite models``)
    """

    def __init__(
        self,
        config: str | Path | None = None,
        overrides: Iterable[str] = (),
        *,
        model: str | None = None,
        det_runner: Runner | None = None,
        cls_runner: Runner | None = None,
        rec_runner: Runner | None = None,
        use_cls: bool | None = None,
        drop_score: float | None = None,
    ) -> None:
        if model is not None:
            if config is not None:
                raise ConfigError("give either config or model, not both")
            config = get_preset(model).config
        cfg = load_pipeline_config(config, overrides)
        pipeline: dict[str, Any] = dict(cfg["pipeline"])
        check_keys("pipeline", pipeline, PipelineSettings.__dataclass_fields__)
        if use_cls is not None:
            pipeline["use_cls"] = use_cls
        if drop_score is not None:
            pipeline["drop_score"] = drop_score
        self.settings = PipelineSettings(**pipeline)
        self.detector = TextDetector.from_config(cfg["det"], det_runner)
        self.recognizer = TextRecognizer.from_config(cfg["rec"], rec_runner)
        self.classifier = (
            TextClassifier.from_config(cfg["cls"], cls_runner)
            if self.settings.use_cls and "cls" in cfg
            else None
        )
        self.page_steps = page_steps(self.settings.page_orientation, self.settings.deskew, self.detector)

    def detect(self, image: np.ndarray | str | Path) -> list[TextBox]:
        """Text boxes of ``image`` in reading order."""
        return self.detector(_as_array(image))

    def __call__(self, image: np.ndarray | str | Path) -> PageResult:
        """Detect, crop, orient and recognize every text line of ``image`` (after the page steps, if on)."""
        image = _as_array(image)
        return self._read(image) if self.page_steps is None else self.page_steps(image, self._read)

    def _read(self, image: np.ndarray) -> PageResult:
        boxes = self.detect(image)
        kept = [(box, crop) for box in boxes if (crop := crop_quad(image, box.points)) is not None]
        crops = [crop for _, crop in kept]
        angles = self.orient(crops)
        decoded = self.recognizer(crops)
        lines = tuple(
            TextLine(box.points, d.text, d.score, box.score, angle, ctc_word_boxes(d, box.points, angle == 180))
            for (box, _), angle, d in zip(kept, angles, decoded)
            if d.text and d.score >= self.settings.drop_score
        )
        height, width = image.shape[:2]
        return PageResult(width=width, height=height, lines=lines)

    def orient(self, crops: list[np.ndarray]) -> list[int]:
        """Turn upside-down crops in place (180 degrees); return each crop's angle."""
        if self.classifier is None or not crops:
            return [0] * len(crops)
        angles = []
        for i, (angle, score) in enumerate(self.classifier(crops)):
            flip = self.classifier.should_flip(angle, score)
            if flip:
                crops[i] = cv2.rotate(crops[i], cv2.ROTATE_180)
            angles.append(180 if flip else 0)
        return angles

    def recognize(self, crops: Iterable[np.ndarray | str | Path]) -> list[tuple[str, float]]:
        """Text and score of already-cropped text lines (optionally direction-corrected)."""
        arrays = [_as_array(crop) for crop in crops]
        self.orient(arrays)
        return [(d.text, d.score) for d in self.recognizer(arrays)]


def _as_array(image: np.ndarray | str | Path) -> np.ndarray:
    return image if isinstance(image, np.ndarray) else read_image(image)
