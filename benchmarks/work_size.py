"""Rain at a larger pixel scale than the model learnt: full resolution vs the work-size path.

    python benchmarks/work_size.py [--scales 1 2 3 4] [--sizes full 480 640 960] [--json F] [--figure F]

The 20 held-out validation pairs of RainTrainL (never trained on), input and target upscaled
together by each factor (bicubic): the same scenes and the same rain, as a camera with k times the
pixels would record them. Each is derained by the default model at full resolution and through
`Derainer(work_size=N)` (derain at N px on the long side, subtract the upsampled removed rain at
full resolution), plus `plain N` (upsample the small output itself, for reference). Y-PSNR / SSIM
against the upscaled target, and seconds per image (one thread, fp32). Never run on a test set.
--figure: the first held-out pair upscaled 3x, crops of input | full resolution | work size 640 | target.
--real: also the real-rain photos of real_rain_candidates.py upscaled by each factor (no ground
truth): rain statistics of the outputs, downscaled back to the photo's size, against deraining the
photo at its own size (streak contrast and cover should fall; brightness should not).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from heavy_rain import held_out_pairs
from PIL import Image

from fclip_derain import Derainer
from fclip_derain.data.io import load_image
from fclip_derain.metrics import psnr_y, ssim_y


def upscale(a: np.ndarray, k: int) -> np.ndarray:
    return a if k == 1 else np.asarray(Image.fromarray(a).resize((a.shape[1] * k, a.shape[0] * k), Image.BICUBIC))


def plain(d: Derainer, a: np.ndarray, size: int) -> np.ndarray:
    """Downscale, derain, upscale the output: what the work-size path improves on."""
    h, w = a.shape[:2]
    k = size / max(h, w)
    if k >= 1:
        return d.derain(a)
    small = np.asarray(Image.fromarray(a).resize((round(w * k), round(h * k)), Image.LANCZOS))
    return np.asarray(Image.fromarray(d.derain(small)).resize((w, h), Image.BICUBIC))


def figure(model: str | None, pair, path: str, k: int = 3):
    a, target = upscale(load_image(pair.input), k), upscale(load_image(pair.target), k)
    outs = [a] + [Derainer(model, device="cpu", half=False, work_size=s).derain(a) for s in (None, 640)] + [target]
    h, w = a.shape[:2]
    y, x, c = h // 3, w // 3, 480
    crops = [Image.fromarray(o[y:y + c, x:x + c]) for o in outs]
    sheet = Image.new("RGB", (len(crops) * c + (len(crops) - 1) * 8, c), "white")
    for i, im in enumerate(crops):
        sheet.paste(im, (i * (c + 8), 0))
    sheet.save(path, quality=90)
    print(f"wrote {path}: {pair.input.name} upscaled {k}x; input | full resolution | work size 640 | target",
          file=sys.stderr)


def real_photos(model: str | None, scales: list[int], sizes: list[int | None]) -> dict:
    from prenet_side_by_side import real_images
    from real_rain_candidates import KEYS

    from fclip_derain.metrics.rain_stats import luminance, rain_stats

    photos = [load_image(f) for f in real_images(8)]
    derainers = {s: Derainer(model, device="cpu", half=False, work_size=s) for s in sizes}

    def stats(outs):
        r = {k: float(np.mean([rain_stats(o)[k] for o in outs])) for k in KEYS if k != "veil"}
        r["brightness_change"] = float(np.mean([(luminance(o) - luminance(p)).mean() * 255
                                               for o, p in zip(outs, photos)]))
        return r

    def down(a, like):
        return np.asarray(Image.fromarray(a).resize((like.shape[1], like.shape[0]), Image.LANCZOS))

    rows = {"input": stats(photos), "own size": stats([derainers[sizes[0]].derain(p) for p in photos])}
    for k in scales:
        for s, d in derainers.items():
            rows[f"x{k} {f'work {s}' if s else 'full'}"] = stats([down(d.derain(upscale(p, k)), p) for p in photos])
    for n, r in rows.items():
        print(f"real photos, {n}: " + ", ".join(f"{m} {v:.2f}" for m, v in r.items()), flush=True)
    return {"photos": len(photos), "results": rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", help="default: the shipped model")
    ap.add_argument("--scales", type=int, nargs="*", default=[1, 2, 3, 4], help="upscaling factors of the held-out pairs (none: skip them)")
    ap.add_argument("--sizes", nargs="+", default=["full", "480", "640", "960"])
    ap.add_argument("--plain", type=int, default=640, help="also score plain down/upscaling at this size (0: no)")
    ap.add_argument("--json")
    ap.add_argument("--figure")
    ap.add_argument("--real", type=int, nargs="*", metavar="SCALE",
                    help="also real photos upscaled by these factors (default when given bare: 3)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pairs = held_out_pairs()
    sizes = [None if s == "full" else int(s) for s in args.sizes]
    derainers = {s: Derainer(args.checkpoint, device="cpu", half=False, work_size=s) for s in sizes}
    report = {"pairs": len(pairs), "cpu_threads": 1, "results": {}}
    for k in args.scales:
        data = [(upscale(load_image(p.input), k), upscale(load_image(p.target), k)) for p in pairs]
        row = {"input": {"psnr": float(np.mean([psnr_y(x, y) for x, y in data])),
                         "ssim": float(np.mean([ssim_y(x, y) for x, y in data]))}}
        runs = [(f"work {s}" if s else "full", derainers[s].derain) for s in sizes]
        if args.plain:
            runs.append((f"plain {args.plain}", lambda a: plain(derainers[None], a, args.plain)))
        for name, fn in runs:
            t0 = time.perf_counter()
            outs = [fn(x) for x, _ in data]
            row[name] = {"psnr": float(np.mean([psnr_y(o, y) for o, (_, y) in zip(outs, data)])),
                         "ssim": float(np.mean([ssim_y(o, y) for o, (_, y) in zip(outs, data)])),
                         "s_per_image": (time.perf_counter() - t0) / len(data)}
        h, w = data[0][0].shape[:2]
        report["results"][f"x{k}"] = row
        print(f"x{k} ({w}x{h}): " + ", ".join(f"{n} {r['psnr']:.2f}/{r['ssim']:.4f}" +
                                             (f" {r['s_per_image']:.2f}s" if "s_per_image" in r else "")
                                             for n, r in row.items()), flush=True)
    if args.real is not None:
        report["real_photos"] = real_photos(args.checkpoint, args.real or [3], sizes)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.figure:
        figure(args.checkpoint, pairs[0], args.figure)


if __name__ == "__main__":
    main()
