"""Batch mode on Ray (`ocrlite ocr DIR -o OUT --executor ray`): the same outputs and report as the
local batch, with paths or with file bytes in the rows, resume, and no finished output lost when an
actor is killed.

One local Ray with 2 CPUs serves the whole session (``ray_cluster`` in conftest); skipped when
Ray is not installed, failing under OCRLITE_REQUIRE_DATA=1 as in CI. Each Ray run starts its
own actors (a torch import and a model load each), so the module keeps to five runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from ocrlite.batch.run import BatchOptions, EngineSpec, run_batch
from ocrlite.cli import main

FORMATS = "json,txt,tsv,hocr,pdf"
VICTIM_WIDTH = 333  # the page whose reading kills its actor in the kill test


def _page(word: str, width: int = 300) -> Image.Image:
    image = Image.new("RGB", (width, 90), "white")
    ImageDraw.Draw(image).text((20, 22), word, fill="black", font=ImageFont.load_default(size=40))
    return image


def _make_scans(root: Path, victim: bool = False) -> Path:
    """Two images, a corrupt JPEG, and a 3-page PDF (its page 2 is the victim page when asked)."""
    root.mkdir(parents=True)
    _page("HELLO").save(root / "a.png")
    _page("WORLD").save(root / "b.jpg", quality=95)
    (root / "corrupt.jpg").write_bytes((root / "b.jpg").read_bytes()[:200])
    pages = [_page("INVOICE"), _page("PAID", VICTIM_WIDTH if victim else 300), _page("TOTAL")]
    pages[0].save(root / "doc.pdf", save_all=True, append_images=pages[1:], resolution=100)
    return root


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["ocr", *args, "--dpi", "100"])


ACTORS = {"paths": 2, "bytes": 1}
"""Actors per --ray-input: paths with two, whose page ranges of one PDF are joined; bytes with one, as
each actor costs a start (a torch import, a model load) and the actors' number is not what bytes changes."""


def _ray(scans: Path | str, out: Path | str, mode: str) -> Any:
    """One thread per actor, the PDF cut into page ranges of 2 (pages 1-2 and 3)."""
    return _cli(str(scans), "-o", str(out), "--format", FORMATS, "--executor", "ray", "--workers", str(ACTORS[mode]),
                "--threads-per-worker", "1", "--pages-per-job", "2", "--ray-input", mode)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "ocrlite-report.json"}


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.name != "ocrlite-report.json"}


def _squash(text: str) -> str:
    """Upper case without spaces or newlines; form feeds (page breaks) kept."""
    return "".join(c for c in text if c == "\f" or not c.isspace()).upper()


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ocrlite-report.json").read_text(encoding="utf-8"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@dataclass(frozen=True)
class Runs:
    """The same folder read by the local batch (--workers 1) and by Ray with each --ray-input."""

    root: Path
    results: dict[str, Any]  # "local", "paths", "bytes": each run's CliRunner result, its outputs in root / key


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, ray_cluster: Any) -> Runs:
    """All runs name the inputs and outputs relative to ``root``: the actors' working folder is
    another one (where Ray started), so paths that reach them unresolved, or outputs they write
    themselves in bytes mode, would miss."""
    root = tmp_path_factory.mktemp("ray")
    _make_scans(root / "scans")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        results = {"local": _cli("scans", "-o", "local", "--format", FORMATS, "--workers", "1")}
        results.update((mode, _ray("scans", mode, mode)) for mode in ("paths", "bytes"))
    assert results["local"].exit_code == 1, results["local"].output
    return Runs(root, results)


@pytest.mark.parametrize("mode", ["paths", "bytes"])
def test_ray_writes_what_the_local_batch_writes(runs: Runs, mode: str) -> None:
    local, out, result = runs.root / "local", runs.root / mode, runs.results[mode]
    assert result.exit_code == 1, result.output
    written = _files(out)
    assert sorted(written) == [f"{name}.{fmt}" for name in ("a.png", "b.jpg", "doc.pdf")
                               for fmt in sorted(FORMATS.split(","))]
    assert written == _files(local)  # byte for byte, the split PDF joined in page order included
    text = _squash(written["doc.pdf.txt"].decode("utf-8")).split("\f")
    assert ["INVOICE" in text[0], "PAID" in text[1], "TOTAL" in text[2]] == [True, True, True]
    report, expected = _report(out), _report(local)
    assert [(f["name"], f["page"]) for f in report["failures"]] == [("corrupt.jpg", None)]
    failures = expected["failures"]
    if mode == "paths":  # the actors were given absolute paths, and name the input so
        absolute = str(runs.root / "scans" / "corrupt.jpg")
        failures = [{**f, "path": absolute, "reason": f["reason"].replace("scans/corrupt.jpg", absolute)}
                    for f in failures]
    assert report["failures"] == failures
    assert (report["files"], report["pages"], report["lines"]) == (expected["files"], 5, expected["lines"])
    assert (report["workers"], expected["workers"]) == (ACTORS[mode], 1)  # the actor pool's size, the local processes
    assert "corrupt.jpg" in result.stderr and "1 failed" in result.stderr


def test_ray_rerun_writes_nothing(runs: Runs) -> None:
    scans, out = runs.root / "scans", runs.root / "bytes"
    before = _mtimes(out)
    again = _ray(scans, out, "bytes")
    assert again.exit_code == 1  # the corrupt file is tried again and still fails
    assert _mtimes(out) == before
    report = _report(out)
    assert report["skipped"] == 3 and report["pages"] == 0 and report["workers"] == 1
    assert [f["name"] for f in report["failures"]] == ["corrupt.jpg"]


@dataclass(frozen=True)
class DyingEngineSpec(EngineSpec):
    """The real OCR, except that the first actor handed the victim page kills itself (SIGKILL)."""

    marker: str = ""

    def build(self) -> Any:
        engine = super().build()
        marker = Path(self.marker)

        def read(image: np.ndarray) -> Any:
            if image.shape[1] == VICTIM_WIDTH and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return engine(image)

        return read


def test_a_killed_actor_loses_no_finished_output(tmp_path: Path, ray_cluster: Any) -> None:
    from ray import cloudpickle

    from ocrlite.batch.ray_runner import RayExecutor, RayOptions

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this test module
    scans, out = _make_scans(tmp_path / "scans", victim=True), tmp_path / "out"
    report = run_batch([scans], DyingEngineSpec(marker=str(tmp_path / "killed")),
                       BatchOptions(out, ("json", "txt"), dpi=100, quiet=True),
                       RayExecutor(RayOptions(workers=2, threads=1, pages_per_job=1)))
    assert (tmp_path / "killed").exists() and report.workers == 2
    failures = sorted((f.name, f.page, f.reason) for f in report.failures if f.name != "corrupt.jpg")
    assert len(report.failures) == 2 and failures == [("doc.pdf", 2, "worker died (pages 2-2)")]
    pages = _squash((out / "doc.pdf.txt").read_text(encoding="utf-8")).split("\f")
    assert pages[1] == "" and "INVOICE" in pages[0] and "TOTAL" in pages[2]  # the other ranges keep their place
    assert "HELLO" in _squash((out / "a.png.txt").read_text(encoding="utf-8"))
    assert not list(out.rglob("*.part"))
    before = _mtimes(out)

    result = _cli(str(scans), "-o", str(out), "--format", "json,txt", "--executor", "ray", "--workers", "1")
    assert result.exit_code == 1, result.output  # only the corrupt file fails now
    after = _mtimes(out)
    assert after["doc.pdf.txt"] > before["doc.pdf.txt"]
    assert {k: v for k, v in after.items() if not k.startswith("doc.pdf")} == {
        k: v for k, v in before.items() if not k.startswith("doc.pdf")}
    pages = _squash((out / "doc.pdf.txt").read_text(encoding="utf-8")).split("\f")
    assert len(pages) == 3 and "PAID" in pages[1]
    assert [f["name"] for f in _report(out)["failures"]] == ["corrupt.jpg"]


def test_without_ray_the_executor_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrlite.batch import ray_runner

    monkeypatch.setattr(ray_runner, "find_spec", lambda name: None)  # as if Ray were not installed
    _page("X").save(tmp_path / "x.png")
    result = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--executor", "ray")
    assert result.exit_code == 2
    expected = 'ocrlite: error: --executor ray needs Ray: pip install "ocrlite[ray]"'
    assert result.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "out").exists()
    local = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--ray-address", "auto")
    assert local.exit_code == 2 and "--executor ray" in local.output
