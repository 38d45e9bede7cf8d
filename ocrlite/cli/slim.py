"""The commands that slim or export a trained net: ``ocrlite prune``, ``export`` and ``quantize``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from ocrlite.cli.options import model_option, overrides_option, stage_config_option
from ocrlite.cli.runs import build, check_models, config_or_preset, in_new_folders, stage_config_kind

if TYPE_CHECKING:
    from ocrlite.stages import PipelineSpec

__all__ = ["prune", "export", "quantize"]


@click.command()
@click.option("--config", type=click.Path(dir_okay=False),
              help="Pipeline or detector stage config whose detector is pruned (default: the default preset).")
@model_option
@click.option("--flops-target", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.6,
              show_default=True, help="Fraction of the detector's MACs to keep (0 < x < 1).")
@click.option("--criterion", type=click.Choice(["l1", "fpgm"]), default="l1", show_default=True,
              help="Filter importance: L1 norm or FPGM.")
@click.option("--sensitivity", type=click.Path(dir_okay=False),
              help="Sensitivity curves JSON: read if it exists, else measured and written there.")
@click.option("--images", type=click.Path(file_okay=False, exists=True),
              help="Real images the sensitivity is measured on (output divergence vs the unpruned net).")
@click.option("--sensitivity-images", type=click.IntRange(min=1), default=4, show_default=True,
              help="How many of --images to use.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for det.safetensors/.json/.yaml, ocr.yaml and the sensitivity curves.")
@overrides_option
def prune(config: str | None, model: str | None, flops_target: float, criterion: str, sensitivity: str | None,
          images: str | None, sensitivity_images: int, output: str, overrides: tuple[str, ...]) -> None:
    """Structurally prune a DB detector's channels under a MACs target; write a loadable stage and pipeline."""
    from ocrlite.slim.prune import require_torch_pruning
    from ocrlite.slim.run_prune import prune_stage

    target = config_or_preset(config, model)
    build(lambda: stage_config_kind(target, ("det",)))  # a rec/cls stage config: not read as a pipeline
    build(require_torch_pruning)  # before the output folder is made
    folders = [Path(output)]
    if sensitivity and not Path(sensitivity).is_file():  # measured, then written there: checked before the work
        folders.append(Path(sensitivity).absolute().parent)
    result = in_new_folders(folders, lambda: prune_stage(
        target, Path(output), flops_target, criterion, overrides, Path(sensitivity) if sensitivity else None,
        Path(images) if images else None, sensitivity_images))
    click.echo(result.summary())


@click.command(name="export")
@stage_config_option
@model_option
@click.option("--stage", "kind", type=click.Choice(["det", "cls", "rec"]), default="det", show_default=True,
              help="Which stage of a pipeline config to export (a stage config names its own; another --stage is "
                   "refused).")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Format of the file written.")
@click.option("--head", type=click.Choice(["probs", "raw"]), default="probs", show_default=True,
              help="What the graph returns: probabilities (a softmax added to a logits net; what the onnxruntime "
                   "backend's onnx: key reads), or the net's own output (logits for cls/rec).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write.")
@overrides_option
def export(config: str | None, model: str | None, kind: str, fmt: str, head: str, output: str,
           overrides: tuple[str, ...]) -> None:
    """Export a stage's net to ONNX (opset 17, dynamic batch/height/width) and check it against PyTorch. A stage
    that runs its own ONNX file (onnx:, e.g. ocrlite quantize's int8 net) has that file written as it is."""
    from ocrlite.errors import ConfigError
    from ocrlite.extras import require_onnx
    from ocrlite.slim.onnx_export import TOLERANCE, copy_given, export_checked
    from ocrlite.slim.save import config_stage_kind
    from ocrlite.stages import command_stage, pipeline_spec

    check_models(config, model)
    if Path(output).suffix.lower() != ".onnx":  # never a config's det.yaml or weights replaced by an ONNX graph
        raise click.BadParameter(f"{output} is not an .onnx path; export writes an ONNX file",
                                 param_hint="'-o' / '--output'")
    build(partial(require_onnx, "exporting to ONNX"))  # before the output's folder is made
    context = click.get_current_context()
    asked = context.get_parameter_source("head") is ParameterSource.COMMANDLINE
    default_stage = context.get_parameter_source("kind") is not ParameterSource.COMMANDLINE
    if not default_stage:  # --stage rec with a det stage config: refused, not the det net exported in silence
        build(lambda: stage_config_kind(config, (kind,)))

    def work() -> tuple[str, Path | None, float]:
        own = config_stage_kind(config) if config is not None else None
        if own is None and default_stage:  # a pipeline (e.g. ocrlite quantize's) with another stage's ONNX file
            _default_stage_check(pipeline_spec(config, overrides, model=model), kind)
        stage = own or kind
        spec = command_stage(stage, config, overrides, model)
        if spec is None:
            raise ConfigError(f"the pipeline has no {stage} stage")
        if spec.onnx is not None:  # what the config runs is that file, not a float export of the weights
            copy_given(spec, Path(output), head if asked else None)
            return stage, spec.onnx, 0.0
        return stage, None, export_checked(spec, Path(output), head)

    kind, given, diff = in_new_folders([Path(output).absolute().parent], work)
    if given is not None:
        click.echo(f"{output}: {kind} copied from {given}, the ONNX file the config runs (onnx:); "
                   f"--set {kind}.onnx=null exports the float net from its weights instead")
        return
    click.echo(f"{output}: {kind} exported ({fmt}, opset 17); max |ONNX - PyTorch| = {diff:.2e} (<= {TOLERANCE:g})")


def _default_stage_check(pipeline: PipelineSpec, kind: str) -> None:
    """A ConfigError when ``export`` would take its default ``--stage`` while the pipeline runs another stage from
    its own ONNX file (``ocrlite quantize``'s ``ocr.yaml``): that file is what the user is likely after."""
    from ocrlite.errors import ConfigError

    given = {other: stage.onnx for other, stage in pipeline.used().items() if stage.onnx is not None}
    if given and kind not in given:
        other, path = next(iter(given.items()))
        raise ConfigError(f"--stage: this pipeline runs its {other} stage from {path} (onnx:); name the stage to "
                          f"export: --stage {other} writes that file, --stage {kind} exports the {kind} net")


@click.command()
@click.option("--config", type=click.Path(dir_okay=False),
              help="Pipeline or stage config whose stage is quantized (default: the default preset).")
@model_option
@click.option("--stage", "kind", type=click.Choice(["det", "cls", "rec"]), default="rec", show_default=True,
              help="Which stage of a pipeline config (a stage config names its own; another --stage is refused).")
@click.option("--calib", required=True, type=click.Path(file_okay=False, exists=True),
              help="Check images (line crops for cls/rec, pages for det): int8 vs fp32 agreement is measured on them.")
@click.option("--calib-count", type=click.IntRange(min=1), default=64, show_default=True,
              help="How many of --calib to use (the first, by name).")
@click.option("--max-size", type=click.FloatRange(min=0.0, max=1.0, min_open=True), default=0.3, show_default=True,
              help="Largest int8 file as a share of the fp32 weights: the most sensitive convs stay fp32 within it.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Folder for <stage>.int8.onnx, <stage>.yaml and ocr.yaml.")
@overrides_option
def quantize(config: str | None, model: str | None, kind: str, calib: str, calib_count: int, max_size: float,
             output: str, overrides: tuple[str, ...]) -> None:
    """Post-training int8 for onnxruntime: dynamic int8 MatMul/LSTM, int8 conv weights (the most sensitive on
    --calib images kept fp32 within --max-size); int8/fp32 agreement checked on the --calib images."""
    from ocrlite.extras import require_onnx
    from ocrlite.slim.run_quantize import quantize_config

    target = config_or_preset(config, model)
    if click.get_current_context().get_parameter_source("kind") is ParameterSource.COMMANDLINE:
        build(lambda: stage_config_kind(target, (kind,)))  # never another stage quantized in silence
    build(partial(require_onnx, "ocrlite quantize", load=True))  # before the output folder is made
    result = in_new_folders([Path(output)], lambda: quantize_config(
        target, kind, Path(calib), Path(output), calib_count, overrides, max_size))
    click.echo(result.summary())
    if result.over_size():
        click.echo(f"  over --max-size {max_size:g}: every conv weight is int8 already; this is the smallest "
                   "file this method makes", err=True)
