"""Device selection shared by training and inference (`--device auto|cpu|cuda|mps`)."""
from __future__ import annotations

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
