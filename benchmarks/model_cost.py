"""Parameters (frozen encoder / trained decoder), FLOPs and CPU latency of FCLIP-UNet per encoder.

    python benchmarks/model_cost.py [--out TABLE.md]

FLOPs from torch.utils.flop_counter (a multiply-add counts 2). The paper's Table 7 gives 2.36e10
FLOPs for the CLIP RN50 encoder (input size not stated). CLIP weights are random here (cost does
not depend on them).
"""
import argparse
import resource
import statistics

import torch

from fclip_derain.benchmark import count_flops, count_params, time_it
from fclip_derain.models import FCLIPUNet, ModelConfig

ENCODERS = ["clip-rn50", "resnet50-imagenet", "efficientnet-lite0", "vgg16"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    lines = ["| encoder | encoder params (M) | decoder params (M) | GFLOPs enc 224x224 | GFLOPs enc 256x256 | "
             "GFLOPs enc 480x320 | GFLOPs total 480x320 | CPU ms 480x320 (median) |", "|---|---|---|---|---|---|---|---|"]
    for enc in ENCODERS:
        weights = "random" if enc.startswith("clip") else None
        m = FCLIPUNet(ModelConfig(encoder=enc, encoder_weights=weights)).eval()
        p = count_params(m)
        f224 = count_flops(m.encoder, torch.rand(1, 3, 224, 224))
        f256 = count_flops(m.encoder, torch.rand(1, 3, 256, 256))
        f480 = count_flops(m.encoder, torch.rand(1, 3, 320, 480))
        tot = count_flops(m, torch.rand(1, 3, 320, 480))
        x = torch.rand(1, 3, 320, 480)
        with torch.inference_mode():
            ts = time_it(lambda: m(x), args.repeats)
        lines.append(f"| {enc} | {p['encoder_params'] / 1e6:.2f} | {p['decoder_params'] / 1e6:.2f} | {f224 / 1e9:.2f} | "
                     f"{f256 / 1e9:.2f} | {f480 / 1e9:.2f} | {tot / 1e9:.2f} | {statistics.median(ts) * 1e3:.0f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    text += f"\n\nthreads: {torch.get_num_threads()}, torch {torch.__version__}, peak RSS " \
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (whole script)\n"
    if args.out:
        open(args.out, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
