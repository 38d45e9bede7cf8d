"""``import ocrlite`` bounds torch's oneDNN kernel cache, unless the environment already chose a size."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ocrlite.backends.kernel_cache import CACHE_CAPACITY, CACHE_ENV


@pytest.mark.parametrize(("preset", "expected"), [(None, str(CACHE_CAPACITY)), ("512", "512")])
def test_import_sets_capacity_unless_given(preset: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != CACHE_ENV}
    if preset is not None:
        env[CACHE_ENV] = preset
    code = f"import os, ocrlite; print(os.environ['{CACHE_ENV}'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
