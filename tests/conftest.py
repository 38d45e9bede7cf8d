"""Shared pytest fixtures: resources outside the package that CI must have and users may lack."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _unavailable(message: str) -> None:
    """Skip the test with ``message``; fail instead when OCRLITE_REQUIRE_DATA=1 (as in CI)."""
    if os.environ.get("OCRLITE_REQUIRE_DATA") == "1":
        pytest.fail(f"{message} (OCRLITE_REQUIRE_DATA=1)")
    pytest.skip(message)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the benchmark data carries the ``data`` marker (``-m "not data"`` skips them)."""
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the benchmark data (``../shared/data`` beside the repo)."""
    if not SHARED_DATA.is_dir():
        _unavailable(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def preset_weights() -> Path:
    """Folder of the optional ``ocrlite_models`` weights package (``pip install ./ocrlite-models``)."""
    if find_spec("ocrlite_models") is None:
        _unavailable("the optional preset weights are not installed (pip install ./ocrlite-models)")
    import ocrlite_models

    return Path(ocrlite_models.__file__).resolve().parent


@pytest.fixture(scope="session")
def ocrmypdf_command() -> list[str]:
    """``python -m ocrmypdf`` of this interpreter (``pip install ".[ocrmypdf]"``; OCRmyPDF also needs the
    ``tesseract`` binary at start-up, Debian package tesseract-ocr, even when ocrlite does the OCR)."""
    if find_spec("ocrmypdf") is None:
        _unavailable('ocrmypdf is not installed (pip install ".[ocrmypdf]")')
    if shutil.which("tesseract") is None:
        _unavailable("OCRmyPDF needs the tesseract binary at start-up (apt-get install tesseract-ocr)")
    return [sys.executable, "-m", "ocrmypdf"]


@pytest.fixture(scope="session")
def pdftotext() -> str:
    """poppler's ``pdftotext`` (Debian package poppler-utils): how viewers built on poppler read a PDF's text."""
    found = shutil.which("pdftotext")
    if found is None:
        _unavailable("pdftotext is not installed (apt-get install poppler-utils)")
    return str(found)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """One local Ray (2 CPUs, no dashboard) for the whole session, a new one also where another Ray runs on this
    machine (``ray start``): the optional ray extra."""
    if find_spec("ray") is None or find_spec("pyarrow") is None:
        _unavailable('Ray is not installed (pip install "ocrlite[ray]")')
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")  # a busy machine starts Ray slowly
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module (as in each batch worker or Ray actor: numbers then match bit for bit)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
