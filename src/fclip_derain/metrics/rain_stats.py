"""Rain statistics that need no ground truth: how rainy does an image look?

Computed on the luminance Y in [0, 1] of an HxWx3 uint8 image, so that real rainy photos
(no clean version exists), synthetic rain, derained outputs and clean photos can be compared as
populations (docs/synthetic-rain.md, benchmarks/real_rain_stats.py):

- `anisotropy`: log of E[(d/dx r)^2] / E[(d/dy r)^2] for the high-pass residual r = Y - blur(Y).
  Rain streaks are near-vertical thin lines, so they add horizontal gradients: clean photos sit
  near 0, rainy ones above. (The orientation spectrum reduced to one number.)
- `streak_cover`: fraction of pixels that are a thin bright line, brighter by > 2/255... than both
  horizontal neighbours two pixels away (a 1-D top-hat across near-vertical streaks), in percent.
- `streak_contrast`: the 99th percentile of that line response (how bright the brightest
  streaks are over their background), in grey levels.
- `veil`: mean of the dark channel (per-pixel minimum over RGB, then a 15x15 minimum filter),
  in grey levels: mist and rain accumulation lift it (He et al.'s haze prior).
"""
from __future__ import annotations

import numpy as np

STAT_NAMES = ("anisotropy", "streak_cover", "streak_contrast", "veil")


def luminance(img: np.ndarray) -> np.ndarray:
    a = img.astype(np.float32) / 255
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def rain_stats(img: np.ndarray) -> dict[str, float]:
    from scipy.ndimage import gaussian_filter, minimum_filter

    y = luminance(img)
    r = y - gaussian_filter(y, 2.0, mode="nearest")
    gx = np.diff(r, axis=1)[:-1, :]
    gy = np.diff(r, axis=0)[:, :-1]
    aniso = float(np.log((gx ** 2).mean() + 1e-12) - np.log((gy ** 2).mean() + 1e-12))
    line = y[:, 2:-2] - np.maximum(y[:, :-4], y[:, 4:])
    cover = float((line > 2 / 255).mean() * 100)
    contrast = float(np.percentile(line, 99) * 255)
    dark = minimum_filter(img.min(axis=2), size=15, mode="nearest")
    return {"anisotropy": aniso, "streak_cover": cover, "streak_contrast": contrast, "veil": float(dark.mean())}


def population(images) -> dict[str, dict[str, float]]:
    """Mean, std and count of each statistic over an iterable of HxWx3 uint8 images."""
    vals = {k: [] for k in STAT_NAMES}
    for img in images:
        for k, v in rain_stats(img).items():
            vals[k].append(v)
    return {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in vals.items()}


def moved_fraction(before: float, after: float, clean: float) -> float:
    """How far `after` moved from `before` towards `clean` (1: all the way, 0: not at all)."""
    return float((before - after) / (before - clean)) if before != clean else 0.0
