"""CLIP's ModifiedResNet image encoder (RN50, RN101, RN50x4, RN50x16, RN50x64), written here.

Differences from torchvision's ResNet that matter for loading OpenAI weights exactly:
a 3-conv stem with an average pool, anti-aliased strides (avgpool before the strided conv),
and an attention-pooling head instead of global average pooling.

`load_clip_resnet(path_or_name)` reads every architecture hyper-parameter off the state dict,
so all CLIP ResNets load from the same code.
"""
from __future__ import annotations

import math
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError
from ..weights import cache_dir, download

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# OpenAI's published URLs; the folder name is the file's sha256.
CLIP_URLS = {
    "RN50": "https://openaipublic.azureedge.net/clip/models/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    "RN101": "https://openaipublic.azureedge.net/clip/models/8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt",
    "RN50x4": "https://openaipublic.azureedge.net/clip/models/7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt",
    "RN50x16": "https://openaipublic.azureedge.net/clip/models/52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt",
    "RN50x64": "https://openaipublic.azureedge.net/clip/models/be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt",
}


def url_sha256(url: str) -> str:
    return url.rstrip("/").split("/")[-2]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        # anti-aliased stride: average-pool, then stride-1 convs
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride > 1 or inplanes != out:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, out, 1, bias=False)),
                ("1", nn.BatchNorm2d(out)),
            ]))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(self.avgpool(y)))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(y + skip)


class AttentionPool2d(nn.Module):
    """Multi-head attention of the mean token over all spatial tokens (+ learned positions)."""

    def __init__(self, spatial: int, dim: int, heads: int, out_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial ** 2 + 1, dim) / dim ** 0.5)
        self.k_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.c_proj = nn.Linear(dim, out_dim)
        self.num_heads = heads

    def _positions(self, h: int, w: int) -> torch.Tensor:
        pos = self.positional_embedding
        n = int(round(math.sqrt(pos.shape[0] - 1)))
        if (h, w) == (n, n):
            return pos
        # other input sizes: resample the learned grid (exact at the native size)
        grid = pos[1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.float(), size=(h, w), mode="bicubic", align_corners=False).to(pos.dtype)
        return torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(h * w, -1)], 0)

    def forward(self, x):
        b, c, h, w = x.shape
        tokens = x.flatten(2).permute(2, 0, 1)  # (HW, B, C)
        tokens = torch.cat([tokens.mean(0, keepdim=True), tokens], 0)
        tokens = tokens + self._positions(h, w)[:, None, :].to(tokens.dtype)
        out, _ = F.multi_head_attention_forward(
            query=tokens[:1], key=tokens, value=tokens, embed_dim_to_check=c,
            num_heads=self.num_heads, q_proj_weight=self.q_proj.weight,
            k_proj_weight=self.k_proj.weight, v_proj_weight=self.v_proj.weight,
            in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=False, need_weights=False)
        return out.squeeze(0)


class ModifiedResNet(nn.Module):
    """CLIP's image tower. `features(x, depth)` returns [stem, layer1, ..., layer{depth-1}]."""

    def __init__(self, layers=(3, 4, 6, 3), width=64, heads=32, output_dim=1024, input_resolution=224):
        super().__init__()
        self.layers_cfg = tuple(layers)
        self.width = width
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        inplanes = width
        for i, (n, mult, stride) in enumerate(zip(layers, (1, 2, 4, 8), (1, 2, 2, 2)), start=1):
            blocks = [Bottleneck(inplanes, width * mult, stride)]
            inplanes = width * mult * Bottleneck.expansion
            blocks += [Bottleneck(inplanes, width * mult) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)

    @property
    def channels(self) -> list[int]:
        w = self.width
        return [w, w * 4, w * 8, w * 16, w * 32]

    @property
    def dtype(self):
        return self.conv1.weight.dtype

    def stem(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.bn3(self.conv3(x)))

    def features(self, x, depth: int = 5) -> list[torch.Tensor]:
        """Tap outputs, shallow to deep; only the first `depth` stages are run."""
        x = x.to(self.dtype)
        feats = [self.stem(x)]
        y = self.avgpool(feats[0])
        for i in range(1, depth):
            y = getattr(self, f"layer{i}")(y)
            feats.append(y)
        return feats

    def truncate(self, depth: int) -> None:
        """Drop the stages a `depth`-tap encoder never runs (and the attention pool)."""
        for i in range(max(depth, 1), 5):
            setattr(self, f"layer{i}", nn.Identity())
        if depth < 5:
            self.attnpool = nn.Identity()

    def forward(self, x):
        """Equals CLIP's `encode_image(x)` (attention pooling included)."""
        return self.attnpool(self.features(x, 5)[-1])


# ---------------------------------------------------------------- loading

def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def _read_state_dict(path: Path) -> dict:
    """OpenAI TorchScript archive, plain state dict, or open_clip checkpoint -> flat state dict."""
    try:
        if _is_torchscript(path):
            # OpenAI publishes TorchScript archives (code + tensors). torch.jit.load runs
            # TorchScript, not arbitrary Python, and we keep only the tensors.
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint or TorchScript archive "
                           f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # open_clip / lightning style
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path}: does not contain a state dict")
    return dict(obj)


def visual_state_dict(sd: dict) -> dict:
    """Strip `module.` (DDP) and `visual.` prefixes; keep only the image tower's tensors."""
    sd = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}
    if any(k.startswith("visual.") for k in sd):
        sd = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    return sd


def build_from_state_dict(sd: dict) -> ModifiedResNet:
    """Infer widths/depths/heads/output size off the tensors, build, load strictly."""
    sd = visual_state_dict(sd)
    try:
        width = sd["layer1.0.conv1.weight"].shape[0]
        layers = tuple(len({k.split(".")[1] for k in sd if k.startswith(f"layer{b}.")}) for b in (1, 2, 3, 4))
        grid = round((sd["attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        output_dim = sd["attnpool.c_proj.weight"].shape[0]
    except KeyError as e:
        raise WeightsError(f"not a CLIP ResNet image encoder state dict: missing key {e.args[0]!r}") from None
    if 0 in layers:
        raise WeightsError(f"not a CLIP ResNet state dict: stage depths {layers}")
    model = ModifiedResNet(layers, width, heads=width * 32 // 64, output_dim=output_dim,
                           input_resolution=grid * 32)
    load_exact(model, sd)
    return model


def load_exact(model: nn.Module, sd: dict) -> None:
    """Load all tensors or fail naming the first key that is missing, unexpected or mis-shaped."""
    # BatchNorm's step counter carries no weights; OpenAI/Keras files may or may not have it
    skip = "num_batches_tracked"
    own = {k: v for k, v in model.state_dict().items() if not k.endswith(skip)}
    sd = {k: v for k, v in sd.items() if not k.endswith(skip)}
    for k, v in own.items():
        if k not in sd:
            raise WeightsError(f"checkpoint is missing key {k!r} (expected shape {tuple(v.shape)})")
        if tuple(sd[k].shape) != tuple(v.shape):
            raise WeightsError(f"checkpoint key {k!r} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}")
    extra = [k for k in sd if k not in own]
    if extra:
        raise WeightsError(f"checkpoint has unexpected key {extra[0]!r} ({len(extra)} unexpected keys)")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(sd[k].to(v.dtype))


def resolve_clip_weights(path_or_name: str | os.PathLike, allow_download: bool = True) -> Path:
    """A file path as is; a model name (RN50, ...) from the cache dir, else downloaded."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    name = str(path_or_name)
    if name not in CLIP_URLS:
        raise WeightsError(f"{name!r} is neither a file nor a CLIP ResNet name ({', '.join(CLIP_URLS)})")
    url = CLIP_URLS[name]
    dest = cache_dir() / "clip" / f"{name}.pt"
    if dest.is_file():
        return dest
    if not allow_download or os.environ.get("FCLIP_DERAIN_OFFLINE"):
        raise WeightsError(f"CLIP {name} weights not found: place OpenAI's {name}.pt (from {url}) at {dest}")
    try:
        return download(url, dest, sha256=url_sha256(url))
    except WeightsError as e:
        raise WeightsError(f"{e}. Offline? Place OpenAI's {name}.pt at {dest}") from None


def load_clip_resnet(path_or_name: str | os.PathLike, allow_download: bool = True) -> ModifiedResNet:
    """Load a CLIP ResNet image encoder in float32, eval mode."""
    path = resolve_clip_weights(path_or_name, allow_download)
    model = build_from_state_dict(_read_state_dict(path))
    return model.float().eval()
