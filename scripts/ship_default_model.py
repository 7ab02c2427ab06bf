"""Copy a training run's best checkpoint into the package as the default model (fp16 if the
validation scores do not move), and write its model card.

    python scripts/ship_default_model.py runs/raintrainl-cpu
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from fclip_derain.data.datasets import holdout_split
from fclip_derain.data.io import load_image, to_float, to_uint8
from fclip_derain.data.pairing import pairs_from
from fclip_derain.metrics import psnr_y, ssim_y
from fclip_derain.models import load_model, save_model
from fclip_derain.models.loading import DEFAULT_CHECKPOINT
from fclip_derain.weights import read_checkpoint


def val_scores(model, pairs):
    ps, ss = [], []
    with torch.inference_mode():
        for p in pairs:
            a, b = load_image(p.input), load_image(p.target)
            out = to_uint8(model(to_float(a)[None])[0])
            ps.append(psnr_y(out, b))
            ss.append(ssim_y(out, b))
    return float(np.mean(ps)), float(np.mean(ss))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--dest", default=str(DEFAULT_CHECKPOINT))
    ap.add_argument("--version", help="model version recorded in the metadata (shown by `fclip-derain info`)")
    ap.add_argument("--trained-with", default="configs/raintrainl-cpu.yaml",
                    help="how the run was made (config, overrides, earlier runs), stored in the metadata")
    args = ap.parse_args()
    run = Path(args.run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    _, _, meta = read_checkpoint(run / "best.safetensors")
    # older runs hashed the untruncated encoder; the weights are the same registry file
    model = load_model(run / "best.safetensors", verify_encoder=False)
    src = cfg["data"]["train"][0]
    pairs = pairs_from(src.get("root"), src.get("input"), src.get("target"))
    _, val = holdout_split(pairs, cfg["data"]["val_holdout"], cfg["run"]["seed"])
    fp32 = val_scores(model, val)
    tmp = Path(args.dest).with_suffix(".fp16.tmp")
    save_model(model, tmp, half=True)
    fp16 = val_scores(load_model(tmp), val)
    tmp.unlink()
    half = abs(fp16[0] - fp32[0]) < 0.01 and abs(fp16[1] - fp32[1]) < 1e-4
    extra = {"iteration": meta.get("iteration", "?"), "val_psnr": fp32[0], "val_ssim": fp32[1],
             "trained_with": args.trained_with, "precision": "fp16" if half else "fp32"}
    if args.version:
        extra["version"] = args.version
    path = save_model(model, args.dest, extra=extra, half=half)
    print(json.dumps({"dest": str(path), "bytes": path.stat().st_size, "fp32_val": fp32, "fp16_val": fp16,
                      "stored_as": extra["precision"], "iteration": extra["iteration"]}, indent=2))


if __name__ == "__main__":
    main()
