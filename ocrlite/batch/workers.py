"""Worker processes for the batch pipeline: each loads the models once and reads one page at a time.

Pages wait in the pool until a worker is free, so a slow page holds up only its own worker. A worker
that dies (killed, out of memory) is replaced by a fresh one, and the page it was reading goes back to
the front of the queue: read again once, it is lost (an ``Unread`` saying so) only when it costs a
second worker. After ``LOST_IN_A_ROW`` such pages without any page read in between, the workers
cannot run at all and the result says so (``fatal``).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from ocrlite.batch.heap import trim_heap
from ocrlite.batch.run import EngineSpec
from ocrlite.errors import error_reason
from ocrlite.results import PageResult

__all__ = ["LOST_IN_A_ROW", "READS", "InFlight", "Unread", "WorkerPool", "read_page"]

READS = 2
"""Workers a page may cost (each dying while reading it) before it is reported lost."""

LOST_IN_A_ROW = 3
"""Pages lost one after the other, none read between them, that stop the run."""


@dataclass(frozen=True)
class Unread:
    """A page the engine could not read (``reason``), or workers that cannot run at all (``fatal``)."""

    reason: str
    fatal: bool = False


def read_page(engine: Callable[[Any], PageResult], image: Any) -> PageResult | Unread:
    """The engine's result for ``image``, or why it has none."""
    try:
        return engine(image)
    except Exception as exc:  # one bad page must not cost the others
        return Unread(error_reason(exc))


_PENDING: Any = object()


class InFlight:
    """A page handed to a ``WorkerPool``, with the interface of a pool's ``AsyncResult``."""

    def __init__(self, pool: WorkerPool, image: Any) -> None:
        self.pool, self.image = pool, image
        self.value: PageResult | Unread = _PENDING
        self.deaths = 0  # workers that died reading it

    def ready(self) -> bool:
        if self.value is _PENDING:
            self.pool.collect(block=False)
        return self.value is not _PENDING

    def get(self) -> PageResult | Unread:
        while self.value is _PENDING:
            self.pool.collect(block=True)
        self.image = None
        return self.value


def _serve(conn: Connection, spec: EngineSpec, threads: int) -> None:
    """A worker process: build the engine once, then read each image sent until the pipe closes."""
    from ocrlite.backends.threads import set_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    set_threads(threads)
    engine: Any
    try:
        engine = spec.build()
    except Exception as exc:  # every page gets this answer: the parent stops the run, as it would in-process
        engine = Unread(error_reason(exc), fatal=True)
    while True:
        try:
            image = conn.recv()
        except EOFError:
            return
        result = engine if isinstance(engine, Unread) else read_page(engine, image)
        image = None
        trim_heap()  # pages of varying sizes: give the freed heap back, as the writer does in the parent
        conn.send(result)


class _Worker:
    """One worker process, its pipe, and the page it is reading (None when idle)."""

    def __init__(self, spec: EngineSpec, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, spec, threads), name="ocrlite-worker", daemon=True)
        self.process.start()
        child.close()
        self.page: InFlight | None = None

    def send(self, page: InFlight) -> None:
        self.page = page
        try:
            self.conn.send(page.image)
        except OSError:  # the worker is dead: found by ``collect`` through its sentinel
            pass

    def take(self) -> tuple[bool, bool]:
        """(whether the page's result came, whether the worker is alive); a dead worker's last result is taken."""
        alive = self.process.is_alive()  # checked first: a dead worker has sent all it ever will
        try:
            if self.page is not None and self.conn.poll():
                self.page.value, self.page = self.conn.recv(), None
                return True, alive
        except (EOFError, OSError):
            return False, False
        return False, alive

    def stop(self) -> None:
        """End the process now (it only reads pages: nothing of its own is left half-written)."""
        self.process.terminate()
        self.process.join()
        self.conn.close()


class WorkerPool:
    """``workers`` processes that each build the engine of ``spec`` once and run ``threads`` threads for the nets."""

    def __init__(self, spec: EngineSpec, workers: int, threads: int) -> None:
        self.spec, self.threads = spec, threads
        self.workers = [_Worker(spec, threads) for _ in range(workers)]
        self.waiting: deque[InFlight] = deque()
        self.lost_in_a_row = 0

    def submit(self, image: Any) -> InFlight:
        """Queue ``image``; it is sent to the first free worker."""
        page = InFlight(self, image)
        self.waiting.append(page)
        self._dispatch()
        return page

    def collect(self, block: bool) -> None:
        """Take the results the workers have sent (waiting for one with ``block``); replace dead workers."""
        busy = [worker for worker in self.workers if worker.page is not None]
        handles = [handle for worker in busy for handle in (worker.conn, worker.process.sentinel)]
        if not handles or not wait(handles, timeout=None if block else 0):
            return
        for worker in busy:
            came, alive = worker.take()
            if came:
                self.lost_in_a_row = 0
            if not alive:
                self._replace(worker)
        self._dispatch()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()

    def _dispatch(self) -> None:
        for worker in self.workers:
            if worker.page is None and self.waiting:
                worker.send(self.waiting.popleft())

    def _replace(self, dead: _Worker) -> None:
        """A fresh worker for ``dead``; the page it was reading is read again, or lost after ``READS`` deaths."""
        page, dead.page = dead.page, None
        dead.stop()
        self.workers[self.workers.index(dead)] = _Worker(self.spec, self.threads)
        if page is None:
            return
        page.deaths += 1
        if page.deaths < READS:
            self.waiting.appendleft(page)
            return
        self.lost_in_a_row += 1
        if self.lost_in_a_row >= LOST_IN_A_ROW:
            page.value = Unread("worker processes keep dying (out of memory?): the run stops; rerun to retry",
                                fatal=True)
        else:
            page.value = Unread(f"a worker process died reading it, {page.deaths} times (killed, or out of memory?); "
                                "rerun to retry it")
