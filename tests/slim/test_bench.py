"""scripts/bench_slim.py's measurements: the table compares variants of a stage against its first row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocrlite.slim.bench import bench_variant, format_table
from ocrlite.stages import stage_spec


def test_bench_rows_and_ratios():
    pipeline = Path("ocr_ppocr_v2.yaml")
    row = bench_variant("fp32", "rec", pipeline, None, None, threads=1, runs=1)
    spec = stage_spec("rec", "rec_ppocrv2.yaml")
    assert row["params"] == 2_066_433  # what `ocrlite profile` prints (tests/test_profile.py): no BN statistics
    assert row["file_bytes"] == spec.weights.stat().st_size and row["macs"] > 0 and row["latency_ms"] > 0
    assert row["input"] == "8x3x32x320" and "accuracy" not in row
    half = {**row, "variant": "half", "file_bytes": row["file_bytes"] // 2}
    lines = format_table([row, half]).splitlines()
    assert lines[1].split()[0] == "fp32" and " 1.00 " in lines[1]
    assert lines[2].split()[0] == "half" and " 0.50 " in lines[2]


@pytest.mark.data
def test_det_accuracy_on_a_split_only(shared_data, tmp_path):
    """--det-split: the det hmean is taken on the manifest's images only (a fine-tune's held-out images)."""
    image = shared_data / "icdar2015" / "images" / "img_27.jpg"
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"files": [{"path": str(image)}]}))
    row = bench_variant("fp32", "det", Path("ocr_ppocr_v2.yaml"), shared_data / "icdar2015", None, threads=1,
                        runs=1, split=split)
    assert row["n"] == 1 and row["accuracy_name"] == "hmean" and 0 <= row["accuracy"] <= 100
