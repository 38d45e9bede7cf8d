"""Shared pytest fixtures: resources outside the package that CI must have and users may lack."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

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
