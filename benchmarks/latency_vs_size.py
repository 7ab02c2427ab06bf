"""Latency of the default model against image size (CPU), optimised and plain path: JSON + PNG.

    python benchmarks/latency_vs_size.py   # writes docs/latency-vs-size.png and benchmarks/results/latency-vs-size.json

Each size is timed in the same process for both paths (median of --repeats), so the ratio is
fair even on a noisy machine; the FLOP count gives the machine-limit line (measured conv peak).
"""
import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from fclip_derain.benchmark import count_flops, time_it
from fclip_derain.inference import Derainer

SIZES = [(240, 160), (480, 320), (640, 480), (960, 640), (1280, 720), (1920, 1080)]


def conv_peak_gflops(seconds: float = 1.0) -> float:
    """Measured 3x3 conv throughput (64->64 channels, 128x128): what the machine can do."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.rand(8, 64, 128, 128)
    flops = count_flops(conv, x)
    with torch.inference_mode():
        ts = time_it(lambda: conv(x), 5)
    return flops / min(ts) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/latency-vs-size", help="the figure: OUT.png")
    ap.add_argument("--json", default="benchmarks/results/latency-vs-size.json", help="the numbers")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    fast, plain = Derainer(device="cpu"), Derainer(device="cpu", channels_last=False)
    peak = conv_peak_gflops()
    rows = []
    for w, h in SIZES:
        x = torch.rand(1, 3, h, w)
        t_fast = statistics.median(time_it(lambda: fast.derain_tensor(x), args.repeats))
        t_plain = statistics.median(time_it(lambda: plain.derain_tensor(x), args.repeats))
        flops = count_flops(plain.model, x)
        rows.append({"size": f"{w}x{h}", "megapixels": w * h / 1e6, "optimised_s": t_fast, "plain_s": t_plain,
                     "gflops": flops / 1e9, "limit_s_at_conv_peak": flops / (peak * 1e9)})
        print(rows[-1], flush=True)
    info = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "conv_peak_gflops": peak}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    mp = [r["megapixels"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(mp, [r["plain_s"] for r in rows], "o-", label="plain path (NCHW)")
    ax.plot(mp, [r["optimised_s"] for r in rows], "o-", label="optimised (channels_last, default)")
    ax.plot(mp, [r["limit_s_at_conv_peak"] for r in rows], "--", label=f"FLOPs / measured conv peak ({peak:.0f} GFLOP/s)")
    ax.set_xlabel("megapixels")
    ax.set_ylabel("seconds per image")
    ax.set_title(f"default model, CPU {info['threads']} threads, torch {torch.__version__}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(args.out).with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main()
