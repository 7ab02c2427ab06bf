"""Training throughput (patches/s) and peak memory for 128x128 patches, batch 8.

    python benchmarks/train_throughput.py [--device cuda] [--steps 10]

Times full optimisation steps (forward, loss, backward, AdamW) on random patches, for the
L1-only loss with and without the encoder's BatchNorms folded and for L1 + perceptual, and reports the machine's peak conv throughput measured in
the same run (a 3x3, 64->64 conv at 128x128 batch 8) to put the figure in proportion.
"""
import argparse
import json
import resource
import statistics
import time

import torch

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
    args = ap.parse_args()
    dev = torch.device(args.device)
    weights = "random" if args.encoder.startswith("clip") else None
    out = {"device": str(dev), "threads": torch.get_num_threads(), "encoder": args.encoder,
           "conv_peak_gflops": conv_peak(dev) / 1e9, "rows": []}
    x = torch.rand(args.batch, 3, args.patch, args.patch, device=dev)
    y = torch.rand_like(x)
    # (perceptual weight, fold the encoder's BatchNorms as `fclip-derain train` does)
    for lam, fold in ((0.0, False), (0.0, True), (1.0, True)):
        model = FCLIPUNet(ModelConfig(encoder=args.encoder, encoder_weights=weights)).to(dev).train()
        if fold:
            model.encoder.fold_batchnorm()
        loss_fn = DerainLoss("l1", lam).to(dev)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        fwd = count_flops(model.eval(), x[:1].cpu() if dev.type == "cpu" else x[:1]) * args.batch
        model.train()

        def step():
            loss, _ = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        step()
        ts = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        s = statistics.median(ts)
        # decoder forward+backward ~ 3x forward; encoder forward only: a lower bound on useful FLOPs
        row = {"perceptual_weight": lam, "folded_bn": fold, "step_s": s, "patches_per_s": args.batch / s,
               "model_fwd_gflops_per_step": fwd / 1e9}
        row["achieved_gflops_lower_bound"] = fwd / s / 1e9
        row["fraction_of_conv_peak"] = row["achieved_gflops_lower_bound"] / out["conv_peak_gflops"]
        out["rows"].append(row)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
