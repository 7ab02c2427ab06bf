"""Synthetic rain in the tradition of Rain100L/H (Yang et al. 2017) and Rain1400 (Fu et al. 2017).

Streak layer: sparse random seeds -> motion blur along an angle (a line kernel of jittered length,
Gaussian cross-section of jittered width) -> intensity. Heavy rain stacks several layers at
different angles/lengths and adds the accumulation (veiling) term of Rain100H's model:
    O = (1 - A) * (B + sum_k S_k) + A * alpha
Everything is vectorised (a sparse splat of the streak kernel per layer); parameters are drawn per image from the
caller's seeded generator, so (seed, index) fixes the rain exactly.

The `real` preset (renderer v2, `render_real_rain`) draws rain as photographs show it: a smooth
scene-depth map; several depth layers whose streaks get wider, longer, sparser and defocused the
nearer they are, and are hidden behind nearer scene content; gusts that tilt sub-layers
differently; streaks that blend the background towards the light of the sky (bright on dark
backgrounds, nearly invisible on bright sky) instead of adding a fixed amount; mist that thickens
with depth; splashes on the ground and out-of-focus drops on the lens. docs/synthetic-rain.md
compares its statistics with real rainy photos.
"""
from __future__ import annotations

import dataclasses
import functools
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
    blur: Range = (0.0, 0.0)  # Gaussian defocus of a layer's streaks, px (near drops are out of focus)

    def to_dict(self):
        return asdict(self)


PRESETS: dict[str, RainParams] = {
    # calibrated so the mean input Y-PSNR over BSDS500 photos matches the real sets (docs/synthetic-rain.md)
    "light": RainParams(),
    "heavy": RainParams(layers=(2, 3), density=(0.0012, 0.0028), length=(25.0, 70.0), width=(0.6, 1.4),
                        intensity=(0.3, 0.65), angle_jitter=8.0, haze=(0.02, 0.15)),
    # Heavy rain of the kind people photograph in a downpour (issue 35): many layers in several
    # directions, streaks up to ~2 px wide and 90 px long, bright enough to saturate, some out of
    # focus, a moderate veil: beside `heavy`, fewer but wider, brighter and more varied streaks.
    "torrential": RainParams(layers=(2, 4), density=(0.0005, 0.0015), length=(20.0, 90.0), width=(0.6, 1.8),
                             angle=(-30.0, 30.0), angle_jitter=14.0, intensity=(0.3, 0.85), blur=(0.0, 1.2),
                             haze=(0.0, 0.15)),
    # Few long, thick streaks falling close to the camera (water from a roof, big drops in wind):
    # wide, soft-edged and out of focus, which thin-streak rain never shows.
    "thick": RainParams(layers=(1, 2), density=(0.0002, 0.0009), length=(50.0, 180.0), width=(1.5, 3.5),
                        angle=(-20.0, 20.0), angle_jitter=5.0, intensity=(0.25, 0.7), blur=(0.5, 2.5)),
}


@dataclass(frozen=True)
class RealRainParams:
    """Renderer v2: each field a range drawn per image (or per layer where said)."""
    layers: tuple[int, int] = (2, 4)  # depth layers of streaks
    density_far: Range = (0.004, 0.012)  # seeds per pixel in the farthest layer (tiny, faint streaks)
    density_near: Range = (0.0004, 0.0016)  # ... in the nearest layer (few, big streaks)
    length_far: Range = (6.0, 16.0)  # streak length (pixels) in the farthest layer
    length_near: Range = (25.0, 60.0)  # ... in the nearest layer (motion blur grows as drops near the lens)
    width_far: Range = (0.3, 0.5)  # Gaussian sigma across a streak, farthest layer
    width_near: Range = (0.5, 1.2)  # ... nearest layer
    defocus_near: Range = (0.0, 2.0)  # extra Gaussian blur of the nearest layer (out of focus)
    opacity_far: Range = (0.08, 0.25)  # how far a streak pulls the background towards the light
    opacity_near: Range = (0.15, 0.5)
    angle: Range = (-20.0, 20.0)  # degrees from vertical, per image
    gust: float = 7.0  # sub-layers of a layer tilt by up to this much more (wind gusts)
    light: Range = (0.75, 1.0)  # brightness of the light streaks refract (sky), 0..1
    mist: Range = (0.0, 0.45)  # veil at the farthest depth; grows as 1 - exp(-k * depth)
    mist_light: Range = (0.7, 0.95)  # colour of the veil (grey, slightly per channel)
    splash_p: float = 0.3  # chance of splashes on the ground (lower part of the frame)
    drops_p: float = 0.15  # chance of out-of-focus drops on the lens
    # True: the training target keeps the mist (only streaks, splashes and drops are rain to
    # remove). Targets without the mist taught models to lift the veil of real photos, which
    # darkened them by 4-6 grey levels (campaign/LOG.md).
    mist_in_target: bool = False

    def to_dict(self):
        return asdict(self)


PRESETS["real"] = RealRainParams()
PRESETS["real-streaks"] = RealRainParams(mist_in_target=True)


PRESET_NAMES = ("light", "heavy", "torrential", "thick", "real", "real-streaks", "screen", "editor", "mixed")


@dataclass(frozen=True)
class ScreenRainParams:
    """A third generator, built like the image-editor recipe many rain datasets were drawn with
    (noise -> blur -> motion blur -> levels -> screen blend) rather than by stamping streaks. Kept
    out of every training mix: validation scores on it measure how what is learnt on our own
    renderers transfers to rain drawn another way (leave-one-generator-out, issue 35)."""
    layers: tuple[int, int] = (1, 3)
    density: Range = (0.01, 0.06)  # fraction of pixels seeded with noise, per layer
    length: Range = (20.0, 90.0)  # motion-blur length, px
    grain: Range = (0.5, 1.5)  # Gaussian blur of the noise before the motion blur, px
    angle: Range = (-30.0, 30.0)
    angle_jitter: float = 10.0
    levels: Range = (0.1, 0.35)  # the black point of the levels stretch: higher gives fewer, crisper streaks
    strength: Range = (0.5, 1.0)  # opacity of the screen blend
    haze: Range = (0.0, 0.15)
    width: Range = (0.5, 0.5)  # Gaussian sigma across the motion blur, px (drawn per layer when a range)

    def to_dict(self):
        return asdict(self)


PRESETS["screen"] = ScreenRainParams()
# The image-editor recipe widened into a family for training (stage 18, issue 35): more and denser
# layers, each in its own direction (heavy-rain sets are drawn with streaks in several directions),
# wider and softer streaks, up to a saturating screen blend. `screen` stays the fixed validation kind.
PRESETS["editor"] = ScreenRainParams(layers=(2, 5), density=(0.005, 0.08), length=(15.0, 100.0),
                                     grain=(0.3, 2.0), angle=(-45.0, 45.0), angle_jitter=25.0,
                                     levels=(0.05, 0.4), strength=(0.4, 1.0), haze=(0.0, 0.2),
                                     width=(0.4, 1.5))


def get_preset(name: str) -> RainParams | RealRainParams | str:
    if name == "mixed":
        return "mixed"
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown rain preset {name!r}; choose {', '.join(PRESET_NAMES)}")
    return PRESETS[name]


def preset_params(name: str, overrides: dict | None = None, key: str = "rain"):
    """A preset's parameters with some fields replaced, e.g. {"density_near": [0.001, 0.004]}:
    a training source can vary the renderer without a new named preset. Bad fields or values
    are ConfigErrors naming `key.field`."""
    params = get_preset(name)
    if not overrides:
        return params
    if not isinstance(overrides, dict):
        raise ConfigError(f"{key}: expected a mapping of renderer fields, got {overrides!r}")
    if isinstance(params, str):
        raise ConfigError(f"{key}: preset {name!r} draws light or heavy per image; overrides need a single preset")
    known = {f.name for f in dataclasses.fields(params)}
    changes = {}
    for field, v in overrides.items():
        where = f"{key}.{field}"
        if field not in known:
            raise ConfigError(f"{where}: unknown field of preset {name!r} (known: {', '.join(sorted(known))})")
        cur = getattr(params, field)
        signed = field == "angle"  # every other field is a size, count, density or probability
        if isinstance(cur, bool):
            if not isinstance(v, bool):
                raise ConfigError(f"{where}: expected true/false, got {v!r}")
            changes[field] = v
        elif isinstance(cur, tuple):
            ok = (isinstance(v, (list, tuple)) and len(v) == 2
                  and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                  and v[0] <= v[1] and (signed or v[0] >= 0))
            if not ok:
                raise ConfigError(f"{where}: expected a range [low, high] with low <= high"
                                  f"{'' if signed else ' and low >= 0'}, got {v!r}")
            changes[field] = tuple(type(cur[0])(x) for x in v)
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"{where}: expected a number >= 0, got {v!r}")
            changes[field] = type(cur)(v)
    return dataclasses.replace(params, **changes)


def streak_kernel(length: float, width: float, angle_deg: float) -> np.ndarray:
    """A line of the given length through the centre, angle from vertical, Gaussian cross-section
    (cached on parameters rounded to whole pixels, tenths of a pixel and whole degrees)."""
    return _streak_kernel(float(round(length)), round(width * 10) / 10, float(round(angle_deg))).copy()


@functools.lru_cache(maxsize=8192)
def _streak_kernel(length: float, width: float, angle_deg: float) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    # the streak's bounding box (odd sides, centred): near-vertical streaks need few columns
    ry = int(np.ceil(length / 2 * abs(np.cos(t)) + 2 * width)) + 1
    rx = int(np.ceil(length / 2 * abs(np.sin(t)) + 2 * width)) + 1
    y, x = np.mgrid[-ry:ry + 1, -rx:rx + 1].astype(np.float32)
    along = x * np.sin(t) + y * np.cos(t)
    across = x * np.cos(t) - y * np.sin(t)
    k = np.exp(-(across ** 2) / (2 * width ** 2)) * np.clip(length / 2 - np.abs(along) + 0.5, 0, 1)
    # streaks fade towards their ends, as motion-blurred drops do
    k *= 0.6 + 0.4 * np.cos(np.clip(along / (length / 2 + 1e-6), -1, 1) * np.pi / 2)
    return k / k.max()


def defocused_streak(length: float, width: float, angle_deg: float, defocus: float) -> np.ndarray:
    """streak_kernel blurred by `defocus` (Gaussian sigma, px) and scaled to a peak of 1; read-only.
    Cached like streak_kernel, with defocus in tenths of a pixel: blurring afresh for every layer
    was a fifth of a `real` render's time."""
    return _defocused_streak(float(round(length)), round(width * 10) / 10, float(round(angle_deg)),
                             round(defocus * 10) / 10)


@functools.lru_cache(maxsize=4096)
def _defocused_streak(length: float, width: float, angle_deg: float, defocus: float) -> np.ndarray:
    k = _blur(_streak_kernel(length, width, angle_deg), defocus)
    k = k / k.max()
    k.setflags(write=False)
    return k


def _u(rng, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def rain_layer(h: int, w: int, p: RainParams, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Seeds convolved with the streak kernel, computed as a splat: seeds are sparse (< 0.3% of
    pixels) and the kernel is a thin line, so adding each seed's nonzero kernel taps is ~10x
    cheaper than an FFT convolution of the whole image, and gives the same sum."""
    length, width = _u(rng, p.length), _u(rng, p.width)
    theta = angle + rng.uniform(-p.angle_jitter, p.angle_jitter)
    blur = _u(rng, p.blur)
    # draws only when the preset has a blur range, so older presets keep their exact rain
    k = defocused_streak(length, width, theta, blur) if p.blur[1] > 0 else streak_kernel(length, width, theta)
    s = splat(h, w, k, _u(rng, p.density), rng)
    return (np.clip(s, 0, 1) * _u(rng, p.intensity)).astype(np.float32)


def seeds(h: int, w: int, density: float, rng: np.random.Generator):
    """Streak seeds: a per-pixel coin flip of `density`, each with a brightness in 0.6-1."""
    n = int(rng.binomial(h * w, density))
    return rng.integers(0, h, n), rng.integers(0, w, n), rng.uniform(0.6, 1.0, n)


def splat(h: int, w: int, k: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """Random seeds stamped with kernel k (the seeds convolved with k)."""
    ys, xs, bright = seeds(h, w, density, rng)
    return splat_stamps(h, w, [(k, ys, xs, bright)])


def splat_stamps(h: int, w: int, stamps: list, floor: float = 1e-3) -> np.ndarray:
    """Sum of kernels stamped at seeds: [(kernel, ys, xs, weights), ...] -> HxW float64. All go
    into one canvas with a margin as wide as the widest kernel (no bounds checks), then cropped."""
    ry = max(k.shape[0] for k, *_ in stamps) // 2
    rx = max(k.shape[1] for k, *_ in stamps) // 2
    wc = w + 2 * rx
    idx, val = [], []
    for k, ys, xs, wt in stamps:
        ky, kx = np.nonzero(k > floor)  # taps below `floor` of the peak are not drawn
        kv = k[ky, kx]
        oy, ox = ry - k.shape[0] // 2, rx - k.shape[1] // 2  # centre smaller kernels in the margin
        idx.append(((ys[:, None] + (ky + oy)[None]) * wc + (xs[:, None] + (kx + ox)[None])).ravel())
        val.append(np.outer(wt, kv).ravel())
    s = np.bincount(np.concatenate(idx), weights=np.concatenate(val), minlength=(h + 2 * ry) * wc)
    return s.reshape(h + 2 * ry, wc)[ry:ry + h, rx:rx + w]


def _smooth_field(h: int, w: int, rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """A smooth random field in [0, 1]: a few random values bilinearly stretched over the image."""
    from PIL import Image
    g = rng.random((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(g, mode="F").resize((w, h), Image.BILINEAR))


DEPTH_STRIDE = 4  # the depth map is smooth: kept at 1/4 resolution, read at seeds by (y//4, x//4)


def scene_depth(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Cheap depth prior in [0, 1] (1 = far) at 1/DEPTH_STRIDE resolution: photos tend to look
    farther towards the top (ground near the camera at the bottom), plus a smooth random field
    for buildings, trees, people."""
    hl, wl = -(-h // DEPTH_STRIDE), -(-w // DEPTH_STRIDE)
    ramp = np.linspace(1.0, 0.0, hl, dtype=np.float32)[:, None] ** rng.uniform(0.5, 2.0)
    t = float(rng.uniform(0.3, 0.8))  # how much the vertical ramp explains
    return np.clip(t * ramp + (1 - t) * _smooth_field(hl, wl, rng), 0, 1)


def _upsample(a: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a small kernel, grown so that nothing is cut off."""
    if sigma < 0.3:
        return a
    from scipy.ndimage import gaussian_filter
    r = int(np.ceil(2.5 * sigma))
    return gaussian_filter(np.pad(a, r), sigma, mode="constant", truncate=2.5)


def _lerp(r0: Range, r1: Range, t: float, rng: np.random.Generator) -> float:
    """A value between a far range (t=0) and a near range (t=1)."""
    return (1 - t) * _u(rng, r0) + t * _u(rng, r1)


def render_real_rain(clean: np.ndarray, p: RealRainParams, rng: np.random.Generator,
                     with_target: bool = False):
    """Renderer v2 (module docstring): uint8 HxWx3 clean -> uint8 rainy, or (rainy, target) with
    `with_target` (the target is the clean image, misty when `p.mist_in_target`; same draws).

    Streak opacity from all layers is splatted into one canvas (each seed weighted by its layer's
    opacity and by whether the scene at that spot is farther than the layer), so the cost is the
    seeds' kernel taps plus a handful of whole-image passes: >= 200 renders/s at 256x256."""
    h, w = clean.shape[:2]
    depth = scene_depth(h, w, rng)
    angle = _u(rng, p.angle)
    n = int(rng.integers(p.layers[0], p.layers[1] + 1))
    stamps = []
    for i in range(n):
        near = i / max(1, n - 1)  # 0: farthest layer, 1: nearest
        z = 1 - near  # the layer's depth on the scene-depth scale
        length = _lerp(p.length_far, p.length_near, near, rng)
        width = _lerp(p.width_far, p.width_near, near, rng)
        density = _lerp(p.density_far, p.density_near, near, rng)
        opacity = _lerp(p.opacity_far, p.opacity_near, near, rng)

        # near drops are out of focus: blurring the stamp blurs every streak it makes
        defocus = _u(rng, p.defocus_near) * near if near > 0.6 else 0.0
        subs = 2 if near > 0.6 else 1  # gusts: the nearest layers show sub-layers at other angles
        for _ in range(subs):
            k = defocused_streak(length, width, angle + rng.uniform(-p.gust, p.gust), defocus)
            ys, xs, bright = seeds(h, w, density / subs, rng)
            # a streak is hidden where the scene is nearer than its layer
            seen = np.clip((depth[ys // DEPTH_STRIDE, xs // DEPTH_STRIDE] - z) * 6 + 1, 0, 1)
            stamps.append((k, ys, xs, bright * seen * opacity))
    # taps under 2% of a streak's peak change a pixel by < 1 grey level: not drawn (2x faster)
    a = np.minimum(splat_stamps(h, w, stamps, floor=0.02), 0.95).astype(np.float32)
    light = _u(rng, p.light) * (1 + rng.uniform(-0.03, 0.03, 3)) * 255
    mist = _u(rng, p.mist)
    m = _upsample(mist * (1 - np.exp(-3 * depth)) / (1 - np.exp(-3)), h, w)  # thickens with depth
    veil = _u(rng, p.mist_light) * (1 + rng.uniform(-0.03, 0.03, 3)) * 255
    keep, streak = (1 - a) * (1 - m), a * (1 - m)
    # channel by channel: numpy broadcasts an HxW factor over HxWx3 several times slower
    o = np.empty(clean.shape, np.float32)
    for c in range(3):
        o[..., c] = clean[..., c] * keep + streak * np.float32(light[c]) + m * np.float32(veil[c])
    if rng.random() < p.splash_p:
        _splashes(o, depth, rng)
    if rng.random() < p.drops_p:
        _lens_drops(o, rng)
    o += 0.5
    rainy = np.clip(o, 0, 255, out=o).astype(np.uint8)
    if not with_target:
        return rainy
    if not p.mist_in_target:
        return rainy, clean
    t = np.empty(clean.shape, np.float32)
    for c in range(3):
        t[..., c] = clean[..., c] * (1 - m) + m * np.float32(veil[c]) + 0.5
    return rainy, np.clip(t, 0, 255, out=t).astype(np.uint8)


def _splashes(o: np.ndarray, depth: np.ndarray, rng: np.random.Generator) -> None:
    """(In place) small bright specks where drops hit the ground: the near (low-depth) part of the frame."""
    h, w = o.shape[:2]
    k = np.exp(-((np.mgrid[-2:3, -2:3] ** 2).sum(0)) / rng.uniform(0.5, 2.0)).astype(np.float32)
    ys, xs, bright = seeds(h, w, float(rng.uniform(0.001, 0.006)), rng)
    near_ground = np.clip(1.5 - 3 * depth[ys // DEPTH_STRIDE, xs // DEPTH_STRIDE], 0, 1)
    s = splat_stamps(h, w, [(k, ys, xs, bright * near_ground)])
    s = np.clip(s * rng.uniform(0.2, 0.5), 0, 1).astype(np.float32)
    for c in range(3):
        o[..., c] += s * (242 - o[..., c])


def _lens_drops(o: np.ndarray, rng: np.random.Generator) -> None:
    """(In place) a few out-of-focus drops on the lens: discs that blur and brighten what is
    behind them. Each disc is drawn only inside its bounding box."""
    from PIL import Image
    h, w = o.shape[:2]
    # what is behind a drop, defocused: a blur at quarter resolution, stretched back
    small = Image.fromarray(np.clip(o, 0, 255).astype(np.uint8)).resize((max(1, w // 4), max(1, h // 4)), Image.BOX)
    blurred = np.minimum(np.asarray(small.resize((w, h), Image.BILINEAR), np.float32) * 1.05 + 12, 255)
    strength = rng.uniform(0.5, 0.9)
    for _ in range(int(rng.integers(1, 6))):
        r = rng.uniform(0.02, 0.08) * min(h, w)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, y1 = max(0, int(cy - 1.2 * r)), min(h, int(cy + 1.2 * r) + 1)
        x0, x1 = max(0, int(cx - 1.2 * r)), min(w, int(cx + 1.2 * r) + 1)
        if y1 <= y0 or x1 <= x0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / r
        m = (np.clip((1.2 - d) * 4, 0, 1) * strength)[..., None]
        box = o[y0:y1, x0:x1]
        box += m * (blurred[y0:y1, x0:x1] - box)


def render_screen_rain(clean: np.ndarray, p: ScreenRainParams, rng: np.random.Generator) -> np.ndarray:
    """`screen` rain (ScreenRainParams): uint8 clean -> uint8 rainy."""
    from scipy.ndimage import convolve, gaussian_filter
    h, w = clean.shape[:2]
    angle = _u(rng, p.angle)
    rain = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(p.layers[0], p.layers[1] + 1))):
        noise = (rng.random((h, w)) < _u(rng, p.density)).astype(np.float32) * rng.random((h, w), np.float32)
        noise = gaussian_filter(noise, _u(rng, p.grain))
        # a fixed width draws nothing, so `screen` renders exactly as before the field existed
        width = p.width[0] if p.width[0] == p.width[1] else _u(rng, p.width)
        k = streak_kernel(_u(rng, p.length), width, angle + rng.uniform(-p.angle_jitter, p.angle_jitter))
        layer = convolve(noise, (k / k.sum()).astype(np.float32), mode="reflect")
        layer /= max(float(layer.max()), 1e-6)
        lo = _u(rng, p.levels)
        layer = np.clip((layer - lo) / (1 - lo), 0, 1) * _u(rng, p.strength)
        rain = 1 - (1 - rain) * (1 - layer)  # screen blend of the layers
    o = clean.astype(np.float32) / 255
    o = 1 - (1 - o) * (1 - rain[..., None])
    a = _u(rng, p.haze)
    o = o * (1 - a) + a * 0.85
    return np.clip(o * 255 + 0.5, 0, 255).astype(np.uint8)


def render_pair(clean: np.ndarray, params: RainParams | RealRainParams | ScreenRainParams | str,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 clean -> (rainy, target): the target is `clean` except for presets that keep the
    mist in it (`real-streaks`). Same draws as `render_rain`, so the rainy image is identical."""
    if isinstance(params, RealRainParams):
        return render_real_rain(clean, params, rng, with_target=True)
    return render_rain(clean, params, rng), clean


def render_rain(clean: np.ndarray, params: RainParams | str, rng: np.random.Generator) -> np.ndarray:
    """uint8 HxWx3 clean image -> uint8 rainy image."""
    if params == "mixed":
        params = PRESETS["light" if rng.random() < 0.5 else "heavy"]
    if isinstance(params, RealRainParams):
        return render_real_rain(clean, params, rng)
    if isinstance(params, ScreenRainParams):
        return render_screen_rain(clean, params, rng)
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
    from .io import load_image, no_images_found, save_image
    from .pairing import list_images

    params = get_preset(preset)
    clean_dir, out = Path(clean_dir), Path(out_dir)
    if not clean_dir.is_dir():
        raise FclipError(f"--clean {clean_dir}: not a folder")
    files = list_images(clean_dir)
    if not files:
        raise FclipError(f"--clean {no_images_found(clean_dir)}")
    failed = []
    for j, f in enumerate(progress_bar(files, desc=f"synth {preset}", unit="img", enabled=progress)):
        try:
            clean = load_image(f)
        except ImageError as e:
            failed.append(str(e))
            continue
        per_copy = getattr(params, "mist_in_target", False)  # each copy has its own misty target
        if not per_copy:
            save_image(out / "target" / f"{f.stem}.png", clean)
        for k in range(copies):
            rng = np.random.default_rng([seed, j, k])
            name = f"{f.stem}.png" if copies == 1 else f"{f.stem}_{k}.png"
            rainy, target = render_pair(clean, params, rng)
            save_image(out / "input" / name, rainy)
            if per_copy:
                save_image(out / "target" / name, target)
    meta = {"clean": str(clean_dir), "preset": preset, "copies": copies, "seed": seed,
            "images": len(files) - len(failed),
            "params": {k: v.to_dict() for k, v in PRESETS.items()} if preset == "mixed" else params.to_dict()}
    text = json.dumps(meta, indent=2)
    atomic_write(out / "synth.json", lambda t: Path(t).write_text(text))
    for e in failed:
        print(f"  failed: {e}", file=sys.stderr)
    print(f"wrote {len(files) - len(failed)} x {copies} pairs to {out}", file=sys.stderr)
    return 1 if failed else 0
