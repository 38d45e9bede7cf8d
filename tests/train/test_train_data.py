"""Training data readers: PaddleOCR det labels, ICDAR 2015 / FUNSD records, splits, manifests, crops."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrlite.charset import Charset
from ocrlite.errors import ConfigError
from ocrlite.eval.datasets import FunsdBox, FunsdForm, box_quad, load_funsd_boxes
from ocrlite.io.images import read_image
from ocrlite.train.data import (
    check_eval_on,
    det_label_records,
    export_funsd_crops,
    holdout_split,
    icdar2015_records,
    three_way_split,
    write_crops,
    write_split_manifest,
)
from ocrlite.weights import sha256_file


def test_paddle_det_label_file(tmp_path: Path) -> None:
    items = [{"transcription": "Total", "points": [[1, 2], [30, 2], [30, 12], [1, 12]]},
             {"transcription": "###", "points": [[5, 20], [9, 20], [9, 25], [5, 25]]}]
    (tmp_path / "labels.txt").write_text(f"imgs/a.jpg\t{json.dumps(items)}\n\nimgs/b.jpg\t[]\n", encoding="utf-8")
    a, b = det_label_records(tmp_path / "labels.txt")
    assert a.image == tmp_path / "imgs" / "a.jpg" and a.texts == ("Total", "###") and a.ignore == (False, True)
    assert a.polygons[0].shape == (4, 2) and a.polygons[0][1].tolist() == [30, 2]
    assert b.polygons == () and b.regions() == []
    (tmp_path / "bad.txt").write_text("a.jpg\t[{\"points\": [[1, 2]]}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.txt:1"):
        det_label_records(tmp_path / "bad.txt")


def test_paddle_det_label_file_refuses_an_image_listed_twice(tmp_path: Path) -> None:
    """An image on two lines (also under another spelling of its path) is one error naming both lines: each
    line's boxes would train the other's text as background, and the split by line could hold it out too."""
    box = json.dumps([{"transcription": "a", "points": [[1, 2], [30, 2], [30, 12], [1, 12]]}])
    (tmp_path / "labels.txt").write_text(f"imgs/a.jpg\t{box}\nimgs/b.jpg\t[]\n./imgs/a.jpg\t[]\n",
                                         encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels.txt:3: \./imgs/a.jpg is already listed on line 1"):
        det_label_records(tmp_path / "labels.txt")


@pytest.mark.parametrize("point", ["[NaN, 2]", "[1, null]", "[Infinity, 2]", "[1e400, 2]"])
def test_paddle_det_label_file_refuses_a_coordinate_that_is_not_finite(tmp_path: Path, point: str) -> None:
    """JSON's NaN, Infinity and null pass json.loads; such a box reached shapely's polygon code mid-run (a
    GEOSException traceback at the step that drew the image) and ICDAR scoring. It is one error naming the line."""
    good = json.dumps([{"transcription": "a", "points": [[1, 2], [30, 2], [30, 12], [1, 12]]}])
    (tmp_path / "labels.txt").write_text(
        f"a.jpg\t{good}\nb.jpg\t[{{\"transcription\": \"b\", \"points\": [{point}, [30, 2], [30, 12], [1, 12]]}}]\n",
        encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels.txt:2: a polygon has a coordinate that is not a finite number$"):
        det_label_records(tmp_path / "labels.txt")


@pytest.mark.parametrize("points", ["[[1, 2, 0], [30, 2, 0], [30, 12, 0], [1, 12, 0]]",
                                    "[1, 2, 30, 2, 30, 12, 1, 12]"])
def test_paddle_det_label_file_refuses_points_that_are_not_pairs(tmp_path: Path, points: str) -> None:
    """Points were reshaped to pairs, so [x, y, z] triples (4 of them: 6 "corners" made of mixed coordinates) or
    a flat list read as some other box, trained on and scored without a word. It is one error naming the box."""
    good = json.dumps([{"transcription": "a", "points": [[1, 2], [30, 2], [30, 12], [1, 12]]}])
    (tmp_path / "labels.txt").write_text(
        f"a.jpg\t{good}\nb.jpg\t[{{\"transcription\": \"b\", \"points\": {points}}}]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels.txt:2: box 1 \('b'\): points must be \[x, y\] pairs, got "
                                          + re.escape(json.dumps(json.loads(points)))):
        det_label_records(tmp_path / "labels.txt")


def test_paddle_det_label_file_refuses_a_box_whose_points_are_out_of_order(tmp_path: Path) -> None:
    """Corners written top left, top right, bottom left, bottom right (a box converted from x0,y0,x1,y1 the wrong
    way) make a bow tie: its DB kernel vanished or came out misshapen and scoring repaired it to one triangle, so a
    run trained on such a file learnt next to nothing (hmean 0 on its own training images) without a word."""
    boxes = [{"transcription": "tri", "points": [[10, 10], [100, 10], [50, 60]]},
             {"transcription": "flat", "points": [[10, 90], [100, 90], [100, 90], [10, 90]]},
             {"transcription": "curved", "points": [[0, 0], [50, 5], [100, 0], [100, 20], [50, 25], [0, 20]]},
             {"transcription": "ok", "points": [[120, 10], [200, 12], [198, 40], [121, 38]]},
             {"transcription": "Z", "points": [[120, 50], [200, 50], [120, 80], [200, 82]]}]
    (tmp_path / "labels.txt").write_text(f"a.jpg\t{json.dumps(boxes[:4])}\nb.jpg\t{json.dumps(boxes)}\n",
                                         encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels.txt:2: box 5 \('Z'\) has its 4 points out of order \(two of its "
                                          r"edges cross\); list the corners around the box"):
        det_label_records(tmp_path / "labels.txt")
    (tmp_path / "labels.txt").write_text(f"a.jpg\t{json.dumps(boxes[:4])}\n", encoding="utf-8")
    assert [len(p) for p in det_label_records(tmp_path / "labels.txt")[0].polygons] == [3, 4, 6, 4]


def test_holdout_split_every_5th() -> None:
    train, held = holdout_split(list(range(12)), 5)
    assert held == [4, 9] and train == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]
    assert holdout_split([1, 2], 0) == ([1, 2], [])


def test_three_way_split_keeps_validation_apart_from_held_out() -> None:
    splits = three_way_split(list(range(20)), 5, 4)
    assert splits.held_out == [4, 9, 14, 19]
    assert splits.val == [3, 8, 13, 18] and splits.train == [0, 1, 2, 5, 6, 7, 10, 11, 12, 15, 16, 17]
    assert splits.pick("val") is splits.val and splits.pick("holdout") is splits.held_out
    assert three_way_split([1, 2, 3], 0, 0).train == [1, 2, 3]
    with pytest.raises(ConfigError, match="val_every"):
        check_eval_on("val", 0)
    with pytest.raises(ConfigError, match="holdout, val, train"):
        check_eval_on("test", 5)


def test_split_manifest_has_paths_and_hashes(tmp_path: Path) -> None:
    files = []
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name, encoding="utf-8")
        files.append(tmp_path / name)
    paths = write_split_manifest(tmp_path, "every 5th held out", {"train": files[:1], "eval": files[1:]},
                                 {"rejected": 3})
    assert paths == [tmp_path / "split_train.json", tmp_path / "split_eval.json"]
    data = json.loads((tmp_path / "split_eval.json").read_text(encoding="utf-8"))
    assert data["rule"] == "every 5th held out" and data["rejected"] == 3 and data["split"] == "eval"
    assert data["files"] == [{"path": str(files[1].resolve()), "sha256": sha256_file(files[1])}]


def test_write_crops_rejects_text_outside_the_charset(tmp_path: Path) -> None:
    image = np.full((40, 120, 3), 255, dtype=np.uint8)
    cv2.putText(image, "ab", (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    charset = Charset(list("abc"), use_space_char=True)
    quad = box_quad(FunsdBox((0, 0, 59, 39), "ab"))
    allowed = lambda text: all(ch in charset.chars for ch in text)  # noqa: E731
    label_file, written, rejected = write_crops(
        [(image, quad, "ab"), (image, quad, "abé"), (image, quad, "a c"), (image, quad, "")], tmp_path, allowed
    )
    assert (written, rejected) == (2, 2)
    lines = label_file.read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[1] for line in lines] == ["ab", "a c"]  # 'abé' rejected whole, not shortened
    crop = read_image(tmp_path / lines[0].split("\t")[0])
    assert crop.shape[:2] == (39, 59)


@pytest.mark.data
def test_icdar2015_records(shared_data: Path) -> None:
    records = icdar2015_records(shared_data / "icdar2015")
    assert len(records) == 150 and records[0].image.name == "img_1.jpg"
    assert sum(len(r.polygons) for r in records) == 1860 and sum(sum(r.ignore) for r in records) == 1141
    assert records[0].texts[0] == "Genaxis Theatre" and records[0].polygons[0][0].tolist() == [377, 117]
    train, held = holdout_split(records, 5)
    assert len(held) == 30 and not {r.image for r in train} & {r.image for r in held}


@pytest.mark.data
def test_funsd_lines_group_words_by_row(shared_data: Path) -> None:
    forms = load_funsd_boxes(shared_data / "funsd")
    assert len(forms) == 149 and isinstance(forms[0], FunsdForm)
    assert sum(len(f.words) for f in forms) == 21888  # 22512 words less 624 with empty text
    for form in forms[:20]:
        for line in form.lines:
            x0, y0, x1, y1 = line.box
            inside = [w for w in form.words if w.box[0] >= x0 and w.box[2] <= x1 and w.box[1] >= y0 and w.box[3] <= y1]
            assert set(line.text.split(" ")) <= {t for w in inside for t in w.text.split(" ")}
    # 7411 entities; those spanning several rows give one line per row
    assert sum(len(f.lines) for f in forms) == 8078


@pytest.mark.data
def test_export_funsd_word_crops_split_by_form(shared_data: Path, tmp_path: Path) -> None:
    charset = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
    counts = export_funsd_crops(shared_data / "funsd", tmp_path, lambda t: set(t) <= charset, "words", 2, limit=2)
    forms = load_funsd_boxes(shared_data / "funsd")[:2]
    assert counts["train"]["forms"] == 1 and counts["held_out"]["forms"] == 1
    held_words = [w.text for w in forms[1].words]
    assert counts["held_out"]["crops"] + counts["held_out"]["rejected"] == len(held_words)
    assert counts["held_out"]["rejected"] == sum(not set(t) <= charset for t in held_words) > 0
    lines = (tmp_path / "held_out" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[1] for line in lines] == [t for t in held_words if set(t) <= charset]
    split = json.loads((tmp_path / "split_held_out.json").read_text(encoding="utf-8"))
    assert [e["path"] for e in split["files"]] == [str(forms[1].image.resolve())]
    assert split["counts"] == counts


@pytest.mark.parametrize(("annotation", "problem"), [
    (b"\xff\xfe", "not UTF-8 text (byte 0xff at offset 0)"),
    (b'{"form": [', "not valid JSON"),
    (b'{"form": [{"words": [{"text": "x"}]}]}', "not a FUNSD annotation (a word without 'text' and a 'box' of 4 "
                                                "numbers)"),
])
def test_bad_funsd_annotation_is_a_config_error_naming_the_file(tmp_path: Path, annotation: bytes,
                                                                problem: str) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "f1.json").write_bytes(annotation)
    with pytest.raises(ConfigError) as caught:
        load_funsd_boxes(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'annotations' / 'f1.json'}: {problem}")


def test_label_files_that_are_missing_or_not_utf8_are_config_errors(tmp_path: Path) -> None:
    """The three trainers' label readers share eval's reader: one line naming the file, not a traceback."""
    from ocrlite.train.cls_task import label_file_crops
    from ocrlite.train.data import det_label_records
    from ocrlite.train.rec_task import read_label_file

    binary = tmp_path / "labels.txt"
    binary.write_bytes(b"a.png\t\xff\xfe\n")
    readers = (lambda p: read_label_file(p, Charset(list("ab"), use_space_char=True)), det_label_records,
               lambda p: label_file_crops(p, 5, 10, 8))
    for read in readers:
        with pytest.raises(ConfigError, match=r"labels.txt: not UTF-8 text \(byte 0xff"):
            read(binary)
        with pytest.raises(ConfigError, match="missing.txt: label file not found"):
            read(tmp_path / "missing.txt")


def test_a_funsd_box_reaching_outside_its_image_is_cut_within_the_image() -> None:
    """A ground-truth box far outside the form (x1 = 99999) asked crop_quad for a 30 GB crop: an OpenCV
    out-of-memory traceback in ``eval rec|cls`` on FUNSD. The box is clipped to the image; one wholly outside
    it has no area there and is left out, as a box without area always was."""
    from ocrlite.eval.datasets import box_crops

    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    inside, reaching, outside = (FunsdBox((5, 3, 59, 39), "a"), FunsdBox((5, 3, 400, 300), "b"),
                                 FunsdBox((100, 50, 120, 70), "c"))
    cut = box_crops(image, [inside, reaching, outside])
    assert [box.text for _, box in cut] == ["a", "b"]
    assert np.array_equal(cut[1][0], cut[0][0])



@pytest.mark.parametrize("task", ["det", "cls"])
def test_a_funsd_image_without_its_annotation_stops_training_as_a_missing_icdar_gt_does(
        shared_data: Path, tmp_path: Path, task: str) -> None:
    """It was left out without a word, so a det or cls run trained and scored one form fewer than the folder
    holds; now its missing annotation is named, as a missing ICDAR 2015 GT file is."""
    from ocrlite.train.cls_task import funsd_crops
    from ocrlite.train.data import funsd_records

    funsd = tmp_path / "funsd"
    for sub in ("annotations", "images"):
        (funsd / sub).mkdir(parents=True)
    form = "0000971160"
    (funsd / "annotations" / f"{form}.json").symlink_to(shared_data / "funsd" / "annotations" / f"{form}.json")
    for name in (form, "0000989556"):
        (funsd / "images" / f"{name}.png").symlink_to(shared_data / "funsd" / "images" / f"{name}.png")
    with pytest.raises(ConfigError) as caught:
        funsd_records(funsd, "lines") if task == "det" else funsd_crops(funsd, "lines", 5, 0, 8)
    assert str(caught.value) == f"{funsd / 'annotations' / '0000989556.json'}: ground truth file not found"
