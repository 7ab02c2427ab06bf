"""`fclip-derain derain` on a folder of photos, idle and beside a competing load, per thread setting.

    python benchmarks/threads_under_load.py [--images 8] [--rounds 3] [--loads 0,1] [--json F]

Each setting runs the real command (`fclip-derain derain DIR -o OUT -q ...`, start-up included)
on the first `--images` photos of real-rain; a competing load is N processes spinning on the CPU at
this script's priority, started before the command and stopped after it. Rounds interleave settings
and loads, so drifts in the machine's state hit them alike. Settings:

- default: no flag, what a user gets (free cores, passive wait);
- free cores: `--threads auto`, the cores no other program is busy on when the command starts;
- all cores: `--threads <cores>`, what torch does by default;
- spinning / passive wait: OpenMP's own default (GOMP_SPINCOUNT=300000: a waiting thread spins,
  then sleeps) or OMP_WAIT_POLICY=PASSIVE (it sleeps at once, the command line's default);
- 1 thread: `--threads 1`;
- files split: <cores> commands at once with `--threads 1`, each on its share of the photos.

Outputs of every setting are compared byte for byte with the first one's.
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fclip_derain.benchmark import cpu_model
from fclip_derain.devices import usable_cores

PHOTOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real-rain"
SPIN = "while True: pass"


REFERENCE = "1 thread (--threads 1)"  # ratios are taken to it within each round


def settings(cores: int) -> dict:
    """name -> (flags, environment, commands at once)."""
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}
    spin = {"GOMP_SPINCOUNT": "300000"}  # OpenMP's (libgomp's) own default: spin, then sleep
    return {"default (no flag)": ([], {}, 1),
            "free cores, spinning wait": (["--threads", "auto"], spin, 1),
            "free cores, passive wait": (["--threads", "auto"], passive, 1),
            f"all cores (--threads {cores}), spinning wait: torch's default": (["--threads", str(cores)], spin, 1),
            f"all cores (--threads {cores}), passive wait": (["--threads", str(cores)], passive, 1),
            REFERENCE: (["--threads", "1"], spin, 1),
            f"files split: {cores} commands x --threads 1": (["--threads", "1"], spin, cores)}


def run_setting(photos: list[Path], out: Path, flags, env_extra, procs: int) -> float:
    """Wall seconds for the whole job: `procs` commands, each on every procs-th photo."""
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(env_extra)
    dirs = []
    for k in range(procs):
        d = out.parent / f"{out.name}-in{k}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for p in photos[k::procs]:
            os.symlink(p.resolve(), d / p.name)
        dirs.append(d)
    t = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-m", "fclip_derain", "derain", str(d), "-o", str(out), "-q",
                                 *flags], env=env) for d in dirs]
    codes = [p.wait() for p in running]
    dt = time.perf_counter() - t
    for d in dirs:
        shutil.rmtree(d)
    if any(codes):
        raise SystemExit(f"derain failed ({codes}) with {flags} {env_extra}")
    return dt


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--loads", default="0,1", help="competing spinning processes, comma-separated")
    ap.add_argument("--note", default="", help="what else the machine ran (recorded in the JSON)")
    ap.add_argument("--json")
    args = ap.parse_args()
    photos = sorted(PHOTOS.glob("*.png"))[:args.images]
    cores = usable_cores()
    loads = [int(v) for v in args.loads.split(",")]
    table = settings(cores)
    times = {ld: {name: [] for name in table} for ld in loads}
    ref, same = None, True
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        for r in range(args.rounds):
            for ld in loads:
                spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(ld)]
                try:
                    time.sleep(1.0)
                    names = list(table)
                    for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
                        dt = run_setting(photos, out, *table[name])
                        times[ld][name].append(dt)
                        d = digest(out)
                        ref = ref or d
                        same = same and d == ref
                        print(f"round {r + 1}, load {ld}: {name}: {dt:.1f} s", flush=True)
                finally:
                    for s in spinners:
                        s.kill()
                        s.wait()
    rows = {}
    for name in table:
        row = {f"load_{ld}_median_s": statistics.median(times[ld][name]) for ld in loads}
        row.update({f"load_{ld}_s": times[ld][name] for ld in loads})
        # the machine's state drifts between rounds; a ratio within a round does not
        row.update({f"load_{ld}_x_{REFERENCE.split(' (')[0].replace(' ', '_')}": statistics.median(
            [t / r for t, r in zip(times[ld][name], times[ld][REFERENCE])]) for ld in loads})
        rows[name] = row
    report = {"cpu": cpu_model(), "cores": cores, "images": len(photos), "rounds": args.rounds, "loads": loads,
              "note": args.note, "outputs_identical": same, "settings": rows,
              "command": "python benchmarks/threads_under_load.py " + " ".join(sys.argv[1:])}
    ref = REFERENCE.split(" (")[0].replace(" ", "_")
    head = "| setting | " + " | ".join(f"{ld} competing: median s (time / 1 thread's, same round)" for ld in loads)
    print("\n" + head + " |\n|---|" + "---|" * len(loads))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[f'load_{ld}_median_s']:.1f} ({row[f'load_{ld}_x_{ref}']:.2f})"
                                          for ld in loads) + " |")
    print(f"outputs identical across settings: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
