"""``ocrlite quantize``: int8 ONNX of one stage + a stage config and pipeline that run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocrlite.errors import ConfigError
from ocrlite.slim.quantize import quantize_stage
from ocrlite.slim.save import config_stage_kind, raw_stage, save_onnx_stage, write_pipeline
from ocrlite.stages import command_stage

__all__ = ["quantize_config"]


def quantize_config(config: str, kind: str, calib: Path, out_dir: Path, count: int = 64,
                    overrides: tuple[str, ...] = (), max_size: float = 0.3) -> dict[str, Any]:
    """Quantize the ``kind`` stage of ``config`` (a stage config names its own kind) into ``out_dir``."""
    kind = config_stage_kind(config) or kind
    spec = command_stage(kind, config, overrides)
    if spec is None or spec.weights is None:
        raise ConfigError(f"{config}: no {kind} stage with weights to quantize")
    result = quantize_stage(spec, calib, out_dir, count, max_size)
    kept = result["kept_fp32"]
    summary = (f"int8 {kind} by ocrlite quantize (int8 conv weights + dynamic int8 MatMul/LSTM; "
               f"{len(kept)} most sensitive convs kept fp32: {', '.join(kept) or 'none'})")
    stage = save_onnx_stage(out_dir, kind, result["int8"], spec.weights, spec.manifest,
                            raw_stage(kind, config, overrides), summary)
    result.update(kind=kind, stage_config=stage,
                  pipeline_config=write_pipeline(out_dir, config, {kind: stage}, overrides))
    return result
