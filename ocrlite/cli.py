"""The ``ocrlite`` command line: thin commands over the Python API.

Every command takes images and folders; a bad item is reported on stderr in one line and
skipped, the others are still processed, and the exit code is 1 if any item failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import click

from .errors import OcrliteError

__all__ = ["main"]

_DRAW_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def _fail(message: str) -> None:
    click.echo(f"ocrlite: error: {message}", err=True)


class _ItemRun:
    """Runs a per-image action over expanded inputs, isolating each item's failure."""

    def __init__(self, inputs: Sequence[str]) -> None:
        from .imageio import expand_inputs

        self.files, errors = expand_inputs(inputs)
        self.failed = 0
        for path, message in errors:
            self._report(path, message)

    def each(self, action: Callable[[Path], None]) -> None:
        for path in self.files:
            try:
                action(path)
            except OcrliteError as exc:
                self._report(path, str(exc))
            except Exception as exc:  # one broken item must not end the run
                self._report(path, f"unexpected {type(exc).__name__}: {exc}")

    def _report(self, path: Path | str, message: str) -> None:
        self.failed += 1
        _fail(message if str(path) in message else f"{path}: {message}")

    def exit(self) -> None:
        if self.failed:
            sys.exit(1)


def _build(factory: Callable[[], Any]) -> Any:
    """Load models; a config or weights problem ends the command with one line and exit 2."""
    try:
        return factory()
    except OcrliteError as exc:
        _fail(str(exc))
        sys.exit(2)


def _draw_path(draw: str, image: Path, several: bool) -> Path:
    target = Path(draw)
    if target.suffix.lower() in _DRAW_SUFFIXES and not several:
        return target
    return target / f"{image.stem}.png"


def _emit(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def _stage_overrides(prefix: str, **values: Any) -> list[str]:
    return [f"{prefix}{key}={value}" for key, value in values.items() if value is not None]


overrides_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config value, e.g. postprocess.box_thresh=0.5 (repeatable).",
)
config_option = click.option("--config", type=click.Path(dir_okay=False), help="YAML config file.")
images_argument = click.argument("images", nargs=-1, required=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ocrlite")
def main() -> None:
    """Fast, lightweight OCR: detect, orient and recognize text in images."""


@main.command()
@images_argument
@config_option
@click.option("--det-limit-side-len", type=int, help="Side limit for the detector input (default 960).")
@click.option("--box-thresh", type=float, help="Minimum mean probability of a box (default 0.6).")
@click.option("--unclip-ratio", type=float, help="How far boxes are grown around the text kernel.")
@click.option("--draw", type=click.Path(), help="Write the image with boxes drawn: a file, or a folder.")
@overrides_option
def detect(images: tuple[str, ...], config: str | None, det_limit_side_len: int | None,
           box_thresh: float | None, unclip_ratio: float | None, draw: str | None,
           overrides: tuple[str, ...]) -> None:
    """Print the text boxes of each image as one JSON object per line."""
    from .config import load_stage_config
    from .draw import draw_boxes
    from .fileio import write_image
    from .imageio import read_image
    from .predictors import TextDetector

    run = _ItemRun(images)
    extra = _stage_overrides("preprocess.", limit_side_len=det_limit_side_len) + _stage_overrides(
        "postprocess.", box_thresh=box_thresh, unclip_ratio=unclip_ratio)
    detector = _build(lambda: TextDetector.from_config(
        load_stage_config(config or "det_ppocrv3.yaml", [*extra, *overrides])))

    def handle(path: Path) -> None:
        image = read_image(path)
        boxes = detector(image)
        height, width = image.shape[:2]
        _emit({"image": str(path), "width": width, "height": height,
               "boxes": [box.to_dict() for box in boxes]})
        if draw:
            write_image(_draw_path(draw, path, len(run.files) > 1), draw_boxes(image, boxes))

    run.each(handle)
    run.exit()


@main.command()
@images_argument
@config_option
@click.option("--format", "fmt", type=click.Choice(["json", "txt"]), default="json", show_default=True)
@click.option("--draw", type=click.Path(), help="Write boxes and recognized text: a file, or a folder.")
@click.option("--no-cls", is_flag=True, help="Skip the 0/180 degree direction classifier.")
@click.option("--drop-score", type=float, help="Drop lines recognized with a lower score (default 0.5).")
@click.option("--rec-batch", type=click.IntRange(min=1), help="Text lines per recognition batch.")
@click.option("--det-limit-side-len", type=int, help="Side limit for the detector input (default 960).")
@click.option("--box-thresh", type=float, help="Minimum mean probability of a box (default 0.6).")
@overrides_option
def ocr(images: tuple[str, ...], config: str | None, fmt: str, draw: str | None, no_cls: bool,
        drop_score: float | None, rec_batch: int | None, det_limit_side_len: int | None,
        box_thresh: float | None, overrides: tuple[str, ...]) -> None:
    """Read the text of each image (JSON lines, or plain text in reading order)."""
    from .api import OCR
    from .draw import draw_lines
    from .fileio import write_image
    from .imageio import read_image

    run = _ItemRun(images)
    extra = (_stage_overrides("det.preprocess.", limit_side_len=det_limit_side_len)
             + _stage_overrides("det.postprocess.", box_thresh=box_thresh)
             + _stage_overrides("rec.preprocess.", batch_size=rec_batch))
    engine = _build(lambda: OCR(config, [*extra, *overrides], use_cls=False if no_cls else None,
                                drop_score=drop_score))

    def handle(path: Path) -> None:
        image = read_image(path)
        page = engine(image)
        if fmt == "json":
            _emit({"image": str(path), **page.to_dict()})
        else:
            click.echo(page.text)
        if draw:
            write_image(_draw_path(draw, path, len(run.files) > 1), draw_lines(image, page.lines))

    run.each(handle)
    run.exit()


def _crop_command(images: Iterable[str], as_json: bool, infer: Callable[[list[Any]], list[tuple[Any, float]]],
                  field: str) -> None:
    """Read crops one by one (bad ones reported), then run ``infer`` on them in chunks."""
    from .imageio import read_image

    run = _ItemRun(list(images))
    chunk: list[tuple[Path, Any]] = []

    def flush() -> None:
        for (path, _), (value, score) in zip(chunk, infer([crop for _, crop in chunk])):
            if as_json:
                _emit({"image": str(path), field: value, "score": round(float(score), 5)})
            else:
                click.echo(f"{path.name}\t{value}\t{score:.4f}")
        chunk.clear()

    def handle(path: Path) -> None:
        chunk.append((path, read_image(path)))
        if len(chunk) >= 64:
            flush()

    run.each(handle)
    flush()
    run.exit()


@main.command()
@images_argument
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per crop.")
@click.option("--cls", "use_cls", is_flag=True, help="Turn upside-down crops before reading them.")
@overrides_option
def recognize(images: tuple[str, ...], config: str | None, as_json: bool, use_cls: bool,
              overrides: tuple[str, ...]) -> None:
    """Read already-cropped text lines: file name, text and score per crop."""
    from .api import OCR

    engine = _build(lambda: OCR(config, overrides, use_cls=use_cls))
    _crop_command(images, as_json, engine.recognize, "text")


@main.command()
@images_argument
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per crop.")
@overrides_option
def classify(images: tuple[str, ...], config: str | None, as_json: bool, overrides: tuple[str, ...]) -> None:
    """Tell whether cropped text lines are upright (0) or upside down (180)."""
    from .config import load_stage_config
    from .predictors import TextClassifier

    classifier = _build(lambda: TextClassifier.from_config(
        load_stage_config(config or "cls_ppocr_mobile_v2.yaml", overrides)))
    _crop_command(images, as_json, classifier, "angle")
