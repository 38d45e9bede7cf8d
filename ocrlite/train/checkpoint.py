"""Training checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder ``step_NNNNNNN`` holding ``model.safetensors`` (the net's state dict),
``optimizer.safetensors`` (per-parameter optimizer state and the torch RNG state), for a task that keeps
tensors of its own (the recognizer's center-loss centers) ``task.safetensors``, once the run has kept a best
step ``best.safetensors`` (its weights, so that a run resumed into another folder exports them), and
``state.json`` (step, optimizer hyper-parameters, AMP scaler, counters, settings, config).
``state.json`` is written last and records the sha256 of the tensor files, so a folder without it,
or with files that differ, is not a checkpoint. ``LATEST`` in the run folder names the newest one.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..io.atomic import atomic_write_bytes, atomic_write_text, remove_stale_parts
from ..weights import sha256_file

__all__ = ["save_checkpoint", "load_checkpoint", "find_checkpoint", "read_state", "checkpoint_step", "state_tensors",
           "set_latest", "BEST_FILE"]

LATEST = "LATEST"
TASK_FILE = "task.safetensors"
BEST_FILE = "best.safetensors"
CHECKPOINT_FILES = ("model.safetensors", "optimizer.safetensors", TASK_FILE, BEST_FILE, "state.json")
STATE_KEYS = ("step", "optimizer", "sha256")  # what state.json always holds
# the JSON type of each key that resuming reads (a hand-edited or damaged state.json fails here in one line)
STATE_TYPES: dict[str, type] = {"step": int, "optimizer": dict, "sha256": dict, "counters": dict, "best": dict,
                                "evals": list}
_JSON_NAMES = {int: "integer", dict: "object", list: "array"}


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as contiguous CPU tensors (safetensors needs them so)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (``state.<param>.<key>``) and JSON-able rest."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    extra: dict[str, Any],
    keep: int = 2,
    task_tensors: dict[str, torch.Tensor] | None = None,
    best: Path | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints``, point ``LATEST`` at it and prune the others.

    ``task_tensors`` (the task's own state, if any) go to ``task.safetensors``, the file ``best`` (the run's
    best weights, if it has any yet) is copied to ``best.safetensors``. Pruning goes by step number: it keeps
    this checkpoint and the ``keep - 1`` newest before it, and removes any with a later step (left by a run
    that was resumed from an earlier checkpoint, so no longer on this run's way)."""
    from safetensors.torch import save

    root = run_dir / "checkpoints"
    folder = root / f"step_{step:07d}"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_parts([*(folder / name for name in CHECKPOINT_FILES), root / LATEST])  # left by a killed run
    optim_tensors, optim_rest = _optimizer_tensors(optimizer)
    optim_tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        optim_tensors["rng.cuda"] = torch.cuda.get_rng_state()
    atomic_write_bytes(folder / "model.safetensors", save(state_tensors(model)))
    atomic_write_bytes(folder / "optimizer.safetensors", save(optim_tensors))
    names = ["model.safetensors", "optimizer.safetensors"]
    if task_tensors:
        atomic_write_bytes(folder / TASK_FILE, save(task_tensors))
        names.append(TASK_FILE)
    if best is not None:
        atomic_write_bytes(folder / BEST_FILE, best.read_bytes())
        names.append(BEST_FILE)
    for stale in {TASK_FILE, BEST_FILE} - set(names):  # left by an earlier checkpoint of this step
        (folder / stale).unlink(missing_ok=True)
    state = {
        "step": step,
        "optimizer": optim_rest,
        "sha256": {name: sha256_file(folder / name) for name in names},
        **extra,
    }
    atomic_write_text(folder / "state.json", json.dumps(state, indent=1))
    set_latest(folder)
    others = {p: n for p in root.glob("step_*") if p.is_dir() and p != folder and (n := checkpoint_step(p)) is not None}
    earlier = sorted((n, p) for p, n in others.items() if n < step)
    kept = {p for _, p in earlier[max(0, len(earlier) - keep + 1):]}
    for old in others.keys() - kept:
        shutil.rmtree(old)
    return folder


def set_latest(folder: Path) -> None:
    """Make the checkpoint ``folder`` the one ``LATEST`` (beside it) names: the one a resumed run folder continues."""
    atomic_write_text(folder.parent / LATEST, folder.name + "\n")


def checkpoint_step(folder: Path) -> int | None:
    """The step of a checkpoint folder named ``step_NNNNNNN``; None for any other name."""
    match = re.fullmatch(r"step_(\d+)", folder.name)
    return int(match.group(1)) if match else None


def find_checkpoint(path: Path) -> Path:
    """The checkpoint folder for ``path``: itself, or the one ``LATEST`` names in a run or checkpoints folder."""
    path = Path(path)
    if (path / "state.json").is_file():
        return path
    for root in (path / "checkpoints", path):
        latest = root / LATEST
        if latest.is_file():
            folder = root / latest.read_text(encoding="utf-8").strip()
            if (folder / "state.json").is_file():
                return folder
    raise ConfigError(f"no checkpoint in {path} (expected state.json or checkpoints/{LATEST})")


def read_state(folder: Path, required: Sequence[str] = ()) -> dict[str, Any]:
    """The checkpoint's ``state.json`` (a ConfigError when it cannot be read, lacks one of ``STATE_KEYS`` or
    ``required``, or one of them is not of its ``STATE_TYPES`` type; the step must be 0 or more, the counters
    numbers, the optimizer record of the form ``save_checkpoint`` writes)."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read checkpoint {folder}: {exc}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"cannot read checkpoint {folder}: state.json is not a mapping")
    missing = [key for key in (*STATE_KEYS, *required) if key not in state]
    if missing:
        raise ConfigError(f"cannot read checkpoint {folder}: state.json has no {missing[0]!r}")
    for key in (*STATE_KEYS, *required):
        kind = STATE_TYPES.get(key)
        value = state[key]
        if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ConfigError(f"cannot read checkpoint {folder}: state.json's {key!r} is not a JSON "
                              f"{_JSON_NAMES[kind]}, got {json.dumps(value)[:40]}")
    if state["step"] < 0:
        raise ConfigError(f"cannot read checkpoint {folder}: state.json's 'step' is negative, got {state['step']}")
    counters = state["counters"] if isinstance(state.get("counters"), dict) else {}
    wrong = [key for key, value in counters.items() if not isinstance(value, (int, float)) or isinstance(value, bool)]
    if wrong:
        raise ConfigError(f"cannot read checkpoint {folder}: state.json's 'counters' must be numbers, got "
                          f"{json.dumps(wrong[0])}: {json.dumps(counters[wrong[0]])[:40]}")
    if not _optimizer_record(state["optimizer"]):
        raise ConfigError(f"cannot read checkpoint {folder}: state.json's 'optimizer' is not a checkpoint's "
                          "optimizer record (param_groups, scalars)")
    return state


def _optimizer_record(record: dict[str, Any]) -> bool:
    """Whether ``record`` has the form ``_optimizer_tensors`` writes: a list of parameter groups and, per parameter
    index, an object of its non-tensor state."""
    scalars = record.get("scalars")
    return (isinstance(record.get("param_groups"), list) and isinstance(scalars, dict)
            and all(index.isdecimal() and isinstance(values, dict) for index, values in scalars.items()))


def load_checkpoint(
    folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model, optimizer and torch RNG states from ``folder``; return ``state.json`` and the
    task's own tensors (``task.safetensors``; empty when the checkpoint has none). Tensors that do not fit
    ``model`` or ``optimizer`` (another net, other frozen modules) are a ConfigError."""
    from safetensors.torch import load_file

    state = read_state(folder)
    try:
        for name, digest in state["sha256"].items():
            if sha256_file(folder / name) != digest:
                raise ConfigError(f"checkpoint {folder}: {name} does not match its sha256 in state.json")
        weights = load_file(str(folder / "model.safetensors"))
        tensors = load_file(str(folder / "optimizer.safetensors"))
        task_tensors = load_file(str(folder / TASK_FILE)) if TASK_FILE in state["sha256"] else {}
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read checkpoint {folder}: {exc}") from None
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        detail = (lines[1] if len(lines) > 1 else lines[0]).strip()[:200]
        raise ConfigError(f"checkpoint {folder} does not fit this net: {detail}") from None
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    for index, values in state["optimizer"]["scalars"].items():
        per_param.setdefault(int(index), {}).update(values)
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": state["optimizer"]["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"checkpoint {folder}: its optimizer state does not fit this run's "
                          f"parameter groups (train.freeze or the task's groups differ): {exc}") from None
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return state, task_tensors
