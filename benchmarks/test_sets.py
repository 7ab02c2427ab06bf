"""Rain100L, Rain12 and Rain100H for our models and PReNet-L / PReNet-H, in one table.

    python benchmarks/test_sets.py --ours v15=default --reuse campaign/results/stage15-test-sets-v14-prenet.json --json campaign/results/stage17-test-sets.json
    python benchmarks/test_sets.py --ours v14=runs/v14.safetensors --reuse campaign/results/stage17-test-sets.json --json runs/t.json
    python benchmarks/test_sets.py --ours routed=routed --reuse campaign/results/stage17-test-sets.json --json campaign/results/stage22-test-sets.json

`routed` is the routed default (light + heavy experts, issue 46); `routed:HEAVY` with another heavy
expert; each set also records how many images the router sent to each expert.

MATLAB-protocol Y PSNR/SSIM on saved uint8 PNGs, one forward pass in fp32, no ensemble, the
same scoring path as `fclip-derain eval` (fclip_derain.evaluation). PReNet-L is PReNet's public
model trained on RainTrainL (light rain, our training pairs), PReNet-H the one trained on
RainTrainH (heavy rain, not available to us). Test sets only: nothing here is used to train,
tune or select a model; each shipped model is scored once. `--reuse` takes the scores of any
model of the same label from an earlier report (the peers' weights and our pipeline do not change).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
from prenet_side_by_side import DATA, PEERS, as_fn

from fclip_derain.benchmark import cpu_model
from fclip_derain.data.pairing import pairs_from
from fclip_derain.evaluation import evaluate_model
from fclip_derain.models import load_model
from fclip_derain.models.loading import load_routed
from fclip_derain.models.routing import route_name
from fclip_derain.models.prenet import load_prenet

SETS = ("Rain100L", "Rain12", "Rain100H")
PEER_FILES = {"PReNet-L": "PReNet6-Rain100L.pth", "PReNet-H": "PReNet6-Rain100H.pth"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", action="append", default=[], metavar="LABEL=CHECKPOINT",
                    help="our model to score ('default' for the shipped one); repeatable")
    ap.add_argument("--peers", default="PReNet-L,PReNet-H", help="comma-separated, or '' for none")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--reuse", help="an earlier report of this script: labels found there are not re-run")
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    old = json.loads(Path(args.reuse).read_text())["results"] if args.reuse else {}
    models = {}
    for item in args.ours:
        label, _, ckpt = item.partition("=")
        if ckpt.startswith("routed"):  # the routed default (issue 46), or with another heavy expert
            models[label] = lambda c=ckpt: load_routed("cpu", heavy=c.partition(":")[2] or None).eval()
        else:
            models[label] = lambda c=ckpt: load_model(None if c in ("", "default") else c).eval()
    for p in filter(None, args.peers.split(",")):
        models[p] = lambda p=p: load_prenet(str(PEERS / PEER_FILES[p])).eval()
    res = {}
    for label, make in models.items():
        res[label] = {}
        fn = None
        for name in args.sets.split(","):
            if name in old.get(label, {}):
                res[label][name] = {**old[label][name], "reused_from": args.reuse}
                continue
            if fn is None:
                model = make()
                fn = as_fn(model)
            t = time.time()
            annotate = ((lambda: {"route": route_name(float(model.last_weights[0]))})
                        if hasattr(model, "last_weights") else None)
            r = evaluate_model(fn, pairs_from(DATA / name), name, progress=False, annotate=annotate)
            res[label][name] = {"psnr": r.mean("psnr"), "ssim": r.mean("ssim"), "images": len(r.per_image)}
            if annotate:  # which expert each image went to
                res[label][name]["routes"] = r.summary([])["routes"]
            print(f"{label} {name}: {res[label][name]['psnr']:.2f} / {res[label][name]['ssim']:.4f} "
                  f"({time.time() - t:.0f} s)", file=sys.stderr, flush=True)
    report = {"results": res, "cpu": cpu_model(), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "protocol": "MATLAB Y PSNR/SSIM on saved uint8 PNGs, one forward pass, fp32, no ensemble"}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    sets = args.sets.split(",")
    print("| model | " + " | ".join(sets) + " |\n|---|" + "---|" * len(sets))
    for label, r in res.items():
        print(f"| {label} | " + " | ".join(f"{r[s]['psnr']:.2f} / {r[s]['ssim']:.4f}" for s in sets) + " |")


if __name__ == "__main__":
    main()
