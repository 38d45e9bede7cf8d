"""Many pages through one engine with reading and writing overlapped: a small bounded thread pipeline.

A reader thread opens the inputs in order and decodes (or renders) their pages ahead of the engine, a
few pages ahead at most; the engine reads each page, in this process or in worker processes that each
load the models once (``ocrlite.batch.workers``: a bounded window of pages in flight, results taken back
in order, a dead worker replaced and its page read again); a writer
thread adds each result to its file's writers and writes the file's outputs atomically after its last
page. Pages reach the engine and the writers in input order, so outputs, failures and outcomes are the
ones ``ocrlite.batch.run.process_file`` gives file by file.

Workers (``default_workers``): one process per core, each with one thread, up to ``MAX_DEFAULT_WORKERS``.
Measured on 2 cores (FUNSD, ppocr-v6-small, ``scripts/bench_speed.py --folder 8``): 2 workers x 1 thread
read 2.5 pages/min against 1.0-1.1 for 1 worker x 2 threads with the torch backend, and 2.9 against 2.3
with onnxruntime (a loaded machine; README "Folder throughput"). The cap bounds memory (each worker
holds its own models, ~0.5 GB for v6-small); more cores than 2 were not measured.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocrlite.batch.heap import trim_heap
from ocrlite.batch.plan import Job
from ocrlite.batch.report import Failure, FileOutcome
from ocrlite.batch.run import BatchOptions, EngineSpec, add_page, fail_file, file_failure, page_failure, write_outputs
from ocrlite.batch.workers import Unread, WorkerPool, read_page
from ocrlite.errors import OcrliteError, error_reason
from ocrlite.io.pages import Page, count_pages, open_pages
from ocrlite.io.writers import PageRecord, Writer, make_writer
from ocrlite.results import PageResult

__all__ = ["MAX_DEFAULT_WORKERS", "PageItem", "default_workers", "read_ahead", "run_local"]

READ_AHEAD = 2
"""Pages the reader decodes ahead of the engine (each a full page image in memory)."""

READER_STOP_S = 2.0
"""How long leaving ``read_ahead`` waits for the reader to finish the page it is decoding. A reader stuck in a
read that does not return (a hung network file system) is left behind, a daemon thread, so that the first
Ctrl-C or SIGTERM still ends the run."""


MAX_DEFAULT_WORKERS = 8


def default_workers(cores: int | None = None) -> int:
    """Worker processes for ``cores`` (default: this machine's): one per core, up to ``MAX_DEFAULT_WORKERS``."""
    return max(1, min(cores or os.cpu_count() or 1, MAX_DEFAULT_WORKERS))


@dataclass(frozen=True)
class PageItem:
    """What the reader found: page ``number`` of input ``index`` (of ``count`` pages), decoded or failed.

    ``number`` 0 closes input ``index``; its ``error`` is set when the input could not be opened.
    """

    index: int
    path: Path
    number: int
    count: int
    page: Page | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class _Crash:
    """An error of the reader itself (not of an input), raised again in the consumer."""

    error: BaseException


_END = object()


@contextmanager
def read_ahead(paths: Sequence[Path], dpi: float, max_pixels: int,
               depth: int = READ_AHEAD) -> Iterator[Iterator[PageItem]]:
    """Items for every page of ``paths`` in order, decoded by a reader thread at most ``depth`` pages ahead.

    Leaving the ``with`` block stops the reader (after the page it is decoding, waiting ``READER_STOP_S`` at most).
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def read_file(index: int, path: Path) -> bool:
        count, error = 0, None
        try:
            with open_pages(path, dpi, max_pixels) as source:
                count = len(source)
                for number in range(1, count + 1):
                    try:
                        item = PageItem(index, path, number, count, page=source.page(number))
                    except Exception as exc:  # one bad page must not cost the others
                        item = PageItem(index, path, number, count, error=exc)
                    if not put(item):
                        return False
                    item = None  # type: ignore[assignment]  # the consumer owns the page now
        except Exception as exc:  # the input could not be opened
            error = exc
        return put(PageItem(index, path, 0, count, error=error))

    def read() -> None:
        try:
            if all(read_file(index, path) for index, path in enumerate(paths)):
                put(_END)
        except BaseException as exc:  # a bug here must reach the consumer, not leave it waiting
            put(_Crash(exc))

    def consume() -> Iterator[PageItem]:
        while (item := items.get()) is not _END:
            if isinstance(item, _Crash):
                raise item.error
            yield item

    reader = threading.Thread(target=read, name="ocrlite-reader", daemon=True)
    reader.start()
    try:
        yield consume()
    finally:
        stop.set()
        reader.join(READER_STOP_S)


@dataclass
class _File:
    """One input's outcome and output writers; touched only by the writer thread."""

    job: Job
    outcome: FileOutcome
    writers: dict[str, Writer] = field(default_factory=dict)


class _WriterThread:
    """Adds results to their file's writers and writes finished files, in order, on one thread.

    At most ``depth`` tasks wait (their records may hold page images); ``finished`` holds each file's
    outcome as a future, in input order.
    """

    def __init__(self, depth: int) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="ocrlite-writer")
        self.room = threading.BoundedSemaphore(depth)
        self.finished: deque[Future[FileOutcome]] = deque()

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        self.room.acquire()
        future = self.pool.submit(fn, *args)
        future.add_done_callback(lambda _: self.room.release())
        return future

    def add(self, file: _File, record: PageRecord, several: bool) -> None:
        self._submit(_add, file, record, several)

    def fail(self, file: _File, failure: Failure) -> None:
        self._submit(_fail, file, failure)

    def finish(self, file: _File) -> None:
        self.finished.append(self._submit(_finish, file))

    def done(self, wait: bool = False) -> Iterator[FileOutcome]:
        """Outcomes of the files written so far (all queued ones with ``wait``), in input order."""
        while self.finished and (wait or self.finished[0].done()):
            yield self.finished.popleft().result()

    def close(self) -> None:
        """Run every queued task, then stop the thread."""
        self.pool.shutdown(wait=True)


def _writers(file: _File) -> list[Writer]:
    if not file.writers:
        file.writers = {fmt: make_writer(fmt, file.job.name) for fmt in file.job.outputs}
    return list(file.writers.values())


def _add(file: _File, record: PageRecord, several: bool) -> None:
    try:
        add_page(_writers(file), record, file.outcome)
    except Exception as exc:  # a page the writers refuse costs only that page
        _fail(file, page_failure(file.job, error_reason(exc), record.number, several))


def _fail(file: _File, failure: Failure) -> None:
    file.outcome.failures.append(failure)
    if failure.page is not None:  # a page of several: the others keep their place in the outputs
        for writer in _writers(file):
            writer.missing(failure.page, failure.reason)


def _finish(file: _File) -> FileOutcome:
    try:
        write_outputs(file.job, file.writers, file.outcome)
    except Exception as exc:  # an output that could not be written
        fail_file(file.outcome, file.job, exc)
    finally:
        file.writers.clear()
        trim_heap()
    return file.outcome


class _Ready:
    """A result computed in this process, with the interface of ``InFlight``."""

    def __init__(self, value: PageResult | Unread) -> None:
        self.value = value

    def ready(self) -> bool:
        return True

    def get(self) -> PageResult | Unread:
        return self.value


@contextmanager
def _engine(spec: EngineSpec, workers: int, cores: int | None) -> Iterator[tuple[Callable[[Any], Any], int]]:
    """``submit(image)`` -> an ``InFlight``-like, and how many pages may be in flight at once; worker
    processes share ``cores`` threads (None: this machine's cores)."""
    if workers <= 1:
        engine = spec.build()
        yield (lambda image: _Ready(read_page(engine, image))), 1
        return
    pool = WorkerPool(spec, workers, threads=max(1, (cores or os.cpu_count() or 1) // workers))
    try:
        yield pool.submit, 2 * workers
    finally:
        pool.close()


def _submit(submit: Callable[[Any], Any], item: PageItem) -> Any:
    """The engine's result for ``item`` to come (an ``AsyncResult``-like); None for the end of an input."""
    if item.number == 0:
        return None
    if item.page is None:  # the reader could not decode it
        return _Ready(Unread(error_reason(item.error) if item.error is not None else "no page"))
    return submit(item.page.image)


def _workers(jobs: list[Job], requested: int | None, cores: int | None) -> int:
    """``requested`` (or the default for ``cores``), but no more than there are pages to read."""
    workers = requested or default_workers(cores)
    if workers > 1 and len(jobs) < workers:
        workers = min(workers, sum(count_pages(job.source) for job in jobs))
    return workers


def run_local(jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
              started: Callable[[int], None]) -> Generator[FileOutcome]:
    """Outcomes of ``jobs`` in input order, read through the pipeline (``run_batch``'s local executor).

    Interrupted (Ctrl-C), the files already complete are written and their outcomes yielded first.
    """
    if not jobs:
        return
    workers = _workers(jobs, options.workers, options.cores)
    started(workers)
    files: dict[int, _File] = {}
    with _engine(spec, workers, options.cores) as (submit, window), \
            read_ahead([job.source for job in jobs], options.dpi, options.max_pixels) as items:
        writer = _WriterThread(READ_AHEAD + window + 2)
        pending: deque[tuple[PageItem, Any]] = deque()

        def take() -> None:
            item, result = pending.popleft()
            job = jobs[item.index]
            file = files.setdefault(item.index, _File(job, FileOutcome(job.name)))
            if result is None:  # the input is complete
                if item.error is not None:
                    writer.fail(file, file_failure(job, item.error))
                writer.finish(files.pop(item.index))
                return
            read, page, several = result.get(), item.page, item.count > 1
            if isinstance(read, Unread) or page is None:
                if isinstance(read, Unread) and read.fatal:
                    raise OcrliteError(read.reason)
                writer.fail(file, page_failure(job, getattr(read, "reason", ""), item.number, several))
            else:
                keep = page.image if "pdf" in job.outputs else None
                writer.add(file, PageRecord(item.number, read, page.dpi, keep, page.points), several)
            if bar is not None:
                bar.update(1)

        try:
            for item in items:
                pending.append((item, _submit(submit, item)))
                while pending and (len(pending) > window or pending[0][1] is None or pending[0][1].ready()):
                    take()
                yield from writer.done()
            while pending:
                take()
            writer.close()
            yield from writer.done(wait=True)
        except KeyboardInterrupt:
            writer.close()  # the files already complete are written, and reported
            yield from writer.done(wait=True)
            raise
        finally:
            writer.close()
