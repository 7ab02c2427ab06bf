"""fclip-derain: FCLIP-UNet single-image and video deraining."""
__version__ = "0.1.0"

from .errors import FclipError
from .models import FCLIPUNet, ModelConfig, load_clip_resnet, load_model, save_model


def __getattr__(name):
    # keep `import fclip_derain` light: the inference API loads on first use
    if name == "Derainer":
        from .inference import Derainer
        return Derainer
    if name == "derain_dataset":
        from .inference.jobs import derain_dataset
        return derain_dataset
    raise AttributeError(name)


__all__ = ["Derainer", "FCLIPUNet", "FclipError", "ModelConfig", "derain_dataset", "load_clip_resnet", "load_model", "save_model"]
