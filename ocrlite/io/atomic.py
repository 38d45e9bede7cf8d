"""Atomic file writes: a temp file in the target folder, then ``os.replace``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from ocrlite.errors import OcrliteError

__all__ = ["atomic_write_bytes", "atomic_write_text", "ensure_folder", "write_image", "is_part_of",
           "remove_stale_parts"]


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def ensure_folder(folder: str | Path) -> None:
    """Create ``folder`` (with its parents) and check that a file can be written in it, before any work
    whose results would go there; raises ``OcrliteError`` with the reason when it cannot."""
    blocking = next((part for part in (Path(folder), *Path(folder).parents) if part.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise OcrliteError(f"cannot write to {folder}: {blocking} is a file, not a folder")
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ocrlite-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OcrliteError(f"cannot write to {folder}: {exc.strerror or exc}") from None


def _part_prefix(name: str) -> str:
    """How the temp files of ``name`` start: at most 40 characters of it (160 bytes), so that a name near the
    255-byte limit does not fail for its temp file's longer one."""
    return f".{name[:40]}."


def is_part_of(temp_name: str, name: str) -> bool:
    """Whether ``temp_name`` is a temp file that a write of ``name`` makes (``.NAME.XXXXXXXX.part``; a killed
    run leaves it behind)."""
    stem, dot, suffix = temp_name.rpartition(".")
    return dot == "." and suffix == "part" and f"{stem.rpartition('.')[0]}." == _part_prefix(name)


def remove_stale_parts(paths: Iterable[Path]) -> None:
    """Delete the temp files (``is_part_of``) that a killed run left beside ``paths``, the files this run is about
    to write (a batch's outputs and report, a training run's files); one listing per folder."""
    due: dict[Path, set[str]] = {}
    for path in paths:
        due.setdefault(path.parent, set()).add(path.name)
    for folder, names in due.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not made yet: nothing stale
            continue
        for entry in entries:
            if entry.name.startswith(".") and any(is_part_of(entry.name, name) for name in names):
                Path(entry.path).unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent, the old file, or complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_part_prefix(path.name), suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Encode ``image`` (BGR) by the file's extension and write it atomically."""
    suffix = Path(path).suffix.lower() or ".png"
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise ValueError(f"cannot encode an image as {suffix}")
    atomic_write_bytes(path, encoded.tobytes())
