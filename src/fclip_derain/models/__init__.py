from .clip_resnet import ModifiedResNet, load_clip_resnet
from .encoders import ENCODERS, FrozenEncoder
from .fclip_unet import FCLIPUNet, ModelConfig
from .loading import load_model, save_model

__all__ = ["ENCODERS", "FCLIPUNet", "FrozenEncoder", "ModelConfig", "ModifiedResNet",
           "load_clip_resnet", "load_model", "save_model"]
