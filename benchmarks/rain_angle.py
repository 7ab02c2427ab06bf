"""How much rain a model removes as the rain tilts away from vertical.

    python benchmarks/rain_angle.py runs/v8.safetensors runs/a/best.safetensors --json campaign/results/stage6-rain-angle.json \
        [--angles 0,10,20,30,40,50] [--presets light,real-streaks] [--figure docs/figures/rain_angle.png]

Each preset renders one rainy copy of the 20 held-out RainTrainL backgrounds (the validation pairs
every training config holds out) with every streak at one fixed angle from vertical (the preset's
per-layer jitter and gusts still apply), same seeds at every angle, so only the tilt changes. The
score is the gain in MATLAB-protocol Y-PSNR of the rounded output over the rainy input. Wind-driven
real rain falls at 30-45 degrees; RainTrainL's rain is near vertical.
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
from heavy_rain import derain_all, held_out_backgrounds

from fclip_derain.data.synth import get_preset, render_pair
from fclip_derain.metrics import psnr_y
from fclip_derain.models import load_model


def tilted(preset: str, angle: float):
    params = get_preset(preset)
    if isinstance(params, str):
        raise SystemExit(f"--presets: {preset!r} draws light or heavy per image; name one of them")
    return dataclasses.replace(params, angle=(float(angle), float(angle)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+", help="'default' for the shipped model, or .safetensors files")
    ap.add_argument("--angles", default="0,10,20,30,40,50", help="degrees from vertical")
    ap.add_argument("--presets", default="light,real-streaks")
    ap.add_argument("--json")
    ap.add_argument("--figure", help="PNG: gain against angle, one line per checkpoint and preset")
    args = ap.parse_args()
    torch.set_num_threads(1)
    angles = [float(a) for a in args.angles.split(",")]
    clean = held_out_backgrounds()
    models = {ck: load_model(None if ck == "default" else ck) for ck in args.checkpoints}
    res = {}
    for preset in args.presets.split(","):
        res[preset] = {}
        for angle in angles:
            params = tilted(preset, angle)
            rainy, target = zip(*[render_pair(c, params, np.random.default_rng([11, i])) for i, c in enumerate(clean)])
            row = {"input": float(np.mean([psnr_y(r, t) for r, t in zip(rainy, target)]))}
            for ck, model in models.items():
                outs = derain_all(model, rainy)
                row[ck] = float(np.mean([psnr_y(o, t) for o, t in zip(outs, target)]))
            res[preset][f"{angle:g}"] = row
            print(preset, f"{angle:g} deg", " ".join(f"{k} {v:.2f}" for k, v in row.items()), file=sys.stderr, flush=True)
    report = {"backgrounds": len(clean), "metric": "Y-PSNR (dB) of outputs; gain = output - input", "results": res}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.figure:
        plot(res, args.checkpoints, args.figure)


def plot(res: dict, checkpoints: list[str], path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(res), figsize=(5 * len(res), 3.6), squeeze=False)
    for ax, (preset, rows) in zip(axes[0], res.items()):
        xs = [float(a) for a in rows]
        for ck in checkpoints:
            ax.plot(xs, [r[ck] - r["input"] for r in rows.values()], marker="o", label=Path(ck).stem)
        ax.set(title=f"{preset} rain", xlabel="rain angle from vertical (degrees)", ylabel="Y-PSNR gain over input (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
