"""The options every command shares, meaning the same on each, and how a flag given becomes a config override
or a setting (so that an error about its value names the flag the user typed)."""

from __future__ import annotations

from typing import Sequence

import click

__all__ = [
    "flags_named", "flag_overrides", "flag_settings", "parse_formats", "det_limit_option", "box_thresh_option",
    "images_argument", "files_from_option", "config_option", "stage_config_option", "model_option",
    "overrides_option", "format_option", "output_file_option", "json_alias_option", "backend_option", "cls_option",
]

_FLAGS = "ocrlite.flags"  # click context meta: each config override a flag became (flag_overrides) -> the flag
_SETTING_FLAGS = "ocrlite.setting_flags"  # click context meta: each setting a flag is passed to OCR as -> the flag


def flags_named(message: str) -> str:
    """``message`` naming the flag the user typed (``(from --box-thresh)``) where it names the config override that
    flag became (``(from the override 'det.postprocess.box_thresh=-1.0')``), or is about the setting a flag is
    passed to OCR as (``pipeline.drop_score: ...``, which names no source); ``--set`` overrides stay named."""
    context = click.get_current_context(silent=True)
    meta = context.meta if context is not None else {}
    flags: dict[str, str] = meta.get(_FLAGS, {})
    if flags:
        from ocrlite.stages import override_source

        for item, flag in flags.items():
            message = message.replace(override_source(item), f"(from {flag})")
    for key, flag in meta.get(_SETTING_FLAGS, {}).items():
        if message.startswith(f"{key}: "):
            message = f"{message} (from {flag})"
    return message


def flag_overrides(**keys: str) -> list[str]:
    """The ``KEY=VALUE`` config overrides of the current command's flags that were given, ``keys`` mapping each
    flag's parameter name to its config key (an on/off flag: when on); applied after ``--set``, so a flag wins over
    a ``--set`` of its key, as ``--cls`` and ``--drop-score`` do. Each is remembered with its flag, so that an error
    about its value names the flag (``fail``)."""
    context = click.get_current_context()
    options = {param.name: param for param in context.command.params}
    made: dict[str, str] = context.meta.setdefault(_FLAGS, {})
    items = []
    for name, key in keys.items():
        value = context.params[name]
        if value is None or value is False:
            continue
        items.append(f"{key}={value}")
        made[items[-1]] = _typed_flag(options[name], value)
    return items


def _typed_flag(option: click.Parameter, value: object) -> str:
    """The flag of ``option`` that gave ``value``, by its longest name: an on/off pair's off one (``--no-cls``)
    for False."""
    return max(option.secondary_opts if value is False else option.opts, key=len)


def flag_settings(**keys: str) -> None:
    """Remember the flags of ``keys`` (parameter name -> the setting it is passed to OCR as, ``drop_score=
    "pipeline.drop_score"``) that were given: OCR's error about such a setting names the setting only, and the
    flag's value is the one checked (it is applied after every override), so ``fail`` names the flag."""
    context = click.get_current_context()
    made: dict[str, str] = context.meta.setdefault(_SETTING_FLAGS, {})
    options = {param.name: param for param in context.command.params}
    for name, key in keys.items():
        if (value := context.params[name]) is not None:
            made[key] = _typed_flag(options[name], value)


def parse_formats(values: Sequence[str], allowed: Sequence[str], several: bool = False) -> tuple[str, ...]:
    """``--format`` values, comma-separated or repeated, checked against ``allowed``."""
    formats = tuple(dict.fromkeys(f.strip().lower() for v in values for f in v.split(",") if f.strip()))
    bad = [f for f in formats if f not in allowed]
    if bad or (values and not formats):  # --format '' (an unset "$FMT"): not the default taken silently
        raise click.BadParameter(f"{', '.join(bad) or repr(', '.join(values))} (choose from {', '.join(allowed)})",
                                 param_hint="--format")
    if not several and len(formats) > 1:
        raise click.BadParameter("one format when printing results; use ocr -o DIR for several",
                                 param_hint="--format")
    return formats or ("json",)


det_limit_option = click.option("--det-limit-side-len", type=int,
                                help="Side limit for the detector input (default: the preset's; 960 for ppocr-v2).")
box_thresh_option = click.option("--box-thresh", type=float,
                                 help="Minimum mean probability of a box (default: the preset's; 0.6 for ppocr-v2).")
images_argument = click.argument("images", nargs=-1)  # '-': paths from stdin (runs.gather_inputs)
files_from_option = click.option(
    "--files-from", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="Also read input paths from this file ('-': stdin): one per line, relative ones from the working folder, "
         "each line as it is (spaces are part of the name); blank lines and '#' comments skipped.")
config_option = click.option(
    "--config", type=click.Path(dir_okay=False),
    help="YAML config: a pipeline config, or a single stage config (the default pipeline with that stage).")
stage_config_option = click.option(
    "--config", type=click.Path(dir_okay=False),
    help="YAML config: a pipeline config, or a single stage config (that stage alone).")
model_option = click.option("--model", "model", metavar="NAME",
                            help="Model preset (see 'ocrlite models'); exclusive with --config.")
overrides_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config value, e.g. det.postprocess.box_thresh=0.5 (repeatable).")
format_option = click.option(
    "--format", "formats", multiple=True, metavar="FMT",
    help="What to print: json (default), txt or tsv.")
output_file_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write the results to this file instead of stdout.")
json_alias_option = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
backend_option = click.option(
    "--backend", type=click.Choice(["torch", "onnxruntime"]),
    help="Run every net on this backend (default: each stage's backend: key, torch). onnxruntime runs our own "
         "exports of the same weights, cached (pip install \"ocrlite[onnx]\").")

cls_option = click.option(
    "--cls/--no-cls", "use_cls", default=None,
    help="Turn upside-down lines before reading them with the 0/180 direction classifier "
         "(default: the config's pipeline.use_cls: on for every shipped preset but the PP-OCRv5/v6 ones).")
