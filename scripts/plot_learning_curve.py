"""Plot training loss and validation PSNR from RUN/metrics.jsonl; further runs that continued
from the previous one (`run.init_from`) are drawn after it, their iterations offset.

    python scripts/plot_learning_curve.py runs/raintrainl-cpu runs/continue1 --out docs/figures/learning_curve.png
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
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    loss, val, offset, starts = {}, {}, 0, []
    for run in args.runs:
        recs = [json.loads(l) for l in (Path(run) / "metrics.jsonl").read_text().splitlines() if l.strip()]
        starts.append(offset)
        loss.update({offset + r["iteration"]: r["loss"] for r in recs if "loss" in r})
        val.update({offset + r["iteration"]: r["val_psnr"] for r in recs if "val_psnr" in r})
        offset = max(loss)
    loss, val = sorted(loss.items()), sorted(val.items())
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    it, lv = np.array(loss).T
    k = 10
    ax[0].plot(it, lv, alpha=0.3)
    ax[0].plot(it[k - 1:], np.convolve(lv, np.ones(k) / k, mode="valid"))
    ax[0].set(xlabel="iteration", ylabel="L1 loss (train patches)", yscale="log")
    vi, vv = np.array(val).T
    ax[1].plot(vi, vv, "o-")
    ax[1].set(xlabel="iteration", ylabel="val Y-PSNR (dB), 20 held-out RainTrainL pairs")
    for a in ax:
        for x in starts[1:]:  # where a continued run (new lr schedule) begins
            a.axvline(x, color="grey", linestyle="--", linewidth=1)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print("\n".join(f"{int(i)}: {v:.2f}" for i, v in val))


if __name__ == "__main__":
    main()
