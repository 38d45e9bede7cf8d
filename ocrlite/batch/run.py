"""Batch OCR of files and folders into output files, one input at a time, never losing work.

Each input is isolated: a file or page that fails is recorded in the run report with its
reason and the run goes on. Outputs are written atomically once the input is done, so an
interrupted run (Ctrl-C) leaves only complete files and the next run picks up the rest.
With ``workers > 1`` the inputs are spread over processes that each load the models once
and share the CPU cores between them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Generator, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocrlite.batch.heap import trim_heap
from ocrlite.batch.plan import REPORT_NAME, Job, make_plan
from ocrlite.batch.report import Failure, FileOutcome, RunReport
from ocrlite.errors import OcrliteError, error_reason
from ocrlite.io.atomic import atomic_write_bytes
from ocrlite.io.images import DEFAULT_MAX_PIXELS
from ocrlite.io.pages import DEFAULT_DPI, PageSource, count_pages, open_pages
from ocrlite.io.writers import FORMATS, PageRecord, Writer, make_writer

__all__ = ["BatchOptions", "EngineSpec", "Executor", "process_file", "read_pages", "run_batch"]


@dataclass(frozen=True)
class EngineSpec:
    """How to build the OCR engine; picklable, so each worker process builds its own."""

    config: str | None = None
    model: str | None = None
    overrides: tuple[str, ...] = ()
    use_cls: bool | None = None
    drop_score: float | None = None
    backend: str | None = None

    def build(self) -> Any:
        from ocrlite.api import OCR

        return OCR(self.config, self.overrides, model=self.model, use_cls=self.use_cls, drop_score=self.drop_score,
                   backend=self.backend)


Executor = Callable[[list[Job], EngineSpec, "BatchOptions", Any, Callable[[int], None]], Generator[FileOutcome]]
"""Runs jobs and yields one outcome per job, in any order; gets the progress bar (or None) to update, and a
callback to tell, before the first outcome, how many workers (processes, actors) it runs them on."""


@dataclass(frozen=True)
class BatchOptions:
    """Where and what to write, and how to run."""

    output: Path
    formats: tuple[str, ...] = ("json",)
    dpi: float = DEFAULT_DPI
    workers: int = 1
    overwrite: bool = False
    quiet: bool = False
    glob: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    progress: bool | None = None  # None: only when stderr is a terminal


def run_batch(inputs: Iterable[str | Path], spec: EngineSpec, options: BatchOptions,
              execute: Executor | None = None) -> RunReport:
    """Process every input not yet done; write outputs and ``ocrlite-report.json``.

    ``execute`` turns the planned jobs into outcomes: local processes by default, or another
    executor such as ``ocrlite.batch.ray_runner.RayExecutor`` (same plan, report and per-file work).
    Returns the run's report (its ``failures`` decide the exit code). Raises
    ``OcrliteError`` if the models cannot be loaded, and ``KeyboardInterrupt`` after
    writing the report when interrupted.
    """
    unknown = set(options.formats) - set(FORMATS)
    if unknown or not options.formats:
        raise OcrliteError(f"unknown output format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    plan = make_plan(inputs, options.output, options.formats, options.glob, options.overwrite)
    report = RunReport(list(options.formats), options.dpi, workers=0, skipped=len(plan.skipped))
    for path, reason in plan.errors:
        report.failures.append(Failure(path, "", reason))
        _say(None, f"ocrlite: error: {report.failures[-1].message()}")
    bar = _progress(plan.jobs, options)
    done: set[str] = set()

    def started(workers: int) -> None:
        report.workers = workers

    try:
        with closing((execute or _outcomes)(plan.jobs, spec, options, bar, started)) as outcomes:
            for outcome in outcomes:
                done.add(outcome.name)
                report.add(outcome)
                for failure in outcome.failures:
                    _say(bar, f"ocrlite: error: {failure.message()}")
    except KeyboardInterrupt:
        report.interrupted = True
        report.pending = [job.name for job in plan.jobs if job.name not in done]
        raise
    finally:
        if bar is not None:
            bar.close()
        report.finish()
        report.write(options.output / REPORT_NAME)
        if not options.quiet:
            _say(None, report.summary())
    return report


def process_file(engine: Any, job: Job, options: BatchOptions, on_page: Callable[[], None] | None = None,
                 data: bytes | None = None,
                 write: Callable[[Path, bytes], None] = atomic_write_bytes) -> FileOutcome:
    """OCR every page of ``job.source`` and write its outputs; failures are returned, not raised.

    ``data``: the file's contents, already read (``ocrlite.io.pages.read_input``), decoded instead of
    reading ``job.source``. ``write(path, content)`` stores each output: atomically by default; a
    distributed run whose workers cannot see the output folder collects them to write elsewhere.
    """
    outcome = FileOutcome(job.name)
    try:
        with open_pages(job.source, options.dpi, options.max_pixels, data) as source:
            writers = {fmt: make_writer(fmt, job.name) for fmt in job.outputs}
            read_pages(engine, source, job, range(1, len(source) + 1), list(writers.values()), outcome, on_page)
            if outcome.pages:
                for fmt, writer in writers.items():
                    write(job.outputs[fmt], writer.render())
    except Exception as exc:  # unreadable file, or an output that could not be written
        outcome.failures.append(Failure(str(job.source), job.name, error_reason(exc)))
    finally:
        trim_heap()
    return outcome


def read_pages(engine: Any, source: PageSource, job: Job, numbers: Iterable[int], sinks: list[Writer],
               outcome: FileOutcome, on_page: Callable[[], None] | None = None) -> None:
    """OCR pages ``numbers`` of ``source`` into each writer of ``sinks``, counting them in ``outcome``.

    A page that fails is recorded in ``outcome.failures`` and the others go on. The page image is
    kept in the record only when a pdf output needs it.
    """
    keep_image = "pdf" in job.outputs
    several = len(source) > 1
    for number in numbers:
        try:
            page = source.page(number)
            result = engine(page.image)
            record = PageRecord(number, result, page.dpi, page.image if keep_image else None)
            for sink in sinks:
                sink.add(record)
            outcome.pages += 1
            outcome.lines += len(result.lines)
        except Exception as exc:  # one bad page must not cost the others
            outcome.failures.append(Failure(str(job.source), job.name, error_reason(exc), number if several else None))
        finally:
            page = result = record = None  # type: ignore[assignment]  # free the page image now
            if on_page is not None:
                on_page()


def _outcomes(jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
              started: Callable[[int], None]) -> Generator[FileOutcome]:
    """Outcomes of ``jobs``, processed here or in worker processes."""
    if not jobs:
        return
    if options.workers <= 1 or len(jobs) == 1:
        started(1)
        engine = spec.build()
        tick = (lambda: bar.update(1)) if bar is not None else None
        for job in jobs:
            yield process_file(engine, job, options, tick)
        return
    workers = min(options.workers, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // workers)
    started(workers)
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(workers, _worker_init, (spec, options, threads))
    try:
        for outcome in pool.imap_unordered(_worker_run, jobs, chunksize=1):
            if outcome.fatal:
                raise OcrliteError(outcome.fatal)
            if bar is not None:
                bar.update(max(1, outcome.pages + len(outcome.failures)))
            yield outcome
        pool.close()
    except BaseException:
        pool.terminate()  # workers stop on SIGTERM by unwinding, so temp files are removed
        raise
    finally:
        pool.join()


_worker: dict[str, Any] = {}


def _worker_init(spec: EngineSpec, options: BatchOptions, threads: int) -> None:
    """Load the models once per worker and give it its share of the cores."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, _exit_on_term)
    torch.set_num_threads(threads)
    _worker["options"] = options
    try:
        _worker["engine"] = spec.build()
    except OcrliteError as exc:
        _worker["fatal"] = str(exc)


def _worker_run(job: Job) -> FileOutcome:
    if "fatal" in _worker:
        return FileOutcome(job.name, fatal=_worker["fatal"])
    return process_file(_worker["engine"], job, _worker["options"])


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _progress(jobs: list[Job], options: BatchOptions) -> Any:
    """A tqdm bar over pages (rate and ETA), or None when quiet or not on a terminal."""
    enabled = options.progress if options.progress is not None else sys.stderr.isatty()
    if options.quiet or not enabled or not jobs:
        return None
    from tqdm import tqdm

    total = sum(count_pages(job.source) for job in jobs)
    return tqdm(total=total, unit="page", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _say(bar: Any, line: str) -> None:
    """A line on stderr, above the progress bar when there is one."""
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)

