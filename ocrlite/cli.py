"""The ``ocrlite`` command line: thin commands over the Python API.

Every command takes images and folders; a bad item is reported on stderr in one line and
skipped, the others are still processed, and the exit code is 1 if any item failed. A bad
config value, preset, option or command is one line and exit 2. Options mean the same on every command:
``--config``/``--model`` choose the models, ``--set`` overrides config values, ``--format``
chooses what is printed, ``-o/--output`` is where results are written.

The installed ``ocrlite`` command is ``run``: it first restarts itself with tcmalloc where that is
installed (``ocrlite.backends.malloc``), then runs ``main``, the click group (which tests invoke directly).
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

import click
from click.core import ParameterSource

from ocrlite.errors import OcrliteError, error_reason, one_line

if TYPE_CHECKING:
    from ocrlite.api import OCR
    from ocrlite.stages import PipelineSpec

__all__ = ["main", "run"]

_DRAW_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


_FLAGS = "ocrlite.flags"  # click context meta: each config override a flag became (_flag_overrides) -> the flag
_SETTING_FLAGS = "ocrlite.setting_flags"  # click context meta: each setting a flag is passed to OCR as -> the flag


def _fail(message: str) -> None:
    click.echo(f"ocrlite: error: {_flags_named(message)}", err=True)


def _flags_named(message: str) -> str:
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


class _Output:
    """Where a command's printed results go: stdout, or one file written atomically at the end (its folder
    is checked, and made, when the command starts: a path that cannot be written is one line, exit 2)."""

    def __init__(self, path: str | None) -> None:
        from ocrlite.io.atomic import ensure_folder

        self.path = path
        self.chunks: list[str] = []
        if path is not None:
            _build(partial(ensure_folder, Path(path).absolute().parent))

    def line(self, text: str, end: str = "\n") -> None:
        if self.path is not None:
            self.chunks.append(text + end)
            return
        try:
            click.echo(text + end, nl=False)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)

    def close(self) -> None:
        if self.path is not None:
            from ocrlite.io.atomic import atomic_write_text

            try:
                atomic_write_text(self.path, "".join(self.chunks))
            except OSError as exc:
                _fail(f"cannot write {self.path}: {exc.strerror or exc}")
                sys.exit(1)


class _ItemRun:
    """Runs a per-image action over expanded inputs, isolating each item's failure."""

    def __init__(self, inputs: Sequence[str], extensions: Collection[str] | None = None,
                 keep_missing: bool = False) -> None:
        from ocrlite.io.images import IMAGE_EXTENSIONS, expand_inputs

        self.files, errors = expand_inputs(inputs, extensions=extensions or IMAGE_EXTENSIONS,
                                           keep_missing=keep_missing)
        self.failed = 0
        for path, message in errors:
            self._report(path, message)

    def each(self, action: Callable[[Path], None]) -> None:
        for path in self.files:
            self.attempt(path, partial(action, path))

    def attempt(self, path: Path | str, call: Callable[[], None]) -> None:
        """Run ``call``; a failure is reported against ``path`` (or ``"PATH page N"``) and does not stop the run."""
        try:
            call()
        except Exception as exc:  # one broken item must not end the run
            self._report(path, error_reason(exc))

    def _report(self, path: Path | str, message: str) -> None:
        self.failed += 1
        where = one_line(str(path))  # a file name may hold a newline: the error stays one line
        _fail(message if where in message else f"{where}: {message}")

    def finish(self, output: _Output) -> None:
        output.close()
        if self.failed:
            sys.exit(1)


def _build(factory: Callable[[], Any]) -> Any:
    """Resolve configs and load models; a config or weights problem ends the command with one line, exit 2."""
    try:
        return factory()
    except OcrliteError as exc:
        _fail(str(exc))
        sys.exit(2)


class _DrawPaths:
    """Where ``--draw`` writes each drawing: the image file it names (``.png``, ``.jpg``...), when there is one
    drawing to make, or else a png per image and page in the folder it names, named after the image; a name
    already taken in this run gets _2, _3... Several drawings for a file name are a usage error (one line), and a
    place that cannot be written is one line, exit 2, before any image is read (as ``-o FILE``)."""

    def __init__(self, draw: str, several: bool) -> None:
        from ocrlite.io.atomic import ensure_folder

        self.draw = Path(draw)
        self.file = self.draw.suffix.lower() in _DRAW_SUFFIXES
        self.taken: set[Path] = set()
        if self.file and several:
            raise click.UsageError(f"--draw {draw} names one image file, but there is more than one image or page "
                                   "to draw; give a folder")
        _build(partial(ensure_folder, (self.draw.parent if self.file else self.draw).absolute()))

    def __call__(self, image: Path, page: int | None = None) -> Path:
        if self.file:
            return self.draw
        stem = image.stem if page is None else f"{image.stem}_p{page}"
        target, copy = self.draw / f"{stem}.png", 1
        while target in self.taken:  # a/p1.png and b/p1.jpg: both p1
            copy += 1
            target = self.draw / f"{stem}_{copy}.png"
        self.taken.add(target)
        return target


def _file_name(value: str | None) -> str | None:
    """A name used as a file name in the run's export folder: no folders, not empty, not . or .."""
    if value is not None and (not value or value in (".", "..") or "/" in value or os.sep in value):
        raise click.BadParameter(f"{value!r} must be a plain file name (no folders)", param_hint="--name")
    return value


def _json(obj: dict[str, Any]) -> str:
    from ocrlite.io.writers import json_text

    return json_text(obj)


def _flag_overrides(**keys: str) -> list[str]:
    """The ``KEY=VALUE`` config overrides of the current command's flags that were given, ``keys`` mapping each
    flag's parameter name to its config key (an on/off flag: when on); applied after ``--set``, so a flag wins over
    a ``--set`` of its key, as ``--cls`` and ``--drop-score`` do. Each is remembered with its flag, so that an error
    about its value names the flag (``_fail``)."""
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


def _flag_settings(**keys: str) -> None:
    """Remember the flags of ``keys`` (parameter name -> the setting it is passed to OCR as, ``drop_score=
    "pipeline.drop_score"``) that were given: OCR's error about such a setting names the setting only, and the
    flag's value is the one checked (it is applied after every override), so ``_fail`` names the flag."""
    context = click.get_current_context()
    made: dict[str, str] = context.meta.setdefault(_SETTING_FLAGS, {})
    options = {param.name: param for param in context.command.params}
    for name, key in keys.items():
        if (value := context.params[name]) is not None:
            made[key] = _typed_flag(options[name], value)


def _check_models(config: str | None, model: str | None) -> None:
    if model is not None and config is not None:
        raise click.UsageError("--model and --config are exclusive")


def _stage_config_kind(config: str | None, kinds: Sequence[str], flag: str | None = None) -> str | None:
    """The kind of ``--config`` when it is a single stage config (else None); one of a kind the command does not
    run (``kinds``) is a ConfigError, never a stage silently left unused; it names ``flag``, the flag that left
    that kind out (``--no-cls``), when one did."""
    from ocrlite.errors import ConfigError
    from ocrlite.slim.save import config_stage_kind

    found = config_stage_kind(config) if config is not None else None
    if found is not None and found not in kinds:
        raise ConfigError(f"{config} is a {found} stage config; give a {' or '.join(kinds)} stage config or a "
                          f"pipeline config{f' (from {flag})' if flag else ''}")
    return found


def _one_stage_ocr(kind: str, config: str | None, overrides: Sequence[str], model: str | None) -> OCR:
    """An ``OCR`` that loads only its ``kind`` stage (``detect``, ``classify``). ``--config`` is a pipeline
    config or a single ``kind`` stage config, whose ``--set`` keys may leave out the ``kind.`` prefix."""
    from ocrlite.api import OCR
    from ocrlite.stages import stage_overrides

    if _stage_config_kind(config, (kind,)) is not None:  # a single stage config
        overrides = [f"{kind}.{key}" for key in stage_overrides(kind, overrides, config or "")]
    return OCR(config, overrides, model=model, stages=(kind,))


def _parse_formats(values: Sequence[str], allowed: Sequence[str], several: bool = False) -> tuple[str, ...]:
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
images_argument = click.argument("images", nargs=-1, required=True)
config_option = click.option(
    "--config", type=click.Path(dir_okay=False),
    help="YAML config: a pipeline config, or a single stage config (the default pipeline with that stage).")
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


class _Commands(click.Group):
    """The command group, whose usage errors (unknown option or command, missing argument, bad value) are one
    line on stderr, like every other error, with exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "ocrlite"
            _fail(f"{error.format_message().rstrip('.')} (see '{where} --help')")
            sys.exit(error.exit_code)
        except click.ClickException as error:
            _fail(error.format_message())
            sys.exit(error.exit_code)
        except click.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort): the shell's code for SIGINT
            _fail("interrupted")
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


class _EnvOption(click.Option):
    """An option that may be set by its environment variable: a bad value from there names the variable, not
    the option the user did not type."""

    def handle_parse_result(self, ctx: click.Context, opts: Any, args: list[str]) -> Any:
        try:
            return super().handle_parse_result(ctx, opts, args)
        except click.BadParameter as exc:
            if self.name in opts or not isinstance(self.envvar, str):
                raise
            raise click.BadParameter(exc.message, ctx, param_hint=f"the environment variable {self.envvar}") from None


@click.group(name="ocrlite", cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ocrlite")
@click.option("--threads", cls=_EnvOption, type=click.IntRange(min=1), envvar="OCRLITE_THREADS",
              help="CPU threads for the nets (default: all cores; env OCRLITE_THREADS), in batch mode "
                   "for all workers together. Use 1 when other jobs share the CPU.")
def main(threads: int | None) -> None:
    """Fast, lightweight OCR: detect, orient and recognize text in images."""
    if threads is not None:
        from ocrlite.backends.threads import set_threads

        set_threads(threads)


def run() -> None:
    """The ``ocrlite`` command: ``main`` under tcmalloc where it is installed (``OCRLITE_MALLOC=system``: not)."""
    from ocrlite.backends.malloc import relaunch_with_tcmalloc

    relaunch_with_tcmalloc()
    main()


@main.command()
@images_argument
@config_option
@model_option
@det_limit_option
@box_thresh_option
@click.option("--unclip-ratio", type=float, help="How far boxes are grown around the text kernel.")
@click.option("--draw", type=click.Path(),
              help="Write the image with boxes drawn: to this image file (.png, .jpg...) for one image, else into "
                   "this folder (a png per image).")
@format_option
@output_file_option
@overrides_option
def detect(images: tuple[str, ...], config: str | None, model: str | None, det_limit_side_len: int | None,
           box_thresh: float | None, unclip_ratio: float | None, draw: str | None, formats: tuple[str, ...],
           output: str | None, overrides: tuple[str, ...]) -> None:
    """Text boxes of each image: JSON per image, ICDAR-style txt (x1,y1,...,y4 per box) or tsv. It reads
    images, and of a multi-page TIFF its first page (use ``ocrlite ocr`` for PDFs and every page)."""
    from ocrlite.io.atomic import write_image
    from ocrlite.io.draw import draw_boxes
    from ocrlite.io.writers import DETECTION_TSV_HEADER, STREAM_FORMATS, detection_lines

    _check_models(config, model)
    fmt = _parse_formats(formats, STREAM_FORMATS)[0]
    extra = _flag_overrides(det_limit_side_len="det.preprocess.limit_side_len", box_thresh="det.postprocess.box_thresh",
                            unclip_ratio="det.postprocess.unclip_ratio")
    run, out = _ItemRun(images), _Output(output)
    draw_path = _DrawPaths(draw, len(run.files) > 1) if draw else None
    engine = _build(lambda: _one_stage_ocr("det", config, [*overrides, *extra], model))
    if fmt == "tsv":
        out.line("\t".join(DETECTION_TSV_HEADER))

    def handle(path: Path) -> None:
        image = _image_file(path)
        boxes = engine.detect(image)
        for line in detection_lines(fmt, str(path), image.shape[1], image.shape[0], boxes):
            out.line(line)
        if fmt == "txt" and len(run.files) > 1:
            out.line("")
        if draw_path is not None:
            write_image(draw_path(path), draw_boxes(image, boxes))

    run.each(handle)
    run.finish(out)


def _gather_inputs(images: Sequence[str], files_from: Any) -> list[str]:
    """IMAGES plus the paths listed in ``--files-from``; an IMAGES entry ``-`` reads stdin."""
    from ocrlite.batch.plan import read_paths_list

    inputs = [path for path in images if path != "-"]
    try:
        if "-" in images:
            with click.open_file("-", errors="surrogateescape") as stdin:  # file names may be any bytes
                inputs += read_paths_list(stdin)
        if files_from is not None:
            inputs += read_paths_list(files_from)
    except ValueError as exc:
        raise click.UsageError(f"the list of paths: {exc}") from None
    if not inputs:
        raise click.UsageError("no inputs: give IMAGES, '-' or --files-from")
    return inputs


def _run_batch(inputs: list[str], output: str, engine_args: dict[str, Any], batch: dict[str, Any],
               ray: dict[str, Any] | None = None) -> None:
    """``ocr -o DIR``: the batch runner; exit 1 if any item failed, 2 on a model error, 130 on Ctrl-C, 143 on
    SIGTERM.

    ``ray`` (``RayOptions`` fields) runs the same batch on Ray actors instead of local processes.
    """
    from ocrlite.batch.run import BatchOptions, EngineSpec, Terminated, run_batch

    try:
        execute = None
        if ray is not None:
            from ocrlite.batch.ray_runner import RayExecutor, RayOptions

            execute = RayExecutor(RayOptions(**ray))
        report = run_batch(inputs, EngineSpec(**engine_args), BatchOptions(output=Path(output), **batch), execute)
    except KeyboardInterrupt as exc:
        _fail("interrupted; finished outputs are kept, rerun to continue")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except OcrliteError as exc:
        _fail(str(exc))
        sys.exit(2)
    sys.exit(1 if report.failures else 0)


cls_option = click.option(
    "--cls/--no-cls", "use_cls", default=None,
    help="Turn upside-down lines before reading them with the 0/180 direction classifier "
         "(default: the config's pipeline.use_cls: on for every shipped preset but the PP-OCRv5/v6 ones).")


@main.command()
@click.argument("images", nargs=-1)
@config_option
@model_option
@click.option("--format", "formats", multiple=True, metavar="FMT[,FMT]",
              help="stdout: json (default), txt (pages apart by a form feed, a page or file that could not be read "
                   "left empty) or tsv. With -o: any of json,txt,tsv,hocr,pdf, comma-separated or repeated "
                   "(default json).")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="Batch mode: write outputs under this folder (mirroring the inputs) and "
                   "ocrlite-report.json, which records what made each output; an input is skipped when its "
                   "outputs were made from it, unchanged since, with the same settings (--dpi, model, --set...).")
@click.option("--files-from", type=click.File("r", errors="surrogateescape"),
              help="Also read input paths from this file ('-': stdin): one per line, relative ones from the "
                   "working folder, each line as it is (spaces are part of the name); blank lines and '#' comments "
                   "skipped.")
@click.option("--glob", help="Batch mode: only files in folders whose path matches, e.g. '*.pdf'.")
@click.option("--dpi", type=click.FloatRange(min=10, max=1200), default=200, show_default=True,
              help="Resolution PDF pages are rendered at.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Batch mode: processes (Ray: actors), each loading the models once, the cores (--threads) "
                   "split between them (default: one per core, up to 8; Ray: the cluster's CPUs, at most --threads, / "
                   "--threads-per-worker).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Batch mode: run on this machine's processes, or on Ray actors (pip install \"ocrlite[ray]\").")
@click.option("--ray-address", metavar="auto|HOST:PORT",
              help="Ray: join this cluster (default: start a local Ray on this machine).")
@click.option("--threads-per-worker", type=click.IntRange(min=1),
              help="Ray: threads for the nets, and CPUs reserved, per actor (default 1).")
@click.option("--pages-per-job", type=click.IntRange(min=1),
              help="Ray: PDFs/TIFFs with more pages are split into page ranges of this many (default 8).")
@click.option("--ray-input", type=click.Choice(["paths", "bytes"]),
              help="Ray: send the actors file paths (inputs and -o DIR on a filesystem every node shares; "
                   "default) or file bytes (inputs and -o DIR only on this machine: read and written here).")
@click.option("--overwrite", is_flag=True, help="Batch mode: redo inputs whose outputs are up to date.")
@click.option("-q", "--quiet", is_flag=True, help="Batch mode: no progress bar and no summary line.")
@click.option("--draw", type=click.Path(),
              help="Write boxes and recognized text: to this image file (.png, .jpg...) for one image of one page, "
                   "else into this folder (a png per image and page).")
@cls_option
@click.option("--rotate-pages", is_flag=True,
              help="Turn pages upright first (0/90/180/270: page classifier + detected lines); "
                   "boxes stay in the input's pixels.")
@click.option("--deskew", is_flag=True, help="Level pages tilted by a few degrees before reading them.")
@click.option("--drop-score", type=float, help="Drop lines recognized with a lower score (default 0.5).")
@click.option("--rec-batch", type=click.IntRange(min=1), help="Text lines per recognition batch.")
@det_limit_option
@box_thresh_option
@backend_option
@overrides_option
def ocr(images: tuple[str, ...], config: str | None, model: str | None, formats: tuple[str, ...], output: str | None,
        files_from: Any, glob: str | None, dpi: float, workers: int | None, executor: str, ray_address: str | None,
        threads_per_worker: int | None, pages_per_job: int | None, ray_input: str | None, overwrite: bool,
        quiet: bool, draw: str | None, use_cls: bool | None, rotate_pages: bool, deskew: bool,
        drop_score: float | None, rec_batch: int | None, det_limit_side_len: int | None, box_thresh: float | None,
        backend: str | None, overrides: tuple[str, ...]) -> None:
    """Read the text of images and PDFs: JSON lines, text or tsv on stdout, or files with -o DIR."""
    from ocrlite.io.writers import FORMATS, STREAM_FORMATS

    _check_models(config, model)
    inputs = _gather_inputs(images, files_from)
    fmts = _parse_formats(formats, FORMATS if output is not None else STREAM_FORMATS, several=output is not None)
    extra = _flag_overrides(det_limit_side_len="det.preprocess.limit_side_len", box_thresh="det.postprocess.box_thresh",
                            rec_batch="rec.preprocess.batch_size", rotate_pages="pipeline.page_orientation",
                            deskew="pipeline.deskew")
    _flag_settings(use_cls="pipeline.use_cls", drop_score="pipeline.drop_score")
    engine_args = {"config": config, "model": model, "overrides": (*overrides, *extra),
                   "use_cls": use_cls, "drop_score": drop_score, "backend": backend}
    ray_args = {"address": ray_address, "workers": workers, "threads": threads_per_worker,
                "pages_per_job": pages_per_job, "inputs": ray_input}
    if executor == "local" and any(v is not None for k, v in ray_args.items() if k != "workers"):
        raise click.UsageError(
            "--ray-address, --threads-per-worker, --pages-per-job and --ray-input need --executor ray")
    if output is not None:
        if draw:
            raise click.UsageError("--draw is for stdout mode; it cannot be combined with -o")
        _run_batch(inputs, output, engine_args, {
            "formats": fmts, "dpi": dpi, "workers": workers, "overwrite": overwrite,
            "quiet": quiet, "glob": glob, "cores": click.get_current_context().find_root().params["threads"]},
            {k: v for k, v in ray_args.items() if v is not None} if executor == "ray" else None)
        return
    if glob or workers is not None or overwrite or quiet or executor != "local":
        raise click.UsageError("--glob, --workers, --executor, --overwrite and --quiet need -o DIR")
    _print_pages(inputs, engine_args, fmts[0], dpi, draw)


def _print_pages(inputs: list[str], engine_args: dict[str, Any], fmt: str, dpi: float, draw: str | None) -> None:
    """``ocr`` without -o: every page of every input, printed in order as it is read (``OCR.read_documents``)."""
    from concurrent.futures import ThreadPoolExecutor

    from ocrlite.batch.run import EngineSpec
    from ocrlite.io.atomic import write_image
    from ocrlite.io.draw import draw_lines
    from ocrlite.io.pages import INPUT_EXTENSIONS, count_pages
    from ocrlite.io.writers import TsvWriter, page_text, tsv_rows
    from ocrlite.results import DocumentPage

    run, out = _ItemRun(inputs, INPUT_EXTENSIONS, keep_missing=True), _Output(None)  # a missing file: its empty page
    draw_path: _DrawPaths | None = None
    if draw:  # pages are counted only to tell whether there is one drawing to make
        draw_path = _DrawPaths(draw, len(run.files) > 1 or any(count_pages(path) > 1 for path in run.files))
    engine = _build(EngineSpec(**engine_args).build)
    if fmt == "tsv":
        out.line("\t".join(("image", *TsvWriter.HEADER)))
    pages = 0  # txt: the pages printed

    def show(item: DocumentPage) -> None:
        nonlocal pages
        if fmt == "txt":  # a form feed between pages, as in batch txt; a page or file not read: an empty page
            out.line(("\f" if pages else "") + (page_text(item.result) if item.result is not None else ""), end="")
            pages += 1
        if item.error is not None:
            raise item.error
        assert item.image is not None and item.result is not None  # a page without an error was read
        path, number, paged, image, page = item.path, item.number, item.paged, item.image, item.result
        if fmt == "json":
            out.line(_json({"image": str(path), **({"page": number} if paged else {}), **page.to_dict()}))
        elif fmt == "tsv":
            for row in tsv_rows(number, page):
                out.line(f"{path}\t{row}")
        if draw_path is not None:
            target = draw_path(path, number if paged else None)
            drawn = draw_lines(image, page.lines)
            writes.append((path, drawing.submit(write_image, target, drawn)))

    writes: list[tuple[Path, Any]] = []
    with ThreadPoolExecutor(1, thread_name_prefix="ocrlite-draw") as drawing:
        for item in engine.read_documents(run.files, dpi):
            where = f"{item.path} page {item.number}" if item.paged and item.number else item.path
            run.attempt(where, partial(show, item))
    for path, written in writes:
        run.attempt(path, written.result)
    run.finish(out)


def _image_file(path: Path) -> Any:
    """The image of ``path`` for a command that reads images, not documents (detect, recognize, classify): a PDF
    is an ImageReadError naming ``ocrlite ocr``, and of a multi-page TIFF the first page is read, with a warning."""
    from ocrlite.errors import ImageReadError
    from ocrlite.io.images import read_image
    from ocrlite.io.pages import PDF_EXTENSIONS, count_pages

    command = click.get_current_context().info_name
    if path.suffix.lower() in PDF_EXTENSIONS:
        raise ImageReadError(f"{path}: {command} reads images, not PDFs; use 'ocrlite ocr' for PDFs")
    image = read_image(path)
    if (frames := count_pages(path)) > 1:
        click.echo(f"ocrlite: warning: {path}: {command} reads the first of its {frames} pages; "
                   "'ocrlite ocr' reads them all", err=True)
    return image


def _crop_command(images: Sequence[str], fmt: str, output: str | None,
                  infer: Callable[[list[Any]], list[tuple[Any, float]]], field: str) -> None:
    """Read crops one by one (bad ones reported), then run ``infer`` on them in chunks. When a chunk fails, its
    crops are read again one at a time, so only the crop that fails is reported (one line) and skipped."""
    run, out = _ItemRun(list(images)), _Output(output)
    chunk: list[tuple[Path, Any]] = []
    if fmt == "tsv":
        out.line(f"image\t{field}\tscore")

    def show(path: Path, value: Any, score: float) -> None:
        if fmt == "json":
            out.line(_json({"image": str(path), field: value, "score": round(float(score), 5)}))
        else:
            out.line(f"{path}\t{value}\t{score:.4f}")

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
        chunk.append((path, _image_file(path)))
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

    fmt = _parse_formats(formats or ("json" if as_json else "txt",), STREAM_FORMATS)[0]
    if as_json and fmt != "json":
        raise click.UsageError(f"--json means --format json; it conflicts with --format {fmt}")
    return fmt


@main.command()
@images_argument
@config_option
@model_option
@cls_option
@crop_format_option
@json_alias_option
@output_file_option
@overrides_option
def recognize(images: tuple[str, ...], config: str | None, model: str | None, use_cls: bool | None,
              formats: tuple[str, ...], as_json: bool, output: str | None, overrides: tuple[str, ...]) -> None:
    """Read already-cropped text lines: text and score per crop (txt: path, text, score)."""
    from ocrlite.api import OCR

    _check_models(config, model)
    fmt = _crop_format(formats, as_json)
    _flag_settings(use_cls="pipeline.use_cls")
    stages = ("rec",) if use_cls is False else ("cls", "rec")
    _build(lambda: _stage_config_kind(config, stages, "--no-cls" if use_cls is False else None))
    engine = _build(lambda: OCR(config, overrides, model=model, use_cls=use_cls, stages=stages))
    _crop_command(images, fmt, output, engine.recognize, "text")


@main.command()
@images_argument
@config_option
@model_option
@crop_format_option
@json_alias_option
@output_file_option
@overrides_option
def classify(images: tuple[str, ...], config: str | None, model: str | None, formats: tuple[str, ...],
             as_json: bool, output: str | None, overrides: tuple[str, ...]) -> None:
    """Tell whether cropped text lines are upright (0) or upside down (180)."""
    _check_models(config, model)
    fmt = _crop_format(formats, as_json)
    engine = _build(lambda: _one_stage_ocr("cls", config, overrides, model))
    _build(lambda: engine.line_classifier)  # no cls stage: one line, before any crop is read
    _crop_command(images, fmt, output, engine.classify, "angle")


@main.command()
def models() -> None:
    """List the model presets: name, weights size, languages, what each is good for, installed or not."""
    from ocrlite.files import MODELS_HINT
    from ocrlite.presets import DEFAULT_PRESET, PRESETS, preset_status

    rows = [("NAME", "SIZE", "INSTALLED", "LANGUAGES", "GOOD FOR")]
    for preset in PRESETS.values():
        status = _build(partial(preset_status, preset))
        name = f"{preset.name}{' (default)' if preset.name == DEFAULT_PRESET else ''}"
        size = f"{status.size_mb:.1f} MB" if status.installed else "-"
        rows.append((name, size, "yes" if status.installed else "no *", preset.languages, preset.good_for))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    if any(row[2] == "no *" for row in rows):
        click.echo(f"* not installed: the weights are in {MODELS_HINT}")


def _config_or_preset(config: str | None, model: str | None) -> str:
    """The config file a command that reads one works on: ``--config``, else the ``--model`` preset's
    pipeline config (default: the default preset's); both given is a usage error."""
    from ocrlite.presets import DEFAULT_PRESET, get_preset

    _check_models(config, model)
    return config or _build(lambda: str(get_preset(model or DEFAULT_PRESET).path))


@main.command()
@config_option
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

    target = _config_or_preset(config, model)
    shape = _build(lambda: parse_input(input_shape)) if input_shape else None
    for report in _build(lambda: profile_config(target, overrides, shape, runs, stage=kind)):
        if per_layer:
            click.echo(report.table())
        click.echo(report.totals())


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--count", type=click.IntRange(min=1), required=True, help="Number of line images to write.")
@click.option("--lang", type=click.Choice(["en", "en+zh"]), default="en", show_default=True,
              help="en: document lines and scene words; en+zh: also Chinese lines.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed; the same seed writes the same set.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="First sample index (disjoint ranges of one seed give disjoint sets).")
@click.option("--height", type=click.IntRange(min=8), default=32, show_default=True, help="Image height in pixels.")
@click.option("--charset", default="ppocr_keys_v1.txt", show_default=True,
              help="Charset file (shipped name or path); texts use only its characters and space.")
@click.option("--fonts", type=click.Path(file_okay=False), default="/usr/share/fonts", show_default=True,
              help="Folder searched for TTF/OTF fonts.")
@click.option("--words", type=click.Path(dir_okay=False), default="/usr/share/dict/american-english",
              show_default=True, help="Word list (one word per line).")
@click.option("--scene-share", type=click.FloatRange(0.0, 1.0),
              help="Share of the English samples that are photo-like single words; default as "
                   "train.data.scene_share's.")
@click.option("--zh-share", type=click.FloatRange(0.0, 1.0),
              help="With --lang en+zh, share of Chinese lines; default as train.data.zh_share's.")
def synth(out_dir: str, count: int, lang: str, seed: int, start: int, height: int, charset: str, fonts: str,
          words: str, scene_share: float | None, zh_share: float | None) -> None:
    """Render synthetic text-line images and a labels.txt (path<TAB>text) for recognition training."""
    from tqdm import tqdm

    from .charset import Charset
    from .files import find_charset
    from .train.synth import write_synth_set

    if zh_share is not None and lang != "en+zh":
        raise click.UsageError(f"--zh-share is the share of Chinese lines, which --lang {lang} does not draw; "
                               "add --lang en+zh")
    chars = _build(lambda: Charset.from_file(find_charset(charset, None, Path.cwd()), use_space_char=True))
    with tqdm(total=count, unit="img", disable=None) as bar:
        shares = {name: value for name, value in (("scene_share", scene_share), ("zh_share", zh_share))
                  if value is not None}
        labels = _in_new_folders([Path(out_dir)], lambda: write_synth_set(  # no fonts: no empty folder left
            Path(out_dir), count, chars, lang, seed, height, start, bar.update, Path(fonts), Path(words), **shares))
    click.echo(str(labels))


_TRAIN_OPTIONS = (
    overrides_option,
    click.option("-o", "--output", "run_dir", type=click.Path(file_okay=False), required=True,
                 help="Run folder: logs, checkpoints, best weights and the export."),
    click.option("--resume", type=click.Path(exists=True, file_okay=False),
                 help="Continue from a checkpoint folder or a run folder (its latest checkpoint)."),
    click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
    click.option("--export/--no-export", default=True, show_default=True,
                 help="Write RUN/export/NAME.{safetensors,json,yaml} from the best weights at the end."),
    click.option("--name", callback=lambda ctx, param, value: _file_name(value),
                 help="Exported model name (default: the config's file stem)."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
)


def train_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every command on the trainer takes (``train``, ``distill``), meaning the same on each."""
    for option in reversed(_TRAIN_OPTIONS):
        command = option(command)
    return command


def _train(config: str, overrides: tuple[str, ...], run_dir: str, resume: str | None, device: str, export: bool,
           name: str | None, quiet: bool, teacher: str | None = None, distill: bool = False) -> None:
    """Run the trainer (``ocrlite.train.run``) and print its summary and the exported config. Ctrl-C (exit 130)
    and SIGTERM (143) stop it with one line; the last checkpoint is kept."""
    from .batch.run import Terminated, sigterm_as_ctrl_c
    from .train.run import run_training

    try:
        with sigterm_as_ctrl_c():
            result, exported = _in_new_folders([Path(run_dir)], lambda: run_training(  # a bad setting: no folder
                config, overrides, Path(run_dir), device, Path(resume) if resume else None, export, name, not quiet,
                teacher, distill, partial(click.echo, err=True)))
    except KeyboardInterrupt as exc:
        _fail(f"interrupted; continue with --resume {run_dir} (from its last checkpoint)")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    best = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best.items())
    click.echo(f"steps={result.steps} samples={result.samples_seen} cpu_s={result.cpu_seconds:.0f} "
               f"loss={result.last_loss:.4f} best: {best or '-'}")
    if exported is not None:
        click.echo(f"exported: {exported}")


@main.command("train")
@click.argument("config")
@train_options
def train_command(config: str, overrides: tuple[str, ...], run_dir: str, resume: str | None, device: str,
                  export: bool, name: str | None, quiet: bool) -> None:
    """Train or fine-tune a stage from a config with a train: section (e.g. configs/train/rec_ppocrv2_en.yaml)."""
    _train(config, overrides, run_dir, resume, device, export, name, quiet)


@main.command("distill")
@click.argument("config")
@click.option("--teacher", metavar="NAME|CONFIG",
              help="Frozen teacher: a preset (see 'ocrlite models') or a stage/pipeline config "
                   "(sets train.distill.teacher; modes kd and cml).")
@train_options
def distill_command(config: str, teacher: str | None, overrides: tuple[str, ...], run_dir: str, resume: str | None,
                    device: str, export: bool, name: str | None, quiet: bool) -> None:
    """Train a stage config (train: section) by distillation, train.distill.mode: kd (default: a teacher's
    KD term added to a rec/cls loss; --set train.distill.weight=1.0, train.distill.temperature=2.0), udml
    (two recognizer students: CTC on both + weight * DML + feature_weight * L2 of their backbone features),
    cml (detectors) or pseudo (a teacher of any charset labels train.distill.unlabelled images, crops or
    pages, with its text; the student's rec task trains on the kept labels)."""
    _train(config, overrides, run_dir, resume, device, export, name, quiet, teacher, distill=True)


@main.command(name="eval")
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
    fmt = _parse_formats(formats or ("table",), ("table", "json"))[0]
    _build(lambda: unique_names([*names, *([Path(config).name] if config is not None else [])]))
    if task != "e2e":  # a stage config of another kind would be left unused, the row named after it
        _build(lambda: _stage_config_kind(config, (task,)))
    out = _Output(output)  # its folder checked before the evaluation, not after it

    def system(name: str | None) -> Any:
        return ocrlite_system(name or "default", OCR(overrides=overrides, model=name, backend=backend))

    systems = [_build(partial(system, name)) for name in names]
    if config is not None:  # after the presets: one run scores e.g. a parent preset and its fine-tune
        systems.append(_build(lambda: ocrlite_system(Path(config).name, OCR(config, overrides, backend=backend))))
    if not systems:
        systems = [_build(partial(system, None))]
    rows = _build(lambda: evaluate(task, systems, Path(data), limit, Path(split) if split else None, unit=unit))
    if fmt == "json":
        for row in rows:
            out.line(_json(row))
    else:
        out.line(format_table(rows))
    out.close()


def _in_new_folders(folders: Sequence[Path], work: Callable[[], Any]) -> Any:
    """``work()`` (its OcrliteError: one line, exit 2) once each of ``folders`` is checked writable, and made
    when absent, before any work (``ensure_folder``); when the command fails, the folders made here are
    removed again if still empty, so a failed run leaves no empty output folder behind."""
    from ocrlite.io.atomic import ensure_folder

    made = [part for folder in folders for part in (folder.absolute(), *folder.absolute().parents)
            if not part.exists()]
    try:
        for folder in folders:
            _build(partial(ensure_folder, folder))
        return _build(work)
    except BaseException:
        for part in sorted(set(made), key=lambda path: len(path.parts), reverse=True):  # the deepest first
            try:
                part.rmdir()
            except OSError:  # not empty (or gone): it holds what the run wrote, keep it
                pass
        raise


@main.command()
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

    target = _config_or_preset(config, model)
    _build(lambda: _stage_config_kind(target, ("det",)))  # a rec/cls stage config: not read as a pipeline
    _build(require_torch_pruning)  # before the output folder is made
    folders = [Path(output)]
    if sensitivity and not Path(sensitivity).is_file():  # measured, then written there: checked before the work
        folders.append(Path(sensitivity).absolute().parent)
    result = _in_new_folders(folders, lambda: prune_stage(
        target, Path(output), flops_target, criterion, overrides, Path(sensitivity) if sensitivity else None,
        Path(images) if images else None, sensitivity_images))
    click.echo(result.summary())


@main.command(name="export")
@config_option
@model_option
@click.option("--stage", "kind", type=click.Choice(["det", "cls", "rec"]), default="det", show_default=True,
              help="Which stage of a pipeline config to export (a stage config names its own; another --stage is "
                   "refused).")
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True)
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

    _check_models(config, model)
    if Path(output).suffix.lower() != ".onnx":  # never a config's det.yaml or weights replaced by an ONNX graph
        raise click.BadParameter(f"{output} is not an .onnx path; export writes an ONNX file",
                                 param_hint="'-o' / '--output'")
    _build(partial(require_onnx, "exporting to ONNX"))  # before the output's folder is made
    context = click.get_current_context()
    asked = context.get_parameter_source("head") is ParameterSource.COMMANDLINE
    default_stage = context.get_parameter_source("kind") is not ParameterSource.COMMANDLINE
    if not default_stage:  # --stage rec with a det stage config: refused, not the det net exported in silence
        _build(lambda: _stage_config_kind(config, (kind,)))

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

    kind, given, diff = _in_new_folders([Path(output).absolute().parent], work)
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


@main.command()
@click.option("--config", type=click.Path(dir_okay=False),
              help="Pipeline or stage config whose stage is quantized (default: the default preset).")
@model_option
@click.option("--stage", "kind", type=click.Choice(["det", "cls", "rec"]), default="rec", show_default=True,
              help="Which stage of a pipeline config (a stage config names its own; another --stage is refused).")
@click.option("--calib", required=True, type=click.Path(file_okay=False, exists=True),
              help="Check images (line crops for cls/rec, pages for det): int8 vs fp32 agreement is measured on them.")
@click.option("--calib-count", type=click.IntRange(min=1), default=64, show_default=True)
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

    target = _config_or_preset(config, model)
    if click.get_current_context().get_parameter_source("kind") is ParameterSource.COMMANDLINE:
        _build(lambda: _stage_config_kind(target, (kind,)))  # never another stage quantized in silence
    _build(partial(require_onnx, "ocrlite quantize", load=True))  # before the output folder is made
    result = _in_new_folders([Path(output)], lambda: quantize_config(
        target, kind, Path(calib), Path(output), calib_count, overrides, max_size))
    click.echo(result.summary())
    if result.over_size():
        click.echo(f"  over --max-size {max_size:g}: every conv weight is int8 already; this is the smallest "
                   "file this method makes", err=True)


if __name__ == "__main__":  # python -m ocrlite.cli (as python -m ocrlite): it exited 0 without running anything
    run()
