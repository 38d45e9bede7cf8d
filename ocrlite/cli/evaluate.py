"""``ocrlite eval``: score models on a benchmark folder at fixed settings."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import click

from ocrlite.cli.options import backend_option, config_option, output_file_option, overrides_option, parse_formats
from ocrlite.cli.runs import Output, build, json_line, stage_config_kind

__all__ = ["eval_command"]


@click.command(name="eval")
@click.argument("task", type=click.Choice(["det", "cls", "rec", "e2e"]))
@click.option("--data", required=True, type=click.Path(),
              help="Benchmark folder: ICDAR 2015 (det, e2e), FUNSD (every task) or word crops (rec, cls); or a "
                   "PaddleOCR det label file, path<TAB>[{transcription, points}] lines (det, e2e).")
@click.option("--model", "models_", metavar="NAME[,NAME]",
              help="Preset(s) to evaluate, comma-separated, one row each; a --config row comes after them "
                   "(default: the default preset).")
@config_option
@click.option("--split", type=click.Path(dir_okay=False, exists=True),
              help="Split manifest (JSON with 'files'): evaluate only those files (refused when a file's "
                   "sha256 differs from the one it records).")
@click.option("--limit", type=click.IntRange(min=1), help="First N samples only (FUNSD: forms).")
@click.option("--unit", type=click.Choice(["words", "lines"]),
              help="FUNSD boxes that det, cls and rec score (default: lines for det and cls, words for rec).")
@click.option("--format", "formats", multiple=True, metavar="FMT", help="table (default) or json.")
@output_file_option
@backend_option
@overrides_option
def eval_command(task: str, data: str, models_: str | None, config: str | None, split: str | None,
                 limit: int | None, unit: str | None, formats: tuple[str, ...], output: str | None,
                 backend: str | None, overrides: tuple[str, ...]) -> None:
    """Score models on a benchmark folder at fixed settings: det P/R/H, cls accuracy, rec word accuracy,
    1-NED and CER, e2e ICDAR 2015 hmean or FUNSD bag-of-words F1 (case-insensitive and sensitive). On FUNSD,
    det scores its line (or word) boxes, and cls and rec read the crops of its boxes."""
    from ocrlite.api import OCR
    from ocrlite.eval.harness import evaluate, format_table, ocrlite_system, unique_names

    names = [n for n in (models_ or "").split(",") if n]
    fmt = parse_formats(formats or ("table",), ("table", "json"))[0]
    build(lambda: unique_names([*names, *([Path(config).name] if config is not None else [])]))
    if task != "e2e":  # a stage config of another kind would be left unused, the row named after it
        build(lambda: stage_config_kind(config, (task,)))
    out = Output(output)  # its folder checked before the evaluation, not after it

    def system(name: str | None) -> Any:
        return ocrlite_system(name or "default", OCR(overrides=overrides, model=name, backend=backend))

    systems = [build(partial(system, name)) for name in names]
    if config is not None:  # after the presets: one run scores e.g. a parent preset and its fine-tune
        systems.append(build(lambda: ocrlite_system(Path(config).name, OCR(config, overrides, backend=backend))))
    if not systems:
        systems = [build(partial(system, None))]
    rows = build(lambda: evaluate(task, systems, Path(data), limit, Path(split) if split else None, unit=unit))
    if fmt == "json":
        for row in rows:
            out.line(json_line(row))
    else:
        out.line(format_table(rows))
    out.close()
