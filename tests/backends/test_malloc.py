"""The ``ocrlite`` command restarts under tcmalloc where it is installed; the switch and the guards hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrlite.backends import malloc
from ocrlite.backends.malloc import MALLOC_ENV, malloc_in_use, relaunch_with_tcmalloc, tcmalloc_library

SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"


class _Exec(Exception):
    """Raised by the stand-in for os.execve, carrying what it was given."""


@pytest.fixture
def execve(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, list(argv), dict(env)))
        raise _Exec

    monkeypatch.setattr(malloc.os, "execve", fake)
    monkeypatch.setattr(malloc, "tcmalloc_library", lambda: "libtcmalloc_minimal.so.4")
    monkeypatch.setattr(malloc, "malloc_in_use", lambda: "system")
    for name in (MALLOC_ENV, "OCRLITE_MALLOC_RELAUNCHED", "LD_PRELOAD"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_relaunch_preloads_tcmalloc_and_keeps_the_command(execve: list, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LD_PRELOAD", "libother.so")
    with pytest.raises(_Exec):
        relaunch_with_tcmalloc()
    (path, argv, env), = execve
    assert path == sys.executable and argv == sys.orig_argv
    assert env["LD_PRELOAD"] == "libtcmalloc_minimal.so.4:libother.so"
    assert env["OCRLITE_MALLOC_RELAUNCHED"] == "1"


@pytest.mark.parametrize("case", ["opted out", "relaunched", "loaded", "not installed"])
def test_relaunch_is_skipped(case: str, execve: list, monkeypatch: pytest.MonkeyPatch) -> None:
    if case == "opted out":
        monkeypatch.setenv(MALLOC_ENV, "system")
    elif case == "relaunched":  # the preload did not take: never loop
        monkeypatch.setenv("OCRLITE_MALLOC_RELAUNCHED", "1")
    elif case == "loaded":
        monkeypatch.setattr(malloc, "malloc_in_use", lambda: "tcmalloc")
    else:
        monkeypatch.setattr(malloc, "tcmalloc_library", lambda: None)
    relaunch_with_tcmalloc()
    assert execve == []


def test_this_process_uses_the_system_malloc() -> None:
    assert malloc_in_use() == ("tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "system")


@pytest.mark.skipif(tcmalloc_library() is None, reason="tcmalloc is not installed (Debian: libtcmalloc-minimal4)")
@pytest.mark.parametrize(("switch", "expected"), [(None, "tcmalloc"), ("system", "system")])
def test_command_runs_under_tcmalloc(switch: str | None, expected: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (MALLOC_ENV, "LD_PRELOAD")}
    if switch is not None:
        env[MALLOC_ENV] = switch
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from ocrlite.cli import run; run()", "ocr", str(SAMPLE), "-o", str(out),
               "-q", "--format", "txt"]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    assert json.loads((out / "ocrlite-report.json").read_text())["malloc"] == expected
    assert "Invoice" in (out / "sample.png.txt").read_text()
