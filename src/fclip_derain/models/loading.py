"""Save and load whole FCLIP-UNet models as safetensors checkpoints (decoder only + config)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import WeightsError
from ..weights import read_checkpoint, save_checkpoint
from .fclip_unet import FCLIPUNet, ModelConfig

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
DEFAULT_CHECKPOINT = PRETRAINED_DIR / "fclip-unet-default.safetensors"


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
