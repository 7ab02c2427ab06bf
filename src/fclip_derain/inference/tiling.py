"""Run a model over a large image in overlapping tiles, blended with smooth weights.

Each tile's contribution is weighted by a separable ramp that falls towards the tile's inner
edges, so seams average out instead of showing. Memory is bounded by the tile size.
"""
from __future__ import annotations

import torch


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    w = torch.ones(n)
    if overlap > 0:
        r = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = r
        if not at_end:
            w[-overlap:] = r.flip(0)
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    s = list(range(0, size - tile, stride))
    return s + [size - tile]


def tile_count(h: int, w: int, tile: int, overlap: int = 32) -> int:
    """How many model passes `tiled_forward` makes over an h x w image."""
    if h <= tile and w <= tile:
        return 1
    stride = tile - min(overlap, tile // 2)
    return len(_starts(h, tile, stride)) * len(_starts(w, tile, stride))


@torch.no_grad()
def tiled_forward(model, x: torch.Tensor, tile: int, overlap: int = 32) -> torch.Tensor:
    """x: (B, 3, H, W). Tiles of `tile` x `tile` pixels overlapping by `overlap`."""
    b, c, h, w = x.shape
    if h <= tile and w <= tile:
        return model(x)
    overlap = min(overlap, tile // 2)
    stride = tile - overlap
    out = torch.zeros(b, 3, h, w, dtype=torch.float32, device=x.device)
    norm = torch.zeros(1, 1, h, w, dtype=torch.float32, device=x.device)
    ys, xs = _starts(h, tile, stride), _starts(w, tile, stride)
    for y in ys:
        for x0 in xs:
            th, tw = min(tile, h), min(tile, w)
            patch = x[:, :, y:y + th, x0:x0 + tw]
            pred = model(patch).float()
            wy = _ramp(th, overlap, y == 0, y + th >= h).to(x.device)
            wx = _ramp(tw, overlap, x0 == 0, x0 + tw >= w).to(x.device)
            wgt = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, y:y + th, x0:x0 + tw] += pred * wgt
            norm[:, :, y:y + th, x0:x0 + tw] += wgt
    return out / norm
