"""The batch on a Ray cluster: Ray Data actors run the local batch's per-file work.

``run_batch(..., execute=RayExecutor(RayOptions(...)))`` keeps everything of the local batch
(plan, skip and retry rules, report, progress bar, atomic outputs) and only changes who reads
the files: a pool of Ray Data actors (``map_batches`` with ``ActorPoolStrategy``), each
building the OCR once from the picklable ``EngineSpec`` and calling ``process_file``. Files
longer than ``pages_per_job`` pages are split into page ranges (``ocrlite.batch.ranges``),
joined here in page order when all are back.

How the inputs reach the actors (``RayOptions.inputs``):

- ``"paths"``: rows are jobs (absolute input and output paths, page range), never file bytes.
  The inputs and the output folder must be at the same path on every node (a shared
  filesystem); each actor reads its inputs and writes their outputs itself.
- ``"bytes"``: the inputs are only on the driver's machine. A first Ray Data stage, pinned to the
  driver's node, reads each row's file into the row; the actors decode those bytes with the same
  readers (``open_pages(..., data=)``) and send the rendered outputs back; the driver writes them.

Every failure comes back as a row, also a job whose actor died (killed, out of memory): Ray
restarts the actor and hands it the job again, which then reports "worker died" instead of
running it twice; the next run retries it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.batch.plan import Job
from ocrlite.batch.ranges import PageRange, RangeOutcome, join_ranges, process_range, split_pages
from ocrlite.batch.report import Failure, FileOutcome
from ocrlite.batch.run import BatchOptions, EngineSpec, process_file
from ocrlite.errors import ImageReadError, OcrliteError, error_reason
from ocrlite.io.atomic import atomic_write_bytes
from ocrlite.io.pages import count_pages, read_input
from ocrlite.io.writers import PageRecord

__all__ = ["INPUT_MODES", "INSTALL_HINT", "RayExecutor", "RayOptions", "require_ray"]

INSTALL_HINT = '--executor ray needs Ray: pip install "ocrlite[ray]"'
INPUT_MODES = ("paths", "bytes")
WHOLE: PageRange = (0, 0)  # a row's page range when it is the whole file


@dataclass(frozen=True)
class RayOptions:
    """Where Ray runs and how the work is cut."""

    address: str | None = None  # None: start a local Ray on this machine; "auto" or "HOST:PORT": join a cluster
    workers: int | None = None  # actors; None: as many as the cluster's CPUs allow
    threads: int = 1  # torch threads, and CPUs reserved, per actor
    pages_per_job: int = 8  # longer PDFs/TIFFs are split into page ranges of this many pages
    inputs: str = "paths"  # "paths": a shared filesystem; "bytes": files read on the driver's node, sent in the rows

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_MODES:
            raise OcrliteError(f"unknown Ray input mode {self.inputs!r}; choose from {', '.join(INPUT_MODES)}")


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
        rows = _rows(jobs, ranges, self.options.inputs == "bytes")
        workers = self.options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.options.threads)
        workers = min(workers, len(rows))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts pages
        ledger = ray.remote(num_cpus=0)(_Ledger).remote()
        dataset: ray.data.Dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        if self.options.inputs == "bytes":
            # Read where the files are, on this (the driver's) node, one task at a time: reading is I/O, no CPU is
            # reserved, and every concurrent reader would be one more worker process to start.
            node = ray.get_runtime_context().get_node_id()
            dataset = dataset.map(_read_row, num_cpus=0, label_selector={"ray.io/node-id": node},
                                  compute=ray.data.TaskPoolStrategy(size=1))
        dataset = dataset.map_batches(
            _OcrActor, fn_constructor_args=(spec, options, self.options.threads, ledger), batch_size=1,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=self.options.threads)
        started(workers)
        parts: dict[int, list[RangeOutcome]] = {}
        for row in dataset.iter_rows():
            index, done = int(row["index"]), row["done"]
            outcome = done.outcome
            if outcome.fatal:
                raise OcrliteError(outcome.fatal)
            if bar is not None:
                bar.update(max(1, outcome.pages + len(outcome.failures)))
            _write(jobs[index], done.files, outcome)
            if ranges[index] == [WHOLE]:
                yield outcome
                continue
            finished = parts.setdefault(index, [])
            finished.append((outcome, done.records))
            if len(finished) == len(ranges[index]):
                yield join_ranges(jobs[index], options, parts.pop(index))


@dataclass
class _Done:
    """What an actor sends back for one row."""

    outcome: FileOutcome
    records: list[PageRecord] = field(default_factory=list)  # a page range's pages, without images
    files: dict[Path, bytes] = field(default_factory=dict)  # bytes mode: the outputs, for the driver to write


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
        out: dict[str, list[Any]] = {"index": [], "done": []}
        for i in range(len(batch["index"])):
            outputs = json.loads(str(batch["outputs"][i]))
            job = Job(Path(str(batch["source"][i])), str(batch["name"][i]),
                      {fmt: Path(path) for fmt, path in outputs.items()})
            pages = (int(batch["first"][i]), int(batch["last"][i]))
            data = bytes(batch["data"][i]) if "data" in batch else None
            error = str(batch["error"][i]) if "error" in batch else ""
            out["index"].append(int(batch["index"][i]))
            out["done"].append(self._one(int(batch["index"][i]), job, pages, data, error))
        return out

    def _one(self, index: int, job: Job, pages: PageRange, data: bytes | None, error: str) -> _Done:
        """One row's outcome; nothing raises out of here, so every failure is a row.

        ``data`` (bytes mode) is the file's contents, or ``error`` why they could not be read.
        Ray restarts a dead actor and gives it the rows it held: those are reported as failed
        ("worker died": killed, out of memory) instead of being run again, so an input that
        kills its worker cannot stall the run; the next run retries it like any failure.
        """
        import ray

        if self.fatal is not None:
            return _Done(FileOutcome(job.name, fatal=self.fatal))
        if not ray.get(self.ledger.start.remote(index, pages[0])):
            where = None if pages == WHOLE else pages[0]
            reason = "worker died" if pages == WHOLE else f"worker died (pages {pages[0]}-{pages[1]})"
            return _Done(FileOutcome(job.name, failures=[Failure(str(job.source), job.name, reason, where)]))
        if error:
            return _Done(FileOutcome(job.name, failures=[Failure(str(job.source), job.name, error)]))
        try:
            if pages != WHOLE:
                return _Done(*process_range(self.engine, job, self.options, pages, data))
            if data is None:
                return _Done(process_file(self.engine, job, self.options))
            files: dict[Path, bytes] = {}
            return _Done(process_file(self.engine, job, self.options, data=data, write=files.__setitem__), [], files)
        except Exception as exc:
            return _Done(FileOutcome(job.name, failures=[Failure(str(job.source), job.name, error_reason(exc))]))


def _rows(jobs: list[Job], ranges: dict[int, list[PageRange]], bytes_mode: bool) -> list[dict[str, Any]]:
    """One row per job and page range.

    With paths, the actors read and write at absolute paths (their working folder is not ours). With
    bytes, ``path`` is what the driver-node stage reads; the job keeps the names the plan gave it,
    so the report names inputs as a local run does, and the driver writes the outputs.
    """
    rows: list[dict[str, Any]] = []
    for i, job in enumerate(jobs):
        source, outputs = job.source, job.outputs
        if not bytes_mode:
            source, outputs = Path(os.path.abspath(source)), {f: Path(os.path.abspath(p)) for f, p in outputs.items()}
        for first, last in ranges[i]:
            row = {"index": i, "first": first, "last": last, "source": str(source), "name": job.name,
                   "outputs": json.dumps({fmt: str(path) for fmt, path in outputs.items()})}
            if bytes_mode:
                row["path"] = os.path.abspath(job.source)
            rows.append(row)
    return rows


def _read_row(row: dict[str, Any]) -> dict[str, Any]:
    """Bytes mode, on the driver's node: add the row's file contents, or why they cannot be read."""
    try:
        row["data"], row["error"] = read_input(row["path"], row["source"]), ""
    except ImageReadError as exc:
        row["data"], row["error"] = b"", str(exc)
    return row


def _write(job: Job, files: dict[Path, bytes], outcome: FileOutcome) -> None:
    """Write the outputs an actor rendered (bytes mode) as ``process_file`` does; a failure joins ``outcome``."""
    try:
        for path, content in files.items():
            atomic_write_bytes(path, content)
    except Exception as exc:  # an output that could not be written
        outcome.failures.append(Failure(str(job.source), job.name, error_reason(exc)))


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
