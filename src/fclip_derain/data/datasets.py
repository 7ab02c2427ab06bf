"""Training and evaluation datasets.

Training samples are a pure function of (seed, global sample index): the sample index picks
the source (by weight), the image, the crop and the augmentation through its own RNG. So a run
resumed at iteration k sees exactly the batches an uninterrupted run would, with any number of
DataLoader workers, and no sampler state needs saving beyond the iteration count.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import FclipError, ImageError
from .io import load_image
from .pairing import Pair


class PairedSource:
    """Rainy/clean pairs, decoded once and kept in memory as uint8 (RainTrainL: ~90 MB)."""

    def __init__(self, pairs: list[Pair], warn=print):
        # decoded up front: a broken file is skipped with a warning now, not a crash hours in
        self.pairs, self._cache = [], {}
        for p in pairs:
            try:
                a, b = load_image(p.input), load_image(p.target)
                if a.shape != b.shape:
                    raise ImageError(f"{p.input}: size {a.shape[1]}x{a.shape[0]} differs from its target {p.target}")
            except ImageError as e:
                warn(f"skipping training pair: {e}")
                continue
            self._cache[len(self.pairs)] = (a, b)
            self.pairs.append(p)
        if not self.pairs:
            raise FclipError("a paired training source has no readable pairs")

    def __len__(self):
        return len(self.pairs)

    def get(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._cache[i]


# the preset of a synthetic source that renders no rain: the clean photo is input and target
NO_RAIN = "none"


class SyntheticSource:
    """Clean photos with rain rendered on the fly: new rain for every sample, after cropping
    (cheaper, and the crop is all that is seen). With preset `none` the photo is its own input:
    every other source has rain in every input, so without these the model learns to take a
    little off every image, rain or not (campaign/LOG.md, stage 9: the rain-free arm)."""

    def __init__(self, clean: list[Path], preset: str, warn=print, rain: dict | None = None):
        from .synth import preset_params

        self.params = None if preset == NO_RAIN else preset_params(preset, rain)
        self.clean, self._cache = [], {}
        for path in clean:
            try:
                self._cache[len(self.clean)] = load_image(path)
                self.clean.append(path)
            except ImageError as e:
                warn(f"skipping clean image: {e}")
        if not self.clean:
            raise FclipError("a synthetic training source has no readable clean images")

    def __len__(self):
        return len(self.clean)

    def get(self, i: int, rng: np.random.Generator) -> tuple[None, np.ndarray]:
        return None, self._cache[i]

    def render(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """-> (rainy, target); the target is `clean` unless the preset keeps mist in it."""
        if self.params is None:
            return clean, clean
        from .synth import render_pair
        return render_pair(clean, self.params, rng)


# `data.rotations` -> how many of the quarter turns a patch draws from: 0..3 (any), 0 or 2
# (upright: rain keeps its direction), 0 (none)
ROTATIONS = {True: 4, "any": 4, "upright": 2, False: 1, "none": 1}


class TrainPatches(Dataset):
    """Sample k of an endless stream of (input, target) float patches."""

    def __init__(self, sources: list, weights: list[float], patch_size: int | list, seed: int = 0,
                 flips: bool = True, rotations: bool | str = True, length: int = 10 ** 12):
        self.sources = sources
        w = np.asarray(weights, dtype=np.float64)
        self.probs = w / w.sum()
        self.patch_size = patch_size  # int, or a function of the sample index (progressive)
        self.seed, self.flips, self.length = seed, flips, length
        self.turns = ROTATIONS[rotations]

    def __len__(self):
        return self.length

    def size_for(self, k: int) -> int:
        return self.patch_size(k) if callable(self.patch_size) else self.patch_size

    def __getitem__(self, k: int):
        rng = np.random.default_rng([self.seed, k])
        s = rng.choice(len(self.sources), p=self.probs)
        src = self.sources[s]
        i = int(rng.integers(len(src)))
        ps = self.size_for(k)
        a, b = src.get(i, rng)
        b = _fit(b, ps)
        y, x = int(rng.integers(b.shape[0] - ps + 1)), int(rng.integers(b.shape[1] - ps + 1))
        b = b[y:y + ps, x:x + ps]
        if a is None:
            a, b = src.render(b, rng)
        else:
            a = _fit(a, ps)[y:y + ps, x:x + ps]
        if self.flips and rng.random() < 0.5:
            a, b = a[:, ::-1], b[:, ::-1]
        if self.turns > 1:
            r = int(rng.integers(self.turns)) * (4 // self.turns)
            a, b = np.rot90(a, r), np.rot90(b, r)
        t = lambda im: torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1).float().div_(255)
        return t(a), t(b)


def _fit(img: np.ndarray, ps: int) -> np.ndarray:
    """Reflect-pad images smaller than the patch (tiny training images are still usable)."""
    h, w = img.shape[:2]
    if h >= ps and w >= ps:
        return img
    return np.pad(img, ((0, max(0, ps - h)), (0, max(0, ps - w)), (0, 0)), mode="symmetric")


class BatchStream(Dataset):
    """Item j = batch j (samples j*B .. j*B+B-1), so every batch shares one patch size."""

    def __init__(self, patches: TrainPatches, batch_size: int):
        self.p, self.b = patches, batch_size

    def __len__(self):
        return len(self.p) // self.b

    def __getitem__(self, j):
        items = [self.p[j * self.b + i] for i in range(self.b)]
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])


def holdout_split(pairs: list[Pair], n: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Deterministically hold out n pairs for validation; returns (train, val)."""
    if n <= 0:
        return pairs, []
    if n >= len(pairs):
        raise FclipError(f"data.val_holdout={n} leaves no training pairs (only {len(pairs)})")
    order = np.random.default_rng(seed + 12345).permutation(len(pairs))
    val_idx = set(order[:n].tolist())
    return ([p for i, p in enumerate(pairs) if i not in val_idx],
            [p for i, p in enumerate(pairs) if i in val_idx])
