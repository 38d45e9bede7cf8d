"""What a batch run did: per-file outcomes, the run totals, the JSON report and summary line."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ocrlite.backends.malloc import malloc_in_use
from ocrlite.batch.plan import REPORT_NAME
from ocrlite.io.atomic import atomic_write_text

__all__ = ["Failure", "FileOutcome", "RunReport"]


@dataclass(frozen=True)
class Failure:
    """Why an input (or one of its pages, when ``page`` is set) produced no output."""

    path: str
    name: str
    reason: str
    page: int | None = None

    def message(self) -> str:
        """``path[ page N]: reason``, without repeating a location the reason already names."""
        where = f"{self.path} page {self.page}" if self.page is not None else self.path
        return self.reason if self.reason.startswith(where) else f"{where}: {self.reason}"


@dataclass
class FileOutcome:
    """The result of one input file; ``fatal`` means the worker cannot run at all."""

    name: str
    pages: int = 0
    lines: int = 0
    failures: list[Failure] = field(default_factory=list)
    fatal: str | None = None


@dataclass
class RunReport:
    """Totals of a run, written as ``ocrlite-report.json`` and summed up in one line."""

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
    carried: list[dict[str, Any]] = field(default_factory=list)  # earlier failures of inputs not in this run
    started: float = field(default_factory=time.time)
    elapsed_s: float = 0.0
    malloc: str = field(default_factory=malloc_in_use)  # the allocator of the process that ran it

    def add(self, outcome: FileOutcome) -> None:
        self.files += 1
        self.pages += outcome.pages
        self.lines += outcome.lines
        self.failures.extend(outcome.failures)

    def finish(self) -> None:
        self.elapsed_s = round(time.time() - self.started, 3)

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
        data["failures"] = [asdict(f) for f in self.failures]
        return data

    def write(self, path: Path) -> None:
        """The report as JSON, non-ASCII escaped: a file name that is not valid UTF-8 comes back as itself."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
