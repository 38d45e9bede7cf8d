"""One table for slimmed variants of a stage: params, MACs, file size, CPU latency and accuracy.

Used by ``scripts/bench_slim.py``. A variant is a pipeline config (``ocrlite prune`` / ``quantize`` write
one); its ``det`` or ``rec`` stage is measured. Params and MACs are the torch net's (an int8 ONNX file keeps
the net's shape, so its MACs are the fp32 ones -- int8 MACs); the file is the ONNX file for the onnxruntime
backend, else the safetensors weights; latency is the stage's own runner (torch, BN folded, or onnxruntime)
on one fixed input, median of ``runs`` calls at ``threads`` threads; accuracy is ``ocrlite.eval``'s det
hmean on ICDAR 2015 or rec word accuracy on word crops. Each row's ratios are against the stage's first row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocrlite.errors import ConfigError
from ocrlite.profile import count_macs, median_ms
from ocrlite.slim.save import config_stage_kind
from ocrlite.stages import pipeline_spec

__all__ = ["INPUTS", "bench_variant", "check_variant", "format_table"]

INPUTS = {"det": (1, 3, 640, 640), "rec": (8, 3, 32, 320)}  # rec height/width follow the stage's preprocess


def check_variant(kind: str, config: Path) -> None:
    """A ``kind`` variant is a pipeline config or a ``kind`` stage config (which stands for the default pipeline
    with that stage): a stage config of another kind would measure the default pipeline's ``kind`` stage under
    the variant's name, so it is a ConfigError."""
    own = config_stage_kind(config)
    if own is not None and own != kind:
        raise ConfigError(f"{config} is a {own} stage config; --{kind} takes a {kind} stage config or a pipeline "
                          "config")


def bench_variant(name: str, kind: str, config: Path, data: Path | None, limit: int | None,
                  threads: int = 2, runs: int = 10, split: Path | None = None) -> dict[str, Any]:
    """Measure the ``kind`` stage of pipeline ``config`` (and its accuracy when ``data`` is given, on the
    files of the ``split`` manifest when one is given, e.g. the images a fine-tune held out)."""
    from ocrlite.api import OCR
    from ocrlite.eval.harness import evaluate, ocrlite_system

    check_variant(kind, config)
    spec = getattr(pipeline_spec(config), kind)
    net = spec.build_net()
    shape = list(INPUTS[kind])
    if kind == "rec":
        shape[2], shape[3] = int(spec.pre.height), int(spec.pre.width)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        macs = count_macs(net, torch.from_numpy(x[:1]))[0]
    file = spec.onnx if spec.onnx is not None else spec.weights
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        runner = spec.build_runner()
        latency = median_ms(lambda: runner(x), runs)
        row: dict[str, Any] = {
            "variant": name, "stage": kind, "backend": spec.backend,
            "params": sum(p.numel() for p in net.parameters()),  # as ocrlite profile counts (no BN statistics)
            "macs": macs, "file_bytes": file.stat().st_size if file else 0, "latency_ms": round(latency, 2),
            "input": "x".join(map(str, shape)), "threads": threads,
        }
        if data is not None:
            score = evaluate(kind, [ocrlite_system(name, OCR(config))], data, limit, split)[0]
            row["accuracy"] = score["hmean"] if kind == "det" else score["accuracy"]
            row["accuracy_name"] = "hmean" if kind == "det" else "word_acc"
            row["n"] = score["n"]
    finally:
        torch.set_num_threads(previous)
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a fixed-width table with ratios against the first row of the same stage."""
    first: dict[str, dict[str, Any]] = {}
    header = ["variant", "stage", "backend", "params", "MACs", "file", "file x", "ms", "ms x", "accuracy", "n"]
    body = []
    for r in rows:
        base = first.setdefault(r["stage"], r)
        acc = f"{r['accuracy_name']} {r['accuracy']:.2f}" if "accuracy" in r else "-"
        body.append([r["variant"], r["stage"], r["backend"], f"{r['params']:,}", f"{r['macs'] / 1e6:,.0f} M",
                     f"{r['file_bytes'] / 2**20:.2f} MB", f"{r['file_bytes'] / base['file_bytes']:.2f}",
                     f"{r['latency_ms']:.1f}", f"{r['latency_ms'] / base['latency_ms']:.2f}", acc,
                     str(r.get("n", "-"))])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in [header, *body])
