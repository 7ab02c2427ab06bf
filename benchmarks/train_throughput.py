"""Training throughput (patches/s) and peak memory for 128x128 patches, batch 8.

    python benchmarks/train_throughput.py [--device cuda] [--steps 10] [--json F]
    python benchmarks/train_throughput.py --config configs/campaign.yaml --threads 1 --compile

Times full optimisation steps (forward, loss, backward, AdamW) on random patches, for the
L1-only loss with and without the encoder's BatchNorms folded and for L1 + perceptual, and reports
the machine's peak conv throughput measured in the same run (a 3x3, 64->64 conv at 128x128 batch 8)
to put the figure in proportion. The model is `ModelConfig`'s defaults with --encoder, or the
model of a training config (--config). --compile adds the L1 step under torch.compile (inductor;
its compile time is reported apart), to see whether compiling pays on this machine.
"""
import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import torch
import yaml

from fclip_derain.benchmark import count_flops
from fclip_derain.losses import DerainLoss
from fclip_derain.models import FCLIPUNet, ModelConfig


def conv_peak(device, repeats=10):
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    x = torch.rand(8, 64, 128, 128, device=device)
    flops = 2 * 8 * 128 * 128 * 64 * 64 * 9
    with torch.no_grad():
        conv(x)
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            conv(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
    return flops / statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encoder", default="efficientnet-lite0")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--config", help="time the model of this training config instead of ModelConfig's defaults")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--compile", action="store_true", help="also time the L1 step compiled (torch.compile)")
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.config:
        model_cfg = ModelConfig.from_dict(yaml.safe_load(open(args.config))["model"])
    else:
        weights = "random" if args.encoder.startswith("clip") else None
        model_cfg = ModelConfig(encoder=args.encoder, encoder_weights=weights)
    out = {"device": str(dev), "threads": torch.get_num_threads(), "encoder": model_cfg.encoder,
           "config": args.config, "conv_peak_gflops": conv_peak(dev) / 1e9, "rows": []}
    x = torch.rand(args.batch, 3, args.patch, args.patch, device=dev)
    y = torch.rand_like(x)
    # (perceptual weight, fold the encoder's BatchNorms as `fclip-derain train` does, torch.compile)
    cases = [(0.0, False, False), (0.0, True, False), (1.0, True, False)] + [(0.0, True, True)] * args.compile
    for lam, fold, compiled in cases:
        model = FCLIPUNet(model_cfg).to(dev).train()
        if fold:
            model.encoder.fold_batchnorm()
        loss_fn = DerainLoss("l1", lam).to(dev)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        fwd = count_flops(model.eval(), x[:1].cpu() if dev.type == "cpu" else x[:1]) * args.batch
        model.train()
        net = torch.compile(model) if compiled else model

        def step():
            loss, _ = loss_fn(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        t = time.perf_counter()
        step()
        if compiled:  # the first steps compile; a second warm-up step settles any recompilation
            step()
        warmup_s = time.perf_counter() - t
        ts = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        s = statistics.median(ts)
        # decoder forward+backward ~ 3x forward; encoder forward only: a lower bound on useful FLOPs
        row = {"perceptual_weight": lam, "folded_bn": fold, "compiled": compiled, "step_s": s,
               "patches_per_s": args.batch / s, "model_fwd_gflops_per_step": fwd / 1e9, "warmup_s": warmup_s}
        row["achieved_gflops_lower_bound"] = fwd / s / 1e9
        row["fraction_of_conv_peak"] = row["achieved_gflops_lower_bound"] / out["conv_peak_gflops"]
        out["rows"].append(row)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    if args.compile:
        eager, comp = out["rows"][1], out["rows"][-1]
        out["compiled_over_eager"] = eager["step_s"] / comp["step_s"]
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
