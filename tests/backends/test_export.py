"""Our ONNX exports and the folded torch nets vs the unfolded torch nets, for every shipped net (det, cls, rec).

Inputs are the small parity fixtures (tests/fixtures/parity_*.safetensors): real converted weights, real
pixel batches. The export runs with the shapes the onnxruntime backend uses (dynamic batch and width), and
each case fails when an output differs by more than 1e-4 from PyTorch's. Weights of the optional presets
come from the ``ocrlite_models`` package (skipped without it, failed in CI).
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ocrlite.weights
from ocrlite.backends.export import export_stage
from ocrlite.backends.fold import fold_net
from ocrlite.backends.onnx_cache import STALE_PART_S, cache_dir, cached_export
from ocrlite.errors import BackendError, WeightsError
from ocrlite.stages import load_stage_config, stage_kind, stage_spec
from ocrlite.weights import read_manifest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from ocrlite.backends.onnxruntime import OnnxRunner  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WEIGHTS = Path(ocrlite.weights.__file__).resolve().parent
ATOL = 1e-4
NAMES = sorted(p.stem.removeprefix("parity_") for p in FIXTURES.glob("parity_*.safetensors"))
HEADS = {"det": "raw", "cls": "probs", "page": "probs", "rec": "top1"}  # what the onnxruntime backend exports


def _spec(name: str, request: pytest.FixtureRequest):
    folder = WEIGHTS if (WEIGHTS / f"{name}.json").is_file() else request.getfixturevalue("preset_weights")
    config = read_manifest(folder / f"{name}.json")["config"]
    kind = stage_kind(load_stage_config(config))
    assert kind is not None
    return stage_spec(kind, config)


def test_every_shipped_net_is_covered() -> None:
    assert {"det_ppocrv3", "cls_ppocr_mobile_v2", "rec_ppocrv2", "rec_ppocrv6_small", "det_ppocrv6_tiny"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_folded_net_and_onnx_export_match_pytorch(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    spec = _spec(name, request)
    x = load_file(str(FIXTURES / f"parity_{name}.safetensors"))["input"]
    net = spec.build_net()
    folded = copy.deepcopy(net)
    batch_norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert fold_net(folded) > 0 or batch_norms == 0  # PP-OCRv6's nets come with BatchNorm folded already
    with torch.no_grad():
        reference, fast = net(x), folded(x)
    assert (fast - reference).abs().max().item() <= ATOL

    logits = spec.kind != "det" and spec.outputs == "logits"
    head = HEADS[spec.kind]
    runner = OnnxRunner(export_stage(spec, tmp_path / f"{name}.onnx", head, net=folded), threads=1)
    if head != "top1":
        expected = reference.softmax(-1) if head == "probs" and logits else reference
        np.testing.assert_allclose(runner(x.numpy()), expected.numpy(), atol=ATOL, rtol=0)
        return
    index, prob = runner.top1(x.numpy())
    probs = reference.softmax(-1) if logits else reference
    best, best_index = probs.max(-1)
    np.testing.assert_array_equal(index, best_index.numpy())
    kept = (index != 0) & np.concatenate([np.ones_like(index[:, :1], bool), index[:, 1:] != index[:, :-1]], 1)
    np.testing.assert_allclose(prob[kept], best.numpy()[kept], atol=ATOL, rtol=0)
    np.testing.assert_array_equal(prob[~kept], 0.0)


def test_cache_is_keyed_by_weights_and_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    spec = stage_spec("cls")
    first = cached_export(spec, "probs")
    assert first.parent == tmp_path and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert cached_export(stage_spec("cls"), "probs") == first and first.stat().st_mtime_ns == stamp  # reused
    assert cached_export(spec, "raw") != first  # another head, another file
    wider = stage_spec("cls", overrides=["preprocess.width=160"])  # an export fixes the classifier's size
    assert cached_export(wider, "probs") != first
    assert OnnxRunner(cached_export(wider, "probs"))(np.zeros((1, 3, 48, 160), np.float32)).shape == (1, 2)


def test_a_damaged_cached_export_is_exported_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A cache file cut short (a killed copy, a full disk) is replaced the next time the stage is built."""
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path))
    spec = stage_spec("cls", overrides=["backend=onnxruntime"])
    path = cached_export(spec, "probs")
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 3])
    with pytest.raises(BackendError, match="cannot load the ONNX model"):
        OnnxRunner(path)
    runner = spec.build_runner()
    assert path.stat().st_size == size and runner(np.zeros((1, 3, 48, 192), np.float32)).shape == (1, 2)


_KILLED_EXPORT = """
import os, signal, types
import ocrlite.io.atomic as atomic
from ocrlite.backends.onnx_cache import cached_export
from ocrlite.stages import stage_spec
# killed (SIGKILL: no clean-up runs) as the export's temp file is about to become the cache file
atomic.os = types.SimpleNamespace(**{**vars(os), "replace": lambda *args: os.kill(os.getpid(), signal.SIGKILL)})
cached_export(stage_spec("cls"), "probs")
"""


def test_an_export_removes_the_temp_files_killed_exports_left_in_the_cache(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    """A killed export left its hidden ``.NAME.XXXXXXXX.part`` in the cache forever; the next export removes the
    ones older than STALE_PART_S, never a fresh one (another process's export under way) nor a file not ours."""
    cache = tmp_path / "cache"
    killed = subprocess.run([sys.executable, "-c", _KILLED_EXPORT], cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ, "OCRLITE_ONNX_CACHE": str(cache)}, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [left] = list(cache.iterdir())
    assert left.name.startswith(".cls-") and left.name.endswith(".part") and left.stat().st_size > 100_000
    old = time.time() - STALE_PART_S - 60
    live = left.with_name(f"{left.name.rsplit('.', 2)[0]}.k9x2ab7q.part")  # as a live export's would be named
    other = cache / ".notes.txt.a1b2c3d4.part"  # not a cache file's
    live.write_bytes(b"being written")
    other.write_bytes(b"not ours")
    for path in (left, other):
        os.utime(path, (old, old))
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(cache))
    exported = cached_export(stage_spec("cls"), "probs")
    assert sorted(path.name for path in cache.iterdir()) == sorted([exported.name, live.name, other.name])
    assert OnnxRunner(exported)(np.zeros((1, 3, 48, 192), np.float32)).shape == (1, 2)


_KILLED_AFTER_TRACING = """
import os, signal, onnx
from ocrlite.backends.onnx_cache import cached_export
from ocrlite.stages import stage_spec
# killed (SIGKILL: no clean-up runs) once torch.onnx.export has written the traced graph
onnx.load = onnx.load_from_string = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
cached_export(stage_spec("cls"), "probs")
"""


def test_an_export_killed_while_tracing_leaves_no_temp_folder(tmp_path: Path) -> None:
    """The traced graph is kept in memory until the cache file is written: a SIGKILL after tracing left the
    exporter's temp folder (net.onnx) in the system's temp directory."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER_TRACING], cwd=Path(__file__).resolve().parents[2],
                            env={**os.environ, "OCRLITE_ONNX_CACHE": str(tmp_path / "cache"), "TMPDIR": str(temp)},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list(temp.iterdir()) == []


class _RowMax(torch.nn.Module):
    def forward(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ocrlite.backends.export import _row_max

        return _row_max(out)


@pytest.mark.parametrize("classes", [5, 128, 129, 6906, 18710])
def test_row_max_is_torch_max(classes: int, tmp_path: Path) -> None:
    """``_row_max`` (blockwise, what torch inference and the top1 exports use) gives ``max(dim=-1)``: values and
    the first index of ties, in torch and exported to onnxruntime (with another number of rows and steps)."""
    def rows(batch: int, steps: int, seed: int) -> torch.Tensor:
        out = torch.randn(batch, steps, classes, generator=torch.Generator().manual_seed(seed))
        out[0, 0] = 0.0  # every class ties: index 0
        out[0, 1, classes - 1] = 50.0  # the maximum in the last, possibly short, block
        out[0, 2, [1, classes - 2]] = 50.0  # a tie across blocks: the first
        return out

    out = rows(3, 7, classes)
    expected = out.max(dim=-1)
    best, index = _RowMax()(out)
    assert torch.equal(best, expected.values) and torch.equal(index, expected.indices)

    path = tmp_path / "row_max.onnx"
    torch.onnx.export(_RowMax(), (out,), str(path), input_names=["x"], output_names=["best", "index"],
                      dynamic_axes={"x": {0: "batch", 1: "steps"}}, opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    other = rows(2, 11, classes + 1)
    for sample in (out, other):
        exported_best, exported_index = session.run(None, {"x": sample.numpy()})
        expected = sample.max(dim=-1)
        np.testing.assert_array_equal(exported_best, expected.values.numpy())
        np.testing.assert_array_equal(exported_index, expected.indices.numpy())


def test_the_page_classifier_runs_on_onnxruntime_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--backend onnxruntime`` means every net, the page classifier of ``--rotate-pages`` included."""
    from ocrlite.stages import pipeline_spec

    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path))
    page = pipeline_spec(backend="onnxruntime").page
    assert page.backend == "onnxruntime"
    batch = np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)
    ours, torch_runner = page.build_runner(), stage_spec("page").build_runner()
    np.testing.assert_allclose(ours(batch), torch_runner(batch), atol=1e-4)


def _own_cls(folder: Path, manifest: bool = True) -> Path:
    """A user's copy of the shipped direction classifier: ``cls.yaml`` naming ``./cls`` (+ its manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    shipped = Path(__file__).resolve().parents[2] / "configs" / "cls_ppocr_mobile_v2.yaml"
    config = folder / "cls.yaml"
    text = shipped.read_text(encoding="utf-8").replace("weights: cls_ppocr_mobile_v2", "weights: ./cls")
    config.write_text(text + "backend: onnxruntime\n", encoding="utf-8")
    (folder / "cls.safetensors").write_bytes((WEIGHTS / "cls_ppocr_mobile_v2.safetensors").read_bytes())
    if manifest:
        (folder / "cls.json").write_text((WEIGHTS / "cls_ppocr_mobile_v2.json").read_text(encoding="utf-8"))
    return config


def _fine_tune(weights: Path) -> None:
    """Overwrite ``weights`` with a "fine-tuned" copy of the same name: the classifier's two classes swapped."""
    from safetensors.torch import save_file

    tensors = load_file(str(weights))
    tensors["head.fc.weight"] = tensors["head.fc.weight"].flip(0).contiguous()
    tensors["head.fc.bias"] = tensors["head.fc.bias"].flip(0).contiguous()
    save_file(tensors, str(weights))


def test_weights_replaced_beside_their_manifest_are_refused_not_read_from_the_cache(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fine-tuned ``cls.safetensors`` copied over the old one, its old manifest kept: the torch backend refuses
    it (sha256 mismatch); the onnxruntime backend ran the old weights' cached export with exit 0, and with a
    cold cache said the same line as torch followed by an unrelated hint about a writable cache folder."""
    config = _own_cls(tmp_path / "model")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    stage_spec("cls", config).build_runner()  # the original weights' export, cached
    _fine_tune(tmp_path / "model" / "cls.safetensors")
    with pytest.raises(WeightsError) as by_torch:
        stage_spec("cls", config, ["backend=torch"]).build_runner()
    assert str(by_torch.value).startswith("sha256 mismatch for cls.safetensors: expected ")
    for cache in ("cache", "cold"):
        monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / cache))
        with pytest.raises(WeightsError) as by_onnxruntime:
            stage_spec("cls", config).build_runner()
        assert str(by_onnxruntime.value) == str(by_torch.value)


def test_fine_tuned_weights_of_the_same_name_get_their_own_export(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """A bare ``.safetensors`` of the user's (no manifest) replaced by a fine-tuned one: a new export, which
    reads as the new weights do on torch."""
    config = _own_cls(tmp_path / "model", manifest=False)
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    batch = load_file(str(FIXTURES / "parity_cls_ppocr_mobile_v2.safetensors"))["input"].numpy()
    before = stage_spec("cls", config).build_runner()(batch)
    _fine_tune(tmp_path / "model" / "cls.safetensors")
    after = stage_spec("cls", config).build_runner()(batch)
    assert len(list((tmp_path / "cache").glob("cls-*.onnx"))) == 2
    np.testing.assert_allclose(after, before[:, ::-1], atol=1e-5)
    np.testing.assert_allclose(after, stage_spec("cls", config, ["backend=torch"]).build_runner()(batch), atol=1e-4)


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Writes under ``folder`` fail as on a read-only mount (EROFS), for any user, root too (whom a chmod'ed
    folder does not stop): creating, replacing or removing a file there."""
    import errno
    import os

    def refuse(path: Any) -> None:
        if Path(os.fsdecode(path)).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open, real_unlink, real_replace = os.open, os.unlink, os.replace
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def opening(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & writing:
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def unlinking(path: Any, *args: Any, **kwargs: Any) -> None:
        refuse(path)
        real_unlink(path, *args, **kwargs)

    def replacing(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        refuse(dst)
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "unlink", unlinking)
    monkeypatch.setattr(os, "replace", replacing)


def test_a_damaged_export_in_a_read_only_cache_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A cached file cut short in a cache that has since become read-only: one line with both reasons, exit 2
    (it was a traceback: ``OSError: [Errno 30] Read-only file system``, from removing the file)."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    cache = tmp_path / "cache"
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(cache))
    path = cached_export(stage_spec("cls"), "probs")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _read_only(monkeypatch, cache)
    crop = Path(__file__).resolve().parents[1] / "images" / "sample.png"
    result = CliRunner().invoke(main, ["classify", str(crop), "--set", "cls.backend=onnxruntime"])
    assert (result.exit_code, result.stdout) == (2, ""), result.exception
    assert result.stderr.startswith(f"ocrlite: error: {path}: cannot load the ONNX model: ")
    assert result.stderr.endswith(f"; exporting it again failed: cannot write to {cache}: Read-only file system "
                                  "(the ONNX export cache; set OCRLITE_ONNX_CACHE to a writable folder)\n")
    assert result.stderr.count("\n") == 1


def test_the_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``$OCRLITE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/ocrlite/onnx``, else ``~/.cache/ocrlite/onnx``; without a
    home folder (no HOME, a user id without a passwd entry, as in some containers) one line, exit 2: it was a
    traceback (``RuntimeError: Could not determine home directory``)."""
    import pwd

    from click.testing import CliRunner

    from ocrlite.cli import main

    monkeypatch.delenv("OCRLITE_ONNX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ocrlite" / "onnx"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for ignored in ("", "~/.cache", ".cache"):  # not absolute: ignored, as the XDG spec says (a literal "~" of a
        monkeypatch.setenv("XDG_CACHE_HOME", ignored)  # systemd unit made a ./~/.cache in each working folder)
        assert cache_dir() == tmp_path / "home" / ".cache" / "ocrlite" / "onnx"
    monkeypatch.delenv("HOME")

    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    crop = Path(__file__).resolve().parents[1] / "images" / "sample.png"
    result = CliRunner().invoke(main, ["classify", str(crop), "--set", "cls.backend=onnxruntime"])
    assert (result.exit_code, result.stdout) == (2, ""), result.exception
    assert result.stderr == ("ocrlite: error: no folder for the ONNX export cache: HOME is not set; "
                             "set OCRLITE_ONNX_CACHE to a writable folder\n")


def test_the_session_runs_on_torchs_thread_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--threads N`` (torch's thread count when the runner is built: the CLI's, a batch worker's share) is the
    onnxruntime session's intra-op thread count."""
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path))
    before = torch.get_num_threads()
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            runner = stage_spec("cls", overrides=["backend=onnxruntime"]).build_runner()
            assert runner.session.get_session_options().intra_op_num_threads == threads
    finally:
        torch.set_num_threads(before)


def test_the_hgnet_stem_exports_its_padding_inside_the_conv_and_pool(request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    """PP-OCRv6's stem pads its map at the right and bottom; the export writes that as the ``pads`` of the 2x2
    convs and the max pool, never as a Pad node (a copy of the full-size map that also breaks onnxruntime's
    blocked layout around it). The numbers are checked against PyTorch by the parity test above."""
    import onnx

    spec = _spec("det_ppocrv6_tiny", request)
    graph = onnx.load(str(export_stage(spec, tmp_path / "det.onnx"))).graph
    assert "Pad" not in {node.op_type for node in graph.node}
    padded = [node.op_type for node in graph.node
              if any(a.name == "pads" and list(a.ints) == [0, 0, 1, 1] for a in node.attribute)]
    assert sorted(padded) == ["Conv", "Conv", "MaxPool"]
