"""Summarise the decoder study (issue 16): every arm trained for the same CPU time, scored on
the same held-out validation pairs; plus each arm's inference cost, measured here in one run.

    bash configs/experiments/decoder-study/run.sh          # trains the arms (about 1 h on 2 cores)
    python benchmarks/decoder_study.py runs/decoder-study
    # writes the figure docs/decoder-study.png, the numbers campaign/results/decoder-study.json and
    # the table campaign/results/decoder-study.md (docs/decoder-study.md quotes it; not overwritten)

Per arm: training throughput (kilo-pixels of patches per second, from the run's own log, one
thread), iterations reached, validation PSNR/SSIM of the final EMA weights and the best one seen,
GFLOPs and inference ms at 481x321 and 1920x1080 (the `Derainer` path: channels_last, folded
BatchNorms; median of --repeats, both threads), trained parameters.
"""
import argparse
import json
import statistics
from pathlib import Path

import torch
import yaml

from fclip_derain.benchmark import count_flops, cpu_model, time_it
from fclip_derain.inference import Derainer
from fclip_derain.models import load_model


def read_jsonl(p: Path) -> list[dict]:
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study", nargs="?", default="runs/decoder-study")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="docs/decoder-study", help="the figure: OUT.png")
    ap.add_argument("--json", default="campaign/results/decoder-study.json",
                    help="the numbers, and the table beside them (.md); kept with the campaign's record")
    args = ap.parse_args()
    rows, curves = [], {}
    for run in sorted(p for p in Path(args.study).iterdir() if (p / "metrics.jsonl").is_file()):
        recs = read_jsonl(run / "metrics.jsonl")
        train = [r for r in recs if "patches_per_s" in r]
        vals = [r for r in recs if "val_psnr" in r]
        if not vals:
            continue
        minutes = {r["iteration"]: r["train_minutes"] for r in train if "train_minutes" in r}
        curves[run.name] = [(minutes.get(v["iteration"], minutes[min(minutes, key=lambda i: abs(i - v["iteration"]))]),
                             v["val_psnr"]) for v in vals]
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        ps = cfg["data"]["patch_size"]
        model = load_model(run / "last.safetensors", verify_encoder=False)
        d = Derainer(model=model)
        row = {"arm": run.name, "iterations": train[-1]["iteration"], "train_minutes": train[-1].get("train_minutes"),
               "train_kpx_per_s": train[-1]["patches_per_s"] * ps * ps / 1e3,
               "val_psnr_final": vals[-1]["val_psnr"], "val_ssim_final": vals[-1]["val_ssim"],
               "val_psnr_best": max(v["val_psnr"] for v in vals),
               "params_trained_M": sum(v.numel() for v in model.trainable_state_dict().values()) / 1e6,
               "block": cfg["model"].get("block", "convnext"), "encoder": cfg["model"]["encoder"],
               "loss": cfg["loss"]["pixel"], "zero_init_head": cfg["model"].get("zero_init_head", True)}
        for w, h in ((481, 321), (1920, 1080)):
            x = torch.rand(1, 3, h, w)
            row[f"gflops_{w}x{h}"] = count_flops(model, x) / 1e9
            row[f"ms_{w}x{h}"] = 1e3 * statistics.median(time_it(lambda: d.derain_tensor(x), args.repeats))
        rows.append(row)
        print(row, flush=True)
    cpu = cpu_model()
    report = {"cpu": cpu, "threads_inference": torch.get_num_threads(), "torch": torch.__version__, "arms": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| arm | decoder | encoder | loss | zero-init | train kpx/s (1 thread) | iterations | "
             "val PSNR final (best) | val SSIM | ms 481x321 | ms 1920x1080 | GFLOPs 481x321 | trained M params |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["val_psnr_final"]):
        lines.append(f"| {r['arm']} | {r['block']} | {r['encoder']} | {r['loss']} | {r['zero_init_head']} | "
                     f"{r['train_kpx_per_s']:.0f} | {r['iterations']} | {r['val_psnr_final']:.2f} "
                     f"({r['val_psnr_best']:.2f}) | {r['val_ssim_final']:.4f} | {r['ms_481x321']:.0f} | "
                     f"{r['ms_1920x1080']:.0f} | {r['gflops_481x321']:.1f} | {r['params_trained_M']:.2f} |")
    lines.append("")
    lines.append(f"CPU: {cpu}; inference with {torch.get_num_threads()} threads, torch {torch.__version__}.")
    Path(args.json).with_suffix(".md").write_text("\n".join(lines) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pts in sorted(curves.items()):
        ax.plot(*zip(*pts), "o-", label=name)
    ax.set(xlabel="CPU minutes of training (one thread)", ylabel="val Y-PSNR (dB), 20 held-out pairs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out + ".png", dpi=80)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
