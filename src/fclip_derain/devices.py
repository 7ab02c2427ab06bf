"""Device selection shared by training and inference (`--device auto|cpu|cuda|mps`), and CPU threads
(`--threads N|auto`)."""
from __future__ import annotations

import os
import time

import torch

from .errors import FclipError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FclipError(f"--device {name}: CUDA is not available on this machine")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FclipError("--device mps: MPS is not available on this machine")
    return torch.device(name)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def fast_half(device: torch.device) -> bool:
    """Whether reduced precision is the faster path on this device: CUDA GPUs, and CPUs with bf16
    instructions: AMX tiles (Sapphire Rapids and later) or AVX512_BF16 (Cooper Lake, AMD Zen 4
    and later; the default model ran 2.0x faster in bf16 on a Zen 4 EPYC, docs/performance.md).
    On AVX2 and on AVX-512 CPUs without bf16 instructions oneDNN emulates bf16 and convolutions
    are slower than fp32, so fp32 stays."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return bool(BF16_CPU_FLAGS & cpu_flags())
    return False


# /proc/cpuinfo flags of CPUs that run bf16 convolutions natively
BF16_CPU_FLAGS = {"amx_bf16", "avx512_bf16"}


# ---------------------------------------------------------------- CPU threads

def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_cores(sample_s: float = 0.2) -> float | None:
    """Cores kept busy by other programs: /proc/stat sampled over `sample_s` seconds (Linux), minus
    what this process used meanwhile; the 1-minute load average elsewhere; None if neither exists."""
    def snapshot():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
        return sum(v[:8]) - idle, sum(v[:8])

    try:
        (b0, t0), own0 = snapshot(), time.process_time()
        time.sleep(sample_s)
        (b1, t1), own1 = snapshot(), time.process_time()
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    ncpu = os.cpu_count() or 1
    busy = (b1 - b0) / max(1, t1 - t0) * ncpu - (own1 - own0) / max(1e-3, (t1 - t0) / ticks / ncpu)
    return max(0.0, busy)


def auto_threads() -> int:
    """CPU threads for the model when the user gives none: the cores no other program is using now.

    OpenMP's threads wait for one another after every layer; a thread that shares its core with
    another busy program is descheduled for whole time slices, and all the others wait with it: with
    one of two cores busy, two threads ran 4-6x slower than one (docs/performance.md, "Threads under
    load", `python benchmarks/threads_under_load.py`). An explicit OMP_NUM_THREADS is the user's choice
    and is kept."""
    if os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cores = usable_cores()
    busy = busy_cores()
    if busy is None:
        return cores
    return max(1, min(cores, round((os.cpu_count() or cores) - busy)))


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads: `threads`, or `auto_threads()` when None; -> the number set."""
    n = threads or auto_threads()
    torch.set_num_threads(n)
    return n
