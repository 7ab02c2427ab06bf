"""Synthetic rain presets vs the real sets: input Y-PSNR statistics, histogram, render speed.

    python benchmarks/synth_stats.py --out docs/synthetic-rain

Rainy-vs-clean Y-PSNR (MATLAB protocol) of each preset rendered over RainTrainL's 200 clean
photos (BSDS500 test), next to the real RainTrainL / Rain100L / Rain12 inputs. Render speed:
256x256 crops on one core. Needs matplotlib for the PNG (docs only).
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
from fclip_derain.data.synth import PRESETS, get_preset, render_rain
from fclip_derain.metrics import psnr_y

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def stats(v):
    return {"mean": float(np.mean(v)), "std": float(np.std(v)), "min": float(np.min(v)), "max": float(np.max(v)), "n": len(v)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/synthetic-rain")
    args = ap.parse_args()
    clean = [load_image(p) for p in list_images(DATA / "clean" / "BSDS500-test")]
    res = {}
    for name in ("light", "heavy", "mixed"):
        params = get_preset(name)
        res[f"synthetic {name}"] = [psnr_y(render_rain(c, params, np.random.default_rng([0, i])), c)
                                    for i, c in enumerate(clean)]
    real = {"RainTrainL (real)": pair_folders(DATA / "RainTrainL" / "input", DATA / "clean" / "BSDS500-test"),
            "Rain100L (real)": pairs_from(DATA / "Rain100L"), "Rain12 (real)": pairs_from(DATA / "Rain12")}
    for k, pairs in real.items():
        res[k] = [psnr_y(load_image(p.input), load_image(p.target)) for p in pairs]
    speed = {}
    crop = clean[0][:256, :256]
    for name in ("light", "heavy"):
        rng = np.random.default_rng(0)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < 3:
            render_rain(crop, PRESETS[name], rng)
            n += 1
        speed[name] = n / (time.perf_counter() - t)
    report = {"input_psnr_y": {k: stats(v) for k, v in res.items()}, "renders_per_s_256x256_one_core": speed}
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
    for k, v in report["input_psnr_y"].items():
        print(f"{k:22s} {v['mean']:.2f} +- {v['std']:.2f} dB (n={v['n']})")
    print("renders/s:", {k: round(v) for k, v in speed.items()})


if __name__ == "__main__":
    main()
