"""Batch mode (`ocrlite ocr INPUTS -o DIR`): outputs, report, resume, isolation, formats.

The end-to-end tests run the real CLI with the shipped models on tiny pages rendered here;
the others swap in a fake engine to test the runner's bookkeeping quickly.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from ocrlite.api import OCR
from ocrlite.batch import pipeline
from ocrlite.batch import run as batch
from ocrlite.batch.plan import make_plan
from ocrlite.cli import main
from ocrlite.errors import ImageReadError
from ocrlite.io.pages import open_pages
from ocrlite.postprocess import line_words
from ocrlite.results import PageResult, TextLine

FORMATS = ("json", "txt", "tsv", "hocr", "pdf")
XHTML = "{http://www.w3.org/1999/xhtml}"
GOOD = {"a.png": ["HELLO"], "sub/b.jpg": ["WORLD"], "doc.pdf": ["INVOICE", "PAID"],
        "scan.tiff": ["FIRST", "SECOND"]}
BAD = {"corrupt.jpg", "empty.png", "notes.png"}


def _page(word: str) -> Image.Image:
    image = Image.new("RGB", (300, 90), "white")
    ImageDraw.Draw(image).text((20, 22), word, fill="black", font=ImageFont.load_default(size=40))
    return image


def _make_scans(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    _page("HELLO").save(root / "a.png")
    _page("WORLD").save(root / "sub" / "b.jpg", quality=95)
    first, second = _page("INVOICE"), _page("PAID")
    first.save(root / "doc.pdf", save_all=True, append_images=[second], resolution=100)
    first, second = _page("FIRST"), _page("SECOND")
    first.save(root / "scan.tiff", save_all=True, append_images=[second], dpi=(100, 100))
    (root / "corrupt.jpg").write_bytes((root / "sub" / "b.jpg").read_bytes()[:200])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("not an image at all\n")
    return root


def _cli(*args: str, stdin: str | bytes | None = None) -> Any:
    return CliRunner().invoke(main, ["ocr", *args], input=stdin)


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and p.name != "ocrlite-report.json"}


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ocrlite-report.json").read_text(encoding="utf-8"))


def _squash(text: str) -> str:
    return "".join(text.split()).upper()


@pytest.fixture(scope="module", autouse=True)
def one_process() -> Any:
    """Runs without --workers read in this process (the default is one worker process per core): the fake
    engine below is patched in here, and tiny pages gain nothing from spawning. tests/batch/test_pipeline.py
    runs worker processes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "default_workers", lambda cores=None: 1)
        yield


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    """One torch thread in this process: tiny pages gain nothing from more, and on a busy
    machine (parallel test runs) extra OpenMP threads slow every call down many times."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """One real run over the mixed folder with every format (shared by the checks below)."""
    root = tmp_path_factory.mktemp("batch")
    scans = _make_scans(root / "scans")
    out = root / "out"
    result = _cli(str(scans), "-o", str(out), "--format", "json,txt", "--format", "tsv,hocr,pdf",
                  "--dpi", "100")
    return scans, out, result


def test_every_good_page_is_written_and_bad_files_are_reported(first_run: tuple[Path, Path, Any]) -> None:
    scans, out, result = first_run
    assert result.exit_code == 1, result.output
    for name in GOOD:
        for fmt in FORMATS:
            assert (out / f"{name}.{fmt}").is_file(), f"{name}.{fmt}"
    report = _report(out)
    assert {f["name"] for f in report["failures"]} == BAD
    assert all(f["reason"] for f in report["failures"])
    assert report["pages"] == 6 and report["files"] == 7 and not report["interrupted"] and report["workers"] == 1
    assert "7 files processed" in result.stderr and "3 failed" in result.stderr and "6 pages" in result.stderr
    assert not list(out.rglob("*.part"))
    for name, words in GOOD.items():
        doc = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert [p["page"] for p in doc["pages"]] == list(range(1, len(words) + 1))
        for page, word in zip(doc["pages"], words):
            assert word in _squash(" ".join(line["text"] for line in page["lines"])), (name, page)
    text = (out / "doc.pdf.txt").read_text(encoding="utf-8")
    assert text.count("\f") == 1 and "INVOICE" in _squash(text.split("\f")[0])


def test_tsv_has_tesseract_like_columns(first_run: tuple[Path, Path, Any]) -> None:
    _, out, _ = first_run
    rows = [line.split("\t") for line in (out / "scan.tiff.tsv").read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["page", "line", "left", "top", "width", "height", "conf", "text"]
    assert [row[0] for row in rows[1:]] == ["1", "2"]
    assert all(int(row[4]) > 0 and 0 < float(row[6]) <= 100 for row in rows[1:])
    assert "SECOND" in _squash(rows[2][7])


def test_hocr_is_xml_with_pages_lines_and_words(first_run: tuple[Path, Path, Any]) -> None:
    _, out, _ = first_run
    html = ET.parse(out / "doc.pdf.hocr").getroot()
    pages = html.findall(f".//{XHTML}div[@class='ocr_page']")
    assert len(pages) == 2
    assert "bbox 0 0 300 9" in pages[0].get("title", "")  # 90 or 91 px: pdfium rounds up
    words = html.findall(f".//{XHTML}span[@class='ocrx_word']")
    assert words and all("x_wconf" in w.get("title", "") and "bbox" in w.get("title", "") for w in words)
    assert html.findall(f".//{XHTML}span[@class='ocr_line']")
    recognized = _squash(" ".join(w.text or "" for w in words))
    assert "INVOICE" in recognized and "PAID" in recognized


def test_searchable_pdf_text_layer_holds_the_words(first_run: tuple[Path, Path, Any]) -> None:
    _, out, _ = first_run
    for name, words in GOOD.items():
        doc = pdfium.PdfDocument(str(out / f"{name}.pdf"))
        try:
            assert len(doc) == len(words)
            width, height = doc[0].get_size()
            assert abs(width - 300 * 72 / 100) < 1 and abs(height - 90 * 72 / 100) < 1
            for page, word in zip(doc, words):
                assert word in _squash(page.get_textpage().get_text_range()), name
        finally:
            doc.close()


def test_rerun_skips_finished_inputs_and_overwrite_redoes_them(first_run: tuple[Path, Path, Any]) -> None:
    scans, out, _ = first_run
    before = _mtimes(out)
    again = _cli(str(scans), "-o", str(out), "--format", "json,txt,tsv,hocr,pdf", "--dpi", "100")
    assert again.exit_code == 1  # the broken files are tried again and still fail
    assert _mtimes(out) == before
    report = _report(out)
    assert report["skipped"] == 4 and report["pages"] == 0
    assert {f["name"] for f in report["failures"]} == BAD

    redo = _cli(str(scans), "-o", str(out), "--format", "txt", "--dpi", "100", "--overwrite", "-q",
                "--glob", "*.tiff")
    assert redo.exit_code == 0 and redo.stderr == ""  # quiet, and the glob leaves out the bad files
    after = _mtimes(out)
    assert after["scan.tiff.txt"] > before["scan.tiff.txt"]
    assert {k: v for k, v in after.items() if k != "scan.tiff.txt"} == {
        k: v for k, v in before.items() if k != "scan.tiff.txt"}
    assert "SECOND" in _squash((out / "scan.tiff.txt").read_text(encoding="utf-8"))


def test_two_workers_give_the_same_text(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    for word in ("HELLO", "WORLD", "PAID"):
        _page(word).save(scans / f"{word.lower()}.png")
    out = tmp_path / "out"
    result = _cli(str(scans), "-o", str(out), "--format", "txt", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert _report(out)["workers"] == 2
    for word in ("HELLO", "WORLD", "PAID"):
        assert word in _squash((out / f"{word.lower()}.png.txt").read_text(encoding="utf-8"))


# --- the runner's bookkeeping, with a fake engine ----------------------------------------------


class FakeEngine:
    """Reads every page as one line "fake N"; raises on the pages listed in ``fail``. Reads files page by page
    as ``OCR.read_documents`` does (the stdout mode's path)."""

    read_documents, _documents = OCR.read_documents, OCR._documents

    def __init__(self, fail: dict[int, BaseException] | None = None) -> None:
        self.calls = 0
        self.fail = fail or {}

    def __call__(self, image: np.ndarray) -> PageResult:
        self.calls += 1
        if self.calls in self.fail:
            raise self.fail[self.calls]
        height, width = image.shape[:2]
        quad = np.array([[2, 2], [width - 2, 2], [width - 2, height - 2], [2, height - 2]])
        return PageResult(width, height, (TextLine(quad, f"fake {self.calls}", 0.9, 0.8),))


@pytest.fixture()
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    engine = FakeEngine()
    monkeypatch.setattr(batch.EngineSpec, "build", lambda self: engine)
    return engine


def test_a_page_that_raises_is_recorded_and_the_rest_written(tmp_path: Path, fake_engine: FakeEngine) -> None:
    scans = _make_scans(tmp_path / "scans")
    fake_engine.fail = {3: RuntimeError("boom")}  # a.png, doc.pdf page 1, doc.pdf page 2 (natural order)
    out = tmp_path / "out"
    result = _cli(str(scans), "-o", str(out), "--format", "txt,pdf", "--dpi", "50")
    assert result.exit_code == 1
    failures = {(f["name"], f["page"]) for f in _report(out)["failures"]}
    assert ("doc.pdf", 2) in failures and "unexpected RuntimeError: boom" in result.stderr
    assert (out / "doc.pdf.txt").read_text(encoding="utf-8") == "fake 2\n\f"  # page 2 kept as an empty page
    # the partly failed file is retried on the next run, the complete ones are not
    fake_engine.fail, fake_engine.calls = {}, 0
    _cli(str(scans), "-o", str(out), "--format", "txt,pdf", "--dpi", "50")
    assert fake_engine.calls == 2 and (out / "doc.pdf.txt").read_text(encoding="utf-8").count("fake") == 2


def test_ctrl_c_leaves_only_complete_outputs(tmp_path: Path, fake_engine: FakeEngine) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(3):
        _page(f"P{i}").save(scans / f"p{i}.png")
    fake_engine.fail = {2: KeyboardInterrupt()}
    out = tmp_path / "out"
    result = _cli(str(scans), "-o", str(out), "--format", "json,pdf")
    assert result.exit_code == 130
    assert sorted(p.name for p in out.iterdir()) == ["ocrlite-report.json", "p0.png.json", "p0.png.pdf"]
    assert _report(out)["interrupted"] is True
    fake_engine.fail, fake_engine.calls = {}, 0
    assert _cli(str(scans), "-o", str(out), "--format", "json,pdf").exit_code == 0
    assert fake_engine.calls == 2


def test_paths_from_stdin_and_a_list_file_with_glob(tmp_path: Path, fake_engine: FakeEngine) -> None:
    scans = _make_scans(tmp_path / "scans")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# scans\n{scans / 'a.png'}\n\n")
    out = tmp_path / "out"
    result = _cli("-", "--files-from", str(listing), "-o", str(out), stdin=f"{scans / 'sub' / 'b.jpg'}\n")
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json")) == [
        "a.png.json", "ocrlite-report.json", "sub/b.jpg.json"]

    globbed = tmp_path / "globbed"
    assert _cli(str(scans), "-o", str(globbed), "--glob", "*.pdf", "--dpi", "30").exit_code == 0
    assert sorted(p.name for p in globbed.glob("*.json")) == ["doc.pdf.json", "ocrlite-report.json"]


def test_a_glob_that_matches_nothing_in_a_folder_is_an_error(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """A camera's ``IMG_0001.JPG`` and ``--glob '*.jpg'``: the run read nothing and exited 0, "0 files processed".
    Each folder none of whose images matches is now an error line naming it (exit 1); the other folders are read."""
    cameras, scans = tmp_path / "camera", tmp_path / "scans"
    cameras.mkdir()
    scans.mkdir()
    _page("A").save(cameras / "IMG_0001.JPG")
    _page("B").save(scans / "b.jpg")
    out = tmp_path / "out"
    result = _cli(str(cameras), str(scans), "-o", str(out), "--glob", "*.jpg")
    assert result.exit_code == 1, result.output
    error = f"{cameras}: no image in this folder matches the glob '*.jpg' (it tells upper from lower case)"
    assert result.stderr.splitlines()[0] == f"ocrlite: error: {error}"
    assert [f["reason"] for f in _report(out)["failures"]] == [error]
    assert sorted(p.name for p in out.rglob("*.jpg.json")) == ["b.jpg.json"]


def test_a_file_name_that_is_not_utf8_is_read_reported_and_retried(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """Linux allows any bytes in a name: its outputs are written, the report stays valid JSON that names it,
    and a failure on it is retried by the next run."""
    scans = tmp_path / "scans"
    scans.mkdir()
    odd = os.fsdecode(b"x\xe9.png")
    _page("X").save(scans / odd)
    out = tmp_path / "out"
    fake_engine.fail = {1: RuntimeError("boom")}
    assert _cli(str(scans), "-o", str(out), "--format", "json,hocr,pdf").exit_code == 1
    assert [f["name"] for f in _report(out)["failures"]] == [odd]
    fake_engine.fail = {}
    assert _cli(str(scans), "-o", str(out), "--format", "json,hocr,pdf").exit_code == 0
    assert _report(out)["files"] == 1 and not _report(out)["failures"]
    assert json.loads((out / f"{odd}.json").read_text(encoding="utf-8"))["source"] == "x\ufffd.png"
    ET.parse(out / f"{odd}.hocr")


def test_path_lists_may_hold_names_that_are_not_utf8(tmp_path: Path, fake_engine: FakeEngine) -> None:
    odd = tmp_path / os.fsdecode(b"x\xe9.png")
    _page("X").save(odd)
    listing = tmp_path / "list.txt"
    listing.write_bytes(os.fsencode(odd) + b"\n")
    out = tmp_path / "out"
    assert _cli("--files-from", str(listing), "-o", str(out)).exit_code == 0
    assert _cli("-", "-o", str(out), "--overwrite", stdin=listing.read_bytes()).exit_code == 0
    assert _report(out)["files"] == 1 and (out / f"{odd.name}.json").is_file()


def test_a_failed_page_is_retried_after_runs_that_leave_its_file_out(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """scan.tiff's page 2 fails, so its outputs hold page 1 only; a run of the png files alone must not make
    it count as done: its report carries the failure, and the next full run retries the file."""
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("A").save(scans / "a.png")
    _page("FIRST").save(scans / "scan.tiff", save_all=True, append_images=[_page("SECOND")])
    out = tmp_path / "out"
    fake_engine.fail = {3: RuntimeError("boom")}  # a.png, scan.tiff page 1, page 2
    assert _cli(str(scans), "-o", str(out)).exit_code == 1
    fake_engine.fail = {}
    (out / "a.png.json").unlink()
    partial = _cli(str(scans), "-o", str(out), "--glob", "*.png")
    assert partial.exit_code == 0 and "1 earlier failures not retried" in partial.stderr
    assert [(f["name"], f["page"]) for f in _report(out)["carried"]] == [("scan.tiff", 2)]
    full = _cli(str(scans), "-o", str(out))
    assert full.exit_code == 0 and _report(out)["files"] == 1 and not _report(out)["carried"]
    assert len(json.loads((out / "scan.tiff.json").read_text(encoding="utf-8"))["pages"]) == 2


def test_an_input_replaced_by_an_older_file_is_redone(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """``cp -p`` or ``rsync -t`` bring in a changed file whose mtime is older than its outputs: its ctime tells."""
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("A").save(scans / "a.png")
    out = tmp_path / "out"
    assert _cli(str(scans), "-o", str(out)).exit_code == 0
    assert _cli(str(scans), "-o", str(out)).exit_code == 0 and _report(out)["skipped"] == 1
    _page("B").save(scans / "a.png")
    os.utime(scans / "a.png", (1_000_000_000, 1_000_000_000))  # mtime of 2001, as cp -p of an old file keeps
    assert _cli(str(scans), "-o", str(out)).exit_code == 0 and _report(out)["files"] == 1


def test_an_output_made_from_another_input_of_the_same_name_is_redone(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """m/2024/page1.png and m/2025/page1.png both write page1.png.json into one output folder: the second run
    reads its own scan and says in one line whose output it replaced; each rerun keeps what is up to date."""
    for year in ("2024", "2025"):
        (tmp_path / "m" / year).mkdir(parents=True)
        _page(year).save(tmp_path / "m" / year / "page1.png")
    out = tmp_path / "out"

    def run(year: str) -> Any:
        result = _cli(str(tmp_path / "m" / year), "-o", str(out), "--format", "json,txt")
        assert result.exit_code == 0, result.output
        return result

    def notices(result: Any) -> list[str]:
        return [line for line in result.stderr.splitlines() if "replaced" in line]

    assert notices(run("2024")) == []
    for year, before in (("2025", "2024"), ("2024", "2025")):
        result = run(year)  # was: "1 up to date", and the outputs kept the other year's text
        assert (_report(out)["files"], _report(out)["skipped"]) == (1, 0)
        made = (tmp_path / "m" / before / "page1.png").resolve()
        assert notices(result) == [f"ocrlite: {tmp_path / 'm' / year / 'page1.png'}: replaced "
                                   f"{out / 'page1.png.json'}, {out / 'page1.png.txt'}, made from {made}"]
    run("2024")
    assert (_report(out)["files"], _report(out)["skipped"]) == (0, 1)
    record = _report(out)["outputs"]["page1.png.txt"]
    assert record["source"]["path"] == str((tmp_path / "m" / "2024" / "page1.png").resolve())
    (out / "page1.png.txt").write_text("edited by hand\n")  # an output that is not the recorded one is redone
    run("2024")
    assert (_report(out)["files"], _report(out)["skipped"]) == (1, 0)
    assert (out / "page1.png.txt").read_text(encoding="utf-8").startswith("fake")


def test_a_rerun_with_settings_that_change_the_outputs_redoes_them(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """Outputs made with other settings (dpi, model settings, page steps) are redone; threads are not such a
    setting. The report says what each output was made with."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("a", "b"):
        _page(name.upper()).save(scans / f"{name}.png")
    out = tmp_path / "out"

    def done(*args: str) -> tuple[int, int]:
        result = CliRunner().invoke(main, [*args[:2], "ocr", str(scans), "-o", str(out), "--format", "txt",
                                           *args[2:]])
        assert result.exit_code == 0, result.output
        return _report(out)["files"], _report(out)["skipped"]

    assert done("--threads", "2") == (2, 0)
    assert done("--threads", "1") == (0, 2)
    assert done("--threads", "1", "--dpi", "300") == (2, 0)  # was: "0 processed, 2 up to date"
    assert done("--threads", "1", "--dpi", "300") == (0, 2)
    assert done("--threads", "1", "--dpi", "300", "--set", "det.postprocess.box_thresh=0.5") == (2, 0)
    assert done("--threads", "1", "--dpi", "300", "--set", "det.postprocess.box_thresh=0.5", "--rotate-pages") == (2, 0)
    assert done("--threads", "1", "--dpi", "300", "--set", "det.postprocess.box_thresh=0.5", "--rotate-pages",
                "--glob", "a.*", "--overwrite") == (1, 0)
    report = _report(out)
    made_with = report["settings"][report["outputs"]["b.png.txt"]["settings"]]
    assert made_with["dpi"] == 300 and made_with["pipeline"]["page_orientation"] is True
    assert "det.postprocess.box_thresh=0.5" in made_with["set"]
    same = [batch.output_settings(batch.EngineSpec(), batch.BatchOptions(out, dpi=dpi))[0] for dpi in (200, 200.0)]
    assert same[0] == same[1]  # the API's 200 is the command's 200.0


@pytest.mark.parametrize("mode", ["batch", "stdout"])
def test_a_fifo_among_the_inputs_is_one_line_and_the_others_are_read(tmp_path: Path, fake_engine: FakeEngine,
                                                                      mode: str) -> None:
    """A FIFO named like an image used to block the reader for ever (and Ctrl-C with it)."""
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("A").save(scans / "a.png")
    os.mkfifo(scans / "b.png")
    out = tmp_path / "out"
    args = [str(scans), "-o", str(out)] if mode == "batch" else [str(scans / "a.png"), str(scans / "b.png")]
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(_cli(*args)), daemon=True)
    thread.start()
    thread.join(60)
    try:
        assert results, "the run waits on the FIFO"
    finally:
        with contextlib.suppress(OSError):  # a reader still waiting on it (a failed test) gets end-of-file
            os.close(os.open(scans / "b.png", os.O_WRONLY | os.O_NONBLOCK))
    result = results[0]
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [f"ocrlite: error: {scans / 'b.png'}: not a regular file"]
    assert (out / "a.png.json").is_file() if mode == "batch" else json.loads(result.stdout)["image"].endswith("a.png")


@pytest.mark.parametrize("mode", ["batch", "stdout"])
def test_a_folder_without_images_is_the_same_line_in_both_modes(tmp_path: Path, fake_engine: FakeEngine,
                                                                 mode: str) -> None:
    """Batch mode said ``DIR: no images found in DIR``, the folder named twice (its location was left out only
    where the reason starts with it, the stdout mode's where the reason names it anywhere)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _cli(str(empty), *(["-o", str(tmp_path / "out"), "-q"] if mode == "batch" else []))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"ocrlite: error: no images found in {empty}"]


def test_odd_file_names_give_well_formed_hocr_and_utf8_json(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """A control character in a name is not allowed in XML 1.0; a name that is not UTF-8 must not put its raw
    bytes into a JSON line on stdout."""
    scans = tmp_path / "scans"
    scans.mkdir()
    control, undecodable = "esc\x1bname\x01.png", os.fsdecode(b"bad\xffname.png")
    for name in (control, undecodable):
        _page("X").save(scans / name)
    out = tmp_path / "out"
    assert _cli(str(scans), "-o", str(out), "--format", "hocr,json").exit_code == 0
    for name in (control, undecodable):
        html = ET.parse(out / f"{name}.hocr").getroot()
        assert html.find(f"{XHTML}head/{XHTML}title").text.startswith(("esc\ufffdname\ufffd", "bad\ufffdname"))
    printed = CliRunner().invoke(main, ["ocr", str(scans / undecodable), str(scans / control)])
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout_bytes.decode("utf-8").splitlines()  # valid UTF-8: was a raw 0xff byte
    assert [json.loads(line)["image"] for line in lines] == [str(scans / undecodable), str(scans / control)]
    boxes = CliRunner().invoke(main, ["detect", "--format", "json", str(scans / undecodable)])
    assert json.loads(boxes.stdout_bytes.decode("utf-8"))["image"] == str(scans / undecodable)


def test_stdout_txt_keeps_every_page_of_every_file_apart(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """``ocr a.pdf b.png --format txt`` ran all pages together; now a form feed parts them, as in batch txt, and a
    page that fails keeps its place, empty."""
    _page("ONE").save(tmp_path / "a.pdf", save_all=True, append_images=[_page("TWO"), _page("THREE")])
    _page("B").save(tmp_path / "b.png")
    fake_engine.fail = {2: RuntimeError("boom")}
    result = _cli(str(tmp_path / "a.pdf"), str(tmp_path / "b.png"), "--format", "txt", "--dpi", "50")
    assert result.exit_code == 1
    assert result.stderr == f"ocrlite: error: {tmp_path / 'a.pdf'} page 2: unexpected RuntimeError: boom\n"
    assert result.stdout.split("\f") == ["fake 1\n", "", "fake 3\n", "fake 4\n"]


@pytest.mark.parametrize("path", ["pipeline", "process_file"])
def test_a_failed_page_keeps_its_place_in_every_output(tmp_path: Path, fake_engine: FakeEngine, path: str) -> None:
    """Page 2 of 3 fails: txt keeps an empty page between its form feeds, the pdf a blank page of the same
    size, json an entry with the error, so pages 1 and 3 stay pages 1 and 3; hOCR numbers its pages 1 and 3 and
    counts 3 (it said 2)."""
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("ONE").save(scans / "three.tiff", save_all=True, append_images=[_page("TWO"), _page("THREE")])
    out = tmp_path / "out"
    fake_engine.fail = {2: RuntimeError("boom")}
    if path == "pipeline":
        assert _cli(str(scans), "-o", str(out), "--format", ",".join(FORMATS)).exit_code == 1
    else:
        job = make_plan([scans], out, FORMATS).jobs[0]
        outcome = batch.process_file(fake_engine, job, batch.BatchOptions(out, FORMATS))
        assert [f.page for f in outcome.failures] == [2]
    assert (out / "three.tiff.txt").read_text(encoding="utf-8").split("\f") == ["fake 1\n", "", "fake 3\n"]
    pages = json.loads((out / "three.tiff.json").read_text(encoding="utf-8"))["pages"]
    assert [(page["page"], page.get("error")) for page in pages] == [(1, None), (2, "unexpected RuntimeError: boom"),
                                                                    (3, None)]
    hocr = ET.parse(out / "three.tiff.hocr").getroot()
    xhtml = "{http://www.w3.org/1999/xhtml}"
    assert [div.get("id") for div in hocr.iter(f"{xhtml}div") if div.get("class") == "ocr_page"] == ["page_1", "page_3"]
    assert hocr.find(f"{xhtml}head/{xhtml}meta[@name='ocr-number-of-pages']").get("content") == "3"
    doc = pdfium.PdfDocument(str(out / "three.tiff.pdf"))
    try:
        assert len(doc) == 3 and doc[1].get_size() == doc[0].get_size()
        assert [doc[i].get_textpage().get_text_range() for i in range(3)] == ["fake 1", "", "fake 3"]
    finally:
        doc.close()


def test_a_rerun_removes_the_temp_files_a_killed_run_left(tmp_path: Path, fake_engine: FakeEngine) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    long_name = "scan of the signed lease agreement, page 0001.png"  # temp names keep its first 40 characters
    for name in ("a.png", long_name):
        _page("A").save(scans / name)
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".a.png.json.k3j_x9qa.part", out / ".a.png.txt.zz81mm2p.part",
             out / f".{long_name[:40]}.q1w2e3r4.part",
             out / ".ocrlite-report.json.m4n5b6v7.part"]  # killed while writing its report: was never removed
    other = out / ".notes.txt.abcdefgh.part"  # not an output of this run: left alone
    for path in (*stale, other):
        path.write_bytes(b"half")
    assert _cli(str(scans), "-o", str(out), "--format", "json,txt").exit_code == 0
    assert not any(path.exists() for path in stale) and other.exists()


def test_a_run_killed_before_its_report_leaves_records_a_rerun_resumes_from(
        tmp_path: Path, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """kill -9 of the driver: no report written, no journal removed. The outputs it recorded are up to date for
    the rerun (its journal, a last line cut short by the kill too), the others are read."""
    from ocrlite.batch.plan import JOURNAL_NAME, REPORT_NAME
    from ocrlite.batch.report import Journal, RunReport

    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    for word in ("A", "B", "C"):
        _page(word).save(scans / f"{word.lower()}.png")
    with monkeypatch.context() as killed:
        killed.setattr(RunReport, "write", lambda self, path: None)
        killed.setattr(Journal, "remove", lambda self: None)
        assert _cli(str(scans), "-o", str(out), "--format", "json,txt").exit_code == 0
    assert not (out / REPORT_NAME).exists() and (out / JOURNAL_NAME).exists()
    with open(out / JOURNAL_NAME, "a", encoding="utf-8") as journal:
        journal.write('{"output": "c.png.json", "rec')  # the kill came mid-line
    (out / "c.png.txt").unlink()  # never written: c is read again
    rerun = _cli(str(scans), "-o", str(out), "--format", "json,txt")
    assert rerun.exit_code == 0 and "1 files processed, 2 up to date" in rerun.output
    assert not (out / JOURNAL_NAME).exists()  # the report holds the records now
    again = _cli(str(scans), "-o", str(out), "--format", "json,txt")
    assert "0 files processed, 3 up to date" in again.output


def test_output_folder_inside_the_input_is_not_read_back(tmp_path: Path, fake_engine: FakeEngine) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("X").save(scans / "x.png")
    assert _cli(str(scans), "-o", str(scans / "out"), "--format", "pdf").exit_code == 0
    assert _cli(str(scans), "-o", str(scans / "out"), "--format", "pdf", "--overwrite").exit_code == 0
    assert sorted(p.name for p in (scans / "out").iterdir()) == ["ocrlite-report.json", "x.png.pdf"]


@pytest.mark.parametrize("through", ["output", "input"])
def test_an_output_folder_reached_through_a_symlink_is_not_read_back(tmp_path: Path, fake_engine: FakeEngine,
                                                                     through: str) -> None:
    """``-o link`` where link -> scans/out (or the inputs given as a link to scans): each rerun read its own
    searchable PDFs back as inputs, one folder deeper each time (out/out/x.png.pdf.pdf)."""
    scans = tmp_path / "scans"
    (scans / "out").mkdir(parents=True)
    _page("X").save(scans / "x.png")
    (tmp_path / "link").symlink_to(scans / "out" if through == "output" else scans)
    given, out = (scans, tmp_path / "link") if through == "output" else (tmp_path / "link", scans / "out")
    for processed in (1, 0):
        result = _cli(str(given), "-o", str(out), "--format", "pdf")
        assert result.exit_code == 0, result.output
        assert f"{processed} files processed, {1 - processed} up to date" in result.stderr
    assert sorted(p.name for p in (scans / "out").iterdir()) == ["ocrlite-report.json", "x.png.pdf"]


@pytest.mark.parametrize("where", ["parent", "same", "explicit"])
def test_inputs_inside_the_output_folder_are_read(tmp_path: Path, fake_engine: FakeEngine, where: str) -> None:
    """Only files named like ocrlite's outputs are left out of an output folder that holds the inputs."""
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("X").save(scans / "x.png")
    _page("Y").save(scans / "y.pdf")
    inputs = {"parent": [str(scans)], "same": [str(scans)], "explicit": [str(scans / "x.png"), str(scans / "y.pdf")]}
    out = tmp_path if where == "parent" else scans
    for processed in (2, 0):  # the rerun finds its own x.png.pdf and y.pdf.pdf and does not read them
        result = _cli(*inputs[where], "-o", str(out), "--format", "pdf,txt")
        assert result.exit_code == 0, result.output
        assert (_report(out)["files"], _report(out)["skipped"]) == (processed, 2 - processed)
    written = {p.name for p in out.rglob("*.*.*")}
    assert written == {"x.png.pdf", "x.png.txt", "y.pdf.pdf", "y.pdf.txt"}


def test_batch_options_need_an_output_folder_and_known_formats(tmp_path: Path) -> None:
    _page("X").save(tmp_path / "x.png")
    assert _cli(str(tmp_path / "x.png"), "--workers", "2").exit_code == 2
    assert _cli(str(tmp_path / "x.png"), "--format", "json,txt").exit_code == 2
    bad = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--format", "json,docx")
    assert bad.exit_code == 2 and "docx" in bad.output


# --- pages and words ---------------------------------------------------------------------------


def test_encrypted_and_corrupt_pdfs_are_item_errors(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    locked = tmp_path / "locked.pdf"
    pdf = canvas.Canvas(str(locked), encrypt="secret")
    pdf.drawString(10, 10, "hidden")
    pdf.save()
    with pytest.raises(ImageReadError, match="encrypted"):
        open_pages(locked)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n garbage")
    with pytest.raises(ImageReadError, match="broken.pdf"):
        open_pages(broken)
    with pytest.raises(ImageReadError, match="absent.pdf: no such file$"):  # was pdfium's bare FileNotFoundError
        open_pages(tmp_path / "absent.pdf")
    (tmp_path / "folder.pdf").mkdir()
    with pytest.raises(ImageReadError, match="folder.pdf: is a directory, not a PDF file$"):
        open_pages(tmp_path / "folder.pdf")


def test_searchable_pdf_pages_keep_the_input_pdf_page_size(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    sizes = [(548.64, 700.33), (612.5, 792.1)]  # pdfium renders them rounded up to whole pixels
    pdf = canvas.Canvas(str(tmp_path / "odd.pdf"))
    for size in sizes:
        pdf.setPageSize(size)
        pdf.setFont("Helvetica", 24)
        pdf.drawString(50, 600, "INVOICE 48213")
        pdf.showPage()
    pdf.save()
    assert _cli(str(tmp_path / "odd.pdf"), "-o", str(tmp_path / "out"), "--format", "pdf", "-q").exit_code == 0
    doc = pdfium.PdfDocument(str(tmp_path / "out" / "odd.pdf.pdf"))
    assert np.allclose([doc[i].get_size() for i in range(len(doc))], sizes, atol=0.01)
    assert "48213" in doc[1].get_textpage().get_text_range()


def test_a_fax_keeps_its_proportions_in_the_searchable_pdf_and_hocr(tmp_path: Path) -> None:
    """A fax TIFF records 204 x 98 dpi: its PDF page measured both sides at 204 dpi (half its height) and its
    hOCR said scan_res 204 204."""
    fax = _page("HELLO").resize((300, 45))  # a fax's lines are half as dense as its columns
    fax.save(tmp_path / "fax.tiff", dpi=(204, 98))
    assert _cli(str(tmp_path / "fax.tiff"), "-o", str(tmp_path / "out"), "--format", "pdf,hocr", "-q").exit_code == 0
    page = pdfium.PdfDocument(str(tmp_path / "out" / "fax.tiff.pdf"))[0]
    assert np.allclose(page.get_size(), (300 * 72 / 204, 45 * 72 / 98), atol=0.01)
    hocr = ET.parse(tmp_path / "out" / "fax.tiff.hocr").getroot()
    title = hocr.find(".//{http://www.w3.org/1999/xhtml}div[@class='ocr_page']").get("title")
    assert "bbox 0 0 300 45" in title and "scan_res 204 98" in title


def test_huge_pages_are_guarded(tmp_path: Path) -> None:
    _page("A").save(tmp_path / "big.tiff", save_all=True, append_images=[_page("B")])
    with open_pages(tmp_path / "big.tiff", max_pixels=10_000) as source:
        with pytest.raises(ImageReadError, match="limit"):
            source.page(2)
    _page("A").save(tmp_path / "big.pdf", resolution=10)  # a 30 x 9 inch page
    with open_pages(tmp_path / "big.pdf", dpi=300, max_pixels=100_000) as source:
        page = source.page(1)
    assert page.image.shape[0] * page.image.shape[1] <= 100_000 and page.dpi < 300


def test_words_split_the_line_quad_by_character_position() -> None:
    quad = np.array([[0, 0], [100, 0], [100, 10], [0, 10]])
    words = line_words(TextLine(quad, "ab  cdefgh", 0.9, 0.9))
    assert [w.text for w in words] == ["ab", "cdefgh"]
    assert np.allclose(words[0].points[:, 0], [0, 20, 20, 0])
    assert np.allclose(words[1].points[:, 0], [40, 100, 100, 40])
    assert [w.score for w in words] == [0.9, 0.9]  # without CTC steps a word carries its line's score
    assert line_words(TextLine(quad, "", 0.9, 0.9)) == ()


@pytest.mark.parametrize(("points", "angle", "first", "last"), [
    ([[20, 20], [220, 20], [220, 50], [20, 50]], 180, (220, 35), (20, 35)),  # read turned: runs right to left
    ([[250, 60], [280, 60], [280, 260], [250, 260]], 0, (265, 60), (265, 260)),  # tall: runs down the page
    ([[250, 60], [280, 60], [280, 260], [250, 260]], 180, (265, 260), (265, 60)),  # tall, turned: up the page
])
def test_pdf_text_runs_the_way_the_line_reads(points: list, angle: int, first: tuple, last: tuple) -> None:
    """The invisible text starts at the corner where the line's text starts (``text_quad``): its first and
    last characters sit over the line's two ends."""
    from ocrlite.io.writers import PageRecord, make_writer

    line = TextLine(np.array(points, dtype=np.float64), "abcdefgh", 0.9, 0.9, angle)
    writer = make_writer("pdf", "x.png")
    writer.add(PageRecord(1, PageResult(300, 300, (line,)), 72.0, None))
    page = pdfium.PdfDocument(io.BytesIO(writer.render()))[0]
    text = page.get_textpage()
    assert text.get_text_range() == "abcdefgh"
    for index, (x, y) in ((0, first), (7, last)):
        left, bottom, right, top = text.get_charbox(index)
        centre = np.array([(left + right) / 2, 300 - (bottom + top) / 2])  # back to image pixels
        assert np.linalg.norm(centre - np.array([x, y])) < 20, (index, centre)


def test_pdf_words_sit_over_their_own_boxes() -> None:
    """A word lies over its CTC word box, not where an even stretch of the whole line would put it."""
    from ocrlite.io.writers import PageRecord, make_writer
    from ocrlite.results import TextWord

    def box(x0: float, x1: float) -> np.ndarray:
        return np.array([[x0, 20], [x1, 20], [x1, 50], [x0, 50]], dtype=np.float64)

    words = (TextWord("ab", box(20, 60), 0.9), TextWord("cdefgh", box(200, 280), 0.9))
    line = TextLine(box(20, 280), "ab cdefgh", 0.9, 0.9, 0, words)
    writer = make_writer("pdf", "x.png")
    writer.add(PageRecord(1, PageResult(300, 100, (line,)), 72.0, None))
    text = pdfium.PdfDocument(io.BytesIO(writer.render()))[0].get_textpage()
    assert text.get_text_range() == "ab cdefgh"
    left = text.get_charbox(3)[0]  # "c": the second word's box starts at 200 (an even stretch: about 107)
    right = text.get_charbox(8)[2]  # "h" ends at the box's end
    assert abs(left - 200) < 3 and abs(right - 280) < 3


@pytest.mark.parametrize("tilt", [4.0, -6.0, 12.0, 25.0, 95.0, 184.0])
def test_pdf_words_of_a_tilted_line_read_back_whole_with_poppler(tmp_path: Path, pdftotext: str, tilt: float) -> None:
    """poppler starts a new word wherever a character's baseline drifts from the word's: laid along a line tilted
    4 degrees (a photo of a page, ICDAR 2015 img_147), "unseated" came back as "unseate" "d". Each word lies along
    the nearest quarter turn, over its own box."""
    from ocrlite.io.writers import PageRecord, make_writer, quad_bbox

    turn = np.radians(tilt)
    along, down = np.array([np.cos(turn), np.sin(turn)]), np.array([-np.sin(turn), np.cos(turn)])
    start = np.array([300.0, 300.0]) - along * 170 - down * 12
    quad = np.array([start, start + along * 340, start + along * 340 + down * 24, start + down * 24])
    flipped = 90 < tilt % 360 < 270  # read turned: its text starts at the quad's far corner
    points = np.roll(quad, 2, axis=0) if flipped else quad
    line = TextLine(points, "unseated market expectations", 0.9, 0.9, 180 if flipped else 0)
    line = TextLine(line.points, line.text, 0.9, 0.9, line.angle, line_words(line))
    writer = make_writer("pdf", "x.png")
    writer.add(PageRecord(1, PageResult(600, 600, (line,)), 72.0, None))
    (tmp_path / "x.pdf").write_bytes(writer.render())
    read = subprocess.run([pdftotext, "-bbox", str(tmp_path / "x.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    found = [(w.text, [float(w.get(k)) for k in ("xMin", "yMin", "xMax", "yMax")])
             for w in ET.fromstring(read.split("<body>")[1].split("</body>")[0]).iter("word")]
    assert sorted(text for text, _ in found) == sorted(line.text.split())
    raw = subprocess.run([pdftotext, "-raw", str(tmp_path / "x.pdf"), "-"], capture_output=True, text=True,
                         check=True).stdout
    assert raw.split() == line.text.split()  # in reading order (a tilt beyond 4 degrees: a word a line in poppler)
    for word in line.words:  # a line read turned is laid as one run (pdf_runs): its words within the line's box
        box = next(box for text, box in found if text == word.text)
        x0, y0, x1, y1 = quad_bbox(line.points if flipped else word.points, 600, 600)
        assert x0 - 3 < (box[0] + box[2]) / 2 < x1 + 3 and y0 - 3 < (box[1] + box[3]) / 2 < y1 + 3, word.text


def test_pdf_words_of_a_tilted_line_keep_a_narrow_space_between_them(tmp_path: Path, pdftotext: str) -> None:
    """A word spans its box along the text (between its ends' midpoints), not its whole extent across the page: on
    a line tilted 4 degrees (a photo, 19 px text at 200 dpi) the slanted ends of two boxes 3.5 px apart closed the
    gap, and poppler's copy read "hrstoverse"."""
    from ocrlite.io.writers import PageRecord, make_writer
    from ocrlite.postprocess import quad_span
    from ocrlite.results import TextWord

    turn = np.radians(4.0)
    along, down = np.array([np.cos(turn), np.sin(turn)]), np.array([-np.sin(turn), np.cos(turn)])
    start = np.array([20.0, 20.0])
    quad = np.array([start, start + along * 216, start + along * 216 + down * 19, start + down * 19])
    words = (TextWord("hrst", quad_span(quad, 0.0, 0.5), 0.9), TextWord("overse", quad_span(quad, 0.516, 1.0), 0.9))
    writer = make_writer("pdf", "x.png")
    writer.add(PageRecord(1, PageResult(260, 80, (TextLine(quad, "hrst overse", 0.9, 0.9, 0, words),)), 200.0, None))
    (tmp_path / "x.pdf").write_bytes(writer.render())
    read = subprocess.run([pdftotext, "-raw", str(tmp_path / "x.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert read.split("\n")[0] == "hrst overse"


def test_writers_keep_unicode_text_searchable() -> None:
    from ocrlite.io.writers import PageRecord, make_writer

    line = TextLine(np.array([[5, 5], [200, 5], [200, 40], [5, 40]]), "发票 total", 0.9, 0.9)
    record = PageRecord(1, PageResult(300, 90, (line,)), 100.0, np.full((90, 300, 3), 255, np.uint8))
    writer = make_writer("pdf", "x.png")
    writer.add(record)
    doc = pdfium.PdfDocument(io.BytesIO(writer.render()))
    assert doc[0].get_textpage().get_text_range() == "发票 total"


def test_pdf_text_of_every_script_reads_back_with_poppler(tmp_path: Path, pdftotext: str) -> None:
    """pdftotext (poppler) reads text through the font's glyphs: the CID font's
    Chinese CMap has no glyph for many letters of the PP-OCRv5/v6 charsets, so "Zażółć gęślą jaźń" came out as
    "Za ó g l ja" and "Größe Łódź" as "Gr e ód" (the whole line is in the CID font); pypdfium2 read both right."""
    from ocrlite.io.writers import PageRecord, make_writer

    texts = ["Zażółć gęślą jaźń", "Größe Łódź", "Ελληνικά κείμενο", "Română: ăâîșț", "北京市朝阳区", "Invoice 48213"]
    lines = tuple(TextLine(np.array([[10, 10 + 40 * i], [400, 10 + 40 * i], [400, 40 + 40 * i], [10, 40 + 40 * i]]),
                           text, 0.9, 0.9) for i, text in enumerate(texts))
    writer = make_writer("pdf", "x.png")
    writer.add(PageRecord(1, PageResult(420, 250, lines), 100.0, np.full((250, 420, 3), 255, np.uint8)))
    (tmp_path / "x.pdf").write_bytes(writer.render())
    read = subprocess.run([pdftotext, "-raw", str(tmp_path / "x.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert read.split("\n")[: len(texts)] == texts
    assert pdfium.PdfDocument(str(tmp_path / "x.pdf"))[0].get_textpage().get_text_range().split("\r\n") == texts


def test_the_report_lists_failures_in_path_and_page_order() -> None:
    """Workers (processes, Ray actors) finish in any order; the report does not depend on it."""
    from ocrlite.batch.report import Failure, FileOutcome, RunReport

    report = RunReport(formats=["txt"], dpi=200, workers=2)
    for name, page in [("scans/p10.pdf", 2), ("scans/p2.pdf", 3), ("scans/p2.pdf", None), ("scans/p10.pdf", 1)]:
        report.add(FileOutcome(name, failures=[Failure(f"/in/{name}", name, "bad", page)]))
    listed = [(f["name"], f["page"]) for f in report.to_dict()["failures"]]
    assert listed == [("scans/p2.pdf", None), ("scans/p2.pdf", 3), ("scans/p10.pdf", 1), ("scans/p10.pdf", 2)]


def test_names_near_the_file_name_limit_are_written_or_refused_by_name(tmp_path: Path) -> None:
    """A 245-byte input name makes a 250-byte output name, which the file system takes: it failed with "File
    name too long" (the atomic write's temp name added 14 bytes). A 252-byte one cannot get its output name: one
    line naming the reason, the other inputs written, exit 1."""
    scans = tmp_path / "scans"
    scans.mkdir()
    near, over = "n" * 241 + ".png", "o" * 248 + ".png"
    for name in (near, over, "ok.png"):
        _page("HELLO").save(scans / name)
    result = _cli(str(scans), "-o", str(tmp_path / "out"), "--format", "json,txt")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"ocrlite: error: {scans / over}: its output name ({over}.json) is longer than the 255 bytes a file name "
        "may have here; rename the input")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{near}.json", f"{near}.txt", "ok.png.json", "ok.png.txt", "ocrlite-report.json"])
    assert "HELLO" in _squash((tmp_path / "out" / f"{near}.txt").read_text(encoding="utf-8"))


def test_names_differing_in_case_alone_are_refused_where_the_output_folder_folds_case(
        tmp_path: Path, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Scan.png`` and ``scan.png`` (a Linux folder) written to a folder that does not tell case apart (exFAT,
    an SMB share, macOS): both outputs went to one file, the second overwrote the first and the run said nothing.
    There the second is one line and the first is written; a file system that tells case apart writes both."""
    from ocrlite.batch import plan

    scans = tmp_path / "scans"
    scans.mkdir()
    _page("UPPER").save(scans / "Scan.png")
    _page("LOWER").save(scans / "scan.png")
    assert not plan._folds_case(tmp_path) and sorted(p.name for p in tmp_path.iterdir()) == ["scans"]
    both = _cli(str(scans), "-o", str(tmp_path / "apart"), "--format", "txt")
    assert both.exit_code == 0, both.output
    assert sorted(p.name for p in (tmp_path / "apart").iterdir()) == ["Scan.png.txt", "ocrlite-report.json",
                                                                       "scan.png.txt"]
    monkeypatch.setattr(plan, "_folds_case", lambda folder: True)
    folded = _cli(str(scans), "-o", str(tmp_path / "folded"), "--format", "txt")
    assert folded.exit_code == 1
    assert folded.stderr.splitlines()[0] == (
        f"ocrlite: error: {scans / 'scan.png'}: its outputs would overwrite those of Scan.png: the file system of "
        f"{tmp_path / 'folded'} does not tell upper from lower case; rename one of the two")
    assert sorted(p.name for p in (tmp_path / "folded").iterdir()) == ["Scan.png.txt", "ocrlite-report.json"]
    assert fake_engine.calls == 3


def test_an_error_about_a_file_whose_name_holds_a_newline_stays_one_line(tmp_path: Path) -> None:
    """Linux allows a newline in a file name: the error line was split in two (and named the file twice), in
    batch mode and in the stdout mode alike."""
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "new\nline.png").write_bytes(b"")
    _page("HELLO").save(scans / "ok.png")
    expected = f"ocrlite: error: {scans}/new line.png: empty file (0 bytes)"
    batch_run = _cli(str(scans), "-o", str(tmp_path / "out"))
    assert batch_run.exit_code == 1 and batch_run.stderr.splitlines()[0] == expected
    assert len(batch_run.stderr.splitlines()) == 2  # the error and the summary
    stdout_run = _cli(str(scans / "new\nline.png"), str(scans / "ok.png"), "--format", "txt")
    assert stdout_run.exit_code == 1 and stdout_run.stderr.splitlines() == [expected]
    assert "HELLO" in _squash(stdout_run.stdout)


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path: Path) -> None:
    """Two runs into one output folder raced on its journal and report (the last one to end wrote a report
    without the other's records, so a rerun redid its files): while a run holds the folder another is refused
    with one line, and the folder is free again once the first ends, however it ends."""
    fcntl = pytest.importorskip("fcntl")
    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    out.mkdir()
    _page("HELLO").save(scans / "a.png")
    held = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a run in another process holds
        refused = _cli(str(scans), "-o", str(out))
        assert refused.exit_code == 2 and list(out.iterdir()) == []
        assert refused.stderr == (f"ocrlite: error: another ocrlite run is writing into {out}; wait for it to end "
                                  "or write into another folder\n")
    finally:
        os.close(held)
    assert _cli(str(scans), "-o", str(out)).exit_code == 0
    assert _cli(str(scans), "-o", str(out)).exit_code == 0  # the run before let it go


def test_a_file_system_without_locks_still_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some network mounts refuse flock (ENOLCK): the run goes on unlocked rather than failing."""
    import errno

    fcntl = pytest.importorskip("fcntl")

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("HELLO").save(scans / "a.png")
    result = _cli(str(scans), "-o", str(tmp_path / "out"), "--format", "txt")
    assert result.exit_code == 0, result.output
    assert "HELLO" in _squash((tmp_path / "out" / "a.png.txt").read_text(encoding="utf-8"))


def test_a_list_file_with_a_byte_order_mark_and_crlf_reads_every_path(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """Windows editors and PowerShell save a list as UTF-8 with a byte-order mark and CRLF endings: the mark was
    read as part of the first path (``ocrlite: error: \\ufeffa.png: no such file or directory``)."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("a.png", "b.png"):
        _page(name).save(scans / name)
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"\ufeff{scans / 'a.png'}\r\n\r\n  # a comment\r\n{scans / 'b.png'}\r\n"
                        f"{scans / 'a.png'}\r\n".encode())
    out = tmp_path / "out"
    result = _cli("--files-from", str(listing), "-o", str(out), "--format", "txt")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png.txt", "b.png.txt", "ocrlite-report.json"]
    assert fake_engine.calls == 2  # the path listed twice is read once


def test_an_input_refused_before_planning_is_named_in_the_report_by_its_path(
        tmp_path: Path, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure of an input refused before it was planned (missing, an output name too long) had the name "",
    so nothing in the report said which input it was but its path; it is named by the path given. Refused
    again, it is listed once, not also carried from the earlier run; left out, it is carried (still not done)."""
    monkeypatch.chdir(tmp_path)
    scans = Path("scans")
    scans.mkdir()
    long = scans / f"{'x' * 251}.png"  # long.png.json would pass the 255 bytes a file name may have
    for path in (scans / "a.png", long):
        _page("A").save(path)
    inputs, out = [str(scans / "a.png"), str(long), "scans/missing.png"], tmp_path / "out"
    for _ in range(2):
        assert _cli(*inputs, "-o", str(out)).exit_code == 1
        report = _report(out)
        assert sorted((f["name"], f["path"]) for f in report["failures"]) == [
            ("scans/missing.png", "scans/missing.png"), (str(long), str(long))]
        assert report["carried"] == []
    assert _cli(str(scans / "a.png"), "-o", str(out)).exit_code == 0
    assert [(entry["name"], entry["path"]) for entry in _report(out)["carried"]] == [(str(long), str(long))]


def test_a_list_file_keeps_the_spaces_a_file_name_begins_or_ends_with(tmp_path: Path,
                                                                      fake_engine: FakeEngine) -> None:
    """Each listed path lost its surrounding spaces, so a file named "b.png " (or " c.png") could not be listed: it
    was "no such file or directory". Only the line ending is dropped; blank lines are still skipped."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("b.png ", " c.png"):
        _page(name.strip()).save(scans / name, format="PNG")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{scans / 'b.png '}\n   \n{scans / ' c.png'}\r\n", encoding="utf-8")
    out = tmp_path / "out"
    result = _cli("--files-from", str(listing), "-o", str(out), "--format", "txt")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [" c.png.txt", "b.png .txt", "ocrlite-report.json"]
    assert fake_engine.calls == 2
    listing.write_text(f"{scans / 'b.png'}\n", encoding="utf-8")  # the name without its space: not that file
    result = _cli("--files-from", str(listing), "-o", str(out))
    assert result.exit_code == 1 and "b.png: no such file or directory" in result.stderr


@pytest.mark.parametrize("encoding", ["utf-16", "print0"])
def test_a_list_that_is_not_one_utf8_path_per_line_is_one_usage_error(tmp_path: Path, fake_engine: FakeEngine,
                                                                      encoding: str) -> None:
    """A UTF-16 list (PowerShell's ``>``) or ``find -print0`` output gave one "no such file" line per entry,
    NUL bytes and all, and exit 1; no path holds a NUL: one line saying so, exit 2, nothing written."""
    _page("A").save(tmp_path / "a.png")
    _page("B").save(tmp_path / "b.png")
    names = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    listing = tmp_path / "list.txt"
    listing.write_bytes("\r\n".join(names).encode("utf-16") if encoding == "utf-16"
                        else "\0".join(names).encode() + b"\0")
    out = tmp_path / "out"
    for args, stdin in ((["--files-from", str(listing)], None), (["-"], listing.read_bytes())):
        result = _cli(*args, "-o", str(out), stdin=stdin)
        assert result.exit_code == 2 and not out.exists()
        assert result.stderr == ("ocrlite: error: the list of paths: line 1 holds a NUL character, which no path "
                                 "has (a UTF-16 list, or find -print0?): give one path per line, in UTF-8 (see "
                                 "'ocrlite ocr --help')\n")


def _deeper_than_path_max(root: Path) -> Path:
    """Folders nested past PATH_MAX (made relative to each other: no path names them whole), an image at the
    bottom; returns the topmost."""
    top = root / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(4200 // 200 + 1):
            os.mkdir("d" * 200, dir_fd=fd)
            inner = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        image = os.open("lost.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(image, "wb") as stream:
            _page("LOST").save(stream, format="PNG")
    finally:
        os.close(fd)
    return top


def test_a_folder_that_cannot_be_listed_is_an_error_not_a_silent_gap(tmp_path: Path, fake_engine: FakeEngine) -> None:
    """A sub-folder that cannot be listed (here a path past PATH_MAX; no read permission goes the same way, but
    root reads every folder) was skipped without a word: its files were missing from the outputs and the run
    exited 0. It is an error line now, the rest is read."""
    scans = tmp_path / "scans"
    scans.mkdir()
    _page("HELLO").save(scans / "a.png")
    blocked = _deeper_than_path_max(scans)
    result = _cli(str(scans), "-o", str(tmp_path / "out"), "--format", "txt")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("ocrlite: error: ")]
    assert len(errors) == 1 and str(blocked) in errors[0] and ": cannot list folder (" in errors[0]
    assert [f["reason"] for f in _report(tmp_path / "out")["failures"]] == [errors[0].removeprefix("ocrlite: error: ")]
    assert (tmp_path / "out" / "a.png.txt").is_file()


class _Disk:
    """A file system with ``room`` bytes left (None: no limit) for ``handle``'s writes: past it, a write fails with
    ENOSPC, as on a full disk, and writes nothing."""

    def __init__(self, room: int | None) -> None:
        self.room = room

    def handle(self, opened: Any) -> Any:
        disk = self

        class Handle:
            def write(self, data: Any) -> int:
                if disk.room is not None and len(data) > disk.room:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                if disk.room is not None:
                    disk.room -= len(data)
                return int(opened.write(data))

            def __getattr__(self, name: str) -> Any:
                return getattr(opened, name)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                opened.close()

        return Handle()


def _fill(monkeypatch: pytest.MonkeyPatch, files: _Disk, journal: _Disk) -> None:
    """Outputs and the report (atomic writes) go to ``files``, the records journal to ``journal``."""
    from ocrlite.batch import report
    from ocrlite.io import atomic

    class Os:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def fdopen(self, *args: Any, **kwargs: Any) -> Any:
            return files.handle(os.fdopen(*args, **kwargs))

    monkeypatch.setattr(atomic, "os", Os())
    monkeypatch.setattr(report, "open", lambda *args, **kwargs: journal.handle(open(*args, **kwargs)), raising=False)


def test_a_full_output_folder_stops_the_run_in_one_line_and_a_rerun_completes(
        tmp_path: Path, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills after the first input's outputs: the run went on reading every input only to fail each
    ("unexpected OSError"), then died with a traceback writing its report. Now the input that could not be
    written is one line naming its output, the run stops there (exit 2, no temp file left), and a rerun with
    room reads the others and keeps the first."""
    scans, out, first = tmp_path / "scans", tmp_path / "out", tmp_path / "first"
    scans.mkdir()
    for i in range(8):
        _page(f"P{i}").save(scans / f"p{i}.png")
    assert _cli(str(scans / "p0.png"), "-o", str(first), "--format", "json,txt").exit_code == 0
    room = sum((first / f"p0.png.{fmt}").stat().st_size for fmt in ("json", "txt"))
    fake_engine.calls = 0
    with monkeypatch.context() as full:
        _fill(full, _Disk(room), _Disk(None))
        result = _cli(str(scans), "-o", str(out), "--format", "json,txt")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert fake_engine.calls < 8  # stopped after p1 (and the pages read ahead), not read to the end
    errors = [line for line in result.stderr.splitlines() if line.startswith("ocrlite: error: ")]
    full = "No space left on device"
    assert errors == [f"ocrlite: error: {scans / 'p1.png'}: cannot write {out / 'p1.png.json'}: {full}",
                      f"ocrlite: error: cannot write the run report {out / 'ocrlite-report.json'}: {full}"]
    assert sorted(p.name for p in out.iterdir()) == [".ocrlite-records.jsonl", "p0.png.json", "p0.png.txt"]
    rerun = _cli(str(scans), "-o", str(out), "--format", "json,txt")
    assert rerun.exit_code == 0 and "7 files processed, 1 up to date" in rerun.stderr
    assert sorted(_report(out)["outputs"]) == [f"p{i}.png.{fmt}" for i in range(8) for fmt in ("json", "txt")]
    assert (out / "p0.png.txt").read_text(encoding="utf-8") == "fake 1\n"  # kept from the first run
    assert all((out / f"p{i}.png.txt").read_text(encoding="utf-8").startswith("fake ") for i in range(8))


def test_a_journal_that_cannot_be_written_costs_no_output(
        tmp_path: Path, fake_engine: FakeEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """No room for the records journal (outputs and report fit): the run died with a traceback at its first
    output's record. The journal is given up now: the run completes, its report records every output, and a
    rerun finds them all up to date."""
    scans, out = tmp_path / "scans", tmp_path / "out"
    scans.mkdir()
    for i in range(3):
        _page(f"P{i}").save(scans / f"p{i}.png")
    with monkeypatch.context() as full:
        _fill(full, _Disk(None), _Disk(0))
        result = _cli(str(scans), "-o", str(out), "--format", "txt")
    assert result.exit_code == 0, result.output
    assert sorted(_report(out)["outputs"]) == ["p0.png.txt", "p1.png.txt", "p2.png.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["ocrlite-report.json", "p0.png.txt", "p1.png.txt", "p2.png.txt"]
    rerun = _cli(str(scans), "-o", str(out), "--format", "txt")
    assert rerun.exit_code == 0 and "0 files processed, 3 up to date" in rerun.stderr
