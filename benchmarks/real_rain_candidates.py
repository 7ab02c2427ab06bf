"""Candidate checkpoints on real rain without ground truth, before one is shipped.

    python benchmarks/real_rain_candidates.py default runs/a/best.safetensors ... [--every 8] [--json F]

For every 8th photo of NTURain-R (ra1 + rb2) and real-rain: the no-ground-truth rain statistics
of fclip_derain.metrics.rain_stats (streak contrast, streak cover, veil), NIQE, and the mean
brightness change in grey levels, for the inputs and each checkpoint's outputs (one thread, fp32).
A lighter cousin of prenet_side_by_side.py for choosing between training runs: streak contrast
should fall, and brightness should fall only as much as rain is removed. The same checkpoints on
the 20 held-out backgrounds without rain (`no_rain_*`: brightness change and PSNR to the input)
tell darkening from removed rain apart from a colour shift that happens everywhere.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from heavy_rain import held_out_backgrounds
from prenet_side_by_side import real_images

from fclip_derain import Derainer
from fclip_derain.data.io import load_image
from fclip_derain.metrics import niqe, psnr_rgb
from fclip_derain.metrics.rain_stats import luminance, rain_stats

KEYS = ("streak_contrast", "streak_cover", "veil")


def summary(outs, inputs) -> dict:
    r = {k: float(np.mean([rain_stats(o)[k] for o in outs])) for k in KEYS}
    r["niqe"] = float(np.mean([niqe(o) for o in outs]))
    r["brightness_change"] = float(np.mean([(luminance(o) - luminance(i)).mean() * 255 for o, i in zip(outs, inputs)]))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+", help="checkpoint files, or `default` for the shipped model")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    imgs = [load_image(f) for f in real_images(args.every)]  # the side by side's photos, every k-th
    backgrounds = list(held_out_backgrounds())
    report = {"images": len(imgs), "input": summary(imgs, imgs)}
    for ck in args.checkpoints:
        d = Derainer(None if ck == "default" else ck, device="cpu", half=False)
        report[ck] = summary([d.derain(i) for i in imgs], imgs)
        outs = [d.derain(b) for b in backgrounds]
        report[ck]["no_rain_brightness_change"] = float(np.mean(
            [(luminance(o) - luminance(b)).mean() * 255 for o, b in zip(outs, backgrounds)]))
        report[ck]["no_rain_psnr_to_input"] = float(np.mean([psnr_rgb(o, b) for o, b in zip(outs, backgrounds)]))
    for k, r in report.items():
        if k != "images":
            print(f"{k}: " + ", ".join(f"{m} {v:+.2f}" if m.endswith("brightness_change") else f"{m} {v:.2f}"
                                       for m, v in r.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
