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

import sys
from typing import Any, Sequence

import click

from ocrlite.cli.crops import classify, recognize
from ocrlite.cli.evaluate import eval_command
from ocrlite.cli.info import models, profile
from ocrlite.cli.read import detect, ocr
from ocrlite.cli.runs import fail
from ocrlite.cli.slim import export, prune, quantize
from ocrlite.cli.train import distill_command, synth, train_command

__all__ = ["main", "run"]


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
            fail(f"{error.format_message().rstrip('.')} (see '{where} --help')")
            sys.exit(error.exit_code)
        except click.ClickException as error:
            fail(error.format_message())
            sys.exit(error.exit_code)
        except click.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort): the shell's code for SIGINT
            fail("interrupted")
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


for _command in (detect, ocr, recognize, classify, models, profile, synth, train_command, distill_command,
                 eval_command, prune, export, quantize):
    main.add_command(_command)
