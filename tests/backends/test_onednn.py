"""oneDNN layers: which convs, linears and activations are taken over and fused, and that every shipped net
run through them (as ``StageSpec.build_runner`` runs it: folded, then on oneDNN) gives the unfolded PyTorch
net's probabilities within 1e-4 on the parity fixtures' real inputs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import ocrlite.weights
from ocrlite.backends.fold import fold_net
from ocrlite.backends.onednn import OneDNNConv2d, OneDNNLinear, onednn_available, use_onednn
from ocrlite.models.backbones.rep_mixer import MixerBlock
from ocrlite.stages import load_stage_config, stage_kind, stage_spec
from ocrlite.weights import read_manifest

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN ops")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WEIGHTS = Path(ocrlite.weights.__file__).resolve().parent
ATOL = 1e-4
NAMES = sorted(p.stem.removeprefix("parity_") for p in FIXTURES.glob("parity_*.safetensors"))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fused = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Identity(), nn.Hardswish())
        self.kept_bn = nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.mixer = MixerBlock(8, 8, 1, use_se=False)
        self.same_padding = nn.Conv2d(8, 8, 3, padding="same")
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.same_padding(self.mixer(self.kept_bn(self.fused(x))))
        return self.head(x.mean(dim=(2, 3)))


def test_layers_taken_over_and_activations_fused() -> None:
    torch.manual_seed(0)
    net = _Net().eval()
    bn = net.kept_bn[1]
    assert isinstance(bn, nn.BatchNorm2d) and bn.running_mean is not None
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
    reference = copy.deepcopy(net)
    x = torch.randn(2, 3, 12, 20)
    assert use_onednn(net) == 6  # 5 zero-padded convs given as numbers (3 of them fused) and the linear
    assert isinstance(net.fused[0], OneDNNConv2d) and net.fused[0].fusion[0] == "hardswish"
    assert isinstance(net.fused[2], nn.Identity)
    kept = net.kept_bn[0]
    assert isinstance(kept, OneDNNConv2d) and kept.fusion[0] == "none"  # a BatchNorm between it and its ReLU
    assert isinstance(net.kept_bn[2], nn.ReLU)
    assert net.mixer.fc1.fusion == ("gelu", [], "none") and isinstance(net.mixer.act, nn.Identity)
    assert type(net.same_padding) is nn.Conv2d  # padding="same" stays with torch
    assert isinstance(net.head, OneDNNLinear)
    with torch.no_grad():
        assert (net(x) - reference(x)).abs().max().item() <= 1e-5
        assert (net(x.contiguous(memory_format=torch.channels_last)) - reference(x)).abs().max().item() <= 1e-5


def test_training_net_is_refused() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        use_onednn(_Net().train())


@pytest.mark.parametrize("name", NAMES)
def test_shipped_net_on_onednn_matches_pytorch(name: str, request: pytest.FixtureRequest) -> None:
    folder = WEIGHTS if (WEIGHTS / f"{name}.json").is_file() else request.getfixturevalue("preset_weights")
    config = read_manifest(folder / f"{name}.json")["config"]
    kind = stage_kind(load_stage_config(config))
    assert kind is not None
    spec = stage_spec(kind, config)
    x = load_file(str(FIXTURES / f"parity_{name}.safetensors"))["input"]
    net = spec.build_net()
    fast = copy.deepcopy(net)
    fold_net(fast)
    assert use_onednn(fast) > 0
    with torch.no_grad():
        reference, out = net(x), fast(x.contiguous(memory_format=torch.channels_last))
    if spec.kind != "det" and spec.outputs == "logits":
        reference, out = reference.softmax(-1), out.softmax(-1)
    assert (out - reference).abs().max().item() <= ATOL


def test_build_runner_uses_onednn_unless_asked_not_to() -> None:
    spec = stage_spec("cls", None)
    fast, plain = spec.build_runner(), spec.build_runner(onednn=False)
    assert any(isinstance(m, OneDNNConv2d) for m in fast.model.modules())
    assert not any(isinstance(m, (OneDNNConv2d, OneDNNLinear)) for m in plain.model.modules())
