"""``ocrlite detect`` and ``ocrlite ocr``: the commands that read pages (printed, or batch mode with -o DIR)."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from ocrlite.cli.options import (
    backend_option,
    box_thresh_option,
    cls_option,
    config_option,
    det_limit_option,
    files_from_option,
    flag_overrides,
    flag_settings,
    format_option,
    images_argument,
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
    fail,
    gather_inputs,
    image_file,
    json_line,
    one_stage_ocr,
)
from ocrlite.errors import OcrliteError

__all__ = ["detect", "ocr"]

_DRAW_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


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
        build(partial(ensure_folder, (self.draw.parent if self.file else self.draw).absolute()))

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


@click.command()
@images_argument
@files_from_option
@stage_config_option
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
def detect(images: tuple[str, ...], files_from: str | None, config: str | None, model: str | None,
           det_limit_side_len: int | None, box_thresh: float | None, unclip_ratio: float | None, draw: str | None,
           formats: tuple[str, ...], output: str | None, overrides: tuple[str, ...]) -> None:
    """Text boxes of each image: JSON per image, ICDAR-style txt (x1,y1,...,y4 per box; several images apart
    by a blank line, one that could not be read left empty) or tsv. It reads
    images, and of a multi-page TIFF its first page (use ``ocrlite ocr`` for PDFs and every page)."""
    from ocrlite.io.atomic import write_image
    from ocrlite.io.draw import draw_boxes
    from ocrlite.io.writers import DETECTION_TSV_HEADER, STREAM_FORMATS, detection_lines

    check_models(config, model)
    inputs = gather_inputs(images, files_from)
    fmt = parse_formats(formats, STREAM_FORMATS)[0]
    extra = flag_overrides(det_limit_side_len="det.preprocess.limit_side_len", box_thresh="det.postprocess.box_thresh",
                            unclip_ratio="det.postprocess.unclip_ratio")
    run, out = ItemRun(inputs), Output(output)
    draw_path = _DrawPaths(draw, len(run.files) > 1) if draw else None
    engine = build(lambda: one_stage_ocr("det", config, [*overrides, *extra], model))
    if fmt == "tsv":
        out.line("\t".join(DETECTION_TSV_HEADER))

    def handle(path: Path) -> None:
        try:
            image = image_file(path)
            boxes = engine.detect(image)
            for line in detection_lines(fmt, str(path), image.shape[1], image.shape[0], boxes):
                out.line(line)
        finally:  # txt: images apart by a blank line, one that could not be read left empty (as ocr's pages)
            if fmt == "txt" and len(run.files) > 1:
                out.line("")
        if draw_path is not None:
            write_image(draw_path(path), draw_boxes(image, boxes))

    run.each(handle)
    run.finish(out)


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
        fail("interrupted; finished outputs are kept, rerun to continue")
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    except OcrliteError as exc:
        fail(str(exc))
        sys.exit(2)
    sys.exit(1 if report.failures else 0)


@click.command()
@images_argument
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
@files_from_option
@click.option("--glob", help="Batch mode: only files in folders whose path matches, e.g. '*.pdf' (upper and "
                             "lower case apart; a folder with no match is an error).")
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
@click.option("--drop-score", type=float, help="Drop lines recognized with a lower score (default: the config's "
                   "pipeline.drop_score, 0.5 in every preset).")
@click.option("--rec-batch", type=click.IntRange(min=1), help="Text lines per recognition batch.")
@det_limit_option
@box_thresh_option
@backend_option
@overrides_option
def ocr(images: tuple[str, ...], config: str | None, model: str | None, formats: tuple[str, ...], output: str | None,
        files_from: str | None, glob: str | None, dpi: float, workers: int | None, executor: str,
        ray_address: str | None,
        threads_per_worker: int | None, pages_per_job: int | None, ray_input: str | None, overwrite: bool,
        quiet: bool, draw: str | None, use_cls: bool | None, rotate_pages: bool, deskew: bool,
        drop_score: float | None, rec_batch: int | None, det_limit_side_len: int | None, box_thresh: float | None,
        backend: str | None, overrides: tuple[str, ...]) -> None:
    """Read the text of images and PDFs: JSON lines, text or tsv on stdout, or files with -o DIR."""
    from ocrlite.io.writers import FORMATS, STREAM_FORMATS

    check_models(config, model)
    inputs = gather_inputs(images, files_from)
    fmts = parse_formats(formats, FORMATS if output is not None else STREAM_FORMATS, several=output is not None)
    extra = flag_overrides(det_limit_side_len="det.preprocess.limit_side_len", box_thresh="det.postprocess.box_thresh",
                            rec_batch="rec.preprocess.batch_size", rotate_pages="pipeline.page_orientation",
                            deskew="pipeline.deskew")
    flag_settings(use_cls="pipeline.use_cls", drop_score="pipeline.drop_score")
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
    from ocrlite.io.writers import TsvWriter, page_text, tsv_field, tsv_rows
    from ocrlite.results import DocumentPage

    run, out = ItemRun(inputs, INPUT_EXTENSIONS), Output(None)
    draw_path: _DrawPaths | None = None
    if draw:  # pages are counted only to tell whether there is one drawing to make
        draw_path = _DrawPaths(draw, len(run.files) > 1 or any(count_pages(path) > 1 for path in run.files))
    engine = build(EngineSpec(**engine_args).build)
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
            out.line(json_line({"image": str(path), **({"page": number} if paged else {}), **page.to_dict()}))
        elif fmt == "tsv":
            for row in tsv_rows(number, page):
                out.line(f"{tsv_field(str(path))}\t{row}")
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
