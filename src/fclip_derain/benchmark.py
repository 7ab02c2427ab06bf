"""`fclip-derain benchmark`: parameters, FLOPs, latency percentiles, peak memory; JSON + Markdown.

FLOPs come from `torch.utils.flop_counter` (multiply-add = 2 FLOPs). Peak memory on CPU is the
peak RSS of a fresh subprocess per resolution (the only honest number for a whole process); on
CUDA, `torch.cuda.max_memory_allocated`.

Timing: the first runs of a model at a new size are slow (oneDNN builds its kernels, memory is
allocated), so each path is run until two runs in a row agree within WARMUP_TOLERANCE (at least
MIN_WARMUP, at most MAX_WARMUP runs); those runs are excluded and their number is reported. The
paths compared (optimised, plain, default) then alternate run by run, so that a change in the
machine's load hits them alike, and a speed-up is the median of per-round ratios. A row whose
p10-p90 spread exceeds NOISY_SPREAD of its median, or whose file-to-file time comes out below the
model's own time, is flagged as noise: the machine was busy; rerun with more --repeats.
"""
from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    """lscpu's model name and the vector units that decide CPU speed (AVX-512, AMX)."""
    from .devices import cpu_flags
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), name)
    except OSError:
        pass
    flags = cpu_flags()
    units = ["AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"]
    if "avx512_bf16" in flags:
        units.append("AVX512-BF16")
    if "amx_bf16" in flags:
        units.append("AMX-BF16")
    return f"{name} ({', '.join(units)})"


def count_params(model) -> dict:
    enc = sum(p.numel() for p in model.encoder.parameters())
    dec = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder."))
    return {"encoder_params": enc, "decoder_params": dec}


def count_flops(module, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        module(x)
    return int(fc.get_total_flops())


def encoder_flops(model, h, w) -> int:
    return count_flops(model.encoder, torch.rand(1, 3, h, w))


def time_it(fn, repeats: int, warmup: int = 1, sync=lambda: None) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


MIN_WARMUP, MAX_WARMUP, WARMUP_TOLERANCE = 2, 8, 0.15
NOISY_SPREAD = 0.25  # (p90 - p10) / median above this: the timings say more about the machine than the model


def warm_up(fns: dict, sync=lambda: None) -> int:
    """Run every function until two consecutive runs of each agree within WARMUP_TOLERANCE;
    -> the number of rounds run (excluded from the timings)."""
    last = {k: None for k in fns}
    for n in range(1, MAX_WARMUP + 1):
        steady = True
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            sync()
            dt = time.perf_counter() - t
            steady &= last[k] is not None and abs(dt - last[k]) <= WARMUP_TOLERANCE * min(dt, last[k])
            last[k] = dt
        if n >= MIN_WARMUP and steady:
            return n
    return MAX_WARMUP


def time_interleaved(fns: dict, repeats: int, sync=lambda: None) -> dict:
    """{name: [seconds per run]}, the functions taking turns run by run (warm them up first)."""
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            sync()
            out[k].append(time.perf_counter() - t)
    return out


def spread(ts) -> float:
    p = _percentiles(ts)
    return (p["p90_s"] - p["p10_s"]) / p["median_s"]


def _percentiles(ts):
    ts = sorted(ts)
    q = lambda p: ts[min(len(ts) - 1, int(round(p * (len(ts) - 1))))]
    return {"median_s": statistics.median(ts), "p10_s": q(0.1), "p90_s": q(0.9), "min_s": ts[0]}


def peak_rss_subprocess(checkpoint, w: int, h: int, device: str, half: bool) -> float | None:
    """Peak RSS (MB) of a fresh process deraining one w x h image through the public API."""
    code = f"""
import resource, numpy as np
from fclip_derain.inference import Derainer
d = Derainer({checkpoint!r}, device={device!r}, half={half}, work_size=None)
d.derain(np.random.default_rng(0).integers(0, 256, ({h}, {w}, 3), dtype=np.uint8))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
        return float(r.stdout.strip().splitlines()[-1])
    except Exception:
        return None


def end_to_end_times(derainer, w: int, h: int, repeats: int) -> tuple[list[float], float]:
    """PNG file in -> PNG file out: (seconds per image one after the other: decode, derain, encode,
    atomic write; seconds per image over a folder of `repeats` files as `fclip-derain derain`
    runs it, decoding and writing in threads that overlap the model)."""
    import tempfile

    import numpy as np
    from PIL import Image

    from .data.io import open_image, save_image
    from .inference.files import derain_files
    # a photo-like test image (smooth shapes + sensor noise): PNG cost depends on content
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / 37.0), np.cos(yy / 23.0), np.sin((xx + yy) / 51.0)], -1) * 90 + 128
    img = np.clip(base + np.random.default_rng(0).normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        Image.fromarray(img).save(src)

        def once():
            im = open_image(src)
            save_image(dst, derainer.derain(np.asarray(im)), "PNG", like=im)
        sequential = time_it(once, repeats)
        plan = [(src, Path(tmp) / f"out{i}.png") for i in range(repeats + 1)]
        derain_files(derainer, plan[:1], progress=False)  # warm-up
        t = time.perf_counter()
        derain_files(derainer, plan[1:], progress=False)
        return sequential, (time.perf_counter() - t) / repeats


def run_benchmark(args) -> int:
    from .inference import Derainer
    sizes = args.sizes  # [(w, h)], parsed and checked by the CLI before torch loads
    from .options import PRECISIONS
    half = PRECISIONS[getattr(args, "precision", "auto")]
    say = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    # the network at each size (work_size=None), so that sizes compare; `default_median_s` is what
    # `fclip-derain derain` spends, which derains images above the work size at the work size
    d = Derainer(args.checkpoint, device=args.device, half=half, work_size=None)
    default = Derainer(args.checkpoint, device=args.device, half=half)
    # the unoptimised path (NCHW, fp32, as a plain PyTorch port would run it), timed in the same run
    plain = Derainer(args.checkpoint, device=args.device, half=False, channels_last=False, fold_bn=False,
                     work_size=None)
    model, dev = d.model, d.device
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    info = {"device": str(dev), "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "encoder": model.config.encoder,
            "half": d.half, "cpu": cpu_model(), **count_params(model)}
    rows = []
    for w, h in sizes:
        x = torch.rand(1, 3, h, w, device=dev)
        fns = {"model": lambda: d.derain_tensor(x), "plain": lambda: plain.derain_tensor(x)}
        if max(w, h) > (default.work_size or max(w, h)):
            fns["default"] = lambda: default.derain_tensor(x)
        say(f"{w}x{h}: warming up {', '.join(fns)} (runs until two in a row agree within "
            f"{WARMUP_TOLERANCE:.0%})")
        warmup = warm_up(fns, sync)
        say(f"{w}x{h}: {warmup} warm-up rounds excluded; timing {args.repeats} rounds of {', '.join(fns)}")
        t = time_interleaved(fns, args.repeats, sync)
        ts, ts_plain, ts_default = t["model"], t["plain"], t.get("default", t["model"])
        say(f"{w}x{h}: file to file ({args.repeats} images one by one, then as a folder)")
        ts_e2e, folder_s = end_to_end_times(d, w, h, args.repeats)
        ratios = [p / m for p, m in zip(ts_plain, ts)]
        row = {"size": f"{w}x{h}", **_percentiles(ts), "images_per_s": 1 / statistics.median(ts),
               "warmup_runs_excluded": warmup, "spread": spread(ts),
               "plain_median_s": statistics.median(ts_plain), "plain_spread": spread(ts_plain),
               "speedup_vs_plain": statistics.median(ratios),
               "default_median_s": statistics.median(ts_default),
               "end_to_end_median_s": statistics.median(ts_e2e), "folder_s_per_image": folder_s,
               "flops_total": count_flops(model, torch.rand(1, 3, h, w)) if dev.type == "cpu" or w * h <= 2e6 else None,
               "flops_encoder": encoder_flops(model.cpu(), h, w)}
        row["noise"] = noise_reasons(row, args.repeats)
        model.to(dev)
        say(f"{w}x{h}: peak memory (a fresh process)")
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            d.derain_tensor(x)
            row["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
        else:
            row["peak_mem_mb"] = peak_rss_subprocess(args.checkpoint, w, h, args.device, d.half)
        rows.append(row)
        say(f"{w}x{h}: median {row['median_s']*1000:.0f} ms, peak {row['peak_mem_mb'] or 0:.0f} MB"
            + (f"; NOISY: {'; '.join(row['noise'])}" if row["noise"] else ""))
    report = {"info": info, "rows": rows}
    md = to_markdown(report)
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(md + "\n")
    return 0


def noise_reasons(row: dict, repeats: int) -> list[str]:
    """Why a row's timings are noise rather than the model's speed ([] when they look sound)."""
    out = []
    for name, key in (("model", "spread"), ("plain path", "plain_spread")):
        if row[key] > NOISY_SPREAD:
            out.append(f"{name} p10-p90 spread {row[key]:.0%} of the median (over {NOISY_SPREAD:.0%})")
    if row["end_to_end_median_s"] < row["p10_s"]:
        out.append("file to file faster than the model alone")
    if repeats < 5:
        out.append(f"{repeats} runs are too few for percentiles (use --repeats 5 or more)")
    return out


def to_markdown(report) -> str:
    i = report["info"]
    lines = [f"device: {i['device']} ({i.get('cpu', i['machine'])}, {i['threads']} threads, torch {i['torch']}), "
             f"encoder {i['encoder']}: {i['encoder_params'] / 1e6:.2f} M params frozen, decoder "
             f"{i['decoder_params'] / 1e6:.2f} M trained", "",
             "| size | median ms | p10 ms | p90 ms | images/s | plain path ms (speed-up) | file to file ms "
             "| folder ms/image | GFLOPs total | GFLOPs encoder | peak MB | default path ms (work size) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for r in report["rows"]:
        f = lambda v: f"{v / 1e9:.1f}" if v else "-"
        peak = f"{r['peak_mem_mb']:.0f}" if r["peak_mem_mb"] else "-"
        lines.append(f"| {r['size']} | {r['median_s']*1e3:.0f} | {r['p10_s']*1e3:.0f} | {r['p90_s']*1e3:.0f} | "
                     f"{r['images_per_s']:.2f} | {r['plain_median_s']*1e3:.0f} ({r['speedup_vs_plain']:.2f}x) | "
                     f"{r['end_to_end_median_s']*1e3:.0f} | {r['folder_s_per_image']*1e3:.0f} | {f(r['flops_total'])} | {f(r['flops_encoder'])} | {peak} | "
                     f"{r.get('default_median_s', r['median_s'])*1e3:.0f} |")
        if "warmup_runs_excluded" in r:
            notes.append(f"{r['size']}: {r['warmup_runs_excluded']} warm-up runs of each path excluded"
                         + (f"; NOISY, do not quote: {'; '.join(r['noise'])}" if r.get("noise") else ""))
    return "\n".join(lines + ([""] + notes if notes else []))
