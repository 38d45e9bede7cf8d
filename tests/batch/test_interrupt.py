"""A batch stopped from outside (SIGTERM from `timeout`, Slurm or Kubernetes; an exit raised by a library, as Ray's
SIGTERM handler does) ends like Ctrl-C: the inputs not done are `pending`, the failures found are kept.

A stand-in executor plays the workers, so these tests need no models and no Ray.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocrlite.batch.plan import Job
from ocrlite.batch.report import Failure, FileOutcome
from ocrlite.batch.run import BatchOptions, EngineSpec, Terminated, run_batch
from ocrlite.errors import BackendError


def _exit(signum: int, frame: Any) -> None:
    """What ``ray.init`` installs for SIGTERM."""
    sys.exit(signum)


@pytest.fixture
def ray_like_sigterm() -> Iterator[None]:
    """SIGTERM handled as Ray's driver does (never the default, which would end pytest itself)."""
    previous = signal.signal(signal.SIGTERM, _exit)
    yield
    signal.signal(signal.SIGTERM, previous)


def _inputs(folder: Path) -> list[Path]:
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (folder / name).write_bytes(b"never read: the executor below does not read")
    return [folder]


def _stopping(stop: Callable[[], None]) -> Any:
    """An executor whose first file fails and who is then stopped by ``stop()`` before the others."""

    def execute(jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
                started: Callable[[int], None]) -> Generator[FileOutcome]:
        started(2)
        first = jobs[0]
        yield FileOutcome(first.name, failures=[Failure(str(first.source), first.name, "broken")])
        stop()
        for job in jobs[1:]:
            yield FileOutcome(job.name, pages=1)

    return execute


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ocrlite-report.json").read_text(encoding="utf-8"))


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _exit_15() -> None:
    sys.exit(15)


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path: Path, ray_like_sigterm: None) -> None:
    out = tmp_path / "out"
    with pytest.raises(Terminated):  # the CLI's exit 143 and "interrupted; ... rerun to continue"
        run_batch(_inputs(tmp_path / "in"), EngineSpec(), BatchOptions(out, ("txt",), quiet=True), _stopping(_sigterm))
    report = _report(out)
    assert report["interrupted"] is True and report["pending"] == ["b.png", "c.png"]
    assert [(f["name"], f["reason"]) for f in report["failures"]] == [("a.png", "broken")]
    assert signal.getsignal(signal.SIGTERM) is _exit  # the handler from before is back


def test_an_exit_during_the_run_keeps_the_pending_inputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        run_batch(_inputs(tmp_path / "in"), EngineSpec(), BatchOptions(out, ("txt",), quiet=True), _stopping(_exit_15))
    report = _report(out)
    assert report["interrupted"] is True and report["pending"] == ["b.png", "c.png"]
    assert [f["name"] for f in report["failures"]] == ["a.png"]


def test_a_run_whose_models_cannot_be_built_says_why_in_its_report(tmp_path: Path) -> None:
    """Nothing ran: the report names the reason, not an empty list of failures and every input pending alone."""

    def unbuildable(jobs: list[Job], spec: EngineSpec, options: BatchOptions, bar: Any,
                    started: Callable[[int], None]) -> Generator[FileOutcome]:
        raise BackendError("the onnxruntime backend needs onnxruntime: pip install ...")
        yield  # a generator, as executors are

    out = tmp_path / "out"
    with pytest.raises(BackendError):
        run_batch(_inputs(tmp_path / "in"), EngineSpec(), BatchOptions(out, ("txt",), quiet=True), unbuildable)
    report = _report(out)
    assert report["error"] == "the onnxruntime backend needs onnxruntime: pip install ..."
    assert report["interrupted"] is False and report["failures"] == []
    assert report["pending"] == ["a.png", "b.png", "c.png"]


def test_a_run_stopped_from_outside_has_no_error_of_its_own(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit):
        run_batch(_inputs(tmp_path / "in"), EngineSpec(), BatchOptions(out, ("txt",), quiet=True), _stopping(_exit_15))
    assert _report(out)["error"] is None  # stopped from outside: interrupted, pending, no error of its own
