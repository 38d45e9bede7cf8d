"""The shipped English fine-tune of the card's CRNN (preset ppocr-v2-en): spaces, case, and Chinese kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrlite import OCR
from ocrlite.eval.metrics import edit_distance
from ocrlite.weights import read_manifest, sha256_file

WEIGHTS = Path(__file__).resolve().parents[2] / "ocrlite" / "weights"
SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


@pytest.fixture(scope="module")
def engine() -> OCR:
    return OCR(model="ppocr-v2-en")


def test_manifest_records_the_training(engine: OCR) -> None:
    manifest = read_manifest(WEIGHTS / "rec_ppocrv2_en.json")
    assert manifest["sha256"] == sha256_file(WEIGHTS / "rec_ppocrv2_en.safetensors")
    assert manifest["parent"]["sha256"] == read_manifest(WEIGHTS / "rec_ppocrv2.json")["sha256"]
    training = manifest["training"]
    assert training["steps"] > 0 and training["samples_seen"] > 0 and training["cpu_seconds"] > 0
    assert len(training["data_manifest_sha256"]) == 64
    assert (WEIGHTS / "rec_ppocrv2_en.safetensors").stat().st_size < 10_000_000
    # the lent GPU came in short runs: each run starts from the previous one's weights, the first from the parent
    lineage = training["lineage"]
    assert lineage[0]["started_from_sha256"] == manifest["parent"]["sha256"]
    assert all(b["started_from_sha256"] == a["weights_sha256"] for a, b in zip(lineage, lineage[1:]))
    assert lineage[-1]["weights_sha256"] == manifest["sha256"]
    assert training["total_steps"] == sum(run["steps"] for run in lineage)


def test_quick_start_sample_reads_with_spaces_and_case(engine: OCR) -> None:
    texts = [line.text for line in engine(SAMPLE).lines]
    assert "Invoice No. 48213" in texts
    assert "Thank you!" in texts


@pytest.mark.skipif(not CJK_FONT.is_file(), reason="WenQuanYi Micro Hei is not installed (fonts-wqy-microhei)")
def test_chinese_lines_stay_readable(engine: OCR) -> None:
    lines = ["发票号码和金额", "我们明天上午开会", "北京市人民政府"]
    font = ImageFont.truetype(str(CJK_FONT), 32)
    crops = []
    for text in lines:
        image = Image.new("RGB", (40 * len(text) + 20, 48), "white")
        ImageDraw.Draw(image).text((10, 6), text, font=font, fill="black")
        crops.append(np.asarray(image)[:, :, ::-1].copy())
    read = [text for text, _ in engine.recognize(crops)]
    assert sum(edit_distance(r, t) for r, t in zip(read, lines, strict=True)) <= 1, read
