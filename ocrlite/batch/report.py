"""What a batch run did: per-file outcomes, the run totals, the JSON report and summary line, and what made
each output in the output folder (the records that decide, next time, which inputs are up to date)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from ocrlite.backends.malloc import malloc_in_use
from ocrlite.batch.plan import REPORT_NAME, Job
from ocrlite.errors import OcrliteError, one_line
from ocrlite.io.atomic import atomic_write_text
from ocrlite.io.images import natural_key
from ocrlite.io.writers import json_text

__all__ = ["Failure", "FileOutcome", "RunReport", "Journal", "file_identity"]


@dataclass(frozen=True)
class Failure:
    """Why an input (or one of its pages, when ``page`` is set) produced no output."""

    path: str
    name: str
    reason: str
    page: int | None = None

    def message(self) -> str:
        """``path[ page N]: reason``, without repeating a location the reason already names (anywhere: ``no images
        found in DIR``), as the stdout mode's error lines (``ItemRun``)."""
        where = one_line(f"{self.path} page {self.page}" if self.page is not None else self.path)
        reason = one_line(self.reason)
        return reason if where in reason else f"{where}: {reason}"


@dataclass
class FileOutcome:
    """The result of one input file; ``fatal`` (why) stops the run: the worker cannot run at all, or the output
    folder has no room left."""

    name: str
    pages: int = 0
    lines: int = 0
    failures: list[Failure] = field(default_factory=list)
    fatal: str | None = None


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of ``path``, None when absent: an output written since (atomically: a new
    file) has another."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


class Journal:
    """Output records appended to a file (``plan.JOURNAL_NAME``) as they are made, one JSON line each, after one
    line naming what the run's settings fingerprint stands for: a run killed before it writes its report still
    leaves them for the next run's plan. Removed once the report holding them is written. A journal that cannot
    be written (the disk is full) is given up: the report still records the outputs; only a kill would then cost
    a rerun their redoing."""

    def __init__(self, path: Path, fingerprint: str, described: dict[str, Any]) -> None:
        self.path, self.settings = path, {fingerprint: described}
        self.file: IO[str] | None = None
        self.broken = False

    def add(self, key: str, record: dict[str, Any]) -> None:
        if self.broken:
            return
        try:
            if self.file is None:
                self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the run)
                self.file.write("\n" + json_text({"settings": self.settings}) + "\n")  # past a line a kill cut short
            self.file.write(json_text({"output": key, "record": record}) + "\n")
            self.file.flush()  # in the OS's hands: a killed process loses nothing written
        except OSError:
            self.broken = True
            self._close()

    def remove(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):  # what it could not flush is lost either way
                self.file.close()
            self.file = None


@dataclass
class RunReport:
    """Totals of a run, written as ``ocrlite-report.json`` and summed up in one line.

    ``outputs`` describes what is in the output folder: for each output (its path there), the input it was made
    from (``Job.stamp``), the ``fingerprint`` of the settings it was made with, and the output file itself (size,
    mtime). ``settings`` tells what each fingerprint named there, and this run's, stands for.
    """

    formats: list[str]
    dpi: float
    workers: int  # processes or Ray actors the run used (0: nothing to do)
    files: int = 0
    skipped: int = 0
    pages: int = 0
    lines: int = 0
    failures: list[Failure] = field(default_factory=list)
    interrupted: bool = False
    pending: list[str] = field(default_factory=list)  # inputs an interrupted run did not reach
    error: str | None = None  # why the run stopped short (e.g. the models could not be built), in one line
    carried: list[dict[str, Any]] = field(default_factory=list)  # earlier failures of inputs not in this run
    fingerprint: str = ""
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    elapsed_s: float = 0.0
    malloc: str = field(default_factory=malloc_in_use)  # the allocator of the process that ran it

    def add(self, outcome: FileOutcome) -> None:
        self.files += 1
        self.pages += outcome.pages
        self.lines += outcome.lines
        self.failures.extend(outcome.failures)

    def record(self, job: Job, before: dict[Path, tuple[int, int, int] | None],
               journal: Journal | None = None) -> str | None:
        """Record the outputs of ``job`` that this run wrote (changed since ``before``, their state when it
        started) as made from its input with this run's settings, also in ``journal``. Returns the input those
        outputs were made from when it was another one (a one-line notice), else None."""
        replaced: dict[str, list[str]] = {}
        for fmt, path in job.outputs.items():
            now = file_identity(path)
            if now == before.get(path):
                continue
            key = job.record_key(fmt)
            old = (self.outputs.pop(key, None) or {}).get("source") or {}
            if now is None:
                continue
            if job.stamp is not None and old.get("path") not in (None, job.stamp["path"]):
                replaced.setdefault(str(old["path"]), []).append(str(path))
            self.outputs[key] = {"source": job.stamp, "settings": self.fingerprint,
                                 "file": {"size": now[1], "mtime_ns": now[2]}}
            if journal is not None:
                journal.add(key, self.outputs[key])
        return "; ".join(f"{job.source}: replaced {', '.join(paths)}, made from {source}"
                         for source, paths in replaced.items()) or None

    def finish(self) -> None:
        self.elapsed_s = round(time.time() - self.started, 3)
        named = {str(record.get("settings")) for record in self.outputs.values()} | {self.fingerprint}
        self.settings = {key: value for key, value in self.settings.items() if key in named}

    def summary(self) -> str:
        state = " (interrupted)" if self.interrupted else ""
        rate = f", {self.pages / self.elapsed_s:.2f} pages/s" if self.elapsed_s > 0 and self.pages else ""
        failed = f"{len(self.failures)} failed (see {REPORT_NAME})" if self.failures else "none failed"
        earlier = f", {len(self.carried)} earlier failures not retried in this run" if self.carried else ""
        return (f"ocrlite: {self.files} files processed, {self.skipped} up to date, {self.pages} pages, "
                f"{self.lines} lines, {failed}{earlier}, in {self.elapsed_s:.1f} s{rate}{state}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started))
        # in path and page order, not in the order the workers finished (the same report for the same run)
        order = sorted(self.failures, key=lambda f: (natural_key(Path(f.name)), f.page or 0))
        data["failures"] = [asdict(f) for f in order]
        return data

    def write(self, path: Path) -> None:
        """The report as JSON (``json_text``: a file name that is not valid UTF-8 comes back as itself); an
        ``OcrliteError`` when the file system refuses it (full, read-only)."""
        try:
            atomic_write_text(path, json_text(self.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise OcrliteError(f"cannot write the run report {path}: {exc.strerror or exc}") from exc
