"""`Derainer`: the Python API for deraining PIL images, NumPy arrays and torch tensors."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.io import quantize
from ..devices import fast_half, pick_device
from ..errors import FclipError
from ..models.loading import has_routed_default, load_model, load_routed
from ..models.routing import RoutedUNet, route_name
from ..options import ENSEMBLE_FLIPS, WORK_SIZE, check_ensemble, check_rain, check_work_size
from .tiling import tiled_forward

# Peak working memory of the default model per input pixel in fp32, measured with
# `python benchmarks/large_image.py` (peak RSS growth / pixels: 569, rounded up); a tile is sized so
# that it needs at most half the memory that is free when the image arrives.
BYTES_PER_PIXEL = 600
MIN_TILE, MAX_TILE = 256, 2048


class Derainer:
    """Remove rain from images.

    >>> from fclip_derain import Derainer
    >>> d = Derainer()                      # the shipped default model, best device
    >>> clean = d.derain(Image.open("rainy.jpg"))   # PIL in -> PIL out

    Images larger than `work_size` (long side, default 640 px) are derained at that size and the
    removed rain is upsampled back (docs/work-size.md); `work_size=None` derains at full size.
    `ensemble=2` or `4` averages the model over that many mirrored copies of the image (flips, no
    turns: the model learnt upright rain), for higher scores at 2x or 4x the time.

    The default model is two experts behind one frozen encoder, light and heavy rain, and a head
    that picks per image (models/routing.py); `rain="light"` or `"heavy"` forces one. `routes`
    counts the choices made so far ({"light": n, "heavy": n, "blend": n}), `last_routes` lists
    those of the last call, one per image.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, device: str = "auto", half: bool | None = None,
                 tile: int | None = None, tile_overlap: int = 32, model=None, channels_last: bool = True,
                 fold_bn: bool = True, work_size: int | None = WORK_SIZE, ensemble: int = 1,
                 rain: str = "auto"):
        check_work_size(work_size)
        check_ensemble(ensemble)
        routed = isinstance(model, RoutedUNet) or (model is None and checkpoint is None and has_routed_default())
        check_rain(rain, routed)
        self.work_size, self.ensemble, self.rain = work_size, ensemble, rain
        self.routes, self.last_routes = {"light": 0, "heavy": 0, "blend": 0}, []
        self.device = pick_device(device)
        if model is not None:
            self.model = model.to(self.device).eval()  # the caller's model: not modified beyond layout
        else:
            self.model = load_routed(self.device) if routed else load_model(checkpoint, self.device)
            if fold_bn:
                # one pass less per encoder conv: 1.07-1.11x at 1920x1080 (docs/performance.md), outputs within 1e-6
                self.model.encoder.fold_batchnorm()
        # NHWC suits the ConvNeXt blocks (LayerNorm/Linear act on channels: no permute copies)
        # and oneDNN's depthwise kernels: 1.35-1.7x faster on CPU at the same numerics (docs/performance.md;
        # torch.compile and oneDNN's fused Linear+GELU measured no faster on top of it, so they are not used)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.dtype = None
        if half is None:
            # automatic: reduced precision where it is the faster path (CUDA, bf16-capable CPUs); the default
            # model's Rain100L score moves by less than AUTO_HALF_MAX_DB_CHANGE in bf16 (model card)
            half = fast_half(self.device)
        self.half = bool(half)
        if half:
            if self.device.type == "cuda":
                self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            elif self.device.type == "cpu":
                self.dtype = torch.bfloat16
            else:
                self.dtype = torch.float16
        self.tile, self.tile_overlap = tile, tile_overlap
        self.routed = isinstance(self.model, RoutedUNet)
        if self.routed:
            self.model.mode = rain

    def _tile_for(self, b: int, h: int, w: int) -> int | None:
        if self.tile:
            return self.tile
        bpp = BYTES_PER_PIXEL // (2 if self.dtype is not None else 1)
        budget = free_memory_bytes(self.device) // 2
        if b * h * w * bpp <= budget:
            return None
        side = int((budget / (b * bpp)) ** 0.5) // 64 * 64
        return max(MIN_TILE, min(MAX_TILE, side))

    @torch.inference_mode()
    def derain_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> same shape, on the input's device and dtype."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise FclipError(f"expected a (B, 3, H, W) tensor, got {tuple(x.shape)}")
        src_device, src_dtype = x.device, x.dtype
        xin = x.to(self.device, torch.float32).contiguous(memory_format=self.memory_format)
        h, w = xin.shape[-2:]
        if self.work_size and max(h, w) > self.work_size:
            k = self.work_size / max(h, w)
            size = (max(1, round(h * k)), max(1, round(w * k)))
            small = F.interpolate(xin, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
            rain = small - self._forward(small.contiguous(memory_format=self.memory_format))
            y = xin - F.interpolate(rain, size=(h, w), mode="bicubic", align_corners=False)
        else:
            y = self._forward(xin)
        return y.clamp(0, 1).to(src_device, src_dtype if src_dtype.is_floating_point else torch.float32)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        tile = self._tile_for(x.shape[0], *x.shape[-2:])
        model, weight = self.model, None
        if self.routed and (tile or self.ensemble > 1):
            # decided once on the whole image: its tiles and mirrored copies share one expert
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                weight = self.model.heavy_weight(x)
            model = lambda t: self.model(t, weight)  # noqa: E731
        y = 0
        for dims in ENSEMBLE_FLIPS[self.ensemble]:  # mirrored copies only: rain stays upright
            xi = x.flip(dims).contiguous(memory_format=self.memory_format) if dims else x
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                yi = tiled_forward(model, xi, tile, self.tile_overlap) if tile else model(xi)
            y = y + (yi.float().flip(dims) if dims else yi.float())
        if self.routed:
            self.last_routes = [route_name(float(w)) for w in self.model.last_weights]
            for r in self.last_routes:
                self.routes[r] += 1
        return y / len(ENSEMBLE_FLIPS[self.ensemble])

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

    def derain_batch(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Several HxWx3 arrays of one size and dtype in one forward pass (fills a GPU better)."""
        if len({(a.shape, a.dtype) for a in arrays}) > 1:
            raise FclipError("derain_batch needs arrays of one shape and dtype")
        x = torch.cat([_array_to_tensor(a) for a in arrays])
        y = self.derain_tensor(x)
        return [_tensor_to_array(y[i:i + 1], a) for i, a in enumerate(arrays)]

    def derain_stream(self, frames, per_frame: bool = False, radius: int = 2):
        """Derain one clip: an iterable of frames in order (HxWx3 uint8 arrays or PIL images) ->
        a generator of the derained frames in order, each of its input's type. Each frame is
        fused with its neighbours up to `radius` frames away, aligned by optical flow, so rain
        that one frame leaves is removed where other frames saw the scene without it
        (inference/temporal.py, docs/video.md); at most 2 radius + 1 frames are held at a time.
        `per_frame=True`: each frame alone, as `derain`."""
        from .temporal import derain_frames
        return derain_frames(self, frames, per_frame=per_frame, radius=radius)

    def _derain_array(self, a: np.ndarray) -> np.ndarray:
        return _tensor_to_array(self.derain_tensor(_array_to_tensor(a)), a)


def _array_to_tensor(a: np.ndarray) -> torch.Tensor:
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise FclipError(f"expected an HxWx3 image array, got shape {a.shape}")
    if a.dtype != np.uint8 and not np.issubdtype(a.dtype, np.floating):
        raise FclipError(f"image arrays must be uint8 or float in [0, 1], got {a.dtype}")
    x = torch.from_numpy(np.array(a[..., :3], copy=True)).permute(2, 0, 1)[None].float()
    return x / 255 if a.dtype == np.uint8 else x


def _tensor_to_array(y: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> an array of `like`'s dtype and layout. Grey stays grey: the
    model sees the grey image in all three channels and its output's channel mean is written
    (no colour cast can appear in a one-channel image)."""
    y = y[0].permute(1, 2, 0).numpy()
    if like.ndim == 2:
        y = y.mean(2)
    return quantize(y) if like.dtype == np.uint8 else y.astype(like.dtype)


def free_memory_bytes(device: torch.device) -> int:
    """Memory an image may use now: free GPU memory, or MemAvailable on Linux (else 4 GiB)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2 ** 30
