"""FCLIP-UNet: frozen CLIP ResNet encoder taps -> ConvNeXt + UpDWBlock decoder, LDFPS on skips.

`block` picks the decoder unit: the paper's ConvNeXt + UpDWBlock ("convnext"), or units that run
faster on a CPU for the same quality ("res": dense 3x3 residual blocks + pixel-shuffle upsampling;
"naf": NAFNet blocks + pixel shuffle); docs/decoder-study.md compares them at equal training time.

Data flow (depth 4; DESIGN.md section 1):
    x -> pad -> [f1 (H/2), f2 (H/4), f3 (H/8), f4 (H/16)] = frozen encoder(x)
    training only: f_i <- f_i * (1 + sigma_i * N(0, 1))                         (LDFPS)
    y = proj(f4); for level i = 4..1: y = fuse_i(cat(up_i(blocks_i(y)), f_{i-1} or x))
    out = crop(x + head(out_blocks(y)))   (clamped to [0, 1] in eval mode)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, WeightsError
from .blocks import ConvNeXtBlock, NAFBlock, PlainUp, ResBlock, ShuffleUp, UpDWBlock
from .encoders import FrozenEncoder, get_spec

BLOCKS = {"convnext": ConvNeXtBlock, "res": ResBlock, "naf": NAFBlock}


@dataclass
class ModelConfig:
    """Every switch the paper ablates is a field (Tables 6, 8, 11). Paper-silent choices are
    marked "ours" and were picked to keep the decoder light (the method's point is speed)."""

    encoder: str = "clip-rn50"  # Table 6; see `fclip_derain.models.encoders.ENCODERS`
    encoder_weights: str | None = None  # None: the encoder's real weights; "random"; or a file (CLIP)
    depth: int = 4  # taps used: stem, layer1, layer2, layer3 (the paper's "first four layers")
    normalize_input: bool = True  # CLIP/ImageNet mean-std before the encoder (CLIPDenoising: no)
    # decoder widths, full resolution first then one per tap level (ours)
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    # ConvNeXt blocks per tap level, shallow to deep (ours), and at full resolution before the head
    blocks: tuple[int, ...] = (1, 1, 2, 2)
    out_blocks: int = 1
    block: str = "convnext"  # convnext (the paper's) | res | naf (ours, CPU-friendly)
    kernel_size: int = 7  # ConvNeXt depthwise kernel
    mlp_ratio: float = 4.0
    updw: bool = True  # Table 8: UpDWBlock, or plain interpolation + 1x1 conv
    upsample: str = "bilinear"  # bilinear | nearest | pixelshuffle (ours: bilinear)
    ldfps: bool = True  # Table 8
    ldfps_sigmas: tuple[float, ...] = (0.01, 0.03, 0.06, 0.1)  # Table 11, shallow -> deep
    ldfps_mode: str = "multiplicative"  # f*(1+s*n) as CLIPDenoising; or additive f+s*n
    global_residual: bool = True  # output = x + head(...)
    zero_init_head: bool = True  # with global_residual: start as the identity (output = input)

    def __post_init__(self):
        for f in ("widths", "blocks", "ldfps_sigmas"):
            setattr(self, f, tuple(getattr(self, f)))
        self.validate()

    def validate(self):
        spec = get_spec(self.encoder)
        def bad(key, why):
            raise ConfigError(f"model.{key}: {why} (got {getattr(self, key)!r})")
        if not 1 <= self.depth <= spec.max_depth:
            bad("depth", f"{self.encoder} has 1..{spec.max_depth} taps")
        if len(self.widths) != self.depth + 1 or min(self.widths) < 1:
            bad("widths", f"needs {self.depth + 1} positive widths (full resolution + one per tap)")
        if len(self.blocks) != self.depth or min(self.blocks) < 0:
            bad("blocks", f"needs {self.depth} non-negative block counts")
        if len(self.ldfps_sigmas) != self.depth or min(self.ldfps_sigmas) < 0:
            bad("ldfps_sigmas", f"needs {self.depth} non-negative sigmas")
        if self.ldfps_mode not in ("multiplicative", "additive"):
            bad("ldfps_mode", "must be multiplicative or additive")
        if self.block not in BLOCKS:
            bad("block", f"must be one of {', '.join(BLOCKS)}")
        if self.upsample not in ("bilinear", "nearest", "pixelshuffle"):
            bad("upsample", "must be bilinear, nearest or pixelshuffle")
        if self.out_blocks < 0 or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            bad("kernel_size" if self.out_blocks >= 0 else "out_blocks", "invalid value")
        # a switch the network does not read must not look like it changed something: a value
        # other than the default, where the other switches make it unused, is refused
        for key, why in self.unused().items():
            if getattr(self, key) != _DEFAULTS[key]:
                bad(key, f"{why}, so this setting would change nothing; remove it")

    def unused(self) -> dict[str, str]:
        """{field: why} for the fields this network ignores, given the other switches."""
        return _unused(self)

    def to_dict(self) -> dict:
        """The fields this network uses (a checkpoint's config holds what it is, nothing more)."""
        d = {k: v for k, v in asdict(self).items() if k not in self.unused()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """From a checkpoint's config. Older checkpoints record fields their network ignores
        (kernel 7, mlp 4, updw, bilinear for block res): those are dropped, not refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"model.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        drop = _unused(SimpleNamespace(**{**_DEFAULTS, **d}))
        return cls(**{k: v for k, v in d.items() if k not in drop})


_DEFAULTS = {f.name: f.default for f in fields(ModelConfig)}


def _unused(c) -> dict[str, str]:
    out = {}
    if c.block != "convnext":  # res and naf: fixed 3x3 units, pixel-shuffle upsampling
        for key in ("kernel_size", "mlp_ratio", "updw", "upsample"):
            out[key] = f"block {c.block} does not use it (only convnext does)"
    elif not c.updw and c.upsample == "pixelshuffle":
        out["upsample"] = "updw false interpolates (pixelshuffle would fall back to bilinear)"
    if not c.ldfps:
        out["ldfps_sigmas"] = out["ldfps_mode"] = "ldfps false adds no feature noise"
    if not c.global_residual:
        out["zero_init_head"] = "global_residual false has no identity to start from"
    return out


class FCLIPUNet(nn.Module):
    def __init__(self, config: ModelConfig | None = None, encoder: FrozenEncoder | None = None):
        super().__init__()
        cfg = self.config = config or ModelConfig()
        self.encoder = encoder or FrozenEncoder(cfg.encoder, cfg.encoder_weights, cfg.depth, cfg.normalize_input)
        ch, w, L = self.encoder.channels, cfg.widths, cfg.depth
        self.proj = nn.Conv2d(ch[L - 1], w[L], 1)
        self.levels = nn.ModuleList()
        block_cls = BLOCKS[cfg.block]
        up_cls = (UpDWBlock if cfg.updw else PlainUp) if cfg.block == "convnext" else ShuffleUp
        for i in range(L, 0, -1):  # deep -> shallow; level i works at width w[i], stride 2**i
            skip_ch = ch[i - 2] if i > 1 else 3
            self.levels.append(nn.ModuleDict({
                "blocks": nn.Sequential(*[block_cls(w[i], cfg.kernel_size, cfg.mlp_ratio)
                                          for _ in range(cfg.blocks[i - 1])]),
                "up": up_cls(w[i], w[i - 1], cfg.upsample),
                "fuse": nn.Conv2d(w[i - 1] + skip_ch, w[i - 1], 1),
            }))
        self.out_blocks = nn.Sequential(*[block_cls(w[0], cfg.kernel_size, cfg.mlp_ratio)
                                          for _ in range(cfg.out_blocks)])
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)
        if cfg.global_residual and cfg.zero_init_head:
            # start as the identity (output = input): training begins at the input's PSNR
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.pad_multiple = 2 ** L

    # ------------------------------------------------------------ forward

    def perturb(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """LDFPS: per-level feature noise on the skips, only while training."""
        if not (self.training and self.config.ldfps):
            return feats
        out = []
        for f, s in zip(feats, self.config.ldfps_sigmas):
            if s == 0:
                out.append(f)
                continue
            noise = torch.randn_like(f) * s
            out.append(f * (1 + noise) if self.config.ldfps_mode == "multiplicative" else f + noise)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) tensor, got {tuple(x.shape)}")
        xp = pad_to_multiple(x, self.pad_multiple)
        return self.decode(xp, self.perturb(self.encoder(xp)), *x.shape[-2:])

    def decode(self, xp: torch.Tensor, feats: list[torch.Tensor], h: int, w: int) -> torch.Tensor:
        """The decoder alone, on the padded input and its encoder taps (a routed model runs one
        encoder pass for two decoders: models/routing.py); crops back to h x w."""
        y = self.proj(feats[-1])
        for level, skip in zip(self.levels, [*reversed(feats[:-1]), xp]):
            y = level["up"](level["blocks"](y))
            y = level["fuse"](torch.cat([y, skip.to(y.dtype)], 1))
        y = self.head(self.out_blocks(y))
        if self.config.global_residual:
            y = xp + y
        y = y[..., :h, :w]
        # clamping in training would zero the gradient of out-of-range pixels
        return y if self.training else y.clamp(0, 1)

    # ------------------------------------------------------------ checkpoints

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen encoder (whose weights come from their own source)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def load_trainable_state_dict(self, sd: dict[str, torch.Tensor], strict: bool = True) -> list[str]:
        """Load decoder weights. strict=False takes only keys whose name and shape match and
        returns the names of this model's tensors left at their initial values."""
        own = self.trainable_state_dict()
        fits = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        if strict:
            for k, v in own.items():
                if k not in sd:
                    raise WeightsError(f"checkpoint is missing key {k!r}")
                if k not in fits:
                    raise WeightsError(f"checkpoint key {k!r} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}")
            extra = sorted(set(sd) - set(own))
            if extra:
                raise WeightsError(f"checkpoint has unexpected key {extra[0]!r}")
        elif not fits:
            raise WeightsError("checkpoint shares no tensor (name and shape) with this model")
        self.load_state_dict({**self.state_dict(), **{k: v.to(own[k].dtype) for k, v in fits.items()}})
        fresh = sorted(set(own) - set(fits))
        if fresh:  # only with strict=False; fits is never empty here
            self._fresh_blocks_start_as_identity(set(fresh))
        return fresh

    def _fresh_blocks_start_as_identity(self, fresh: set[str]):
        """Blocks added to a trained decoder (more blocks per level) start as the identity, so
        the grown network computes exactly the checkpoint's function at step 0 (NAF blocks
        already do: zero scales; ConvNeXt nearly: layer scale 1e-6)."""
        for name, module in self.named_modules():
            if not hasattr(module, "start_as_identity"):
                continue
            params = {f"{name}.{p}" for p, _ in module.named_parameters()}
            if params and params <= fresh:
                module.start_as_identity()

    def encoder_digest(self) -> str:
        """sha256 over the frozen encoder's published tensors: names the exact weights a decoder
        was trained on (taken when the encoder was built, so folding does not change it)."""
        return self.encoder.weights_digest


def pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = -h % m, -w % m
    if ph == 0 and pw == 0:
        return x
    # reflect needs the pad smaller than the side; tiny images fall back to edge replication
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
