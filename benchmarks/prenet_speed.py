"""Seconds per 481x321 image, ours vs PReNet, in fp32 and in bf16 autocast, in one run.

    python benchmarks/prenet_speed.py --json docs/prenet-speed.json

prenet_side_by_side.py times both models in fp32. On CPUs with AMX or AVX512_BF16 our automatic
precision is bf16 (`fclip_derain.devices.fast_half`), so this times both models both ways: the
speed-up a user gets from the defaults (ours auto vs PReNet fp32, its public code's precision), and
the like-for-like ratios in each precision.
"""
import argparse
import json
import statistics
from pathlib import Path

import torch
from prenet_side_by_side import PEERS

from fclip_derain.benchmark import cpu_model, time_it
from fclip_derain.models import load_model
from fclip_derain.models.prenet import load_prenet


def seconds(model, x, bf16: bool, repeats: int) -> float:
    @torch.inference_mode()
    def run():
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            model(x)
    return statistics.median(time_it(run, repeats))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=None, help="ours (default: the shipped model)")
    ap.add_argument("--prenet", default=str(PEERS / "PReNet6-Rain100L.pth"))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    x = torch.rand(1, 3, 321, 481)
    # plain modules, as prenet_side_by_side.py times them
    models = {"ours": load_model(args.checkpoint).eval(), "PReNet": load_prenet(args.prenet).eval()}
    res = {f"{k} {p}": seconds(m, x, p == "bf16", args.repeats) for p in ("fp32", "bf16") for k, m in models.items()}
    ratios = {"fp32 / fp32": res["PReNet fp32"] / res["ours fp32"],
              "bf16 / bf16": res["PReNet bf16"] / res["ours bf16"],
              "PReNet fp32 / ours bf16": res["PReNet fp32"] / res["ours bf16"]}
    out = {"seconds_481x321": res, "speedup": ratios, "cpu": cpu_model(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "repeats": args.repeats}
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
