"""`Derainer`: the Python API for deraining PIL images, NumPy arrays and torch tensors."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from ..devices import pick_device
from ..errors import FclipError
from ..models.loading import load_model
from .tiling import tiled_forward

# above this many pixels an image is processed in tiles (bounded memory, see benchmarks/)
AUTO_TILE_PIXELS = {"cpu": 2_500_000, "cuda": 8_000_000, "mps": 4_000_000}
DEFAULT_TILE = 1024


class Derainer:
    """Remove rain from images.

    >>> from fclip_derain import Derainer
    >>> d = Derainer()                      # the shipped default model, best device
    >>> clean = d.derain(Image.open("rainy.jpg"))   # PIL in -> PIL out
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str = "auto", half: bool = False,
                 tile: int | None = None, tile_overlap: int = 32, model=None):
        self.device = pick_device(device)
        self.model = model.to(self.device).eval() if model is not None else load_model(checkpoint, self.device)
        self.dtype = None
        if half:
            if self.device.type == "cuda":
                self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            elif self.device.type == "cpu":
                self.dtype = torch.bfloat16
            else:
                self.dtype = torch.float16
        self.tile, self.tile_overlap = tile, tile_overlap

    def _tile_for(self, h: int, w: int) -> int | None:
        if self.tile:
            return self.tile
        if h * w > AUTO_TILE_PIXELS.get(self.device.type, 2_500_000):
            return DEFAULT_TILE
        return None

    @torch.inference_mode()
    def derain_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> same shape, on the input's device and dtype."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise FclipError(f"expected a (B, 3, H, W) tensor, got {tuple(x.shape)}")
        src_device, src_dtype = x.device, x.dtype
        xin = x.to(self.device, torch.float32)
        run = self.model
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            tile = self._tile_for(*x.shape[-2:])
            y = tiled_forward(run, xin, tile, self.tile_overlap) if tile else run(xin)
        return y.float().clamp(0, 1).to(src_device, src_dtype if src_dtype.is_floating_point else torch.float32)

    def derain(self, image):
        """PIL image -> PIL image; HxWx3 (or HxW) uint8/float array -> same; CHW/BCHW tensor -> same."""
        if isinstance(image, Image.Image):
            from ..data.io import _to_rgb
            arr = np.asarray(_to_rgb(image))
            return Image.fromarray(self.derain(arr))
        if isinstance(image, np.ndarray):
            return self._derain_array(image)
        if isinstance(image, torch.Tensor):
            if image.ndim == 3:
                return self.derain_tensor(image[None])[0]
            return self.derain_tensor(image)
        raise FclipError(f"derain() takes a PIL image, NumPy array or torch tensor, not {type(image).__name__}")

    def _derain_array(self, a: np.ndarray) -> np.ndarray:
        gray = a.ndim == 2
        if gray:
            a = np.repeat(a[..., None], 3, axis=2)
        if a.ndim != 3 or a.shape[2] not in (3, 4):
            raise FclipError(f"expected an HxWx3 image array, got shape {a.shape}")
        a = a[..., :3]
        is_int = a.dtype == np.uint8
        if not is_int and not np.issubdtype(a.dtype, np.floating):
            raise FclipError(f"image arrays must be uint8 or float in [0, 1], got {a.dtype}")
        x = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float()
        if is_int:
            x = x / 255
        y = self.derain_tensor(x)[0].permute(1, 2, 0).numpy()
        if is_int:
            y = (y * 255 + 0.5).astype(np.uint8)
        else:
            y = y.astype(a.dtype)
        return y[..., 0] if gray else y
