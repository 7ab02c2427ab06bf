from .derainer import Derainer
from .tiling import tiled_forward

__all__ = ["Derainer", "tiled_forward"]
