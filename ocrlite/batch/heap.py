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

    Pages of varying sizes leave glibc's heap fragmented. ``scripts/check_batch_memory.py`` (200 pages;
    peak RSS over the first and the last 20): trimmed after every input 405 and 415 MiB; after every 8th
    601-625 and 677-692 MiB; never, the RSS read 601 MiB after page 20 and 827 after page 200. The price is
    page faults, as each input's tensors take their pages from the kernel again: the 200 pages took 37-38 s
    trimmed after every input, 28-30 s after every 8th, 29 s never. Under tcmalloc (what the ``ocrlite``
    command runs with where it is installed: ``ocrlite.backends.malloc``) glibc's heap is all but unused, so
    the trim has nothing to give back, and tcmalloc keeps the RSS bounded itself: 457 and 486 MiB, 21.2 s.
    """
    trim = _libc_trim()
    if trim is not None:
        trim(0)
