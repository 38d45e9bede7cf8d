"""``ocrlite quantize``: int8 ONNX of one stage + a stage config and pipeline that run it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocrlite.errors import ConfigError
from ocrlite.slim.quantize import Quantized, quantize_stage
from ocrlite.slim.save import check_outputs, config_stage_kind, raw_stage, save_onnx_stage, write_pipeline
from ocrlite.stages import command_stage

__all__ = ["QuantizeResult", "quantize_config"]


_MEASURES = {"det": "IoU of the text pixels, the map binarised at det.postprocess.thresh",
             "cls": "1 - mean absolute difference of the probabilities",
             "rec": "same CTC class at fp32's non-blank steps"}


@dataclass
class QuantizeResult:
    """What ``quantize_config`` did: the stage quantized, the files and sizes, and the configs written."""

    kind: str
    quantized: Quantized
    max_size: float
    stage_config: Path
    pipeline_config: Path

    def over_size(self) -> bool:
        """Whether the int8 file is larger than ``max_size`` of the fp32 weights (every conv is int8 already)."""
        return self.quantized.int8_bytes > self.max_size * self.quantized.weights_bytes

    def summary(self) -> str:
        """The lines the CLI prints."""
        q = self.quantized
        return "\n".join([
            f"{self.kind}: int8 {q.int8} {q.int8_bytes:,} B = {q.int8_bytes / q.weights_bytes:.1%} of the fp32 "
            f"weights ({q.weights_bytes:,} B; fp32 ONNX {q.fp32_bytes:,} B)",
            f"  convs kept fp32 (most sensitive on --calib): {', '.join(q.kept_fp32) or 'none'}",
            f"  agreement with fp32 on {q.calib_images} --calib images: {q.agreement:.2%} ({_MEASURES[self.kind]})",
            f"  stage config {self.stage_config}\n  pipeline     {self.pipeline_config}"])


def quantize_config(config: str, kind: str, calib: Path, out_dir: Path, count: int = 64,
                    overrides: tuple[str, ...] = (), max_size: float = 0.3) -> QuantizeResult:
    """Quantize the ``kind`` stage of ``config`` (a stage config names its own kind) into ``out_dir``."""
    kind = config_stage_kind(config) or kind
    spec = command_stage(kind, config, overrides)
    if spec is None or spec.weights is None:
        raise ConfigError(f"{config}: no {kind} stage with weights to quantize")
    raw = raw_stage(kind, config, overrides)
    check_outputs(out_dir, (f"{kind}.fp32.onnx", f"{kind}.int8.onnx", f"{kind}.yaml", "ocr.yaml"), config, raw, spec)
    quantized = quantize_stage(spec, calib, out_dir, count, max_size)
    kept = quantized.kept_fp32
    summary = (f"int8 {kind} by ocrlite quantize (int8 conv weights + dynamic int8 MatMul/LSTM; "
               f"{len(kept)} most sensitive convs kept fp32: {', '.join(kept) or 'none'})")
    stage = save_onnx_stage(out_dir, kind, quantized.int8, spec.weights, raw, summary)
    return QuantizeResult(kind, quantized, max_size, stage,
                          write_pipeline(out_dir, config, {kind: stage}, overrides))
