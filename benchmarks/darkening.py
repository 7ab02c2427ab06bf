"""How much the default model changes the brightness of real photos, per named photo set.

    python benchmarks/darkening.py [--checkpoint F] [--json F] [--update-figures]

Brightness change of one photo: mean over its pixels of (output - input) luminance, in grey levels
(0-255; the definition of real_rain_candidates.py). Removing bright rain streaks lowers it a little
by itself; a change of several grey levels is the model darkening the photo. Sets, all real photos:

- real-rain never used to choose a model: the real-rain photos outside real_rain_candidates.py's
  every-8th selection (87 of 100), the honest figure for photos the project has not tuned on;
- the 28 selection photos: real_rain_candidates.py's every 8th NTURain-R frame and real-rain photo;
- NTURain-R: all 120 frames of ra1 and rb2;
- rain-free: the 20 held-out backgrounds (RainTrainL's validation targets), no rain to remove.

Default precision of the command line would be bf16 on some CPUs; this measures fp32 on one thread,
the same on every CPU. `--update-figures` writes the results into src/fclip_derain/figures.json,
which the docs quote (the shipped model only).
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from heavy_rain import held_out_backgrounds
from prenet_side_by_side import DATA, real_images

from fclip_derain import Derainer, figures
from fclip_derain.data.io import load_image
from fclip_derain.data.pairing import list_images
from fclip_derain.metrics.rain_stats import luminance


def photo_sets() -> dict:
    real = list_images(DATA / "real-rain")
    chosen = set(real_images(8))
    nture = list_images(DATA / "NTURain-R" / "ra1") + list_images(DATA / "NTURain-R" / "rb2")
    return {
        "real-rain never used to choose a model": [f for f in real if f not in chosen],
        "the 28 photos that choose between models": sorted(chosen),
        "NTURain-R ra1 + rb2": nture,
    }


def change(d, img) -> float:
    return float((luminance(d.derain(img)) - luminance(img)).mean() * 255)


def summary(changes: dict) -> dict:
    v = np.array(list(changes.values()))
    worst = sorted(changes.items(), key=lambda kv: kv[1])[:3]
    return {"photos": len(v), "mean": round(float(v.mean()), 2), "median": round(float(np.median(v)), 2),
            "darker_than_minus_2": int((v < -2).sum()),
            "worst": [{"photo": k, "change": round(c, 2)} for k, c in worst]}


def main():
    args = figures.benchmark_args("the results")
    torch.set_num_threads(1)
    d = Derainer(args.checkpoint, device="cpu", half=False)
    report = {}
    for name, files in photo_sets().items():
        ch = {}
        for i, f in enumerate(files):
            ch[f.name if "NTURain" not in str(f) else f"{f.parent.name}/{f.name}"] = change(d, load_image(f))
            print(f"\r{name}: {i + 1}/{len(files)}", end="", file=sys.stderr, flush=True)
        report[name] = summary(ch)
        print(f"\r{name}: mean {report[name]['mean']:+.2f} grey levels over {len(ch)} photos", file=sys.stderr)
    bg = {f"background {i}": change(d, b) for i, b in enumerate(held_out_backgrounds())}
    report["rain-free held-out backgrounds"] = summary(bg)
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.update_figures:
        figures.update("darkening", {
            "measure": "mean luminance change, output - input, grey levels (0-255); fp32, one thread",
            "command": "python benchmarks/darkening.py --update-figures", "sets": report},
            figures.default_model_version())


if __name__ == "__main__":
    main()
