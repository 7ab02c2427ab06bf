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
    """Whether reduced precision is the faster path on this device: CUDA GPUs, and CPUs with AMX
    tile units for bf16 (Sapphire Rapids and later). On AVX2/AVX-512 CPUs without AMX bf16
    convolutions are slower than fp32 (docs/performance.md), so fp32 stays."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        return "amx_bf16" in cpu_flags()
    return False
