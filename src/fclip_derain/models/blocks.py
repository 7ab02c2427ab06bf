"""Decoder building blocks: ConvNeXt block and UpDWBlock (the paper's decoder units)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW map."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


MLP_BAND_ELEMENTS = 2 ** 21  # hidden activations per band at inference (8 MB in fp32)


class ConvNeXtBlock(nn.Module):
    """Liu et al. 2022: depthwise kxk -> LayerNorm -> Linear(4x) -> GELU -> Linear -> layer scale, residual."""

    def __init__(self, dim: int, kernel_size: int = 7, mlp_ratio: float = 4.0, layer_scale: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.pwconv1 = nn.Linear(dim, hidden)
        self.pwconv2 = nn.Linear(hidden, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale > 0 else None

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)  # NHWC: LayerNorm and Linear act on channels
        if torch.is_grad_enabled() or torch.jit.is_tracing() or torch.jit.is_scripting():  # training, export
            y = self.mlp(y)
        else:
            # inference: the MLP is per pixel, so run it a band of rows at a time; its 4x-wide
            # hidden tensor then never exists for the whole image (530 MB at 1080p for the
            # full-resolution block) and each band stays in cache
            rows = max(1, MLP_BAND_ELEMENTS // (y.shape[0] * y.shape[2] * self.pwconv1.out_features))
            y = torch.cat([self.mlp(y[:, i:i + rows]) for i in range(0, y.shape[1], rows)], 1)
        return x + y.permute(0, 3, 1, 2)

    def mlp(self, y):
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return y * self.gamma if self.gamma is not None else y


class UpDWBlock(nn.Module):
    """x2 upsample -> depthwise 3x3 -> pointwise 1x1 -> LayerNorm -> GELU.

    The depthwise conv after interpolation rebuilds detail the interpolation smooths away at
    little cost; `mode` picks the interpolation (the paper does not say; bilinear by default).
    """

    def __init__(self, cin: int, cout: int, mode: str = "bilinear"):
        super().__init__()
        self.mode = mode
        if mode == "pixelshuffle":
            self.expand = nn.Conv2d(cin, cin * 4, 1)
        self.dw = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.norm = LayerNorm2d(cout, eps=1e-6)

    def forward(self, x):
        x = upsample2x(x if self.mode != "pixelshuffle" else self.expand(x), self.mode)
        return F.gelu(self.norm(self.pw(self.dw(x))))


class PlainUp(nn.Module):
    """The ablation without UpDWBlock (Table 8, N1/N3): interpolate x2 and a 1x1 conv."""

    def __init__(self, cin: int, cout: int, mode: str = "bilinear"):
        super().__init__()
        self.mode = mode if mode != "pixelshuffle" else "bilinear"
        self.pw = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.pw(upsample2x(x, self.mode))


def upsample2x(x, mode: str):
    if mode == "pixelshuffle":
        return F.pixel_shuffle(x, 2)
    if mode == "nearest":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
