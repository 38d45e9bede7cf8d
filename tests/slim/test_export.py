"""``ocrlite export``: the check catches a mismatching file; the CLI writes a checked file.

Every shipped net's export is checked within 1e-4 in tests/backends/test_export.py (the exporter's own tests).
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from click.testing import CliRunner

from ocrlite.backends.export import export_stage
from ocrlite.cli import main
from ocrlite.slim.onnx_export import ExportError, _run_onnx, check_input, check_parity, export_checked
from ocrlite.stages import stage_spec

pytest.importorskip("onnxruntime")

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"


def test_the_check_fails_on_a_mismatch(tmp_path):
    spec = stage_spec("det", "det_ppocrv3.yaml")
    path = tmp_path / "det.onnx"
    export_checked(spec, path)
    assert _run_onnx(path, check_input(spec)).max() > 0.5  # rendered text: a real map, not an all-zero one
    net = spec.build_net()
    with torch.no_grad():
        net.head.binarize.conv1.weight.mul_(1.01)  # a slightly different net written under the same spec
    export_stage(spec, path, net=net)
    with pytest.raises(ExportError, match="differs from PyTorch"):
        check_parity(spec, path)
    failed = tmp_path / "unchecked.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_checked(spec, failed, tolerance=0.0)  # no export matches to the last bit: the check fails
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.onnx"]  # nothing left under that name or beside it


def test_export_cli(tmp_path):
    """docs/slim.md's command; its file is what a stage's ``onnx:`` key reads (the default head: probabilities)."""
    out = tmp_path / "rec.onnx"
    run = CliRunner().invoke(main, ["export", "--config", "rec_ppocrv2.yaml", "--format", "onnx", "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "rec exported" in run.output and out.is_file()
    model = onnx.load(str(out))
    assert model.opset_import[0].version >= 17
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 32, "width"]
    assert {p.key: p.value for p in model.metadata_props} == {
        "ocrlite.kind": "rec", "ocrlite.classes": "6625", "ocrlite.head": "probs"}
    given = CliRunner().invoke(main, ["ocr", str(SAMPLE), "--set", "rec.backend=onnxruntime",
                                      "--set", f"rec.onnx={out}"])
    assert given.exit_code == 0, given.output
    torch_run = CliRunner().invoke(main, ["ocr", str(SAMPLE)])
    assert [line["text"] for line in json.loads(given.stdout)["lines"]] == \
        [line["text"] for line in json.loads(torch_run.stdout)["lines"]]
    bad = CliRunner().invoke(main, ["export", "--config", "nope.yaml", "-o", str(tmp_path / "new" / "x.onnx")])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1
    assert not (tmp_path / "new").exists()  # a failed export leaves no empty folder behind


def test_a_net_without_weights_is_checked_against_the_net_exported(tmp_path):
    """A stage without weights builds a new random net each time: the check must use the one exported (it
    compared against a second random net and failed with "differs from PyTorch by 0.164")."""
    out = tmp_path / "det.onnx"
    run = CliRunner().invoke(main, ["export", "--config", "det_mv3_dbfpn.yaml", "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "det exported" in run.stdout and out.is_file()


@pytest.mark.parametrize("name", ["det.safetensors", "det.yaml", "det.json"])
def test_an_output_that_is_not_an_onnx_path_is_refused(tmp_path, name):
    """``ocrlite export --config OUT/ocr.yaml -o OUT/det.safetensors`` (or det.yaml: a slip of the output name)
    replaced the pruned detector's weights or config with the ONNX graph, exit 0; every later command on that
    config then failed ('sha256 mismatch for det.safetensors'). An -o that is not an .onnx path is one line,
    exit 2, and the file is left as it was."""
    target = tmp_path / name
    target.write_bytes(b"the user's file")
    run = CliRunner().invoke(main, ["export", "--config", "det_ppocrv3.yaml", "-o", str(target)])
    assert (run.exit_code, run.stdout) == (2, "") and run.stderr.count("\n") == 1
    assert f"{target} is not an .onnx path; export writes an ONNX file" in run.stderr
    assert target.read_bytes() == b"the user's file"
