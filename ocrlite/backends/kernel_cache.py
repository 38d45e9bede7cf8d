"""Bound the kernel cache of torch's oneDNN layer, which otherwise grows with every new input shape."""

from __future__ import annotations

import os

__all__ = ["CACHE_CAPACITY", "CACHE_ENV", "bound_kernel_cache"]

CACHE_ENV = "LRU_CACHE_CAPACITY"  # read by torch's oneDNN layer (ideep) as it creates each cache
CACHE_CAPACITY = 64


def bound_kernel_cache() -> None:
    """Keep at most ``CACHE_CAPACITY`` conv/matmul kernels per cache in torch's oneDNN layer, unless the
    environment sets ``LRU_CACHE_CAPACITY``. ``import ocrlite`` calls it, before any inference.

    That layer caches a kernel, with its buffers, per layer and input shape, up to 1,024 per cache by
    default. Pages of varying sizes each add a detector's worth of new shapes, so a long batch run's RSS
    climbed until the caches were full: ``scripts/check_batch_memory.py``, page 20 -> page 200, went
    433 -> 506 MiB (+16.9 %) with 1,024 and 404 -> 408 MiB (+1.0 %) with 64. oneDNN's own primitive
    cache keeps its default, so a kernel dropped here is rebuilt cheaply from it: 6 FUNSD + 6 ICDAR 2015
    pages, 2 threads, took the same time with 64 as with 1,024 for PP-OCRv2, PP-OCRv6 small and tiny
    (within 3 %, the noise). The check script imports torch before ocrlite: the bound holds all the same.
    """
    os.environ.setdefault(CACHE_ENV, str(CACHE_CAPACITY))
