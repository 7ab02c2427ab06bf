"""Save and load whole FCLIP-UNet models as safetensors checkpoints (decoder only + config)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import WeightsError
from ..weights import read_checkpoint, save_checkpoint
from .fclip_unet import FCLIPUNet, ModelConfig

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
DEFAULT_CHECKPOINT = PRETRAINED_DIR / "fclip-unet-default.safetensors"  # the light expert (v15)
HEAVY_CHECKPOINT = PRETRAINED_DIR / "fclip-unet-heavy.safetensors"  # the heavy expert
ROUTER_CHECKPOINT = PRETRAINED_DIR / "rain-router.safetensors"  # the rain-density head


def save_model(model: FCLIPUNet, path: str | os.PathLike, extra: dict | None = None, half: bool = False) -> Path:
    sd = model.trainable_state_dict()
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    meta = {"encoder": model.config.encoder, "encoder_sha256": model.encoder_digest(), **(extra or {})}
    return save_checkpoint(path, sd, model.config.to_dict(), meta)


def load_model(checkpoint: str | os.PathLike | None = None, device: str | torch.device = "cpu",
               verify_encoder: bool = True, **config_overrides) -> FCLIPUNet:
    """Rebuild the exact model a checkpoint was saved from (None: the shipped default model)."""
    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if checkpoint is None and not path.is_file():
        raise WeightsError(f"the default model is missing from this installation ({path}); "
                           "pass --checkpoint")
    tensors, cfg, meta = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict({**cfg, **config_overrides})
    except TypeError as e:
        raise WeightsError(f"{path}: model config does not fit this version ({e})") from None
    model = FCLIPUNet(config)
    if verify_encoder and meta.get("encoder_sha256") and config.encoder_weights != "random":
        digest = model.encoder_digest()
        if digest != meta["encoder_sha256"]:
            raise WeightsError(f"{path} was trained on different {config.encoder} encoder weights "
                               f"(sha256 {meta['encoder_sha256'][:12]}..., these are {digest[:12]}...)")
    model.load_trainable_state_dict(tensors)
    return model.eval().to(device)


def has_routed_default() -> bool:
    """Whether this installation holds the heavy expert and the router beside the default model."""
    return HEAVY_CHECKPOINT.is_file() and ROUTER_CHECKPOINT.is_file()


def load_routed(device: str | torch.device = "cpu", light=None, heavy=None, router=None):
    """The default model as users run it: the light and heavy experts behind one encoder, routed
    per image by the rain-density head (models/routing.py). Paths default to the shipped files."""
    from .routing import BAND, RainDensityHead, RoutedUNet
    light_m = load_model(light or DEFAULT_CHECKPOINT, "cpu")
    heavy_m = load_model(heavy or HEAVY_CHECKPOINT, "cpu")
    tensors, cfg, meta = read_checkpoint(router or ROUTER_CHECKPOINT)
    if cfg.get("kind") != "rain-density-head":
        raise WeightsError(f"{router or ROUTER_CHECKPOINT} is not a rain-density head (kind {cfg.get('kind')!r})")
    if meta.get("encoder_sha256") and meta["encoder_sha256"] != light_m.encoder_digest():
        raise WeightsError(f"{router or ROUTER_CHECKPOINT} was fitted on other encoder weights")
    head = RainDensityHead(int(cfg["dim"]))
    head.load_state_dict({k: v.float() for k, v in tensors.items()})
    band = tuple(json.loads(meta["band"])) if "band" in meta else BAND
    return RoutedUNet(light_m, heavy_m, head, band).eval().to(device)

