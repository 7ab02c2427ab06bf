"""Video deraining with neighbouring frames against the per-frame path, side by side (issue 36).

    python benchmarks/video_temporal.py --json docs/video-temporal.json --figures docs/figures
    (or in parallel processes, same --json: `--sets dev --no-real`, `--sets test --no-real`,
    `--sets stress`, each with `--threads 1`)

1. Synthetic rain clips with ground truth (data/rain_video.py): 12 frames of 320x240 each, one
   clip per background, cameras static / pan / zoom / shake, half the pan and shake clips with a
   nearer layer crossing faster (parallax). `dev` clips (8 backgrounds) are the ones the fusion's
   settings were chosen on (every alternative is scored there); `test` clips (16 other
   backgrounds) only report, the chosen settings beside one alternative. For each: Y-PSNR and
   SSIM (MATLAB protocol, uint8 outputs) of the input, the per-frame path and the temporal
   variants; flicker as the mean |dY| between consecutive frames, next to the ground truth's.
2. Time per frame at 640x480 on a real clip (real-video/r1), both paths through
   `Derainer.derain_stream`, interleaved, best of `--repeats`.
3. Real clips without ground truth (real-video r1 static, r3 almost static, r2 panning; NTURain-R
   ra1 and rb2, panning): mean |dY| of each path, and figures (input | per frame | temporal) of the
   crop where the per-frame model removed the most rain, plus a strip of consecutive frames of r1.

Per-frame outputs come from the shipped default model, `Derainer()`, on the CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fclip_derain import Derainer
from fclip_derain.benchmark import cpu_model
from fclip_derain.data.io import load_image
from fclip_derain.data.pairing import list_images
from fclip_derain.data.rain_video import RainClip, clip_backgrounds, clip_set, make_clip
from fclip_derain.inference.temporal import FusionParams, temporal_stream
from fclip_derain.metrics import psnr_y, rgb_to_y, ssim_y

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT = FusionParams()
# the alternatives measured beside the default (only the fields that differ)
VARIANTS = {
    "temporal": {},
    "radius 1": {"radius": 1},
    "radius 3": {"radius": 3},
    "no median rain test": {"temporal_rain": False},
    "bilinear warp": {"warp": "linear"},
    "flow on inputs": {"flow_on": "inputs"},
    "DIS fast": {"flow_preset": "fast"},
    "median of aligned outputs": {"fusion": "median"},
    "mean of aligned outputs": {"fusion": "mean"},
}
# the held-out test clips score the chosen settings, with the best-known simple alternative beside them
TEST_VARIANTS = {k: VARIANTS[k] for k in ("temporal", "median of aligned outputs")}
REAL = {"r1 (static)": "real-video/r1", "r3 (almost static)": "real-video/r3", "r2 (panning)": "real-video/r2",
        "NTURain-R ra1 (panning)": "NTURain-R/ra1", "NTURain-R rb2 (panning)": "NTURain-R/rb2"}


def flicker(frames) -> float:
    """Mean |Y_t+1 - Y_t| over consecutive frames (grey levels)."""
    ys = [rgb_to_y(f).astype(np.float32) for f in frames]
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(ys, ys[1:])]))


def fused(per_frame: list, rainy: list, params: FusionParams) -> list:
    """The temporal path on precomputed per-frame outputs (the same outputs for every variant)."""
    it = iter(per_frame)
    return list(temporal_stream(lambda f: next(it), rainy, params))


def score_clips(d: Derainer, clips, variants) -> dict:
    rows = []
    for c in clips:
        per = [d.derain(f) for f in c.rainy]
        outs = {"input": c.rainy, "per frame": per}
        outs.update({name: fused(per, c.rainy, dataclasses.replace(DEFAULT, **v)) for name, v in variants.items()})
        row = {"background": c.meta["background"], "camera": c.meta["camera"], "parallax": c.meta["parallax"],
               "flicker_gt": round(flicker(c.clean), 3)}
        for name, frames in outs.items():
            row[name] = {"psnr": round(float(np.mean([psnr_y(a, b) for a, b in zip(frames, c.clean)])), 3),
                         "ssim": round(float(np.mean([ssim_y(a, b) for a, b in zip(frames, c.clean)])), 4),
                         "flicker": round(flicker(frames), 3)}
        rows.append(row)
        print(f"  {row['background']:12s} {row['camera']:6s}{' +parallax' if row['parallax'] else '':9s} "
              + " ".join(f"{k[:12]} {row[k]['psnr']:.2f}" for k in outs), flush=True)
    names = ["input", "per frame"] + list(variants)

    def mean(sel, name, key):
        return round(float(np.mean([r[name][key] for r in sel])), 3)

    def summary(sel):
        s = {n: {k: mean(sel, n, k) for k in ("psnr", "ssim", "flicker")} for n in names}
        s["flicker_gt"] = round(float(np.mean([r["flicker_gt"] for r in sel])), 3)
        return s
    cameras = dict.fromkeys(r["camera"] for r in rows)
    by_camera = {cam: summary([r for r in rows if r["camera"] == cam]) for cam in cameras}
    if any(r["parallax"] for r in rows):
        by_camera["with parallax"] = summary([r for r in rows if r["parallax"]])
    return {"clips": len(rows), "mean": summary(rows), "by_camera": by_camera, "per_clip": rows}


def stress(d: Derainer, backgrounds: list) -> dict:
    """Where the neighbours have little to give: a fast pan (10-14 px per frame, fast enough to
    blur the frames of a real camera) and scene cuts (6 frames of one test clip, then 6 of
    another), on the first 4 test backgrounds."""
    photos = [load_image(p) for p in backgrounds[:4]]
    fast = []
    for j, ph in enumerate(photos):
        c = make_clip(ph, seed=500 + j, frames=12, camera="pan", pan_speed=(10.0, 14.0))
        c.meta["background"] = backgrounds[j].name
        fast.append(c)
    res = {"fast pan": score_clips(d, fast, {"temporal": {}})}
    near = {"per frame": [], "temporal": []}  # Y-PSNR of the 4 frames either side of each cut
    for j in range(len(photos)):
        a = make_clip(photos[j], seed=600 + j, frames=6, camera="static")
        b = make_clip(photos[(j + 1) % len(photos)], seed=700 + j, frames=6, camera="pan")
        clip = RainClip(a.rainy + b.rainy, a.clean + b.clean, {})
        per = [d.derain(f) for f in clip.rainy]
        tmp = fused(per, clip.rainy, DEFAULT)
        for name, out in (("per frame", per), ("temporal", tmp)):
            near[name] += [psnr_y(out[t], clip.clean[t]) for t in range(4, 8)]
    res["scene cut, frames 4-7 around it"] = {k: round(float(np.mean(v)), 3) for k, v in near.items()}
    print("  stress:", res["scene cut, frames 4-7 around it"], res["fast pan"]["mean"]["per frame"]["psnr"],
          res["fast pan"]["mean"]["temporal"]["psnr"], flush=True)
    return res


def read_clip(folder: Path, limit: int | None = None) -> list:
    return [load_image(f) for f in list_images(folder)[:limit]]


def time_paths(d: Derainer, frames: list, repeats: int) -> dict:
    """Seconds per frame of both paths over the same frames, interleaved, best of `repeats`."""
    best = {"per frame": float("inf"), "temporal": float("inf")}
    list(d.derain_stream(frames[:2], per_frame=True))  # warm-up
    for _ in range(repeats):
        for name, per_frame in (("per frame", True), ("temporal", False)):
            t = time.perf_counter()
            for _ in d.derain_stream(frames, per_frame=per_frame):
                pass
            best[name] = min(best[name], (time.perf_counter() - t) / len(frames))
    best = {k: round(v, 3) for k, v in best.items()}
    best["ratio"] = round(best["temporal"] / best["per frame"], 2)
    return best


def rain_crop(inp: np.ndarray, per: np.ndarray, ch: int, cw: int) -> tuple[int, int]:
    """Top-left corner of the ch x cw window where the per-frame model removed the most rain
    (input - output, bright part): chosen from the rain, not from either result."""
    r = np.maximum(rgb_to_y(inp).astype(np.float32) - rgb_to_y(per), 0)
    ii = np.pad(r.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    s = ii[ch:, cw:] - ii[:-ch, cw:] - ii[ch:, :-cw] + ii[:-ch, :-cw]
    y, x = np.unravel_index(np.argmax(s[::8, ::8]), s[::8, ::8].shape)
    return int(y * 8), int(x * 8)


def panel(images: list, y: int, x: int, ch: int, cw: int, zoom: int = 2) -> np.ndarray:
    crops = [np.asarray(Image.fromarray(im[y:y + ch, x:x + cw]).resize((cw * zoom, ch * zoom), Image.NEAREST))
             for im in images]
    sep = np.full((ch * zoom, 4, 3), 255, np.uint8)
    out = [crops[0]]
    for c in crops[1:]:
        out += [sep, c]
    return np.concatenate(out, 1)


def real_clips(d: Derainer, figures: Path | None, limit: int) -> dict:
    res = {}
    for name, rel in REAL.items():
        frames = read_clip(DATA / rel, limit)
        per = list(d.derain_stream(frames, per_frame=True))
        tmp = list(d.derain_stream(frames))
        res[name] = {"frames": len(frames), "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                     "flicker": {"input": round(flicker(frames), 3), "per frame": round(flicker(per), 3),
                                 "temporal": round(flicker(tmp), 3)}}
        print(f"  {name}: {res[name]}", flush=True)
        if figures:
            t = len(frames) // 2
            ch, cw = 120, 160
            y, x = rain_crop(frames[t], per[t], ch, cw)
            stem = rel.replace("/", "-").lower()
            Image.fromarray(panel([frames[t], per[t], tmp[t]], y, x, ch, cw)).save(
                figures / f"video-{stem}.png", optimize=True)
            res[name]["figure"] = f"docs/figures/video-{stem}.png: frame {t + 1}, crop {cw}x{ch} at ({x}, {y}), 2x"
            if rel == "real-video/r1":  # consecutive frames: rows input, per frame, temporal
                ts = range(t - 1, t + 3)
                rows = [np.concatenate([panel([f[k]], y, x, ch, cw, 1) for k in ts], 1) for f in (frames, per, tmp)]
                Image.fromarray(np.concatenate(rows, 0)).save(figures / "video-r1-strip.png", optimize=True)
                res[name]["strip"] = (f"docs/figures/video-r1-strip.png: frames {ts.start + 1}-{ts.stop}, "
                                      "rows input / per frame / temporal")
    return res


def model_version() -> str:
    from fclip_derain.models.loading import DEFAULT_CHECKPOINT
    from fclip_derain.weights import read_checkpoint
    meta = read_checkpoint(DEFAULT_CHECKPOINT)[2]
    return f"version {meta.get('version', '?')}"


def write(path, res: dict):
    """Add `res` to the JSON at `path` (the sets can be run as separate commands, in parallel)."""
    if path:
        old = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
        Path(path).write_text(json.dumps({**old, **res}, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--figures", type=Path, help="write the real-clip figures into this folder")
    ap.add_argument("--sets", default="dev,test,stress",
                    help="synthetic clip sets to score: dev, test, stress (fast pan, scene cuts)")
    ap.add_argument("--no-real", action="store_true", help="leave out the timing and the real clips")
    ap.add_argument("--threads", type=int, help="torch and OpenCV threads (default: as they are)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each path (best kept)")
    ap.add_argument("--real-frames", type=int, default=12, help="frames per real clip at most")
    args = ap.parse_args()
    if args.threads:  # several sets in parallel on a busy machine: one thread each, no spinning
        import cv2
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    d = Derainer(device="cpu")
    res = {"machine": f"{cpu_model()}, {torch.get_num_threads()} torch threads, {platform.machine()}",
           "date": time.strftime("%Y-%m-%d"), "model": f"shipped default (Derainer()), {model_version()}",
           "precision": "bf16" if d.dtype == torch.bfloat16 else "fp32",
           "fusion_default": dataclasses.asdict(DEFAULT), "variants": VARIANTS}
    bgs = clip_backgrounds(DATA / "clean" / "BSDS500-test", DATA / "RainTrainL" / "input")
    for name in args.sets.split(","):
        print(f"{name} clips:", flush=True)
        if name == "stress":
            res[name] = stress(d, bgs["test"])
            continue
        variants = VARIANTS if name == "dev" else TEST_VARIANTS
        res[name] = {"backgrounds": [p.name for p in bgs[name]], **score_clips(d, clip_set(bgs[name]), variants)}
        m = res[name]["mean"]
        print(f"  mean: input {m['input']['psnr']}, per frame {m['per frame']['psnr']}, temporal "
              f"{m['temporal']['psnr']}; flicker gt {m['flicker_gt']}, per frame {m['per frame']['flicker']}, "
              f"temporal {m['temporal']['flicker']}", flush=True)
    if args.no_real:
        return write(args.json, res)
    frames = read_clip(DATA / "real-video" / "r1")
    res["seconds_per_frame_640x480"] = {"clip": "real-video/r1, 10 frames of 640x480",
                                        **time_paths(d, frames, args.repeats)}
    print("time per frame at 640x480:", res["seconds_per_frame_640x480"], flush=True)
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    res["real"] = real_clips(d, args.figures, args.real_frames)
    write(args.json, res)


if __name__ == "__main__":
    main()
