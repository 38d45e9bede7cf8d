"""The ONNX export cache: where the onnxruntime backend's exports live, and the key each is found by.

Finding a cached export needs neither torch nor onnx (the key takes torch's version from the installed
package's metadata), so a process that runs the onnxruntime backend on exports cached earlier never
imports torch: about 2 s of start-up and 200 MB less per process (each batch worker is one). Exporting a
missing file (``ocrlite.backends.export``) is what imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from ocrlite.errors import BackendError, OcrliteError
from ocrlite.io.atomic import ensure_folder, is_part_of

__all__ = ["OPSET", "CACHE_ENV", "METADATA", "STALE_PART_S", "cache_dir", "cached_export", "example_shape"]

OPSET = 17
CACHE_ENV = "OCRLITE_ONNX_CACHE"
_FORMAT = 6  # part of the cache key: bump when what an export contains changes
_WRITABLE = f"set {CACHE_ENV} to a writable folder"
_KEY_HEX = 20  # hex digits of a cache key
_CACHED = re.compile(rf"[a-z]+-[0-9a-f]{{{_KEY_HEX}}}\.onnx")  # a cache file's name: KIND-KEY.onnx
STALE_PART_S = 3600.0  # a cache file's temp file unchanged this long was left by a killed export
METADATA = {"kind": "ocrlite.kind", "classes": "ocrlite.classes", "head": "ocrlite.head"}  # metadata_props keys


def cache_dir() -> Path:
    """Where exports are cached: ``$OCRLITE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/ocrlite/onnx`` (~/.cache; an
    XDG_CACHE_HOME that is not an absolute path is ignored, as the XDG Base Directory spec says); a BackendError
    when none is set and there is no home folder (no ``HOME``, a user without a passwd entry)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.path.isabs(os.environ.get("XDG_CACHE_HOME", "")):
        return Path(os.environ["XDG_CACHE_HOME"]) / "ocrlite" / "onnx"
    home = os.path.expanduser("~")
    if home.startswith("~"):  # no home folder: never a folder named "~" in the working folder
        raise BackendError(f"no folder for the ONNX export cache: HOME is not set; {_WRITABLE}")
    return Path(home) / ".cache" / "ocrlite" / "onnx"


def example_shape(kind: str, pre: Any) -> tuple[int, int, int, int]:
    """The traced input's shape: 2 images, 64 x 96 for the detector, the line or crop size otherwise (an
    export keeps the sizes that its dynamic axes leave fixed)."""
    if kind == "det":
        return (2, 3, 64, 96)
    if kind == "page":  # the page classifier's centre crop
        return (2, 3, int(pre.crop), int(pre.crop))
    return (2, 3, int(pre.height), int(pre.width))


def _key(spec: Any, head: str) -> str:
    """Cache key: the weights' SHA-256, the net config, the head, the input size the export fixes, and the
    exporter versions."""
    from ocrlite.weights import check_sha256

    # the file's own hash, never only its manifest's: weights replaced beside an old manifest must not hit the
    # old export (the torch backend refuses them, and so does this)
    weights = check_sha256(spec.weights, spec.manifest.get("sha256")) if spec.weights else "random"
    shape = example_shape(spec.kind, spec.pre)
    text = json.dumps([weights, spec.model, head, spec.outputs, shape, OPSET, _FORMAT, metadata.version("torch")],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:_KEY_HEX]


def _remove_stale_parts(folder: Path) -> None:
    """Delete the temp files (``is_part_of``: ``.KIND-KEY.onnx.XXXXXXXX.part``) that exports killed while writing a
    cache file left in ``folder``, once unchanged for ``STALE_PART_S``. A live export's is never that old (the
    graph is written in one piece, in seconds), so another process's export is not cut short."""
    cutoff = time.time() - STALE_PART_S
    for entry in os.scandir(folder):
        name = entry.name[1:].rsplit(".", 2)[0]
        try:
            if _CACHED.fullmatch(name) and is_part_of(entry.name, name) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:  # swept already by another export, or not ours to remove: leave it
            continue


def cached_export(spec: Any, head: str = "raw", again: bool = False) -> Path:
    """The stage's ONNX file from the cache, exported first if absent or ``again`` (a cached file that cannot be
    loaded), keyed by weights, config and head; an export first removes what killed exports left in the cache
    (``_remove_stale_parts``). A cache that cannot be written is a BackendError saying so; the export's own errors
    (weights that do not match their manifest) are raised as they are."""
    path = cache_dir() / f"{spec.kind}-{_key(spec, head)}.onnx"
    if again or not path.is_file():
        from ocrlite.backends.export import export_stage

        try:
            ensure_folder(path.parent)
        except OcrliteError as exc:
            raise BackendError(f"{exc} (the ONNX export cache; {_WRITABLE})") from None
        _remove_stale_parts(path.parent)
        try:
            export_stage(spec, path, head)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror or exc} (the ONNX export cache; "
                               f"{_WRITABLE})") from None
    return path
