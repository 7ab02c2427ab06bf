"""Metric speed on one 480x320 pair, one CPU core (target: PSNR+SSIM well under 50 ms).

    python benchmarks/metrics_speed.py
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import statistics
import time

import numpy as np

from fclip_derain.metrics import brisque, niqe, psnr_y, ssim_y


def bench(fn, *a, n=20):
    fn(*a)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn(*a)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


rng = np.random.default_rng(0)
a = rng.integers(0, 256, (320, 480, 3), dtype=np.uint8)
b = np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)
print("| metric (480x320, 1 core) | median ms |\n|---|---|")
for name, fn, args in [("psnr_y", psnr_y, (a, b)), ("ssim_y", ssim_y, (a, b)),
                       ("psnr_y + ssim_y", lambda x, y: (psnr_y(x, y), ssim_y(x, y)), (a, b)),
                       ("niqe", niqe, (a,)), ("brisque", brisque, (a,))]:
    print(f"| {name} | {bench(fn, *args, n=5 if name in ('niqe', 'brisque') else 20):.1f} |")
