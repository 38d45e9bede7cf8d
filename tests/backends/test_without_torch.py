"""Once its exports are cached, the onnxruntime backend runs the whole pipeline -- one page, and a folder read
by batch workers -- in processes that cannot import torch (``ocrlite.backends.onnx_cache``,
``ocrlite.backends.threads``): no 2 s torch import, no 200 MB, per process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"


def _ocrlite(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocrlite", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_cached_exports_run_without_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    env = {**os.environ, "OCRLITE_ONNX_CACHE": str(tmp_path / "onnx")}
    page = ["--threads", "1", "ocr", str(SAMPLE), "--backend", "onnxruntime", "--format", "txt"]
    exported = _ocrlite(*page, env=env)  # the first run exports the nets, which takes torch
    assert exported.returncode == 0, exported.stderr
    assert "Invoice" in exported.stdout

    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None  # import torch fails\n")
    # first on the path, inherited by the batch workers (fresh interpreters)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "torch" in probe.stderr

    threads = subprocess.run([sys.executable, "-c", (  # --threads before torch: the sessions take it
        "from ocrlite.backends.threads import set_threads; from ocrlite.stages import stage_spec; set_threads(1); "
        "runner = stage_spec('cls', overrides=['backend=onnxruntime']).build_runner(); "
        "print(runner.session.get_session_options().intra_op_num_threads)")], env=env, capture_output=True, text=True)
    assert (threads.returncode, threads.stdout) == (0, "1\n"), threads.stderr

    again = _ocrlite(*page, env=env)
    assert (again.returncode, again.stdout, again.stderr) == (0, exported.stdout, "")

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(SAMPLE, folder / name)
    batch = _ocrlite("--threads", "2", "ocr", str(folder), "-o", str(tmp_path / "out"), "--backend",
                     "onnxruntime", "--format", "txt", env=env)
    assert batch.returncode == 0, batch.stderr
    for name in ("a", "b"):
        assert (tmp_path / "out" / f"{name}.png.txt").read_text(encoding="utf-8") == exported.stdout
