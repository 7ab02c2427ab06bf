"""Fitting the rain-density head of the routed default model (models/routing.py).

The head is a logistic regression on pooled encoder taps: features are computed once per image
with the frozen encoder (exactly as at inference), standardised, and the linear unit is fitted by
L-BFGS with an L2 penalty. Classes are balanced by weighting, so the few heavy pairs are not
drowned by the light ones.
"""
from __future__ import annotations

import numpy as np
import torch

from ..models.fclip_unet import pad_to_multiple
from ..models.routing import RainDensityHead, pooled_taps


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def tap_features(encoder, images, pad_multiple: int = 16) -> torch.Tensor:
    """(N, D) pooled taps of HxWx3 uint8 images, one at a time (sizes may differ)."""
    return torch.cat([pooled_taps(encoder(pad_to_multiple(to_tensor(a), pad_multiple))) for a in images])


def fit_head(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-2, steps: int = 200) -> RainDensityHead:
    """Logistic regression of y (0 light, 1 heavy) on x, classes weighted to equal total weight."""
    head = RainDensityHead(x.shape[1])
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp_min(1e-6))
    y = y.float()
    pos = y.sum().clamp_min(1)
    w = torch.where(y > 0, len(y) / (2 * pos), len(y) / (2 * (len(y) - pos).clamp_min(1)))
    opt = torch.optim.LBFGS(head.linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head.logits(x), y, weight=w)
        loss = loss + l2 * head.linear.weight.square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    return head.requires_grad_(False).eval()
