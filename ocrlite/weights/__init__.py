"""Shipped weights (package data) and strict safetensors loading.

This package directory holds the ``*.safetensors`` files, their JSON manifests, the charset and NOTICE;
the loader lives here too because a sibling ``weights.py`` module would be shadowed by this package.
Loading never unpickles and never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection

from ocrlite.errors import WeightsError

if TYPE_CHECKING:  # only for the annotation: ``ocrlite models`` reads manifests without importing torch
    from torch import nn

__all__ = ["check_sha256", "load_weights", "read_manifest", "sha256_file"]

_SHOW = 3  # keys named per category in an error message


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str | None) -> str:
    """The file's hex SHA-256; a WeightsError when ``expected`` (its manifest's) is given and differs."""
    actual = sha256_file(path)
    if expected is not None and actual != expected.lower():
        raise WeightsError(f"sha256 mismatch for {path.name}: expected {expected}, file differs")
    return actual


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def load_weights(
    model: nn.Module, path: Path, expected_sha256: str | None = None, allow_missing: Collection[str] = ()
) -> list[str]:
    """Load a safetensors file into ``model`` with strict key and shape checks.

    Raises WeightsError (one line) if the file is missing or unreadable, its SHA-256 differs from
    ``expected_sha256``, or keys are missing/unexpected or shapes differ (``num_batches_tracked`` may be absent).
    Only the keys named in ``allow_missing`` may be absent (e.g. a training-only branch); returns those that were.
    """
    from safetensors.torch import load_file  # keeps `import ocrlite.weights` light

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if expected_sha256 is not None:
        check_sha256(path, expected_sha256)
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several error types for corrupt files
        raise WeightsError(f"cannot read weights {path}: {exc}") from exc
    own = model.state_dict()
    required = {k for k in own if not k.endswith("num_batches_tracked")}
    allowed_absent = sorted((required & set(allow_missing)) - set(tensors))
    missing = sorted(required - set(tensors) - set(allow_missing))
    unexpected = sorted(set(tensors) - set(own))
    bad_shape = sorted(
        f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(tensors) & set(own)
        if tensors[k].shape != own[k].shape
    )
    problems = [
        f"{label}: {_names(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", bad_shape))
        if keys
    ]
    if problems:
        raise WeightsError(f"{path.name} does not fit the net: " + "; ".join(problems))
    model.load_state_dict(tensors, strict=False)
    return allowed_absent


_OUTPUTS = ("logits", "probabilities")


def read_manifest(path: Path) -> dict[str, Any]:
    """Read a weights manifest (JSON object) or raise WeightsError (one line naming the file): the fields the
    loader uses must be well formed when present (``sha256``: 64 hex digits; ``outputs``: logits or
    probabilities; ``preprocess``/``postprocess``: objects, checked further by the stage's settings)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read manifest {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"manifest {path} is not a JSON object")
    sha = data.get("sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
        raise WeightsError(f"manifest {path}: sha256 must be 64 hex digits, got {sha!r}")
    if data.get("outputs") is not None and data["outputs"] not in _OUTPUTS:
        raise WeightsError(f"manifest {path}: outputs must be one of {', '.join(_OUTPUTS)}, got {data['outputs']!r}")
    for part in ("preprocess", "postprocess"):
        if data.get(part) is not None and not isinstance(data[part], dict):
            raise WeightsError(f"manifest {path}: {part} must be an object, got {data[part]!r}")
    return data
