"""Plot a run's training loss and validation PSNR from RUN/metrics.jsonl.

    python scripts/plot_learning_curve.py runs/raintrainl-cpu --out docs/figures/learning_curve.png
"""
import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    recs = [json.loads(l) for l in (Path(args.run) / "metrics.jsonl").read_text().splitlines() if l.strip()]
    loss = sorted({r["iteration"]: r["loss"] for r in recs if "loss" in r}.items())
    val = sorted({r["iteration"]: r["val_psnr"] for r in recs if "val_psnr" in r}.items())
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    it, lv = np.array(loss).T
    k = 10
    ax[0].plot(it, lv, alpha=0.3)
    ax[0].plot(it[k - 1:], np.convolve(lv, np.ones(k) / k, mode="valid"))
    ax[0].set(xlabel="iteration", ylabel="L1 loss (train patches)", yscale="log")
    vi, vv = np.array(val).T
    ax[1].plot(vi, vv, "o-")
    ax[1].set(xlabel="iteration", ylabel="val Y-PSNR (dB), 20 held-out RainTrainL pairs")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print("\n".join(f"{int(i)}: {v:.2f}" for i, v in val))


if __name__ == "__main__":
    main()
