"""The commands that make models from data: ``ocrlite synth`` (training lines), ``train`` and ``distill``."""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Callable

import click

from ocrlite.cli.options import overrides_option
from ocrlite.cli.runs import build, fail, in_new_folders

__all__ = ["synth", "train_command", "distill_command"]


def _file_name(value: str | None) -> str | None:
    """A name used as a file name in the run's export folder: no folders, not empty, not . or .."""
    if value is not None and (not value or value in (".", "..") or "/" in value or os.sep in value):
        raise click.BadParameter(f"{value!r} must be a plain file name (no folders)", param_hint="--name")
    return value


@click.command()
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

    from ocrlite.charset import Charset
    from ocrlite.files import find_charset
    from ocrlite.train.synth import write_synth_set

    if zh_share is not None and lang != "en+zh":
        raise click.UsageError(f"--zh-share is the share of Chinese lines, which --lang {lang} does not draw; "
                               "add --lang en+zh")
    chars = build(lambda: Charset.from_file(find_charset(charset, None, Path.cwd()), use_space_char=True))
    with tqdm(total=count, unit="img", disable=None) as bar:
        shares = {name: value for name, value in (("scene_share", scene_share), ("zh_share", zh_share))
                  if value is not None}
        labels = in_new_folders([Path(out_dir)], lambda: write_synth_set(  # no fonts: no empty folder left
            Path(out_dir), count, chars, lang, seed, height, start, bar.update, Path(fonts), Path(words), **shares))
    click.echo(str(labels))


_TRAIN_OPTIONS = (
    overrides_option,
    click.option("-o", "--output", "run_dir", type=click.Path(file_okay=False), required=True,
                 help="Run folder: logs, checkpoints, best weights and the export."),
    click.option("--resume", type=click.Path(exists=True, file_okay=False),
                 help="Continue from a checkpoint folder or a run folder (its latest checkpoint)."),
    click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                 help="Where the net trains: the CPU or a CUDA GPU."),
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
    from ocrlite.batch.run import Terminated, sigterm_as_ctrl_c
    from ocrlite.train.run import run_training

    try:
        with sigterm_as_ctrl_c():
            result, exported = in_new_folders([Path(run_dir)], lambda: run_training(  # a bad setting: no folder
                config, overrides, Path(run_dir), device, Path(resume) if resume else None, export, name, not quiet,
                teacher, distill, partial(click.echo, err=True)))
    except KeyboardInterrupt as exc:
        fail(f"interrupted; continue with --resume {run_dir} (from its last checkpoint)")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    best = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.best.items())
    click.echo(f"steps={result.steps} samples={result.samples_seen} cpu_s={result.cpu_seconds:.0f} "
               f"loss={result.last_loss:.4f} best: {best or '-'}")
    if exported is not None:
        click.echo(f"exported: {exported}")


@click.command("train")
@click.argument("config")
@train_options
def train_command(config: str, overrides: tuple[str, ...], run_dir: str, resume: str | None, device: str,
                  export: bool, name: str | None, quiet: bool) -> None:
    """Train or fine-tune a stage from a config with a train: section (e.g. configs/train/rec_ppocrv2_en.yaml)."""
    _train(config, overrides, run_dir, resume, device, export, name, quiet)


@click.command("distill")
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
