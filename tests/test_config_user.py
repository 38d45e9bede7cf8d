"""A user's own configs: copies of the shipped ones in their folder, edited, and the mistakes made on the way."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ocrlite.cli import main
from ocrlite.errors import ConfigError, WeightsError
from ocrlite.predictors import TextRecognizer
from ocrlite.presets import PRESETS, preset_status
from ocrlite.stages import load_stage_config, pipeline_spec, stage_spec

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"


def _edited_copy(folder: Path, name: str, old: str, new: str) -> Path:
    """``configs/name`` copied into ``folder`` with ``old`` replaced by ``new``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (CONFIG_DIR / name).read_text()
    assert old in text
    path = folder / name
    path.write_text(text.replace(old, new))
    return path


def test_defaults_and_presets_never_read_an_edited_copy_in_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user edits copies of the shipped configs in their folder: runs without --config (or with --model) still
    use the shipped configs, not a file of the same name that happens to be in the working folder."""
    shipped_status = preset_status(PRESETS["ppocr-v3"])
    _edited_copy(tmp_path, "det_ppocrv3.yaml", "box_thresh: 0.6", "box_thresh: 0.99")
    _edited_copy(tmp_path, "ocr_ppocr_v2.yaml", "drop_score: 0.5", "drop_score: 0.9")
    _edited_copy(tmp_path, "page_cls_pplcnet.yaml", "  thresh: 0.3", "  thresh: 0.7")
    _edited_copy(tmp_path, "ocr_ppocr_v3.yaml", "rec: rec_ppocrv3.yaml", "rec: rec_ppocrv2.yaml")
    monkeypatch.chdir(tmp_path)
    default = pipeline_spec()
    assert (default.det.post.box_thresh, default.settings.drop_score, default.page.post.thresh) == (0.6, 0.5, 0.3)
    assert stage_spec("det").post.box_thresh == 0.6
    v3 = pipeline_spec(model="ppocr-v3")
    assert (v3.det.post.box_thresh, v3.rec.pre.height) == (0.6, 48)  # not the v2 recognizer of the edited copy
    assert preset_status(PRESETS["ppocr-v3"]) == shipped_status  # ocrlite models
    # a pipeline given explicitly reads its stage configs from its own folder first
    assert pipeline_spec("ocr_ppocr_v2.yaml").det.post.box_thresh == 0.99
    elsewhere = tmp_path / "exp"
    _edited_copy(elsewhere, "det_ppocrv3.yaml", "box_thresh: 0.6", "box_thresh: 0.42")
    shutil.copy(CONFIG_DIR / "ocr_ppocr_v2.yaml", elsewhere)
    assert pipeline_spec(elsewhere / "ocr_ppocr_v2.yaml").det.post.box_thresh == 0.42


def test_a_stage_file_a_pipeline_names_that_is_missing_names_the_entry(tmp_path: Path) -> None:
    pipe = tmp_path / "mine.yaml"
    pipe.write_text("det: my_det.yaml\nrec: rec_ppocrv2.yaml\n")
    with pytest.raises(ConfigError, match=rf"^mine.yaml: det: config file not found: my_det.yaml \(looked in "
                                          rf"{tmp_path}, the working folder and the shipped configs\)$"):
        pipeline_spec(pipe)


def test_a_batch_size_is_the_recognizer_s_only_and_reaches_it() -> None:
    """The classifier reads all crops at once (its batches cannot change a result): a batch_size there would be
    ignored, so it is refused; the recognizer's is read in batches of the size given."""
    with pytest.raises(ConfigError, match=r"^cls.preprocess: unknown key 'batch_size'; did you mean "
                                          r"rec.preprocess.batch_size\? allowed: height, width, mean, std "
                                          r"\(from the override 'cls.preprocess.batch_size=2'\)$"):
        pipeline_spec(overrides=["cls.preprocess.batch_size=2"])
    spec = pipeline_spec(overrides=["rec.preprocess.batch_size=2"]).rec
    sizes: list[int] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        sizes.append(len(batch))
        return np.zeros((len(batch), 4, len(spec.charset or ())), np.float32)

    crops = [np.full((32, 100 + 10 * i, 3), 255, np.uint8) for i in range(5)]
    TextRecognizer(runner, spec.pre, spec.charset)(crops)
    assert sorted(sizes) == [1, 2, 2]


def test_a_charset_that_is_not_utf8_text_is_one_config_error(tmp_path: Path) -> None:
    """It was a UnicodeDecodeError traceback."""
    (tmp_path / "latin1.txt").write_bytes("a\nb\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^rec.postprocess.charset: cannot read .*latin1.txt: 'utf-8' codec can't "
                                          r"decode byte 0xe9"):
        stage_spec("rec", overrides=[f"postprocess.charset={tmp_path / 'latin1.txt'}"])
    with pytest.raises(ConfigError, match=r"^rec.postprocess.charset: charset 'nope.txt' not found in "):
        stage_spec("rec", overrides=["postprocess.charset=nope.txt"])


@pytest.mark.parametrize(("lines", "space", "message"), [
    (100, "true", "gives 102 classes (the CTC blank, 100 characters and a space), but rec_ppocrv2.safetensors was "
                  "trained with 6625 (head.fc.1.weight (6625, 96)); use its own charset (and use_space_char)"),
    (6623, "false", "gives 6624 classes (the CTC blank, 6623 characters), but rec_ppocrv2.safetensors was trained "
                    "with 6625 (head.fc.1.weight (6625, 96)); use its own charset (and use_space_char)"),
])
def test_a_charset_of_another_size_than_the_weights_is_named(tmp_path: Path, lines: int, space: str,
                                                             message: str) -> None:
    """It was ``rec_ppocrv2.safetensors does not fit the net: shape mismatch: head.fc.1.bias ...``, which does not
    say that the charset (or use_space_char) is what is wrong."""
    shipped = (Path(__file__).resolve().parents[1] / "ocrlite" / "weights" / "ppocr_keys_v1.txt").read_text()
    charset = tmp_path / "mine.txt"
    charset.write_text("\n".join(shipped.splitlines()[:lines]) + "\n")
    spec = stage_spec("rec", overrides=[f"postprocess.charset={charset}", f"postprocess.use_space_char={space}"])
    with pytest.raises(ConfigError) as error:
        spec.build_net()
    assert str(error.value) == f"rec.postprocess.charset: {charset} {message}"


@pytest.mark.parametrize(("args", "expected"), [
    (["recognize", "--config", "det_ppocrv3.yaml", "CROP"],
     "det_ppocrv3.yaml is a det stage config; give a cls or rec stage config or a pipeline config"),
    (["recognize", "--no-cls", "--config", "cls_ppocr_mobile_v2.yaml", "CROP"],
     "cls_ppocr_mobile_v2.yaml is a cls stage config; give a rec stage config or a pipeline config "
     "(from --no-cls)"),
    (["eval", "rec", "--data", "DATA", "--config", "det_ppocrv3.yaml"],
     "det_ppocrv3.yaml is a det stage config; give a rec stage config or a pipeline config"),
    (["eval", "cls", "--data", "DATA", "--config", "rec_ppocrv2.yaml"],
     "rec_ppocrv2.yaml is a rec stage config; give a cls stage config or a pipeline config"),
])
def test_a_stage_config_the_command_does_not_run_is_refused(tmp_path: Path, args: list[str], expected: str) -> None:
    """``recognize``/``eval rec`` with a det stage config read with the default recognizer, exit 0: the config the
    user gave was silently unused (eval even named its row after it)."""
    crop = tmp_path / "word.png"
    Image.open(SAMPLE).crop((40, 95, 350, 135)).save(crop)
    (tmp_path / "labels.txt").write_text("word.png\tInvoice No.48213\n")
    result = CliRunner().invoke(main, [{"CROP": str(crop), "DATA": str(tmp_path)}.get(a, a) for a in args])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"ocrlite: error: {expected}"]


@pytest.mark.parametrize(("height", "message"), [
    (16, "rec.preprocess.height: 16 is too small for this net (its feature map runs out); the smallest that works "
         "is 17"),
    (49, "rec.preprocess.height: 49 is too large for this net (its feature map keeps too many rows); the largest "
         "that works is 48"),
])
def test_a_line_height_the_recognizer_cannot_take_is_one_line_when_it_is_built(
        tmp_path: Path, height: int, message: str) -> None:
    """The shipped CRNN's strides bring 17 to 48 px lines to the one row its sequence reads (found by trying
    every height): another height was an "unexpected RuntimeError" (or ValueError) line per image, exit 1, found at
    the first text line; it is now the classifier's check (``check_input_size``) when the net is built. The edges
    found read a real crop."""
    crop = tmp_path / "line.png"
    Image.open(SAMPLE).crop((40, 95, 350, 135)).save(crop)
    for args in (["ocr", str(SAMPLE)], ["recognize", str(crop), "--no-cls"]):
        result = CliRunner().invoke(main, [*args, "--set", f"rec.preprocess.height={height}"])
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"ocrlite: error: {message}\n"), args
    edge = int(message.rsplit(" ", 1)[1])
    works = CliRunner().invoke(main, ["recognize", str(crop), "--no-cls", "--set", f"rec.preprocess.height={edge}"])
    assert works.exit_code == 0 and works.stdout.startswith(f"{crop}\t"), works.output


def test_a_yaml_syntax_error_says_what_and_on_which_line(tmp_path: Path) -> None:
    """A tab used to indent was ``cannot read config x.yaml: while scanning for the next token``: neither the tab
    nor the line."""
    config = tmp_path / "det.yaml"
    config.write_text((CONFIG_DIR / "det_ppocrv3.yaml").read_text().replace("  box_thresh", "\tbox_thresh"))
    with pytest.raises(ConfigError) as error:
        stage_spec("det", config)
    assert str(error.value) == (f"cannot read config {config}: found character '\\t' that cannot start any token "
                                "(line 14)")


def test_file_paths_given_with_set_are_from_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--set rec.weights=./mine/rec`` was looked up in the shipped configs' folder (the default pipeline's), so
    only an absolute path worked; a bare shipped name still finds the shipped file."""
    mine = tmp_path / "mine"
    mine.mkdir()
    weights = Path(__file__).resolve().parents[1] / "ocrlite" / "weights"
    for name in ("rec_ppocrv2_en.safetensors", "rec_ppocrv2_en.json", "ppocr_keys_v1.txt"):
        shutil.copy(weights / name, mine / name.replace("ppocr_keys_v1", "keys"))
    monkeypatch.chdir(tmp_path)
    spec = pipeline_spec(overrides=["rec.weights=./mine/rec_ppocrv2_en", "rec.postprocess.charset=mine/keys.txt"]).rec
    assert spec.weights == mine / "rec_ppocrv2_en.safetensors"
    assert stage_spec("rec", overrides=["weights=mine/rec_ppocrv2_en"]).weights == spec.weights
    assert pipeline_spec(overrides=["rec.weights=rec_ppocrv2_en"]).rec.weights == weights / "rec_ppocrv2_en.safetensors"
    with pytest.raises(ConfigError, match=rf"^rec.onnx: file not found: {tmp_path}/rec.onnx "
                                             r"\(from the override 'rec.onnx=rec.onnx'\)$"):
        pipeline_spec(overrides=["rec.backend=onnxruntime", "rec.onnx=rec.onnx"])


def test_a_stage_set_to_a_config_file_reads_it_as_the_pipeline_file_would(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rec: rec_ppocrv2_en.yaml`` works in a pipeline file, but ``--set rec=rec_ppocrv2_en.yaml`` said "rec:
    expected a stage mapping (model, weights, ...), got 'rec_ppocrv2_en.yaml'"."""
    weights = Path(__file__).resolve().parents[1] / "ocrlite" / "weights"
    spec = pipeline_spec(overrides=["rec=rec_ppocrv2_en.yaml", "rec.preprocess.batch_size=4"]).rec
    assert spec.weights == weights / "rec_ppocrv2_en.safetensors" and spec.pre.batch_size == 4
    monkeypatch.chdir(tmp_path)
    _edited_copy(tmp_path, "rec_ppocrv2_en.yaml", "width: 320", "width: 160\n  batch_size: 3")
    assert pipeline_spec("ocr_ppocr_v3.yaml", ["rec=./rec_ppocrv2_en.yaml"]).rec.pre.batch_size == 3
    run = CliRunner().invoke(main, ["ocr", str(SAMPLE), "--format", "txt", "--set", "rec=rec_ppocrv2_en.yaml"])
    assert run.exit_code == 0 and run.stdout.splitlines()[:2] == ["OCRLITE 2026", "Invoice No. 48213"], run.output
    with pytest.raises(ConfigError, match=r"^rec: config file not found: nope.yaml "
                                          r"\(from the override 'rec=nope.yaml'\)$"):
        pipeline_spec(overrides=["rec=nope.yaml"])


def test_weights_not_found_name_the_key_and_where_it_was_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--set det.weights=./x`` said only "weights '/.../x' not found in /...", naming neither the key nor the
    override (a charset or onnx file not found named both)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match=rf"^det.weights: weights '{tmp_path}/x' not found in {tmp_path} "
                                           r"\(from the override 'det.weights=./x'\)$"):
        pipeline_spec(overrides=["det.weights=./x"])
    _edited_copy(tmp_path, "det_ppocrv3.yaml", "weights: det_ppocrv3", "weights: ./gone")
    with pytest.raises(WeightsError, match=r"^det.weights: weights './gone' not found in .* "
                                           r"\(in .*det_ppocrv3.yaml\)$"):
        pipeline_spec("det_ppocrv3.yaml")


@pytest.mark.parametrize(("override", "message"), [
    ("rec.postprocess.box_thresh=0.4", "rec.postprocess: unknown key 'box_thresh'; did you mean "
                                       "det.postprocess.box_thresh? allowed: charset, use_space_char"),
    ("det.drop_score=0.4", "det: unknown key 'drop_score'; did you mean pipeline.drop_score? allowed: model, weights, "
                           "preprocess, postprocess, backend, train, onnx"),
    ("pipeline.unclip_ratio=2", "pipeline: unknown key 'unclip_ratio'; did you mean det.postprocess.unclip_ratio? "
                                "allowed: use_cls, verify_flips, drop_score, page_orientation, deskew"),
    ("det.postprocess.box_thres=0.4", "det.postprocess: unknown key 'box_thres'; allowed: thresh, box_thresh, "
                                      "unclip_ratio, max_candidates, min_size, score_mode, use_dilation"),
])
def test_a_key_set_in_the_wrong_section_names_where_it_is(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        pipeline_spec(overrides=[override])
    assert str(error.value) == f"{message} (from the override {override!r})"


def test_a_bad_value_names_the_file_or_the_override_it_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each stage may come from its own file: the error says which file holds the bad value (an inline stage: the
    pipeline config), or which override set it."""
    monkeypatch.chdir(tmp_path)
    _edited_copy(tmp_path, "det_ppocrv3.yaml", "box_thresh: 0.6", "box_thresh: 7")
    (tmp_path / "ocr.yaml").write_text("det: det_ppocrv3.yaml\nrec: rec_ppocrv2.yaml\npipeline: {drop_score: 2}\n")
    (tmp_path / "inline.yaml").write_text("det: {model: {}}\nrec: rec_ppocrv2.yaml\n")
    cases = [
        ("ocr.yaml", [], "pipeline.drop_score: 2.0 is out of range; allowed: 0.0..1.0 (in ocr.yaml)"),
        ("ocr.yaml", ["pipeline.drop_score=0.5"],
         "det.postprocess.box_thresh: 7.0 is out of range; allowed: 0.0..1.0 (in det_ppocrv3.yaml)"),
        ("ocr.yaml", ["pipeline.drop_score=0.5", "det.postprocess.box_thresh=8"],
         "det.postprocess.box_thresh: 8.0 is out of range; allowed: 0.0..1.0 "
         "(from the override 'det.postprocess.box_thresh=8')"),
        ("det_ppocrv3.yaml", ["postprocess.box_thresh=9"],
         "det.postprocess.box_thresh: 9.0 is out of range; allowed: 0.0..1.0 "
         "(from the override 'postprocess.box_thresh=9')"),
        ("inline.yaml", [], "det: missing section 'model' (in inline.yaml)"),
    ]
    for config, overrides, message in cases:
        with pytest.raises(ConfigError) as error:
            pipeline_spec(config, overrides)
        assert str(error.value) == message
    # a stage mapping read and overridden first (``ocrlite train``), resolved later: still the override's
    stage = load_stage_config("det_ppocrv3.yaml", ["postprocess.thresh=3"])
    with pytest.raises(ConfigError) as error:
        stage_spec("det", stage)
    assert str(error.value) == ("det.postprocess.thresh: 3.0 is out of range; allowed: 0.0..1.0 "
                                "(from the override 'postprocess.thresh=3')")


def test_a_stage_config_with_its_model_key_misspelt_is_not_taken_for_a_pipeline(tmp_path: Path) -> None:
    """``modl:`` made the file a pipeline config: ``unknown key 'modl'; allowed: det, cls, rec, page, pipeline``."""
    config = _edited_copy(tmp_path, "det_ppocrv3.yaml", "\nmodel:", "\nmodl:")
    with pytest.raises(ConfigError) as error:
        pipeline_spec(config)
    assert str(error.value) == ("det_ppocrv3.yaml: unknown key 'modl'; allowed: model, weights, preprocess, "
                                "postprocess, backend, train, onnx")
