"""OnnxRunner on a tiny hand-built ONNX graph (no model files needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ocrlite.backends.onnxruntime import OnnxRunner  # noqa: E402


def softmax_model(path: Path) -> Path:
    """An ONNX graph: float32 [N, T, C] -> softmax over C, plus a second (ignored) output."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Softmax", ["x"], ["probs"], axis=-1),
            helper.make_node("Identity", ["x"], ["copy"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 3])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", "T", 3]),
            helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["N", "T", 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_runner_returns_first_output(tmp_path: Path):
    runner = OnnxRunner(softmax_model(tmp_path / "tiny.onnx"), threads=1)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float64)  # cast to float32 inside
    out = runner(x)
    expected = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    assert out.dtype == np.float32 and out.shape == (2, 4, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert "threads=1" in repr(runner)


def test_missing_model_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        OnnxRunner(tmp_path / "absent.onnx")


def test_a_graph_without_the_top1_head_is_read_through_its_first_output(tmp_path: Path):
    runner = OnnxRunner(softmax_model(tmp_path / "tiny.onnx"), threads=1)
    assert runner.top1 is None  # the recognizer then reads the probabilities (it raised TypeError per image)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from click.testing import CliRunner

    from ocrlite.backends.export import export_stage
    from ocrlite.cli import main
    from ocrlite.stages import stage_spec

    folder = tmp_path_factory.mktemp("exports")
    for stage, head in (("rec", "probs"), ("cls", "raw"), ("cls", "probs"), ("det", "raw")):
        result = CliRunner().invoke(main, ["export", "--stage", stage, "--head", head,
                                           "-o", str(folder / f"{stage}_{head}.onnx")])
        assert result.exit_code == 0, result.output
    export_stage(stage_spec("rec"), folder / "rec_top1.onnx", "top1")  # what `ocrlite quantize` starts from
    for path in list(folder.glob("*.onnx")):  # the same files without ocrlite's metadata (other exporters')
        model = onnx.load(str(path))
        del model.metadata_props[:]
        onnx.save(model, str(folder / f"{path.stem}_bare.onnx"))
    return folder


@pytest.mark.parametrize(("stage", "file", "settings", "message"), [
    ("cls", "cls_raw", [], "cls_raw.onnx returns the net's logits, not probabilities: export it with --head probs"),
    ("rec", "det_raw", [], "det_raw.onnx: exported for a det stage, not a rec stage"),
    ("cls", "rec_probs", [], "rec_probs.onnx: exported for a rec stage, not a cls stage"),
    ("rec", "det_raw_bare", [],
     "det_raw_bare.onnx: its output has 4 dimensions, a rec stage's net gives 3 (a file exported for another stage?)"),
    ("cls", "rec_probs_bare", [],
     "rec_probs_bare.onnx: its output has 3 dimensions, a cls stage's net gives 2 "
     "(a file exported for another stage?)"),
    # a recognizer of another line height (a 48-px graph fed 32-px lines failed every image with ORT's
    # multi-line InvalidArgument), or another charset (garbage text, exit 0), with and without metadata
    ("rec", "rec_top1", ["rec.preprocess.height=48"], "rec_top1.onnx: its input is 32 x any px (height x width), "
     "the rec stage feeds 48 x any (its preprocess settings; a file made for another model?)"),
    ("rec", "rec_top1_bare", ["rec.preprocess.height=48"], "rec_top1_bare.onnx: its input is 32 x any px (height x "
     "width), the rec stage feeds 48 x any (its preprocess settings; a file made for another model?)"),
    ("rec", "rec_top1", ["rec.postprocess.charset={charset}"],
     "rec_top1.onnx: its output has 6625 classes per position, the rec stage 96 (another charset?)"),
    ("rec", "rec_probs_bare", ["rec.postprocess.charset={charset}"],
     "rec_probs_bare.onnx: its output has 6625 classes per position, the rec stage 96 (another charset?)"),
    ("cls", "cls_probs", ["cls.preprocess.width=160"], "cls_probs.onnx: its input is 48 x 192 px (height x width), "
     "the cls stage feeds 48 x 160 (its preprocess settings; a file made for another model?)"),
])
def test_a_given_onnx_file_that_cannot_serve_the_stage_is_one_line(exports: Path, tmp_path: Path, stage: str,
                                                                     file: str, settings: list[str], message: str):
    from click.testing import CliRunner

    from ocrlite.cli import main

    charset = tmp_path / "en.txt"  # the 94 printable ASCII characters: 96 classes with the blank and the space
    charset.write_text("".join(f"{chr(c)}\n" for c in range(33, 127)), encoding="utf-8")
    sample = Path(__file__).parents[1] / "images" / "sample.png"
    extra = [arg for value in settings for arg in ("--set", value.format(charset=charset))]
    result = CliRunner().invoke(main, ["ocr", str(sample), "--set", f"{stage}.backend=onnxruntime",
                                       "--set", f"{stage}.onnx={exports / (file + '.onnx')}", *extra])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: {message}\n"


def det_graph(path: Path, inputs: list[tuple[str, int, list]], output: int = 1) -> Path:
    """A detector-like ONNX graph: the mean over channels of its inputs' sum (cast to float32 first), as ``output``
    (an ONNX element type) N x 1 x H x W."""
    from onnx import TensorProto, helper

    names = [name for name, _, _ in inputs]
    nodes = [helper.make_node("Cast", [name], [f"{name}32"], to=TensorProto.FLOAT) for name in names]
    nodes += [helper.make_node("Sum", [f"{name}32" for name in names], ["sum"]),
              helper.make_node("ReduceMean", ["sum"], ["mean"], axes=[1], keepdims=1),
              helper.make_node("Cast", ["mean"], ["out"], to=output)]
    graph = helper.make_graph(nodes, "det-like", [helper.make_tensor_value_info(*given) for given in inputs],
                              [helper.make_tensor_value_info("out", output, ["N", 1, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


IMAGES = ["N", 3, "H", "W"]


@pytest.mark.parametrize(("inputs", "output", "message"), [
    ([("x", onnx.TensorProto.FLOAT, IMAGES), ("y", onnx.TensorProto.FLOAT, IMAGES)], onnx.TensorProto.FLOAT,
     "the graph has 2 inputs (x, y), a det stage feeds one (N x 3 x H x W float32 images)"),
    ([("x", onnx.TensorProto.FLOAT16, IMAGES)], onnx.TensorProto.FLOAT,
     "its input is a tensor(float16), a det stage feeds a tensor(float) (float32 images)"),
    ([("x", onnx.TensorProto.FLOAT, ["N", 1, "H", "W"])], onnx.TensorProto.FLOAT,
     "its input has 1 channels, a det stage feeds 3 (N x 3 x H x W)"),
    ([("x", onnx.TensorProto.FLOAT, IMAGES)], onnx.TensorProto.INT64,
     "its output is a tensor(int64), a det stage reads a tensor(float) (probabilities or logits)"),
])
def test_a_given_onnx_file_with_other_inputs_or_outputs_is_one_line(tmp_path: Path, inputs: list, output: int,
                                                                     message: str):
    """Refused at load, naming the file: onnxruntime failed each image with its own error, blamed on the image
    (an int64 map read 'text' from every page, exit 0)."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    given = det_graph(tmp_path / "mine.onnx", inputs, output)
    sample = Path(__file__).parents[1] / "images" / "sample.png"
    result = CliRunner().invoke(main, ["ocr", str(sample), "--set", "det.backend=onnxruntime",
                                       "--set", f"det.onnx={given}"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: mine.onnx: {message}\n"
    right = det_graph(tmp_path / "right.onnx", [("x", onnx.TensorProto.FLOAT, IMAGES)])
    OnnxRunner(right, threads=1).check_stage("det", 1, False)  # the same graph with one float32 image input


def test_a_given_ort_format_file_that_cannot_be_checked_is_one_line(exports: Path, tmp_path: Path):
    """onnxruntime runs its own format (.ort), which onnx cannot read to check for the softmax: it was a
    protobuf DecodeError traceback."""
    import onnxruntime
    from click.testing import CliRunner

    from ocrlite.cli import main

    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "cls.ort")
    options.add_session_config_entry("session.save_model_format", "ORT")
    onnxruntime.InferenceSession(str(exports / "cls_probs.onnx"), options, providers=["CPUExecutionProvider"])
    sample = Path(__file__).parents[1] / "images" / "sample.png"
    result = CliRunner().invoke(main, ["ocr", str(sample), "--set", "pipeline.use_cls=true", "--set",
                                       "cls.backend=onnxruntime", "--set", f"cls.onnx={tmp_path / 'cls.ort'}"])
    assert (result.exit_code, result.stdout) == (2, ""), result.exception
    assert result.stderr == ("ocrlite: error: cls.ort: not an ONNX protobuf (an ORT-format file?), so it cannot be "
                             "checked to return probabilities; give the .onnx file\n")


@pytest.mark.parametrize(("stage", "file", "fixed", "message"), [
    ("rec", "rec_probs", {0: 1}, "rec_probs.onnx: its input fixes a batch of 1, the rec stage feeds batches of "
     "varying size (set rec.preprocess.batch_size=1, or export it with a dynamic batch)"),
    ("cls", "cls_probs", {0: 1}, "cls_probs.onnx: its input fixes a batch of 1, the cls stage feeds batches of "
     "varying size (export it with a dynamic batch)"),
    ("det", "det_raw", {0: 2}, "det_raw.onnx: its input fixes a batch of 2, the det stage feeds one image at a "
     "time (export it with a dynamic batch)"),
    ("rec", "rec_probs", {3: 320}, "rec_probs.onnx: its input is 32 x 320 px (height x width), the rec stage feeds "
     "32 x any (its preprocess settings; a file made for another model?)"),
])
def test_a_given_onnx_file_with_a_fixed_batch_or_width_is_one_line(exports: Path, tmp_path: Path, stage: str,
                                                                     file: str, fixed: dict[int, int], message: str):
    """A static-shape export (batch 1, a line width): onnxruntime's InvalidArgument on every image, blamed on it."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    model = onnx.load(str(exports / f"{file}.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis, size in fixed.items():
        dims[axis].Clear()
        dims[axis].dim_value = size
    onnx.save(model, str(tmp_path / f"{file}.onnx"))
    sample = Path(__file__).parents[1] / "images" / "sample.png"
    args = ["ocr", str(sample), "--set", "pipeline.use_cls=true", "--set", f"{stage}.backend=onnxruntime",
            "--set", f"{stage}.onnx={tmp_path / (file + '.onnx')}"]
    result = CliRunner().invoke(main, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"ocrlite: error: {message}\n")
    if fixed == {0: 1} and stage == "rec":  # fed one line at a time, it reads the sample
        result = CliRunner().invoke(main, [*args, "--set", "rec.preprocess.batch_size=1", "--format", "txt"])
        assert (result.exit_code, "Total:42.50EUR" in result.stdout) == (0, True), result.output


def test_a_given_top1_file_of_the_stage_reads_the_sample(exports: Path):
    from ocrlite import OCR

    sample = Path(__file__).parents[1] / "images" / "sample.png"
    for name in ("rec_top1", "rec_top1_bare"):
        given = OCR(overrides=[f"rec.onnx={exports / (name + '.onnx')}", "rec.backend=onnxruntime"])
        assert "Total:42.50EUR" in [line.text for line in given(sample).lines]


def test_an_unexpected_error_of_several_lines_is_reported_in_one(tmp_path: Path):
    """onnxruntime's InvalidArgument spans three lines; a per-file report must stay one line per file."""
    from ocrlite.errors import error_reason

    runner = OnnxRunner(softmax_model(tmp_path / "tiny.onnx"), threads=1)
    with pytest.raises(Exception) as caught:
        runner(np.zeros((1, 2, 5), np.float32))  # 5 classes where the graph fixes 3
    assert str(caught.value).count("\n") >= 2
    reason = error_reason(caught.value)
    assert "\n" not in reason and reason.startswith("unexpected ") and "index: 2 Got: 5 Expected: 3" in reason


def test_given_probability_exports_read_as_the_torch_backend_does(exports: Path):
    from ocrlite import OCR

    sample = Path(__file__).parents[1] / "images" / "sample.png"
    given = OCR(overrides=[f"rec.onnx={exports / 'rec_probs.onnx'}", f"cls.onnx={exports / 'cls_probs.onnx'}",
                           "rec.backend=onnxruntime", "cls.backend=onnxruntime", "pipeline.use_cls=true"])
    torch = OCR(overrides=["pipeline.use_cls=true"])
    assert [line.text for line in given(sample).lines] == [line.text for line in torch(sample).lines]


def test_backend_argument_applies_before_a_given_onnx_file_is_checked(exports: Path):
    from ocrlite import OCR
    from ocrlite.errors import ConfigError

    given = [f"rec.onnx={exports / 'rec_probs.onnx'}"]
    assert OCR(overrides=given, backend="onnxruntime").spec.rec.onnx == exports / "rec_probs.onnx"
    with pytest.raises(ConfigError, match=r"^backend 'torch': the rec stage runs its own ONNX file .*rec_probs.onnx "
                                          r"\(rec.onnx\), which needs backend onnxruntime; leave the backend out, "
                                          r"or set rec.onnx=null to run its weights on torch$"):
        OCR(overrides=[*given, "rec.backend=onnxruntime"], backend="torch")  # it blamed the rec.onnx override
    assert OCR(overrides=[*given, "rec.onnx=null"], backend="torch").spec.rec.backend == "torch"
