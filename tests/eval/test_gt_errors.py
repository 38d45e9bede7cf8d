"""``ocrlite eval`` on a benchmark folder whose ground truth is missing, unreadable or malformed: one line naming
the file (and line), exit 2, as a corrupt image in the set is; never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ocrlite.cli import main

NOT_UTF8 = b"\xff\xfe\x00x"


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 64, 3), 255, np.uint8)).save(path)


def _icdar(root: Path, gt: bytes | None) -> str:
    """img_1 with a good GT file, img_2 with ``gt`` (None: no GT file)."""
    _image(root / "images" / "img_1.jpg")
    _image(root / "images" / "img_2.jpg")
    (root / "gt").mkdir()
    (root / "gt" / "gt_img_1.txt").write_text("1,1,20,1,20,10,1,10,HELLO\n")
    if gt is not None:
        (root / "gt" / "gt_img_2.txt").write_bytes(gt)
    return "gt/gt_img_2.txt"


def _word_gt(root: Path, gt: bytes) -> str:
    _image(root / "images" / "word_1.png")
    (root / "gt").mkdir()
    (root / "gt" / "gt.txt").write_bytes(gt)
    return "gt/gt.txt"


def _tags(root: Path, gt: bytes) -> str:
    _image(root / "images" / "a.png")
    (root / "gt").mkdir()
    (root / "gt" / "train.tags").write_bytes(gt)
    return "gt/train.tags"


def _labels(root: Path, gt: bytes) -> str:
    _image(root / "a.png")
    (root / "labels.txt").write_bytes(gt)
    return "labels.txt"


def _funsd(root: Path, gt: bytes | None) -> str:
    """f1 with the annotation ``gt`` (None: no annotation file, f0 a good form beside it)."""
    _image(root / "images" / "f1.png")
    (root / "annotations").mkdir()
    if gt is None:
        _image(root / "images" / "f0.png")
        (root / "annotations" / "f0.json").write_text('{"form": [{"words": [{"text": "x", "box": [1, 2, 9, 9]}]}]}')
    else:
        (root / "annotations" / "f1.json").write_bytes(gt)
    return "annotations/f1.json"


@pytest.mark.parametrize(("task", "make", "gt", "problem"), [
    ("det", _icdar, None, ": ground truth file not found"),
    ("det", _icdar, b"1,2,3,garbage\n", ":1: expected 'x1,y1,...,x4,y4,text', got '1,2,3,garbage'"),
    ("det", _icdar, b"1,1,9,1,9,9,1,9,ok\n1,1,9,1,x,9,1,9,bad\n",
     ":2: expected 'x1,y1,...,x4,y4,text', got '1,1,9,1,x,9,1,9,bad'"),
    ("det", _icdar, NOT_UTF8, ": not UTF-8 text (byte 0xff at offset 0)"),
    ("rec", _word_gt, b'word_1.png "no comma"\n', ":1: expected 'name, \"text\"', got 'word_1.png \"no comma\"'"),
    ("rec", _word_gt, NOT_UTF8, ": not UTF-8 text (byte 0xff at offset 0)"),
    ("rec", _tags, b"a.png\n", ":1: expected 'path LABEL', got 'a.png'"),
    ("cls", _tags, NOT_UTF8, ": not UTF-8 text (byte 0xff at offset 0)"),
    ("rec", _labels, b"a.png HELLO\n", ":1: expected 'image path<TAB>text', got 'a.png HELLO'"),
    # a FUNSD image without its annotation was left out without a word (ICDAR 2015 refuses a missing GT file)
    *[(task, _funsd, None, ": ground truth file not found") for task in ("det", "cls", "rec", "e2e")],
    ("e2e", _funsd, b'{"form": [', ": not valid JSON: Expecting value: line 1 column 11 (char 10)"),
    ("e2e", _funsd, b'{"forms": []}', ": not a FUNSD annotation (no 'form' list)"),
    ("e2e", _funsd, b'{"form": [{"text": "x"}]}',
     ": not a FUNSD annotation (an entity without 'words' or a word without 'text' as a string)"),
    ("e2e", _funsd, b'{"form": [{"words": [{"text": 7}]}]}',
     ": not a FUNSD annotation (an entity without 'words' or a word without 'text' as a string)"),
    ("e2e", _funsd, NOT_UTF8, ": not UTF-8 text (byte 0xff at offset 0)"),
    # a word box of 2 numbers: det, cls and rec cut FUNSD's boxes and stopped with an IndexError traceback
    *[(task, _funsd, b'{"form": [{"words": [{"text": "x", "box": [1, 2]}]}]}',
       ": not a FUNSD annotation (a word without 'text' and a 'box' of 4 numbers)") for task in ("det", "cls", "rec")],
])
def test_bad_ground_truth_is_one_line_and_exit_2(tmp_path: Path, task: str, make: Callable[..., str],
                                                 gt: bytes | None, problem: str) -> None:
    gt_file = make(tmp_path, gt)
    result = CliRunner().invoke(main, ["--threads", "1", "eval", task, "--data", str(tmp_path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: {tmp_path / gt_file}{problem}\n"


def test_split_manifests_resolve_their_root_and_name_what_they_cannot_use(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from ocrlite.errors import ConfigError
    from ocrlite.eval.harness import load_samples

    data = tmp_path / "ic"
    _icdar(data, b"0,0,10,0,10,10,0,10,HELLO\n")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "root.json").write_text(json.dumps({"root": "../ic/images", "files": ["img_1.jpg"]}))
    monkeypatch.chdir(tmp_path)  # the root is read against the manifest's folder, not the working folder
    assert len(load_samples("det", data, split=splits / "root.json")[1]) == 1
    (splits / "bad.json").write_text(json.dumps({"files": [{"sha256": "ab"}]}))
    with pytest.raises(ConfigError, match=r"bad.json: KeyError: 'path'$"):
        load_samples("det", data, split=splits / "bad.json")
    (splits / "other.json").write_text(json.dumps({"root": "../ic/images", "files": ["img_1.jpg", "img_9.jpg"]}))
    with pytest.raises(ConfigError, match=r"other.json: 1 of its 2 images are not samples of .*img_9.jpg\)$"):
        load_samples("det", data, split=splits / "other.json")
