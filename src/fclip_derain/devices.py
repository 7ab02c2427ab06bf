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
