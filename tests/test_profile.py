"""`ocrlite profile`: our hook MAC counter vs ptflops and published figures; the command's output."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from torch import nn

from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.models import build_model
from ocrlite.models.zoo.crnn_vgg import CRNNVGG
from ocrlite.profile import count_macs, parse_input, profile_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _net(config: str) -> nn.Module:
    return build_model(yaml.safe_load((CONFIGS / config).read_text(encoding="utf-8"))["model"]).eval()


# Conv/linear nets only: ptflops' aten backend counts convolutions and matmuls, plus one add per output
# element for a bias, which our counter reports apart as bias_adds.
CROSS_CHECK = [
    "det_ppocrv3.yaml",
    "zoo/mobilenet_v2_det.yaml",
    "zoo/pp_lcnet_imagenet.yaml",
    "zoo/shufflenet_v2_det.yaml",
    "zoo/squeezenet1_0_imagenet.yaml",
]


@pytest.mark.parametrize("config", CROSS_CHECK)
def test_mac_counter_matches_ptflops(config: str) -> None:
    ptflops = pytest.importorskip("ptflops", reason="ptflops is in the dev extra: pip install -e .[dev]")
    net = _net(config)
    macs, bias_adds, _ = count_macs(net, torch.zeros(1, 3, 32, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference, _ = ptflops.get_model_complexity_info(
            net, (3, 32, 64), as_strings=False, print_per_layer_stat=False, backend="aten"
        )
    assert macs + bias_adds == reference


# Published multiply-adds at 224x224 (papers / torchvision): our counts within 1 %.
PUBLISHED_MACS = {
    "zoo/mobilenet_v1_imagenet.yaml": 569e6,
    "zoo/mobilenet_v2_imagenet.yaml": 300e6,
    "zoo/mobilenet_v3_large_imagenet.yaml": 219e6,
    "zoo/shufflenet_v2_imagenet.yaml": 146e6,
}


@pytest.mark.parametrize("config", sorted(PUBLISHED_MACS))
def test_macs_match_published_multiply_adds(config: str) -> None:
    macs, _, _ = count_macs(_net(config), torch.zeros(1, 3, 224, 224))
    assert abs(macs - PUBLISHED_MACS[config]) / PUBLISHED_MACS[config] < 0.01, macs


def test_lstm_and_matmul_macs() -> None:
    lstm = nn.LSTM(16, 8, num_layers=2, bidirectional=True, batch_first=True)
    per_step = 2 * 4 * 8 * (16 + 8) + 2 * 4 * 8 * (16 + 8)  # layer 2 sees 2 x 8 = 16 inputs too
    assert count_macs(lstm, torch.zeros(2, 7, 16))[0] == 2 * 7 * per_step

    class Attention(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            weights = (q @ q.transpose(-1, -2)).softmax(-1)
            return torch.matmul(weights, q) + nn.functional.scaled_dot_product_attention(q, q, q)

    macs, _, rows = count_macs(Attention(), torch.zeros(2, 5, 8))
    assert macs == 2 * 5 * 5 * 8 * 2 + 2 * 5 * 5 * (8 + 8)
    assert rows[-1].macs == macs


def test_seed_crnn_weight_sizes_and_table() -> None:
    """torchsummary in the seed: Params size (MB) 21.18 plain, 2.98 depthwise-separable."""
    plain = profile_model(CRNNVGG(1, separable=False), (1, 32, 320), runs=0)
    separable = profile_model(CRNNVGG(1, separable=True), (1, 32, 320), runs=0)
    assert (round(plain.weight_mb, 2), round(separable.weight_mb, 2)) == (21.18, 2.98)
    assert (plain.params, separable.params) == (5_551_360, 781_450)
    assert separable.macs < plain.macs / 8
    convs = [r for r in plain.rows if r.type == "Conv2d"]
    assert [r.params for r in convs] == [640, 73_856, 295_168, 590_080, 1_180_160, 2_359_808, 1_049_088]
    assert convs[-1].shape == "1x512x1x81"


def _profile(*args: str, threads: int | None = None) -> tuple[int, str, str]:
    group = ["--threads", str(threads)] if threads else []  # --threads belongs to the group, as on every command
    result = CliRunner().invoke(main, [*group, "profile", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("config", "params"),
    [("det_ppocrv3.yaml", 580_161), ("cls_ppocr_mobile_v2.yaml", 129_356), ("rec_ppocrv2.yaml", 2_066_433)],
)
def test_profile_command_prints_totals_of_the_default_models(config: str, params: int) -> None:
    code, out, _ = _profile("--config", config, "--runs", "1", "--input", "3x64x64"
                            if config.startswith("det") else "3x32x320" if config.startswith("rec") else "3x48x192",
                            threads=1)
    assert code == 0
    assert f"params     {params:,}" in out
    assert "MACs" in out and "weights" in out
    assert "median of 1 run, 1 thread)" in out


def test_profile_per_layer_overrides_and_pipeline() -> None:
    code, out, _ = _profile("--config", "zoo/mobilenet_v1_imagenet.yaml", "--input", "3x64x64", "--runs", "0",
                            "--per-layer", "--set", "model.backbone.scale=0.25")
    assert code == 0
    assert out.splitlines()[0].split() == ["layer", "type", "output", "shape", "params", "MACs"]
    assert ["head.fc.1", "Linear", "1x1000"] in [line.split()[:3] for line in out.splitlines()]
    assert "latency" not in out
    full = profile_model(_net("zoo/mobilenet_v1_imagenet.yaml"), (3, 64, 64), runs=0).params
    assert f"params     {full:,}" not in out
    code, out, _ = _profile("--config", "ocr_ppocr_v2.yaml", "--runs", "0")  # per-stage default inputs
    assert code == 0 and out.count("params ") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "3x640"], "--input must look like CxHxW"),
        (["--set", "model.backbone.scal=1"], "unknown key(s) scal; allowed: in_channels, scale"),
        (["--input", "3x8x8"], "forward pass failed on input 3x8x8"),
    ],
)
def test_profile_errors_are_one_line(args: list[str], message: str) -> None:
    code, out, err = _profile("--config", "zoo/mobilenet_v2_det.yaml", "--runs", "0", *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_parse_input() -> None:
    assert parse_input("3x640x640") == (3, 640, 640)
    assert parse_input("2X1x32x320") == (2, 1, 32, 320)
    with pytest.raises(ConfigError):
        parse_input("0x3x3")


@pytest.mark.parametrize("text", ["", "3x32x3_20", " 3x32x320", "3x32x320\n", "+3x32x320", "3x32x320x1x1", "3xx32"])
def test_an_input_size_not_written_as_cxhxw_is_refused(text: str) -> None:
    """Python's int() let through digits with underscores and spaces or signs around them (``--input 3x32x3_20``
    profiled 3x32x320), and an empty ``--input ""`` was taken for no --input at all."""
    code, out, err = _profile("--config", "rec_ppocrv2.yaml", "--runs", "0", "--input", text)
    assert (code, out) == (2, "")
    assert err == ("ocrlite: error: --input must look like CxHxW or NxCxHxW with positive sizes, "
                   f"got {text!r}\n")


def test_profile_takes_pipeline_tree_keys_on_a_stage_config() -> None:
    """``--set det.KEY`` means on a det stage config what ``KEY`` means there, as on detect/export/prune."""
    args = ("--config", "det_ppocrv3.yaml", "--input", "3x64x64", "--runs", "0")
    code, prefixed, err = _profile(*args, "--set", "det.model.backbone.scale=0.35")
    assert (code, err) == (0, "")
    assert prefixed == _profile(*args, "--set", "model.backbone.scale=0.35")[1]
    assert "params     580,161" not in prefixed  # the override was applied
    code, out, err = _profile(*args, "--set", "rec.model.backbone.scale=0.35")
    assert (code, out) == (2, "")
    assert err == ("ocrlite: error: override 'rec.model.backbone.scale=0.35' does not apply to the det stage "
                   "config det_ppocrv3.yaml\n")


def test_a_line_height_the_recognizer_cannot_take_is_one_line() -> None:
    code, out, err = _profile("--config", "rec_ppocrv2.yaml", "--runs", "0", "--input", "3x64x320")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "forward pass failed on input 3x64x320: im2seq needs a feature map of height 1" in err


@pytest.mark.parametrize(("override", "message"), [
    ("pipeline.drop_score=5", "pipeline.drop_score: 5.0 is out of range; allowed: 0.0..1.0"),
    ("page.postprocess.thresh=7", "page.postprocess.thresh: 7.0 is out of range; allowed: 0.0..1.0"),
    ("det.postprocess.box_thresh=3", "det.postprocess.box_thresh: 3.0 is out of range; allowed: 0.0..1.0"),
])
def test_profile_checks_every_section_of_a_pipeline_as_the_other_commands_do(override: str, message: str) -> None:
    code, out, err = _profile("--runs", "0", "--stage", "det", "--input", "3x64x64", "--set", override)
    assert (code, out, err) == (2, "", f"ocrlite: error: {message} (from the override {override!r})\n")


def test_a_stage_running_a_given_onnx_file_says_so_with_the_file_size_and_latency(tmp_path: Path) -> None:
    """A stage on onnxruntime with its own file (an ``ocrlite quantize`` int8 file) was profiled as the fp32 torch
    net without a word: the report names the file the stage runs, its size and its onnxruntime latency."""
    pytest.importorskip("onnxruntime")
    from ocrlite.backends.export import export_stage
    from ocrlite.stages import stage_spec

    onnx_file = export_stage(stage_spec("cls"), tmp_path / "cls.probs.onnx", "probs")
    stage = yaml.safe_load((CONFIGS / "cls_ppocr_mobile_v2.yaml").read_text(encoding="utf-8"))
    config = tmp_path / "cls.yaml"
    config.write_text(yaml.safe_dump({**stage, "backend": "onnxruntime", "onnx": onnx_file.name}), encoding="utf-8")
    code, out, err = _profile("--config", str(config), "--runs", "1", threads=1)
    assert (code, err) == (0, "")
    size = onnx_file.stat().st_size / 2**20
    line = out.splitlines()[-1]
    assert line.startswith(f"  runs as    cls.probs.onnx on onnxruntime: file {size:.2f} MB, latency ")
    assert line.endswith(" ms (median of 1 run, 1 thread); params and MACs above are this net's, weights and "
                         "latency the fp32 torch net's")
    code, out, err = _profile("--config", str(config), "--runs", "1", "--input", "3x48x160", threads=1)
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"ocrlite: error: {config}: cls.probs.onnx failed on input 1x3x48x160: ")


@pytest.mark.parametrize("config, line", [("rec_ppocrv2.yaml", "input 1x3x32x320"),
                                          ("cls_ppocr_mobile_v2.yaml", "input 1x3x48x192"),
                                          ("det_ppocrv3.yaml", "input 1x3x640x640")])
def test_the_default_input_is_the_stages_resolved_size(tmp_path: Path, config: str, line: str) -> None:
    """A stage config without a preprocess section (its size from the weights' manifest, as every command reads
    it) was profiled at 3x224x224: a recognizer's forward failed ('im2seq needs a feature map of height 1'), a
    classifier's and a detector's MACs were printed for an input they never see."""
    raw = yaml.safe_load((CONFIGS / config).read_text(encoding="utf-8"))
    del raw["preprocess"]
    (tmp_path / config).write_text(yaml.safe_dump(raw), encoding="utf-8")
    shipped = CliRunner().invoke(main, ["profile", "--config", config, "--runs", "0"])
    bare = CliRunner().invoke(main, ["profile", "--config", str(tmp_path / config), "--runs", "0"])
    assert bare.exit_code == 0, bare.output
    assert line in bare.stdout.splitlines()[0]
    assert bare.stdout.splitlines()[1:] == shipped.stdout.splitlines()[1:]  # the same params and MACs


def test_the_counts_of_runs_and_threads_are_singular_when_one() -> None:
    """The latency line said "median of 1 runs, 1 threads"."""
    net = _net("zoo/mobilenet_v1_imagenet.yaml")
    assert "(CPU, median of 1 run, 1 thread)" in profile_model(net, (3, 32, 32), runs=1, threads=1).totals()
    assert "(CPU, median of 2 runs, 2 threads)" in profile_model(net, (3, 32, 32), runs=2, threads=2).totals()


def test_input_on_a_pipeline_needs_the_stage_it_is_for() -> None:
    """--input gave one size to every net of a pipeline: the detector, the classifier and the recognizer were all
    profiled on the same CxHxW (a 3x32x320 line as a page, or a recognizer failing on a 640x640 page). It is refused
    without --stage; with it, that one net is profiled at that size."""
    code, out, err = _profile("--config", "ocr_ppocr_v2.yaml", "--runs", "0", "--input", "3x32x320")
    assert (code, out) == (2, "")
    assert err == ("ocrlite: error: --input is one net's size and the pipeline ocr_ppocr_v2.yaml has 3 "
                   "(det, cls, rec); add --stage det|cls|rec to profile one at that size, or leave --input out\n")
    code, out, err = _profile("--config", "ocr_ppocr_v2.yaml", "--runs", "0", "--stage", "rec", "--input", "3x32x160")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "ocr_ppocr_v2.yaml [rec]  input 1x3x32x160" and out.count("params ") == 1
    code, out, err = _profile("--config", "ocr_ppocr_v2.yaml", "--runs", "0", "--stage", "cls")  # its own size
    assert (code, out.splitlines()[0]) == (0, "ocr_ppocr_v2.yaml [cls]  input 1x3x48x192")
    code, out, err = _profile("--config", "rec_ppocrv2.yaml", "--runs", "0", "--stage", "det")
    assert (code, out) == (2, "")
    assert err == "ocrlite: error: --stage det: rec_ppocrv2.yaml is a rec stage config, not a det one\n"


@pytest.mark.parametrize(("override", "message"), [
    ("preprocess.height=abc", "zoo/mobilenet_v1_imagenet.yaml.preprocess.height: expected an integer, got 'abc'"),
    ("preprocess=5", "zoo/mobilenet_v1_imagenet.yaml.preprocess: expected a mapping, got 5"),
    ("preprocess.heigth=160", "zoo/mobilenet_v1_imagenet.yaml.preprocess: unknown key 'heigth'; allowed: height, "
                              "width, mean, std"),
    ("weigths=null", "zoo/mobilenet_v1_imagenet.yaml: unknown key 'weigths'; allowed: model, weights, preprocess, "
                     "postprocess, backend, train, onnx"),
])
def test_a_net_of_no_stage_kind_has_its_keys_and_input_size_checked(override: str, message: str) -> None:
    """A zoo net with an ImageNet head (no det/cls/rec head) was profiled from its raw mapping: a misspelt key was
    ignored in silence (the net profiled at 224x224 still), a size of the wrong type was a traceback."""
    code, out, err = _profile("--config", "zoo/mobilenet_v1_imagenet.yaml", "--runs", "0", "--set", override)
    assert (code, out, err) == (2, "", f"ocrlite: error: {message} (from the override {override!r})\n")


def test_a_net_of_no_stage_kind_is_profiled_at_its_preprocess_size(tmp_path: Path) -> None:
    code, out, err = _profile("--config", "zoo/mobilenet_v1_imagenet.yaml", "--runs", "0",
                              "--set", "preprocess.height=160")
    assert (code, err, out.splitlines()[0]) == (0, "", "zoo/mobilenet_v1_imagenet.yaml  input 1x3x160x224")
    config = tmp_path / "net.yaml"
    config.write_text((CONFIGS / "zoo/mobilenet_v1_imagenet.yaml").read_text(encoding="utf-8")
                      .replace("  height: 224", "  heigth: 160"), encoding="utf-8")
    code, out, err = _profile("--config", str(config), "--runs", "0")
    assert (code, out) == (2, "")
    assert err == (f"ocrlite: error: {config}.preprocess: unknown key 'heigth'; allowed: height, width, mean, std "
                   f"(in {config})\n")


def test_the_page_classifier_is_profiled_at_its_crop() -> None:
    """The page orientation classifier's config was profiled at a detector's 3x640x640, eight times the MACs of the
    224x224 squares it reads (preprocess.crop)."""
    code, out, err = _profile("--config", "page_cls_pplcnet.yaml", "--runs", "0")
    assert (code, err, out.splitlines()[0]) == (0, "", "page_cls_pplcnet.yaml  input 1x3x224x224")
    code, out, err = _profile("--config", "page_cls_pplcnet.yaml", "--runs", "0", "--set", "preprocess.crop=160")
    assert (code, err, out.splitlines()[0]) == (0, "", "page_cls_pplcnet.yaml  input 1x3x160x160")
