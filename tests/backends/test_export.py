"""Our ONNX exports and the folded torch nets vs the unfolded torch nets, for every shipped net (det, cls, rec).

Inputs are the small parity fixtures (tests/fixtures/parity_*.safetensors): real converted weights, real
pixel batches. The export runs with the shapes the onnxruntime backend uses (dynamic batch and width), and
each case fails when an output differs by more than 1e-4 from PyTorch's. Weights of the optional presets
come from the ``ocrlite_models`` package (skipped without it, failed in CI).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ocrlite.weights
from ocrlite.backends.export import cache_dir, cached_export, export_stage
from ocrlite.backends.fold import fold_net
from ocrlite.errors import BackendError
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
