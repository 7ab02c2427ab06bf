"""What each inference optimisation buys, measured step by step in one process (CPU).

    python benchmarks/inference_steps.py --sizes 480x320,1920x1080 --repeats 7 --json benchmarks/results/inference-steps.json

Rows, each adding one change to the previous: the plain NCHW model; channels_last; the frozen
encoder's BatchNorms folded into its convs; stride-1 'SAME' convs padding inside the conv instead
of copying the input (emulated off by restoring the explicit pad). With --compare CHECKPOINT the
same steps are timed for another model too (e.g. the previous default, with its full-resolution
ConvNeXt block), so the architecture change is measured in the same run. Every row's output is
compared with the plain path's.
"""
import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

from fclip_derain.benchmark import count_flops, time_it
from fclip_derain.models import load_model
from fclip_derain.models.imagenet_backbones import _SameConv


def explicit_same_pad(model, on: bool):
    """on=True: the old path (F.pad copy before every stride-1 'SAME' conv)."""
    for m in model.modules():
        if isinstance(m, _SameConv) and m.stride[0] == 1:
            m.padding = (0, 0) if on else (m.kernel_size[0] // 2,) * 2


def variants(checkpoint):
    plain = load_model(checkpoint)
    explicit_same_pad(plain, True)
    cl = load_model(checkpoint).to(memory_format=torch.channels_last)
    explicit_same_pad(cl, True)
    folded = load_model(checkpoint).to(memory_format=torch.channels_last)
    folded.encoder.fold_batchnorm()
    explicit_same_pad(folded, True)
    final = load_model(checkpoint).to(memory_format=torch.channels_last)
    final.encoder.fold_batchnorm()
    return [("plain NCHW", plain, torch.contiguous_format), ("+ channels_last", cl, torch.channels_last),
            ("+ folded BatchNorm", folded, torch.channels_last), ("+ no pad copy (= Derainer)", final, torch.channels_last)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=None, help="default: the shipped model")
    ap.add_argument("--compare", default=None, help="a second checkpoint timed the same way")
    ap.add_argument("--sizes", default="480x320,1920x1080")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    report = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
              "torch": torch.__version__, "rows": []}
    models = [("shipped" if args.checkpoint is None else args.checkpoint, args.checkpoint)]
    if args.compare:
        models.append((args.compare, args.compare))
    for label, ckpt in models:
        for w, h in sizes:
            x = torch.rand(1, 3, h, w)
            ref, base = None, None
            for step, model, fmt in variants(ckpt):
                xin = x.contiguous(memory_format=fmt)
                with torch.inference_mode():
                    y = model(xin)
                    ts = time_it(lambda: model(xin), args.repeats)
                ref = y if ref is None else ref
                med = statistics.median(ts)
                base = base or med
                row = {"model": label, "size": f"{w}x{h}", "step": step, "median_s": med,
                       "speedup_vs_plain": base / med, "max_abs_diff_vs_plain": float((y - ref).abs().max()),
                       "gflops": count_flops(model, x) / 1e9}
                report["rows"].append(row)
                print(f"{label} {w}x{h} {step}: {med * 1e3:.0f} ms ({base / med:.2f}x), "
                      f"diff {row['max_abs_diff_vs_plain']:.1e}", file=sys.stderr, flush=True)
    lines = ["| model | size | step | median ms | vs plain | max abs diff | GFLOPs |", "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['model']} | {r['size']} | {r['step']} | {r['median_s'] * 1e3:.0f} | "
                     f"{r['speedup_vs_plain']:.2f}x | {r['max_abs_diff_vs_plain']:.1e} | {r['gflops']:.1f} |")
    md = "\n".join(lines)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        Path(args.json).with_suffix(".md").write_text(md + "\n")


if __name__ == "__main__":
    main()
