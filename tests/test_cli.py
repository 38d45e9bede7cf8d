"""The CLI end to end, as users run it: real models, real files, exit codes, one-line errors."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import click
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont

from ocrlite.cli import main

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _run(*args: str) -> tuple[int, list[str], list[str]]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout.splitlines(), result.stderr.splitlines()


def _text_image(text: str, size: tuple[int, int] = (360, 80)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    font = ImageFont.truetype(FONT, 40) if Path(FONT).is_file() else ImageFont.load_default(40)
    ImageDraw.Draw(image).text((12, 14), text, fill="black", font=font)
    return image


def _huge_png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height; the pixel data is absent (never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    files = {"empty": root / "empty.png", "text": root / "notes.png", "truncated": root / "cut.jpg",
             "huge": root / "huge.png", "tiny": root / "tiny.png", "empty_dir": root / "nothing"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not an image\n")
    buffer = io.BytesIO()
    _text_image("TRUNCATED").save(buffer, "JPEG", quality=90)
    files["truncated"].write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    _huge_png_header(files["huge"], 30000, 30000)
    Image.new("RGB", (1, 1), "white").save(files["tiny"])
    files["empty_dir"].mkdir()
    return files


def test_detect_quick_start_prints_boxes() -> None:
    code, out, err = _run("detect", str(SAMPLE))
    assert code == 0, err
    record = json.loads(out[0])
    assert (record["width"], record["height"]) == (640, 300)
    assert len(record["boxes"]) == 4
    first = record["boxes"][0]
    assert len(first["points"]) == 4 and 0.6 <= first["score"] <= 1.0
    ys = [box["points"][0][1] for box in record["boxes"]]
    assert ys == sorted(ys)


@pytest.mark.parametrize("kind, message", [
    ("empty", "empty file"),
    ("text", "not a recognised image"),
    ("truncated", "truncated"),
    ("huge", "30000x30000"),
    ("empty_dir", "no images found"),
])
def test_bad_input_gets_one_line_and_the_rest_is_processed(
    bad_inputs: dict[str, Path], kind: str, message: str
) -> None:
    code, out, err = _run("detect", str(bad_inputs[kind]), str(SAMPLE))
    assert code == 1
    assert len(err) == 1 and err[0].startswith("ocrlite: error: ") and message in err[0]
    assert str(bad_inputs[kind]) in err[0]
    assert [json.loads(line)["image"] for line in out] == [str(SAMPLE)]


def test_missing_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "gone.png"
    code, out, err = _run("ocr", str(missing), str(SAMPLE))
    assert code == 1 and len(out) == 1
    assert len(err) == 1 and err[0].startswith(f"ocrlite: error: {missing}: no such file")


def test_missing_file_keeps_its_empty_page_in_txt(tmp_path: Path) -> None:
    """``ocr a.png gone.png b.png --format txt``: the file that could not be read is an empty page between form
    feeds, as a corrupt one is, so the pages still line up with the inputs (the missing one was left out)."""
    missing = tmp_path / "gone.png"
    result = CliRunner().invoke(main, ["ocr", str(SAMPLE), str(missing), str(SAMPLE), "--format", "txt"])
    pages = result.stdout.split("\f")
    assert result.exit_code == 1 and len(pages) == 3
    assert pages[1] == "" and pages[0] == pages[2] and "48213" in pages[2]
    assert result.stderr.splitlines() == [f"ocrlite: error: {missing}: no such file"]


@pytest.mark.parametrize("command", ["ocr", "detect", "recognize", "classify"])
def test_a_missing_file_is_the_same_line_on_every_command(tmp_path: Path, command: str) -> None:
    """``recognize``/``classify`` said ``no such file or directory`` before any other line, ``ocr`` and ``detect``
    ``no such file`` in the input's place: now every printing command says the latter."""
    missing, bad_text = tmp_path / "gone.png", tmp_path / "notes.png"
    bad_text.write_text("not an image\n")
    code, out, err = _run(command, str(SAMPLE), str(missing), str(bad_text))
    assert code == 1 and len(out) == 1
    assert err == [f"ocrlite: error: {missing}: no such file",
                   f"ocrlite: error: {bad_text}: not a recognised image file"]


def test_detect_txt_keeps_an_empty_block_for_an_image_it_cannot_read(bad_inputs: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    """``detect a.png bad.png gone.png b.png --format txt``: each image's boxes end with a blank line, an image
    that could not be read (or is missing) an empty block (as ``ocr``'s txt keeps its empty page), so the blocks
    line up with the inputs: the boxes of b.png are never taken for bad.png's."""
    missing = tmp_path / "gone.png"
    result = CliRunner().invoke(main, ["detect", str(SAMPLE), str(bad_inputs["text"]), str(missing), str(SAMPLE),
                                       "--format", "txt"])
    blocks: list[list[str]] = [[]]
    for line in result.stdout.splitlines():  # a blank line ends each image's block
        if line:
            blocks[-1].append(line)
        else:
            blocks.append([])
    assert result.exit_code == 1 and len(blocks) == 5 and blocks[4] == []
    assert blocks[1] == blocks[2] == [] and blocks[0] == blocks[3] and len(blocks[0]) == 4
    assert result.stderr.splitlines() == [f"ocrlite: error: {bad_inputs['text']}: not a recognised image file",
                                          f"ocrlite: error: {missing}: no such file"]


@pytest.mark.parametrize("command, columns", [("ocr", 9), ("detect", 4), ("recognize", 3), ("classify", 3)])
def test_a_tab_in_a_file_name_keeps_the_tsv_columns(tmp_path: Path, command: str, columns: int) -> None:
    """The image column of a printed tsv row is the path with its tabs and line breaks as spaces (as the text
    column's are): a file named ``a<TAB>b.png`` shifted every later column of its rows one to the right."""
    path = tmp_path / "scan\tof\nmay.png"
    path.write_bytes(SAMPLE.read_bytes())
    code, out, err = _run(command, str(path), "--format", "tsv")
    assert code == 0, err
    assert len(out) > 1 and {len(row.split("\t")) for row in out} == {columns}
    assert {row.split("\t")[0] for row in out[1:]} == {str(tmp_path / "scan of may.png")}


def test_one_pixel_image_has_no_boxes(bad_inputs: dict[str, Path]) -> None:
    code, out, _ = _run("ocr", str(bad_inputs["tiny"]))
    assert code == 0
    assert json.loads(out[0]) == {"image": str(bad_inputs["tiny"]), "width": 1, "height": 1, "lines": []}


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16"])
def test_image_modes_are_read(tmp_path: Path, mode: str) -> None:
    source = _text_image("HELLO 42").convert("L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(source).astype(np.uint16) * 257)
    else:
        image = _text_image("HELLO 42").convert(mode)
    path = tmp_path / f"mode_{mode.replace(';', '')}.png"
    image.save(path)
    code, out, err = _run("ocr", str(path), "--format", "txt")
    assert code == 0, err
    assert out == ["HELLO42"] or out == ["HELLO 42"]


def test_exif_rotated_jpeg_is_turned_upright(tmp_path: Path) -> None:
    upright = _text_image("HELLO 42")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera would store it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    stored.save(path, "JPEG", quality=95, exif=exif)
    code, out, _ = _run("ocr", str(path))
    record = json.loads(out[0])
    assert code == 0 and (record["width"], record["height"]) == upright.size
    assert "".join(line["text"] for line in record["lines"]).replace(" ", "") == "HELLO42"


def test_ocr_txt_and_draw(tmp_path: Path) -> None:
    drawn = tmp_path / "drawn.png"
    code, out, _ = _run("ocr", str(SAMPLE), "--format", "txt", "--draw", str(drawn))
    assert code == 0
    assert out[1].replace(" ", "") == "InvoiceNo.48213"
    image = cv2.imread(str(drawn))
    assert image.shape == (300, 1280, 3)


def test_detect_draw_into_folder(tmp_path: Path) -> None:
    code, _, _ = _run("detect", str(SAMPLE), str(SAMPLE), "--draw", str(tmp_path / "viz"))
    assert code == 0
    assert (tmp_path / "viz" / "sample.png").is_file()


@pytest.mark.parametrize("command", ["detect", "ocr"])
def test_drawings_of_images_with_the_same_stem_do_not_overwrite_each_other(tmp_path: Path, command: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _text_image("ONE").save(tmp_path / "a" / "page.png")
    _text_image("TWO").save(tmp_path / "b" / "page.jpg")
    code, _, _ = _run(command, str(tmp_path / "a"), str(tmp_path / "b"), "--draw", str(tmp_path / "viz"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "viz").iterdir()) == ["page.png", "page_2.png"]


@pytest.mark.parametrize("command", ["recognize", "classify"])
def test_crops_of_the_same_name_in_two_folders_stay_apart_in_txt(command: str, tmp_path: Path) -> None:
    """txt printed only the base name: crops/x/c1.png and crops/y/c1.png could not be told apart."""
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        _text_image("HELLO").save(tmp_path / folder / "c1.png")
    code, out, _ = _run(command, str(tmp_path / "x"), str(tmp_path / "y"))
    assert code == 0 and [line.split("\t")[0] for line in out] == [str(tmp_path / "x" / "c1.png"),
                                                                  str(tmp_path / "y" / "c1.png")]


def test_draw_names_a_file_for_one_page_and_refuses_it_for_several(tmp_path: Path) -> None:
    """A one-page PDF is drawn into the file --draw names (it made a folder of that name); several pages into
    a file name is one line, exit 2, before any work."""
    page = Image.open(SAMPLE).convert("RGB")
    page.save(tmp_path / "one.pdf", resolution=100)
    page.save(tmp_path / "two.pdf", save_all=True, append_images=[page], resolution=100)
    drawn = tmp_path / "d.png"
    code, out, _ = _run("ocr", str(tmp_path / "one.pdf"), "--draw", str(drawn), "--dpi", "100")
    assert code == 0 and drawn.is_file() and cv2.imread(str(drawn)).shape[:2] == (300, 1280)
    code, out, err = _run("ocr", str(tmp_path / "two.pdf"), "--draw", str(tmp_path / "e.png"))
    assert (code, out) == (2, []) and not (tmp_path / "e.png").exists()
    assert err == [f"ocrlite: error: --draw {tmp_path / 'e.png'} names one image file, but there is more than one "
                   "image or page to draw; give a folder (see 'ocrlite ocr --help')"]
    code, _, _ = _run("ocr", str(tmp_path / "two.pdf"), "--draw", str(tmp_path / "viz"), "--dpi", "50")
    assert code == 0 and sorted(p.name for p in (tmp_path / "viz").iterdir()) == ["two_p1.png", "two_p2.png"]


@pytest.mark.parametrize("command", ["detect", "ocr"])
@pytest.mark.parametrize("name", ["x.png", "viz"])
def test_a_draw_place_that_cannot_be_written_is_refused_before_reading(command: str, name: str,
                                                                        tmp_path: Path) -> None:
    """--draw under a file was an "unexpected FileExistsError" blamed on the image, after its results were printed."""
    (tmp_path / "file").write_bytes(b"")
    code, out, err = _run(command, str(SAMPLE), "--draw", str(tmp_path / "file" / name))
    assert (code, out) == (2, [])
    assert err == [f"ocrlite: error: cannot write to {tmp_path / 'file'}{'' if name == 'x.png' else '/viz'}: "
                   f"{tmp_path / 'file'} is a file, not a folder"]


@pytest.mark.parametrize("command", ["detect", "recognize", "classify"])
def test_image_commands_say_they_read_images_and_which_pages(command: str, tmp_path: Path) -> None:
    """A PDF was "not a recognised image file"; of a multi-page TIFF only the first page was read, silently."""
    page = Image.open(SAMPLE).convert("RGB")
    page.save(tmp_path / "doc.pdf", resolution=100)
    page.save(tmp_path / "scan.tiff", save_all=True, append_images=[page])
    code, out, err = _run(command, str(tmp_path / "doc.pdf"), str(tmp_path / "scan.tiff"), "--format", "json")
    assert code == 1 and len(out) == 1 and json.loads(out[0])["image"] == str(tmp_path / "scan.tiff")
    assert err == [f"ocrlite: error: {tmp_path / 'doc.pdf'}: {command} reads images, not PDFs; use 'ocrlite ocr' "
                   f"for PDFs", f"ocrlite: warning: {tmp_path / 'scan.tiff'}: {command} reads the first of its 2 "
                   "pages; 'ocrlite ocr' reads them all"]


def test_recognize_and_classify_crops(tmp_path: Path) -> None:
    _text_image("HELLO").save(tmp_path / "a.png")
    _text_image("HELLO").rotate(180).save(tmp_path / "b.png")
    code, out, _ = _run("recognize", str(tmp_path), "--cls", "--json")
    assert code == 0
    texts = {Path(r["image"]).name: r["text"] for r in map(json.loads, out)}
    assert texts == {"a.png": "HELLO", "b.png": "HELLO"}
    code, out, _ = _run("classify", str(tmp_path))
    assert code == 0
    angles = {line.split("\t")[0]: line.split("\t")[1] for line in out}
    assert angles == {str(tmp_path / "a.png"): "0", str(tmp_path / "b.png"): "180"}


@pytest.mark.parametrize("command", ["detect", "recognize", "classify", "ocr"])
def test_an_empty_format_is_a_usage_error_not_a_default(command: str) -> None:
    """--format '' (an unset "$FMT") printed json, even for recognize and classify, whose default is txt."""
    code, out, err = _run(command, str(SAMPLE), "--format", "")
    allowed = "json, txt, tsv"
    assert (code, out, err) == (2, [], [f"ocrlite: error: Invalid value for --format: '' (choose from {allowed}) "
                                        f"(see 'ocrlite {command} --help')"])


def test_unknown_config_key_is_one_line_exit_2() -> None:
    code, out, err = _run("ocr", str(SAMPLE), "--set", "det.postprocess.box_treshold=0.5")
    assert code == 2 and out == []
    assert len(err) == 1 and "box_treshold" in err[0] and "allowed: thresh, box_thresh" in err[0]


@pytest.mark.parametrize(("args", "message"), [
    (["ocr", "--bogus", "x.png"], "ocrlite: error: No such option '--bogus' (see 'ocrlite ocr --help')"),
    (["nosuch"], "ocrlite: error: No such command 'nosuch' (see 'ocrlite --help')"),
    (["detect", "--det-limit-side-len", "abc", "x.png"], "ocrlite: error: Invalid value for '--det-limit-side-len'"),
    *[([command], f"ocrlite: error: no inputs: give IMAGES, '-' or --files-from (see 'ocrlite {command} --help')")
      for command in ("ocr", "detect", "recognize", "classify")],
    *[(["ocr", str(SAMPLE), *ray], "ocrlite: error: --ray-address, --threads-per-worker, --pages-per-job and "
                                   "--ray-input need --executor ray")  # in stdout mode too: they were ignored there
      for ray in (["--pages-per-job", "2"], ["--ray-address", "auto"], ["--ray-input", "bytes"])],
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = _run(*args)
    assert (code, out, len(err)) == (2, [], 1)
    assert err[0].startswith(message)


@pytest.mark.parametrize("command", ["detect", "recognize", "classify", "ocr"])
def test_every_printing_command_takes_paths_from_stdin_and_a_list(command: str, tmp_path: Path) -> None:
    """``-`` and ``--files-from`` were ocr's only: ``detect -`` looked for a file named '-'. Stdin given twice
    (``- --files-from -``) is refused instead of read twice, the second time empty."""
    direct = CliRunner().invoke(main, [command, str(SAMPLE), "--format", "tsv"])
    assert direct.exit_code == 0, direct.stderr
    listed = tmp_path / "list.txt"
    listed.write_text(f"# scans\n{SAMPLE}\n", encoding="utf-8")
    for args, stdin in (([command, "-"], f"{SAMPLE}\n"), ([command, "--files-from", str(listed)], None),
                        ([command, "--files-from", "-"], f"{SAMPLE}\n")):
        result = CliRunner().invoke(main, [*args, "--format", "tsv"], input=stdin)
        assert (result.exit_code, result.stdout, result.stderr) == (0, direct.stdout, ""), args
    twice = CliRunner().invoke(main, [command, "-", "--files-from", "-"], input=f"{SAMPLE}\n")
    assert (twice.exit_code, twice.stdout) == (2, "")
    assert twice.stderr.startswith("ocrlite: error: '-' and --files-from - both read the paths from stdin")


@pytest.mark.parametrize(("value", "reason"), [("abc", "'abc' is not a valid integer range"),
                                               ("0", "0 is not in the range x>=1")])
def test_a_bad_ocrlite_threads_names_the_variable_not_the_flag(value: str, reason: str) -> None:
    """A bad OCRLITE_THREADS was blamed on --threads, which was not typed; a typed --threads still wins over it."""
    result = CliRunner().invoke(main, ["ocr", str(SAMPLE)], env={"OCRLITE_THREADS": value})
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"ocrlite: error: Invalid value for the environment variable OCRLITE_THREADS: {reason} (see 'ocrlite --help')"]
    typed = CliRunner().invoke(main, ["--threads", "x", "ocr", str(SAMPLE)], env={"OCRLITE_THREADS": value})
    assert typed.exit_code == 2 and "Invalid value for '--threads': 'x'" in typed.stderr


def test_ctrl_c_outside_batch_mode_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during a stdout-mode or eval run: one line and the shell's code for SIGINT, as batch mode and
    training give (it was "error: aborted", exit 1)."""
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ocrlite.api.OCR.__init__", interrupted)
    for args in (["ocr", str(SAMPLE)], ["eval", "rec", "--data", str(SAMPLE.parent)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 130 and result.output.strip() == "ocrlite: error: interrupted", args


def test_options_reach_the_detector() -> None:
    code, out, _ = _run("detect", str(SAMPLE), "--box-thresh", "0.99")
    assert code == 0 and json.loads(out[0])["boxes"] == []


def test_threads_option_sets_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        code, out, _ = _run("--threads", "1", "detect", str(SAMPLE))
        assert code == 0 and len(json.loads(out[0])["boxes"]) == 4
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_ocr_stdout_reads_every_page_of_pdfs_and_tiffs(tmp_path: Path) -> None:
    first, second = _text_image("HELLO 42"), _text_image("PAGE 2")
    first.save(tmp_path / "scan.tif", save_all=True, append_images=[second])  # TIFF first: Pillow's
    first.save(tmp_path / "doc.pdf", save_all=True, append_images=[second], resolution=72)  # PDF save leaves state
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    code, out, err = _run("ocr", str(tmp_path))
    records = [json.loads(line) for line in out]
    assert code == 1 and len(err) == 1 and "broken.pdf" in err[0]
    pages = [(Path(r["image"]).name, r["page"], "".join(line["text"] for line in r["lines"]).replace(" ", ""))
             for r in records]
    assert pages == [("doc.pdf", 1, "HELLO42"), ("doc.pdf", 2, "PAGE2"),
                     ("scan.tif", 1, "HELLO42"), ("scan.tif", 2, "PAGE2")]


@pytest.mark.parametrize(("override", "message"), [
    ("det.postprocess.score_mode=bogus",
     "det.postprocess.score_mode: 'bogus' is not allowed; choose one of: fast, slow"),
    ("det.preprocess.limit_type=bogus", "det.preprocess.limit_type: 'bogus' is not allowed; choose one of: max, min"),
    ("det.foo=1", "det: unknown key 'foo'; allowed: model, weights, preprocess, postprocess, backend, train, onnx"),
    ("det.backend=tensorrt", "det.backend: 'tensorrt' is not allowed; choose one of: torch, onnxruntime"),
    ("rec.preprocess.batch_size=0", "rec.preprocess.batch_size: 0 is out of range; allowed: 1..4096"),
    ("pipeline.drop_score=high", "pipeline.drop_score: expected a finite number, got 'high'"),
    ("det.postprocess.thresh=.nan", "det.postprocess.thresh: expected a finite number, got nan"),
    ("det.preprocess.mean=[.inf,0,0]", "det.preprocess.mean: expected a list of float, got [inf, 0, 0]"),
    ("cls.postprocess.labels=[0,90]", "cls.postprocess.labels: (0, 90) is not allowed; choose one of: 0, 180"),
    ("cls.postprocess.labels=[180,180]",
     "cls.postprocess.labels: (180, 180) names a value twice; each must be different"),
    ("page.postprocess.labels=[0,90,90,270]",
     "page.postprocess.labels: (0, 90, 90, 270) names a value twice; each must be different"),
])
def test_bad_config_values_are_one_line_and_exit_2(override: str, message: str) -> None:
    code, out, err = _run("ocr", str(SAMPLE), "--set", override)
    assert (code, out) == (2, [])
    assert err == [f"ocrlite: error: {message} (from the override {override!r})"]


@pytest.mark.parametrize(("command", "key", "message"), [
    ("detect", "det.postprocess.box_thresh", "det.postprocess.box_thresh: 7.0 is out of range; allowed: 0.0..1.0"),
    ("classify", "cls.postprocess.thresh", "cls.postprocess.thresh: 7.0 is out of range; allowed: 0.0..1.0"),
    ("ocr", "pipeline.drop_score", "pipeline.drop_score: 7.0 is out of range; allowed: 0.0..1.0"),
])
def test_a_key_set_twice_names_the_override_whose_value_is_bad(command: str, key: str, message: str) -> None:
    """The last --set of a key is the one used, so its bad value's error names it, not the earlier good one."""
    code, out, err = _run(command, str(SAMPLE), "--set", f"{key}=0.5", "--set", f"{key}=7")
    assert (code, out, err) == (2, [], [f"ocrlite: error: {message} (from the override '{key}=7')"])


@pytest.mark.parametrize(("command", "flag", "key"), [
    ("detect", ["--box-thresh", "0.99"], "det.postprocess.box_thresh"),
    ("ocr", ["--box-thresh", "0.99"], "det.postprocess.box_thresh"),
    ("ocr", ["--drop-score", "0.99"], "pipeline.drop_score"),
])
def test_a_flag_wins_over_a_set_of_its_key(command: str, flag: list[str], key: str) -> None:
    """Every flag that sets a config value beats a --set of that key, whichever the order typed: the sample's
    boxes and lines all score under 0.99, so the flag's value leaves none and --set's 0.3 keeps them."""
    alone, with_set = (_run(command, str(SAMPLE), *flag, *more) for more in ([], ["--set", f"{key}=0.3"]))
    set_only = _run(command, str(SAMPLE), "--set", f"{key}=0.3")
    assert alone[0] == set_only[0] == 0 and alone[1] != set_only[1]
    assert with_set == alone


@pytest.mark.parametrize(("args", "message"), [
    (["ocr", "--box-thresh", "-1"], "det.postprocess.box_thresh: -1.0 is out of range; allowed: 0.0..1.0 "
                                    "(from --box-thresh)"),
    (["ocr", "--det-limit-side-len", "0"], "det.preprocess.limit_side_len: 0 is out of range; allowed: 32..8192 "
                                           "(from --det-limit-side-len)"),
    (["detect", "--unclip-ratio", "-5"], "det.postprocess.unclip_ratio: -5.0 is out of range; allowed: 0.0..10.0 "
                                         "(from --unclip-ratio)"),
    (["detect", "--config", "det_ppocrv3.yaml", "--box-thresh", "7"],
     "det.postprocess.box_thresh: 7.0 is out of range; allowed: 0.0..1.0 (from --box-thresh)"),
    (["ocr", "--drop-score", "2"], "pipeline.drop_score: 2.0 is out of range; allowed: 0.0..1.0 (from --drop-score)"),
    (["ocr", "--set", "pipeline.drop_score=0.3", "--drop-score", "nan"],  # the flag's value is the one checked
     "pipeline.drop_score: expected a finite number, got nan (from --drop-score)"),
    (["ocr", "--box-thresh", "2", "--set", "det.postprocess.box_thresh=0.5"],  # so is --box-thresh's
     "det.postprocess.box_thresh: 2.0 is out of range; allowed: 0.0..1.0 (from --box-thresh)"),
    (["ocr", "--cls", "--set", "cls=null"],
     "pipeline.use_cls: true needs a cls stage, and this pipeline has none (from --cls)"),
    (["recognize", "--cls", "--set", "cls=null"],
     "pipeline.use_cls: true needs a cls stage, and this pipeline has none (from --cls)"),
    (["ocr", "--set", "det.postprocess.box_thresh=-1"],  # a --set override keeps naming the override
     "det.postprocess.box_thresh: -1.0 is out of range; allowed: 0.0..1.0 "
     "(from the override 'det.postprocess.box_thresh=-1')"),
])
def test_bad_flag_values_name_the_flag(args: list[str], message: str, tmp_path: Path) -> None:
    """A flag that becomes a config override, or a setting passed to OCR (--drop-score): its bad value's error names
    the flag typed, not the override or the setting alone, in stdout and batch mode."""
    for mode in ([], ["-o", str(tmp_path / "out")]) if args[0] == "ocr" else ([],):
        code, out, err = _run(*args, str(SAMPLE), *mode)
        assert (code, out, err) == (2, [], [f"ocrlite: error: {message}"]), mode


@pytest.mark.parametrize("args", [
    ["ocr", str(SAMPLE), "--set", "det.weights=null"],
    ["ocr", str(SAMPLE), "--config", "zoo/mobilenet_v1_det.yaml"],  # a net to train, no weights yet
    ["recognize", str(SAMPLE), "--set", "rec.weights="],
    ["classify", str(SAMPLE), "--set", "cls.weights=null"],
    ["ocr", str(SAMPLE), "--rotate-pages", "--set", "page.weights=null"],
])
def test_a_stage_without_weights_is_refused_not_run_at_random(args: list[str]) -> None:
    code, out, err = _run(*args)
    assert (code, out, len(err)) == (2, [], 1)
    assert ".weights: none given, and a net without trained weights reads nothing useful" in err[0]


def test_every_printing_command_takes_format_and_output(tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    image = cv2.imread(str(SAMPLE))
    cv2.imwrite(str(crops / "invoice.png"), image[95:135, 40:350])
    code, out, _ = _run("detect", "--format", "json", str(SAMPLE))
    assert code == 0 and len(json.loads(out[0])["boxes"]) == 4
    code, out, _ = _run("recognize", "--format", "json", "--no-cls", str(crops))
    assert code == 0 and json.loads(out[0])["text"] == "Invoice No. 48213"
    target = tmp_path / "angles.tsv"
    code, out, _ = _run("classify", "--model", "ppocr-v4", "--format", "tsv", "-o", str(target), str(crops))
    assert (code, out) == (0, [])
    header, row = target.read_text().splitlines()
    assert header == "image\tangle\tscore" and row.split("\t")[:2] == [str(crops / "invoice.png"), "0"]
    code, out, _ = _run("ocr", "--format", "tsv", str(SAMPLE))
    assert code == 0 and out[0].split("\t")[:3] == ["image", "page", "line"] and len(out) == 5


@pytest.mark.parametrize("command", ["recognize", "classify"])
def test_crop_commands_print_txt_by_default_as_their_help_says(command: str, tmp_path: Path) -> None:
    crop = tmp_path / "invoice.png"
    cv2.imwrite(str(crop), cv2.imread(str(SAMPLE))[95:135, 40:350])
    code, help_text, _ = _run(command, "--help")
    options = " ".join(" ".join(help_text).split())
    assert code == 0 and "--format FMT What to print: txt (default" in options and "json (default)" not in options
    code, out, err = _run(command, str(crop))
    assert (code, err) == (0, [])
    assert len(out) == 1 and out[0].split("\t")[0] == str(crop)  # txt: path<TAB>value<TAB>score, not JSON


@pytest.mark.parametrize("command", ["recognize", "classify"])
def test_json_alias_beside_another_format_is_a_usage_error(command: str, tmp_path: Path) -> None:
    crop = tmp_path / "invoice.png"
    cv2.imwrite(str(crop), cv2.imread(str(SAMPLE))[95:135, 40:350])
    code, out, err = _run(command, str(crop), "--json", "--format", "tsv")
    assert (code, out) == (2, [])
    assert "--json means --format json; it conflicts with --format tsv" in err[-1]
    code, out, err = _run(command, str(crop), "--json", "--format", "json")  # the alias agreeing is fine
    assert (code, err) == (0, []) and json.loads(out[0])["image"] == str(crop)


def test_detect_and_classify_take_a_stage_config_of_their_own_kind(tmp_path: Path) -> None:
    # --set keys of a single stage config may leave out the stage prefix
    code, out, _ = _run("detect", "--config", "det_ppocrv3.yaml", "--set", "postprocess.box_thresh=0.99", str(SAMPLE))
    assert code == 0 and json.loads(out[0])["boxes"] == []
    crop = tmp_path / "upside_down.png"
    cv2.imwrite(str(crop), cv2.rotate(cv2.imread(str(SAMPLE))[95:135, 40:350], cv2.ROTATE_180))
    code, out, _ = _run("classify", "--config", "cls_ppocr_mobile_v2.yaml", "--set", "cls.postprocess.thresh=0.5",
                        str(crop))
    assert code == 0 and out[0].split("\t")[:2] == [str(crop), "180"]
    # another stage's config is one line naming what it is, not a setting of the wrong stage
    code, out, err = _run("detect", "--config", "cls_ppocr_mobile_v2.yaml", str(SAMPLE))
    assert (code, out) == (2, [])
    assert err == ["ocrlite: error: cls_ppocr_mobile_v2.yaml is a cls stage config; give a det stage config or a "
                   "pipeline config"]
    code, out, err = _run("classify", "--config", "det_ppocrv3.yaml", str(crop))
    assert (code, out, len(err)) == (2, [], 1) and "is a det stage config; give a cls stage config" in err[0]


@pytest.mark.parametrize(("command", "meaning"), [
    ("detect", "that stage alone"), ("classify", "that stage alone"), ("profile", "that stage alone"),
    ("export", "that stage alone"), ("ocr", "the default pipeline with that stage"),
    ("recognize", "the default pipeline with that stage"), ("eval", "the default pipeline with that stage")])
def test_config_help_says_what_a_stage_config_stands_for(command: str, meaning: str) -> None:
    code, help_text, _ = _run(command, "--help")
    options = " ".join(" ".join(help_text).split())
    assert code == 0 and f"a single stage config ({meaning})" in options


def test_profile_of_a_stage_config_profiles_that_stage_alone() -> None:
    code, out, err = _run("profile", "--config", "det_ppocrv3.yaml", "--runs", "0")
    assert (code, err) == (0, []) and out[0].startswith("det_ppocrv3.yaml  input 1x3x640x640")
    assert not any(line.startswith(("rec", "cls")) or "[" in line for line in out)


def test_drop_score_defaults_to_the_config_setting_as_its_help_says() -> None:
    code, help_text, _ = _run("ocr", "--help")
    assert code == 0 and "(default: the config's pipeline.drop_score, 0.5 in every preset)" in " ".join(
        " ".join(help_text).split())
    code, out, _ = _run("ocr", "--format", "txt", "--set", "pipeline.drop_score=0.999", str(SAMPLE))
    assert (code, out) == (0, [])  # no flag: the config's value, not 0.5, drops every line
    code, out, _ = _run("ocr", "--format", "txt", "--set", "pipeline.drop_score=0.999", "--drop-score", "0.5",
                        str(SAMPLE))
    assert code == 0 and len(out) == 4


def test_every_option_of_every_command_says_what_it_does() -> None:
    commands = [("ocrlite", main), *((f"ocrlite {name}", command) for name, command in main.commands.items())]
    silent = [(name, param.opts[0]) for name, command in commands for param in command.params
              if isinstance(param, click.Option) and not param.help]
    assert silent == []


def test_classify_with_a_pipeline_without_cls_is_one_line_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "no_cls.yaml"
    config.write_text("det: det_ppocrv3.yaml\nrec: rec_ppocrv2.yaml\n")
    crop = tmp_path / "line.png"
    cv2.imwrite(str(crop), cv2.imread(str(SAMPLE))[95:135, 40:350])
    code, out, err = _run("classify", "--config", str(config), str(crop))
    assert (code, out, err) == (2, [], ["ocrlite: error: this pipeline has no direction classifier (cls)"])


def test_python_dash_m_ocrlite_runs_the_command(tmp_path: Path) -> None:
    """``python -m ocrlite`` (the scripts folder not on PATH, or one interpreter among several) ran nothing and
    exited 0; it is the ``ocrlite`` command."""
    done = subprocess.run([sys.executable, "-m", "ocrlite", "--threads", "1", "ocr", str(SAMPLE), "--format", "txt"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Invoice No.48213" in done.stdout.splitlines()
    bad = subprocess.run([sys.executable, "-m", "ocrlite", "ocr", "missing.png"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr == "ocrlite: error: missing.png: no such file\n"


def test_python_dash_m_ocrlite_cli_runs_the_command(tmp_path: Path) -> None:
    """``python -m ocrlite.cli ...`` (the module the console script names) defined the commands and exited 0
    having run none of them: a prune, an export or an eval 'passed' with nothing done."""
    bad = subprocess.run([sys.executable, "-m", "ocrlite.cli", "ocr", "missing.png"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr == "ocrlite: error: missing.png: no such file\n"
    version = subprocess.run([sys.executable, "-m", "ocrlite.cli", "--version"], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert version.returncode == 0 and "version" in version.stdout and not version.stderr
