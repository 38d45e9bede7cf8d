"""Lanes: a torch recognizer's batches read side by side, one thread each, give the texts and
scores of the one-after-another path, in input order, and leave torch's thread count as it was."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ocrlite.backends.lanes import LaneRunner
from ocrlite.backends.torch import TorchRunner
from ocrlite.io.images import read_image
from ocrlite.predictors import TextDetector, TextRecognizer
from ocrlite.preprocess import crop_quad
from ocrlite.stages import stage_spec

SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"


@pytest.fixture()
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    image = read_image(SAMPLE)
    found = [crop_quad(image, box.points) for box in TextDetector.from_config()(image)]
    return [crop for crop in found if crop is not None]


def test_lanes_read_as_one_after_another(crops: list[np.ndarray], two_threads: None) -> None:
    spec = stage_spec("rec", None, ["preprocess.batch_size=2"])
    lanes = TextRecognizer.from_config(spec)
    assert isinstance(lanes.runner, LaneRunner) and lanes.runner.lanes == 2
    alone = TextRecognizer(lanes.runner.runner, spec.pre, lanes.charset)
    assert len(crops) >= 4  # at least two batches of two
    side_by_side, in_turn = lanes(crops), alone(crops)
    assert [r.text for r in side_by_side] == [r.text for r in in_turn]
    assert any(r.text for r in in_turn)
    for a, b in zip(side_by_side, in_turn):
        assert abs(a.score - b.score) < 1e-5 and a.step_width == pytest.approx(b.step_width)
    assert torch.get_num_threads() == 2


def test_one_thread_and_onnxruntime_build_plain_runners(two_threads: None, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    torch.set_num_threads(1)
    assert isinstance(stage_spec("rec").build_runner(), TorchRunner)
    torch.set_num_threads(2)
    assert isinstance(stage_spec("det").build_runner(), TorchRunner)  # one image per call: nothing to share
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path))
    assert not isinstance(stage_spec("rec", None, ["backend=onnxruntime"]).build_runner(), LaneRunner)


def test_lane_runner_keeps_order_pins_threads_and_restores_them(two_threads: None) -> None:
    seen: list[tuple[int, str, int]] = []

    def read(runner: object, item: int) -> int:
        seen.append((item, threading.current_thread().name, torch.get_num_threads()))
        return item * 10

    lanes = LaneRunner(TorchRunner(torch.nn.Linear(1, 1)), lanes=2)
    assert lanes.map_batches(read, [3, 1, 2, 5]) == [30, 10, 20, 50]
    assert {name.split("_")[0] for _, name, _ in seen} == {"ocrlite-lane"}
    assert {threads for *_, threads in seen} == {1}
    assert torch.get_num_threads() == 2
    seen.clear()
    assert lanes.map_batches(read, [7]) == [70]  # one batch: in this thread, on all threads
    assert seen == [(7, threading.current_thread().name, 2)]


def test_lanes_leave_torch_at_the_thread_count_they_were_built_for() -> None:
    """A lane pins itself to one thread, and torch keeps the last count set as the one new threads start with:
    a caller whose own count a pin had reached wrote 1 back, and every later thread ran on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        lanes = LaneRunner(TorchRunner(torch.nn.Conv2d(3, 3, 1)), 2)
        seen: list[int] = []

        def caller_on_one_thread() -> None:
            torch.set_num_threads(1)
            lanes.map_batches(lambda runner, x: runner(x), [np.zeros((1, 3, 4, 4), np.float32)] * 3)

        for target in (caller_on_one_thread, lambda: seen.append(torch.get_num_threads())):
            thread = threading.Thread(target=target)
            thread.start()
            thread.join()
        assert seen == [2]
    finally:
        torch.set_num_threads(previous)
