"""fclip-derain: FCLIP-UNet single-image and video deraining."""
__version__ = "0.1.0"

from .errors import FclipError

# Everything that needs torch loads on first use: `import fclip_derain` (and the command line's
# start) stays light, and the command line can set OpenMP's wait policy before torch loads OpenMP.
_LAZY = {"Derainer": ".inference", "derain_dataset": ".inference.jobs", "FCLIPUNet": ".models",
         "ModelConfig": ".models", "load_clip_resnet": ".models", "load_model": ".models", "save_model": ".models"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Derainer", "FCLIPUNet", "FclipError", "ModelConfig", "derain_dataset", "load_clip_resnet", "load_model", "save_model"]
