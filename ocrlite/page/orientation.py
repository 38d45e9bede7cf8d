"""Page orientation (0/90/180/270): the page classifier fused with the evidence of the page's text lines.

``PageOrientationClassifier`` is PaddleClas's text-image orientation model (PP-LCNet x1.0), fed 224x224
squares normalised with the ImageNet mean/std (BGR channel order, as the exported model was fed). It was
trained on the page resized to a short side of 256 and centre-cropped (view ``centre``); by default it sees
the whole page padded white to a square (``padded``) and three squares along the page's long side
(``tiles``), which keep the text a centre crop cuts off a wide photo (``page_views``). Its label is the
clockwise angle by which the content is turned; rotating the page back by that angle (counter-clockwise)
makes it upright.

The page's orientation is decided from these sources (``PageOrientationClassifier.decide``):

- the classifier, run on each square and on its three quarter turns, each answer turned back to the page's
  frame, combined as a geometric mean per square, then averaged per view and over the views
  (``turned_log_probabilities``; one batch of 16 inputs with the default views);
- the text itself (``text_evidence``): the lines the detector finds on the page as given. A line much
  longer than high says whether the page is turned by 0/180 (wide) or 90/270 (tall), and the line
  direction classifier's 0/180 answer on its crop (``crop_quad`` turns tall crops counter-clockwise)
  picks one of the two. Each line adds its log-vote, weighted by how elongated it is;
- only while the page is in doubt (fused probability below ``recheck``), the recognizer
  (``reading_evidence``, through a ``TextProbe``): the longest few lines read as given and turned 180
  degrees; text read upside down gets a low mean CTC confidence. If the page is still in doubt, the page
  turned a quarter clockwise is detected and its lines weighed the same way (line shape, direction and
  reading), each vote moved back a quarter: a photo's words that the detector misses or mis-shapes on the
  page as given are often found on the page turned the other way.

Many long lines (documents) outweigh the classifier and end the decision after the first two sources
(where no classifier answer could change it, the classifier is not run); a few short words (scene photos)
leave the classifier most of the say, and there the recognizer helps.
When the page is upright, its detections (``PageLines``) are reused to read it: the detector runs once
(twice on a page in doubt).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ocrlite.backends import Runner
from ocrlite.errors import ConfigError
from ocrlite.predictors import runner_and_spec
from ocrlite.preprocess import is_tall, normalize, quad_size
from ocrlite.results import TextBox
from ocrlite.settings import PagePostprocess, PagePreprocess
from ocrlite.stages import PAGE_KIND, StageSpec

__all__ = [
    "PageLines",
    "TextProbe",
    "text_evidence",
    "reading_evidence",
    "PageOrientationClassifier",
    "page_crop",
    "page_views",
]

_ROTATE_CW = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
_QUARTERS = (0, 90, 180, 270)
# Text evidence: a line counts when its long side is at least _LINE_ASPECT times its short side (shorter
# boxes -- single characters, blobs -- do not show the text's axis); its weight grows with elongation up
# to _FULL_ASPECT; _LINE_DOUBT of each line's vote is spread over all four angles (a line may be misread).
_LINE_ASPECT = 1.5
_FULL_ASPECT = 10.0
_LINE_DOUBT = 0.2
# The classifier's probabilities are clipped to _MIN_PROBABILITY before their log is taken.
_MIN_PROBABILITY = 1e-6
# Reading evidence: a mean CTC confidence below _MIN_CONFIDENCE (an empty reading scores 0) counts as it.
_MIN_CONFIDENCE = 0.02


@dataclass(frozen=True)
class PageLines:
    """The text lines found on a page as given: boxes (reading order) whose crops are not empty, the crops
    (``crop_quad``: tall ones turned counter-clockwise) and the line direction classifier's (angle, score)
    per crop, or None when the pipeline has no line classifier."""

    boxes: tuple[TextBox, ...]
    crops: tuple[np.ndarray, ...]
    directions: tuple[tuple[int, float], ...] | None


@dataclass(frozen=True)
class TextProbe:
    """What the pipeline lends the orientation decision while a page is in doubt: ``detect`` finds the lines of
    a page as given (``PageLines``), ``confidence`` gives the recognizer's mean CTC confidence of each crop,
    read as given."""

    detect: Callable[[np.ndarray], PageLines]
    confidence: Callable[[Sequence[np.ndarray]], list[float]]


def _elongation(box: TextBox) -> tuple[float, int, bool]:
    """(long side / short side, long side, whether ``crop_quad`` turns the crop) of a line box."""
    width, height = quad_size(box.points)
    return max(width, height) / max(1, min(width, height)), max(width, height), is_tall(width, height)


def text_evidence(lines: PageLines) -> np.ndarray:
    """Log-evidence for the page's content being turned clockwise by 0/90/180/270 degrees, from its lines:
    wide lines vote for 0/180, tall ones for 90/270, split by the line classifier's 0/180 probability
    (even without one); each vote weighted by min(long/short side, 10) / 10."""
    evidence = np.zeros(4)
    for i, box in enumerate(lines.boxes):
        aspect, _, tall = _elongation(box)
        if aspect < _LINE_ASPECT:
            continue
        flipped = 0.5
        if lines.directions is not None:
            angle, score = lines.directions[i]
            flipped = score if angle == 180 else 1.0 - score
        upright = 1 if tall else 0  # index of 90 or 0: a turned tall crop reads upright at 90
        vote = np.full(4, _LINE_DOUBT / 4)
        vote[upright] += (1 - _LINE_DOUBT) * (1 - flipped)
        vote[upright + 2] += (1 - _LINE_DOUBT) * flipped
        evidence += min(aspect, _FULL_ASPECT) / _FULL_ASPECT * np.log(vote)
    return evidence


def reading_evidence(lines: PageLines, confidence: Callable[[Sequence[np.ndarray]], list[float]],
                     count: int, weight: float) -> np.ndarray:
    """Log-evidence for 0/90/180/270 from the recognizer: the ``count`` longest lines at least 1.5 times longer
    than high are read as given and turned 180 degrees; with mean CTC confidences c and c' (at least 0.02),
    each adds ``weight`` * min(long/short side, 10) / 10 times log c to the angle at which its crop reads
    upright as given (0 when wide, 90 when tall) and times log c' to the opposite angle."""
    shapes = [_elongation(box) for box in lines.boxes]
    elongated = [i for i, (aspect, _, _) in enumerate(shapes) if aspect >= _LINE_ASPECT]
    picked = sorted(elongated, key=lambda i: -shapes[i][1])[:count]
    evidence = np.zeros(4)
    if not picked:
        return evidence
    crops = [lines.crops[i] for i in picked]
    scores = np.log(np.clip(confidence(crops + [cv2.rotate(crop, cv2.ROTATE_180) for crop in crops]),
                            _MIN_CONFIDENCE, 1.0))
    for k, i in enumerate(picked):
        aspect, _, tall = shapes[i]
        upright = 1 if tall else 0
        share = weight * min(aspect, _FULL_ASPECT) / _FULL_ASPECT
        evidence[upright] += share * scores[k]
        evidence[upright + 2] += share * scores[len(picked) + k]
    return evidence


def _beyond_reach(text: np.ndarray, floor: float) -> bool:
    """Whether no classifier answer (log-probabilities between log ``_MIN_PROBABILITY`` and 0 for each angle)
    added to the text evidence could change its top angle or bring that angle's probability below ``floor``."""
    if floor >= 1.0:
        return False
    runner_up, best = np.sort(text)[-2:]
    needed = -math.log(_MIN_PROBABILITY) + (max(0.0, math.log(3 * floor / (1 - floor))) if floor > 0 else 0.0)
    return bool(best - runner_up >= needed)


def _softmax(score: np.ndarray) -> np.ndarray:
    weights = np.exp(score - score.max())
    return weights / weights.sum()


def page_crop(image: np.ndarray, resize_short: int, crop: int) -> np.ndarray:
    """Resize (Lanczos) so the short side is ``resize_short``, then cut the centre ``crop`` x ``crop``."""
    height, width = image.shape[:2]
    scale = resize_short / min(height, width)
    size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4)
    top, left = (size[1] - crop) // 2, (size[0] - crop) // 2
    return resized[top : top + crop, left : left + crop]


def _square(image: np.ndarray, crop: int) -> np.ndarray:
    return cv2.resize(image, (crop, crop), interpolation=cv2.INTER_AREA)


def page_views(image: np.ndarray, pre: PagePreprocess) -> list[list[np.ndarray]]:
    """The classifier's input squares of a page, grouped by view (``PagePreprocess.views``, in that order)."""
    height, width = image.shape[:2]
    side, long = min(height, width), max(height, width)
    views = []
    for view in pre.views:
        if view == "centre":
            views.append([page_crop(image, pre.resize_short, pre.crop)])
        elif view == "padded":
            top, left = (long - height) // 2, (long - width) // 2
            padded = cv2.copyMakeBorder(image, top, long - height - top, left, long - width - left,
                                        cv2.BORDER_CONSTANT, value=(255, 255, 255))
            views.append([_square(padded, pre.crop)])
        else:  # tiles: start, middle and end of the long side
            starts = [int(f * (long - side)) for f in (0.0, 0.5, 1.0)]
            cut = [image[:, x : x + side] if width >= height else image[x : x + side] for x in starts]
            views.append([_square(tile, pre.crop) for tile in cut])
    return views


class PageOrientationClassifier:
    """0/90/180/270 page orientation: BGR page -> (clockwise angle of its content, probability)."""

    def __init__(self, runner: Runner, pre: PagePreprocess, post: PagePostprocess) -> None:
        if not pre.views:
            raise ConfigError("page.preprocess.views: name at least one of centre, padded, tiles")
        self.runner, self.pre, self.post = runner, pre, post

    @classmethod
    def from_config(
        cls, config: str | Path | dict[str, Any] | StageSpec | None = None, overrides: Iterable[str] = (), *,
        runner: Runner | None = None,
    ) -> PageOrientationClassifier:
        """Build from a stage config (default: the shipped ``page_cls_pplcnet.yaml``) or a resolved spec."""
        runner, spec = runner_and_spec(PAGE_KIND, config, overrides, runner)
        return cls(runner, spec.pre, spec.post)

    def probabilities(self, squares: Sequence[np.ndarray]) -> np.ndarray:
        """N x len(labels) class probabilities of ``crop`` x ``crop`` input squares."""
        return self.runner(np.stack([normalize(square, self.pre.mean, self.pre.std) for square in squares]))

    def __call__(self, image: np.ndarray) -> tuple[int, float]:
        """The classifier alone, on the page as given: the most likely clockwise angle and its probability
        (averaged over the squares of each view, then over the views)."""
        probs = np.mean([self.probabilities(view).mean(axis=0) for view in page_views(image, self.pre)], axis=0)
        best = int(np.argmax(probs))
        return int(self.post.labels[best]), float(probs[best])

    def turned_log_probabilities(self, image: np.ndarray) -> np.ndarray:
        """Mean log-probability of each of 0/90/180/270 over every input square and its three clockwise quarter
        turns (turning a square by k quarters turns its content by k quarters too), averaged per view, then
        over the views; one batch."""
        views = page_views(image, self.pre)
        squares = [square for view in views for square in view]
        turns = [turn for square in squares
                 for turn in [square] + [cv2.rotate(square, _ROTATE_CW[angle]) for angle in _QUARTERS[1:]]]
        probs = np.log(np.clip(self.probabilities(turns), _MIN_PROBABILITY, 1.0)).reshape(len(squares), 4, -1)
        column = {int(label): i for i, label in enumerate(self.post.labels)}
        per_square = np.array([[
            np.mean([probs[n, k, column[(angle + turn) % 360]] for k, turn in enumerate(_QUARTERS)])
            for angle in _QUARTERS] for n in range(len(squares))])
        bounds = np.cumsum([0] + [len(view) for view in views])
        return np.mean([per_square[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])], axis=0)

    def fused_probabilities(self, image: np.ndarray, lines: PageLines, probe: TextProbe | None = None) -> np.ndarray:
        """Probabilities of the page's content being turned clockwise by 0/90/180/270: the classifier over
        four turns of its input squares, times the evidence of its text lines; with a ``probe``, while the top
        probability stays below ``recheck``: times the recognizer's readings of those lines, then times the
        evidence of the page turned a quarter clockwise (module docstring). When the lines alone decide
        beyond anything the classifier could answer (a form's many lines), it is not run: the angle is the
        one it would give, the probabilities are the lines' alone."""
        text = text_evidence(lines)
        if _beyond_reach(text, max(self.post.recheck, self.post.thresh)):
            return _softmax(text)
        score = self.turned_log_probabilities(image) + text
        if probe is None or _softmax(score).max() >= self.post.recheck:
            return _softmax(score)
        count, weight = self.post.read_lines, self.post.read_weight
        score = score + reading_evidence(lines, probe.confidence, count, weight)
        if _softmax(score).max() < self.post.recheck:
            quarter = probe.detect(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE))
            # its content is turned a quarter further: its evidence for angle a + 90 is evidence for a
            score = score + np.roll(text_evidence(quarter) + reading_evidence(quarter, probe.confidence, count, weight),
                                    -1)
        return _softmax(score)

    def decide(self, image: np.ndarray, lines: PageLines, probe: TextProbe | None = None) -> tuple[int, float]:
        """The most likely clockwise angle of the page's content (classifier and text fused), its probability."""
        probs = self.fused_probabilities(image, lines, probe)
        best = int(np.argmax(probs))
        return _QUARTERS[best], float(probs[best])

    def correction(self, image: np.ndarray, lines: PageLines, probe: TextProbe | None = None) -> tuple[int, float]:
        """(angle to undo, probability): the decided angle when its probability reaches ``thresh``, else 0."""
        angle, score = self.decide(image, lines, probe)
        return (angle if score >= self.post.thresh else 0), score
