"""tcmalloc for the command line: the ``ocrlite`` command restarts itself with gperftools' tcmalloc preloaded.

Why: the torch backend allocates each page's tensors afresh, many of them megabytes large. glibc's malloc
maps large blocks from the kernel and unmaps them when freed, and batch mode trims the heap after every
input (``ocrlite.batch.heap``) to keep the RSS flat, so every page faults its memory in again (the kernel
zeroes each 4 KiB page). tcmalloc keeps freed blocks for the next page and still stays bounded. Measured
on the 2-core dev machine: ``scripts/check_batch_memory.py`` (200 pages, PP-OCRv2) 34.6 -> 21.2 s with a
peak RSS of 415 -> 486 MiB (400 pages: 463 and 493 MiB over the first and last 40, flat); 30 FUNSD pages
through ``ocrlite ocr -o`` with PP-OCRv6 small and 2 workers 29.7 -> 24.0 s, the largest process's peak RSS
1.18 -> 0.72 GiB. onnxruntime keeps its own arena and runs at the same speed either way.

The restart happens only on Linux, where the library is installed (Debian/Ubuntu: ``libtcmalloc-minimal4``)
and not yet loaded, and not when ``OCRLITE_MALLOC=system``. It is the same command in the same process
(``exec``), so nothing the user sees changes; child processes (batch workers) inherit the preload.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

__all__ = ["MALLOC_ENV", "malloc_in_use", "relaunch_with_tcmalloc", "tcmalloc_library"]

MALLOC_ENV = "OCRLITE_MALLOC"  # "system" keeps the C library's malloc
_RELAUNCHED_ENV = "OCRLITE_MALLOC_RELAUNCHED"  # set on the restart: never restart twice
_LIBRARY = "tcmalloc_minimal"


def tcmalloc_library() -> str | None:
    """The installed tcmalloc's library name (e.g. ``libtcmalloc_minimal.so.4``), or None."""
    return ctypes.util.find_library(_LIBRARY)


def malloc_in_use() -> str:
    """``tcmalloc`` when this process has tcmalloc loaded, else ``system``."""
    maps = Path("/proc/self/maps")
    try:
        loaded = "libtcmalloc" in maps.read_text()
    except OSError:
        loaded = False
    return "tcmalloc" if loaded else "system"


def relaunch_with_tcmalloc() -> None:
    """Replace this process with the same command and tcmalloc preloaded, where that applies (see the module
    docstring); otherwise return and let the command run as it is. Call it before any work is done."""
    if sys.platform != "linux" or os.environ.get(MALLOC_ENV, "").lower() == "system":
        return
    if os.environ.get(_RELAUNCHED_ENV) or malloc_in_use() == "tcmalloc":
        return
    library = tcmalloc_library()
    if library is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [library, env.get("LD_PRELOAD", "")]))
    env[_RELAUNCHED_ENV] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
