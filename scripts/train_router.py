"""Fit the rain-density head that routes each image to the light or the heavy expert (issue 46).

Training images (label 0 = light, 1 = heavy), all from training sources only:
  light: RainTrainL's training inputs; v15's synthetic kinds (light, heavy, torrential, thick,
         real-streaks, screen-free) over training backgrounds; rain-free training photos
  heavy: the 18 RainTrainH-20 training inputs; their rain layers transplanted over training
         backgrounds (data/transplant.py)
Held out (never fitted on): RainTrainL's 20 held-out pairs and v15's 8 validation kinds over their
backgrounds (light), the 5 RainTrainH-20 validation pairs and transplants over held-out
backgrounds (heavy). Real rain without labels (NTURain-R, real-rain, real-video) is reported as the
share sent to each expert.

    python scripts/train_router.py --json campaign/results/stage21-router.json \
        --out src/fclip_derain/pretrained/rain-router.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fclip_derain.data.io import load_image  # noqa: E402
from fclip_derain.data.pairing import list_images, pairs_from  # noqa: E402
from fclip_derain.data.synth import preset_params, render_pair  # noqa: E402
from fclip_derain.data.transplant import TransplantSource  # noqa: E402
from fclip_derain.models.loading import load_model  # noqa: E402
from fclip_derain.models.routing import BAND, blend_weight  # noqa: E402
from fclip_derain.train.config import load_config  # noqa: E402
from fclip_derain.train.loop import held_out_split  # noqa: E402
from fclip_derain.train.router import fit_head, tap_features  # noqa: E402
from fclip_derain.weights import save_checkpoint  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CONFIG = ROOT / "configs" / "experiments" / "heavy-expert" / "pairs.yaml"
LIGHT_KINDS = ["light", "heavy", "torrential", "thick", "real-streaks"]


def render_set(backgrounds, params, seed, transplant=None):
    """Rain over each background (the generator seeded (seed, j) for image j): `params`, a preset
    name or a ValKindConfig, or the transplant source's layers."""
    if not transplant and not isinstance(params, str):
        if params.preset == "none":
            return list(backgrounds)
        params = preset_params(params.preset, params.rain)
    elif not transplant:
        params = preset_params(params)
    out = []
    for j, b in enumerate(backgrounds):
        rng = np.random.default_rng([seed, j])
        out.append(transplant.render(b, rng)[0] if transplant else render_pair(b, params, rng)[0])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "src/fclip_derain/pretrained/rain-router.safetensors"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--cache", default=str(ROOT / "runs/router-features.pt"), help="features, reused when present")
    ap.add_argument("--per-kind", type=int, default=35, help="synthetic training images per kind")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()

    cfg = load_config(CONFIG)
    train_pairs, val_pairs = held_out_split(cfg)
    held = {p.target.stem for p in val_pairs} | set(cfg.data.exclude)
    train_pairs = [p for p in train_pairs if p.target.stem not in held]
    clean = [p for p in list_images(DATA / "clean/BSDS500-test")]
    train_bg = [load_image(p) for p in clean if p.stem not in held]
    val_bg = [load_image(p) for p in clean if p.stem in {q.target.stem for q in val_pairs}]
    h_train = pairs_from(DATA / "RainTrainH-20/train")
    h_val = pairs_from(DATA / "RainTrainH-20/val")
    transplant = TransplantSource(h_train, [clean[0]])

    rng = np.random.default_rng(0)
    def some(n):
        return [train_bg[i] for i in rng.choice(len(train_bg), n, replace=False)]

    sets = {  # name -> (images, label, fitted on)
        "RainTrainL train inputs": ([load_image(p.input) for p in train_pairs], 0, True),
        **{f"synthetic {k} (train)": (render_set(some(args.per_kind), k, 200 + i), 0, True)
           for i, k in enumerate(LIGHT_KINDS)},
        "rain-free (train)": (some(args.per_kind), 0, True),
        "RainTrainH-20 train inputs": ([load_image(p.input) for p in h_train], 1, True),
        "transplant (train)": (render_set(some(4 * args.per_kind), None, 300, transplant), 1, True),
        "RainTrainL held-out pairs": ([load_image(p.input) for p in val_pairs], 0, False),
        **{f"val {k.name}": (render_set(val_bg, k, k.seed), 0, False)
           for k in load_config(ROOT / "configs/experiments/heavy-rain/v15.yaml").data.val_synthetic},
        "RainTrainH-20 val inputs": ([load_image(p.input) for p in h_val], 1, False),
        "transplant (held-out backgrounds)": (render_set(val_bg, None, 400, transplant), 1, False),
        "real: NTURain-R": ([load_image(p) for d in ("ra1", "rb2") for p in list_images(DATA / "NTURain-R" / d)], None, False),
        "real: real-rain": ([load_image(p) for p in list_images(DATA / "real-rain")], None, False),
        "real: real-video": ([load_image(p) for d in ("r1", "r2", "r3") for p in list_images(DATA / "real-video" / d)], None, False),
    }
    model = load_model(None)
    model.encoder.fold_batchnorm()
    cache = Path(args.cache)
    feats = torch.load(cache) if cache.is_file() else {}
    for name, (images, _, _) in sets.items():
        if name not in feats or len(feats[name]) != len(images):
            feats[name] = tap_features(model.encoder, images, model.pad_multiple)
            print(f"{name}: {len(images)} images, {time.time() - t0:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(feats, cache)

    fit = [(feats[n], lab) for n, (_, lab, f) in sets.items() if f]
    x = torch.cat([f for f, _ in fit])
    y = torch.cat([torch.full((len(f),), float(lab)) for f, lab in fit])
    head = fit_head(x, y)
    report = {"band": list(BAND), "fitted_on": int(len(y)), "sets": {}}
    with torch.no_grad():
        for name, (images, lab, fitted) in sets.items():
            wts = blend_weight(torch.sigmoid(head.logits(feats[name])))
            row = {"images": len(images), "fitted": fitted, "label": {0: "light", 1: "heavy", None: None}[lab],
                   "light": int((wts <= 0).sum()), "blend": int(((wts > 0) & (wts < 1)).sum()),
                   "heavy": int((wts >= 1).sum())}
            if lab is not None:  # accuracy: the side of 0.5 the head puts it on
                p = torch.sigmoid(head.logits(feats[name]))
                row["accuracy"] = float(((p > 0.5).float() == lab).float().mean())
            report["sets"][name] = row
            print(f"{name:40s} {json.dumps(row)}")
    save_checkpoint(args.out, head.state_dict(), {"kind": "rain-density-head", "dim": x.shape[1]},
                    {"encoder": model.config.encoder, "encoder_sha256": model.encoder_digest(),
                     "band": list(BAND), "recipe": "scripts/train_router.py"})
    report["seconds"] = round(time.time() - t0, 1)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
