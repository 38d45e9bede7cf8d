"""Structural pruning of the shipped detector: real channel removal, explicit widths, CLI round trip."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.errors import ConfigError, OcrliteError
from ocrlite.models import build_model
from ocrlite.profile import count_macs
from ocrlite.slim.groups import prunable_roots, widths_config
from ocrlite.slim.prune import allocate, kept_channels, loss_at, prune_net, ratio_at
from ocrlite.slim.sensitivity import load_curves, mask_divergence, measure, save_curves, stage_fingerprint
from ocrlite.stages import stage_spec

pytest.importorskip("torch_pruning")

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"
EXAMPLE = torch.zeros(1, 3, 64, 64)


@pytest.fixture(scope="module")
def det():
    spec = stage_spec("det", "det_ppocrv3.yaml")
    return spec, spec.build_net()


def test_explicit_default_widths_build_the_same_net(det):
    spec, net = det
    same = widths_config(net, spec.model)
    rebuilt = build_model(same)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}


def test_bad_widths_are_config_errors(det):
    spec, _ = det
    model = widths_config(spec.build_net(load_weights=False), spec.model)
    model["backbone"]["widths"]["mid"] = model["backbone"]["widths"]["mid"][:-1]
    with pytest.raises(ConfigError, match="widths.mid"):
        build_model(model)


def test_prune_removes_channels_and_the_widths_config_rebuilds_it(det):
    spec, net = det
    pruned = prune_net(net, {"backbone.mid.13": 0.5, "neck.lateral": 0.5, "neck.output.0": 0.5}, "l1", EXAMPLE)
    assert pruned.backbone.blocks[13].expand.conv.out_channels == kept_channels(480, 0.5) == 240
    assert pruned.neck.ins_conv[2].in_conv.out_channels == 48  # lateral width is shared by every level
    assert pruned.head.binarize.conv1.in_channels == 24 * 3 + 16
    x = torch.rand(1, 3, 96, 128)
    assert count_macs(pruned, x)[0] < 0.8 * count_macs(net, x)[0]
    rebuilt = build_model(widths_config(pruned, spec.model)).eval()
    rebuilt.load_state_dict(pruned.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), pruned(x))
        assert net.backbone.blocks[13].expand.conv.out_channels == 480  # the parent is left alone


def test_fpgm_and_l1_remove_different_filters(det):
    _, net = det
    a = prune_net(net, {"backbone.mid.14": 0.5}, "l1", EXAMPLE).backbone.blocks[14].dw.conv.weight
    b = prune_net(net, {"backbone.mid.14": 0.5}, "fpgm", EXAMPLE).backbone.blocks[14].dw.conv.weight
    assert a.shape == b.shape and not torch.equal(a, b)


def test_known_answers():
    ref = np.zeros((4, 4), np.float32)
    ref[:2] = 0.9
    prob = np.zeros((4, 4), np.float32)
    prob[:1] = 0.9
    assert mask_divergence(prob, ref, 0.3) == pytest.approx(0.5)
    assert mask_divergence(ref, ref, 0.3) == 0.0
    # the running maximum (0.3 counts at 0.04), interpolated towards the first ratio over tau: 0.3 + 0.1 * 0.01/0.16
    assert ratio_at({0.1: 0.01, 0.2: 0.04, 0.3: 0.02, 0.4: 0.2}, 0.05) == pytest.approx(0.30625)
    assert ratio_at({0.1: 0.01, 0.2: 0.5, 0.3: 0.02}, 0.05) == pytest.approx(0.1 + 0.1 * 0.04 / 0.49)
    assert ratio_at({0.1: 0.6, 0.2: 0.6}, 0.3) == pytest.approx(0.05)  # from loss 0 at ratio 0
    assert ratio_at({0.1: 0.01, 0.2: 0.02}, 0.5) == 0.2 and ratio_at({0.1: 0.0}, 0.0) == 0.1
    assert kept_channels(24, 0.5) == 16 and kept_channels(8, 0.8) == 8 and kept_channels(480, 0.99) == 8
    # loss_at reads the curve as ratio_at does: running maximum, interpolated, flat past the last ratio
    curve = {0.1: 0.01, 0.2: 0.04, 0.3: 0.02, 0.4: 0.2}
    assert loss_at(curve, 0.05) == pytest.approx(0.005) and loss_at(curve, 0.3) == pytest.approx(0.04)
    assert loss_at(curve, 0.35) == pytest.approx(0.12) and loss_at(curve, 0.9) == pytest.approx(0.2)
    assert loss_at(curve, ratio_at(curve, 0.05)) == pytest.approx(0.05)


def test_macs_target_is_met_closely_despite_the_rounding_of_widths(det):
    _, net = det
    # the neck's four 24-channel outputs lose 8 channels each (24 -> 16) at the first small loss, which takes
    # the net from 100 % to 75 % of its MACs at one threshold; every other group is too costly to prune
    curves = {name: {0.3: 0.1, 0.6: 0.2} if name.startswith("neck.output") else {0.5: 1.0}
              for name in prunable_roots(net)}
    ratios, pruned, kept = allocate(net, curves, 0.9, "l1", EXAMPLE)
    macs = count_macs(pruned, EXAMPLE)[0] / count_macs(net, EXAMPLE)[0]
    assert macs == pytest.approx(kept) and 0.86 <= kept <= 0.9  # one group pruned, three given back
    assert sorted(name for name, ratio in ratios.items() if ratio > 0) == ["neck.output.0"]
    assert ratios["neck.output.0"] == pytest.approx(1 / 3)  # the kept width's ratio: 16 of 24 channels


def test_sensitivity_grows_with_the_ratio_on_a_real_image(det):
    spec, net = det
    image = cv2.imread(str(SAMPLE))
    curves = measure(spec, net, [image], "l1", EXAMPLE, ratios=(0.1, 0.8), groups=["neck.lateral", "backbone.last"])
    for curve in curves.values():
        assert 0.0 <= curve[0.1] < curve[0.8] <= 1.0


def test_prune_cli_writes_a_loadable_smaller_pipeline(tmp_path, det):
    _, net = det
    cheap = {f"backbone.mid.{i}" for i in range(10, 15)} | {"backbone.last"}  # deep, wide: few MACs, many params
    curves = {name: {"0.25": 0.0 if name in cheap else 1.0, "0.5": 0.01 if name in cheap else 1.0}
              for name in prunable_roots(net)}
    sen = tmp_path / "sen.json"
    sen.write_text(json.dumps({"curves": curves}))
    out = tmp_path / "pruned"
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "--flops-target", "0.96",
                                    "--sensitivity", str(sen), "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "MACs" in run.output
    # params as `ocrlite profile` counts them (tests/test_profile.py): BN running statistics are not parameters
    assert "params      580,161 ->" in run.output
    manifest = json.loads((out / "det.json").read_text())
    ratios = manifest["slim"]["ratios"]
    assert 0.25 < ratios["backbone.mid.14"] < 0.5 and ratios["neck.lateral"] < 0.01  # the cheap groups give way
    assert 0.94 <= manifest["slim"]["macs"][1] / manifest["slim"]["macs"][0] <= 0.96  # the target, not far past it
    assert (out / "det.safetensors").stat().st_size < 0.85 * stage_spec("det").weights.stat().st_size
    assert not list(out.glob("*.pt")) and not list(out.glob("*.pth"))
    ocr = CliRunner().invoke(main, ["ocr", "--config", str(out / "ocr.yaml"), str(SAMPLE)])
    assert ocr.exit_code == 0, ocr.output
    texts = [line["text"] for line in json.loads(ocr.output)["lines"]]
    # the pruned detector, not fine-tuned, still finds the sample's lines (the colon's width varies with the box)
    assert "Invoice No.48213" in texts and "Total:42.50EUR" in [unicodedata.normalize("NFKC", t) for t in texts]
    assert "\nweights: ./det\n" in (out / "det.yaml").read_text()  # its own file, never a shipped "det"
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "det.yaml").write_bytes((out / "det.yaml").read_bytes())
    alone = CliRunner().invoke(main, ["detect", "--config", str(moved / "det.yaml"), str(SAMPLE)])
    assert alone.exit_code == 2 and "'./det' not found" in alone.output


def test_prune_cli_bad_input_is_one_line(tmp_path):
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "-o", str(tmp_path / "x" / "y")])
    assert run.exit_code == 2
    assert run.output.strip().count("\n") == 0 and "--images" in run.output
    assert not (tmp_path / "x").exists()  # a failed run leaves no empty output folder behind


@pytest.mark.parametrize("config", ["rec_ppocrv2.yaml", "cls_ppocr_mobile_v2.yaml"])
def test_a_stage_config_of_another_kind_is_named_as_such(tmp_path, config):
    """A recognizer's stage config was read as a pipeline: 'det.preprocess: unknown key 'height'; did you mean
    cls.preprocess.height or rec.preprocess.height?' (or its weights' preprocess), which points nowhere."""
    run = CliRunner().invoke(main, ["prune", "--config", config, "--images", str(SAMPLE.parent),
                                    "-o", str(tmp_path / "y")])
    assert run.exit_code == 2 and run.output.count("\n") == 1
    assert run.output.startswith(f"ocrlite: error: {config} is a {config[:3]} stage config; give a det stage config")
    assert not (tmp_path / "y").exists()


def test_a_detector_of_another_layout_is_one_line(tmp_path, preset_weights):
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv4.yaml", "--images", str(SAMPLE.parent),
                                    "-o", str(tmp_path / "y")])
    assert run.exit_code == 2 and "supports" in run.output and run.output.count("\n") == 1


def _curves_file(path: Path, net: torch.nn.Module, **meta) -> Path:
    path.write_text(json.dumps({**meta, "curves": {name: {"0.25": 0.0, "0.5": 0.01} for name in prunable_roots(net)}}))
    return path


def test_a_detector_without_weights_is_refused_before_anything_is_written(tmp_path, det):
    """Pruning a random net saved a random detector (valid checksum) that then read pages silently."""
    _, net = det
    sen = _curves_file(tmp_path / "sen.json", net)
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "--set", "weights=null",
                                    "--flops-target", "0.9", "--sensitivity", str(sen), "-o", str(out)])
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("ocrlite: error: det.weights: none given") and run.stderr.count("\n") == 1
    assert not out.exists()


def test_an_unwritable_sensitivity_file_is_refused_before_the_measurement(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "--images", str(SAMPLE.parent),
                                    "--sensitivity-images", "1", "--sensitivity", str(blocker / "sen.json"),
                                    "-o", str(out)])
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr == f"ocrlite: error: cannot write to {blocker}: {blocker} is a file, not a folder\n"
    assert not out.exists()
    with pytest.raises(OcrliteError, match=r"^cannot write the sensitivity curves .*file/sen.json: "):
        save_curves(blocker / "sen.json", {"neck.lateral": {0.5: 0.1}}, {})


@pytest.mark.parametrize(("curves", "reason"), [
    ({}, "no curves"),
    ({"backbone.mid.5": {}}, "backbone.mid.5: an empty curve"),
    ({"backbone.mid.99": {"0.5": 0.1}}, "unknown prunable group 'backbone.mid.99'; groups: backbone.mid.0, "),
    ({"neck.lateral": {"1.5": 0.0}}, "neck.lateral: ratio 1.5 -> 0; ratios must lie in (0, 1)"),
    ({"neck.lateral": {"0.5": float("nan")}},
     "neck.lateral: ratio 0.5 -> nan; ratios must lie in (0, 1) and losses be finite"),
    ([1, 2], 'expected {"curves": {group: {ratio: loss, ...}, ...}}'),
    ({"neck.lateral": {"half": 0.1}}, "could not convert string to float: 'half'"),
])
def test_bad_sensitivity_curves_are_one_line(tmp_path, curves, reason):
    sen = tmp_path / "sen.json"
    sen.write_text(json.dumps({"curves": curves}))
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "--sensitivity", str(sen),
                                    "-o", str(tmp_path / "out")])
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith(f"ocrlite: error: cannot read sensitivity curves {sen}: {reason}")
    assert run.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_curves_of_another_criterion_or_detector_are_refused(tmp_path, det, monkeypatch):
    import ocrlite.slim.run_prune as run_prune

    monkeypatch.setattr(run_prune, "allocate", _fixed_allocation([]))  # the allocation itself: tested above
    spec, net = det
    sen = _curves_file(tmp_path / "sen.json", net, criterion="fpgm", stage_sha256=stage_fingerprint(spec))
    args = ["prune", "--config", "det_ppocrv3.yaml", "--flops-target", "0.9", "--sensitivity", str(sen)]
    run = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a")])
    assert run.exit_code == 2 and run.stderr.count("\n") == 1
    assert "measured with --criterion fpgm, not l1" in run.stderr
    run = CliRunner().invoke(main, [*args, "--criterion", "fpgm", "--set", "postprocess.thresh=0.5",
                                    "-o", str(tmp_path / "b")])
    assert run.exit_code == 2 and "measured on another detector" in run.stderr and run.stderr.count("\n") == 1
    run = CliRunner().invoke(main, [*args, "--criterion", "fpgm", "-o", str(tmp_path / "c")])
    assert run.exit_code == 0, run.output
    assert load_curves(sen, prunable_roots(net), "fpgm", stage_fingerprint(spec))  # what was measured is read


def test_prune_cli_takes_a_preset(tmp_path, det, monkeypatch):
    """``--model`` means what it means on every command: the preset's pipeline, its detector pruned."""
    import ocrlite.slim.run_prune as run_prune

    monkeypatch.setattr(run_prune, "allocate", _fixed_allocation([]))  # the allocation itself: tested above
    _, net = det  # ppocr-v3's detector is det_ppocrv3, as the default preset's
    curves = {name: {"0.25": 0.0, "0.5": 0.01} for name in prunable_roots(net)}
    sen = tmp_path / "sen.json"
    sen.write_text(json.dumps({"curves": curves}))
    out = tmp_path / "pruned"
    run = CliRunner().invoke(main, ["prune", "--model", "ppocr-v3", "--flops-target", "0.9", "--sensitivity",
                                    str(sen), "-o", str(out), "--set", "det.postprocess.box_thresh=0.5",
                                    "--set", "pipeline.drop_score=0.4"])
    assert run.exit_code == 0, run.output
    pipeline = (out / "ocr.yaml").read_text()
    assert pipeline.startswith("# ocr_ppocr_v3.yaml with slimmed stages: det")
    assert "det: det.yaml" in pipeline and "rec: rec_ppocrv3.yaml" in pipeline
    # the --set values the stage was pruned and measured with are the ones written
    assert yaml.safe_load((out / "det.yaml").read_text())["postprocess"]["box_thresh"] == 0.5
    assert yaml.safe_load(pipeline)["pipeline"]["drop_score"] == 0.4
    run = CliRunner().invoke(main, ["prune", "--model", "ppocr-v3", "--config", "det_ppocrv3.yaml", "-o", str(out)])
    assert run.exit_code == 2 and "--model and --config are exclusive" in run.output


@pytest.mark.parametrize("target", ["1.5", "1", "0", "-1"])
def test_out_of_range_flops_target_is_refused_before_any_work(tmp_path, target):
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "--flops-target", target,
                                    "--images", str(SAMPLE.parent), "-o", str(out)])
    assert run.exit_code == 2
    assert f"Invalid value for '--flops-target': {float(target)} is not in the range 0.0<x<1.0" in run.output
    assert not out.exists()  # no net built, no sensitivity measured or written


@pytest.mark.parametrize("command", [["prune", "--flops-target", "0.9"], ["quantize", "--calib", str(SAMPLE.parent)]])
def test_slimming_into_the_folder_it_reads_from_is_refused(tmp_path, det, command):
    """-o OUT --config OUT/det.yaml (a pruned net pruned again, a fine-tune's export quantized beside it) replaced
    the model being slimmed: prune wrote over the parent's det.safetensors (and printed its file row as '785,148 ->
    785,148 (+0.0%)', the size read after the replacement), quantize over its det.yaml. One line, exit 2, before
    any work; the folder is left as it was."""
    spec, net = det
    out = tmp_path / "model"
    out.mkdir()
    (out / "det.safetensors").write_bytes(spec.weights.read_bytes())
    (out / "det.json").write_bytes(spec.weights.with_suffix(".json").read_bytes())
    (out / "det.yaml").write_text(yaml.safe_dump({"model": spec.model, "weights": "./det"}))
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    sen = _curves_file(tmp_path / "sen.json", net)
    run = CliRunner().invoke(main, [*command, "--config", str(out / "det.yaml"), "--sensitivity", str(sen),
                                    "-o", str(out)] if command[0] == "prune" else
                             [*command, "--config", str(out / "det.yaml"), "-o", str(out)])
    assert (run.exit_code, run.stdout) == (2, ""), run.output
    assert run.stderr.startswith(f"ocrlite: error: -o {out}: det.") and run.stderr.count("\n") == 1
    assert "is a file the det stage is read from, which this run would replace" in run.stderr
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def _fixed_allocation(given: list) -> Callable:
    """``allocate`` at fixed ratios, keeping the curves it is given (the allocation itself:
    test_macs_target_is_met_closely_despite_the_rounding_of_widths)."""
    def allocate(net, curves, target, criterion, example):
        given.append(curves)
        return {"neck.lateral": 0.25}, prune_net(net, {"neck.lateral": 0.25}, criterion, example), 0.9
    return allocate


def test_the_curves_record_the_images_they_were_measured_on(tmp_path, det, monkeypatch):
    """The sensitivity JSON said "images": 4 (the --sensitivity-images asked for) when the folder held 2, and never
    which images: curves whose source no one can tell (docs/slim.md's earlier run). It names each image measured
    on, with its SHA-256."""
    import hashlib

    import ocrlite.slim.run_prune as run_prune

    _, net = det
    folder = tmp_path / "pages"
    folder.mkdir()
    page = cv2.imread(str(SAMPLE))
    for name in ("b.png", "a.png"):
        cv2.imwrite(str(folder / name), page)
    seen = []

    def measure(spec, net, images, criterion, example):  # the measurement itself: test_sensitivity_grows_...
        seen.append(len(images))
        return {name: {0.25: 0.0, 0.5: 0.01} for name in prunable_roots(net)}

    monkeypatch.setattr(run_prune, "measure", measure)
    monkeypatch.setattr(run_prune, "allocate", _fixed_allocation([]))
    run = CliRunner().invoke(main, ["prune", "--config", "det_ppocrv3.yaml", "--flops-target", "0.9", "--images",
                                    str(folder), "--sensitivity-images", "4", "-o", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    recorded = json.loads((tmp_path / "out" / "sensitivity.json").read_text())["images"]
    digest = hashlib.sha256((folder / "a.png").read_bytes()).hexdigest()
    assert seen == [2] and recorded == [{"path": str((folder / name).resolve()), "sha256": digest}
                                        for name in ("a.png", "b.png")]


def test_a_rerun_into_its_folder_reuses_the_curves_of_the_same_images(tmp_path, det, monkeypatch):
    """A rerun into OUT (another --flops-target, or after Ctrl-C during the allocation) measured the sensitivity
    again, for minutes, to the same curves. Curves of the same detector, criterion and images are reused (and
    the summary says so); another image is measured again."""
    import ocrlite.slim.run_prune as run_prune

    folder = tmp_path / "pages"
    folder.mkdir()
    page = cv2.imread(str(SAMPLE))
    cv2.imwrite(str(folder / "a.png"), page)
    measured, given = [], []

    def measure(spec, net, images, criterion, example):  # the measurement itself: test_sensitivity_grows_...
        measured.append(len(measured))
        return {name: {0.25: 0.01 * len(measured), 0.5: 0.5} for name in prunable_roots(net)}

    monkeypatch.setattr(run_prune, "measure", measure)
    monkeypatch.setattr(run_prune, "allocate", _fixed_allocation(given))
    out = tmp_path / "out"
    args = ["prune", "--config", "det_ppocrv3.yaml", "--images", str(folder), "-o", str(out)]
    first = CliRunner().invoke(main, [*args, "--flops-target", "0.9"])
    again = CliRunner().invoke(main, [*args, "--flops-target", "0.8"])
    assert first.exit_code == 0 and again.exit_code == 0, again.output
    assert measured == [0] and given[0] == given[1]
    assert f"curves       {out / 'sensitivity.json'} measured" in first.stdout
    assert "sensitivity.json reused: same detector, criterion, images" in again.stdout
    cv2.imwrite(str(folder / "a.png"), page[:200])  # another image: measured again
    assert CliRunner().invoke(main, [*args, "--flops-target", "0.8"]).exit_code == 0
    assert measured == [0, 1] and given[2] != given[0]
    assert CliRunner().invoke(main, [*args, "--flops-target", "0.8", "--criterion", "fpgm"]).exit_code == 0
    assert measured == [0, 1, 2]  # another criterion: measured again


def test_a_run_stopped_while_writing_its_files_leaves_the_previous_set_whole(tmp_path, det, monkeypatch):
    """The weights, manifest and stage config were written into OUT one by one: an error (or a kill) after the first
    of them left a rerun's new weights and manifest beside the previous run's det.yaml and ocr.yaml. The set is
    written into a temp folder first and moved in only when whole."""
    from ocrlite.slim import run_prune

    _, net = det
    sen = tmp_path / "sen.json"
    sen.write_text(json.dumps({"curves": {name: {"0.25": 0.0, "0.5": 0.01} for name in prunable_roots(net)}}))
    out = tmp_path / "pruned"
    monkeypatch.setattr(run_prune, "allocate", _fixed_allocation([]))  # the allocation itself: tested above
    first = run_prune.prune_stage("det_ppocrv3.yaml", out, 0.96, sensitivity=sen)
    written = {path.name: path.read_bytes() for path in out.iterdir()}
    assert set(written) == {"det.safetensors", "det.json", "det.yaml", "ocr.yaml"}

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_prune, "write_pipeline", no_space)  # after the stage's files, before the pipeline
    with pytest.raises(OSError, match="No space left"):
        run_prune.prune_stage("det_ppocrv3.yaml", out, 0.95, sensitivity=sen)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == written  # no file replaced, no temp left
    spec = stage_spec("det", str(out / "det.yaml"))
    assert spec.build_net().state_dict().keys() == first.net.state_dict().keys()  # the first run's set still loads
