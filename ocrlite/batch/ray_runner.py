"""The batch on a Ray cluster: Ray Data actors run the local batch's per-file work.

``run_batch(..., execute=RayExecutor(RayOptions(...)))`` keeps everything of the local batch
(plan, skip and retry rules, report, progress bar, atomic outputs) and only changes who reads
the files: a pool of Ray Data actors (``map_batches`` with ``ActorPoolStrategy``), each
building the OCR once from the picklable ``EngineSpec`` and calling ``process_file``. Rows are
jobs (path, output names, page range), never file bytes: inputs and the output folder must be
at the same path on every node (a shared filesystem). Files longer than ``pages_per_job`` pages
are split into page ranges (``ocrlite.batch.ranges``), joined here in page order when all are back.

Every failure comes back as a row, also a job whose actor died (killed, out of memory): Ray
restarts the actor and hands it the job again, which then reports "worker died" instead of
running it twice; the next run retries it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.batch.plan import Job
from ocrlite.batch.ranges import PageRange, RangeOutcome, join_ranges, process_range, split_pages
from ocrlite.batch.report import Failure, FileOutcome
from ocrlite.batch.run import BatchOptions, EngineSpec, process_file
from ocrlite.errors import OcrliteError, error_reason
from ocrlite.io.pages import count_pages

__all__ = ["INSTALL_HINT", "RayExecutor", "RayOptions", "require_ray"]

INSTALL_HINT = '--executor ray needs Ray: pip install "ocrlite[ray]"'
WHOLE: PageRange = (0, 0)  # a row's page range when it is the whole file


@dataclass(frozen=True)
class RayOptions:
    """Where Ray runs and how the work is cut."""

    address: str | None = None  # None: start a local Ray on this machine; "auto" or "HOST:PORT": join a cluster
    workers: int | None = None  # actors; None: as many as the cluster's CPUs allow
    threads: int = 1  # torch threads, and CPUs reserved, per actor
    pages_per_job: int = 8  # longer PDFs/TIFFs are split into page ranges of this many pages


def require_ray() -> None:
    """Raise ``OcrliteError`` with the install line when Ray (with Ray Data) is not installed."""
    if find_spec("ray") is None or find_spec("pyarrow") is None:  # pyarrow: what ray[data] adds to ray
        raise OcrliteError(INSTALL_HINT)


class RayExecutor:
    """An ``ocrlite.batch.run.Executor`` that runs the jobs on Ray Data actors."""

    def __init__(self, options: RayOptions) -> None:
        require_ray()
        self.options = options

    def __call__(self, jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
                 started: Callable[[int], None]) -> Generator[FileOutcome]:
        if not jobs:
            return
        import ray
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines between our own
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": ours
        own_ray = not ray.is_initialized()
        if own_ray:
            _init_ray(self.options)
        try:
            yield from self._run(jobs, spec, options, bar, started)
        except ray.exceptions.RayError as exc:  # the cluster itself failed (actors that cannot start, node lost)
            raise OcrliteError(f"Ray failed: {str(exc).splitlines()[0]}") from exc
        finally:
            if own_ray:
                ray.shutdown()

    def _run(self, jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
             started: Callable[[int], None]) -> Generator[FileOutcome]:
        import ray

        ranges = {i: _ranges(job, self.options.pages_per_job) for i, job in enumerate(jobs)}
        rows = [{"index": i, "first": first, "last": last, "source": str(job.source), "name": job.name,
                 "outputs": json.dumps({fmt: str(path) for fmt, path in job.outputs.items()})}
                for i, job in enumerate(jobs) for first, last in ranges[i]]
        workers = self.options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.options.threads)
        workers = min(workers, len(rows))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts pages
        ledger = ray.remote(num_cpus=0)(_Ledger).remote()
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _OcrActor, fn_constructor_args=(spec, options, self.options.threads, ledger), batch_size=1,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=self.options.threads)
        started(workers)
        parts: dict[int, list[RangeOutcome]] = {}
        for row in dataset.iter_rows():
            index, part = int(row["index"]), (row["outcome"], list(row["records"]))
            outcome = part[0]
            if outcome.fatal:
                raise OcrliteError(outcome.fatal)
            if bar is not None:
                bar.update(max(1, outcome.pages + len(outcome.failures)))
            if ranges[index] == [WHOLE]:
                yield outcome
                continue
            done = parts.setdefault(index, [])
            done.append(part)
            if len(done) == len(ranges[index]):
                yield join_ranges(jobs[index], options, parts.pop(index))


class _Ledger:
    """Remembers which rows an actor has started, so a row that Ray retries after its actor died is not run again."""

    def __init__(self) -> None:
        self.started: set[tuple[int, int]] = set()

    def start(self, index: int, first: int) -> bool:
        """True the first time row (``index``, ``first``) starts, False when it is a retry."""
        key = (index, first)
        again = key in self.started
        self.started.add(key)
        return not again


class _OcrActor:
    """A Ray Data actor: loads the models once, then turns job rows into outcome rows."""

    def __init__(self, spec: EngineSpec, options: BatchOptions, threads: int, ledger: Any) -> None:
        import torch

        torch.set_num_threads(threads)
        self.options, self.ledger = options, ledger
        self.engine: Any = None
        self.fatal: str | None = None
        try:
            self.engine = spec.build()
        except OcrliteError as exc:
            self.fatal = str(exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"index": [], "first": [], "last": [], "outcome": [], "records": []}
        for i in range(len(batch["index"])):
            first, last = int(batch["first"][i]), int(batch["last"][i])
            outputs = json.loads(str(batch["outputs"][i]))
            job = Job(Path(str(batch["source"][i])), str(batch["name"][i]),
                      {fmt: Path(path) for fmt, path in outputs.items()})
            outcome, records = self._one(int(batch["index"][i]), job, (first, last))
            for key, value in (("index", int(batch["index"][i])), ("first", first), ("last", last),
                               ("outcome", outcome), ("records", records)):
                out[key].append(value)
        return out

    def _one(self, index: int, job: Job, pages: PageRange) -> RangeOutcome:
        """One row's outcome; nothing raises out of here, so every failure is a row.

        Ray restarts a dead actor and gives it the rows it held: those are reported as failed
        ("worker died": killed, out of memory) instead of being run again, so an input that
        kills its worker cannot stall the run; the next run retries it like any failure.
        """
        import ray

        if self.fatal is not None:
            return FileOutcome(job.name, fatal=self.fatal), []
        if not ray.get(self.ledger.start.remote(index, pages[0])):
            where = None if pages == WHOLE else pages[0]
            reason = "worker died" if pages == WHOLE else f"worker died (pages {pages[0]}-{pages[1]})"
            return FileOutcome(job.name, failures=[Failure(str(job.source), job.name, reason, where)]), []
        try:
            if pages == WHOLE:
                return process_file(self.engine, job, self.options), []
            return process_range(self.engine, job, self.options, pages)
        except Exception as exc:
            return FileOutcome(job.name, failures=[Failure(str(job.source), job.name, error_reason(exc))]), []


def _ranges(job: Job, size: int) -> list[PageRange]:
    """The page ranges a job is cut into: the whole file unless it has more than ``size`` pages."""
    pages = count_pages(job.source)
    return [WHOLE] if pages <= size else split_pages(pages, size)


def _init_ray(options: RayOptions) -> None:
    """Join the cluster at ``options.address``, or start a private local Ray that never reaches the network."""
    import ray

    try:
        if options.address is not None:
            ray.init(address=options.address, logging_level=logging.WARNING, log_to_driver=False)
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")  # a busy machine starts slowly (default 60)
        cpus = (options.workers or os.cpu_count() or 1) * options.threads
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # ray.init raises ConnectionError, RuntimeError, ValueError or a bare Exception
        where = f"join Ray at {options.address}" if options.address else "start a local Ray"
        raise OcrliteError(f"cannot {where}: {str(exc).splitlines()[0]}") from exc
