"""How much reduced precision moves the scores: Rain100L Y-PSNR/SSIM in fp32 vs bf16 autocast.

    python benchmarks/precision_check.py --limit 20 --json campaign/results/stage1-precision-check.json

The default inference path uses bf16 where it is the faster path (CUDA, AMX CPUs:
`fclip_derain.devices.fast_half`) on the condition that Rain100L moves by less than 0.05 dB.
bf16 numerics do not depend on the CPU's vector units, so this check runs anywhere (slowly on
CPUs without AMX: ~17x slower than fp32 on an AVX2 CPU, hence --limit).
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from fclip_derain.data.io import load_image
from fclip_derain.data.pairing import pairs_from
from fclip_derain.inference import Derainer
from fclip_derain.metrics import psnr_y, ssim_y

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint")
    ap.add_argument("--limit", type=int, default=0, help="first N Rain100L pairs (0: all 100)")
    ap.add_argument("--json")
    args = ap.parse_args()
    pairs = pairs_from(DATA / "Rain100L")
    pairs = pairs[: args.limit] if args.limit else pairs
    res = {}
    for name, half in (("fp32", False), ("bf16", True)):
        d = Derainer(args.checkpoint, device="cpu", half=half)
        t = time.process_time()
        ps, ss = [], []
        for p in pairs:
            out, tgt = d.derain(load_image(p.input)), load_image(p.target)
            ps.append(psnr_y(out, tgt))
            ss.append(ssim_y(out, tgt))
        res[name] = {"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)),
                     "cpu_s_per_image": (time.process_time() - t) / len(pairs)}
    res["bf16_minus_fp32_db"] = res["bf16"]["psnr"] - res["fp32"]["psnr"]
    res["images"] = len(pairs)
    text = json.dumps(res, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
