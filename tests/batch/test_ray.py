"""Batch mode on Ray (`ocrlite ocr DIR -o OUT --executor ray`): the same outputs and report as the
local batch, with paths or with file bytes in the rows, resume, and no finished output lost when an
actor is killed.

One local Ray with 2 CPUs serves the whole session (``ray_cluster`` in conftest); skipped when
Ray is not installed, failing under OCRLITE_REQUIRE_DATA=1 as in CI. Each Ray run starts its
own actors (a torch import and a model load each), so the module keeps its runs few and small.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from ocrlite.batch.run import BatchOptions, EngineSpec, run_batch
from ocrlite.cli import main
from ocrlite.errors import OcrliteError

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


def _broken_pdf(path: Path, words: list[str]) -> Path:
    """A PDF of ``words`` pages whose page 2 cannot be loaded (its page tree names an object that is not there)."""
    pages = [_page(word) for word in words]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=100)
    data = path.read_bytes()
    kids = re.search(rb"/Kids \[([^\]]*)\]", data)
    assert kids is not None
    second = re.findall(rb"\d+ 0 R", kids.group(1))[1]
    path.write_bytes(data.replace(kids.group(0), kids.group(0).replace(second, b"99 0 R".ljust(len(second)), 1)))
    return path


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
    _broken_pdf(root / "scans" / "short.pdf", ["ONE", "TWO"])  # read whole, by one actor
    _broken_pdf(root / "scans" / "long.pdf", ["ONE", "TWO", "THREE"])  # cut into pages 1-2 and 3
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
    assert sorted(written) == [f"{name}.{fmt}" for name in ("a.png", "b.jpg", "doc.pdf", "long.pdf", "short.pdf")
                               for fmt in sorted(FORMATS.split(","))]
    # Byte for byte: the split PDF joined in page order, and the failed pages' errors in the json, naming
    # the input as given (scans/long.pdf page 2: ...) also where the actors read it at its absolute path.
    assert written == _files(local)
    assert b'"error": "scans/long.pdf page 2: cannot load page' in written["long.pdf.json"]
    text = _squash(written["doc.pdf.txt"].decode("utf-8")).split("\f")
    assert ["INVOICE" in text[0], "PAID" in text[1], "TOTAL" in text[2]] == [True, True, True]
    report, expected = _report(out), _report(local)
    assert [(f["name"], f["page"]) for f in report["failures"]] == [("corrupt.jpg", None), ("long.pdf", 2),
                                                                     ("short.pdf", 2)]
    assert sorted(report["failures"], key=str) == sorted(expected["failures"], key=str)  # same paths and reasons
    assert (report["files"], report["pages"], report["lines"]) == (expected["files"], 8, expected["lines"])
    assert (report["workers"], expected["workers"]) == (ACTORS[mode], 1)  # the actor pool's size, the local processes
    assert "scans/corrupt.jpg" in result.stderr and "3 failed" in result.stderr


def test_ray_rerun_redoes_only_the_failed_files(runs: Runs) -> None:
    scans, out = runs.root / "scans", runs.root / "bytes"
    before = _mtimes(out)
    again = _ray(scans, out, "bytes")
    assert again.exit_code == 1  # the failed files are tried again and still fail
    assert {k: v for k, v in _mtimes(out).items() if "long" not in k and "short" not in k} == {
        k: v for k, v in before.items() if "long" not in k and "short" not in k}
    report = _report(out)
    assert report["skipped"] == 3 and report["pages"] == 3 and report["workers"] == 1
    assert sorted(f["name"] for f in report["failures"]) == ["corrupt.jpg", "long.pdf", "short.pdf"]


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

    result = _cli(str(scans), "-o", str(out), "--format", "json,txt", "--executor", "ray", "--workers", "1",
                  "--dpi", "100")  # the first run's: outputs made at another dpi would be redone
    assert result.exit_code == 1, result.output  # only the corrupt file fails now
    after = _mtimes(out)
    assert after["doc.pdf.txt"] > before["doc.pdf.txt"]
    assert {k: v for k, v in after.items() if not k.startswith("doc.pdf")} == {
        k: v for k, v in before.items() if not k.startswith("doc.pdf")}
    pages = _squash((out / "doc.pdf.txt").read_text(encoding="utf-8")).split("\f")
    assert len(pages) == 3 and "PAID" in pages[1]
    assert [f["name"] for f in _report(out)["failures"]] == ["corrupt.jpg"]


@dataclass(frozen=True)
class LedgerKillingSpec(EngineSpec):
    """The real OCR, except that the first page read kills the run's ledger actor (SIGKILL), as Ray's out-of-memory
    killer does when the node runs low on memory."""

    marker: str = ""

    def build(self) -> Any:
        engine = super().build()
        marker = Path(self.marker)

        def read(image: np.ndarray) -> Any:
            if not marker.exists():
                marker.touch()
                for proc in Path("/proc").glob("[0-9]*"):
                    try:
                        title = (proc / "cmdline").read_bytes()
                    except OSError:
                        continue
                    if title.startswith(b"ray::_Ledger"):
                        os.kill(int(proc.name), signal.SIGKILL)
            return engine(image)

        return read


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the ledger's process in /proc")
def test_a_killed_ledger_does_not_stop_the_run(tmp_path: Path, ray_cluster: Any) -> None:
    """The ledger actor, killed (the node low on memory), was the whole run's end: every later row failed in its
    actor with a UDF error, and the run stopped with 'Ray failed'."""
    from ray import cloudpickle

    from ocrlite.batch.ray_runner import RayExecutor, RayOptions

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this test module
    scans, out = _make_scans(tmp_path / "scans"), tmp_path / "out"
    report = run_batch([scans], LedgerKillingSpec(marker=str(tmp_path / "killed")),
                       BatchOptions(out, ("txt",), dpi=100, quiet=True),
                       RayExecutor(RayOptions(workers=1, threads=1, pages_per_job=1)))
    assert (tmp_path / "killed").exists()
    assert [f.name for f in report.failures] == ["corrupt.jpg"] and report.pages == 5
    pages = _squash((out / "doc.pdf.txt").read_text(encoding="utf-8")).split("\f")
    assert "INVOICE" in pages[0] and "PAID" in pages[1] and "TOTAL" in pages[2]


def test_without_ray_the_executor_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrlite import extras

    monkeypatch.setattr(extras, "find_spec", lambda name: None)  # as if Ray were not installed
    _page("X").save(tmp_path / "x.png")
    result = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--executor", "ray")
    assert result.exit_code == 2
    expected = 'ocrlite: error: --executor ray needs Ray: pip install "ocrlite[ray]"'
    assert result.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "out").exists()
    local = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--ray-address", "auto")
    assert local.exit_code == 2 and "--executor ray" in local.output


def test_a_ray_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    """Ray installed but broken (a wheel for another Python, a missing shared library): one line saying to
    reinstall it, exit 2; it was an ImportError traceback, exit 1."""
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("libray.so: cannot open shared object file")\n')
    _page("X").save(tmp_path / "x.png")
    root = Path(__file__).resolve().parents[2]  # this checkout's ocrlite, before the broken Ray
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path / "site")])}
    command = [sys.executable, "-m", "ocrlite", "ocr", str(tmp_path / "x.png"), "-o", str(tmp_path / "out"),
               "--executor", "ray"]
    child = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 2, child.stderr
    assert child.stderr.strip().splitlines() == [
        "ocrlite: error: --executor ray cannot import ray (libray.so: cannot open shared object file): reinstall it: "
        'pip install --force-reinstall "ocrlite[ray]"']


def _sentinel(signum: int, frame: Any) -> None:
    """A SIGTERM handler that is not Ray's."""


def test_starting_ray_gives_sigterm_back(ray_cluster: Any) -> None:
    """``ray.init`` makes SIGTERM exit the process, which would skip the report's pending inputs; ocrlite puts back
    the handler it had (``run_batch``'s: stop as Ctrl-C does). This session's Ray already runs, so the start fails."""
    from ocrlite.batch.ray_runner import RayOptions, _init_ray

    previous = signal.signal(signal.SIGTERM, _sentinel)
    try:
        with pytest.raises(OcrliteError, match="^cannot start a local Ray: "):
            _init_ray(RayOptions(), None)
        assert signal.getsignal(signal.SIGTERM) is _sentinel
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_an_unreachable_ray_address_is_one_line(ray_cluster: Any) -> None:
    """Ray would wait for such an address without end (here, with this session's Ray up, it would say it runs)."""
    from ocrlite.batch.ray_runner import RayOptions, _init_ray

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for address, why in ((f"127.0.0.1:{port}", "Connection refused"),
                         ("nosuchhost.invalid:6379", "unknown host nosuchhost.invalid")):
        with pytest.raises(OcrliteError) as error:
            _init_ray(RayOptions(address=address), None)
        assert str(error.value).startswith(f"cannot join Ray at {address}: {why}"), error.value


@pytest.mark.parametrize("address", [":6379", "", "127.0.0.1:99999", "127.0.0.1:0", "headnode", "local"])
def test_a_malformed_ray_address_is_one_line_before_any_work(tmp_path: Path, address: str) -> None:
    """Ray printed its traceback for ``:6379``, started a local Ray for an empty address (``--ray-address "$HEAD"``
    with HEAD unset) and dialled port 99999 modulo 65536; now the flag is refused before Ray or the output folder."""
    _page("X").save(tmp_path / "x.png")
    result = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--executor", "ray", "--ray-address", address)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"ocrlite: error: --ray-address {address!r}: give auto or HOST:PORT, the head node's GCS port (leave the flag "
        "out to start a local Ray)"]
    assert not (tmp_path / "out").exists()


def test_bytes_input_through_ray_client_is_refused(tmp_path: Path) -> None:
    """A Ray Client's driver runs on the head node, where bytes mode would read the files (missing, or others at the
    same path); the README says ray:// is not for bytes, and now the run says so before any work."""
    _page("X").save(tmp_path / "x.png")
    result = _cli(str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "--executor", "ray", "--ray-address",
                  "ray://127.0.0.1:10001", "--ray-input", "bytes")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "ocrlite: error: --ray-input bytes reads the files on this node, which a Ray Client (ray://) address is not "
        "part of: run ocrlite on a node of the cluster with --ray-address auto or HOST:PORT, or use --ray-input paths "
        "with the files on storage the cluster shares"]
    assert not (tmp_path / "out").exists()


def test_the_private_ray_is_local_and_follows_threads(ray_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --ray-address: a Ray of its own even where RAY_ADDRESS names another, with --threads CPUs; and the
    default actor count keeps all actors' threads within --threads, as the local batch does."""
    import ray

    from ocrlite.batch.ray_runner import RayOptions, _actors, _init_ray

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    _init_ray(RayOptions(), 2)  # --threads 2
    _init_ray(RayOptions(threads=2), None)  # all 8 cores
    _init_ray(RayOptions(workers=3, threads=2), 2)  # an explicit pool gets its CPUs, as --workers does locally
    assert [(call["address"], call["num_cpus"]) for call in calls] == [("local", 2), ("local", 8), ("local", 6)]
    assert [_actors(RayOptions(), 2, 16.0), _actors(RayOptions(threads=2), None, 8.0),
            _actors(RayOptions(threads=2), 3, 8.0), _actors(RayOptions(workers=5), 2, 8.0)] == [2, 4, 1, 5]


def test_a_ray_address_of_another_service_is_one_line(ray_cluster: Any) -> None:
    """A port that answers but is not Ray's (a web server, the dashboard's port) is said at once: ``ray.init``
    would retry it for about 14 minutes; the session's own Ray passes the same check."""
    from ocrlite.batch.ray_runner import _check_address

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(OcrliteError) as error:
            _check_address(address)
    finally:
        server.shutdown()
        server.server_close()
    assert str(error.value).startswith(f"cannot join Ray at {address}: no Ray cluster answers there (give the head")
    _check_address(ray_cluster.get_runtime_context().gcs_address)


def test_a_cluster_that_wants_a_token_says_so(ray_cluster: Any) -> None:
    """A cluster with token authentication (what ``ray start`` and a new local Ray turn on) joined by HOST:PORT from
    a process without RAY_AUTH_MODE=token: one line that says what to set, not Ray's retries for 20 s."""
    if os.environ.get("RAY_AUTH_MODE") != "token":
        pytest.skip("this session's Ray runs without token authentication (RAY_AUTH_MODE is set otherwise)")
    address = ray_cluster.get_runtime_context().gcs_address
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    code = f"from ocrlite.batch.ray_runner import _check_address; _check_address({address!r})"
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    expected = (f"ocrlite.errors.OcrliteError: cannot join Ray at {address}: the cluster wants its authentication "
                "token: set RAY_AUTH_MODE=token")
    assert child.returncode == 1 and expected in child.stderr, child.stderr


def _missing_ocrlite() -> None:
    raise ModuleNotFoundError("No module named 'ocrlite'")


@dataclass(frozen=True)
class MissingOnTheNodeSpec(EngineSpec):
    """A spec that cannot be unpickled in an actor, as none of ocrlite's can on a node without ocrlite."""

    def __reduce__(self) -> Any:
        return _missing_ocrlite, ()


def test_a_node_without_ocrlite_is_one_line(tmp_path: Path, ray_cluster: Any, capfd: pytest.CaptureFixture[str]
                                            ) -> None:
    from ray import cloudpickle

    from ocrlite.batch.ray_runner import RayExecutor, RayOptions

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this test module
    _page("X").save(tmp_path / "x.png")
    with pytest.raises(OcrliteError) as error:
        run_batch([tmp_path / "x.png"], MissingOnTheNodeSpec(), BatchOptions(tmp_path / "out", quiet=True),
                  RayExecutor(RayOptions(workers=1)))
    assert str(error.value) == ("Ray failed: The actor died because of an error raised in its creation task: "
                                "ModuleNotFoundError: No module named 'ocrlite'")
    assert "Traceback" not in capfd.readouterr().err  # Ray Data's stack trace of it is left out


@dataclass(frozen=True)
class UnbuildableSpec(EngineSpec):
    """An engine whose build fails as on a node that lacks a package."""

    def build(self) -> Any:
        raise ImportError("No module named 'cv2'")


def test_an_actor_that_cannot_build_says_why_in_one_line(tmp_path: Path, ray_cluster: Any) -> None:
    from ocrlite.batch.ray_runner import _OcrActor

    actor = _OcrActor(UnbuildableSpec(), BatchOptions(tmp_path), 1, ledger=None)
    assert actor.fatal == "unexpected ImportError: No module named 'cv2'"  # the run's one line, no Ray traceback


def test_a_ray_failure_is_one_plain_line(tmp_path: Path, ray_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from ocrlite.batch.plan import Job
    from ocrlite.batch.ray_runner import RayExecutor, RayOptions

    def fail(*args: Any) -> Any:
        raise ray.exceptions.RayError("\x1b[36mThe actor died\x1b[39m in its creation task\nTraceback (most recent...")

    monkeypatch.setattr(RayExecutor, "_run", fail)
    outcomes = RayExecutor(RayOptions())([Job(tmp_path / "x.png", "x.png", {})], EngineSpec(),
                                         BatchOptions(tmp_path), None, lambda workers: None)
    with pytest.raises(OcrliteError) as error:
        next(outcomes)
    assert str(error.value) == "Ray failed: The actor died in its creation task"
