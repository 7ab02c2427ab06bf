"""Synthetic rain in the tradition of Rain100L/H (Yang et al. 2017) and Rain1400 (Fu et al. 2017).

Streak layer: sparse random seeds -> motion blur along an angle (a line kernel of jittered length,
Gaussian cross-section of jittered width) -> intensity. Heavy rain stacks several layers at
different angles/lengths and adds the accumulation (veiling) term of Rain100H's model:
    O = (1 - A) * (B + sum_k S_k) + A * alpha
Everything is vectorised (a sparse splat of the streak kernel per layer); parameters are drawn per image from the
caller's seeded generator, so (seed, index) fixes the rain exactly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError

Range = tuple[float, float]


@dataclass(frozen=True)
class RainParams:
    layers: tuple[int, int] = (1, 1)  # number of streak layers (inclusive range)
    density: Range = (0.00067, 0.0021)  # fraction of pixels that seed a streak, per layer
    length: Range = (15.0, 45.0)  # streak length in pixels
    width: Range = (0.4, 0.8)  # Gaussian sigma across the streak, pixels
    angle: Range = (-25.0, 25.0)  # degrees from vertical, per image
    angle_jitter: float = 6.0  # per-layer deviation from the image angle
    intensity: Range = (0.25, 0.55)  # streak brightness added to the background
    haze: Range = (0.0, 0.0)  # accumulation A
    haze_light: Range = (0.75, 0.95)  # atmospheric light alpha

    def to_dict(self):
        return asdict(self)


PRESETS: dict[str, RainParams] = {
    # calibrated so the mean input Y-PSNR over BSDS500 photos matches the real sets (docs/synthetic-rain.md)
    "light": RainParams(),
    "heavy": RainParams(layers=(2, 3), density=(0.0012, 0.0028), length=(25.0, 70.0), width=(0.6, 1.4),
                        intensity=(0.3, 0.65), angle_jitter=8.0, haze=(0.02, 0.15)),
}


def get_preset(name: str) -> RainParams | str:
    if name == "mixed":
        return "mixed"
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown rain preset {name!r}; choose light, heavy or mixed")
    return PRESETS[name]


def streak_kernel(length: float, width: float, angle_deg: float) -> np.ndarray:
    """A line of the given length through the centre, angle from vertical, Gaussian cross-section."""
    t = np.deg2rad(angle_deg)
    r = int(np.ceil(length / 2 + 2 * width)) + 1
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float32)
    along = x * np.sin(t) + y * np.cos(t)
    across = x * np.cos(t) - y * np.sin(t)
    k = np.exp(-(across ** 2) / (2 * width ** 2)) * np.clip(length / 2 - np.abs(along) + 0.5, 0, 1)
    # streaks fade towards their ends, as motion-blurred drops do
    k *= 0.6 + 0.4 * np.cos(np.clip(along / (length / 2 + 1e-6), -1, 1) * np.pi / 2)
    return k / k.max()


def _u(rng, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def rain_layer(h: int, w: int, p: RainParams, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Seeds convolved with the streak kernel, computed as a splat: seeds are sparse (< 0.3% of
    pixels) and the kernel is a thin line, so adding each seed's nonzero kernel taps is ~10x
    cheaper than an FFT convolution of the whole image, and gives the same sum."""
    n = int(rng.binomial(h * w, _u(rng, p.density)))  # as many seeds as a per-pixel coin flip gives
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    bright = rng.uniform(0.6, 1.0, n)  # drop-to-drop brightness
    k = streak_kernel(_u(rng, p.length), _u(rng, p.width), angle + rng.uniform(-p.angle_jitter, p.angle_jitter))
    r = k.shape[0] // 2
    ky, kx = np.nonzero(k > 1e-3)
    kv = k[ky, kx]
    # splat onto a canvas with an r-pixel margin (no bounds checks), then crop to the image
    wc = w + 2 * r
    idx = (ys[:, None] + ky[None]) * wc + (xs[:, None] + kx[None])
    s = np.bincount(idx.ravel(), weights=np.outer(bright, kv).ravel(), minlength=(h + 2 * r) * wc)
    s = s.reshape(h + 2 * r, wc)[r:r + h, r:r + w]
    return (np.clip(s, 0, 1) * _u(rng, p.intensity)).astype(np.float32)


def render_rain(clean: np.ndarray, params: RainParams | str, rng: np.random.Generator) -> np.ndarray:
    """uint8 HxWx3 clean image -> uint8 rainy image."""
    if params == "mixed":
        params = PRESETS["light" if rng.random() < 0.5 else "heavy"]
    h, w = clean.shape[:2]
    angle = _u(rng, params.angle)
    n = int(rng.integers(params.layers[0], params.layers[1] + 1))
    s = rain_layer(h, w, params, angle, rng)
    for _ in range(n - 1):
        s += rain_layer(h, w, params, angle, rng)
    # in 0..255 units: one pass over the 3-channel image per step, float32 throughout
    o = clean.astype(np.float32)
    o += (s * 255)[..., None]
    a = _u(rng, params.haze)
    if a > 0:
        o *= 1 - a
        o += a * _u(rng, params.haze_light) * 255
    o += 0.5
    return np.clip(o, 0, 255, out=o).astype(np.uint8)


def synthesize(clean_dir, out_dir, preset: str = "light", copies: int = 1, seed: int = 0,
               progress: bool = True) -> int:
    """Write `out/input/<stem>_<k>.png` + `out/target/<stem>.png` and `out/synth.json`.

    Image j's copy k uses the generator seeded with (seed, j, k): re-running reproduces it, and
    adding copies or images never changes the existing ones. Unreadable images are reported and
    skipped; returns 1 if any failed.
    """
    import json
    import sys
    from pathlib import Path

    from ..progress import progress_bar

    from ..errors import FclipError, ImageError
    from ..weights import atomic_write
    from .io import load_image, save_image
    from .pairing import list_images

    params = get_preset(preset)
    clean_dir, out = Path(clean_dir), Path(out_dir)
    if not clean_dir.is_dir():
        raise FclipError(f"--clean {clean_dir}: not a folder")
    files = list_images(clean_dir)
    if not files:
        raise FclipError(f"--clean {clean_dir}: no images found")
    failed = []
    for j, f in enumerate(progress_bar(files, desc=f"synth {preset}", unit="img", enabled=progress)):
        try:
            clean = load_image(f)
        except ImageError as e:
            failed.append(str(e))
            continue
        save_image(out / "target" / f"{f.stem}.png", clean)
        for k in range(copies):
            rng = np.random.default_rng([seed, j, k])
            name = f"{f.stem}.png" if copies == 1 else f"{f.stem}_{k}.png"
            save_image(out / "input" / name, render_rain(clean, params, rng))
    meta = {"clean": str(clean_dir), "preset": preset, "copies": copies, "seed": seed,
            "images": len(files) - len(failed),
            "params": {k: v.to_dict() for k, v in PRESETS.items()} if preset == "mixed" else params.to_dict()}
    text = json.dumps(meta, indent=2)
    atomic_write(out / "synth.json", lambda t: Path(t).write_text(text))
    for e in failed:
        print(f"  failed: {e}", file=sys.stderr)
    print(f"wrote {len(files) - len(failed)} x {copies} pairs to {out}", file=sys.stderr)
    return 1 if failed else 0
