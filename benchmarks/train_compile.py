"""Does torch.compile speed up a training step of the campaign model on this CPU?

    python benchmarks/train_compile.py [--threads 1] [--steps 12]

Times full steps (forward, L1, backward, AdamW) on random 8 x 128 px patches, eager and compiled
(inductor), medians after two warm-up steps each, and prints patches/s and the ratio.
"""
import argparse
import statistics
import time

import torch
import yaml

from fclip_derain.models import FCLIPUNet, ModelConfig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/campaign.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(open(args.config))["model"]
    torch.manual_seed(0)
    model = FCLIPUNet(ModelConfig.from_dict(cfg))
    params = [p for p in model.parameters() if p.requires_grad]
    x, y = torch.rand(8, 3, 128, 128), torch.rand(8, 3, 128, 128)
    medians = {}
    for name, net in (("eager", model), ("compiled", torch.compile(model))):
        opt = torch.optim.AdamW(params, 1e-4)

        def step(net=net, opt=opt):
            loss = (net(x) - y).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        t = time.perf_counter()
        step()
        step()
        warm = time.perf_counter() - t
        ts = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t)
        medians[name] = statistics.median(ts)
        print(f"{name}: {8 / medians[name]:.2f} patches/s ({args.threads} threads; warm-up {warm:.0f} s)")
    print(f"compiled / eager speed: {medians['eager'] / medians['compiled']:.2f}x")


if __name__ == "__main__":
    main()
