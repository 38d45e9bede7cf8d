"""The end-to-end pipeline: detect -> crop -> classify direction -> recognize -> filter."""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from numbers import Integral, Real
from pathlib import Path

import cv2
import numpy as np

from ocrlite.backends import Runner
from ocrlite.errors import ConfigError
from ocrlite.io.arguments import ImageLike, image_array, image_arrays, listed
from ocrlite.io.images import DEFAULT_MAX_PIXELS
from ocrlite.io.pages import DEFAULT_DPI, PDF_EXTENSIONS
from ocrlite.page.orientation import PageLines, TextProbe
from ocrlite.page.steps import page_steps
from ocrlite.postprocess import CTCDecoded, ctc_word_boxes
from ocrlite.predictors import TextClassifier, TextDetector, TextRecognizer, check_runner
from ocrlite.preprocess import crop_quad
from ocrlite.results import DocumentPage, PageResult, TextBox, TextLine
from ocrlite.stages import STAGE_KINDS, pipeline_spec

__all__ = ["OCR"]


class OCR:
    """Read text from images with the three-stage PP-OCR design.

    >>> ocr = OCR()                       # shipped default models
    >>> page = ocr("page.png")            # or a BGR uint8 numpy array
    >>> print(page.text)
    >>> OCR(model="en-ppocr-v4")          # a named preset (see ``ocrlite models``)

    An image is a path (str or Path, read by ``ocrlite.io.images.read_image``; of a multi-page TIFF the first page,
    with a warning, and a PDF is an ImageReadError: ``read_documents`` reads every page), a numpy array: BGR uint8
    HxWx3, or converted like an image file (grey HxW or HxWx1, BGRA HxWx4 on white, uint16 scaled to 8 bits;
    see ``ocrlite.io.images.bgr_array``), or a PIL image (its current frame, converted as its file would be read:
    RGB to BGR, alpha on white, EXIF orientation applied). Other arrays (float, signed int, bool, other shapes, no
    pixels) and other objects (None, bytes) raise TypeError or ValueError with what is accepted.
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
        stages: Collection[str] = STAGE_KINDS,
        backend: str | None = None,
    ) -> None:
        """``overrides``: a list of ``section.key=value`` strings. ``stages``: the nets to load, from "det",
        "cls", "rec" (e.g. ``("cls", "rec")`` to only read crops; using a stage left out is a ConfigError); all
        are validated. The cls net loads with the pipeline when it runs it (``use_cls``, page orientation), else
        on the first ``classify``. ``backend`` (e.g. "onnxruntime") replaces every stage's ``backend:`` setting.
        A bad argument type is a TypeError, an unknown stage or bad setting a ConfigError."""
        if config is not None and not isinstance(config, (str, os.PathLike)):
            raise TypeError(f"config must be a config file path or name (str or Path), got {type(config).__name__}")
        for name, runner in (("det_runner", det_runner), ("cls_runner", cls_runner), ("rec_runner", rec_runner)):
            check_runner(runner, name)
        unknown = [kind for kind in listed(stages, "stages", "stage names") if kind not in STAGE_KINDS]
        if unknown:
            raise ConfigError(f"unknown stage {unknown[0]!r} in stages; choose from: {', '.join(STAGE_KINDS)}")
        spec = pipeline_spec(config, overrides, model=model, backend=backend, use_cls=use_cls, drop_score=drop_score)
        self.spec = spec
        self.settings = spec.settings
        self._stages = frozenset(stages)
        self._cls_runner = cls_runner
        self._build_lock = threading.Lock()
        self._detector = TextDetector.from_config(spec.det, runner=det_runner) if "det" in stages else None
        self._recognizer = TextRecognizer.from_config(spec.rec, runner=rec_runner) if "rec" in stages else None
        # The line classifier flips crops (use_cls) and gives the page orientation the text's direction.
        self._directions_used = self.settings.use_cls or self.settings.page_orientation
        self._line_classifier = (
            TextClassifier.from_config(spec.cls, runner=cls_runner)
            if self._directions_used and spec.cls is not None and "cls" in stages
            else None
        )
        self.classifier = self._line_classifier if self.settings.use_cls else None
        self.page_steps = (
            page_steps(self.settings.page_orientation, self.settings.deskew, spec.page)
            if self._detector is not None and self._recognizer is not None
            else None  # page steps serve whole pages, which need the detector and the recognizer
        )

    @property
    def detector(self) -> TextDetector:
        """The text detector (a ConfigError when this pipeline was built without it)."""
        if self._detector is None:
            raise ConfigError("this OCR was built without its detector (stages=...)")
        return self._detector

    @property
    def recognizer(self) -> TextRecognizer:
        """The text recognizer (a ConfigError when this pipeline was built without it)."""
        if self._recognizer is None:
            raise ConfigError("this OCR was built without its recognizer (stages=...)")
        return self._recognizer

    @property
    def line_classifier(self) -> TextClassifier:
        """The 0/180 text-line direction classifier of the pipeline's cls stage, whether or not ``use_cls`` is
        on (loaded here on first use when the pipeline does not run it). A ConfigError when the pipeline has
        no cls stage or this OCR was built without it."""
        with self._build_lock:  # threads asking at once build it once
            if self._line_classifier is None:
                if self.spec.cls is None:
                    raise ConfigError("this pipeline has no direction classifier (cls)")
                if "cls" not in self._stages:
                    raise ConfigError("this OCR was built without its direction classifier (stages=...)")
                self._line_classifier = TextClassifier.from_config(self.spec.cls, runner=self._cls_runner)
            return self._line_classifier

    def detect(self, image: ImageLike) -> list[TextBox]:
        """Text boxes of ``image`` in reading order."""
        return self.detector(image_array(image))

    def __call__(self, image: ImageLike) -> PageResult:
        """Detect, crop, orient and recognize every text line of ``image`` (after the page steps, if on)."""
        image = image_array(image)
        if self.page_steps is None:
            return self._read(image, self.lines(image))
        return self.page_steps(image, self.probe, self._read)

    @property
    def probe(self) -> TextProbe:
        """This pipeline's detector and recognizer as the page orientation decision uses them on a page in doubt."""
        return TextProbe(self.lines, self.confidences)

    def lines(self, image: ImageLike, classify: bool | None = None) -> PageLines:
        """The text lines of ``image`` as given: detected boxes, their crops and the line classifier's
        (angle, score) per crop (None without a line classifier). ``classify``: run the line classifier (None:
        when the pipeline does, for ``use_cls`` or page orientation; True: whenever it has one; False: never)."""
        image = image_array(image)
        kept = [(box, crop) for box in self.detect(image) if (crop := crop_quad(image, box.points)) is not None]
        crops = [crop for _, crop in kept]
        wanted = self._directions_used if classify is None else classify
        classifier = self.line_classifier if wanted and self.spec.cls is not None and "cls" in self._stages else None
        directions = None if classifier is None else tuple(classifier(crops))
        return PageLines(tuple(box for box, _ in kept), tuple(crops), directions)

    def _read(self, image: np.ndarray, lines: PageLines) -> PageResult:
        crops = list(lines.crops)
        angles, decoded = self.orient_and_read(crops, lines.directions)
        text_lines = tuple(
            TextLine(box.points, d.text, d.score, box.score, angle, ctc_word_boxes(d, box.points, angle))
            for box, angle, d in zip(lines.boxes, angles, decoded)
            if d.text and d.score >= self.settings.drop_score
        )
        height, width = image.shape[:2]
        return PageResult(width=width, height=height, lines=text_lines)

    def orient(self, crops: list[np.ndarray],
               directions: Sequence[tuple[int, float]] | None = None) -> list[int]:
        """Turn upside-down crops in place (180 degrees); return each crop's angle. ``crops``: a list of images,
        each replaced by its BGR uint8 array (taken as ``recognize`` takes it; such an array stays as it is).
        ``directions``: the line classifier's (angle, score) per crop when already known."""
        arrays = image_arrays(crops)
        if not isinstance(crops, list):
            raise TypeError(f"crops must be a list (its crops are turned in place), got {type(crops).__name__}")
        crops[:] = arrays
        if self.classifier is None or not crops:
            return [0] * len(crops)
        angles = []
        for i, (angle, score) in enumerate(directions if directions is not None else self.classifier(crops)):
            flip = self.classifier.should_flip(angle, score)
            if flip:
                crops[i] = cv2.rotate(crops[i], cv2.ROTATE_180)
            angles.append(180 if flip else 0)
        return angles

    def orient_and_read(self, crops: list[np.ndarray], directions: Sequence[tuple[int, float]] | None = None
                        ) -> tuple[list[int], list[CTCDecoded]]:
        """Each crop's angle and reading: crops turned as ``orient`` turns them (in place), then read; with
        ``pipeline.verify_flips``, a crop the classifier turned is also read as given and turned back when that
        reading is the more confident (the classifier turns some upright lines: a few words, a bold heading)."""
        angles = self.orient(crops, directions)
        decoded = self.recognizer(crops)
        turned = [i for i, angle in enumerate(angles) if angle == 180]
        if turned and self.settings.verify_flips:
            for i, reading in zip(turned, self.recognizer([cv2.rotate(crops[i], cv2.ROTATE_180) for i in turned])):
                if reading.score > decoded[i].score:
                    crops[i], angles[i], decoded[i] = cv2.rotate(crops[i], cv2.ROTATE_180), 0, reading
        return angles, decoded

    def confidences(self, crops: Sequence[np.ndarray]) -> list[float]:
        """The recognizer's mean CTC confidence of each crop, read as given (no line classifier)."""
        return [decoded.score for decoded in self.recognizer(crops)]

    def recognize(self, crops: Iterable[ImageLike]) -> list[tuple[str, float]]:
        """Text and score of already-cropped text lines (optionally direction-corrected), one per crop.

        ``crops``: a list of images (arrays or paths, each taken as ``__call__`` takes one); a single image
        (one path or array) is a TypeError: put it in a list."""
        _, decoded = self.orient_and_read(image_arrays(crops))
        return [(d.text, d.score) for d in decoded]

    def read_documents(self, paths: Iterable[str | Path], dpi: float = DEFAULT_DPI,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[DocumentPage]:
        """Every page of images, multi-page TIFFs and PDFs (rendered at ``dpi``; an image's own resolution is
        kept) in order, each read as it comes while a reader thread decodes the next pages. A page or file that
        fails is yielded with its error and the others go on (``DocumentPage``). ``dpi``: a number from 10 to
        1200, as ``--dpi``; ``max_pixels``: the most pixels a page may have (a larger one is a page error).
        Arguments of the wrong type are a TypeError, out of range a ValueError, both raised here, not when
        the first page is asked for."""
        files = [Path(path) for path in listed(paths, "paths", "file paths", (str, os.PathLike))]
        if isinstance(dpi, (bool, np.bool_)) or not isinstance(dpi, Real):  # numpy's numbers too
            raise TypeError(f"dpi must be a number from 10 to 1200 (as --dpi), got {type(dpi).__name__}")
        if not 10 <= dpi <= 1200:
            raise ValueError(f"dpi must be a number from 10 to 1200 (as --dpi), got {dpi!r}")
        if isinstance(max_pixels, (bool, np.bool_)) or not isinstance(max_pixels, Integral):
            raise TypeError(f"max_pixels must be a positive integer, got {type(max_pixels).__name__}")
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        return self._documents(files, float(dpi), int(max_pixels))

    def _documents(self, files: list[Path], dpi: float, max_pixels: int) -> Iterator[DocumentPage]:
        """``read_documents`` once its arguments are checked."""
        from ocrlite.batch.pipeline import read_ahead

        with read_ahead(files, dpi, max_pixels) as items:
            for item in items:
                paged = item.count > 1 or item.path.suffix.lower() in PDF_EXTENSIONS
                if item.number == 0:  # the end of a file: an entry only when it could not be opened
                    if item.error is not None:
                        yield DocumentPage(item.path, 0, 0, paged, error=item.error)
                    continue
                if item.page is None:
                    yield DocumentPage(item.path, item.number, item.count, paged, error=item.error)
                    continue
                try:
                    result, error = self(item.page.image), None
                except Exception as exc:  # one page that fails must not cost the others
                    result, error = None, exc
                yield DocumentPage(item.path, item.number, item.count, paged, item.page.image, result, error)

    def classify(self, crops: Iterable[ImageLike]) -> list[tuple[int, float]]:
        """Direction (angle 0 or 180, score) of already-cropped text lines, one per crop, by the cls stage
        (``line_classifier``) whether or not ``use_cls`` is on. ``crops`` as ``recognize`` takes them."""
        return self.line_classifier(crops)
