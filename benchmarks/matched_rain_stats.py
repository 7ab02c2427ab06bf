"""The no-ground-truth rain statistics, checked where each rainy image has its own clean photo.

    python benchmarks/matched_rain_stats.py --json benchmarks/results/matched-rain-stats.json

Issue 17 asks that deraining move the rain statistics (fclip_derain.metrics.rain_stats) of real
rainy photos "halfway toward clean photos", with the BSDS500 photos of `../shared/data/clean` as the
clean side. Those are other scenes: their texture has higher streak contrast and anisotropy than the
real rainy photos themselves (docs/prenet_side_by_side.json), so the target points away from what
deraining does. This script asks whether the statistics themselves work when the reference shows
the same scene: the 20 RainTrainL pairs held out from training (RainTrainL's own rain), and the
renderer's `real` preset drawn over the same 20 backgrounds. For each, the population means of the
rainy inputs, of the clean photos of the same scenes, and of each model's outputs, and how far each
model moves each statistic from the inputs towards the matched clean photos (1: all the way).
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
from heavy_rain import held_out_pairs
from prenet_side_by_side import PEERS, as_fn

from fclip_derain.data.io import load_image
from fclip_derain.data.synth import preset_params, render_rain
from fclip_derain.metrics.rain_stats import STAT_NAMES, moved_fraction, population
from fclip_derain.models import load_model
from fclip_derain.models.prenet import load_prenet


def means(images) -> dict[str, float]:
    return {m: d["mean"] for m, d in population(images).items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="*", help="ours (default: the shipped model)")
    ap.add_argument("--prenet", default=str(PEERS / "PReNet6-Rain100L.pth"), help="'' to leave PReNet out")
    ap.add_argument("--limit", type=int, default=20, help="held-out pairs used (at most 20)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    fns = {c or "default": as_fn(load_model(c)) for c in (args.checkpoints or [None])}
    if args.prenet:
        fns["PReNet"] = as_fn(load_prenet(args.prenet))
    pairs = held_out_pairs()[: args.limit]
    clean = [load_image(p.target) for p in pairs]
    real = preset_params("real")
    sets = {"RainTrainL held-out (its own rain)": [load_image(p.input) for p in pairs],
            "renderer `real` preset, same backgrounds": [render_rain(c, real, np.random.default_rng([18, i]))
                                                         for i, c in enumerate(clean)]}
    report = {"images": len(clean), "threads": torch.get_num_threads(), "sets": {}}
    ref = means(clean)
    for name, rainy in sets.items():
        rows = {"input": means(rainy), "clean (same scenes)": ref, **{k: means(fn(x) for x in rainy) for k, fn in fns.items()}}
        moved = {k: {m: moved_fraction(rows["input"][m], rows[k][m], ref[m]) for m in STAT_NAMES} for k in fns}
        report["sets"][name] = {"means": rows, "moved_towards_clean": moved}
        print(f"\n{name} ({len(rainy)} images): mean, and moved towards the same scenes' clean photos")
        print(f"{'':28s}" + "".join(f"{m:>18s}" for m in STAT_NAMES))
        for k, d in rows.items():
            row = "".join(f"{d[m]:10.3f}" + (f" ({moved[k][m]:+.2f})" if k in moved else " " * 8) for m in STAT_NAMES)
            print(f"{k[-28:]:28s}{row}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
