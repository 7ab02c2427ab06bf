"""Fold a frozen encoder's BatchNorms into the convolutions that feed them (inference only).

A BatchNorm in eval mode is a per-channel affine map, so `bn(conv(x))` equals one conv with
rescaled weights and a new bias: the separate pass over the feature map disappears. Which conv
feeds which BatchNorm is read from one traced forward pass (the BatchNorm's input is the very
tensor a conv returned), so every backbone in the registry is handled without per-architecture
code. The folding is done on a copy, which is checked against the original and returned only if
they agree; otherwise the original comes back unchanged.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(module: nn.Module, run: Callable[[nn.Module, torch.Tensor], object],
                   example: torch.Tensor, rtol: float = 1e-4) -> tuple[nn.Module, int]:
    """Return (module with every eval-mode BatchNorm2d that directly follows a Conv2d folded
    into it, how many were folded). `run(m, example)` calls `m` and returns its output(s)."""
    if module.training:
        raise ValueError("fold_batchnorm needs a module in eval mode (running statistics)")
    folded = copy.deepcopy(module)
    outputs: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []

    def after_conv(conv, _inp, out):
        outputs[id(out)] = (conv, out)  # holding `out` keeps its id from being reused

    def before_bn(bn, inp):
        hit = outputs.get(id(inp[0]))
        if hit is not None and hit[1] is inp[0]:
            pairs.append((hit[0], bn))

    mods = list(folded.modules())
    hooks = [m.register_forward_hook(after_conv) for m in mods if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(before_bn) for m in mods if isinstance(m, nn.BatchNorm2d)]
    try:
        reference = _as_list(run(folded, example))
    finally:
        for h in hooks:
            h.remove()
    outputs.clear()
    convs, bns = [c for c, _ in pairs], [b for _, b in pairs]
    # a conv or BatchNorm called twice in one pass is shared: folding it could change another path
    pairs = [(c, b) for c, b in pairs if convs.count(c) == 1 and bns.count(b) == 1]
    if not pairs:
        return module, 0

    parents = {id(child): (parent, name) for parent in mods for name, child in parent.named_children()}
    for conv, bn in pairs:
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.ndim - 1))))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)
        parent, name = parents[id(bn)]
        setattr(parent, name, nn.Identity())

    after = _as_list(run(folded, example))
    ok = len(after) == len(reference) and all(
        torch.allclose(a, b, rtol=rtol, atol=rtol * float(b.abs().max()) + 1e-6) for a, b in zip(after, reference))
    return (folded, len(pairs)) if ok else (module, 0)


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]
