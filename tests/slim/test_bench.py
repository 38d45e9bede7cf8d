"""scripts/bench_slim.py's measurements: the table compares variants of a stage against its first row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrlite.errors import ConfigError
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


def test_a_stage_config_of_the_other_kind_is_refused_before_any_measurement():
    """``--det slim=OUT/rec.yaml`` measured the default pipeline's detector and printed it as 'slim'."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_slim.py"
    done = subprocess.run([sys.executable, str(script), "--rec", "fp32=ocr_ppocr_v2.yaml", "--det",
                           "slim=rec_ppocrv2.yaml", "--no-accuracy", "--runs", "1"], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert (done.returncode, done.stdout) == (2, "")  # the rec row is not measured first
    assert done.stderr == ("bench_slim.py: error: rec_ppocrv2.yaml is a rec stage config; --det takes a det stage "
                           "config or a pipeline config\n")
    with pytest.raises(ConfigError, match="is a det stage config; --rec takes"):
        bench_variant("slim", "rec", Path("det_ppocrv3.yaml"), None, None, threads=1, runs=1)
