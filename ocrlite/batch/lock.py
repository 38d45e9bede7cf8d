"""One batch run per output folder: two runs writing into one folder would race on its journal and report."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ocrlite.errors import OcrliteError

__all__ = ["output_lock"]


@contextmanager
def output_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the folder itself: no file is added to it; released
    when the process ends, however it ends) while the body runs; an OcrliteError when another run holds it.
    Where ``fcntl`` is missing (Windows) or the file system has no locks, the body runs unlocked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise OcrliteError(f"cannot open {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OcrliteError(f"another ocrlite run is writing into {folder}; wait for it to end or write "
                               "into another folder") from None
        except OSError:  # a file system without locks (some network mounts): the run goes on unlocked
            pass
        yield
    finally:
        os.close(fd)
