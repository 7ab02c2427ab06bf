"""PSNR and SSIM exactly as the deraining papers report them (MATLAB protocol, DESIGN.md s.4).

Y channel of MATLAB's `rgb2ycbcr` on uint8 RGB, rounded back to uint8; peak 255; no border
crop. SSIM is Wang et al.'s `ssim_index.m`: 11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03),
'valid' filtering, no down-sampling. The Gaussian is separable, so two 1-D passes compute it.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

from ..errors import MetricError


def _check(a: np.ndarray, b: np.ndarray):
    if a.shape != b.shape:
        raise MetricError(f"image sizes differ: {a.shape} vs {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise MetricError("metrics take uint8 images (score the saved 8-bit outputs, as the papers do)")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr's Y for uint8 RGB, rounded to uint8 (BasicSR's port skips the rounding)."""
    if img.ndim == 2:
        return img
    x = img[..., :3].astype(np.float64)
    y = 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    _check(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse))


def _gauss(size=11, sigma=1.5):
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    r = len(g) // 2
    y = correlate1d(correlate1d(x, g, axis=0, mode="constant"), g, axis=1, mode="constant")
    return y[r:-r, r:-r]


def ssim_gray(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    if min(a.shape) < 11:
        raise MetricError(f"SSIM needs images of at least 11x11 pixels, got {a.shape[1]}x{a.shape[0]}")
    g = _gauss()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu1, mu2 = _filter_valid(a, g), _filter_valid(b, g)
    s11 = _filter_valid(a * a, g) - mu1 * mu1
    s22 = _filter_valid(b * b, g) - mu2 * mu2
    s12 = _filter_valid(a * b, g) - mu1 * mu2
    num = (2 * mu1 * mu2 + c1) * (2 * s12 + c2)
    den = (mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2)
    return float(np.mean(num / den))


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    _check(a, b)
    return psnr(rgb_to_y(a), rgb_to_y(b))


def ssim_y(a: np.ndarray, b: np.ndarray) -> float:
    _check(a, b)
    return ssim_gray(rgb_to_y(a), rgb_to_y(b))


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(a, b)


def ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of per-channel SSIM (the common RGB variant)."""
    _check(a, b)
    return float(np.mean([ssim_gray(a[..., c], b[..., c]) for c in range(a.shape[-1])]))
