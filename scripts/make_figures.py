"""Figures for the docs: Rain100L crops (input | ours | PReNet | target), real rain before/after
(input | ours | PReNet), real-rain crops at 2x (nearest-neighbour, so streaks stay visible), and
dense and thick real rain beside both PReNets (input | ours | PReNet-L | PReNet-H, full frame and
a 2x crop): PReNet-H was trained on heavy rain (RainTrainH, 1800 pairs; we have 18 of them).
Ours is the routed default model (light and heavy experts, models/routing.py); the heavy-rain
figure shows what the router chose and, beside it, the heavy expert forced (`--rain heavy`).

    python scripts/make_figures.py --out docs/figures
"""
import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from fclip_derain.data.io import load_image, to_float, to_uint8
from fclip_derain.data.pairing import pairs_from
from fclip_derain.models import load_model
from fclip_derain.models.loading import has_routed_default, load_routed
from fclip_derain.models.routing import route_name
from fclip_derain.models.prenet import load_prenet

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@torch.inference_mode()
def run(model, img):
    return to_uint8(model(to_float(img)[None])[0])


def label(img, text):
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 8 * len(text) + 6, 14], fill=(0, 0, 0))
    d.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(im)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--checkpoint")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ours = load_routed() if args.checkpoint is None and has_routed_default() else load_model(args.checkpoint)
    prenet = load_prenet(SHARED / "peers" / "PReNet" / "PReNet6-Rain100L.pth")
    rows = []
    for p in [pp for pp in pairs_from(SHARED / "data" / "Rain100L") if pp.input.stem in ("rain-001", "rain-012", "rain-045")]:
        a, t = load_image(p.input), load_image(p.target)
        crop = lambda im: im[40:240, 100:300]
        cells = [label(crop(a), "input"), label(crop(run(ours, a)), "FCLIP-UNet (ours)"),
                 label(crop(run(prenet, a)), "PReNet"), label(crop(t), "target")]
        rows.append(np.concatenate(cells, 1))
    Image.fromarray(np.concatenate(rows, 0)).save(out / "rain100l_crops.png", optimize=True)
    reals = [SHARED / "data" / "NTURain-R" / "ra1" / "00010.jpg", SHARED / "data" / "NTURain-R" / "rb2" / "00030.jpg",
             SHARED / "data" / "real-rain" / "real-001.png", SHARED / "data" / "real-rain" / "real-050.png"]
    rows, crops = [], []
    for f in reals:
        a = np.asarray(Image.fromarray(load_image(f)).resize((480, 320)))
        o, pr = run(ours, a), run(prenet, a)
        rows.append(np.concatenate([label(a, "real rain"), label(o, "FCLIP-UNet (ours)"), label(pr, "PReNet")], 1))
        zoom = lambda im: np.asarray(Image.fromarray(im[100:220, 150:310]).resize((320, 240), Image.NEAREST))
        crops.append(np.concatenate([label(zoom(a), "real rain 2x"), label(zoom(o), "ours 2x"),
                                     label(zoom(pr), "PReNet 2x")], 1))
    Image.fromarray(np.concatenate(rows, 0)).save(out / "real_rain.png", optimize=True)
    Image.fromarray(np.concatenate(crops, 0)).save(out / "real_rain_crops.png", optimize=True)
    heavy_real_rain(ours, prenet, out / "heavy_real_rain.jpg")
    print("wrote", out / "rain100l_crops.png", out / "real_rain.png", out / "real_rain_crops.png",
          out / "heavy_real_rain.jpg")


# dense, bright or thick real rain, picked by eye from the real sets for this figure only
HEAVY_REAL = ["real-rain/real-040.png", "real-rain/real-068.png", "real-rain/real-098.png",
              "real-rain/real-037.png", "NTURain-R/rb2/00030.jpg", "real-video/r1"]


def heavy_real_rain(ours, prenet_l, path):
    prenet_h = load_prenet(SHARED / "peers" / "PReNet" / "PReNet6-Rain100H.pth")
    rows = []
    for name in HEAVY_REAL:
        f = SHARED / "data" / name
        if f.is_dir():  # a video clip: its first frame
            f = sorted(f.iterdir())[0]
        a = np.asarray(Image.fromarray(load_image(f)).resize((360, 240), Image.BICUBIC))
        outs, names = [a, run(ours, a)], ["real rain", "FCLIP-UNet (ours)"]
        if hasattr(ours, "mode"):  # routed: say which expert ran, and show the heavy one forced
            names[1] = f"ours, auto: {route_name(float(ours.last_weights[0]))}"
            ours.mode = "heavy"
            outs.append(run(ours, a))
            names.append("ours, heavy expert")
            ours.mode = "auto"
        outs += [run(prenet_l, a), run(prenet_h, a)]
        names += ["PReNet-L", "PReNet-H"]
        rows.append(np.concatenate([label(o, n) for o, n in zip(outs, names)], 1))
        zoom = lambda im: np.asarray(Image.fromarray(im[60:180, 90:270]).resize((360, 240), Image.NEAREST))
        rows.append(np.concatenate([label(zoom(o), n + " 2x") for o, n in zip(outs, names)], 1))
    # JPEG: 24 full frames and crops would be 3.3 MB as PNG, 1.1 MB here with the streaks still visible
    Image.fromarray(np.concatenate(rows, 0)).save(path, quality=88, optimize=True)


if __name__ == "__main__":
    main()
