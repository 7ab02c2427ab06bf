"""Where weights come from: the cache dir, verified downloads, checkpoints.

Checkpoints are a single safetensors file: the trainable (decoder) tensors plus, in the
safetensors metadata, the model config as JSON and the frozen encoder's name and weight sha256.
The encoder's own weights are never duplicated into it (they come from their package / cache).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from pathlib import Path

from .data.io import atomic_write
from .errors import WeightsError

CHECKPOINT_FORMAT = "fclip-derain/1"


def cache_dir() -> Path:
    """`$FCLIP_DERAIN_HOME`, default `~/.cache/fclip-derain`."""
    root = os.environ.get("FCLIP_DERAIN_HOME") or os.path.join(Path.home(), ".cache", "fclip-derain")
    return Path(root)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, progress: bool = True) -> Path:
    """Download `url` to `dest`, verifying `sha256`; atomic, so a failure leaves no file."""
    dest = Path(dest)

    def fetch(tmp: Path) -> None:
        h = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as out:
                total = int(r.headers.get("Content-Length") or 0) or None
                bar = _progress(total, f"downloading {dest.name}", progress)
                while block := r.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
                bar.close()
        except OSError as e:
            raise WeightsError(f"could not download {url}: {e}") from None
        if sha256 and h.hexdigest() != sha256:
            raise WeightsError(
                f"sha256 mismatch for {url}: expected {sha256}, got {h.hexdigest()}; "
                "the download was discarded")

    return atomic_write(dest, fetch)


def _progress(total, desc, enabled):
    from .progress import progress_bar
    return progress_bar(total=total, desc=desc, unit="B", enabled=enabled, unit_scale=True)


# ---------------------------------------------------------------- checkpoints (safetensors)

def save_checkpoint(path: str | os.PathLike, tensors: dict, config: dict, extra: dict | None = None) -> Path:
    """Write trainable tensors + model config (JSON in the safetensors metadata), atomically."""
    from safetensors.torch import save_file

    meta = {"format": CHECKPOINT_FORMAT, "config": json.dumps(config, sort_keys=True)}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta["tensors_sha256"] = tensors_digest(tensors)
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """Return (tensors, config, metadata). Refuses anything that is not one of our safetensors files."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for a bad header / truncated file
        raise WeightsError(f"{path} is not a valid safetensors checkpoint ({e})") from None
    if meta.get("format") != CHECKPOINT_FORMAT or "config" not in meta:
        raise WeightsError(f"{path} is a safetensors file but not an fclip-derain checkpoint "
                           f"(metadata format={meta.get('format')!r})")
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError as e:
        raise WeightsError(f"{path}: the model config in its metadata is not valid JSON ({e})") from None
    # catches corruption and edits of the values (safetensors itself only checks the layout);
    # files written before the digest existed have none and are read as they are
    if "tensors_sha256" in meta and tensors_digest(tensors) != meta["tensors_sha256"]:
        raise WeightsError(f"{path}: the weights do not match the checksum stored in the file "
                           "(corrupted or modified); refusing to load it")
    return tensors, config, meta


def tensors_digest(tensors: dict) -> str:
    """sha256 over names, dtypes, shapes and bytes of the tensors, in name order."""
    import torch
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous().cpu()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def copy_into_cache(src: str | os.PathLike, name: str) -> Path:
    """Place a user-provided weights file in the cache (atomic copy)."""
    return atomic_write(cache_dir() / name, lambda tmp: shutil.copyfile(src, tmp))
