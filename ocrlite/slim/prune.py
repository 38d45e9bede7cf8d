"""Structural channel pruning with Torch-Pruning's dependency graph, under a MACs target.

Channels are really removed (smaller conv weights, smaller files), never masked. Per-group ratios come
from sensitivity curves the way PaddleOCR's slim recipe does it: one loss threshold ``tau`` is shared by
all groups, each group takes the largest ratio whose measured loss stays below ``tau``, and ``tau`` is
bisected until the pruned net's counted MACs meet the target. Kept widths are multiples of 8, so the net at
that ``tau`` can fall well below the target (a 24-channel group goes from 24 to 16 at one step); channels are
then given back, 8 at a time, to the groups whose curves gain the most per MAC, while the target holds.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.extras import extra, require
from ocrlite.profile import count_macs
from ocrlite.slim.groups import prunable_roots

__all__ = ["CRITERIA", "importance", "prune_net", "ratio_at", "loss_at", "allocate", "require_torch_pruning"]

CRITERIA = ("l1", "fpgm")
ROUND_TO = 8  # kept channel counts are multiples of 8 (SIMD-friendly); a group of <= 8 channels is never pruned


def require_torch_pruning() -> None:
    """A ConfigError with the install line unless Torch-Pruning is installed."""
    require("pruning", ("torch_pruning",), extra("slim"), ConfigError, "Torch-Pruning")


def _tp() -> Any:
    require_torch_pruning()
    import torch_pruning

    return torch_pruning


def importance(criterion: str) -> Callable[[Any], Tensor]:
    """Torch-Pruning's group importance: L1 filter norm or FPGM (distance to the geometric median)."""
    tp = _tp()
    if criterion == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if criterion == "fpgm":
        return tp.importance.FPGMImportance(p=2)
    raise ConfigError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")


def kept_channels(channels: int, ratio: float) -> int:
    """Channels left after removing ``ratio`` of ``channels``, rounded to ROUND_TO (at least ROUND_TO)."""
    if channels <= ROUND_TO:
        return channels
    keep = round(channels * (1.0 - ratio) / ROUND_TO) * ROUND_TO
    return int(min(channels, max(ROUND_TO, keep)))


def prune_net(net: nn.Module, ratios: dict[str, float], criterion: str, example: Tensor) -> nn.Module:
    """A pruned deep copy of ``net``: each named group loses ``ratio`` of its channels (lowest importance first)."""
    tp = _tp()
    pruned = copy.deepcopy(net).eval()
    roots = prunable_roots(pruned)
    unknown = sorted(set(ratios) - set(roots))
    if unknown:
        raise ConfigError(f"unknown prunable group {unknown[0]!r}; groups: {', '.join(roots)}")
    graph = tp.DependencyGraph().build_dependency(pruned, example_inputs=example)
    score = importance(criterion)
    for name, ratio in ratios.items():
        root = roots[name]
        channels = int(root.out_channels)
        remove = channels - kept_channels(channels, ratio)
        if remove <= 0:
            continue
        group = graph.get_pruning_group(root, tp.prune_conv_out_channels, idxs=list(range(channels)))
        with torch.no_grad():
            order = torch.argsort(score(group)).tolist()
        graph.get_pruning_group(root, tp.prune_conv_out_channels, idxs=order[:remove]).prune()
    return pruned


def ratio_at(curve: dict[float, float], tau: float) -> float:
    """The ratio at which a sensitivity curve's loss reaches ``tau``: the curve is read as its running maximum
    (a ratio counts only when every smaller one stays within ``tau`` too), from a loss of 0 at ratio 0, and
    interpolated linearly between its measured ratios (as PaddleSlim does), so the pruned MACs shrink smoothly
    as ``tau`` grows instead of jumping where several step-shaped curves cross it at once."""
    ratio, loss = 0.0, 0.0
    for next_ratio in sorted(curve):
        next_loss = max(loss, curve[next_ratio])
        if next_loss > tau:
            return ratio + (next_ratio - ratio) * (tau - loss) / (next_loss - loss)
        ratio, loss = next_ratio, next_loss
    return ratio


def loss_at(curve: dict[float, float], ratio: float) -> float:
    """A sensitivity curve's loss at ``ratio``, read as ``ratio_at`` reads it: its running maximum from a loss of
    0 at ratio 0, interpolated linearly between measured ratios, flat past the last one."""
    last_ratio, last_loss = 0.0, 0.0
    for next_ratio in sorted(curve):
        next_loss = max(last_loss, curve[next_ratio])
        if ratio <= next_ratio:
            return last_loss + (next_loss - last_loss) * (ratio - last_ratio) / (next_ratio - last_ratio)
        last_ratio, last_loss = next_ratio, next_loss
    return last_loss


def allocate(
    net: nn.Module, curves: dict[str, dict[float, float]], target: float, criterion: str, example: Tensor,
    steps: int = 12,
) -> tuple[dict[str, float], nn.Module, float]:
    """Per-group ratios meeting ``MACs(pruned) <= target * MACs(net)`` at the smallest shared loss threshold,
    then filled back towards the target (``_fill``).

    Returns (ratios, pruned net, MACs fraction kept). Raises ConfigError if even the largest ratios miss it.
    """
    if not 0.0 < target < 1.0:
        raise ConfigError(f"--flops-target must be in (0, 1), got {target}")
    with torch.no_grad():
        base = count_macs(net, example)[0]

    def attempt(ratios: dict[str, float]) -> tuple[dict[str, float], nn.Module, float]:
        pruned = prune_net(net, ratios, criterion, example)
        with torch.no_grad():
            return ratios, pruned, count_macs(pruned, example)[0] / base

    def at(tau: float) -> tuple[dict[str, float], nn.Module, float]:
        return attempt({name: ratio_at(curve, tau) for name, curve in curves.items()})

    low, high = 0.0, max(max(c.values()) for c in curves.values())
    best = at(high)
    if best[2] > target:
        raise ConfigError(f"the sensitivity curves' largest ratios keep {best[2]:.1%} of MACs; target {target:.0%}")
    for _ in range(steps):
        mid = (low + high) / 2
        trial = at(mid)
        if trial[2] <= target:
            high, best = mid, trial
        else:
            low = mid
    return _fill(net, curves, best, target, attempt)


def _fill(
    net: nn.Module, curves: dict[str, dict[float, float]], start: tuple[dict[str, float], nn.Module, float],
    target: float, attempt: Callable[[dict[str, float]], tuple[dict[str, float], nn.Module, float]],
) -> tuple[dict[str, float], nn.Module, float]:
    """Give channels back, ROUND_TO at a time, while the MACs stay within ``target``: each time to the group whose
    curve loses the most loss per MAC restored, of those whose next step still fits. A step's MACs are measured
    once per group and again after that group grows (a step costs about the same while its neighbours change);
    every accepted step is measured, so the target always holds. Ratios are returned as the groups' kept widths
    give them (1 - kept / channels)."""
    widths = {name: int(root.out_channels) for name, root in prunable_roots(net).items()}
    best = ({name: 1.0 - kept_channels(widths[name], ratio) / widths[name] for name, ratio in start[0].items()},
            start[1], start[2])

    def wider(name: str) -> float | None:
        kept = kept_channels(widths[name], best[0][name])
        return None if kept >= widths[name] else 1.0 - min(widths[name], kept + ROUND_TO) / widths[name]

    def step_cost(name: str, ratio: float) -> float:
        return attempt({**best[0], name: ratio})[2] - best[2]

    steps = {name: ratio for name in best[0] if (ratio := wider(name)) is not None}
    costs = {name: step_cost(name, ratio) for name, ratio in steps.items()}
    while steps:
        scores = {name: (loss_at(curves[name], best[0][name]) - loss_at(curves[name], ratio)) / max(costs[name], 1e-12)
                  for name, ratio in steps.items() if best[2] + costs[name] <= target}  # the steps that fit
        if not scores:
            return best
        name = max(scores, key=scores.__getitem__)
        trial = attempt({**best[0], name: steps[name]})
        del steps[name]
        if trial[2] <= target:
            best = trial
            if (ratio := wider(name)) is not None:
                steps[name], costs[name] = ratio, step_cost(name, ratio)
    return best
