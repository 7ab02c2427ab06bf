"""Typed training configuration: YAML file + `--set key.sub=value` overrides, validated.

Unknown keys and bad values are `ConfigError`s naming the key (e.g. `train.lr`). The resolved
config is written beside every run as `config.yaml`.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..data.datasets import NO_RAIN, ROTATIONS
from ..data.synth import preset_params
from ..errors import ConfigError
from ..losses import PIXEL_LOSSES
from ..models.fclip_unet import ModelConfig


@dataclass
class SourceConfig:
    """One training data source. kind=paired: `root` (input/+target/ or rain/+norain/) or
    `input` + `target` folders. kind=synthetic: rain rendered on the fly over `clean` photos
    (preset `none`: no rain, the photo is input and target). kind=transplant: the rain layers of
    the pairs (`root`, or `input` + `target`) composited over the `clean` photos
    (data/transplant.py; `rain:` takes its fields: layers, gain, mirror)."""
    kind: str = "paired"
    root: str | None = None
    input: str | None = None
    target: str | None = None
    clean: str | None = None
    preset: str = "light"
    # kind=synthetic: renderer fields that replace the preset's, e.g. {density_near: [0.001, 0.004]}
    rain: dict = field(default_factory=dict)
    weight: float = 1.0


@dataclass
class ValKindConfig:
    """One synthetic validation set: a rain kind rendered with a fixed seed over the backgrounds
    held out from training (those of the held-out pairs), scored on its own."""
    name: str = ""
    preset: str = "light"
    rain: dict = field(default_factory=dict)
    seed: int = 0


@dataclass
class ValPairsConfig:
    """A folder of validation pairs scored as its own kind (e.g. `heavy`: RainTrainH-20/val)."""
    name: str = ""
    root: str | None = None
    input: str | None = None
    target: str | None = None


@dataclass
class DataConfig:
    train: list[SourceConfig] = field(default_factory=list)
    # validation pairs held out from the first paired source (never Rain100L / Rain12)
    val_holdout: int = 20
    val_every: int = 500
    val_max_images: int = 20
    # synthetic validation sets over the held-out backgrounds, one per rain kind (issue 35); with
    # any, val_psnr (what picks `best`) is the mean over the kinds with rain, the held-out pairs
    # counted as the kind `pairs`, and the rain-free kind (preset none) is reported beside it
    val_synthetic: list[ValKindConfig] = field(default_factory=list)
    # explicit validation pairs, each its own kind (issue 46: the 5 pairs of Rain100H's generator)
    val_pairs: list[ValPairsConfig] = field(default_factory=list)
    # the kinds whose mean is val_psnr (what picks `best`); empty: every kind with rain
    select: list[str] = field(default_factory=list)
    # background file stems kept out of every training source (paired targets, clean photos):
    # the backgrounds of validation pairs that are not held out from a training source
    exclude: list[str] = field(default_factory=list)
    patch_size: int = 128
    # progressive patches: [[from_iteration, patch_size], ...] (overrides patch_size from then on)
    progressive: list[list[int]] = field(default_factory=list)
    batch_size: int = 8
    flips: bool = True
    # true (or "any"): quarter turns, which also turn the rain sideways; "upright": half turns
    # only, so streaks stay near vertical as in every test set and real photo; false: none
    rotations: bool | str = True
    workers: int = 0


@dataclass
class LossConfig:
    pixel: str = "l1"  # Table 9: l1 | mse; or charbonnier (ours)
    perceptual_weight: float = 1.0  # Table 10: lambda_p
    perceptual_layers: list[str] = field(default_factory=lambda: ["relu1_2", "relu2_2", "relu3_3"])
    # lambda_s of a (1 - SSIM) term on luma, the SSIM the test sets are scored with (0: off)
    ssim_weight: float = 0.0
    # lambda_b of |mean luma(output) - mean luma(target)| per image (0: off): holds brightness
    brightness_weight: float = 0.0


@dataclass
class OptimConfig:
    iterations: int = 100_000
    lr: float = 2e-4
    min_lr: float = 1e-6
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup: int = 1000
    # cosine: warm-up, then cosine to min_lr. wsd (warmup-stable-decay): warm-up, a constant rate,
    # then a decay to min_lr over the last `decay` fraction of the run; the weights reached when the
    # decay starts are saved as stable.safetensors, where the next stage of a campaign continues
    # (a cosine restarted from a decayed model cost ~0.1 dB each time)
    schedule: str = "cosine"
    decay: float = 0.2
    grad_clip: float = 1.0  # max grad norm; 0 disables
    ema: float = 0.0  # EMA decay of weights (0: off); validation and best use the EMA copy
    amp: str = "none"  # none | bf16 | fp16 (fp16 only on CUDA)
    # stop after this many minutes of training (0: off; `iterations` is then only a cap) and
    # anneal the learning rate over that time instead of over the iterations: runs compared at
    # equal cost, or one stage's share of a campaign. Validation and checkpoints are not counted.
    time_budget: float = 0.0
    # clock of the budget: "cpu" (this process's CPU seconds / torch threads: fair between runs
    # sharing a machine) or "wall"
    budget_clock: str = "cpu"
    compile: bool = False


@dataclass
class RunConfig:
    out: str = "runs/default"
    seed: int = 0
    device: str = "auto"
    # several processes (torchrun): auto picks nccl for GPUs and gloo for CPUs; gloo on GPUs lets
    # two processes share one GPU (NCCL refuses that), for testing DDP on a one-GPU machine
    ddp_backend: str = "auto"
    checkpoint_every: int = 200
    log_every: int = 20
    sample_images: int = 3
    tensorboard: bool = True
    threads: int = 0  # torch CPU threads (0: torch's default)
    # start from these decoder weights (a .safetensors checkpoint) instead of random init; lets a
    # later stage continue the shipped model without the (uncommitted) optimiser state
    init_from: str | None = None
    # with init_from: take only the tensors whose name and shape fit this model (an architecture
    # changed from the checkpoint's, e.g. a block removed); the rest keep their fresh init
    init_partial: bool = False


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self):
        d, o = self.data, self.optim
        def bad(key, why, val):
            raise ConfigError(f"{key}: {why} (got {val!r})")
        if not d.train:
            bad("data.train", "needs at least one source", d.train)
        for i, s in enumerate(d.train):
            if s.kind not in ("paired", "synthetic", "transplant"):
                bad(f"data.train[{i}].kind", "must be paired, synthetic or transplant", s.kind)
            if s.kind in ("paired", "transplant") and not (s.root or (s.input and s.target)):
                bad(f"data.train[{i}]", f"a {s.kind} source needs root, or input and target", s.root)
            if s.kind in ("synthetic", "transplant") and not s.clean:
                bad(f"data.train[{i}].clean", f"a {s.kind} source needs a folder of clean images", s.clean)
            if s.kind == "transplant":
                from ..data.transplant import transplant_params
                transplant_params(s.rain, f"data.train[{i}].rain")
            if s.kind == "synthetic" and s.preset == NO_RAIN and s.rain:
                bad(f"data.train[{i}].rain", "preset none renders no rain, so it takes no rain fields", s.rain)
            if s.kind == "synthetic" and s.preset != NO_RAIN:
                preset_params(s.preset, s.rain, f"data.train[{i}].rain")
            if s.weight < 0:  # 0: a paired source used only for its held-out validation pairs
                bad(f"data.train[{i}].weight", "must be >= 0", s.weight)
        if d.train and sum(s.weight for s in d.train) <= 0:
            bad("data.train", "at least one source needs a weight > 0", [s.weight for s in d.train])
        for key, val, lo in [("data.patch_size", d.patch_size, 32), ("data.batch_size", d.batch_size, 1),
                             ("optim.iterations", o.iterations, 1), ("data.val_every", d.val_every, 1),
                             ("run.checkpoint_every", self.run.checkpoint_every, 1),
                             ("data.val_holdout", d.val_holdout, 0), ("data.workers", d.workers, 0),
                             ("optim.warmup", o.warmup, 0), ("run.log_every", self.run.log_every, 1)]:
            if val < lo:
                bad(key, f"must be >= {lo}", val)
        if d.patch_size % 32:
            bad("data.patch_size", "must be a multiple of 32", d.patch_size)
        for it, size in (tuple(p) for p in d.progressive):
            if size % 32 or size < 32 or it < 0:
                bad("data.progressive", "entries are [iteration >= 0, patch size multiple of 32]", [it, size])
        if d.rotations not in ROTATIONS:
            bad("data.rotations", "must be true, false, any, upright or none", d.rotations)
        if self.loss.pixel not in PIXEL_LOSSES:
            bad("loss.pixel", f"must be one of {', '.join(PIXEL_LOSSES)}", self.loss.pixel)
        for key in ("perceptual_weight", "ssim_weight", "brightness_weight"):
            if getattr(self.loss, key) < 0:
                bad(f"loss.{key}", "must be >= 0", getattr(self.loss, key))
        if o.schedule not in ("cosine", "wsd"):
            bad("optim.schedule", "must be cosine or wsd", o.schedule)
        if not 0 < o.decay <= 1:
            bad("optim.decay", "must be in (0, 1]", o.decay)
        names = [k.name for k in d.val_synthetic]
        for i, k in enumerate(d.val_synthetic):
            if not k.name or k.name == "pairs" or names.count(k.name) > 1:
                bad(f"data.val_synthetic[{i}].name", "needs a unique name other than pairs", k.name)
            if k.preset == NO_RAIN and k.rain:
                bad(f"data.val_synthetic[{i}].rain", "preset none renders no rain, so it takes no rain fields", k.rain)
            if k.preset != NO_RAIN:
                preset_params(k.preset, k.rain, f"data.val_synthetic[{i}].rain")
        pair_names = [v.name for v in d.val_pairs]
        for i, v in enumerate(d.val_pairs):
            if not v.name or v.name in ("pairs", *names) or pair_names.count(v.name) > 1:
                bad(f"data.val_pairs[{i}].name", "needs a unique name (not pairs, nor a val_synthetic kind's)", v.name)
            if not (v.root or (v.input and v.target)):
                bad(f"data.val_pairs[{i}]", "needs root, or input and target", v.root)
        known = {"pairs", *names, *pair_names}
        for k in d.select:
            if k not in known:
                bad("data.select", f"names a kind this config does not validate on (known: {', '.join(sorted(known))})", k)
        if d.val_synthetic and not any(s.kind == "synthetic" for s in d.train):
            bad("data.val_synthetic", "needs a synthetic training source (its clean folder gives the held-out backgrounds)", names)
        if not 0 < o.lr < 1:
            bad("optim.lr", "must be in (0, 1)", o.lr)
        if not 0 <= o.ema < 1:
            bad("optim.ema", "must be in [0, 1)", o.ema)
        if o.time_budget < 0:
            bad("optim.time_budget", "must be >= 0 minutes", o.time_budget)
        if o.budget_clock not in ("cpu", "wall"):
            bad("optim.budget_clock", "must be cpu or wall", o.budget_clock)
        if o.amp not in ("none", "bf16", "fp16"):
            bad("optim.amp", "must be none, bf16 or fp16", o.amp)
        if self.run.ddp_backend not in ("auto", "nccl", "gloo"):
            bad("run.ddp_backend", "must be auto, nccl or gloo", self.run.ddp_backend)
        if self.run.device not in ("auto", "cpu", "cuda", "mps") and not self.run.device.startswith("cuda:"):
            bad("run.device", "must be auto, cpu, cuda, cuda:N or mps", self.run.device)
        self.model.validate()
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d


# ---------------------------------------------------------------- building from dicts

def _build(cls, data, key: str):
    if dataclasses.is_dataclass(cls):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{key or 'config'}: expected a mapping, got {type(data).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}
        for k in data:
            if k not in names:
                where = f"{key}.{k}" if key else k
                raise ConfigError(f"{where}: unknown key (known: {', '.join(names)})")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _build(hints[k], v, f"{key}.{k}" if key else k) for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ConfigError:
            raise
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{key or 'config'}: {e}") from None
    return _coerce(cls, data, key)


def _coerce(tp, v, key):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if v is None and type(None) in args:
            return None
        errs = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, v, key)
            except ConfigError as e:
                errs.append(str(e))
        raise ConfigError(errs[0] if errs else f"{key}: bad value {v!r}")
    if origin in (list, tuple):
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {v!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_coerce(a, x, f"{key}[{i}]") for i, (a, x) in enumerate(zip(args, v)))
        inner = args[0] if args else typing.Any
        out = [_build(inner, x, f"{key}[{i}]") if dataclasses.is_dataclass(inner) else _coerce(inner, x, f"{key}[{i}]")
               for i, x in enumerate(v)]
        return tuple(out) if origin is tuple else out
    if tp is typing.Any:
        return v
    if tp is bool:
        if isinstance(v, bool):
            return v
        raise ConfigError(f"{key}: expected true/false, got {v!r}")
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            raise ConfigError(f"{key}: expected an integer, got {v!r}")
        return v
    if tp is float:
        if isinstance(v, str):  # YAML 1.1 reads "5e-4" (no dot) as a string: accept it as a number
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {v!r}")
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise ConfigError(f"{key}: expected a string, got {v!r}")
        return v
    if dataclasses.is_dataclass(tp):
        return _build(tp, v, key)
    return v


def parse_override(item: str) -> tuple[list[str], object]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key.sub=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    for item in overrides or []:
        path, value = parse_override(item)
        node = d
        for p in path[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {'.'.join(path[:-1])} is not a section")
        node[path[-1]] = value
    return d


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    d: dict = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]})") from None
        d = _resolve_base(d, p)
    d = apply_overrides(d, overrides or [])
    return _build(TrainConfig, d, "").validate()


def _resolve_base(d: dict, path: Path) -> dict:
    """`base: other.yaml` inherits another config (ablation configs change a few keys)."""
    base = d.pop("base", None)
    if not base:
        return d
    bp = (path.parent / base).resolve()
    if not bp.is_file():
        raise ConfigError(f"{path}: base config not found: {base}")
    merged = _resolve_base(yaml.safe_load(bp.read_text()) or {}, bp)
    return _deep_merge(merged, d)


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    from ..weights import atomic_write
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    atomic_write(path, lambda t: Path(t).write_text(text))


def rain_variants(path: str | Path) -> dict:
    """{label: renderer params} for each synthetic source of a training config that varies its
    preset's fields (`rain:`), labelled `PRESET+STEM[i]`: benchmarks score the rain a run trained on."""
    return {f"{s.preset}+{Path(path).stem}[{i}]": preset_params(s.preset, s.rain)
            for i, s in enumerate(load_config(path).data.train) if s.kind == "synthetic" and s.rain}
