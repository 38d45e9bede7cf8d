"""Pseudo-label distillation: PP-OCRv6 small (18,708 characters, 48 px lines) labels rendered crops and a page for
the card's charset (6,623 characters, no ß, € or ñ); ``ocrlite distill`` in mode pseudo trains and exports."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont
from tiny_crnn import SYNTH_EN, tiny_crnn

from ocrlite.charset import Charset
from ocrlite.cli import main
from ocrlite.files import find_charset
from ocrlite.predictors import TextRecognizer
from ocrlite.slim.pseudo import pseudo_labels
from ocrlite.train.rec_task import read_label_file

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core (.ci/run installs it)
TEXTS = ("Invoice 2024", "Straße 12", "Total €45", "Señor Lopez", "quick brown fox")
KEPT = ["Invoice 2024", "quick brown fox"]  # the others have a character the card's charset lacks


def _render(text: str) -> np.ndarray:
    font = ImageFont.truetype(str(FONT), 28)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 16, bottom - top + 12), "white")
    ImageDraw.Draw(image).text((8 - left, 6 - top), text, fill="black", font=font)
    return np.asarray(image)[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """crops/: the five texts, a heavily blurred copy of the last (the teacher misreads it with a low score),
    a blank crop and a file that is no image; page.png: the five texts stacked on one page."""
    root = tmp_path_factory.mktemp("unlabelled")
    crops = [_render(text) for text in TEXTS]
    (root / "crops").mkdir()
    for i, crop in enumerate(crops):
        cv2.imwrite(str(root / "crops" / f"{i}.png"), crop)
    cv2.imwrite(str(root / "crops" / "5_blurred.png"), cv2.GaussianBlur(crops[-1], (0, 0), 6.0))
    cv2.imwrite(str(root / "crops" / "6_blank.png"), np.full((40, 200, 3), 255, np.uint8))
    (root / "crops" / "7_broken.png").write_bytes(b"not an image")
    page = np.full((400, 700, 3), 255, np.uint8)
    y = 30
    for crop in crops:
        page[y : y + crop.shape[0], 40 : 40 + crop.shape[1]] = crop
        y += crop.shape[0] + 30
    cv2.imwrite(str(root / "page.png"), page)
    return root


def _card_charset() -> Charset:
    return Charset.from_file(find_charset("ppocr_keys_v1.txt", None, None), use_space_char=True)


def test_teacher_labels_crops_and_drops_what_the_student_cannot_write(preset_weights: Path, unlabelled: Path,
                                                                       tmp_path: Path) -> None:
    manifest = pseudo_labels("ppocr-v6-small", "crops", [str(unlabelled / "crops")], _card_charset(), 0.9,
                             tmp_path, progress=False)
    samples, rejected = read_label_file(tmp_path / "labels.txt", _card_charset())
    assert [text for _, text in samples] == KEPT and rejected == 0
    assert [path.name for path, _ in samples] == ["0.png", "4.png"]
    counts = manifest["counts"]
    assert (counts["images"], counts["read"], counts["kept"]) == (8, 7, 2)
    assert (counts["outside_charset"], counts["low_score"], counts["empty"], counts["unreadable"]) == (3, 1, 1, 1)
    assert counts["missing_characters"] == {"ß": 1, "€": 1, "ñ": 1}
    assert "7_broken.png" in counts["unreadable_files"][0]
    assert manifest["teacher_weights"]["rec"]["weights"] == "rec_ppocrv6_small"
    assert len(manifest["teacher_weights"]["rec"]["sha256"]) == 64 and len(manifest["images"]) == 8
    assert manifest == {**json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8")), "reused": False}
    # the student's own reading differs where it lacks a character: the labels are the teacher's text
    card = TextRecognizer.from_config("rec_ppocrv2.yaml")
    assert card([cv2.imread(str(unlabelled / "crops" / "1.png"))])[0].text != "Straße 12"
    # a lower threshold keeps the misread blurred crop; the same settings again reuse the labels
    again = pseudo_labels("ppocr-v6-small", "crops", [str(unlabelled / "crops")], _card_charset(), 0.5,
                          tmp_path, progress=False)
    assert again["counts"]["kept"] == 3 and again["counts"]["low_score"] == 0 and not again["reused"]
    assert pseudo_labels("ppocr-v6-small", "crops", [str(unlabelled / "crops")], _card_charset(), 0.5,
                         tmp_path, progress=False)["reused"]


def test_teacher_pipeline_labels_a_page(preset_weights: Path, unlabelled: Path, tmp_path: Path) -> None:
    manifest = pseudo_labels("ppocr-v6-small", "pages", [str(unlabelled / "page.png")], _card_charset(), 0.9,
                             tmp_path, progress=False)
    samples, _ = read_label_file(tmp_path / "labels.txt", _card_charset())
    assert [text for _, text in samples] == KEPT
    assert all(path.parent == tmp_path / "crops" and path.is_file() for path, _ in samples)
    heights = [cv2.imread(str(path)).shape[0] for path, _ in samples]
    assert all(20 <= h <= 60 for h in heights), heights  # one text line each
    assert manifest["counts"]["outside_charset"] == 3 and set(manifest["teacher_weights"]) == {"det", "rec"}


STUDENT = tiny_crnn({**SYNTH_EN, "data": {}, "steps": 2, "batch_size": 2, "lr": 0.01, "warmup_steps": 1,
                     "log_every": 1})  # the card's charset, no data of its own


def _student(tmp_path: Path, **train: object) -> Path:
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump({**STUDENT, "train": {**STUDENT["train"], **train}}), encoding="utf-8")
    return path


def test_distill_pseudo_trains_on_the_teachers_text_and_exports(preset_weights: Path, unlabelled: Path,
                                                                 tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--threads", "1", "distill", str(_student(tmp_path)), "--teacher", "ppocr-v6-small", "-o", str(run),
            "-q", "--set", "train.distill.mode=pseudo", "--set", f"train.distill.unlabelled={unlabelled / 'crops'}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "pseudo-labels from ppocr-v6-small: kept 2 of 7 texts from 8 crop files; dropped 1 below score 0.9, " \
           "3 with characters the student cannot write (ß€ñ), 1 empty; 1 unreadable files" in result.output
    assert "steps=2 samples=4" in result.output
    read = {Path(f["path"]).name for f in json.loads((run / "data_manifest.json").read_text())["files"]}
    assert read == {"labels.txt", "0.png", "4.png"}  # the student trained on the kept labels only
    manifest = json.loads((run / "export" / "student.json").read_text(encoding="utf-8"))
    distill = manifest["training"]["distill"]
    assert distill["mode"] == "pseudo" and distill["teacher"] == "ppocr-v6-small" and distill["min_score"] == 0.9
    assert distill["teacher_weights"]["rec"]["weights"] == "rec_ppocrv6_small" and distill["counts"]["kept"] == 2
    exported = (run / "export" / "student.yaml").read_text(encoding="utf-8")
    assert "distilled from ppocr-v6-small through its pseudo-labels" in exported
    recognizer = TextRecognizer.from_config(str(run / "export" / "student.yaml"))
    assert len(recognizer([cv2.imread(str(unlabelled / "crops" / "0.png"))])) == 1


@pytest.mark.parametrize("sets, message", [
    (["train.distill.mode=pseudo"], "train.distill.unlabelled: mode pseudo needs unlabelled images"),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=/no/such/dir"],
     "train.distill.unlabelled: /no/such/dir: no such file or directory"),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=CROPS", "train.distill.inputs=lines"],
     "train.distill.inputs: 'lines' is not allowed; choose one of: crops, pages"),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=CROPS", "train.distill.min_score=1.5"],
     "train.distill.min_score: 1.5 is out of range; allowed: 0.0 up to but not including 1.0"),
    (["train.distill.unlabelled=CROPS"], "train.distill.unlabelled: only mode pseudo reads unlabelled images"),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=CROPS", "train.distill.teacher=rec_ppocrv2.yaml",
      "train.distill.inputs=pages"], "train.distill.teacher: rec_ppocrv2.yaml is a single stage config; inputs: "
                                     "pages needs a preset or a pipeline config"),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=CROPS", "train.distill.teacher=nope",
      "train.distill.inputs=pages"], "train.distill.teacher: 'nope' is neither a preset (ppocr-v2, "),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=CROPS", "train.data.synth=en"],
     "train.data.synth_share: 1 renders every sample, so the pseudo-labels would never be read"),
    (["train.distill.mode=pseudo", "train.distill.unlabelled=BLANK"],
     'train.distill: the teacher ppocr-v2 kept no pseudo-label ({"images": 1, "read": 1, "kept": 0, "empty": 1'),
])
def test_distill_pseudo_bad_setting_is_one_line_and_exit_2(unlabelled: Path, tmp_path: Path, sets: list[str],
                                                           message: str) -> None:
    (tmp_path / "blank").mkdir()
    cv2.imwrite(str(tmp_path / "blank" / "b.png"), np.full((40, 200, 3), 255, np.uint8))
    places = {"CROPS": str(unlabelled / "crops"), "BLANK": str(tmp_path / "blank")}
    args = [arg for s in sets for arg in ("--set", s.replace("=CROPS", f"={places['CROPS']}")
                                          .replace("=BLANK", f"={places['BLANK']}"))]
    if not any(s.startswith("train.distill.teacher=") for s in sets):  # --teacher would win over --set
        args += ["--teacher", "ppocr-v2"]
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "distill", str(_student(tmp_path)), "-o", str(run), "-q",
                                       *args])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith(f"ocrlite: error: {message}"), result.output
    assert not (run / "log.csv").exists()


def test_kd_refuses_a_teacher_of_another_charset_and_names_mode_pseudo(preset_weights: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), _render(KEPT[0]))
    (tmp_path / "labels.txt").write_text(f"a.png\t{KEPT[0]}\n", encoding="utf-8")
    student = _student(tmp_path, data={"train": [str(tmp_path / "labels.txt")]})
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["distill", str(student), "--teacher", "ppocr-v6-small", "-o", str(run)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "train.distill.teacher: ppocr-v6-small reads lines with preprocess.height 48, the student 32; such a " \
           "teacher teaches through its text: train.distill.mode=pseudo" in result.output
