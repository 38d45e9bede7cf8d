"""Accuracy metrics: ICDAR 2015 detection and end-to-end, bag of words, word accuracy, 1 - NED, 0/180 direction.

Pure functions over numpy arrays and strings (shapely for polygon areas); nothing here runs a net
or reads a file. Counts are kept as integers and summed over a data set before P/R/H are formed,
so a data set's score is a micro-average, as in the ICDAR Robust Reading scripts.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from shapely.geometry import Polygon

__all__ = [
    "DONT_CARE",
    "GtRegion",
    "PRScores",
    "RecScores",
    "polygon_iou",
    "evaluate_detection",
    "evaluate_end_to_end",
    "same_transcription",
    "bow_tokens",
    "bag_of_words",
    "edit_distance",
    "word_accuracy",
    "correct_words",
    "paired_bootstrap",
    "bootstrap_hmean",
    "alphanumeric_accuracy",
    "norm_edit_similarity",
    "evaluate_recognition",
    "upright_and_turned",
    "direction_accuracy",
]

DONT_CARE = "###"
DONT_CARE_OVERLAP = 0.5  # a detection inside a don't-care region by more than this share is ignored


@dataclass(frozen=True)
class GtRegion:
    """One ground-truth region: a polygon (N x 2, N >= 4), its text and the don't-care flag."""

    points: np.ndarray
    text: str
    dont_care: bool = False


@dataclass(frozen=True)
class PRScores:
    """Match counts over one or many images; ``a + b`` sums counts, P/R/H are derived.

    ``matched`` true positives, ``n_pred`` cared-for predictions, ``n_gt`` cared-for ground truths.
    Precision (recall) is 0 when there are no predictions (ground truths).
    """

    matched: int = 0
    n_pred: int = 0
    n_gt: int = 0

    def __add__(self, other: PRScores) -> PRScores:
        return PRScores(
            self.matched + other.matched, self.n_pred + other.n_pred, self.n_gt + other.n_gt
        )

    @property
    def precision(self) -> float:
        return self.matched / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.n_gt if self.n_gt else 0.0

    @property
    def hmean(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    f1 = hmean

    def row(self) -> dict[str, float | int]:
        """Percentages and counts, ready for a table."""
        return {
            "precision": round(100 * self.precision, 2),
            "recall": round(100 * self.recall, 2),
            "hmean": round(100 * self.hmean, 2),
            "matched": self.matched,
            "n_pred": self.n_pred,
            "n_gt": self.n_gt,
        }


@dataclass(frozen=True)
class RecScores:
    """Recognition scores over ``n`` word pairs: exact-match accuracy and 1 - mean NED."""

    n: int
    accuracy: float
    one_minus_ned: float

    def row(self) -> dict[str, float | int]:
        """Percentages and the sample count, ready for a table."""
        return {
            "n": self.n,
            "accuracy": round(100 * self.accuracy, 2),
            "1-NED": round(100 * self.one_minus_ned, 2),
        }


# --- polygons -----------------------------------------------------------------------------------


def _polygon(points: np.ndarray) -> Polygon:
    """A valid shapely polygon from N x 2 points; a self-crossing quad is repaired by buffer(0)."""
    poly = Polygon(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    return poly if poly.is_valid else poly.buffer(0)


def polygon_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two polygons given as N x 2 points (0 for degenerate ones)."""
    return _iou(_polygon(a), _polygon(b))


def _iou(a: Polygon, b: Polygon) -> float:
    inter = a.intersection(b).area
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def _ignored_predictions(preds: list[Polygon], dont_care: list[Polygon]) -> list[bool]:
    """Flag each prediction lying inside some don't-care region by > DONT_CARE_OVERLAP of its area."""
    flags = []
    for pred in preds:
        area = pred.area
        flags.append(
            area > 0
            and any(pred.intersection(dc).area / area > DONT_CARE_OVERLAP for dc in dont_care)
        )
    return flags


def _pair_image(
    preds: Sequence[np.ndarray], gts: Sequence[GtRegion], iou_thresh: float
) -> tuple[list[tuple[int, int]], int, int]:
    """Pair one image's predictions with its ground truth by the ICDAR 2015 rules.

    Predictions overlapping a don't-care region (see ``_ignored_predictions``) and don't-care ground
    truths are set aside. The rest are paired one-to-one greedily, in the standard order: for each
    ground truth in file order, the first still-free prediction with IoU > ``iou_thresh``.
    Returns the (prediction index, ground-truth index) pairs and the cared-for counts of each side.
    """
    pred_polys = [_polygon(p) for p in preds]
    gt_polys = [_polygon(g.points) for g in gts]
    dont_care = [poly for poly, g in zip(gt_polys, gts) if g.dont_care]
    ignored = _ignored_predictions(pred_polys, dont_care) if dont_care else [False] * len(preds)
    care_preds = [i for i, skip in enumerate(ignored) if not skip]
    care_gts = [j for j, g in enumerate(gts) if not g.dont_care]

    pairs: list[tuple[int, int]] = []
    taken: set[int] = set()
    for j in care_gts:
        for i in care_preds:
            if i in taken:
                continue
            if _iou(pred_polys[i], gt_polys[j]) > iou_thresh:
                taken.add(i)
                pairs.append((i, j))
                break
    return pairs, len(care_preds), len(care_gts)


def evaluate_detection(
    preds: Sequence[Sequence[np.ndarray]],
    gts: Sequence[Sequence[GtRegion]],
    iou_thresh: float = 0.5,
) -> PRScores:
    """ICDAR 2015 text localisation (IoU protocol) over a data set.

    ``preds[k]`` are the predicted polygons (N x 2 points each) of image k, ``gts[k]`` its ground
    truth. A prediction and a ground truth match when their IoU is strictly above ``iou_thresh``,
    one-to-one, greedily (see ``_pair_image``). Don't-care regions ('###') are not counted in recall,
    and predictions that fall more than half inside one are dropped from precision. Counts are
    summed over images before precision, recall and hmean are formed.
    """
    _check_lengths(preds, gts)
    total = PRScores()
    for image_preds, image_gts in zip(preds, gts):
        pairs, n_pred, n_gt = _pair_image(image_preds, image_gts, iou_thresh)
        total = total + PRScores(len(pairs), n_pred, n_gt)
    return total


def same_transcription(pred: str, gt: str) -> bool:
    """End-to-end text equality: both stripped of surrounding whitespace, compared case-insensitively."""
    return pred.strip().casefold() == gt.strip().casefold()


def evaluate_end_to_end(
    preds: Sequence[Sequence[tuple[np.ndarray, str]]],
    gts: Sequence[Sequence[GtRegion]],
    iou_thresh: float = 0.5,
) -> PRScores:
    """ICDAR 2015 end-to-end ("generic", no lexicon) over a data set.

    ``preds[k]`` is a list of (polygon, text) for image k. Pairs are formed exactly as in
    ``evaluate_detection`` (geometry only, IoU > ``iou_thresh``); a pair is a true positive only when
    ``same_transcription`` holds (case-insensitive, surrounding whitespace stripped). A paired
    prediction with the wrong text is a false positive and its ground truth is missed. '###' regions
    are don't-care, as in detection.
    """
    _check_lengths(preds, gts)
    total = PRScores()
    for image_preds, image_gts in zip(preds, gts):
        pairs, n_pred, n_gt = _pair_image([quad for quad, _ in image_preds], image_gts, iou_thresh)
        hits = sum(same_transcription(image_preds[i][1], image_gts[j].text) for i, j in pairs)
        total = total + PRScores(hits, n_pred, n_gt)
    return total


def _check_lengths(preds: Sequence[object], gts: Sequence[object]) -> None:
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} prediction lists for {len(gts)} ground-truth lists")


# --- bag of words -------------------------------------------------------------------------------


def _strip_punctuation(token: str) -> str:
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start]).startswith("P"):
        start += 1
    while end > start and unicodedata.category(token[end - 1]).startswith("P"):
        end -= 1
    return token[start:end]


def bow_tokens(texts: Iterable[str], case_sensitive: bool = False) -> Counter[str]:
    """Multiset of normalised tokens: whitespace split, casefolded (unless ``case_sensitive``), surrounding
    Unicode punctuation (categories P*) stripped; tokens left empty (pure punctuation) are dropped."""
    tokens: Counter[str] = Counter()
    for text in texts:
        for raw in text.split():
            token = _strip_punctuation(raw if case_sensitive else raw.casefold())
            if token:
                tokens[token] += 1
    return tokens


def bag_of_words(pred_texts: Iterable[str], gt_words: Iterable[str], case_sensitive: bool = False) -> PRScores:
    """Bag-of-words match of one page: multiset intersection of ``bow_tokens`` of both sides.

    Returns counts (``matched`` tokens, ``n_pred`` predicted tokens, ``n_gt`` ground-truth tokens);
    sum pages with ``+`` and read ``.precision``, ``.recall``, ``.f1``. Order and position are ignored.
    """
    pred, gt = bow_tokens(pred_texts, case_sensitive), bow_tokens(gt_words, case_sensitive)
    return PRScores(sum((pred & gt).values()), sum(pred.values()), sum(gt.values()))


# --- word recognition ---------------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit insert, delete, substitute)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _normalise_pairs(
    preds: Sequence[str], gts: Sequence[str], case_sensitive: bool
) -> list[tuple[str, str]]:
    """Pairs stripped of surrounding whitespace and, unless case-sensitive, casefolded."""
    _check_lengths(preds, gts)
    fold = (lambda s: s.strip()) if case_sensitive else (lambda s: s.strip().casefold())
    return [(fold(p), fold(g)) for p, g in zip(preds, gts)]


def correct_words(preds: Sequence[str], gts: Sequence[str], case_sensitive: bool = False) -> list[bool]:
    """Per word: whether the prediction equals its label (after ``_normalise_pairs``)."""
    return [p == g for p, g in _normalise_pairs(preds, gts, case_sensitive)]


def word_accuracy(preds: Sequence[str], gts: Sequence[str], case_sensitive: bool = False) -> float:
    """Share of exactly equal words (after ``_normalise_pairs``); 0 for no words."""
    correct = correct_words(preds, gts, case_sensitive)
    return sum(correct) / len(correct) if correct else 0.0


def paired_bootstrap(
    scores: Sequence[float], baseline: Sequence[float], samples: int = 10000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile interval of mean(scores) - mean(baseline) when the items (scored by two systems, one
    score each, e.g. ``correct_words``) are resampled with replacement, the same items for both."""
    _check_lengths(scores, baseline)
    if not scores:
        raise ValueError("no items to resample")
    diff = np.asarray(scores, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return _interval(np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(samples)]))


def _interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap ``values``."""
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _hmeans(table: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Hmean of each resample: ``table`` rows are per-image (matched, n_pred, n_gt), ``picks`` image indices."""
    matched, n_pred, n_gt = table[picks].sum(axis=1).T
    p = np.divide(matched, n_pred, out=np.zeros_like(matched), where=n_pred > 0)
    r = np.divide(matched, n_gt, out=np.zeros_like(matched), where=n_gt > 0)
    return np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)


def bootstrap_hmean(
    counts: Sequence[PRScores], samples: int = 1000, seed: int = 0, baseline: Sequence[PRScores] | None = None
) -> tuple[float, float]:
    """95% percentile interval of the hmean when images are resampled with replacement; with ``baseline``
    (per-image counts of another detector on the same images) the interval of hmean - baseline hmean, both
    computed on the same resampled images."""
    if not counts:
        raise ValueError("no images to resample")
    table = np.array([[c.matched, c.n_pred, c.n_gt] for c in counts], dtype=np.float64)
    picks = np.random.default_rng(seed).integers(0, len(table), size=(samples, len(table)))
    values = _hmeans(table, picks)
    if baseline is not None:
        if len(baseline) != len(counts):
            raise ValueError(f"{len(baseline)} baseline images for {len(counts)} images")
        values = values - _hmeans(np.array([[c.matched, c.n_pred, c.n_gt] for c in baseline], np.float64), picks)
    return _interval(values)


def _alphanumeric(text: str) -> str:
    """``text`` lowercased with everything but the ASCII letters and digits removed: ``str.lower``, as the
    benchmarks' code does, not casefold, which would turn a non-ASCII 'ß' or 'ﬁ' into the letters 'ss', 'fi'."""
    return "".join(c for c in text.lower() if c.isascii() and c.isalnum())


def alphanumeric_accuracy(preds: Sequence[str], gts: Sequence[str]) -> float:
    """Word accuracy under the scene-text benchmarks' 36-symbol protocol: case-insensitive, only ASCII letters
    and digits compared (IIIT5K's labels leave out punctuation that is visible in the crop). Words whose label
    has no letter or digit are left out; 0 for no such words."""
    _check_lengths(preds, gts)
    pairs = [(_alphanumeric(p), _alphanumeric(g)) for p, g in zip(preds, gts)]
    pairs = [(p, g) for p, g in pairs if g]
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else 0.0


def norm_edit_similarity(
    preds: Sequence[str], gts: Sequence[str], case_sensitive: bool = False
) -> float:
    """1 - mean normalised edit distance, NED = distance / max(len(pred), len(gt)) (0 if both empty);
    0 for no words."""
    pairs = _normalise_pairs(preds, gts, case_sensitive)
    if not pairs:
        return 0.0
    ned = sum(edit_distance(p, g) / max(len(p), len(g), 1) for p, g in pairs)
    return 1.0 - ned / len(pairs)


def evaluate_recognition(
    preds: Sequence[str], gts: Sequence[str], case_sensitive: bool = False
) -> RecScores:
    """Word accuracy and 1 - NED of a list of recognised words against their labels."""
    return RecScores(
        len(gts),
        word_accuracy(preds, gts, case_sensitive),
        norm_edit_similarity(preds, gts, case_sensitive),
    )


# --- text-line direction (0/180) ----------------------------------------------------------------


def upright_and_turned(crops: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """Each crop as given (angle 0) followed by the same crop turned 180 degrees (angle 180): the crop pairs
    a direction classifier is scored on."""
    images, angles = [], []
    for crop in crops:
        images += [crop, np.ascontiguousarray(crop[::-1, ::-1])]
        angles += [0, 180]
    return images, angles


def direction_accuracy(angles: Sequence[int], truths: Sequence[int]) -> float:
    """Share of crops whose predicted angle (0 or 180) is the true one."""
    _check_lengths(angles, truths)
    return sum(a == t for a, t in zip(angles, truths)) / len(truths) if truths else 0.0
