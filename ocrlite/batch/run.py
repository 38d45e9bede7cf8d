"""Batch OCR of files and folders into output files, one input at a time, never losing work.

Each input is isolated: a file or page that fails is recorded in the run report with its
reason and the run goes on. Outputs are written atomically once the input is done, so an
interrupted run (Ctrl-C) leaves only complete files and the next run picks up the rest.
Locally (``ocrlite.batch.pipeline``), a reader thread decodes pages ahead and a writer thread
writes finished files while the engine reads; with ``workers > 1`` the pages are read by processes
that each load the models once and share the CPU cores between them.
"""

from __future__ import annotations

import errno
import hashlib
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ocrlite.batch.heap import trim_heap
from ocrlite.batch.lock import output_lock
from ocrlite.batch.plan import JOURNAL_NAME, REPORT_NAME, Job, make_plan
from ocrlite.batch.report import Failure, FileOutcome, Journal, RunReport, file_identity
from ocrlite.errors import OcrliteError, error_reason
from ocrlite.io.atomic import atomic_write_bytes, ensure_folder, remove_stale_parts
from ocrlite.io.images import DEFAULT_MAX_PIXELS
from ocrlite.io.pages import DEFAULT_DPI, PageSource, count_pages, open_pages
from ocrlite.io.writers import FORMATS, PageRecord, Writer, json_text, make_writer

__all__ = ["BatchOptions", "EngineSpec", "Executor", "OutputError", "add_page", "fail_file", "file_failure",
           "output_settings", "page_failure", "process_file", "read_pages", "run_batch",
           "sigterm_as_ctrl_c", "store_output", "Terminated", "write_outputs"]

NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""Why an output could not be written when no later one can be either: the file system is full or read-only."""


class OutputError(OcrliteError):
    """An output file could not be written; ``stops`` when no later one can be (``NO_ROOM``): the run stops."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"cannot write {path}: {exc.strerror or exc}")
        self.stops = exc.errno in NO_ROOM


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

    def pipeline(self) -> Any:
        """The pipeline ``build`` runs, resolved and checked, its backends' packages too (a ``PipelineSpec``; no
        net is built)."""
        from ocrlite.stages import pipeline_spec

        spec = pipeline_spec(self.config, self.overrides, model=self.model, backend=self.backend,
                             use_cls=self.use_cls, drop_score=self.drop_score)
        spec.check_backends()
        return spec


Executor = Callable[[list[Job], EngineSpec, "BatchOptions", Any, Callable[[int], None]], Generator[FileOutcome]]
"""Runs jobs and yields one outcome per job, in any order; gets the progress bar (or None) to update, and a
callback to tell, before the first outcome, how many workers (processes, actors) it runs them on."""


@dataclass(frozen=True)
class BatchOptions:
    """Where and what to write, and how to run."""

    output: Path
    formats: tuple[str, ...] = ("json",)
    dpi: float = DEFAULT_DPI
    workers: int | None = None  # local processes; None: ``pipeline.default_workers(cores)``
    cores: int | None = None  # CPU threads for all local workers together (--threads); None: all cores
    overwrite: bool = False
    quiet: bool = False
    glob: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    progress: bool | None = None  # None: only when stderr is a terminal


def output_settings(spec: EngineSpec, options: BatchOptions) -> tuple[str, dict[str, Any]]:
    """The fingerprint of what changes what the outputs hold, and what it stands for, as the report keeps it.

    The fingerprint covers the resolved pipeline (config and ``--set`` values, the switches and page steps, each
    stage's net, weights by SHA-256, settings, charset and backend: ``PipelineSpec.fingerprint``), the DPI and
    the pixel limit; not the threads, workers or executor, which change only how fast outputs are made.
    """
    pipeline = spec.pipeline()
    resolved = pipeline.fingerprint()
    dpi = float(options.dpi)  # 200 and 200.0 are one setting
    key = json_text({"pipeline": resolved, "dpi": dpi, "max_pixels": options.max_pixels})
    described = {"model": spec.model, "config": spec.config, "set": list(spec.overrides), "backend": spec.backend,
                 "pipeline": asdict(pipeline.settings), "dpi": dpi, "max_pixels": options.max_pixels,
                 "weights": {kind: stage["weights"] for kind, stage in resolved.items() if kind != "pipeline"}}
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], described


def run_batch(inputs: Iterable[str | Path], spec: EngineSpec, options: BatchOptions,
              execute: Executor | None = None) -> RunReport:
    """Process every input not yet done; write outputs and ``ocrlite-report.json``.

    ``execute`` turns the planned jobs into outcomes: the local pipeline by default, or another
    executor such as ``ocrlite.batch.ray_runner.RayExecutor`` (same plan, report and per-file work).
    Returns the run's report (its ``failures`` decide the exit code). Raises ``OcrliteError`` if the
    output folder cannot be written or the models cannot be loaded, and ``KeyboardInterrupt`` after
    writing the report when interrupted: by Ctrl-C, or by SIGTERM (``timeout``, Slurm, Kubernetes) while
    it runs in the main thread. Whatever stops it, the report keeps the inputs not done as ``pending``, and
    records what made each output written (``RunReport.outputs``); an output made from another input than
    the one now replacing it is said in one line.
    """
    unknown = set(options.formats) - set(FORMATS)
    if unknown or not options.formats:
        raise OcrliteError(f"unknown output format(s) {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    fingerprint, described = output_settings(spec, options)
    ensure_folder(options.output)
    with output_lock(options.output):  # a second run into this folder is refused, not raced
        plan = make_plan(inputs, options.output, options.formats, options.glob, options.overwrite, fingerprint)
        outputs = [path for job in plan.jobs for path in job.outputs.values()]
        before = {path: file_identity(path) for path in outputs}
        remove_stale_parts([*outputs, options.output / REPORT_NAME])
        report = RunReport(list(options.formats), options.dpi, workers=0, skipped=len(plan.skipped),
                           carried=plan.carried, fingerprint=fingerprint,
                           settings={**plan.settings, fingerprint: described}, outputs=plan.outputs)
        for path, reason in plan.errors:
            report.failures.append(Failure(path, path, reason))  # refused before it had a name: the path given
            _say(None, f"ocrlite: error: {report.failures[-1].message()}")
        bar = _progress(plan.jobs, options)
        done: set[str] = set()
        stopped = False  # the engine could not run: its error is the run's one line

        def started(workers: int) -> None:
            report.workers = workers

        journal = Journal(options.output / JOURNAL_NAME, fingerprint, described)

        def record(job: Job) -> None:
            notice = report.record(job, before, journal)
            if notice is not None:
                _say(bar, f"ocrlite: {notice}")

        if execute is None:
            from ocrlite.batch.pipeline import run_local

            execute = run_local
        jobs = {job.name: job for job in plan.jobs}
        try:
            with sigterm_as_ctrl_c(), closing(execute(plan.jobs, spec, options, bar, started)) as outcomes:
                for outcome in outcomes:
                    done.add(outcome.name)
                    report.add(outcome)
                    record(jobs[outcome.name])
                    for failure in outcome.failures:
                        _say(bar, f"ocrlite: error: {failure.message()}")
                    if outcome.fatal is not None:  # the output folder is full: the rest would fail the same way
                        raise OcrliteError(outcome.fatal)
        except BaseException as exc:  # Ctrl-C or SIGTERM, workers that cannot run, anything else: the rest is pending
            report.interrupted = not isinstance(exc, OcrliteError)
            report.error = error_reason(exc) if isinstance(exc, Exception) else None  # not Ctrl-C or SIGTERM
            report.pending = [job.name for job in plan.jobs if job.name not in done]
            stopped = not report.interrupted and not report.files
            raise
        finally:
            for name in jobs.keys() - done:  # outputs a stopped run wrote before their outcome came back
                record(jobs[name])
            if bar is not None:
                bar.close()
            report.finish()
            report.write(options.output / REPORT_NAME)
            journal.remove()  # the report holds its records now
            if not options.quiet and not stopped:
                _say(None, report.summary())
        return report


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is: it stops as on Ctrl-C (the CLI then exits 143, not 130)."""


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """While the jobs run, SIGTERM raises ``Terminated``: the run stops as on Ctrl-C, its report written.

    Only the main thread can set a handler; elsewhere SIGTERM keeps its own. The handler before is put back.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def process_file(engine: Any, job: Job, options: BatchOptions, data: bytes | None = None,
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
            read_pages(engine, source, job, range(1, len(source) + 1), list(writers.values()), outcome)
            write_outputs(job, writers, outcome, write)
    except Exception as exc:  # unreadable file, or an output that could not be written
        fail_file(outcome, job, exc)
    finally:
        trim_heap()
    return outcome


def read_pages(engine: Any, source: PageSource, job: Job, numbers: Iterable[int], sinks: list[Writer],
               outcome: FileOutcome) -> None:
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
            record = PageRecord(number, result, page.dpi, page.image if keep_image else None, page.points)
            add_page(sinks, record, outcome)
        except Exception as exc:  # one bad page must not cost the others
            failure = page_failure(job, error_reason(exc), number, several)
            outcome.failures.append(failure)
            for sink in sinks:  # the later pages keep their place in the outputs
                sink.missing(number, failure.reason)
        finally:
            page = result = record = None  # type: ignore[assignment]  # free the page image now


def add_page(sinks: list[Writer], record: PageRecord, outcome: FileOutcome) -> None:
    """Add a read page to every writer of its file and count it."""
    for sink in sinks:
        sink.add(record)
    outcome.pages += 1
    outcome.lines += len(record.result.lines)


def write_outputs(job: Job, writers: dict[str, Writer], outcome: FileOutcome,
                  write: Callable[[Path, bytes], None] = atomic_write_bytes) -> None:
    """Write ``job``'s outputs from its writers, unless no page of it was read."""
    if outcome.pages:
        for fmt, writer in writers.items():
            store_output(job.outputs[fmt], writer.render(), write)


def store_output(path: Path, content: bytes, write: Callable[[Path, bytes], None] = atomic_write_bytes) -> None:
    """``write(path, content)``; an ``OutputError`` naming ``path`` when the file system refuses it."""
    try:
        write(path, content)
    except OSError as exc:
        raise OutputError(path, exc) from exc


def page_failure(job: Job, reason: str, number: int, several: bool) -> Failure:
    """Page ``number`` of ``job`` failed; the page is named only for inputs of several pages."""
    return Failure(str(job.source), job.name, reason, number if several else None)


def file_failure(job: Job, exc: Exception) -> Failure:
    """``job`` as a whole failed: unreadable, or an output could not be written."""
    return Failure(str(job.source), job.name, error_reason(exc))


def fail_file(outcome: FileOutcome, job: Job, exc: Exception) -> None:
    """Add ``job``'s failure as a whole to ``outcome``; an output folder that is full (or read-only) also sets
    ``outcome.fatal``: the run stops there, the inputs not reached left for a rerun."""
    outcome.failures.append(file_failure(job, exc))
    if isinstance(exc, OutputError) and exc.stops:
        outcome.fatal = f"{exc}; the run stops: make room there, then rerun to continue"


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

