"""Self-ensemble on the held-out validation pairs: 1, 2 and 4 mirrored copies.

    python benchmarks/ensemble.py [--checkpoint F] [--json F] [--update-figures]

The 20 held-out RainTrainL pairs (never trained on, never a test set) derained by `Derainer(
ensemble=N)`: Y-PSNR / SSIM and seconds per image (one thread, fp32), all in one run.
`--update-figures` writes the gains into src/fclip_derain/figures.json, which `derain --help`
and the docs quote (the shipped model only).
"""
import json
import time
from pathlib import Path

import numpy as np
import torch
from heavy_rain import held_out_pairs

from fclip_derain import Derainer, figures
from fclip_derain.data.io import load_image
from fclip_derain.options import ENSEMBLE_FLIPS
from fclip_derain.metrics import psnr_y, ssim_y


def main():
    args = figures.benchmark_args("the gains")
    torch.set_num_threads(1)
    pairs = held_out_pairs()
    data = [(load_image(p.input), load_image(p.target)) for p in pairs]
    report = {"pairs": len(data), "cpu_threads": 1, "results": {}}
    for n in ENSEMBLE_FLIPS:
        d = Derainer(args.checkpoint, device="cpu", half=False, ensemble=n)
        d.derain(data[0][0])  # warm-up
        t0 = time.perf_counter()
        outs = [d.derain(x) for x, _ in data]
        r = {"psnr": float(np.mean([psnr_y(o, y) for o, (_, y) in zip(outs, data)])),
             "ssim": float(np.mean([ssim_y(o, y) for o, (_, y) in zip(outs, data)])),
             "s_per_image": (time.perf_counter() - t0) / len(data)}
        report["results"][str(n)] = r
        print(f"ensemble {n}: {r['psnr']:.2f} / {r['ssim']:.4f}, {r['s_per_image']:.3f} s per image", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.update_figures:
        res = report["results"]
        figures.update("ensemble", {
            "images": f"the {len(data)} held-out RainTrainL validation pairs",
            "measure": "Y-PSNR (dB) and SSIM, MATLAB protocol; fp32, one thread",
            "command": "python benchmarks/ensemble.py --update-figures",
            "psnr_db": {n: round(r["psnr"], 2) for n, r in res.items()},
            "ssim": {n: round(r["ssim"], 4) for n, r in res.items()},
            "gain_db": {n: round(r["psnr"] - res["1"]["psnr"], 2) for n, r in res.items() if n != "1"},
        }, figures.default_model_version())


if __name__ == "__main__":
    main()
