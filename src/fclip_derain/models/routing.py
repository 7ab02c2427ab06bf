"""Two experts behind one frozen encoder, and the head that picks between them (issue 46).

The paper's premise is that a frozen visual embedding knows how much rain an image holds (its
Table 1). The default model uses that: the encoder runs once, a rain-density head (a logistic
regression on the mean and spread of each encoder tap) gives P(heavy rain), and the decoder that
fits the image's rain runs on the same taps: `light` (v15, trained on light and mixed synthetic
rain) or `heavy` (trained on the rain of Rain100H's own generator). Where the head is unsure
(P inside `band`) both decoders run and their outputs are blended by P, so an image near the
border never jumps from one expert to the other.
"""
from __future__ import annotations

import torch
from torch import nn

from .fclip_unet import FCLIPUNet, pad_to_multiple

# P(heavy) below BAND[0]: light decoder only; above BAND[1]: heavy only; between: both, blended
BAND = (0.3, 0.7)


def pooled_taps(feats: list[torch.Tensor]) -> torch.Tensor:
    """(B, 2 * sum(channels)): each tap's per-channel mean and standard deviation, in fp32."""
    out = []
    for f in feats:
        f = f.float().flatten(2)
        out += [f.mean(2), f.std(2)]
    return torch.cat(out, 1)


class RainDensityHead(nn.Module):
    """P(heavy rain) from pooled encoder taps: standardised features -> one linear unit."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.linear = nn.Linear(dim, 1)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear((z - self.mean) / self.std).squeeze(1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.logits(pooled_taps(feats)))


def blend_weight(p: torch.Tensor, band=BAND) -> torch.Tensor:
    """P(heavy) -> the heavy expert's share of the output: 0 below the band, 1 above, linear inside."""
    lo, hi = band
    return ((p - lo) / (hi - lo)).clamp(0, 1)


def route_name(weight: float) -> str:
    return "light" if weight <= 0 else "heavy" if weight >= 1 else "blend"


class RoutedUNet(nn.Module):
    """`light` and `heavy` FCLIP-UNets sharing `light`'s frozen encoder, routed per image.

    `mode`: auto (the head decides), light or heavy (that expert alone). After each forward,
    `last_weights` holds each image's heavy share (0 light, 1 heavy, between: blended)."""

    def __init__(self, light: FCLIPUNet, heavy: FCLIPUNet, head: RainDensityHead, band=BAND):
        super().__init__()
        if light.config.encoder != heavy.config.encoder or light.pad_multiple != heavy.pad_multiple:
            raise ValueError("the two experts must share one encoder")
        self.light, self.heavy, self.head, self.band = light, heavy, head, band
        self.heavy.encoder = self.encoder = light.encoder  # one frozen encoder, one pass
        self.config, self.pad_multiple = light.config, light.pad_multiple
        self.mode = "auto"
        self.last_weights: torch.Tensor | None = None

    def encoder_digest(self) -> str:
        return self.light.encoder_digest()

    @torch.no_grad()
    def heavy_weight(self, x: torch.Tensor) -> torch.Tensor:
        """Each image's heavy share, decided on the whole image (before any tiling)."""
        if self.mode != "auto":
            return torch.full((x.shape[0],), float(self.mode == "heavy"), device=x.device)
        xp = pad_to_multiple(x, self.pad_multiple)
        return blend_weight(self.head(self.encoder(xp)), self.band)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """`weight`: the heavy shares decided beforehand (tiles of one image share their image's)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) tensor, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        xp = pad_to_multiple(x, self.pad_multiple)
        feats = self.encoder(xp)
        if weight is None:
            weight = (blend_weight(self.head(feats), self.band) if self.mode == "auto" else
                      torch.full((x.shape[0],), float(self.mode == "heavy"), device=x.device))
        self.last_weights = weight.detach().float().cpu()
        out = None
        if bool((weight < 1).any()):
            out = self.light.decode(xp, feats, h, w)
        if bool((weight > 0).any()):
            yh = self.heavy.decode(xp, feats, h, w)
            if out is None:
                out = yh
            else:
                k = weight.to(yh.dtype).view(-1, 1, 1, 1)
                out = out * (1 - k) + yh * k
        return out
