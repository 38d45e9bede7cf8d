"""The batch pipeline (reader thread -> engine -> writer thread): same results as file-by-file, in order.

The reference is ``process_file`` called on each input in turn with the same engine, the loop the
pipeline replaced; a real run (shipped default models, tiny pages) must give byte-identical outputs
and equal outcomes with one and with two worker processes. The ordering and isolation checks swap in
a fake engine that is slow on some pages, so a pipeline that reordered work would show it. The worker
death checks run the real OCR in workers that kill themselves (SIGKILL) on chosen pages
(tests/batch/dying_worker.py): a run must end, lose only the page that kills twice, and its rerun read it.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from ocrlite.api import OCR
from ocrlite.batch import pipeline
from ocrlite.batch import run as batch
from ocrlite.batch import workers as worker_pool
from ocrlite.batch.plan import make_plan
from ocrlite.batch.report import FileOutcome
from ocrlite.cli import main
from ocrlite.errors import ImageReadError
from ocrlite.results import PageResult, TextLine

FORMATS = ("json", "txt", "tsv", "hocr", "pdf")
WORDS = ("ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO")


def _page(word: str, width: int = 300) -> Image.Image:
    image = Image.new("RGB", (width, 90), "white")
    ImageDraw.Draw(image).text((20, 22), word, fill="black", font=ImageFont.load_default(size=40))
    return image


def _scans(root: Path) -> Path:
    """Pages in natural order a1..e5, a 2-page TIFF and PDF among them, broken files in the middle."""
    root.mkdir()
    for i, word in enumerate(WORDS):
        _page(word, 300 + 10 * i).save(root / f"{chr(97 + i)}{i + 1}.png")
    _page("FIRST").save(root / "b2x.tiff", save_all=True, append_images=[_page("SECOND")], dpi=(100, 100))
    _page("INVOICE").save(root / "c3x.pdf", save_all=True, append_images=[_page("PAID")], resolution=100)
    (root / "b2y.png").write_text("not an image\n")
    (root / "c3y.jpg").write_bytes((root / "a1.png").read_bytes()[:120])
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "ocrlite-report.json"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[FileOutcome]]:
    """The reference: ``process_file`` on each input in turn, one engine."""
    root = tmp_path_factory.mktemp("pipeline")
    scans, out = _scans(root / "scans"), root / "sequential"
    options = batch.BatchOptions(out, FORMATS, dpi=100.0)
    engine = batch.EngineSpec().build()
    outcomes = [batch.process_file(engine, job, options) for job in make_plan([scans], out, FORMATS).jobs]
    return scans, out, outcomes


@pytest.mark.parametrize("workers", [1, 2])
def test_outputs_and_outcomes_equal_the_file_by_file_loop(
        sequential: tuple[Path, Path, list[FileOutcome]], tmp_path: Path, workers: int) -> None:
    scans, reference, expected = sequential
    out = tmp_path / "out"
    options = batch.BatchOptions(out, FORMATS, dpi=100.0, workers=workers)
    jobs = make_plan([scans], out, FORMATS).jobs
    used: list[int] = []
    outcomes = list(pipeline.run_local(jobs, batch.EngineSpec(), options, None, used.append))
    assert used == [workers]
    assert outcomes == expected  # same order, pages, lines and failures
    assert [o.name for o in outcomes] == [job.name for job in jobs]
    assert {f.name for o in outcomes for f in o.failures} == {"b2y.png", "c3y.jpg"}
    assert _files(out) == _files(reference)  # byte-identical json, txt, tsv, hocr and pdf
    texts = [(out / f"{chr(97 + i)}{i + 1}.png.txt").read_text(encoding="utf-8") for i in range(len(WORDS))]
    assert ["".join(t.split()).upper() for t in texts] == list(WORDS)
    assert not list(out.rglob("*.part"))


class SlowFakeEngine:
    """Reads a page as one line naming its width; slow on every other page, raises on listed widths. Reads
    files page by page as ``OCR.read_documents`` does (the stdout mode's path)."""

    read_documents, _documents = OCR.read_documents, OCR._documents

    def __init__(self, fail_widths: set[int]) -> None:
        self.seen: list[int] = []
        self.fail_widths = fail_widths

    def __call__(self, image: np.ndarray) -> PageResult:
        height, width = image.shape[:2]
        self.seen.append(width)
        time.sleep(0.05 if len(self.seen) % 2 else 0.0)
        if width in self.fail_widths:
            raise RuntimeError(f"cannot read width {width}")
        quad = np.array([[2, 2], [width - 2, 2], [width - 2, height - 2], [2, height - 2]])
        return PageResult(width, height, (TextLine(quad, f"width {width}", 0.9, 0.8),))


def test_a_bad_file_and_a_bad_page_in_the_middle_cost_only_themselves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans = _scans(tmp_path / "scans")
    engine = SlowFakeEngine(fail_widths={320})  # c3.png
    monkeypatch.setattr(batch.EngineSpec, "build", lambda self: engine)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["ocr", str(scans), "-o", str(out), "--format", "txt,json", "--workers", "1",
                                         "--dpi", "100"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ocrlite: error:")]
    assert len(errors) == 3 and all("b2y.png" in e or "c3y.jpg" in e or "c3.png" in e for e in errors)
    assert "cannot read width 320" in result.stderr and "Traceback" not in result.stderr
    # the engine saw every readable page once, in input order
    assert engine.seen == [300, 310, 300, 300, 320, 300, 300, 330, 340]
    for i, width in enumerate((300, 310, 330, 340)):
        name = f"{'abde'[i]}{(1, 2, 4, 5)[i]}.png"
        assert (out / f"{name}.txt").read_text(encoding="utf-8") == f"width {width}\n"
    assert (out / "b2x.tiff.txt").read_text(encoding="utf-8") == "width 300\n\fwidth 300\n"
    assert not (out / "c3.png.txt").exists() and not (out / "b2y.png.txt").exists()
    report = json.loads((out / "ocrlite-report.json").read_text(encoding="utf-8"))
    assert report["pages"] == 8 and report["files"] == 9
    assert {f["name"] for f in report["failures"]} == {"b2y.png", "c3.png", "c3y.jpg"}


def test_the_reader_stays_a_few_pages_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = []
    for i in range(8):
        _page(str(i), 200 + i).save(tmp_path / f"p{i}.png")
        paths.append(tmp_path / f"p{i}.png")
    decoded: list[int] = []
    real_open = pipeline.open_pages

    def counting_open(path: Any, *args: Any) -> Any:
        decoded.append(int(Path(path).stem[1:]))
        return real_open(path, *args)

    monkeypatch.setattr(pipeline, "open_pages", counting_open)
    seen = []
    with pipeline.read_ahead(paths, 100, 10**8, depth=2) as items:
        for item in items:
            time.sleep(0.05)  # a slow engine: the reader must wait, not decode everything
            if item.number:
                seen.append(item.page.image.shape[1] - 200 if item.page is not None else -1)
                assert len(decoded) <= len(seen) + 2  # depth 2 queued + the one being read
    assert seen == list(range(8)) and decoded == list(range(8))


def test_stdout_mode_prints_in_order_past_a_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans = _scans(tmp_path / "scans")
    engine = SlowFakeEngine(fail_widths=set())
    monkeypatch.setattr(batch.EngineSpec, "build", lambda self: engine)
    names = ["a1.png", "b2y.png", "c3.png", "b2x.tiff", "e5.png"]
    result = CliRunner().invoke(main, ["ocr", *(str(scans / n) for n in names), "--format", "txt"])
    assert result.exit_code == 1
    # pages apart by a form feed, as in batch txt; the file that could not be read is an empty page
    assert result.stdout.split("\f") == ["width 300\n", "", "width 320\n", "width 300\n", "width 300\n", "width 340\n"]
    assert [line for line in result.stderr.splitlines() if "b2y.png" in line] == result.stderr.splitlines()


def test_leaving_read_ahead_does_not_wait_for_a_stuck_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader blocked in a read that does not return (a hung network file system) must not hold up Ctrl-C:
    leaving ``read_ahead`` waits ``READER_STOP_S`` for it at most."""
    release = threading.Event()

    def stuck_open(path: Any, *args: Any) -> Any:
        release.wait(60)
        raise ImageReadError(f"{path}: released")

    monkeypatch.setattr(pipeline, "open_pages", stuck_open)
    monkeypatch.setattr(pipeline, "READER_STOP_S", 0.2, raising=False)  # raising: absent before the fix
    left: list[float] = []

    def interrupted() -> None:
        try:
            with pipeline.read_ahead([tmp_path / "x.png"], 100, 10**8):
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            left.append(time.monotonic())

    start = time.monotonic()
    thread = threading.Thread(target=interrupted, daemon=True)
    thread.start()
    thread.join(10)
    release.set()
    assert left and left[0] - start < 5


def test_workers_default_to_one_per_core_but_not_more_than_pages(tmp_path: Path) -> None:
    assert [pipeline.default_workers(c) for c in (1, 2, 4, 64)] == [1, 2, 4, pipeline.MAX_DEFAULT_WORKERS]
    _page("ONE").save(tmp_path / "one.png")
    _page("A").save(tmp_path / "two.tiff", save_all=True, append_images=[_page("B")])
    plan = make_plan([tmp_path / "one.png"], tmp_path / "out", ["txt"])
    assert pipeline._workers(plan.jobs, 4, None) == 1  # one page: read here, no process spawned
    plan = make_plan([tmp_path / "two.tiff"], tmp_path / "out", ["txt"])
    assert pipeline._workers(plan.jobs, 4, None) == 2 and pipeline._workers(plan.jobs, 1, None) == 1
    assert pipeline._workers(plan.jobs, None, 1) == 1  # --threads 1: one worker, whatever the machine


def test_threads_bound_the_batch_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ocrlite --threads N ocr DIR -o OUT`` runs at most N threads in all: N workers of one thread by default."""
    seen: list[tuple[int, int | None]] = []

    def fake_run_local(jobs: list[Any], spec: Any, options: batch.BatchOptions, bar: Any, started: Any) -> Any:
        seen.append((pipeline._workers(jobs, options.workers, options.cores), options.cores))
        yield from ()

    monkeypatch.setattr(pipeline, "run_local", fake_run_local)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    for page in ("a", "b", "c"):
        _page(page.upper()).save(tmp_path / f"{page}.png")
    for threads in ("1", "2"):
        result = CliRunner().invoke(main, ["--threads", threads, "ocr", str(tmp_path), "-o", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
    assert seen == [(1, 1), (2, 2)]


def _dying_workers(monkeypatch: pytest.MonkeyPatch, tally: Path) -> None:
    """Batch runs of the CLI build a ``DyingEngineSpec``: a worker handed d4.png (330 pixels wide) dies once,
    one handed e5.png (340) dies the first two times."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # spawned workers inherit sys.path
    from dying_worker import DyingEngineSpec

    tally.mkdir()
    monkeypatch.setattr(batch, "EngineSpec", functools.partial(DyingEngineSpec, kills=((330, 1), (340, 2)),
                                                               tally=str(tally)))


def _batch_cli(scans: Path, out: Path, workers: int) -> Any:
    return CliRunner().invoke(main, ["ocr", str(scans), "-o", str(out), "--format", ",".join(FORMATS),
                                     "--workers", str(workers), "--dpi", "100"])


def _errors(result: Any) -> dict[str, str]:
    """File name -> its error line."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("ocrlite: error:")]
    return {line.split(": ")[2].rsplit("/", 1)[-1]: line for line in lines}


def test_a_killed_worker_is_replaced_and_a_page_that_kills_twice_is_the_only_loss(
        sequential: tuple[Path, Path, list[FileOutcome]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scans, reference, _ = sequential
    out, tally = tmp_path / "out", tmp_path / "tally"
    _dying_workers(monkeypatch, tally)
    result = _batch_cli(scans, out, workers=2)
    assert (tally / "330").read_bytes() == b"x" and (tally / "340").read_bytes() == b"xx"  # three SIGKILLs
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = _errors(result)
    assert sorted(errors) == ["b2y.png", "c3y.jpg", "e5.png"]  # d4.png was read again: not lost
    assert errors["e5.png"].endswith("e5.png: a worker process died reading it, 2 times (killed, or out of memory?); "
                                     "rerun to retry it")
    report = json.loads((out / "ocrlite-report.json").read_text(encoding="utf-8"))
    assert sorted(f["name"] for f in report["failures"]) == sorted(errors) and report["workers"] == 2
    expected = _files(reference)
    assert _files(out) == {k: v for k, v in expected.items() if not k.startswith("e5.png")}  # nothing else lost
    assert not list(out.rglob("*.part"))
    before = {p: (out / p).stat().st_mtime_ns for p in _files(out)}

    rerun = _batch_cli(scans, out, workers=1)  # e5.png no longer kills: read now, the rest kept
    assert rerun.exit_code == 1 and sorted(_errors(rerun)) == ["b2y.png", "c3y.jpg"], rerun.output
    assert _files(out) == expected
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before


def test_workers_that_keep_dying_end_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from dying_worker import DeadOnArrivalSpec

    monkeypatch.setattr(worker_pool, "LOST_IN_A_ROW", 1)  # the first page lost ends it (each loss: two starts)
    pool = worker_pool.WorkerPool(DeadOnArrivalSpec(), workers=1, threads=1)
    try:
        page = pool.submit(np.asarray(_page("ONE")))
        assert page.get() == worker_pool.Unread(
            "worker processes keep dying (out of memory?): the run stops; rerun to retry", fatal=True)
        assert page.deaths == worker_pool.READS == 2
    finally:
        pool.close()
    assert not pool.workers[0].process.is_alive()
