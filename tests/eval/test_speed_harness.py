"""The benchmarks' measuring sticks: ``run_tree`` (the folder benchmark: wall time, stdout, and the peak RSS of
a whole process tree, worker processes included, checked against a child of known size) and the per-stage
clock of ``bench_rows``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ocrlite.eval.speed import _TimedRunner, run_tree
from ocrlite.predictors import TextRecognizer
from ocrlite.stages import stage_spec

pytest.importorskip("psutil", reason='the benchmarks need psutil (pip install ".[bench]")')

SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"
GRANDCHILD = "import time; b = bytearray(300 * 2**20); time.sleep(1.5)"  # 300 MiB, written, so resident


def test_peak_rss_counts_the_worker_processes_and_the_time_is_the_whole_run() -> None:
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}], check=True); print('ok')"
    seconds, peak_mib, stdout = run_tree([sys.executable, "-c", parent])
    assert stdout == "ok\n"
    assert seconds >= 1.5
    assert 300 < peak_mib < 600  # the grandchild's 300 MiB plus two interpreters, not the parent alone


def test_a_failing_command_is_an_error_with_its_stderr() -> None:
    with pytest.raises(RuntimeError, match="exit 3 because"):
        run_tree([sys.executable, "-c", "import sys; print('exit 3 because', file=sys.stderr); sys.exit(3)"])


class _SlowRunner:
    """A recognizer net that takes ``seconds`` per call and reads every step as blank."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.calls = seconds, 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        time.sleep(self.seconds)
        probs = np.zeros((len(batch), batch.shape[3] // 4, 3), dtype=np.float32)
        probs[..., 0] = 1.0
        return probs


def test_the_rec_clock_covers_every_batch_once_without_lanes() -> None:
    """Serial batches are timed as a whole, like the torch backend's lanes, and no net call counts twice."""
    spec = stage_spec("rec")
    assert spec.charset is not None  # every rec stage has one
    net = _SlowRunner(0.05)
    clock = {"rec": 0.0}
    recognizer = TextRecognizer(_TimedRunner(net, clock, "rec"), spec.pre, spec.charset)
    crops = [np.full((32, 32 * (1 + i % 4), 3), 255, np.uint8) for i in range(14)]  # 3 batches of <= 6
    start = time.perf_counter()
    texts = recognizer(crops)
    wall = time.perf_counter() - start
    assert net.calls == 3 and [t.text for t in texts] == [""] * 14
    assert 0.15 <= clock["rec"] <= wall  # counted twice it would be >= 0.30 against a wall time of ~0.15


def test_serial_batches_are_timed_with_the_work_around_the_net_call() -> None:
    """Without lanes, ``map_batches`` reads the batches in order, hands ``read`` the untimed net, and times
    all of ``read`` (input preparation and decoding included, as inside the torch backend's lanes)."""
    net = _SlowRunner(0.0)
    clock = {"rec": 0.0}

    def read(runner: object, item: int) -> int:
        time.sleep(0.04)  # the work around the net call
        assert runner is net
        return item * 10

    assert _TimedRunner(net, clock, "rec").map_batches(read, [3, 1, 2]) == [30, 10, 20]
    assert clock["rec"] >= 0.12


def test_bench_rows_times_first_reads_apart_from_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    """A system that is slow only on the first read of each new page (as torch's oneDNN kernels are built per
    input shape) is level with the peer on the repeats and slower on the first reads; the process-wide
    warm-up read of the first page is not counted as a first read."""
    from ocrlite.eval import speed
    from ocrlite.results import PageResult

    def system(name: str, cold: float) -> speed.SpeedSystem:
        seen: set[int] = set()

        def page(image: np.ndarray) -> PageResult:
            key = int(image[0, 0, 0])
            time.sleep(0.01 + (cold if key not in seen else 0.0))
            seen.add(key)
            return PageResult(image.shape[1], image.shape[0], ())

        return speed.SpeedSystem(name, page, 0.0)

    built = {"torch": system("cold", 0.04), "peer": system("peer", 0.0)}
    monkeypatch.setattr(speed, "build_system", lambda row, which, threads: built[which])
    pages = [np.full((4, 4, 3), i, np.uint8) for i in range(4)]
    [cold, peer] = speed.bench_rows(["v6-tiny"], {"funsd": pages}, 1, 1, backends=("torch",))
    assert cold["system"] == "cold" and peer["system"] == "peer"
    assert 0.8 <= cold["ratio"] <= 1.25  # repeats: both 10 ms
    assert cold["first_s"] >= 0.05 and cold["first_ratio"] >= 3.0  # 3 new pages at 50 ms (the warm-up not among them)
    assert peer["first_ratio"] == 1.0


def test_the_folder_table_counts_workers_and_threads_in_words(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    """The setting column said "1 workers" and "1 threads". The runs themselves are not made here (a benchmark):
    ``run_tree`` gives each command a fixed time and the commands are kept, to check each row's setting is its
    run's."""
    from ocrlite.eval import speed

    (tmp_path / "page.png").write_bytes(SAMPLE.read_bytes())
    commands: list[list[str]] = []

    def run(command: list[str]) -> tuple[float, float, str]:
        commands.append(command)
        return 2.0, 100.0, ""

    monkeypatch.setattr(speed, "run_tree", run)
    monkeypatch.setattr(speed, "load_seconds", lambda row, which, threads: 0.5)
    monkeypatch.setattr(speed, "_peer", lambda row, threads: (object, "peer"))
    for threads, expected in ((1, ["1 thread", "1 worker", "4 workers"]), (2, ["2 threads", "1 worker", "4 workers"])):
        commands.clear()
        rows = speed.folder_rows("v6-tiny", tmp_path, [("torch", 1), ("onnxruntime", 4)], threads, 1)
        assert [row["setting"] for row in rows] == expected
        assert commands[0][-2] == str(threads)  # the peer's child: row, threads, folder
        assert [c[c.index("--workers") + 1] for c in commands[1:]] == ["1", "4"]
