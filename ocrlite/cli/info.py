"""What models there are and what their nets cost: ``ocrlite models`` (the presets) and ``ocrlite profile``
(a config's nets: parameters, MACs, latency)."""

from __future__ import annotations

from functools import partial

import click

from ocrlite.cli.options import model_option, overrides_option, stage_config_option
from ocrlite.cli.runs import build, config_or_preset

__all__ = ["models", "profile"]


@click.command()
def models() -> None:
    """List the model presets: name, weights size, languages, what each is good for, installed or not."""
    from ocrlite.files import MODELS_HINT
    from ocrlite.presets import DEFAULT_PRESET, PRESETS, preset_status

    rows = [("NAME", "SIZE", "INSTALLED", "LANGUAGES", "GOOD FOR")]
    for preset in PRESETS.values():
        status = build(partial(preset_status, preset))
        name = f"{preset.name}{' (default)' if preset.name == DEFAULT_PRESET else ''}"
        size = f"{status.size_mb:.1f} MB" if status.installed else "-"
        rows.append((name, size, "yes" if status.installed else "no *", preset.languages, preset.good_for))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    if any(row[2] == "no *" for row in rows):
        click.echo(f"* not installed: the weights are in {MODELS_HINT}")


@click.command()
@stage_config_option
@model_option
@click.option("--stage", "kind", type=click.Choice(["det", "cls", "rec"]),
              help="Only this stage of a pipeline config (a stage config names its own; another --stage is refused).")
@click.option("--input", "input_shape", metavar="CxHxW",
              help="Input size of the one net profiled: a stage config's, or a pipeline's with --stage (refused "
                   "without it). Default: each stage's line size, from its config or its weights' manifest; "
                   "3x640x640 for det.")
@click.option("--per-layer", is_flag=True, help="Also print name, type, output shape, params and MACs of every layer.")
@click.option("--runs", type=click.IntRange(min=0), default=10, show_default=True, help="Timed runs (0: no timing).")
@overrides_option
def profile(config: str | None, model: str | None, kind: str | None, input_shape: str | None, per_layer: bool,
            runs: int, overrides: tuple[str, ...]) -> None:
    """Parameters, MACs, weight size and CPU latency of the net(s) of a config or preset (weights not loaded)."""
    from ocrlite.profile import parse_input, profile_config

    target = config_or_preset(config, model)
    shape = build(lambda: parse_input(input_shape)) if input_shape is not None else None
    for report in build(lambda: profile_config(target, overrides, shape, runs, stage=kind)):
        if per_layer:
            click.echo(report.table())
        click.echo(report.totals())
