"""Heavy and realistic synthetic rain over the 20 held-out RainTrainL backgrounds, per model.

    python benchmarks/heavy_rain.py default runs/campaign/best.safetensors --json docs/heavy-rain.json

The backgrounds are the validation pairs every training config holds out (seed 0, 20 images), so
no model here saw them in training. Each preset renders one rainy copy per background with a
fixed seed; outputs are rounded to uint8 and scored with MATLAB-protocol Y-PSNR/SSIM against the
preset's target (the clean photo; for `real-streaks`, the clean photo under the same mist).
`--from-config FILE` adds the synthetic sources of a training config that vary a preset's fields
(`rain:`), e.g. the dense arm of stage 5 in campaign/LOG.md, labelled `PRESET+FILE[i]`.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fclip_derain.data.datasets import holdout_split
from fclip_derain.data.io import load_image, to_float, to_uint8
from fclip_derain.data.pairing import pairs_from
from fclip_derain.data.synth import get_preset, render_pair
from fclip_derain.metrics import psnr_y, ssim_y
from fclip_derain.models import load_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def held_out_pairs(n: int = 20, seed: int = 0):
    """The RainTrainL pairs the training runs hold out for validation (never trained on)."""
    pairs = pairs_from(None, DATA / "RainTrainL" / "input", DATA / "clean" / "BSDS500-test")
    return holdout_split(pairs, n, seed)[1]


def held_out_backgrounds(n: int = 20, seed: int = 0) -> list[np.ndarray]:
    return [load_image(p.target) for p in held_out_pairs(n, seed)]


@torch.inference_mode()
def derain_all(model, images) -> list[np.ndarray]:
    """uint8 images through a plain module (no work size, no ensemble), rounded to uint8."""
    return [to_uint8(model(to_float(img)[None])[0]) for img in images]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+", help="'default' for the shipped model, or .safetensors files")
    ap.add_argument("--presets", default="heavy,real,real-streaks")
    ap.add_argument("--from-config", help="also score the `rain:` variants of this training config's synthetic sources")
    ap.add_argument("--json")
    args = ap.parse_args()
    clean = held_out_backgrounds()
    rains = {name: get_preset(name) for name in args.presets.split(",")}
    if args.from_config:
        from fclip_derain.train.config import rain_variants
        rains.update(rain_variants(args.from_config))
    models = {ck: load_model(None if ck == "default" else ck) for ck in args.checkpoints}
    res = {}
    for preset, params in rains.items():
        rainy, target = zip(*[render_pair(c, params, np.random.default_rng([7, i]))
                              for i, c in enumerate(clean)])
        res[preset] = {"input": {"psnr": float(np.mean([psnr_y(r, c) for r, c in zip(rainy, target)])),
                                 "ssim": float(np.mean([ssim_y(r, c) for r, c in zip(rainy, target)]))}}
        for ck, model in models.items():
            outs = derain_all(model, rainy)
            res[preset][ck] = {"psnr": float(np.mean([psnr_y(o, c) for o, c in zip(outs, target)])),
                               "ssim": float(np.mean([ssim_y(o, c) for o, c in zip(outs, target)]))}
            print(preset, ck, res[preset][ck], file=sys.stderr, flush=True)
    text = json.dumps({"backgrounds": len(clean), "results": res}, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
