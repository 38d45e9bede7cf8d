"""Recognition training: CTC known answer, synthetic data, bit-exact resume, the train CLI end to end."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from tiny_crnn import SYNTH_EN, tiny_crnn

from ocrlite.charset import Charset
from ocrlite.cli import main
from ocrlite.errors import ConfigError, ImageReadError
from ocrlite.files import find_charset
from ocrlite.train.rec_task import RecTask, ctc_loss, read_label_file
from ocrlite.train.synth import FontBank, Synthesizer, TextSource, tilt_in_box, write_synth_set
from ocrlite.train.trainer import TrainSettings, train

CHARSET = Charset.from_file(find_charset("ppocr_keys_v1.txt", None, None), use_space_char=True)


def test_ctc_of_uniform_softmax_is_known() -> None:
    # T=4, C=3, target "1": 10 of the 81 equally likely paths collapse to it -> -ln(10/81) = 2.0919
    logits = torch.zeros(1, 4, 3)
    loss = ctc_loss(logits, torch.tensor([1]), torch.tensor([1]))
    assert loss.item() == pytest.approx(math.log(8.1), abs=1e-4)
    assert loss.item() == pytest.approx(2.0919, abs=1e-4)
    # sum over the batch / N: two identical samples give the same value
    two = ctc_loss(torch.zeros(2, 4, 3), torch.tensor([1, 2]), torch.tensor([1, 1]))
    assert two.item() == pytest.approx(2.0919, abs=1e-4)


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    return write_synth_set(out, 24, CHARSET, lang="en+zh", seed=3)


def test_synth_is_deterministic_and_inside_the_charset(synth_set: Path) -> None:
    synth = Synthesizer(CHARSET, "en+zh", 32)
    image_a, text_a = synth.sample(7, 11)
    image_b, text_b = synth.sample(7, 11)
    assert text_a == text_b and np.array_equal(image_a, image_b)
    assert image_a.shape[0] == 32 and image_a.dtype == np.uint8
    heights = {synth.sample(7, k)[0].shape[0] for k in range(60)}
    assert 32 in heights and min(heights) >= 10  # low-resolution scene words come smaller, never tiny
    samples, rejected = read_label_file(synth_set, CHARSET)
    assert rejected == 0 and len(samples) == 24
    texts = [text for _, text in samples]
    allowed = set(CHARSET.chars)
    assert all(text and set(text) <= allowed for text in texts)
    assert any(" " in t for t in texts) and any(any(c.islower() for c in t) for t in texts)
    assert any(any("\u4e00" <= c <= "\u9fff" for c in t) for t in texts)  # en+zh draws Chinese lines too
    again = write_synth_set(synth_set.parent / "again", 24, CHARSET, lang="en+zh", seed=3)
    assert again.read_text(encoding="utf-8") == synth_set.read_text(encoding="utf-8")


def test_synth_chinese_share_and_mixed_lines() -> None:
    def is_cjk(text: str) -> bool:
        return any("\u4e00" <= c <= "\u9fff" for c in text)

    fonts = FontBank()  # one font scan for the three synthesizers
    zh = [Synthesizer(CHARSET, "en+zh", 32, fonts, zh_share=1.0).sample(2, k)[1] for k in range(80)]
    assert all(is_cjk(t) for t in zh)
    # lines as Chinese documents write them: full-width punctuation, Latin words or numbers among the characters
    assert any(set(t) & set("\uff0c\u3002\u3001\uff1a\uff1b") for t in zh)
    assert any(any(c.isascii() and c.isalnum() for c in t) for t in zh)
    assert not any(is_cjk(Synthesizer(CHARSET, "en+zh", 32, fonts, zh_share=0.0).sample(2, k)[1]) for k in range(40))
    with pytest.raises(ConfigError, match="Chinese share must be between 0 and 1"):
        Synthesizer(CHARSET, "en+zh", 32, fonts, zh_share=1.5)


def test_synth_document_lines_carry_the_marks_documents_print() -> None:
    """The converted charset holds signs that English documents print (yen, degrees, plus-minus, times...); lines
    that never showed them taught the English fine-tune to read "25°C" as "25'" and "¥1,250" as "?1,250"."""
    rng, source = np.random.default_rng(0), TextSource()  # each built once: they read the word list
    assert set("¥°±×÷®™§•·—“”‘’…≤≥≠→[]<>_~|{}^\\`") <= set("".join(source.marked(rng) for _ in range(600)))
    fonts = FontBank()
    synth = Synthesizer(CHARSET, "en", 32, fonts, scene_share=0.0)
    texts = [synth.sample(5, k)[1] for k in range(200)]
    marked = [t for t in texts if set(t) & set("¥°±×÷®™§•·—“”‘’…≤≥≠→[]<>_~|{}^\\`")]
    assert 8 <= len(marked) <= 40 and len(set("".join(marked)) - set(string.printable)) >= 5  # ~1 line in 10
    ascii_only = Charset(list(string.printable[:95]), use_space_char=True)
    ascii_synth = Synthesizer(ascii_only, "en", 32, fonts, scene_share=0.0)
    assert all(ascii_synth.sample(5, k)[1].isascii() for k in range(100))


def test_synth_cli_writes_the_mix_it_is_asked_for(tmp_path: Path) -> None:
    def labels(*args: str) -> list[str]:
        out = tmp_path / "-".join(args)
        result = CliRunner().invoke(main, ["synth", str(out), "--count", "16", "--seed", "4", *args])
        assert result.exit_code == 0, result.output
        rows = (out / "labels.txt").read_text(encoding="utf-8").splitlines()
        assert all((out / row.split("\t")[0]).is_file() for row in rows)
        return [row.split("\t")[1] for row in rows]

    assert not any(" " in text for text in labels("--scene-share", "1"))  # single words only
    assert sum(" " in text for text in labels("--scene-share", "0")) >= 8  # document lines
    assert all(any("\u4e00" <= c <= "\u9fff" for c in text) for text in labels("--lang", "en+zh", "--zh-share", "1"))
    bad = CliRunner().invoke(main, ["synth", str(tmp_path / "bad"), "--count", "2", "--scene-share", "1.5"])
    assert bad.exit_code == 2 and "--scene-share" in bad.output and not (tmp_path / "bad").exists()
    # --zh-share without --lang en+zh drew no Chinese line at all, without a word
    inert = CliRunner().invoke(main, ["synth", str(tmp_path / "inert"), "--count", "2", "--zh-share", "1"])
    assert (inert.exit_code, inert.output) == (2, "ocrlite: error: --zh-share is the share of Chinese lines, which "
                                                  "--lang en does not draw; add --lang en+zh (see 'ocrlite synth "
                                                  "--help')\n")
    assert not (tmp_path / "inert").exists()


def test_tilted_scene_word_keeps_all_of_its_ink_inside_its_upright_box() -> None:
    image = np.full((40, 200, 3), 255, np.uint8)
    image[15:25, 20:180] = 0  # a 160 x 10 dark bar: 1,600 ink pixels
    turned = tilt_in_box(image, 15.0)
    cos, sin = math.cos(math.radians(15)), math.sin(math.radians(15))
    assert turned.shape == (int(200 * sin + 40 * cos), int(200 * cos + 40 * sin), 3)
    ink = (turned < 128).all(axis=2)
    assert abs(int(ink.sum()) - 1600) < 80  # nothing cut off, no ink added at the replicated borders
    rows, cols = np.nonzero(ink)
    left, right = rows[cols < cols.min() + 20].mean(), rows[cols > cols.max() - 20].mean()
    assert left - right > 160 * sin * 0.8  # counter-clockwise: the bar's right end is higher
    assert tilt_in_box(image, 0.0).shape == image.shape


def test_label_file_rejects_text_outside_the_charset(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a.png\tfine\nb.png\tcaf\u00e9 \u20ac5\nc.png\t\n", encoding="utf-8")
    samples, rejected = read_label_file(labels, CHARSET)
    assert [text for _, text in samples] == ["fine"] and rejected == 2


def _stage(labels: Path, steps: int) -> dict[str, Any]:
    train = {"task": "rec", "data": {"train": [str(labels)], "eval": str(labels), "eval_limit": 6},
             "steps": steps, "batch_size": 3, "lr": 1e-3, "warmup_steps": 2, "eval_every": 5,
             "save_every": 5, "log_every": 1, "freeze_bn": True, "freeze": ["backbone.stem"]}
    return {**tiny_crnn(train), "_dir": None}


def test_resume_is_bit_exact(synth_set: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    stage = _stage(synth_set, 10)
    settings = TrainSettings.from_stage(stage)
    full = train(RecTask(stage, 3), settings, tmp_path / "full", progress=False)
    first = TrainSettings.from_stage(stage)
    # same schedule (10 steps), stopped after 5 by a run whose steps end there, then resumed
    half_stage = _stage(synth_set, 10)
    half = train(RecTask(half_stage, 3), first, tmp_path / "half", progress=False, stop_at=5)
    assert half.steps == 5
    resumed = train(RecTask(stage, 3), settings, tmp_path / "half", resume=tmp_path / "half", progress=False)
    assert full.steps == resumed.steps == 10 and full.samples_seen == resumed.samples_seen == 30
    a = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000010" / "model.safetensors"))
    b = load_file(str(tmp_path / "half" / "checkpoints" / "step_0000010" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full.last_loss == resumed.last_loss
    frozen = "backbone.stem.conv.weight"
    start = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000005" / "model.safetensors"))
    assert torch.equal(start[frozen], a[frozen])  # a frozen module does not move
    assert not torch.equal(start["head.fc.1.weight"], a["head.fc.1.weight"])


def _write_config(tmp_path: Path, labels: Path) -> Path:
    import yaml

    stage = _stage(labels, 4)
    stage.pop("_dir")
    stage["train"].update(eval_every=2, save_every=2)
    path = tmp_path / "tiny_rec.yaml"
    path.write_text(yaml.safe_dump(stage), encoding="utf-8")
    return path


def test_train_cli_end_to_end_and_export_loads(synth_set: Path, tmp_path: Path) -> None:
    config = _write_config(tmp_path, synth_set)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(run), "-q",
                                       "--set", "train.lr=0.002", "--name", "tiny_en"])
    assert result.exit_code == 0, result.output
    assert "steps=4 samples=12" in result.output
    manifest = json.loads((run / "export" / "tiny_en.json").read_text(encoding="utf-8"))
    assert manifest["training"]["steps"] == 4 and manifest["training"]["samples_seen"] == 12
    assert manifest["training"]["overrides"] == ["train.lr=0.002"]
    data = json.loads((run / "data_manifest.json").read_text(encoding="utf-8"))
    assert len(data["files"]) == 25  # the label file and its 24 images, each with a sha256
    assert len((run / "log.csv").read_text(encoding="utf-8").splitlines()) == 5
    crops = [np.full((32, 90, 3), 255, np.uint8)]
    out = CliRunner().invoke(main, ["recognize", "--help"])
    assert out.exit_code == 0
    from ocrlite.predictors import TextRecognizer

    recognizer = TextRecognizer.from_config(str(run / "export" / "tiny_en.yaml"))
    assert len(recognizer(crops)) == 1 and recognizer.pre.width == 64


def test_an_export_with_its_own_charset_reads_with_it_wherever_it_is_moved(tmp_path: Path) -> None:
    """A digits-only charset beside the user's config: the export carries a copy and names it, so
    RUN/export/NAME.yaml loads (also moved elsewhere) with that charset; a shipped charset stays a name."""
    import shutil

    import yaml

    from ocrlite.predictors import TextRecognizer

    digits = Charset([str(d) for d in range(10)])
    labels = write_synth_set(tmp_path / "set", 4, digits, seed=1)
    stage = tiny_crnn({**SYNTH_EN, "data": {"train": [str(labels)]}, "steps": 1, "batch_size": 2, "workers": 0})
    stage["model"]["head"].pop("out_channels")
    stage["postprocess"]["charset"] = "digits.txt"
    project = tmp_path / "project"
    project.mkdir()
    (project / "digits.txt").write_text("".join(f"{d}\n" for d in range(10)), encoding="utf-8")
    config = project / "rec_digits.yaml"
    config.write_text(yaml.safe_dump(stage), encoding="utf-8")
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    moved = shutil.move(str(tmp_path / "run" / "export"), str(tmp_path / "elsewhere"))
    shutil.rmtree(project)
    recognizer = TextRecognizer.from_config(str(Path(moved) / "rec_digits.yaml"))
    assert recognizer.charset.chars == digits.chars
    assert set(recognizer([np.full((32, 90, 3), 255, np.uint8)])[0][0]) <= set("0123456789 ")
    assert yaml.safe_load((Path(moved) / "rec_digits.yaml").read_text())["postprocess"]["charset"] == (
        "rec_digits_charset.txt")
    stage["postprocess"]["charset"] = "ppocr_keys_v1.txt"
    stage["train"]["data"]["train"] = [str(write_synth_set(tmp_path / "en", 2, CHARSET, seed=1))]
    config.parent.mkdir()
    config.write_text(yaml.safe_dump(stage), encoding="utf-8")
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(tmp_path / "en_run"), "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "en_run" / "export").iterdir()) == [
        "rec_digits.json", "rec_digits.safetensors", "rec_digits.yaml"]


def test_bad_learning_rate_is_one_line_and_exit_2(synth_set: Path, tmp_path: Path) -> None:
    config = _write_config(tmp_path, synth_set)
    result = CliRunner().invoke(main, ["train", str(config), "-o", str(tmp_path / "run"), "--set", "train.lr=abc"])
    assert result.exit_code == 2
    assert result.output.strip() == "ocrlite: error: train.lr: expected a finite number, got 'abc'"


def test_worker_processes_make_the_same_batches(synth_set: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    stage = _stage(synth_set, 4)
    stage["train"]["data"].update(synth="en", synth_share=0.5)  # label files and fresh synthetic lines
    inline = train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "inline", progress=False)
    stage["train"]["workers"] = 2
    pooled = train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "pooled", progress=False)
    assert inline.last_loss == pooled.last_loss and inline.samples_seen == pooled.samples_seen == 12
    a = load_file(str(tmp_path / "inline" / "best.safetensors"))
    b = load_file(str(tmp_path / "pooled" / "best.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_synthetic_lines_on_the_fly(synth_set: Path) -> None:
    stage = _stage(synth_set, 4)
    stage["train"]["data"] = {"synth": "en+zh"}
    task = RecTask(stage, 8)
    batch = task.batch(np.random.default_rng(5))
    again = task.batch(np.random.default_rng(5))
    assert batch["image"].shape[0] == 8 and torch.equal(batch["image"], again["image"])
    assert torch.equal(batch["targets"], again["targets"]) and int(batch["target_lengths"].min()) >= 1
    assert any(path.suffix in (".ttf", ".otf", ".ttc") for path in task.files())  # fonts go in the data manifest


def test_width_multiple_rounds_the_padded_width_up(synth_set: Path) -> None:
    stage = _stage(synth_set, 4)
    crops = [np.full((32, 333, 3), 200, np.uint8), np.full((16, 40, 3), 90, np.uint8)]
    exact = RecTask(stage, 2).collate(crops, ["ab", "c"])["image"]
    stage["train"]["data"]["width_multiple"] = 32
    rounded = RecTask(stage, 2).collate(crops, ["ab", "c"])["image"]
    assert exact.shape[-1] == 333 and rounded.shape[-1] == 352  # 11 x 32
    assert torch.equal(rounded[..., :333], exact) and not rounded[..., 333:].any()  # only more zero padding


@pytest.mark.parametrize("data, message", [
    ({"synth": "fr"}, "train.data.synth: 'fr' is not allowed; choose one of: '', en, en+zh"),
    ({}, "train.data: give label files (train) or a synthetic language (synth)"),
    ({"synth": "en", "width_multiple": 0}, "train.data.width_multiple: 0 is out of range; allowed: 1.."),
    ({"synth": "en", "fonts": "/nonexistent"}, "font folder /nonexistent does not exist"),
])
def test_bad_data_section_is_a_config_error(synth_set: Path, data: dict[str, Any], message: str) -> None:
    import re

    from ocrlite.errors import ConfigError

    stage = _stage(synth_set, 4)
    stage["train"]["data"] = data
    with pytest.raises(ConfigError, match=re.escape(message)):
        RecTask(stage, 2)


def test_eval_scores_a_label_file_folder_for_a_preset_and_a_config(synth_set: Path) -> None:
    # one run, two rows: the converted CRNN (preset) and the English fine-tune (pipeline config)
    result = CliRunner().invoke(main, ["--threads", "1", "eval", "rec", "--data", str(synth_set.parent),
                                       "--model", "ppocr-v2", "--config", "ocr_ppocr_v2_en.yaml", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["system"] for row in rows] == ["ppocr-v2", "ocr_ppocr_v2_en.yaml"]
    assert all(row["n"] == 24 for row in rows)
    assert rows[1]["accuracy_cs"] > rows[0]["accuracy_cs"]  # spaces and letter case


def test_evaluate_hands_back_the_outputs_its_rows_score(synth_set: Path) -> None:
    # paired comparisons (scripts/train_checks.py distill) need each system's text per crop, in sample order
    from ocrlite.api import OCR
    from ocrlite.eval.harness import evaluate, ocrlite_system
    from ocrlite.eval.metrics import correct_words, word_accuracy

    torch.set_num_threads(1)
    systems = [ocrlite_system(name, OCR(model=name, stages=("rec",))) for name in ("ppocr-v2", "ppocr-v2-en")]
    outputs: dict[str, tuple[list[Any], list[Any]]] = {}
    rows = evaluate("rec", systems, synth_set.parent, limit=20, outputs=outputs)
    truths = [text for _, text in read_label_file(synth_set, CHARSET)[0]][:20]
    for row in rows:
        texts, labels = outputs[row["system"]]
        assert labels == truths and len(texts) == 20
        assert row["accuracy_cs"] == round(100 * word_accuracy(texts, labels, case_sensitive=True), 2)
    v2, v2_en = (correct_words(*outputs[name], case_sensitive=True) for name in ("ppocr-v2", "ppocr-v2-en"))
    assert sum(v2_en) > sum(v2)


def test_a_bad_eval_label_file_fails_the_start_not_the_first_evaluation(synth_set: Path, tmp_path: Path) -> None:
    stage = _stage(synth_set, 4)
    stage["train"]["data"]["eval"] = str(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="missing.txt: label file not found"):
        RecTask(stage, 3)
    stage["train"]["data"]["eval"] = str(synth_set.parent)  # the folder `eval rec --data` takes, not its file
    with pytest.raises(ConfigError, match=f"^{synth_set.parent}: a folder, not a label file$"):
        RecTask(stage, 3)
    (tmp_path / "empty.txt").write_text("")
    stage["train"]["data"]["eval"] = str(tmp_path / "empty.txt")
    with pytest.raises(ConfigError, match="train.data.eval: no usable samples"):
        RecTask(stage, 3)
    (tmp_path / "gone.txt").write_text(f"{tmp_path / 'nothere.png'}\tword\n", encoding="utf-8")
    stage["train"]["data"]["eval"] = str(tmp_path / "gone.txt")
    with pytest.raises(ConfigError, match="^cannot read image .*nothere.png: No such file or directory$"):
        RecTask(stage, 3)  # its images are checked now too
    image = read_label_file(synth_set, CHARSET)[0][0][0]
    (tmp_path / "cut.png").write_bytes(image.read_bytes()[: image.stat().st_size // 2])  # header intact, data cut
    (tmp_path / "cut.txt").write_text(f"{tmp_path / 'cut.png'}\tword\n", encoding="utf-8")
    stage["train"]["data"]["eval"] = str(tmp_path / "cut.txt")
    with pytest.raises(ImageReadError, match="cut.png: corrupt or truncated image data"):
        RecTask(stage, 3)  # the first evaluation, steps into the run, raised it
    stage = _stage(synth_set, 4)
    stage["train"]["data"]["eval_limit"] = 0  # 0: all of them, as in the cls task
    assert len(RecTask(stage, 3).eval_samples) == 24


def test_synth_takes_a_charset_path_relative_to_the_working_folder(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("abc.txt").write_text("a\nb\nc\n")
    run = CliRunner().invoke(main, ["synth", "out", "--count", "2", "--charset", "abc.txt"])
    assert run.exit_code == 0, run.output
    texts = [line.split("\t")[1] for line in Path("out/labels.txt").read_text().splitlines()]
    assert texts and all(set(t) <= set("abc ") for t in texts)
    Path("empty.txt").write_text("")
    run = CliRunner().invoke(main, ["synth", "out2", "--count", "2", "--words", "empty.txt"])
    assert run.exit_code == 2 and "word list empty.txt has no words" in run.output


def test_synth_with_a_small_charset_writes_its_characters_or_says_why_it_cannot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A charset few drawn texts keep anything of ("q", "#") still gives labels of its own characters; one
    without Chinese characters cannot make en+zh lines: one line, exit 2, no folder left."""
    monkeypatch.chdir(tmp_path)
    for chars in ("q", "#"):
        Path("chars.txt").write_text(f"{chars}\n")
        run = CliRunner().invoke(main, ["synth", chars, "--count", "40", "--charset", "chars.txt"])
        assert run.exit_code == 0, run.output
        texts = [line.split("\t")[1] for line in Path(chars, "labels.txt").read_text().splitlines()]
        assert len(texts) == 40 and all(t and set(t) <= {chars, " "} for t in texts)
    Path("abc.txt").write_text("a\nb\nc\n")
    run = CliRunner().invoke(main, ["synth", "zh", "--count", "4", "--charset", "abc.txt", "--lang", "en+zh"])
    assert (run.exit_code, run.output) == (2, "ocrlite: error: synth language en+zh needs Chinese characters in "
                                              "the charset (and a font that draws them); it has none: use en\n")
    assert not Path("zh").exists()


def test_synth_skips_a_font_file_it_cannot_read(tmp_path: Path) -> None:
    """A broken .ttf (or a folder named like one) beside good fonts is not used; with nothing else there, the
    folder has no usable fonts: one line, exit 2."""
    good = FontBank().latin[0]
    fonts = tmp_path / "fonts"
    (fonts / "folder.ttf").mkdir(parents=True)
    (fonts / "broken.ttf").write_bytes(b"not a font")
    (fonts / "wqy-microhei.ttc").write_bytes(b"")
    run = CliRunner().invoke(main, ["synth", str(tmp_path / "none"), "--count", "2", "--fonts", str(fonts)])
    assert (run.exit_code, run.output.splitlines()[0]) == (
        2, f"ocrlite: error: no usable TTF/OTF fonts with Latin glyphs under {fonts} (Debian: apt-get install "
           "fonts-dejavu-core fonts-liberation)")
    (fonts / good.name).write_bytes(good.read_bytes())
    assert FontBank(fonts).files() == [fonts / good.name]
    run = CliRunner().invoke(main, ["synth", str(tmp_path / "set"), "--count", "3", "--fonts", str(fonts)])
    assert run.exit_code == 0, run.output
    assert len((tmp_path / "set" / "labels.txt").read_text(encoding="utf-8").splitlines()) == 3


def test_rejected_lines_are_reported_per_label_file_and_recorded(synth_set: Path, tmp_path: Path) -> None:
    """Lines with text outside the charset are counted per label file (training and evaluation), reported and
    recorded; the data manifest names the evaluation label file and its images too."""
    images = [path for path, _ in read_label_file(synth_set, CHARSET)[0]]
    train_file, eval_file = tmp_path / "train.txt", tmp_path / "eval.txt"
    train_file.write_text(f"{images[0]}\tok\n{images[1]}\thi \U0001f600\n{images[2]}\t\n{images[3]}\tfine\n",
                          encoding="utf-8")
    eval_file.write_text(f"{images[4]}\tgood\n{images[5]}\t\U0001f600\n", encoding="utf-8")
    config = _write_config(tmp_path, train_file)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(run), "-q",
                                       "--set", f"train.data.eval={eval_file}", "--set", "train.steps=2"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (f"{train_file}: 2 of 4 lines rejected (empty, or characters outside the charset)\n"
                             f"{eval_file}: 1 of 2 lines rejected (empty, or characters outside the charset)\n")
    counts = {str(train_file): {"lines": 4, "rejected": 2}, str(eval_file): {"lines": 2, "rejected": 1}}
    data = json.loads((run / "data_manifest.json").read_text(encoding="utf-8"))
    assert data["label_files"] == counts
    assert [Path(f["path"]) for f in data["files"]] == [train_file, eval_file, images[0], images[3], images[4]]
    manifest = json.loads((run / "export" / "tiny_rec.json").read_text(encoding="utf-8"))
    assert manifest["training"]["label_files"] == counts


def test_an_interrupted_synth_run_leaves_no_label_file_naming_other_images(tmp_path: Path) -> None:
    first = write_synth_set(tmp_path, 3, CHARSET, seed=1)
    old = first.read_text(encoding="utf-8")
    written = 0

    def stop_after_one(count: int) -> None:
        nonlocal written
        written += count
        if written == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_synth_set(tmp_path, 3, CHARSET, seed=2, progress=stop_after_one)
    assert not first.exists()  # image 0 is seed 2's now: the old labels would name it wrongly
    again = write_synth_set(tmp_path, 3, CHARSET, seed=2)
    texts = [line.split("\t", 1)[1] for line in again.read_text(encoding="utf-8").splitlines()]
    assert again == first and texts == [Synthesizer(CHARSET, "en", 32).sample(2, k)[1] for k in range(3)]
    assert again.read_text(encoding="utf-8") != old


def test_synth_into_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    run = CliRunner().invoke(main, ["synth", str(tmp_path / "file" / "set"), "--count", "1"])
    assert (run.exit_code, run.output) == (
        2, f"ocrlite: error: cannot write to {tmp_path / 'file' / 'set'}: {tmp_path / 'file'} is a file, "
           "not a folder\n")


def test_a_label_longer_than_the_ctc_output_is_counted_per_batch(caplog: pytest.LogCaptureFixture) -> None:
    """T=4 aligns a label of length + adjacent repeats <= 4 ("aab": 3 + 1); "aaa" (3 + 2) and "abcde" cannot:
    they add no loss (zero_infinity), so the batch says how many there were, in one warning line."""
    with caplog.at_level("WARNING", logger="ocrlite.train"):
        fits = ctc_loss(torch.zeros(1, 4, 6), torch.tensor([1, 1, 2]), torch.tensor([3]))
    assert fits.item() > 0 and not caplog.records
    with caplog.at_level("WARNING", logger="ocrlite.train"):
        loss = ctc_loss(torch.zeros(3, 4, 6), torch.tensor([1, 1, 2, 1, 1, 1, 1, 2, 3, 4, 5]),
                        torch.tensor([3, 3, 5]))
    assert loss.item() == pytest.approx(fits.item() / 3, abs=1e-5)  # only "aab" adds to the sum
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "2 of 3 labels in this batch need more than its 4 CTC time steps"]


def test_train_reports_labels_too_long_for_the_ctc_output(tmp_path: Path) -> None:
    """A 64-wide line crop gives the tiny CRNN 16 time steps: a 20-character label cannot be aligned, and each
    training batch holding it says so on stderr (no silent zero loss)."""
    import cv2

    lines = []
    for i, text in enumerate(["ok", "x" * 10 + "y" * 10, "abcdefghijklmnopqrst"]):
        image = tmp_path / f"{i}.png"
        cv2.imwrite(str(image), np.full((32, 64, 3), 255, np.uint8))
        lines.append(f"{image}\t{text}\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(lines), encoding="utf-8")
    config = _write_config(tmp_path, labels)
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(tmp_path / "run"), "-q",
                                       "--set", "train.steps=2", "--set", "train.data.eval=null"])
    assert result.exit_code == 0, result.output
    warning = ("2 of 3 labels in this batch need more than its 16 CTC time steps (length + repeated adjacent "
               "characters; the steps follow the padded batch width): they add no loss\n")
    assert result.stderr == warning * 2
