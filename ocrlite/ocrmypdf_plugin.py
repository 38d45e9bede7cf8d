"""OCRmyPDF plugin: ocrlite as OCRmyPDF's OCR engine (OCRmyPDF 17.x).

    pip install "ocrlite[ocrmypdf]"
    ocrmypdf --plugin ocrlite.ocrmypdf_plugin [--ocrlite-model NAME] [--ocrlite-set KEY=VALUE ...]
        [--ocrlite-threads N] in.pdf out.pdf

OCRmyPDF rasterises each page and calls the engine once per page in its workers (``--jobs``; threads of one
process by default, processes with ``--no-use-threads``):

- ``generate_ocr`` (default renderer): line and word elements with boxes, confidences, baseline and text
  angle, from which OCRmyPDF draws its invisible text layer;
- ``generate_hocr``: ocrlite's hOCR writer; ``generate_pdf`` (``--pdf-renderer sandwich``): a text-only
  PDF page from ocrlite's PDF writer, sized to the page image, all its text in one Unicode font (OCRmyPDF
  grafts one font of the page into the output);
- ``get_orientation`` (``--rotate-pages``): ocrlite's page orientation decision (the 0/90/180/270 page
  classifier fused with the detected lines' shape, direction and, for a page in doubt, their readings, as
  ``ocrlite ocr --rotate-pages``), its probability put on OCRmyPDF's confidence scale (see
  ``orientation_confidence``); ``get_deskew`` (``--deskew``): the median angle of the long detected boxes;
- ``check_options``: the preset exists, its weights are installed, the ``--ocrlite-set`` overrides are valid
  settings of its pipeline and it reads the ``-l`` languages (else one line naming the presets that do).

Each process builds the pipeline once, lazily, behind a lock. Net threads per process default to the
CPU count divided by ``--jobs`` (OCRmyPDF's worker count, itself the CPU count by default), so the
workers together do not oversubscribe the CPU. OCRmyPDF still checks for the ``tesseract`` binary at start-up
(its built-in Tesseract plugin stays loaded), so Tesseract must be installed even though it is not used;
``--ocr-engine tesseract`` switches back to it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.extras import debian, extra, require

try:
    from ocrmypdf import hookimpl
    from ocrmypdf.exceptions import BadArgsError, MissingDependencyError
    from ocrmypdf.models.ocr_element import Baseline, BoundingBox, OcrClass, OcrElement
    from ocrmypdf.pluginspec import OcrEngine, OrientationConfidence
    from pydantic import BaseModel, Field
except ImportError:  # OCRmyPDF not installed: one line saying how to install it, else the import's own error
    require("ocrlite.ocrmypdf_plugin", ("ocrmypdf",), extra("ocrmypdf"), ImportError, "OCRmyPDF",
            "; OCRmyPDF also needs the tesseract binary" + debian("tesseract-ocr"))
    raise

from ocrlite import __version__
from ocrlite.errors import error_reason
from ocrlite.io.writers import line_layout, pdf_runs, quad_bbox
from ocrlite.presets import DEFAULT_PRESET, PRESETS, get_preset
from ocrlite.results import PageResult, TextLine

__all__ = ["OcrliteEngine", "OcrliteOptions", "orientation_confidence", "preset_languages"]

log = logging.getLogger(__name__)

# Tesseract language codes of the scripts named in the presets' ``languages`` text.
_LANGUAGE_CODES = {
    "english": ("eng",),
    "chinese": ("chi_sim", "chi_tra"),
    "japanese": ("jpn",),
    "accented latin": ("fra", "deu", "spa", "ita", "por", "nld", "cat", "dan", "nor", "swe", "fin", "pol",
                       "ces", "slk", "slv", "hrv", "hun", "ron", "tur", "vie", "lat"),
}
# OCRmyPDF's orientation confidence: Tesseract's scale (0 unsure, ~15 very sure; default threshold 14).
_OCRMYPDF_THRESHOLD = 14.0
_OCRMYPDF_TOP = 20.0


class OcrliteOptions(BaseModel):
    """The plugin's options (``options.ocrlite``): preset name, its config overrides (``section.key=value``, as
    ``ocrlite --set``) and net threads per process."""

    model: str = DEFAULT_PRESET
    overrides: list[str] = Field(default_factory=list)
    threads: int | None = Field(default=None, ge=1)


def preset_languages(preset: str) -> set[str]:
    """Tesseract-style language codes a preset reads (from its ``languages`` description)."""
    described = get_preset(preset).languages.lower()
    return {code for name, codes in _LANGUAGE_CODES.items() if name in described for code in codes}


def orientation_confidence(probability: float, thresh: float, classes: int = 4) -> float:
    """The page classifier's probability on OCRmyPDF's scale: chance level (1/classes) -> 0, the classifier's
    own decision threshold ``thresh`` -> 14 (OCRmyPDF's default ``--rotate-pages-threshold``), 1 -> 20."""
    chance = 1.0 / classes
    if probability <= thresh and thresh > chance:
        return max(0.0, _OCRMYPDF_THRESHOLD * (probability - chance) / (thresh - chance))
    return _OCRMYPDF_THRESHOLD + (_OCRMYPDF_TOP - _OCRMYPDF_THRESHOLD) * (probability - thresh) / (1.0 - thresh)


class _Models:
    """This process's pipeline and page classifier, each built on first use behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ocr: dict[tuple[str, ...], Any] = {}
        self.page: dict[tuple[str, ...], Any] = {}

    def threads(self, options: Any) -> int:
        """Net threads: ``--ocrlite-threads``, else the CPUs shared among the pages run at once."""
        if options.ocrlite.threads:
            return int(options.ocrlite.threads)
        cpus = os.cpu_count() or 1
        jobs = options.jobs or cpus
        return max(1, cpus // max(1, jobs))

    def _set_threads(self, options: Any) -> int:
        from ocrlite.backends.threads import set_threads

        threads = self.threads(options)
        set_threads(threads)
        return threads

    def pipeline(self, options: Any) -> Any:
        key, preset = _pipeline_key(options), options.ocrlite.model
        with self.lock:
            if key not in self.ocr:
                from ocrlite.api import OCR

                threads = self._set_threads(options)
                self.ocr[key] = OCR(model=preset, overrides=options.ocrlite.overrides)
                log.info("ocrlite: built %s in process %d with %d threads", preset, os.getpid(), threads)
            return self.ocr[key]

    def classifier(self, options: Any) -> Any:
        """The page classifier of the preset's pipeline (its ``page:`` section)."""
        key, pipeline = _pipeline_key(options), self.pipeline(options)
        with self.lock:
            if key not in self.page:
                from ocrlite.page.orientation import PageOrientationClassifier

                self._set_threads(options)
                self.page[key] = PageOrientationClassifier.from_config(pipeline.spec.page)
                log.info("ocrlite: built the page classifier in process %d", os.getpid())
            return self.page[key]


def _pipeline_key(options: Any) -> tuple[str, ...]:
    """What a built pipeline is kept under: the preset and its overrides."""
    return (options.ocrlite.model, *options.ocrlite.overrides)


_MODELS = _Models()


def _page_info(input_file: Path) -> tuple[int, int, float]:
    """Width, height and resolution of a page image, from its header (OCRmyPDF writes square-DPI PNGs)."""
    from ocrlite.io.images import image_dpi, open_image

    with open_image(Path(input_file), str(input_file)) as image:  # Pillow's limit off: OCRmyPDF accepted its size
        return image.size[0], image.size[1], image_dpi(image, 300.0)[0]


def _read(input_file: Path, options: Any) -> tuple[np.ndarray, float]:
    """The page image (BGR) and its resolution; pages as large as OCRmyPDF itself accepts
    (``--max-image-mpixels``, 0: no limit) are read."""
    from ocrlite.io.images import read_image

    megapixels = getattr(options, "max_image_mpixels", None)
    limit = int(megapixels * 1_000_000) if megapixels else sys.maxsize
    return read_image(input_file, max_pixels=limit), _page_info(input_file)[2]


def _recognise(input_file: Path, options: Any) -> tuple[PageResult, float]:
    """The page's result and resolution. A page ocrlite cannot read (an engine error) is left without text,
    with one warning line, as OCRmyPDF does for a page its Tesseract fails on: the other pages go on."""
    pipeline = _MODELS.pipeline(options)  # a model that cannot be built stops the run
    try:
        image, dpi = _read(input_file, options)
        return pipeline(image), dpi
    except Exception as exc:
        log.warning("ocrlite: %s: %s; the page gets no text", Path(input_file).name, error_reason(exc))
        width, height, dpi = _page_info(input_file)
        return PageResult(width, height, ()), dpi


def _page_text(result: PageResult) -> str:
    return result.text + "\n" if result.lines else ""


def _line_element(line: TextLine, width: int, height: int) -> OcrElement:
    """One ``ocr_line``: axis-aligned box, text angle (multiples of 90, counter-clockwise), baseline
    (slope of the residual tilt, in image coordinates) (``line_layout``) and its words with confidences
    (``pdf_runs``: OCRmyPDF lays each in its text layer)."""
    layout = line_layout(line, width, height)
    words = [
        OcrElement(
            ocr_class=OcrClass.WORD,
            bbox=BoundingBox(*quad_bbox(word.points, width, height)),
            text=word.text,
            confidence=float(word.score),
        )
        for word in pdf_runs(line)  # a line upside down on the page: one stretch, copied in reading order
    ]
    return OcrElement(
        ocr_class=OcrClass.LINE,
        bbox=BoundingBox(*layout.bbox),
        text="",
        confidence=float(line.score),
        children=words,
        baseline=Baseline(*layout.baseline) if layout.baseline else None,
        textangle=layout.textangle,
    )


def page_element(result: PageResult, dpi: float, page_number: int) -> OcrElement:
    """OCRmyPDF's element tree of one page: page > paragraph > lines > words, in reading order."""
    page_box = BoundingBox(0, 0, result.width, result.height)
    lines = [_line_element(line, result.width, result.height) for line in result.lines]
    paragraph = OcrElement(ocr_class=OcrClass.PARAGRAPH, bbox=page_box, children=lines)
    return OcrElement(ocr_class=OcrClass.PAGE, bbox=page_box, dpi=dpi, page_number=page_number,
                      children=[paragraph] if lines else [])


class OcrliteEngine(OcrEngine):
    """ocrlite's PP-OCR pipeline behind OCRmyPDF's engine interface."""

    @staticmethod
    def version() -> str:
        return __version__

    @staticmethod
    def creator_tag(options: Any) -> str:
        return f"ocrlite {__version__} ({', '.join(_pipeline_key(options))})"  # the preset and its overrides

    def __str__(self) -> str:
        return f"ocrlite {__version__}"

    @staticmethod
    def languages(options: Any) -> set[str]:
        return preset_languages(options.ocrlite.model)

    @staticmethod
    def get_orientation(input_file: Path, options: Any) -> OrientationConfidence:
        from ocrlite.page.orientation import TextProbe

        classifier, pipeline = _MODELS.classifier(options), _MODELS.pipeline(options)
        try:
            image, _ = _read(input_file, options)
            # the line classifier's directions, as with pipeline.page_orientation, even where use_cls is off
            lines = partial(pipeline.lines, classify=True)
            angle, probability = classifier.decide(image, lines(image), TextProbe(lines, pipeline.confidences))
        except Exception as exc:  # the page stays as it is; OCRmyPDF goes on
            log.warning("ocrlite: %s: %s; orientation left unchanged", Path(input_file).name, error_reason(exc))
            return OrientationConfidence(0, 0.0)
        return OrientationConfidence(angle, orientation_confidence(probability, classifier.post.thresh))

    @staticmethod
    def get_deskew(input_file: Path, options: Any) -> float:
        from ocrlite.page.deskew import estimate_skew

        pipeline = _MODELS.pipeline(options)
        try:
            image, _ = _read(input_file, options)
            angle = estimate_skew(pipeline.detect(image))
        except Exception as exc:  # the page stays as it is; OCRmyPDF goes on
            log.warning("ocrlite: %s: %s; skew left unchanged", Path(input_file).name, error_reason(exc))
            return 0.0
        log.info("ocrlite: %s: skew %.2f degrees", Path(input_file).name, angle)
        return angle

    @staticmethod
    def supports_generate_ocr() -> bool:
        return True

    @staticmethod
    def generate_ocr(input_file: Path, options: Any, page_number: int = 0) -> tuple[OcrElement, str]:
        result, dpi = _recognise(input_file, options)
        return page_element(result, dpi, page_number), _page_text(result)

    @staticmethod
    def generate_hocr(input_file: Path, output_hocr: Path, output_text: Path, options: Any) -> None:
        from ocrlite.io.atomic import atomic_write_bytes
        from ocrlite.io.writers import PageRecord, make_writer

        result, dpi = _recognise(input_file, options)
        writer = make_writer("hocr", Path(input_file).name)
        writer.add(PageRecord(1, result, dpi))
        atomic_write_bytes(Path(output_hocr), writer.render())
        atomic_write_bytes(Path(output_text), _page_text(result).encode("utf-8"))

    @staticmethod
    def generate_pdf(input_file: Path, output_pdf: Path, output_text: Path, options: Any) -> None:
        from ocrlite.io.atomic import atomic_write_bytes
        from ocrlite.io.writers import PageRecord, PdfWriter

        result, dpi = _recognise(input_file, options)
        writer = PdfWriter(Path(input_file).name, one_font=True)  # OCRmyPDF grafts one font of the page
        writer.add(PageRecord(1, result, dpi))  # no image: only the invisible text, sized to the page
        atomic_write_bytes(Path(output_pdf), writer.render())
        atomic_write_bytes(Path(output_text), _page_text(result).encode("utf-8"))


def _positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


@hookimpl
def add_options(parser: Any) -> None:
    group = parser.add_argument_group("ocrlite", "ocrlite OCR engine (PP-OCR models in PyTorch)")
    group.add_argument("--ocrlite-model", dest="ocrlite_model", metavar="NAME", choices=sorted(PRESETS),
                       help=f"ocrlite model preset (default {DEFAULT_PRESET}; see 'ocrlite models').")
    group.add_argument("--ocrlite-set", dest="ocrlite_overrides", metavar="KEY=VALUE", action="append",
                       help="Override a setting of the preset's pipeline, as 'ocrlite --set' (repeatable), e.g. "
                            "det.preprocess.limit_side_len=1600.")
    group.add_argument("--ocrlite-threads", dest="ocrlite_threads", metavar="N", type=_positive_int,
                       help="Threads for the nets per process (default: CPU count / --jobs).")


@hookimpl
def register_options() -> dict[str, type[BaseModel]]:
    return {"ocrlite": OcrliteOptions}


@hookimpl
def check_options(options: Any) -> None:
    """The preset must exist, its weights be installed, the overrides be valid settings of its pipeline and it must
    read the ``-l`` languages, when ocrlite is the engine."""
    from ocrlite.errors import ConfigError
    from ocrlite.files import MODELS_HINT
    from ocrlite.presets import preset_status
    from ocrlite.stages import pipeline_spec

    if not _engine_chosen(options):  # --ocr-engine tesseract/none: ocrlite's weights are not needed
        return
    try:
        status = preset_status(get_preset(options.ocrlite.model))
    except ConfigError as exc:
        raise BadArgsError(f"--ocrlite-model: {exc}") from None
    if not status.installed:
        raise MissingDependencyError(
            f"--ocrlite-model {options.ocrlite.model}: its weights are not installed; they are in {MODELS_HINT}")
    try:
        pipeline_spec(overrides=options.ocrlite.overrides, model=options.ocrlite.model)
    except ConfigError as exc:
        raise BadArgsError(f"--ocrlite-set: {exc}") from None
    unread = sorted(set(options.languages or ()) - preset_languages(options.ocrlite.model))
    if unread:
        readers = [name for name in PRESETS if set(options.languages) <= preset_languages(name)]
        raise BadArgsError(f"--ocrlite-model {options.ocrlite.model} does not read {'+'.join(unread)}; "
                           + (f"presets that read {'+'.join(options.languages)}: {', '.join(readers)}" if readers
                              else "no preset reads all of " + "+".join(options.languages)))


@hookimpl
def get_ocr_engine(options: Any) -> OcrEngine | None:
    """ocrlite when the engine is left on ``auto``; ``--ocr-engine tesseract``/``none`` pick those."""
    return OcrliteEngine() if _engine_chosen(options) else None


def _engine_chosen(options: Any) -> bool:
    """Whether ocrlite does the OCR: OCRmyPDF's ``--ocr-engine`` is left on ``auto``."""
    return options is None or getattr(options, "ocr_engine", "auto") == "auto"
