"""How a command runs: its printed output, its items (a failure reported in one line, the others still done),
its models built (a config error: one line, exit 2) and its output folders."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Sequence

import click

from ocrlite.cli.options import flags_named
from ocrlite.errors import OcrliteError, error_reason, one_line

if TYPE_CHECKING:
    from ocrlite.api import OCR

__all__ = [
    "fail", "Output", "ItemRun", "gather_inputs", "build", "json_line", "check_models", "config_or_preset",
    "stage_config_kind", "one_stage_ocr", "image_file", "in_new_folders",
]


def fail(message: str) -> None:
    """Print ``message`` as one error line on stderr, naming the flag the user typed where it is about one."""
    click.echo(f"ocrlite: error: {flags_named(message)}", err=True)


class Output:
    """Where a command's printed results go: stdout, or one file written atomically at the end (its folder
    is checked, and made, when the command starts: a path that cannot be written is one line, exit 2)."""

    def __init__(self, path: str | None) -> None:
        from ocrlite.io.atomic import ensure_folder

        self.path = path
        self.chunks: list[str] = []
        if path is not None:
            build(partial(ensure_folder, Path(path).absolute().parent))

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
                fail(f"cannot write {self.path}: {exc.strerror or exc}")
                sys.exit(1)


class ItemRun:
    """Runs a per-image action over expanded inputs, isolating each item's failure. A missing file stays in its
    place, for the action's reader to report (``no such file``, in input order, on every command): ``ocr``'s txt
    keeps its empty page, ``detect``'s its empty block."""

    def __init__(self, inputs: Sequence[str], extensions: Collection[str] | None = None) -> None:
        from ocrlite.io.images import IMAGE_EXTENSIONS, expand_inputs

        self.files, errors = expand_inputs(inputs, extensions=extensions or IMAGE_EXTENSIONS, keep_missing=True)
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
        fail(message if where in message else f"{where}: {message}")

    def finish(self, output: Output) -> None:
        output.close()
        if self.failed:
            sys.exit(1)


def gather_inputs(images: Sequence[str], files_from: str | None) -> list[str]:
    """IMAGES plus the paths listed in the file ``--files-from`` names; an IMAGES entry ``-``, or ``--files-from -``,
    reads stdin (not both)."""
    from ocrlite.batch.plan import read_paths_list

    if "-" in images and files_from == "-":
        raise click.UsageError("'-' and --files-from - both read the paths from stdin; give one of them")
    inputs = [path for path in images if path != "-"]
    try:
        if "-" in images:
            with click.open_file("-", errors="surrogateescape") as stdin:  # file names may be any bytes
                inputs += read_paths_list(stdin)
        if files_from is not None:
            with click.open_file(files_from, errors="surrogateescape") as listed:
                inputs += read_paths_list(listed)
    except ValueError as exc:
        raise click.UsageError(f"the list of paths: {exc}") from None
    if not inputs:
        raise click.UsageError("no inputs: give IMAGES, '-' or --files-from")
    return inputs


def build(factory: Callable[[], Any]) -> Any:
    """Resolve configs and load models; a config or weights problem ends the command with one line, exit 2."""
    try:
        return factory()
    except OcrliteError as exc:
        fail(str(exc))
        sys.exit(2)


def json_line(obj: dict[str, Any]) -> str:
    """``obj`` as one line of JSON, as every command prints it (``writers.json_text``)."""
    from ocrlite.io.writers import json_text

    return json_text(obj)


def check_models(config: str | None, model: str | None) -> None:
    """``--model`` and ``--config`` both given: a usage error (each names the models alone)."""
    if model is not None and config is not None:
        raise click.UsageError("--model and --config are exclusive")


def stage_config_kind(config: str | None, kinds: Sequence[str], flag: str | None = None) -> str | None:
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


def one_stage_ocr(kind: str, config: str | None, overrides: Sequence[str], model: str | None) -> OCR:
    """An ``OCR`` that loads only its ``kind`` stage (``detect``, ``classify``). ``--config`` is a pipeline
    config or a single ``kind`` stage config, whose ``--set`` keys may leave out the ``kind.`` prefix."""
    from ocrlite.api import OCR
    from ocrlite.stages import stage_overrides

    if stage_config_kind(config, (kind,)) is not None:  # a single stage config
        overrides = [f"{kind}.{key}" for key in stage_overrides(kind, overrides, config or "")]
    return OCR(config, overrides, model=model, stages=(kind,))



def config_or_preset(config: str | None, model: str | None) -> str:
    """The config file a command that reads one works on: ``--config``, else the ``--model`` preset's
    pipeline config (default: the default preset's); both given is a usage error."""
    from ocrlite.presets import DEFAULT_PRESET, get_preset

    check_models(config, model)
    return config or build(lambda: str(get_preset(model or DEFAULT_PRESET).path))


def image_file(path: Path) -> Any:
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



def in_new_folders(folders: Sequence[Path], work: Callable[[], Any]) -> Any:
    """``work()`` (its OcrliteError: one line, exit 2) once each of ``folders`` is checked writable, and made
    when absent, before any work (``ensure_folder``); when the command fails, the folders made here are
    removed again if still empty, so a failed run leaves no empty output folder behind."""
    from ocrlite.io.atomic import ensure_folder

    made = [part for folder in folders for part in (folder.absolute(), *folder.absolute().parents)
            if not part.exists()]
    try:
        for folder in folders:
            build(partial(ensure_folder, folder))
        return build(work)
    except BaseException:
        for part in sorted(set(made), key=lambda path: len(path.parts), reverse=True):  # the deepest first
            try:
                part.rmdir()
            except OSError:  # not empty (or gone): it holds what the run wrote, keep it
                pass
        raise
