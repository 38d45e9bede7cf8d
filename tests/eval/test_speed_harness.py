"""The folder benchmark's measuring stick (``ocrlite.eval.speed.run_tree``): wall time, stdout, and the peak RSS
of a whole process tree, worker processes included, checked against a child of known size."""

from __future__ import annotations

import sys

import pytest

from ocrlite.eval.speed import run_tree

pytest.importorskip("psutil", reason='the benchmarks need psutil (pip install ".[bench]")')

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
