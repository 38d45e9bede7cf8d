"""Give the heap memory a finished input freed back to the OS (glibc's ``malloc_trim``)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import lru_cache

__all__ = ["trim_heap"]


@lru_cache(maxsize=1)
def _libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries and platforms."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def trim_heap() -> None:
    """Give freed heap memory back to the OS after each input (a no-op without glibc).

    Pages of varying sizes leave glibc's heap fragmented; without this the RSS of a long
    run climbs to over twice its working size (measured by scripts/check_batch_memory.py).
    """
    trim = _libc_trim()
    if trim is not None:
        trim(0)
