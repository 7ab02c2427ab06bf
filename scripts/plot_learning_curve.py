"""The default model's learning curve over all campaign stages, kept in docs/learning-curve.json.

Run folders (runs/) do not outlive the machine that trained them, so each stage's validation points are copied into
the JSON when the stage ends, with the CPU, precision and time it ran on:

    python scripts/plot_learning_curve.py --append runs/ssim-angles-s11 --date 2026-12-03 --shipped v10 \
        --cpu "Intel Xeon (AVX-512, AMX-BF16)" --precision bf16 --threads 1 --wall-minutes 100 \
        --config configs/experiments/loss/ssim-wide-angles.yaml
    python scripts/plot_learning_curve.py --out docs/figures/learning_curve.png

The figure shows validation PSNR against iterations and against CPU-hours (the issue's stop rule
is written in dB per CPU-hour), with a dashed line where each stage starts.
"""
import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CURVE = Path(__file__).resolve().parents[1] / "docs" / "learning-curve.json"


def read_run(run: Path) -> tuple[list[list[float]], list[list[float]], int]:
    """-> ([iteration, PSNR on the 20 held-out pairs]..., [iteration, selection aggregate]...,
    last iteration) from a run's metrics.jsonl. From stage 15 on, `val_psnr` is the aggregate over
    the rain kinds and the pairs are `val_psnr_pairs`: the curve keeps following the pairs, the one
    measure every stage has, and the aggregate is kept beside it."""
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    vals = [r for r in recs if "val_psnr" in r]
    val = [[r["iteration"], round(r.get("val_psnr_pairs", r["val_psnr"]), 2)] for r in vals]
    aggregate = [[r["iteration"], round(r["val_psnr"], 2)] for r in vals if "val_psnr_pairs" in r]
    return val, aggregate, max(r["iteration"] for r in recs)


def append_stage(curve: dict, run: Path, args) -> dict:
    val, aggregate, iterations = read_run(run)
    stage = {"stage": len(curve["stages"]), "date": args.date, "shipped": args.shipped, "run": str(run),
             "config": args.config, "cpu": args.cpu, "precision": args.precision, "threads": args.threads,
             "wall_minutes": args.wall_minutes, "cpu_hours": round(args.wall_minutes * args.threads / 60, 2),
             "iterations": iterations, "note": args.note, "val": val}
    if aggregate:
        stage["aggregate"] = aggregate
    curve["stages"].append(stage)
    return stage


def write_curve(curve: dict, path: Path) -> None:
    # one line per stage: the file is read by people as often as by this script
    stages = ",\n  ".join(json.dumps(s) for s in curve["stages"])
    path.write_text(f'{{"about": {json.dumps(curve["about"])},\n "stages": [\n  {stages}\n ]}}\n')


def plot(curve: dict, out: Path) -> None:
    fig, ax = plt.subplots(1, 3, figsize=(15, 5.6), gridspec_kw={"width_ratios": [2, 2, 1]})
    it0 = hours0 = 0.0
    shipped_aggregate = None
    for s in curve["stages"]:
        its = [it0 + i for i, _ in s["val"]]
        hours = [hours0 + s["cpu_hours"] * i / s["iterations"] for i, _ in s["val"]]
        psnr = [v for _, v in s["val"]]
        label = f"{s['stage']}: {s['shipped']} ({s['precision']}, {s['cpu'].split(' (')[0]})"
        line, = ax[0].plot(its, psnr, "o-", markersize=3, label=label)
        ax[1].plot(hours, psnr, "o-", markersize=3)
        if s.get("aggregate"):
            ax[2].plot([hours0 + s["cpu_hours"] * i / s["iterations"] for i, _ in s["aggregate"]],
                       [v for _, v in s["aggregate"]], "o-", markersize=3, color=line.get_color())
            if s["shipped"].startswith("v"):
                # the shipped decayed weights are the stage's last point; later stages must beat it
                shipped_aggregate = (s["shipped"], s["aggregate"][-1][1])
        for a, x in ((ax[0], it0), (ax[1], hours0)):
            if s["stage"]:
                a.axvline(x, color="grey", linestyle="--", linewidth=1)
        it0 += s["iterations"]
        hours0 += s["cpu_hours"]
    ax[0].set(xlabel="iteration (all stages)", ylabel="val Y-PSNR (dB), 20 held-out RainTrainL pairs")
    ax[1].set(xlabel="CPU-hours (all stages)")
    ax[1].sharey(ax[0])
    ax[2].set(xlabel="CPU-hours (all stages)", title="aggregate over 8 rain kinds (stage 15 on)")
    ax[2].title.set_fontsize(8)
    if shipped_aggregate:
        name, value = shipped_aggregate
        ax[2].axhline(value, color="black", linestyle=":", linewidth=1)
        ax[2].annotate(f"{name} (shipped) {value:.2f}", (ax[2].get_xlim()[0], value), fontsize=7,
                       xytext=(2, 3), textcoords="offset points")
    # below the panels: inside one it hid the early stages' points
    fig.legend(*ax[0].get_legend_handles_labels(), fontsize=7, loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.22, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--curve", type=Path, default=CURVE, help="the stages file (default: docs/learning-curve.json)")
    ap.add_argument("--append", type=Path, metavar="RUN", help="add RUN/metrics.jsonl as the next stage")
    ap.add_argument("--date", help="the day the stage ran, YYYY-MM-DD (UTC)")
    ap.add_argument("--shipped", default="(not shipped)", help="the version this stage became")
    ap.add_argument("--config")
    ap.add_argument("--cpu", help="the CPU it ran on, e.g. `Intel Xeon (AVX-512, AMX-BF16)`")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wall-minutes", type=float)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, help="write the figure here")
    args = ap.parse_args()
    curve = json.loads(args.curve.read_text())
    if args.append:
        if None in (args.date, args.cpu, args.wall_minutes):
            ap.error("--append needs --date, --cpu and --wall-minutes")
        stage = append_stage(curve, args.append, args)
        write_curve(curve, args.curve)
        print(f"stage {stage['stage']}: {stage['iterations']} iterations, {stage['cpu_hours']} CPU-hours, "
              f"val {stage['val'][0][1]:.2f} -> {max(v for _, v in stage['val']):.2f} dB")
    if args.out:
        plot(curve, args.out)
    for s in curve["stages"]:
        best = max(v for _, v in s["val"])
        agg = f", aggregate {s['aggregate'][0][1]:.2f} -> {max(v for _, v in s['aggregate']):.2f}" \
            if s.get("aggregate") else ""
        print(f"stage {s['stage']} ({s['shipped']}, {s['date']}): best {best:.2f} dB{agg}, "
              f"{s['cpu_hours']} CPU-hours, {s['cpu']}, {s['precision']}")


if __name__ == "__main__":
    main()
