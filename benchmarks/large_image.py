"""Large photos derain with bounded memory: peak RSS and time for a 6000x4000 image (auto tiling),
and the per-pixel working memory that sizes the tiles (`BYTES_PER_PIXEL` in inference/derainer.py).

    python benchmarks/large_image.py --json benchmarks/results/large-image.json

Each case runs in a fresh process (peak RSS is per process); the baseline is the same process
after loading the model, before any image, so the growth is what the image costs.
"""
import argparse
import json
import subprocess
import sys

CASE = r"""
import json, resource, time, numpy as np, torch
from fclip_derain.inference import Derainer
import fclip_derain.inference.derainer as dm
d = Derainer(device="cpu", tile={tile})
img = np.random.default_rng(0).integers(0, 256, ({h}, {w}, 3), dtype=np.uint8)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
out = d.derain(img)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tile = d._tile_for(1, {h}, {w})
print(json.dumps({{"size": "{w}x{h}", "tile": tile, "seconds": dt, "rss_before_mb": base, "peak_rss_mb": peak,
                  "growth_mb": peak - base, "bytes_per_pixel_growth": (peak - base) * 2**20 / ({w} * {h}),
                  "free_mb_at_start": dm.free_memory_bytes(d.device) / 2**20}}))
"""


def run(w, h, tile=None):
    r = subprocess.run([sys.executable, "-c", CASE.format(w=w, h=h, tile=tile)], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    row = json.loads(r.stdout.strip().splitlines()[-1])
    print(row, flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = [run(1024, 1024),            # untiled: the per-pixel working memory
            run(6000, 4000, tile=1024),  # 24 MP in 1024 px tiles: the memory bound a user can set
            run(6000, 4000)]             # automatic: tile from the free memory
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
