"""Validation that can rank runs (issue 35): the pairs held out from training plus one synthetic
set per rain kind, rendered with fixed seeds over the held-out pairs' backgrounds, scored per kind.

The selection aggregate is the mean over the kinds with rain (each kind weighs the same, however
many images it has); the rain-free kind is a constraint reported beside it, not part of the mean.
Per-image scores are kept so that two runs can be compared image by image: the standard error of
their difference is what says whether a gap between runs is real.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import NO_RAIN
from ..data.io import load_image
from ..data.pairing import list_images
from ..data.synth import preset_params, render_pair
from ..evaluation import model_derain, score_pair

PAIRS = "pairs"  # the kind name of the held-out real training pairs


@dataclass
class ValSet:
    name: str
    inputs: list[np.ndarray]
    targets: list[np.ndarray]
    rain: bool = True  # False: the rain-free kind, a constraint outside the aggregate


@dataclass
class ValScores:
    psnr: dict[str, list[float]] = field(default_factory=dict)  # kind -> per-image PSNR
    ssim: dict[str, list[float]] = field(default_factory=dict)
    rain: dict[str, bool] = field(default_factory=dict)

    def aggregate(self, metric: str = "psnr", select=()) -> float:
        """Mean over the kinds with rain, or over `select` (data.select) where given."""
        per = getattr(self, metric)
        kinds = [k for k in per if (k in select if select else self.rain[k])]
        return float(np.mean([np.mean(per[k]) for k in kinds]))

    def summary(self, select=()) -> dict:
        out = {"val_psnr": self.aggregate("psnr", select), "val_ssim": self.aggregate("ssim", select)}
        if len(self.psnr) > 1:
            out.update({f"val_psnr_{k}": float(np.mean(v)) for k, v in self.psnr.items()})
        return out


def synthetic_sets(kinds, clean_dir: str | Path, held: set[str]) -> list[ValSet]:
    """Render each validation kind over the held-out backgrounds of `clean_dir`; image j of kind
    k uses the generator seeded (k.seed, j), so every run scores the same pictures."""
    backgrounds = [load_image(p) for p in list_images(clean_dir) if p.stem in held]
    sets = []
    for k in kinds:
        if k.preset == NO_RAIN:
            sets.append(ValSet(k.name, backgrounds, backgrounds, rain=False))
            continue
        params = preset_params(k.preset, k.rain)
        pairs = [render_pair(b, params, np.random.default_rng([k.seed, j])) for j, b in enumerate(backgrounds)]
        sets.append(ValSet(k.name, [a for a, _ in pairs], [t for _, t in pairs]))
    return sets


def pair_set(pairs, name: str = PAIRS) -> ValSet:
    return ValSet(name, [load_image(p.input) for p in pairs], [load_image(p.target) for p in pairs])


@torch.no_grad()
def score(model, sets: list[ValSet], device=None, on_image=None) -> ValScores:
    """MATLAB-protocol Y PSNR/SSIM of the model's uint8 outputs, per kind and image (fp32, one pass).
    `on_image(kind, index, input, output, target)` sees each result (for sample pictures)."""
    # the scoring core `eval` uses (evaluation.py): one rounding, one metric call per image
    derain = model_derain(model, device)
    res = ValScores()
    for s in sets:
        res.psnr[s.name], res.ssim[s.name], res.rain[s.name] = [], [], s.rain
        for i, (a, b) in enumerate(zip(s.inputs, s.targets)):
            out = derain(a)
            rec = score_pair(out, b, f"{s.name}[{i}]")
            res.psnr[s.name].append(rec["psnr"])
            res.ssim[s.name].append(rec["ssim"])
            if on_image:
                on_image(s.name, i, a, out, b)
    return res


def difference(a: ValScores, b: ValScores, exclude=()) -> dict:
    """b - a on the aggregate, with its standard error over images: per kind, the SE of the mean
    of the paired per-image differences; the aggregate's SE combines the kinds' (independent).
    `exclude`: kinds left out of the aggregate (e.g. one a branch trains on)."""
    kinds = [k for k in a.psnr if a.rain[k] and k in b.psnr and k not in exclude]
    diffs, ses = {}, []
    for k in kinds:
        d = np.asarray(b.psnr[k]) - np.asarray(a.psnr[k])
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        diffs[k] = {"diff": float(d.mean()), "se": se}
        ses.append(se)
    n = len(kinds)
    return {"aggregate": float(np.mean([diffs[k]["diff"] for k in kinds])),
            "se": float(np.sqrt(np.sum(np.square(ses))) / n), "per_kind": diffs}
