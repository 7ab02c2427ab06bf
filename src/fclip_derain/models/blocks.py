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


# ---------------------------------------------------------------- CPU-friendly decoder units
# ConvNeXt's depthwise 7x7, LayerNorm and GELU passes are memory-bound on a CPU; dense 3x3
# convolutions run near the machine's FLOP peak (oneDNN). These units trade FLOPs for speed per
# FLOP: docs/decoder-study.md measures both.


class ResBlock(nn.Module):
    """EDSR-style residual block: conv3x3 -> ReLU -> conv3x3, added to the input (no norm)."""

    def __init__(self, dim: int, kernel_size: int = 3, mlp_ratio: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x), inplace=True))

    def start_as_identity(self):
        """Zero the residual branch's last conv: a block added to a trained decoder then leaves
        its function unchanged until training moves it (conv1 still learns through conv2)."""
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)


class NAFBlock(nn.Module):
    """NAFNet's block (Chen et al. 2022): LN -> 1x1 (2c) -> dw3x3 -> SimpleGate -> simplified
    channel attention -> 1x1, then LN -> 1x1 (2c) -> SimpleGate -> 1x1; both residual with a
    learned per-channel scale (initialised to zero, as NAFNet)."""

    def __init__(self, dim: int, kernel_size: int = 3, mlp_ratio: float = 2.0):
        super().__init__()
        h = dim * 2
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.pw1 = nn.Conv2d(dim, h, 1)
        self.dw = nn.Conv2d(h, h, 3, padding=1, groups=h)
        self.sca = nn.Conv2d(h // 2, h // 2, 1)
        self.pw2 = nn.Conv2d(h // 2, dim, 1)
        self.norm2 = LayerNorm2d(dim, eps=1e-6)
        self.ff1 = nn.Conv2d(dim, h, 1)
        self.ff2 = nn.Conv2d(h // 2, dim, 1)
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))

    @staticmethod
    def gate(x):
        a, b = x.chunk(2, 1)
        return a * b

    def forward(self, x):
        y = self.gate(self.dw(self.pw1(self.norm1(x))))
        y = self.pw2(y * self.sca(y.mean((2, 3), keepdim=True)))
        x = x + y * self.beta
        y = self.ff2(self.gate(self.ff1(self.norm2(x))))
        return x + y * self.gamma


class ShuffleUp(nn.Module):
    """x2 upsampling by a 1x1 conv to 4x the output channels and pixel shuffle (learned
    sub-pixel upsampling, no interpolation pass)."""

    def __init__(self, cin: int, cout: int, mode: str = "pixelshuffle"):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 1)

    def forward(self, x):
        return F.pixel_shuffle(self.conv(x), 2)
