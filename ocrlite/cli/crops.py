"""``ocrlite recognize`` and ``ocrlite classify``: the commands that read already-cropped text lines."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from ocrlite.cli.options import (
    cls_option,
    config_option,
    files_from_option,
    flag_settings,
    images_argument,
    json_alias_option,
    model_option,
    output_file_option,
    overrides_option,
    parse_formats,
    stage_config_option,
)
from ocrlite.cli.runs import (
    ItemRun,
    Output,
    build,
    check_models,
    gather_inputs,
    image_file,
    json_line,
    one_stage_ocr,
    stage_config_kind,
)

__all__ = ["recognize", "classify"]


def _crop_command(images: Sequence[str], fmt: str, output: str | None,
                  infer: Callable[[list[Any]], list[tuple[Any, float]]], field: str) -> None:
    """Read crops one by one (bad ones reported), then run ``infer`` on them in chunks. When a chunk fails, its
    crops are read again one at a time, so only the crop that fails is reported (one line) and skipped."""
    from ocrlite.io.writers import tsv_field

    run, out = ItemRun(list(images)), Output(output)
    chunk: list[tuple[Path, Any]] = []
    if fmt == "tsv":
        out.line(f"image\t{field}\tscore")

    def show(path: Path, value: Any, score: float) -> None:
        if fmt == "json":
            out.line(json_line({"image": str(path), field: value, "score": round(float(score), 5)}))
        else:
            out.line(f"{tsv_field(str(path))}\t{tsv_field(str(value))}\t{score:.4f}")

    def alone(path: Path, crop: Any) -> None:
        [(value, score)] = infer([crop])
        show(path, value, score)

    def flush() -> None:
        try:
            results = infer([crop for _, crop in chunk])
        except Exception:  # one failing crop must not lose the chunk: find it by reading each crop alone
            for path, crop in chunk:
                run.attempt(path, partial(alone, path, crop))
        else:
            for (path, _), (value, score) in zip(chunk, results):
                show(path, value, score)
        chunk.clear()

    def handle(path: Path) -> None:
        chunk.append((path, image_file(path)))
        if len(chunk) >= 64:
            flush()

    run.each(handle)
    flush()
    run.finish(out)


crop_format_option = click.option(
    "--format", "formats", multiple=True, metavar="FMT",
    help="What to print: txt (default: the path as given, value, score per crop), json or tsv.")


def _crop_format(formats: Sequence[str], as_json: bool) -> str:
    """``recognize``/``classify``'s format: ``--format`` (default txt); ``--json`` is an alias of
    ``--format json``, and a usage error beside another ``--format``."""
    from ocrlite.io.writers import STREAM_FORMATS

    fmt = parse_formats(formats or ("json" if as_json else "txt",), STREAM_FORMATS)[0]
    if as_json and fmt != "json":
        raise click.UsageError(f"--json means --format json; it conflicts with --format {fmt}")
    return fmt


@click.command()
@images_argument
@files_from_option
@config_option
@model_option
@cls_option
@crop_format_option
@json_alias_option
@output_file_option
@overrides_option
def recognize(images: tuple[str, ...], files_from: str | None, config: str | None, model: str | None,
              use_cls: bool | None, formats: tuple[str, ...], as_json: bool, output: str | None,
              overrides: tuple[str, ...]) -> None:
    """Read already-cropped text lines: text and score per crop (txt: path, text, score)."""
    from ocrlite.api import OCR

    check_models(config, model)
    inputs = gather_inputs(images, files_from)
    fmt = _crop_format(formats, as_json)
    flag_settings(use_cls="pipeline.use_cls")
    stages = ("rec",) if use_cls is False else ("cls", "rec")
    build(lambda: stage_config_kind(config, stages, "--no-cls" if use_cls is False else None))
    engine = build(lambda: OCR(config, overrides, model=model, use_cls=use_cls, stages=stages))
    _crop_command(inputs, fmt, output, engine.recognize, "text")


@click.command()
@images_argument
@files_from_option
@stage_config_option
@model_option
@crop_format_option
@json_alias_option
@output_file_option
@overrides_option
def classify(images: tuple[str, ...], files_from: str | None, config: str | None, model: str | None,
             formats: tuple[str, ...], as_json: bool, output: str | None, overrides: tuple[str, ...]) -> None:
    """Tell whether cropped text lines are upright (0) or upside down (180)."""
    check_models(config, model)
    inputs = gather_inputs(images, files_from)
    fmt = _crop_format(formats, as_json)
    engine = build(lambda: one_stage_ocr("cls", config, overrides, model))
    build(lambda: engine.line_classifier)  # no cls stage: one line, before any crop is read
    _crop_command(inputs, fmt, output, engine.classify, "angle")
