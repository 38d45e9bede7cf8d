"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the benchmark data (``../shared/data`` beside the repo).

    Skips the test when the folder is absent, unless OCRLITE_REQUIRE_DATA=1 (as in CI): then fails.
    """
    if not SHARED_DATA.is_dir():
        message = f"benchmark data not found at {SHARED_DATA}"
        if os.environ.get("OCRLITE_REQUIRE_DATA") == "1":
            pytest.fail(f"{message} (OCRLITE_REQUIRE_DATA=1)")
        pytest.skip(message)
    return SHARED_DATA
