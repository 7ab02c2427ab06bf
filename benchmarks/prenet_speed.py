"""The speed line of issue 35: seconds per 481x321 image, ours as users run it against PReNet run
the fastest way we know, in one process, on the CPU at hand.

    python benchmarks/prenet_speed.py --json docs/prenet-speed.json
    python benchmarks/prenet_speed.py --checkpoint runs/candidate.safetensors

Ours: `Derainer`'s default path, which `fclip-derain derain` runs (BN folded, channels_last,
automatic precision: bf16 on CPUs with AVX512-BF16 or AMX), on a uint8 image. PReNet (public code,
RainTrainL weights) is timed in fp32, fp32 channels_last and bf16 autocast, and its fastest is the
baseline. The plain modules (`load_model`, fp32 and bf16) are timed too, as older reports did. Both
models are timed twice, interleaved, and the faster median of each is kept: a busy neighbour in
one round does not decide the ratio. Warm-up runs (2 per measurement) are not counted.

The default model routes each image to its light or heavy expert (issue 46), so ours is timed on a
light-rain image (a RainTrainL input) and a heavy-rain one (a RainTrainH-20 validation input), both
481x321, with the expert each was sent to; the rain-density head's cost is included. bf16 ways are
timed only on CPUs with bf16 instructions (elsewhere bf16 is emulated, many times slower).
"""
import argparse
import copy
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from prenet_side_by_side import PEERS

from fclip_derain import Derainer
from fclip_derain.benchmark import cpu_model, time_it
from fclip_derain.data.io import load_image
from fclip_derain.devices import fast_half
from fclip_derain.models import load_model
from fclip_derain.models.prenet import load_prenet


def median_s(fn, repeats: int) -> float:
    return statistics.median(time_it(fn, repeats, warmup=2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=None, help="ours (default: the shipped model)")
    ap.add_argument("--heavy-checkpoint", default=None,
                    help="the routed default with this heavy expert instead of the shipped one (a candidate)")
    ap.add_argument("--prenet", default=str(PEERS / "PReNet6-Rain100L.pth"))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    images = {"light": load_image(data / "RainTrainL" / "input" / "120093.png"),
              "heavy": load_image(data / "RainTrainH-20" / "val" / "input" / "heavy-v1.png")}
    x = torch.rand(1, 3, 321, 481)
    if args.heavy_checkpoint:
        from fclip_derain.models.loading import load_routed
        routed = load_routed(heavy=args.heavy_checkpoint)
        routed.encoder.fold_batchnorm()  # as Derainer() does for the models it loads itself
        ours = Derainer(model=routed)
    else:
        ours = Derainer(args.checkpoint)
    plain = load_model(args.checkpoint).eval()
    prenet = load_prenet(args.prenet).eval()

    def module(m, bf16=False, channels_last=False):
        xi = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        mi = copy.deepcopy(m).to(memory_format=torch.channels_last) if channels_last else m  # its own copy

        @torch.inference_mode()
        def run():
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                mi(xi)
        return run

    bf16 = fast_half(torch.device("cpu"))
    routes = {}
    for kind, img in images.items():
        ours.derain(img)
        routes[kind] = ours.last_routes[0] if ours.routed else "one model"
    ways = {"ours Derainer default, light-rain image": lambda: ours.derain(images["light"]),
            "ours Derainer default, heavy-rain image": lambda: ours.derain(images["heavy"]),
            "ours plain fp32": module(plain), "PReNet fp32": module(prenet),
            "PReNet fp32 channels_last": module(prenet, channels_last=True)}
    if bf16:
        ways.update({"ours plain bf16": module(plain, bf16=True), "PReNet bf16": module(prenet, bf16=True)})
    res = {}
    for _ in range(2):
        for k, fn in ways.items():
            res[k] = min(res.get(k, float("inf")), median_s(fn, args.repeats))
    peer_best = min((v, k) for k, v in res.items() if k.startswith("PReNet"))
    out = {"seconds_481x321": res, "prenet_fastest": peer_best[1], "routes": routes,
           "speedup_light": peer_best[0] / res["ours Derainer default, light-rain image"],
           "speedup_heavy": peer_best[0] / res["ours Derainer default, heavy-rain image"],
           "speedup_plain_fp32": res["PReNet fp32"] / res["ours plain fp32"],
           "ours_precision": str(ours.dtype or "fp32"), "checkpoint": args.checkpoint or "default", "heavy_checkpoint": args.heavy_checkpoint,
           "cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "repeats": args.repeats}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
