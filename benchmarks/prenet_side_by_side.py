"""FCLIP-UNet (ours) vs PReNet (Ren et al. 2019) on the same images in one run.

    python benchmarks/prenet_side_by_side.py --out docs/prenet_side_by_side

Writes OUT.json and OUT.md: Rain100L / Rain12 Y-PSNR/SSIM (MATLAB protocol, scored on saved
uint8 PNGs), NIQE / BRISQUE on real rain (variants in fclip_derain.metrics.no_reference), the
no-ground-truth rain statistics (fclip_derain.metrics.rain_stats) and the mean brightness change
on real rain, with how far each model moves the statistics from the inputs towards clean photos'
(`../shared/data/clean`), CPU seconds per 481x321 image (median), parameters and FLOPs. PReNet uses its public weights trained
on RainTrainL (`PReNet6-Rain100L.pth`), the same training pairs as our default model.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from heavy_rain import held_out_backgrounds

from fclip_derain.benchmark import count_flops, time_it
from fclip_derain.data.io import load_image, to_float, to_uint8
from fclip_derain.data.pairing import list_images, pairs_from
from fclip_derain.evaluation import evaluate_model
from fclip_derain.metrics import brisque, niqe, psnr_rgb
from fclip_derain.metrics.rain_stats import (
    STAT_NAMES,
    luminance,
    moved_fraction,
    population,
    rain_stats,
)
from fclip_derain.models import load_model
from fclip_derain.models.prenet import load_prenet

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "PReNet"


def as_fn(model):
    @torch.inference_mode()
    def run(img):
        return to_uint8(model(to_float(img)[None])[0])
    return run


def real_images(every: int):
    files = list_images(DATA / "NTURain-R" / "ra1") + list_images(DATA / "NTURain-R" / "rb2")
    files = files[::every] + list_images(DATA / "real-rain")[::every]
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=None, help="ours (default: the shipped model)")
    ap.add_argument("--prenet", default=str(PEERS / "PReNet6-Rain100L.pth"))
    ap.add_argument("--limit", type=int, default=0, help="first N pairs per set (0: all)")
    ap.add_argument("--real-every", type=int, default=4, help="every k-th real-rain image")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="docs/prenet_side_by_side")
    ap.add_argument("--reuse-peer-scores", metavar="JSON",
                    help="take PReNet's Rain100L/Rain12 scores from an earlier report of this script instead of "
                         "re-running it on them (its weights and our pipeline are unchanged: ~12 min saved on 2 "
                         "cores); real rain, speed and FLOPs are still measured in this run")
    args = ap.parse_args()
    models = {"FCLIP-UNet (ours)": load_model(args.checkpoint), "PReNet": load_prenet(args.prenet)}
    fns = {k: as_fn(m) for k, m in models.items()}
    res = {k: {} for k in models}
    reused = json.loads(Path(args.reuse_peer_scores).read_text())["results"]["PReNet"] if args.reuse_peer_scores else None
    for name in ("Rain100L", "Rain12"):
        pairs = pairs_from(DATA / name)
        pairs = pairs[: args.limit] if args.limit else pairs
        for k, fn in fns.items():
            if k == "PReNet" and reused:
                res[k][name] = {**reused[name], "reused_from": args.reuse_peer_scores}
                continue
            t = time.time()
            r = evaluate_model(fn, pairs, name, progress=False)
            res[k][name] = {"psnr": r.mean("psnr"), "ssim": r.mean("ssim"), "images": len(r.per_image)}
            print(f"{k} {name}: {res[k][name]} ({time.time() - t:.0f} s)", file=sys.stderr, flush=True)
    files = real_images(args.real_every)
    keys = ("niqe", "brisque", "brightness_change", *STAT_NAMES)
    nr = {k: {m: [] for m in keys} for k in ("input", *models)}
    for f in files:
        img = load_image(f)
        outs = {"input": img, **{k: fn(img) for k, fn in fns.items()}}
        for k, o in outs.items():
            nr[k]["niqe"].append(niqe(o))
            nr[k]["brisque"].append(brisque(o))
            # mean luminance change in grey levels: deraining should not darken a photo overall
            nr[k]["brightness_change"].append(float((luminance(o) - luminance(img)).mean() * 255))
            for m, v in rain_stats(o).items():
                nr[k][m].append(v)
    nr = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in nr.items()}
    # photos without rain (the 20 backgrounds held out from training): a model that darkens or
    # alters them does so everywhere, not only where it removes rain
    no_rain = {k: {"brightness_change": [], "psnr_to_input": []} for k in models}
    for bg in held_out_backgrounds():
        for k, fn in fns.items():
            o = fn(bg)
            no_rain[k]["brightness_change"].append(float((luminance(o) - luminance(bg)).mean() * 255))
            no_rain[k]["psnr_to_input"].append(psnr_rgb(o, bg))
    no_rain = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in no_rain.items()}
    clean_ref = {m: d["mean"] for m, d in population(load_image(f) for f in list_images(DATA / "clean" / "BSDS500-test")).items()}
    moved = {k: {m: moved_fraction(nr["input"][m], nr[k][m], clean_ref[m]) for m in STAT_NAMES} for k in models}
    x = torch.rand(1, 3, 321, 481)
    for k, m in models.items():
        with torch.inference_mode():
            ts = time_it(lambda: m(x), args.repeats)
        enc = sum(p.numel() for n, p in m.named_parameters() if n.startswith("encoder."))
        res[k]["cpu_s_481x321"] = statistics.median(ts)
        res[k]["params"] = sum(p.numel() for p in m.parameters())
        res[k]["params_trained"] = res[k]["params"] - enc
        res[k]["gflops_481x321"] = count_flops(m, x) / 1e9
        res[k].update({f"real_{m_}": v for m_, v in nr[k].items()})
        res[k].update({f"no_rain_{m_}": v for m_, v in no_rain[k].items()})
    report = {"results": res, "real_input": nr["input"], "real_images": len(files),
              "real_rain_stats": nr, "clean_rain_stats": clean_ref, "moved_towards_clean": moved,
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(report, indent=2))
    ours, peer = res["FCLIP-UNet (ours)"], res["PReNet"]
    lines = ["| model | Rain100L PSNR/SSIM | Rain12 PSNR/SSIM | real NIQE | real BRISQUE | CPU s / 481x321 | "
             "params (M, trained) | GFLOPs 481x321 |", "|---|---|---|---|---|---|---|---|",
             f"| rainy input | - | - | {nr['input']['niqe']:.3f} | {nr['input']['brisque']:.2f} | - | - | - |"]
    for k, r in res.items():
        lines.append(f"| {k} | {r['Rain100L']['psnr']:.2f}/{r['Rain100L']['ssim']:.4f} | "
                     f"{r['Rain12']['psnr']:.2f}/{r['Rain12']['ssim']:.4f} | {r['real_niqe']:.3f} | "
                     f"{r['real_brisque']:.2f} | {r['cpu_s_481x321']:.3f} | {r['params'] / 1e6:.2f} "
                     f"({r['params_trained'] / 1e6:.2f}) | {r['gflops_481x321']:.1f} |")
    lines.append("")
    lines.append(f"speed-up (PReNet s / ours s): {peer['cpu_s_481x321'] / ours['cpu_s_481x321']:.1f}x; "
                 f"{len(files)} real-rain images (NTURain-R ra1+rb2 and real-rain, every {args.real_every}th); "
                 f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}")
    lines += ["", "Real rain (the same images): rain statistics that need no ground truth "
              "(fclip_derain.metrics.rain_stats), mean brightness change in grey levels, and the fraction of "
              "the way from the inputs to clean photos each model moves each statistic.", "",
              "| | " + " | ".join(STAT_NAMES) + " | brightness change |", "|---|" + "---|" * (len(STAT_NAMES) + 1),
              "| clean photos (BSDS500 test) | " + " | ".join(f"{clean_ref[m]:.3f}" for m in STAT_NAMES) + " | - |"]
    for k in ("input", *models):
        cells = [f"{nr[k][m]:.3f}" + (f" ({moved[k][m]:+.0%})" if k in moved else "") for m in STAT_NAMES]
        lines.append(f"| {'rainy input' if k == 'input' else k} | " + " | ".join(cells)
                     + f" | {nr[k]['brightness_change']:+.2f} |")
    lines += ["", "Photos without rain (the 20 clean backgrounds held out from training): what each model "
              "changes where there is no rain to remove.", "",
              "| model | brightness change (grey levels) | PSNR of output to input (dB) |", "|---|---|---|"]
    lines += [f"| {k} | {no_rain[k]['brightness_change']:+.2f} | {no_rain[k]['psnr_to_input']:.2f} |" for k in models]
    md = "\n".join(lines)
    Path(args.out + ".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
