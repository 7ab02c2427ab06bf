"""Throughput of `derain --engine ray` (1 and 2 workers) against the local engine on the same files.

    python benchmarks/scale_out.py --limit 100 --out docs/scale-out-throughput

Runs each engine on the first --limit photos of ../shared/data/real-rain into a fresh folder, checks
that every output is byte-identical to the local engine's, and reports images per second, the ratio
to the local engine, and the Ray engine's overhead per image ((t_ray - t_local) / n, one worker).
A local Ray instance is started once (its start-up time is reported apart); each Ray run includes
starting its workers and loading their models, as `fclip-derain derain --engine ray` does.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from fclip_derain.benchmark import cpu_model
from fclip_derain.inference.jobs import derain_dataset
from fclip_derain.inference.ray_engine import connect

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real-rain"


def _files(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pixel_diff(a: Path, b: Path) -> tuple[int, float]:
    """-> (largest difference in grey levels, fraction of values that differ) over two folders."""
    import numpy as np
    from PIL import Image
    worst, differ, total = 0, 0, 0
    for p in sorted(a.iterdir()):
        x, y = (np.asarray(Image.open(q), dtype=np.int16) for q in (p, b / p.name))
        worst, differ, total = max(worst, int(np.abs(x - y).max())), differ + int((x != y).sum()), total + x.size
    return worst, differ / total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--out", help="write OUT.json and OUT.md")
    args = ap.parse_args()
    import ray
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[: args.limit]
    tmp = Path(tempfile.mkdtemp(prefix="scale-out-"))
    src = tmp / "in"
    src.mkdir()
    for f in files:
        shutil.copy(f, src / f.name)
    n = len(files)
    runs = []

    def run(name, **kw):
        out = tmp / name
        t0 = time.perf_counter()
        report = derain_dataset([src], out, progress=False, **kw)
        dt = time.perf_counter() - t0
        assert report.done == n and not report.failed, report.summary()
        runs.append({"engine": name, "seconds": round(dt, 2), "images_per_s": round(n / dt, 3)})
        print(f"{name}: {dt:.2f} s, {n / dt:.3f} img/s", flush=True)
        return out

    local = run("local")
    t0 = time.perf_counter()
    connect(ray, None)
    ray_start = time.perf_counter() - t0
    identical = {}
    for workers in (1, 2):
        out = run(f"ray, {workers} worker{'s' * (workers > 1)}", engine="ray", workers=workers)
        # byte-identical when a worker has the local engine's torch threads (one worker per node);
        # with fewer threads oneDNN sums in another order
        worst, frac = _pixel_diff(local, out)
        identical[workers] = {"bytes_identical": _files(out) == _files(local), "max_diff": worst,
                              "fraction_differing": frac}
    ray.shutdown()
    base = runs[0]["seconds"]
    for r in runs:
        r["ratio_to_local"] = round(base / r["seconds"], 3)
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "images": n, "data": str(args.data.name),
              "ray_version": ray.__version__, "ray_start_s": round(ray_start, 2),
              "ray_overhead_per_image_s": round((runs[1]["seconds"] - base) / n, 3), "runs": runs,
              "vs_local_by_workers": identical}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(report, indent=1) + "\n")
        rows = ["| engine | seconds | images/s | speed vs local |", "|---|---|---|---|"]
        rows += [f"| {r['engine']} | {r['seconds']} | {r['images_per_s']} | {r['ratio_to_local']}x |" for r in runs]
        Path(args.out + ".md").write_text("\n".join(rows) + "\n")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
