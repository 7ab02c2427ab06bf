"""Synthetic rain presets vs the real sets: input Y-PSNR statistics, histogram, render speed.

    python benchmarks/synth_stats.py --out docs/synthetic-rain

Rainy-vs-clean Y-PSNR (MATLAB protocol) of each preset rendered over RainTrainL's 200 clean
photos (BSDS500 test), next to the real RainTrainL / Rain100L / Rain12 inputs; the rain
statistics that need no ground truth (fclip_derain.metrics.rain_stats) of each preset next to
real rainy photos (real-rain, NTURain-R) and clean ones (OUT-stats.png); a grid of real rainy
photos above rendered ones (OUT-grid.png). Render speed: 256x256 crops on one core, counted in
CPU seconds of this process (a busy machine does not change it much). Needs matplotlib for the
PNGs (docs only). `--from-config FILE` adds the synthetic sources of a training config that vary a
preset's fields (`rain:`), e.g. `--from-config configs/experiments/data-mix/pairs-mixed-dense.yaml
--out docs/synthetic-rain-dense` (the dense arm of campaign/LOG.md).
"""
import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

from fclip_derain.data.io import load_image
from fclip_derain.data.pairing import list_images, pair_folders, pairs_from
from fclip_derain.data.synth import preset_params, render_rain
from fclip_derain.metrics import psnr_y
from fclip_derain.metrics.rain_stats import STAT_NAMES, population, rain_stats

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def stats(v):
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "min": float(np.min(v)), "max": float(np.max(v)), "n": len(v)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/synthetic-rain")
    ap.add_argument("--from-config", help="also the `rain:` variants of this training config's synthetic sources")
    args = ap.parse_args()
    clean = [load_image(p) for p in list_images(DATA / "clean" / "BSDS500-test")]
    rains = {name: preset_params(name) for name in ("light", "heavy", "mixed", "real")}
    if args.from_config:
        from fclip_derain.train.config import rain_variants
        rains.update(rain_variants(args.from_config))
    res = {}
    for name, params in rains.items():
        res[f"synthetic {name}"] = [psnr_y(render_rain(c, params, np.random.default_rng([0, i])), c)
                                    for i, c in enumerate(clean)]
    real = {"RainTrainL (real)": pair_folders(DATA / "RainTrainL" / "input", DATA / "clean" / "BSDS500-test"),
            "Rain100L (real)": pairs_from(DATA / "Rain100L"), "Rain12 (real)": pairs_from(DATA / "Rain12")}
    for k, pairs in real.items():
        res[k] = [psnr_y(load_image(p.input), load_image(p.target)) for p in pairs]
    speed = {}
    crop = clean[0][:256, :256]
    drawn = [name for name in rains if name != "mixed"]
    for name in drawn:
        rng = np.random.default_rng(0)
        n, t = 0, time.process_time()
        while time.process_time() - t < 3:
            render_rain(crop, rains[name], rng)
            n += 1
        speed[name] = n / (time.process_time() - t)
    photos = {"clean (BSDS500 test)": clean,
              "real-rain": [load_image(p) for p in list_images(DATA / "real-rain")],
              "NTURain-R": [load_image(p) for p in list_images(DATA / "NTURain-R" / "ra1")
                            + list_images(DATA / "NTURain-R" / "rb2")],
              "RainTrainL inputs": [load_image(p.input) for p in real["RainTrainL (real)"]]}
    for name in drawn:
        photos[f"synthetic {name}"] = [render_rain(c, rains[name], np.random.default_rng([0, i]))
                                       for i, c in enumerate(clean)]
    per_image = {k: [rain_stats(im) for im in v] for k, v in photos.items()}
    rain = {k: population(v) for k, v in photos.items()}
    report = {"input_psnr_y": {k: stats(v) for k, v in res.items()}, "renders_per_s_256x256_one_core": speed,
              "rain_stats": rain}
    Path(args.out + ".json").write_text(json.dumps(report, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.linspace(5, 40, 71)
    for k in ("synthetic light", "synthetic heavy", "RainTrainL (real)", "Rain100L (real)"):
        ax.hist(res[k], bins=bins, alpha=0.5, label=f"{k}: {np.mean(res[k]):.2f} dB")
    ax.set_xlabel("rainy input vs clean, Y-PSNR (dB)")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=90)
    fig, axes = plt.subplots(1, len(STAT_NAMES), figsize=(16, 3.6))
    for ax, m in zip(axes, STAT_NAMES):
        vals = {k: [s[m] for s in v] for k, v in per_image.items()}
        lo, hi = np.percentile(np.concatenate(list(vals.values())), [1, 99])
        for k in ["clean (BSDS500 test)", "real-rain", "NTURain-R", "synthetic light", "synthetic real"] + \
                 [f"synthetic {name}" for name in drawn if "+" in name]:
            ax.hist(vals[k], bins=np.linspace(lo, hi, 31), alpha=0.45, density=True, label=k)
        ax.set_title(m)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out + "-stats.png", dpi=80)
    last = f"synthetic {drawn[-1]}"  # `real`, or the last variant of --from-config
    grid(photos["real-rain"][:4], photos[last][:4], args.out + "-grid.png")
    for k, v in report["input_psnr_y"].items():
        print(f"{k:22s} {v['mean']:.2f} +- {v['std']:.2f} dB (n={v['n']})")
    for k, v in rain.items():
        print(f"{k:22s} " + "  ".join(f"{m} {d['mean']:.3f}+-{d['std']:.3f}" for m, d in v.items()))
    print("renders per CPU-second:", {k: round(v) for k, v in speed.items()})


def grid(top, bottom, path, w=360, h=240):
    """Real rainy photos (top row) above rendered ones (bottom row), same size, no labels in the
    pixels (the doc says which row is which)."""
    from PIL import Image
    g = Image.new("RGB", (w * len(top), h * 2), "white")
    for row, ims in enumerate((top, bottom)):
        for i, im in enumerate(ims):
            g.paste(Image.fromarray(im).resize((w, h), Image.LANCZOS), (i * w, row * h))
    g.save(path)


if __name__ == "__main__":
    main()
