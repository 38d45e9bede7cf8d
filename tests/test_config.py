"""Config loading: safe YAML, unknown keys rejected with the allowed ones, dotted overrides."""

import re
from pathlib import Path

import pytest

from ocrlite.config import apply_overrides, load_yaml
from ocrlite.errors import ConfigError
from ocrlite.stages import load_pipeline_config, load_stage_config, pipeline_spec, stage_spec

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def test_default_pipeline_resolves_three_stages_and_the_page_classifier() -> None:
    cfg = load_pipeline_config()
    assert set(cfg) == {"det", "cls", "rec", "page", "pipeline"}
    assert cfg["page"]["weights"] == "page_cls_pplcnet"
    assert cfg["det"]["model"]["backbone"]["name"] == "MobileNetV3"
    assert cfg["rec"]["weights"] == "rec_ppocrv2"


def test_overrides_keep_types_and_reach_nested_sections() -> None:
    cfg = load_pipeline_config(overrides=["det.postprocess.box_thresh=0.45", "pipeline.use_cls=false"])
    assert cfg["det"]["postprocess"]["box_thresh"] == 0.45
    assert cfg["pipeline"]["use_cls"] is False


def test_exponent_numbers_are_floats_in_files_and_overrides(tmp_path: Path) -> None:
    cfg = apply_overrides({"train": {}}, ["train.lr=1e-5", "train.min_lr=3E+2", "train.steps=12", "train.tag=1e5x"])
    assert cfg["train"] == {"lr": 1e-5, "min_lr": 300.0, "steps": 12, "tag": "1e5x"}
    config = tmp_path / "c.yaml"
    config.write_text("train: {lr: 2e-4, warmup: -1.5e-3}\n")
    assert load_yaml(config)["train"] == {"lr": 2e-4, "warmup": -1.5e-3}


def test_override_of_unknown_section_names_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"no section 'dett'.*allowed: .*det"):
        apply_overrides({"det": {"a": 1}}, ["dett.a=2"])


def test_override_without_equals_is_rejected() -> None:
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({"det": {}}, ["det.a"])


@pytest.mark.parametrize("override", ["cls.postprocess.=0.5", "cls..thresh=0.5", ".cls=1", "=1"])
def test_an_override_key_with_an_empty_part_is_rejected_as_such(override: str) -> None:
    """``cls.postprocess.=0.5`` set a key named '' and was reported as an unknown key '' found in the shipped cls
    config; ``cls..thresh`` as a section '' the config lacks."""
    with pytest.raises(ConfigError, match=rf"^override '{re.escape(override)}' must look like section.key=value$"):
        pipeline_spec(overrides=[override])


def test_unknown_stage_key_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "det.yaml"
    bad.write_text((CONFIG_DIR / "det_ppocrv3.yaml").read_text() + "\nthresholds: {}\n")
    with pytest.raises(ConfigError, match="det: unknown key 'thresholds'; allowed: model, weights"):
        stage_spec("det", bad)


def test_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("det: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_pipeline_config(evil)


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_stage_config("nope.yaml")


def test_a_config_path_with_folders_never_falls_back_to_a_shipped_file_of_that_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/train/rec_ppocrv2_en.yaml from outside the repo is not the inference config rec_ppocrv2_en.yaml."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="^config file not found: configs/train/rec_ppocrv2_en.yaml$"):
        load_stage_config("configs/train/rec_ppocrv2_en.yaml")
    assert "train" in load_stage_config("train/rec_ppocrv2_en.yaml")  # a path under the shipped configs
    assert "train" not in load_stage_config("rec_ppocrv2_en.yaml")  # a shipped name


@pytest.mark.parametrize(("override", "message"), [
    ("det.model.backbone.scale=abc", "backbone MobileNetV3: cannot build with"),
    ("det.model.backbone=5", "backbone: expected a mapping with a name, got 5"),
    ("cls=null", "pipeline.use_cls: true needs a cls stage, and this pipeline has none"),
    ("pipeline=5", "pipeline: expected a mapping, got 5"),
    ("pipeline.use_cls='yes'", "pipeline.use_cls: expected true or false or null, got 'yes'"),  # "is not a NoneType"
])
def test_values_of_the_wrong_type_are_config_errors(override: str, message: str) -> None:
    """Each is one line from the CLI, exit 2 (a TypeError traceback before)."""
    from ocrlite.api import OCR

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        OCR(overrides=[override])


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(ConfigError, match="cannot read config .*binary.yaml"):
        load_yaml(path)


def test_an_override_of_an_unknown_top_level_key_is_an_error() -> None:
    """``--set backend=onnxruntime`` was silently ignored (the key is det.backend, or --backend)."""
    with pytest.raises(ConfigError, match="--set: unknown key 'backend'"):
        load_pipeline_config(overrides=["backend=onnxruntime"])


def test_a_stage_config_stands_for_the_default_pipeline_with_that_stage() -> None:
    """What ``ocrlite train`` exports (one stage's config) loads with --config on every command."""
    cfg = load_pipeline_config("rec_ppocrv2_en.yaml", ["rec.preprocess.batch_size=3"])
    default = load_pipeline_config()
    assert cfg["rec"]["weights"] == "rec_ppocrv2_en" and cfg["rec"]["preprocess"]["batch_size"] == 3
    assert cfg["det"] == default["det"] and cfg["cls"] == default["cls"]
    with pytest.raises(ConfigError, match="without a det, cls or rec head"):
        load_pipeline_config("page_cls_pplcnet.yaml")


def test_a_key_given_twice_is_an_error_not_the_last_one_silently(tmp_path: Path) -> None:
    config = tmp_path / "dup.yaml"
    config.write_text("model: {name: x}\npostprocess:\n  box_thresh: 0.6\n  box_thresh: 0.99\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dup.yaml: key 'box_thresh' given twice \(line 4\)$"):
        load_yaml(config)
    merged = tmp_path / "merged.yaml"  # a YAML merge may repeat a key on purpose: the local one wins
    merged.write_text("base: &b {x: 1, y: 2}\nder:\n  <<: *b\n  y: 3\n", encoding="utf-8")
    assert load_yaml(merged)["der"] == {"x": 1, "y": 3}


def test_use_cls_follows_the_cls_stage_unless_set_and_a_null_stage_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "no_cls.yaml"
    config.write_text("det: det_ppocrv3.yaml\nrec: rec_ppocrv2.yaml\n", encoding="utf-8")
    assert pipeline_spec(config).settings.use_cls is False  # no cls stage: not used (no error)
    assert pipeline_spec().settings.use_cls is True
    missing = r"^pipeline.use_cls: true needs a cls stage, and this pipeline has none "
    with pytest.raises(ConfigError, match=missing + r"\(from the override 'pipeline.use_cls=true'\)$"):
        pipeline_spec(config, ["pipeline.use_cls=true"])
    with pytest.raises(ConfigError, match=missing + r"\(from the override 'cls=null'\)$"):  # use_cls from the file
        pipeline_spec(None, ["cls=null"])
    asks = tmp_path / "asks.yaml"
    asks.write_text("det: det_ppocrv3.yaml\nrec: rec_ppocrv2.yaml\npipeline: {use_cls: true}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=missing + r"\(in .*asks.yaml\)$"):
        pipeline_spec(asks)
    spec = pipeline_spec(None, ["cls=null", "pipeline.use_cls=false"])  # --set cls=null --no-cls
    assert spec.cls is None and spec.settings.use_cls is False
    null = "^rec: a pipeline needs this stage; it cannot be null "
    with pytest.raises(ConfigError, match=null + r"\(from the override 'rec=null'\)$"):
        pipeline_spec(None, ["rec=null"])
    for kind, override in (("page", "page=null"), ("det", "det=5")):  # the line did not say which override did it
        with pytest.raises(ConfigError, match=rf"^{kind}: expected a stage mapping \(model, weights, \.\.\.\), got .* "
                                              rf"\(from the override '{override}'\)$"):
            pipeline_spec(None, [override])
    no_rec = tmp_path / "no_rec.yaml"  # the line said neither the file nor the override that made it null
    no_rec.write_text("det: det_ppocrv3.yaml\nrec:\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=null + rf"\(in {re.escape(str(no_rec))}\)$"):
        pipeline_spec(no_rec)


@pytest.mark.parametrize(("override", "message"), [
    ("det.postprocesing.thresh=0.2", "override det.postprocesing.thresh: det has no section 'postprocesing'; did you "
                                     "mean det.postprocess? allowed: model, weights, preprocess, postprocess"),
    ("pipline.drop_score=0.2", "override pipline.drop_score: config has no section 'pipline'; did you mean pipeline? "
                               "allowed: pipeline, det, cls, rec, page"),
    ("det.postprocess.thresh.x=3", "override det.postprocess.thresh.x: det.postprocess.thresh is a value, not a "
                                   "section"),
])
def test_an_override_through_a_missing_section_names_the_closest_one(override: str, message: str) -> None:
    """A misspelt section got the list of sections only, and a value used as a section ("thresh.x") was said
    to be missing while the list named it."""
    with pytest.raises(ConfigError) as error:
        load_pipeline_config(overrides=[override])
    assert str(error.value) == message
