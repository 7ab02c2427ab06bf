"""Rain-layer transplant: the rain of real pairs, moved onto other clean photos.

A handful of pairs drawn by a generator we cannot run (RainTrainH-20: 18 pairs of Rain100H's own
generator, issue 46) is too few backgrounds to learn from, but each pair carries a whole rain
layer: `input - target`. Re-compositing those layers over the 200 clean backgrounds, cropped,
shifted, mirrored, scaled in intensity and stacked two or three deep, shows the generator's
streaks over new scenes. The layer is added and clipped, which is how Rain100H's generator
composes rain (O = min(1, B + S)): on the 18 pairs `input - target` is never negative, stays flat
over backgrounds darker than 0.4 and falls only where the sum saturates (up to 49% of a pair's
pixels), where a screen blend would shrink it linearly with the background (campaign/stage21.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, FclipError
from .io import load_image


@dataclass(frozen=True)
class TransplantParams:
    layers: tuple[int, int] = (1, 2)  # rain layers stacked per sample (inclusive range)
    gain: tuple[float, float] = (0.8, 1.15)  # intensity of each layer
    # probability of a horizontal mirror per layer (vertical mirrors would turn the streaks'
    # bright heads upside down; the generator never does that)
    mirror: float = 0.5


def transplant_params(overrides: dict | None, key: str = "rain") -> TransplantParams:
    fields = TransplantParams.__dataclass_fields__
    for k in overrides or {}:
        if k not in fields:
            raise ConfigError(f"{key}.{k}: unknown transplant field (known: {', '.join(fields)})")
    p = TransplantParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()})
    if not 1 <= p.layers[0] <= p.layers[1] or not 0 < p.gain[0] <= p.gain[1] or not 0 <= p.mirror <= 1:
        raise ConfigError(f"{key}: layers need 1 <= lo <= hi, gain 0 < lo <= hi, mirror in [0, 1] (got {p})")
    return p


def rain_layer_of(rainy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """The rain of a pair as a signed float32 layer in [-1, 1] (HxWx3)."""
    return rainy.astype(np.float32) / 255 - clean.astype(np.float32) / 255


class TransplantSource:
    """Clean photos (`get`) under rain layers lifted from pairs (`render`): every sample stacks
    1-3 random crops of random layers over the cropped photo."""

    def __init__(self, pairs, clean: list, params: TransplantParams | None = None, warn=print):
        self.params = params or TransplantParams()
        self.layers = []
        for p in pairs:
            try:
                a, b = load_image(p.input), load_image(p.target)
            except Exception as e:  # noqa: BLE001 - a broken pair is skipped, as PairedSource does
                warn(f"skipping rain layer: {e}")
                continue
            if a.shape == b.shape:
                self.layers.append(rain_layer_of(a, b))
            else:
                warn(f"skipping rain layer: {p.input} differs in size from its target")
        self.clean, self._cache = [], {}
        for path in clean:
            try:
                self._cache[len(self.clean)] = load_image(path)
                self.clean.append(path)
            except Exception as e:  # noqa: BLE001
                warn(f"skipping clean image: {e}")
        if not self.layers or not self.clean:
            raise FclipError("a transplant source needs readable rain pairs and clean images")

    def __len__(self):
        return len(self.clean)

    def get(self, i: int, rng: np.random.Generator):
        return None, self._cache[i]

    def render(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        h, w = clean.shape[:2]
        p = self.params
        rain = np.zeros((h, w, 3), np.float32)
        for _ in range(int(rng.integers(p.layers[0], p.layers[1] + 1))):
            layer = self.layers[int(rng.integers(len(self.layers)))]
            if rng.random() < p.mirror:
                layer = layer[:, ::-1]
            layer = _crop_or_tile(layer, h, w, rng)
            rain += float(rng.uniform(*p.gain)) * layer
        out = np.clip(clean.astype(np.float32) / 255 + rain, 0, 1)
        return (out * 255 + 0.5).astype(np.uint8), clean


def _crop_or_tile(layer: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random h x w window of the layer (wrapped around where the layer is smaller)."""
    lh, lw = layer.shape[:2]
    if lh < h or lw < w:
        layer = np.tile(layer, (-(-h // lh), -(-w // lw), 1))
        lh, lw = layer.shape[:2]
    y, x = int(rng.integers(lh - h + 1)), int(rng.integers(lw - w + 1))
    return layer[y:y + h, x:x + w]
