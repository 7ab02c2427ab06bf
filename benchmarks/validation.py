"""Score checkpoints on a training config's validation (held-out pairs + one set per rain kind),
per kind, with the standard error of each candidate's difference from the first one.

    python benchmarks/validation.py --config configs/experiments/heavy-rain/v15.yaml \
        v14=default C=runs/s15-v15/best.safetensors F=runs/s15-v15-full4/best.safetensors --json campaign/results/x.json

A checkpoint `routed` is the routed default model (the light and heavy experts and the router as
shipped); `routed:HEAVY[:ROUTER]` the same with another heavy expert (and router); `default` the
light expert (v15) alone.

The validation is the one training uses (fclip_derain.train.validation): the same held-out
backgrounds and seeds, fp32, one forward pass. The aggregate is the mean over the kinds with rain;
`se` is the standard error of the paired per-image difference (kinds independent).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from fclip_derain.benchmark import cpu_model
from fclip_derain.models import load_model
from fclip_derain.models.loading import load_routed
from fclip_derain.train.config import load_config
from fclip_derain.train.loop import build_data
from fclip_derain.train.validation import ValScores, difference, score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="a training config with data.val_synthetic")
    ap.add_argument("models", nargs="+", metavar="LABEL=CHECKPOINT", help="'default' for the shipped model")
    ap.add_argument("--json")
    ap.add_argument("--oracle", nargs=2, metavar=("A", "B"),
                    help="also report the per-image best of two candidates (what a perfect router between "
                         "them would score), as the candidate `oracle`")
    ap.add_argument("--without", nargs="+", default=[], metavar="KIND",
                    help="also report every difference without these kinds (a kind a branch trains on)")
    args = ap.parse_args()
    _, sets = build_data(load_config(args.config), log=lambda m: print(m, file=sys.stderr))
    scores: dict[str, ValScores] = {}
    for item in args.models:
        label, _, ckpt = item.partition("=")
        if ckpt.startswith("routed"):
            heavy, _, router = ckpt.partition(":")[2].partition(":")
            model = load_routed("cpu", heavy=heavy or None, router=router or None).eval()
        else:
            model = load_model(None if ckpt in ("", "default") else ckpt).eval()
        with torch.inference_mode():
            scores[label] = score(model, sets)
        print(f"{label}: aggregate {scores[label].aggregate():.3f}", file=sys.stderr, flush=True)
    if args.oracle:
        a, b = (scores[k] for k in args.oracle)
        best = lambda k: np.argmax([a.psnr[k], b.psnr[k]], axis=0)  # noqa: E731
        scores["oracle"] = ValScores(
            psnr={k: np.maximum(a.psnr[k], b.psnr[k]).tolist() for k in a.psnr},
            ssim={k: np.choose(best(k), [a.ssim[k], b.ssim[k]]).tolist() for k in a.psnr}, rain=a.rain)
    labels = list(scores)
    base = labels[0]
    kinds = list(scores[base].psnr)
    print("| model | aggregate | " + " | ".join(kinds) + f" | aggregate - {base} (SE) |")
    print("|---|---|" + "---|" * len(kinds) + "---|")
    report = {"config": args.config, "cpu": cpu_model(), "torch": torch.__version__, "models": {}}
    for label in labels:
        s = scores[label]
        d = difference(scores[base], s) if label != base else None
        diff_cell = f"{d['aggregate']:+.3f} ({d['se']:.3f})" if d else "-"
        print(f"| {label} | {s.aggregate():.2f} | " + " | ".join(f"{np.mean(s.psnr[k]):.2f}" for k in kinds)
              + f" | {diff_cell} |")
        report["models"][label] = {"checkpoint": dict(i.partition("=")[::2] for i in args.models).get(label, label),
                                   "aggregate_psnr": s.aggregate(), "aggregate_ssim": s.aggregate("ssim"),
                                   "psnr": {k: float(np.mean(v)) for k, v in s.psnr.items()},
                                   "ssim": {k: float(np.mean(v)) for k, v in s.ssim.items()},
                                   "per_image_psnr": s.psnr, f"minus_{base}": d}
    for i, a in enumerate(labels[1:], 1):  # every other pair, for the rule's branch comparison
        for b in labels[i + 1:]:
            d = difference(scores[a], scores[b])
            print(f"{b} - {a}: {d['aggregate']:+.3f} dB (SE {d['se']:.3f})")
            report.setdefault("pairs", {})[f"{b} - {a}"] = d
    if args.without:  # the rule's check that a gain is not bought with a kind the branch trains on
        print(f"without {', '.join(args.without)}:")
        report["without"] = {"kinds": args.without, "pairs": {}}
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                d = difference(scores[a], scores[b], exclude=args.without)
                report["without"]["pairs"][f"{b} - {a}"] = d
                print(f"  {b} - {a}: {d['aggregate']:+.3f} dB (SE {d['se']:.3f})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
