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

Either way the rows name each input as given (``source``) beside the absolute path read
(``path``), so the report and the outputs name inputs as a local run does.

Every failure comes back as a row, also a job whose actor died (killed, out of memory): Ray
restarts the actor and hands it the job again, which then reports "worker died" instead of
running it twice; the next run retries it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.batch.plan import Job
from ocrlite.batch.ranges import PageRange, RangeOutcome, join_ranges, process_range, split_pages
from ocrlite.batch.report import Failure, FileOutcome
from ocrlite.batch.run import BatchOptions, EngineSpec, Terminated, fail_file, process_file, store_output
from ocrlite.errors import ImageReadError, OcrliteError, error_reason
from ocrlite.extras import extra, import_extra, require
from ocrlite.io.pages import count_pages, read_input
from ocrlite.io.writers import PageRecord

__all__ = ["INPUT_MODES", "RayExecutor", "RayOptions", "require_ray"]

INPUT_MODES = ("paths", "bytes")
WHOLE: PageRange = (0, 0)  # a row's page range when it is the whole file
CONNECT_TIMEOUT_S = 10.0  # how long --ray-address HOST:PORT may take to answer before the run gives up
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # Ray colours its error messages
_CAUSE = re.compile(r"^[\w.]*(Error|Exception): \S")  # an error's last line, as Ray quotes a worker's traceback
# An HTTP/2 client's first bytes: the connection preface, then an empty SETTINGS frame (length 0, type 4, no flags)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_NOT_RAY = "no Ray cluster answers there (give the head node's GCS port, 6379 unless `ray start --port` chose another)"


@dataclass(frozen=True)
class RayOptions:
    """Where Ray runs and how the work is cut."""

    address: str | None = None  # None: start a local Ray on this machine; "auto" or "HOST:PORT": join a cluster
    workers: int | None = None  # actors; None: as many as the cluster's CPUs (at most --threads) allow
    threads: int = 1  # net threads, and CPUs reserved, per actor
    pages_per_job: int = 8  # longer PDFs/TIFFs are split into page ranges of this many pages
    inputs: str = "paths"  # "paths": a shared filesystem; "bytes": files read on the driver's node, sent in the rows

    def __post_init__(self) -> None:
        if self.inputs not in INPUT_MODES:
            raise OcrliteError(f"unknown Ray input mode {self.inputs!r}; choose from {', '.join(INPUT_MODES)}")
        if self.address is not None:
            _check_address_form(self.address)
        if self.inputs == "bytes" and (self.address or "").startswith("ray://"):
            # Ray Client runs the driver on the head node: bytes mode would read the files there, not here.
            raise OcrliteError("--ray-input bytes reads the files on this node, which a Ray Client (ray://) address "
                               "is not part of: run ocrlite on a node of the cluster with --ray-address auto or "
                               "HOST:PORT, or use --ray-input paths with the files on storage the cluster shares")


def require_ray() -> None:
    """Raise ``OcrliteError`` with the install line when Ray (with Ray Data) is not installed."""
    require("--executor ray", ("ray", "pyarrow"), extra("ray"), what="Ray")  # pyarrow: what ray[data] adds


class RayExecutor:
    """An ``ocrlite.batch.run.Executor`` that runs the jobs on Ray Data actors."""

    def __init__(self, options: RayOptions) -> None:
        require_ray()
        self.options = options

    def __call__(self, jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
                 started: Callable[[int], None]) -> Generator[FileOutcome]:
        if not jobs:
            return
        for module in ("ray", "ray.data"):  # installed (require_ray), but a broken install fails to import
            import_extra(module, "--executor ray", "ray", OcrliteError)
        import ray
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines between our own
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled": ours
        logging.getLogger("ray.data.exceptions").setLevel(logging.CRITICAL)  # a stack trace of the error said below
        own_ray = not ray.is_initialized()
        try:
            if own_ray:
                _init_ray(self.options, options.cores)
            yield from self._run(jobs, spec, options, bar, started)
        except ray.exceptions.RayError as exc:  # the cluster itself failed (actors that cannot start, node lost)
            raise OcrliteError(f"Ray failed: {_reason(exc)}") from exc
        finally:
            if own_ray:
                ray.shutdown()

    def _run(self, jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
             started: Callable[[int], None]) -> Generator[FileOutcome]:
        import ray

        ranges = {i: _ranges(job, self.options.pages_per_job) for i, job in enumerate(jobs)}
        rows = _rows(jobs, ranges, self.options.inputs == "bytes")
        workers = min(_actors(self.options, options.cores, ray.cluster_resources().get("CPU", 1)), len(rows))
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
        self.options, self.ledger = options, ledger
        self.engine: Any = None
        self.fatal: str | None = None
        try:  # anything the build raises (a bad model, a package missing on this node) is the run's one line
            from ocrlite.backends.threads import set_threads

            set_threads(threads)
            self.engine = spec.build()
        except Exception as exc:
            self.fatal = error_reason(exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"index": [], "done": []}
        for i in range(len(batch["index"])):
            outputs = json.loads(os.fsdecode(batch["outputs"][i]))
            job = Job(Path(os.fsdecode(batch["source"][i])), os.fsdecode(batch["name"][i]),
                      {fmt: Path(path) for fmt, path in outputs.items()})
            pages = (int(batch["first"][i]), int(batch["last"][i]))
            data = bytes(batch["data"][i]) if "data" in batch else None
            error = os.fsdecode(batch["error"][i]) if "error" in batch else ""
            out["index"].append(int(batch["index"][i]))
            out["done"].append(self._one(int(batch["index"][i]), job, pages, data, error,
                                         os.fsdecode(batch["path"][i])))
        return out

    def _one(self, index: int, job: Job, pages: PageRange, data: bytes | None, error: str, path: str) -> _Done:
        """One row's outcome; nothing raises out of here, so every failure is a row.

        ``data`` (bytes mode) is the file's contents, or ``error`` why they could not be read; without
        either (paths mode) the actor reads ``path``, the input's absolute path.
        Ray restarts a dead actor and gives it the rows it held: those are reported as failed
        ("worker died": killed, out of memory) instead of being run again, so an input that
        kills its worker cannot stall the run; the next run retries it like any failure.
        """
        if self.fatal is not None:
            return _Done(FileOutcome(job.name, fatal=self.fatal))
        if not self._first_start(index, pages[0]):
            where = None if pages == WHOLE else pages[0]
            reason = "worker died" if pages == WHOLE else f"worker died (pages {pages[0]}-{pages[1]})"
            return _Done(FileOutcome(job.name, failures=[Failure(str(job.source), job.name, reason, where)]))
        if error:
            return _Done(FileOutcome(job.name, failures=[Failure(str(job.source), job.name, error)]))
        try:
            if data is None:  # paths mode: this actor reads the input, and writes a whole file's outputs
                if pages != WHOLE:  # opened at its path: a PDF is read lazily, each range only its own pages
                    outcome, records = process_range(self.engine, replace(job, source=Path(path)), self.options, pages)
                    return _Done(_as_given(outcome, path, str(job.source)), records)
                # Decoded from its contents so that errors, also those in the outputs, name it as given.
                data = read_input(path, str(job.source))
                return _Done(process_file(self.engine, job, self.options, data=data))
            if pages != WHOLE:
                return _Done(*process_range(self.engine, job, self.options, pages, data))
            files: dict[Path, bytes] = {}
            return _Done(process_file(self.engine, job, self.options, data=data, write=files.__setitem__), [], files)
        except Exception as exc:
            return _Done(FileOutcome(job.name, failures=[Failure(str(job.source), job.name, error_reason(exc))]))

    def _first_start(self, index: int, first: int) -> bool:
        """The ledger's ``start``; True when the ledger is gone (Ray's out-of-memory killer): the run goes on, only
        no longer telling a row retried after its actor died from a first start."""
        import ray

        try:
            return bool(ray.get(self.ledger.start.remote(index, first)))
        except ray.exceptions.RayActorError:
            return True


def _rows(jobs: list[Job], ranges: dict[int, list[PageRange]], bytes_mode: bool) -> list[dict[str, Any]]:
    """One row per job and page range.

    ``source`` and ``name`` are what the plan named the input, ``path`` its absolute path: what the
    actor (paths) or the driver-node stage (bytes) reads, as their working folder is not ours. With paths
    the actors also write the outputs, at absolute paths; with bytes the driver writes them.
    Text goes as file-system bytes: a file name that is not UTF-8 is no Arrow string.
    """
    rows: list[dict[str, Any]] = []
    for i, job in enumerate(jobs):
        outputs = job.outputs if bytes_mode else {f: Path(os.path.abspath(p)) for f, p in job.outputs.items()}
        for first, last in ranges[i]:
            rows.append({"index": i, "first": first, "last": last, "source": os.fsencode(job.source),
                         "path": os.fsencode(os.path.abspath(job.source)), "name": os.fsencode(job.name),
                         "outputs": json.dumps({fmt: str(path) for fmt, path in outputs.items()}).encode()})
    return rows


def _read_row(row: dict[str, Any]) -> dict[str, Any]:
    """Bytes mode, on the driver's node: add the row's file contents, or why they cannot be read."""
    try:
        row["data"], row["error"] = read_input(os.fsdecode(row["path"]), os.fsdecode(row["source"])), b""
    except ImageReadError as exc:
        row["data"], row["error"] = b"", os.fsencode(str(exc))
    return row


def _as_given(outcome: FileOutcome, path: str, given: str) -> FileOutcome:
    """``outcome`` of the input opened at ``path``, its failures naming it ``given`` as a local run does."""
    def named(text: str) -> str:
        return given + text[len(path):] if text.startswith(path) else text

    outcome.failures = [replace(f, path=named(f.path), reason=named(f.reason)) for f in outcome.failures]
    return outcome


def _write(job: Job, files: dict[Path, bytes], outcome: FileOutcome) -> None:
    """Write the outputs an actor rendered (bytes mode) as ``process_file`` does; a failure joins ``outcome``."""
    try:
        for path, content in files.items():
            store_output(path, content)
    except Exception as exc:  # an output that could not be written
        fail_file(outcome, job, exc)


def _ranges(job: Job, size: int) -> list[PageRange]:
    """The page ranges a job is cut into: the whole file unless it has more than ``size`` pages."""
    pages = count_pages(job.source)
    return [WHOLE] if pages <= size else split_pages(pages, size)


def _actors(options: RayOptions, cores: int | None, cpus: float) -> int:
    """``--workers``, or as many actors of ``options.threads`` CPUs as the cluster's ``cpus`` hold, and no more
    than ``cores`` (``--threads``: CPU threads for all workers together, as in a local run) allow; at least one."""
    if options.workers:
        return options.workers
    budget = int(cpus) if cores is None else min(int(cpus), cores)
    return max(1, budget // options.threads)


def _local_cpus(options: RayOptions, cores: int | None) -> int:
    """CPUs of the private local Ray: ``--threads`` (default: this machine's cores), or what ``--workers`` actors
    of ``--threads-per-worker`` need when that is more (an explicit pool size wins, as it does locally)."""
    return max(cores or os.cpu_count() or 1, (options.workers or 1) * options.threads)


def _init_ray(options: RayOptions, cores: int | None) -> None:
    """Join the cluster at ``options.address``, or start a private local Ray (no dashboard, no usage stats).

    ``ray.init`` makes SIGTERM exit the process (``sys.exit``) without a word; the handler from before
    (``run_batch``'s: stop as Ctrl-C does) is put back, and a SIGTERM during start-up is an interruption.
    """
    import ray

    previous = signal.getsignal(signal.SIGTERM)
    try:
        if options.address is not None:
            _check_address(options.address)
            ray.init(address=options.address, logging_level=logging.WARNING, log_to_driver=False)
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")  # a busy machine starts slowly (default 60)
        # Ray's default for a new local Ray (token authentication on) stays, without its warning line saying so.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        # address="local": a new Ray of our own, even where RAY_ADDRESS names another (ray.init would join it)
        ray.init(address="local", num_cpus=_local_cpus(options, cores), include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    except SystemExit as exc:  # Ray's SIGTERM handler, in place while ray.init runs
        raise Terminated from exc
    except OcrliteError:
        raise
    except Exception as exc:  # ray.init raises ConnectionError, RuntimeError, ValueError or a bare Exception
        where = f"join Ray at {options.address}" if options.address else "start a local Ray"
        raise OcrliteError(f"cannot {where}: {_reason(exc)}") from exc
    finally:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _reason(exc: BaseException) -> str:
    """Ray's error in one line: its first one, with the error that ends the traceback it quotes, if any (an actor
    that could not start: ``ModuleNotFoundError: No module named 'ocrlite'`` on a node without ocrlite)."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()] or [type(exc).__name__]
    first = lines[0].split(", ray::")[0]  # without the dead actor's process, named after the comma
    causes = [line for line in lines[1:] if _CAUSE.match(line)]
    return f"{first}: {causes[-1]}" if causes else first


def _check_address_form(address: str) -> None:
    """Raise ``OcrliteError`` unless ``address`` is ``auto``, a Ray Client ``ray://`` address or ``HOST:PORT`` with a
    port Ray can listen on: Ray reads ``:6379`` with a traceback and an empty address as a new local Ray, and the
    socket layer takes a port over 65535 modulo 65536."""
    host, _, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://") or (host and port.isdigit() and 0 < int(port) < 65536):
        return
    raise OcrliteError(f"--ray-address {address!r}: give auto or HOST:PORT, the head node's GCS port (leave the "
                       "flag out to start a local Ray)")


def _check_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ``OcrliteError`` in seconds when no Ray cluster answers at ``HOST:PORT``, or it wants a token that this
    process does not send: ``ray.init`` would wait without end (nothing there), for minutes (another service,
    such as the dashboard's port) or 20 s (a token), printing Ray's lines meanwhile.

    ``auto`` and Ray Client ``ray://`` addresses are left to Ray's own checks (``RayOptions`` took only those and
    ``HOST:PORT``).
    """
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [IPv6]:PORT
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.sendall(_H2_PREFACE)  # Ray's GCS is a gRPC server: it answers with its SETTINGS frame
            answer = sock.recv(9, socket.MSG_WAITALL)  # a frame header
    except socket.gaierror as exc:
        raise OcrliteError(f"cannot join Ray at {address}: unknown host {host} ({exc.strerror})") from exc
    except TimeoutError as exc:
        raise OcrliteError(f"cannot join Ray at {address}: no answer within {timeout:g} s") from exc
    except OSError as exc:
        raise OcrliteError(f"cannot join Ray at {address}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not _tls() and (len(answer) < 9 or answer[3] != 4):  # under TLS the server waits for a TLS hello instead
        raise OcrliteError(f"cannot join Ray at {address}: {_NOT_RAY}")
    _check_gcs(address)


def _tls() -> bool:
    """Whether Ray's gRPC connections use TLS (``RAY_USE_TLS``), as Ray reads the variable."""
    return os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")


def _check_gcs(address: str) -> None:
    """Connect to the Ray cluster's GCS at ``address`` once, as ``ray.init`` does, which retries for 20 s or more.
    ``GcsClient`` is Ray's private API (tested with Ray 2.60): where this Ray has no such client, or builds it
    otherwise, the check is left to ``ray.init``."""
    import ray

    try:
        from ray._raylet import GcsClient  # type: ignore[attr-defined]  # ray.init's own GCS client (not in its stub)
    except ImportError:
        return
    refused = getattr(ray.exceptions, "AuthenticationError", None)
    try:
        GcsClient(address=address)
    except (TypeError, AttributeError):  # another Ray's client: not a statement about the cluster
        return
    except Exception as exc:
        if refused is None or not isinstance(exc, refused):
            raise OcrliteError(f"cannot join Ray at {address}: {_NOT_RAY}") from exc  # Ray says no more than that
        raise OcrliteError(f"cannot join Ray at {address}: the cluster wants its authentication token: set "
                           "RAY_AUTH_MODE=token, the token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN"
                           ) from exc
