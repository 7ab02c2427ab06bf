"""Synthetic rain clips with ground truth, for developing and scoring video deraining (issue 36).

A clip is a clean photo seen by a moving camera, with rain that falls between frames:

- Camera: `static`, `pan` (constant velocity), `zoom` (scale grows steadily), `shake` (smoothed
  random jitter with a little rotation). Each frame is an affine view of the photo (bilinear).
- Parallax: with `parallax=True` a second, nearer layer (an elliptical cut-out of another photo,
  soft-edged) crosses the frame faster than the background, so the scene has two motions and
  the near layer hides and reveals the far one (occlusions), as a pan past a near object does.
- Rain: 2-4 depth layers of drops in screen space, each with its own fall speed and wind drift
  (far: slow, short, thin, faint; near: fast, long, wide, out of focus). A drop moves by its
  velocity every frame and is drawn as the streak its motion leaves during the exposure
  (length = speed x exposure), so consecutive frames show the same rain moved on, not new
  rain; drops that leave the frame re-enter at the top at a new place. Streaks blend the scene
  towards the light (`O = clean (1 - a) + a light`), as renderer v2 does (data/synth.py, whose
  kernels and splatting this module reuses).

Everything is drawn from `np.random.default_rng(seed)`: one seed, one clip, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synth import defocused_streak, splat_stamps

CAMERAS = ("static", "pan", "zoom", "shake")


@dataclass(frozen=True)
class RainClip:
    rainy: list  # T x HxWx3 uint8
    clean: list  # T x HxWx3 uint8 (the ground truth)
    meta: dict   # camera, parallax, rain layers, seed


def _affine(cx: float, cy: float, scale: float, angle_deg: float, tx: float, ty: float,
            fw: int, fh: int) -> np.ndarray:
    """2x3 matrix mapping frame pixels to photo pixels: the frame's centre sits at photo point
    (cx + tx, cy + ty), magnified by `scale` and turned by `angle_deg`."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a) / scale, np.sin(a) / scale
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = [cx + tx, cy + ty] - m[:, :2] @ [(fw - 1) / 2, (fh - 1) / 2]
    return m


def camera_path(kind: str, frames: int, photo_hw, frame_hw, rng: np.random.Generator,
                pan_speed: tuple[float, float] = (1.0, 4.0)):
    """One 2x3 frame->photo matrix per frame for a camera `kind`, kept inside the photo; a pan
    moves `pan_speed` px per frame (a range), less where the photo has no room for it."""
    import cv2  # noqa: F401  (checked here so a missing extra fails before any work)
    (ph, pw), (fh, fw) = photo_hw, frame_hw
    cx, cy = (pw - 1) / 2, (ph - 1) / 2
    room_x, room_y = (pw - fw) / 2, (ph - fh) / 2  # how far the centre may move each way
    t = np.arange(frames) - (frames - 1) / 2
    zero = np.zeros(frames)
    scale, angle, tx, ty = np.ones(frames), zero.copy(), zero.copy(), zero.copy()
    if kind == "pan":
        # along the axis with room, limited to the room there is
        speed = rng.uniform(*pan_speed)
        across = rng.uniform(-0.3, 0.3)
        if room_x >= room_y:
            v = np.array([speed * rng.choice([-1, 1]), speed * across])
        else:
            v = np.array([speed * across, speed * rng.choice([-1, 1])])
        lim = min(room_x / max(abs(v[0]) * t.max(), 1e-6), room_y / max(abs(v[1]) * t.max(), 1e-6), 1.0)
        tx, ty = v[0] * lim * t, v[1] * lim * t
    elif kind == "zoom":
        # from 1x to 1.08-1.2x (or back), about a point near the centre
        end = rng.uniform(1.08, 1.2)
        scale = np.exp(np.linspace(0, np.log(end), frames))
        if rng.random() < 0.5:
            scale = scale[::-1]
        tx[:] = rng.uniform(-0.3, 0.3) * room_x
        ty[:] = rng.uniform(-0.3, 0.3) * room_y
    elif kind == "shake":
        # hand-held: jitter of a few pixels, smoothed over ~2 frames, and up to ~0.6 degree of roll
        amp = rng.uniform(1.0, 3.0)
        k = np.array([0.25, 0.5, 0.25])
        jx = np.convolve(rng.normal(0, amp, frames + 2), k, "valid")
        jy = np.convolve(rng.normal(0, amp, frames + 2), k, "valid")
        tx, ty = np.clip(jx, -room_x, room_x), np.clip(jy, -room_y, room_y)
        angle = np.convolve(rng.normal(0, 0.3, frames + 2), k, "valid")
    elif kind != "static":
        raise ValueError(f"camera {kind!r}: choose one of {', '.join(CAMERAS)}")
    return [_affine(cx, cy, scale[i], angle[i], tx[i], ty[i], fw, fh) for i in range(frames)]


def _view(photo: np.ndarray, m: np.ndarray, fh: int, fw: int) -> np.ndarray:
    import cv2
    return cv2.warpAffine(photo, m, (fw, fh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


def _near_layer(other: np.ndarray, fh: int, fw: int, frames: int, rng: np.random.Generator):
    """A soft-edged ellipse cut from `other` that crosses the frame faster than the background:
    -> per frame (HxWx3 float colour, HxW alpha)."""
    import cv2
    rh, rw = int(fh * rng.uniform(0.35, 0.6)), int(fw * rng.uniform(0.2, 0.35))
    oy, ox = rng.integers(0, other.shape[0] - rh), rng.integers(0, other.shape[1] - rw)
    patch = other[oy:oy + rh, ox:ox + rw].astype(np.float32)
    yy, xx = np.mgrid[0:rh, 0:rw].astype(np.float32)
    d = np.sqrt(((yy - (rh - 1) / 2) / (rh / 2)) ** 2 + ((xx - (rw - 1) / 2) / (rw / 2)) ** 2)
    alpha = np.clip((1 - d) * 8, 0, 1).astype(np.float32)  # edge ~1-2 px wide
    # 3-8 px per frame sideways: a near object seen from a moving camera
    vx = rng.uniform(3.0, 8.0) * rng.choice([-1, 1])
    vy = rng.uniform(-0.5, 0.5)
    x0 = rng.uniform(0.15, 0.85) * fw - vx * (frames - 1) / 2 - rw / 2
    y0 = rng.uniform(0.2, 0.8) * fh - rh / 2
    out = []
    for i in range(frames):
        m = np.array([[1, 0, x0 + vx * i], [0, 1, y0 + vy * i]], np.float32)
        col = cv2.warpAffine(patch, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        a = cv2.warpAffine(alpha, m, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out.append((col, a))
    return out


@dataclass(frozen=True)
class RainLayer:
    speed: float      # px per frame along the streak
    angle: float      # degrees from vertical
    length: float     # streak length, px (motion during the exposure)
    width: float      # Gaussian sigma across the streak, px
    defocus: float    # extra blur of near drops, px
    opacity: float    # how far a streak pulls the scene towards the light
    count: int        # drops in the layer


def rain_layers(h: int, w: int, rng: np.random.Generator, amount: float = 1.0) -> list[RainLayer]:
    """2-4 layers from far (slow, short, thin, faint, many) to near (fast, long, wide, few);
    `amount` scales the number of drops."""
    n = int(rng.integers(2, 5))
    angle = rng.uniform(-20, 20)
    exposure = rng.uniform(0.5, 1.0)  # fraction of the frame interval the shutter is open
    layers = []
    for i in range(n):
        near = i / (n - 1)
        speed = (1 - near) * rng.uniform(8, 16) + near * rng.uniform(35, 70)
        density = (1 - near) * rng.uniform(0.002, 0.006) + near * rng.uniform(0.0003, 0.0012)
        layers.append(RainLayer(
            speed=speed, angle=angle + rng.uniform(-5, 5),
            length=max(4.0, speed * exposure), width=(1 - near) * rng.uniform(0.3, 0.5) + near * rng.uniform(0.5, 1.1),
            defocus=near * rng.uniform(0.0, 1.5) if near > 0.6 else 0.0,
            opacity=(1 - near) * rng.uniform(0.1, 0.25) + near * rng.uniform(0.2, 0.5),
            count=max(1, int(density * amount * h * w))))
    return layers


class FallingRain:
    """Drops of several layers moving between frames; `next()` -> the HxW streak opacity of the
    next frame (0..0.95). Drops live on a canvas larger than the frame by the longest streak, so
    streaks enter and leave the frame whole."""

    def __init__(self, h: int, w: int, layers: list[RainLayer], rng: np.random.Generator):
        self.h, self.w, self.layers, self.rng = h, w, layers, rng
        self.kernels = [defocused_streak(L.length, L.width, L.angle, L.defocus) for L in layers]
        self.m = max(max(k.shape) for k in self.kernels) // 2 + 1
        H, W = h + 2 * self.m, w + 2 * self.m
        self.pos = [np.stack([rng.uniform(0, H, L.count), rng.uniform(0, W, L.count)], 1) for L in layers]
        self.bright = [rng.uniform(0.6, 1.0, L.count) for L in layers]

    def next(self) -> np.ndarray:
        m, H, W = self.m, self.h + 2 * self.m, self.w + 2 * self.m
        stamps = []
        for L, k, p, b in zip(self.layers, self.kernels, self.pos, self.bright):
            ys, xs = np.round(p[:, 0]).astype(int), np.round(p[:, 1]).astype(int)
            ok = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
            stamps.append((k, ys[ok], xs[ok], b[ok] * L.opacity))
            # move on: fall along the layer's angle; those below the canvas re-enter at the top
            a = np.deg2rad(L.angle)
            p += L.speed * np.array([np.cos(a), np.sin(a)])
            gone = p[:, 0] >= H
            p[gone, 0] -= H
            p[gone, 1] = self.rng.uniform(0, W, int(gone.sum()))
            b[gone] = self.rng.uniform(0.6, 1.0, int(gone.sum()))
            p[:, 1] %= W  # wind carries drops across the side edges
        a = splat_stamps(H, W, stamps, floor=0.02)[m:m + self.h, m:m + self.w]
        return np.minimum(a, 0.95).astype(np.float32)


def make_clip(photo: np.ndarray, seed: int, frames: int = 12, size: tuple[int, int] = (240, 320),
              camera: str = "pan", parallax: bool = False, other: np.ndarray | None = None,
              amount: float = 1.0, pan_speed: tuple[float, float] = (1.0, 4.0)) -> RainClip:
    """A rainy clip of `frames` frames of `size` (h, w) over `photo` (uint8 HxWx3, at least as
    large as `size`); `other` gives the near layer's picture when `parallax` (default: `photo`)."""
    fh, fw = size
    if photo.shape[0] < fh or photo.shape[1] < fw:
        raise ValueError(f"photo {photo.shape[:2]} is smaller than the frame {size}")
    rng = np.random.default_rng(seed)
    mats = camera_path(camera, frames, photo.shape[:2], size, rng, pan_speed)
    near = _near_layer(other if other is not None else photo, fh, fw, frames, rng) if parallax else None
    layers = rain_layers(fh, fw, rng, amount)
    rain = FallingRain(fh, fw, layers, rng)
    light = rng.uniform(0.8, 1.0) * (1 + rng.uniform(-0.03, 0.03, 3)) * 255
    rainy, clean = [], []
    for i in range(frames):
        bg = _view(photo, mats[i], fh, fw).astype(np.float32)
        if near is not None:
            col, a = near[i]
            bg = bg * (1 - a[..., None]) + col * a[..., None]
        c = np.clip(bg + 0.5, 0, 255).astype(np.uint8)
        s = rain.next()
        o = c.astype(np.float32) * (1 - s[..., None]) + s[..., None] * light.astype(np.float32)
        rainy.append(np.clip(o + 0.5, 0, 255).astype(np.uint8))
        clean.append(c)
    meta = {"seed": seed, "camera": camera, "parallax": parallax, "frames": frames, "size": list(size),
            "amount": amount, "layers": [vars(L) for L in layers]}
    return RainClip(rainy, clean, meta)


# ---------------------------------------------------------------- the clip sets used by the project

# Which clean photos the clip sets use: the 200 BSDS500 test photos (RainTrainL's backgrounds)
# less the 20 that every training config holds out for model validation (data/datasets.py
# holdout_split, seed 0), shuffled with CLIP_SET_SEED; the first DEV_BACKGROUNDS are for
# choosing the fusion's settings, the next TEST_BACKGROUNDS only for reporting. The default model
# trained on these photos (under other rain), which flatters the per-frame path, not the temporal one.
CLIP_SET_SEED = 36
DEV_BACKGROUNDS, TEST_BACKGROUNDS = 8, 16


def clip_backgrounds(clean_dir, rain_dir) -> dict[str, list]:
    """-> {"dev": [Path, ...], "test": [Path, ...]} (the split above)."""
    from .datasets import holdout_split
    from .pairing import pairs_from
    pairs = pairs_from(None, rain_dir, clean_dir)
    train, _ = holdout_split(pairs, 20, 0)
    names = sorted(p.target for p in train)
    order = np.random.default_rng(CLIP_SET_SEED).permutation(len(names))
    pick = [names[i] for i in order]
    return {"dev": pick[:DEV_BACKGROUNDS], "test": pick[DEV_BACKGROUNDS:DEV_BACKGROUNDS + TEST_BACKGROUNDS]}


def clip_set(backgrounds: list, frames: int = 12, size=(240, 320), seed: int = 0) -> list[RainClip]:
    """One clip per background; cameras cycle static, pan, zoom, shake, and every other pan and
    shake clip has the near (parallax) layer, cut from the next background of the list."""
    from .io import load_image
    photos = [load_image(p) for p in backgrounds]
    clips = []
    for j, photo in enumerate(photos):
        camera = CAMERAS[j % len(CAMERAS)]
        parallax = camera in ("pan", "shake") and (j // len(CAMERAS)) % 2 == 0
        clip = make_clip(photo, seed=seed * 100_003 + j, frames=frames, size=size, camera=camera,
                         parallax=parallax, other=photos[(j + 1) % len(photos)])
        clip.meta["background"] = backgrounds[j].name
        clips.append(clip)
    return clips
