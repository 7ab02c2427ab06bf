"""The training loop: data stream, optimisation, validation, crash-safe checkpoints, DDP.

Resume is exact: a checkpoint holds model, optimiser, scheduler, scaler, EMA and every RNG
state (each rank's), and the data stream is a pure function of the iteration (see
data/datasets.py), so a run killed with SIGKILL and resumed ends with the same weights as one
that never stopped, with one process or several (tests/test_train.py kills a 2-process run).

Several processes (torchrun): batch j of the stream goes to (iteration j // world, rank
j % world); each rank draws its own LDFPS noise (its own seed) and saves its RNG state through
rank 0; every tensor handed to a collective lives on the trainer's device (NCCL has no CPU
tensors); the stop request and the spent time budget are agreed on once per iteration, so all
ranks stop, checkpoint and anneal at the same iteration.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from ..data.datasets import BatchStream, PairedSource, SyntheticSource, TrainPatches, holdout_split
from ..data.io import save_image
from ..data.pairing import list_images, pairs_from
from ..devices import fast_half, pick_device
from ..errors import FclipError
from ..losses import DerainLoss
from ..models.fclip_unet import FCLIPUNet
from ..models.loading import save_model
from ..weights import atomic_write
from .config import TrainConfig, save_config
from .validation import pair_set, score, synthetic_sets

STATE_FILE = "state.pt"


def held_out_split(cfg: TrainConfig, log=print):
    """The first paired source's pairs split as every run of this config splits them:
    (training pairs, held-out validation pairs); ([], []) without a paired source."""
    s = next((s for s in cfg.data.train if s.kind == "paired"), None)
    if s is None:
        return [], []
    return holdout_split(pairs_from(s.root, s.input, s.target, warn=log), cfg.data.val_holdout, cfg.run.seed)


def validation_sets(cfg: TrainConfig, log=print, val_pairs=None) -> list:
    """A config's validation sets: its held-out pairs (the first `val_max_images`) and the
    synthetic kinds rendered over their backgrounds. Training scores these; so do the ship
    script and the CI gate on the shipped weights, rebuilding them from the run's config."""
    d = cfg.data
    if val_pairs is None:
        _, val_pairs = held_out_split(cfg, log)
    held = {p.target.stem for p in val_pairs}
    sets = []
    if val_pairs[: d.val_max_images]:  # unreadable validation pairs are dropped (with a warning), like training ones
        sets.append(pair_set(PairedSource(val_pairs[: d.val_max_images], warn=log).pairs))
    clean_dir = next((s.clean for s in d.train if s.kind == "synthetic"), None)
    if d.val_synthetic and held:
        sets += synthetic_sets(d.val_synthetic, clean_dir, held)
    for v in d.val_pairs:
        sets.append(pair_set(PairedSource(pairs_from(v.root, v.input, v.target, warn=log), warn=log).pairs, v.name))
    return sets


def build_data(cfg: TrainConfig, log=print, world: int = 1):
    """-> (TrainPatches, validation sets). Held-out backgrounds never appear in training.
    `world`: processes sharing the stream (batch j is iteration j // world)."""
    train_pairs, val_pairs = held_out_split(cfg, log)
    held = {p.target.stem for p in val_pairs} | set(cfg.data.exclude)
    first_paired = next((s for s in cfg.data.train if s.kind == "paired"), None)
    sources, weights = [], []
    for s in cfg.data.train:
        if s.kind == "paired":
            pairs = train_pairs if s is first_paired else pairs_from(s.root, s.input, s.target, warn=log)
            sources.append(PairedSource([p for p in pairs if p.target.stem not in held], warn=log))
        elif s.kind == "transplant":
            from ..data.transplant import TransplantSource, transplant_params
            rain_pairs = [p for p in pairs_from(s.root, s.input, s.target, warn=log) if p.target.stem not in held]
            clean = [p for p in list_images(s.clean) if p.stem not in held]
            sources.append(TransplantSource(rain_pairs, clean, transplant_params(s.rain), warn=log))
        else:
            clean = [p for p in list_images(s.clean) if p.stem not in held]
            sources.append(SyntheticSource(clean, s.preset, warn=log, rain=s.rain))
        weights.append(s.weight)
    d = cfg.data
    if d.progressive:
        steps = sorted((int(a), int(b)) for a, b in d.progressive)
        def patch_size(k, per_iteration=d.batch_size * world):
            # sample k is in batch k // B, which is iteration k // B // world (one batch per rank)
            it, size = k // per_iteration, d.patch_size
            for start, ps in steps:
                if it >= start:
                    size = ps
            return size
    else:
        patch_size = d.patch_size
    patches = TrainPatches(sources, weights, patch_size, cfg.run.seed, d.flips, d.rotations)
    return patches, validation_sets(cfg, log, val_pairs)


def lr_lambda(cfg: TrainConfig, progress=None):
    """Linear warm-up, then (optim.schedule) cosine to min_lr, or constant and a decay over the
    last `optim.decay` of the run (wsd), over the iterations or over `progress()` (the spent
    fraction of a time budget) when given."""
    o = cfg.optim
    floor = o.min_lr / o.lr

    def f(step):
        if step < o.warmup:
            return (step + 1) / o.warmup
        t = min(1.0, progress() if progress else (step - o.warmup) / max(1, o.iterations - o.warmup))
        if o.schedule == "wsd":
            u = decay_progress(o, t)
            # 1 - sqrt: the decay shape of the WSD literature (Hägele et al. 2024), a shade better than linear
            return floor + (1 - floor) * (1 - math.sqrt(u))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def decay_progress(o, t: float) -> float:
    """How far into the wsd decay a run is at progress t: 0 while stable, 1 at the end."""
    return max(0.0, (t - (1 - o.decay)) / o.decay)


def train_amp_dtype(amp: str, device: torch.device, log=print):
    """optim.amp -> the autocast dtype. bf16 on a CPU without bf16 instructions is emulated and
    ran 28x slower than fp32 (33 s against 1.2 s an iteration on an AVX2 EPYC, issue 46), so such
    a CPU trains in fp32, saying so once."""
    if amp == "bf16" and device.type == "cpu" and not fast_half(device):
        log("optim.amp=bf16: this CPU has no bf16 instructions (avx512_bf16 or amx_bf16), where bf16 "
            "is emulated and far slower; training in fp32 instead")
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def ddp_backend(name: str, device: torch.device) -> str:
    """auto: NCCL for GPUs, gloo for CPUs. gloo also carries CUDA tensors, which lets several
    processes share one GPU (NCCL refuses two ranks on one device): a test, not a speed-up."""
    if name != "auto":
        return name
    return "nccl" if device.type == "cuda" else "gloo"


def rank_seed(seed: int, rank: int) -> int:
    """Rank r's RNG seed (r > 0): independent streams, a pure function of (seed, rank)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)


def ema_copy(model: FCLIPUNet) -> FCLIPUNet:
    """A frozen copy of the decoder, on the model's device, sharing its (frozen) encoder."""
    ema = copy.deepcopy(model, memo={id(model.encoder): model.encoder})
    return ema.eval().requires_grad_(False)


class BudgetClock:
    """Seconds spent training, on the CPU (process time / threads) or the wall clock; only the
    intervals between `start()` and `stop()` count (validation and checkpoints do not)."""

    def __init__(self, kind: str, spent: float = 0.0):
        self.kind, self.spent, self._t = kind, spent, None

    def _now(self):
        if self.kind == "wall":
            return time.perf_counter()
        return time.process_time() / max(1, torch.get_num_threads())

    def start(self):
        self._t = self._now()

    def stop(self):
        if self._t is not None:
            self.spent += self._now() - self._t
            self._t = None


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = True, progress: bool = True, log_stream=None):
        self.cfg = cfg
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = pick_device(cfg.run.device)
        if self.device.type == "cuda" and self.distributed and self.device.index is None:
            # one GPU per local rank; ranks share GPUs when there are fewer (a test, e.g. 2 on 1)
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.distributed and not dist.is_initialized():
            dist.init_process_group(ddp_backend(cfg.run.ddp_backend, self.device))
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.main = self.rank == 0
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        self.out = Path(cfg.run.out)
        self.progress = progress and self.main
        self.log_stream = log_stream or sys.stderr
        if self.main:
            self._check_writable()
        self.stop_requested = False

        torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank
        self.model = FCLIPUNet(cfg.model).to(self.device)
        self.model.encoder.fold_batchnorm()  # frozen: its BatchNorms are fixed affine maps
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        o = cfg.optim
        # the EMA weights: a copy of the decoder on the model's device (as timm's ModelEmaV2),
        # sharing the frozen encoder; built here, so validation never draws from the RNG
        self.ema = ema_copy(self.model) if o.ema else None
        if self.rank:  # from here each rank has its own noise stream (LDFPS); rank 0 keeps the seed's
            torch.manual_seed(rank_seed(cfg.run.seed, self.rank))
        if self.main:
            self._check_disk_space()
        self.net = self.model
        if self.distributed:
            # the frozen encoder's buffers never change: nothing to broadcast each step
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False)
        self.opt = torch.optim.AdamW(self.params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        self.clock = BudgetClock(o.budget_clock)
        self.budget_s = 60 * o.time_budget
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(cfg, self.budget_fraction if self.budget_s else None))
        self.scaler = torch.amp.GradScaler("cuda", enabled=(o.amp == "fp16" and self.device.type == "cuda"))
        self.loss = DerainLoss(cfg.loss.pixel, cfg.loss.perceptual_weight, cfg.loss.perceptual_layers,
                               cfg.loss.ssim_weight, cfg.loss.brightness_weight).to(self.device)
        self.patches, self.val_sets = build_data(cfg, log=self.log, world=self.world)
        self.iteration, self.best = 0, -float("inf")
        if resume and (self.out / STATE_FILE).is_file():
            self.load_state(self.out / STATE_FILE)
        elif cfg.run.init_from:
            from ..weights import read_checkpoint
            fresh = self.model.load_trainable_state_dict(read_checkpoint(cfg.run.init_from)[0],
                                                         strict=not cfg.run.init_partial)
            if fresh:
                self.log(f"{len(fresh)} tensors not in {cfg.run.init_from} keep their initial values")
            if self.ema is not None:
                self.ema.load_trainable_state_dict(self.model.trainable_state_dict())
            self.log(f"initialised the decoder from {cfg.run.init_from}")
        if self.main:  # the config this (possibly resumed) run continues with
            save_config(cfg, self.out / "config.yaml")
        self.tb = None
        if self.main and cfg.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(self.out / "tb"))
            except Exception:  # tensorboard not installed: scalars still go to metrics.jsonl
                self.tb = None

    # ------------------------------------------------------------ bookkeeping

    def _check_writable(self):
        """Fail before any work if the run directory cannot take a checkpoint."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            probe = self.out / ".write-test"
            probe.write_bytes(b"x" * 4096)
            probe.unlink()
        except OSError as e:
            raise FclipError(f"run directory {self.out} is not writable ({e.strerror or e})") from None
        # temporary files of checkpoint writes cut short by a kill: never valid, never needed
        for stale in self.out.glob(".*.part"):
            stale.unlink(missing_ok=True)

    def _check_disk_space(self):
        """A checkpoint holds weights, two Adam moments and the EMA copy (4x the trained tensors),
        written beside the old one, plus last/best weights: ask for twice that up front."""
        nbytes = sum(p.numel() * p.element_size() for p in self.params)
        need = 2 * (4 + 2) * nbytes + 16 * 2 ** 20
        free = shutil.disk_usage(self.out).free
        if free < need:
            raise FclipError(f"run directory {self.out}: only {free / 2**20:.0f} MB free, a checkpoint needs "
                             f"about {need / 2**20:.0f} MB; free some space or pick another run.out")

    def log(self, msg: str):
        if self.main:
            print(msg, file=self.log_stream, flush=True)
            with open(self.out / "log.txt", "a") as f:
                f.write(msg + "\n")

    def _metrics(self, rec: dict):
        if not self.main:
            return
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        if self.tb:
            for k, v in rec.items():
                if k != "iteration" and isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, rec["iteration"])

    def _rng_state(self) -> torch.Tensor:
        """This process's RNG state as one byte tensor: the CPU generator, then the GPU's."""
        parts = [torch.get_rng_state()]
        if self.device.type == "cuda":
            parts.append(torch.cuda.get_rng_state(self.device))
        return torch.cat(parts)

    def _set_rng_state(self, state: torch.Tensor):
        n = torch.get_rng_state().numel()
        torch.set_rng_state(state[:n].clone())
        if self.device.type == "cuda" and state.numel() > n:
            torch.cuda.set_rng_state(state[n:].clone(), self.device)

    def _gather(self, t: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's `t` (same shape on all), on every rank; a collective: all ranks call it."""
        if not self.distributed:
            return [t]
        t = t.to(self.device)
        out = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(out, t)
        return [x.cpu() for x in out]

    def _agree(self, stop: bool) -> bool:
        """Once per iteration, all ranks: whether any rank was asked to stop, and the largest
        spent time budget (each rank's clock drifts; the schedule must see one clock)."""
        if not self.distributed:
            return stop
        t = torch.tensor([float(stop), self.clock.spent], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        self.clock.spent = float(t[1])
        return bool(t[0])

    def state_dict(self, rng: list[torch.Tensor] | None = None) -> dict:
        return {
            "iteration": self.iteration, "best": self.best,
            "model": self.model.trainable_state_dict(),
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.trainable_state_dict() if self.ema is not None else None,
            # ranks[r]: rank r's generators (CPU, then its GPU's); torch: rank 0's CPU generator
            "rng": {"torch": torch.get_rng_state(), "ranks": rng or [self._rng_state()]},
            "config": self.cfg.to_dict(), "budget_spent_s": self.clock.spent,
        }

    def save_state(self):
        """All ranks call this (their RNG states travel to rank 0); rank 0 writes."""
        rng = self._gather(self._rng_state())
        if not self.main:
            return
        st = self.state_dict(rng)
        try:
            atomic_write(self.out / STATE_FILE, lambda t: torch.save(st, t))
            save_model(self.model, self.out / "last.safetensors", extra={"iteration": self.iteration})
        except (OSError, RuntimeError) as e:  # full disk, quota, removed folder: torch wraps some as RuntimeError
            raise FclipError(f"cannot write the checkpoint at iteration {self.iteration} to {self.out} "
                             f"({getattr(e, 'strerror', None) or str(e).splitlines()[0]}); the previous "
                             f"checkpoint {self.out / STATE_FILE} is intact") from None

    def load_state(self, path: Path):
        try:
            st = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise FclipError(f"{path}: cannot resume from this checkpoint ({e}); move it away to start fresh") from None
        self.model.load_trainable_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.scaler.load_state_dict(st["scaler"])
        if self.ema is not None:  # onto the EMA copy, which lives where the model lives
            self.ema.load_trainable_state_dict(st["ema"] if st["ema"] is not None else st["model"])
        ranks = st["rng"].get("ranks")
        if ranks and len(ranks) == self.world:
            self._set_rng_state(ranks[self.rank])
        else:  # another number of processes, or an older checkpoint: rank 0's generators only
            if self.rank == 0:
                torch.set_rng_state(st["rng"]["torch"])
                if st["rng"].get("cuda") and torch.cuda.is_available():
                    torch.cuda.set_rng_state_all(st["rng"]["cuda"])
            if self.world > 1:
                self.log(f"{path} holds the random state of {len(ranks) if ranks else 1} process(es), this run "
                         f"has {self.world}: the other ranks' noise starts from their seeds (not bit-identical "
                         "to an uninterrupted run)")
        self.iteration, self.best = st["iteration"], st["best"]
        self.clock.spent = st.get("budget_spent_s", 0.0)
        self.log(f"resumed from {path} at iteration {self.iteration}")

    # ------------------------------------------------------------ validation

    def eval_weights(self):
        """The model validation and 'best' use: the EMA copy, or the live model."""
        return self.ema if self.ema is not None else self.model

    @torch.no_grad()
    def validate(self) -> dict:
        if not self.val_sets:
            return {}
        model = self.eval_weights()
        was_training = model.training
        model.eval()
        samples = []

        def keep(kind, i, a, out, b):  # the first images of every kind
            if i < self.cfg.run.sample_images:
                samples.append((f"{kind}_{i}", np.concatenate([a, out, b], 1)))
        res = score(model, self.val_sets, self.device, keep)
        model.train(was_training)
        for name, s in samples:
            save_image(self.out / "samples" / f"iter{self.iteration:07d}_{name}.png", s)
        return res.summary(self.cfg.data.select)

    # ------------------------------------------------------------ the loop

    def _loader(self):
        stream = BatchStream(self.patches, self.cfg.data.batch_size)
        # batch for (iteration j, rank r) is stream item j * world + r: ranks see disjoint data
        indices = range(self.iteration * self.world + self.rank, self.cfg.optim.iterations * self.world, self.world)
        # its own generator: creating the iterator must not draw from the global RNG (LDFPS noise),
        # or a resumed run would see a shifted noise stream
        return DataLoader(stream, batch_size=None, sampler=indices, num_workers=self.cfg.data.workers,
                          pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(0))

    def budget_fraction(self) -> float:
        """Spent fraction of the time budget."""
        return min(1.0, self.clock.spent / self.budget_s)

    def _on_sigint(self, *_):
        self.stop_requested = True

    def _ema_update(self):
        if self.ema is None:
            return
        # warm-up (as timm/BasicSR): early on the average must not be dominated by the random init
        d = min(self.cfg.optim.ema, (1 + self.iteration) / (10 + self.iteration))
        with torch.no_grad():
            ema = self.ema.trainable_state_dict()
            for k, v in self.model.trainable_state_dict().items():
                if v.is_floating_point():
                    ema[k].mul_(d).add_(v, alpha=1 - d)
                else:
                    ema[k].copy_(v)

    def _save_stable_once(self):
        """wsd: when the decay starts, keep the weights reached at the constant rate (and their
        EMA) as stable.safetensors: the next stage continues from there, not from the decayed
        weights."""
        o = self.cfg.optim
        if o.schedule != "wsd" or not self.main or (self.out / "stable.safetensors").exists():
            return
        t = self.budget_fraction() if self.budget_s else \
            (self.iteration - o.warmup) / max(1, o.iterations - o.warmup)
        if self.iteration > o.warmup and decay_progress(o, t) > 0:
            save_model(self.eval_weights(), self.out / "stable.safetensors",
                       extra={"iteration": self.iteration, "note": "EMA weights when the wsd decay began"})
            self.log(f"iteration {self.iteration}: the wsd decay begins; stable weights saved")

    def fit(self) -> dict:
        cfg, o = self.cfg, self.cfg.optim
        # Ctrl-C and SIGTERM (schedulers, `kill`, container stop) save a checkpoint and stop cleanly
        # on every rank: torchrun passes signals on to all of them, and the ranks agree each iteration
        old = {sig: signal.signal(sig, self._on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
        amp_dtype = train_amp_dtype(o.amp, self.device, self.log)
        net = torch.compile(self.net) if o.compile else self.net
        self.net.train()
        self.log(f"training {cfg.model.encoder} on {self.device} x{self.world}: iterations "
                 f"{self.iteration}->{o.iterations}, batch {cfg.data.batch_size}, "
                 f"{sum(len(v.inputs) for v in self.val_sets)} validation pairs "
                 f"({', '.join(v.name for v in self.val_sets) or 'none'}), run dir {self.out}")
        bar = None
        if self.progress:
            from ..progress import progress_bar
            bar = progress_bar(total=o.iterations, initial=self.iteration, file=self.log_stream,
                               desc="train", unit="it", dynamic_ncols=True, mininterval=2)
        t0, seen, last = time.time(), 0, {}
        if self.budget_s:
            self.log(f"time budget {o.time_budget:g} min ({o.budget_clock} clock), "
                     f"{self.clock.spent / 60:.1f} min spent")
        self.clock.start()
        try:
            for x, y in self._loader():
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                with torch.autocast(self.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    pred = net(x)
                    loss, parts = self.loss(pred.float(), y)
                if not torch.isfinite(loss):
                    raise FclipError(f"loss became {loss.item()} at iteration {self.iteration + 1}; stopped. "
                                     f"The last good checkpoint is {self.out / STATE_FILE} (iteration "
                                     f"{self.iteration - self.iteration % cfg.run.checkpoint_every}); "
                                     "lower optim.lr or enable optim.grad_clip")
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if o.grad_clip > 0:
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_(self.params, o.grad_clip)
                self.scaler.step(self.opt)
                self.scaler.update()
                self.sched.step()
                self._ema_update()
                self.iteration += 1
                self._save_stable_once()
                seen += x.shape[0] * self.world
                it = self.iteration
                self.clock.stop()
                self.stop_requested = self._agree(self.stop_requested)
                done = it >= o.iterations or bool(self.budget_s and self.clock.spent >= self.budget_s)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{self.sched.get_last_lr()[0]:.2e}", refresh=False)
                if it % cfg.run.log_every == 0 or done:
                    rate = seen / max(1e-9, time.time() - t0)
                    self._metrics({"iteration": it, "loss": loss.item(), **parts,
                                   "lr": self.sched.get_last_lr()[0], "patches_per_s": rate,
                                   "train_minutes": self.clock.spent / 60})
                if it % cfg.data.val_every == 0 or done:
                    if self.main:
                        last = self.validate()
                        if last:
                            improved = last["val_psnr"] > self.best
                            if improved:
                                self.best = last["val_psnr"]
                                weights = self.eval_weights()
                                save_model(weights, self.out / "best.safetensors",
                                           extra={"iteration": it, **last})
                            self._metrics({"iteration": it, **last})
                            self.log(f"iteration {it}: val PSNR {last['val_psnr']:.2f} dB, SSIM "
                                     f"{last['val_ssim']:.4f}{' (best)' if improved else ''}")
                if it % cfg.run.checkpoint_every == 0 or done or self.stop_requested:
                    self.save_state()
                if self.stop_requested:
                    self.log(f"interrupted: saved iteration {it} to {self.out / STATE_FILE}; "
                             "run the same command again to resume")
                    break
                if done:
                    break
                self.clock.start()
        finally:
            self.clock.stop()
            if bar is not None:
                bar.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
            if self.tb:
                self.tb.flush()
        finished = self.iteration >= o.iterations or (self.budget_s and self.clock.spent >= self.budget_s)
        if self.main and finished and not (self.out / "best.safetensors").exists():
            save_model(self.eval_weights(), self.out / "best.safetensors", extra={"iteration": self.iteration})
        return {"iteration": self.iteration, "best_val_psnr": self.best,
                "train_minutes": round(self.clock.spent / 60, 2), **last}


def train(cfg: TrainConfig, resume: bool = True, progress: bool = True) -> dict | None:
    """Run (or resume) training; the summary on rank 0, None on the other ranks of a DDP run."""
    trainer = Trainer(cfg, resume=resume, progress=progress)
    result = trainer.fit()
    if trainer.distributed and dist.is_initialized():
        # Leave together: a rank that exits while another still holds gloo connections to it (or
        # to the rendezvous store rank 0 hosts outside torchrun) makes that rank abort (SIGABRT).
        dist.barrier()
        dist.destroy_process_group()
    return result if trainer.main else None
