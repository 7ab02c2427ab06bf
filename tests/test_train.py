"""Training: config validation, a short real run, exact resume after SIGKILL, NaN guard."""
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fclip_derain.errors import ConfigError, FclipError
from fclip_derain.train.config import load_config
from fclip_derain.train.loop import Trainer
from conftest import REPO, rand_image


def _dataset(root: Path, n=6, h=48, w=64):
    (root / "input").mkdir(parents=True)
    (root / "target").mkdir()
    for i in range(n):
        t = rand_image(h, w, i)
        Image.fromarray(t).save(root / "target" / f"{i}.png")
        r = np.clip(t.astype(int) + (np.random.default_rng(i).random((h, w, 1)) < 0.05) * 120, 0, 255)
        Image.fromarray(r.astype(np.uint8)).save(root / "input" / f"{i}.png")
    return root


def _config(tmp_path, **over):
    data = _dataset(tmp_path / "data") if not (tmp_path / "data").exists() else tmp_path / "data"
    cfg = {
        "model": {"encoder": "efficientnet-lite0", "widths": [8, 8, 16, 16, 16], "blocks": [1, 1, 1, 1]},
        "data": {"train": [{"kind": "paired", "root": str(data)},
                           {"kind": "synthetic", "clean": str(data / "target"), "preset": "mixed", "weight": 0.5}],
                 "val_holdout": 2, "val_every": 3, "patch_size": 32, "batch_size": 2},
        "loss": {"perceptual_weight": 0.0},
        "optim": {"iterations": 6, "warmup": 2, "lr": 1e-3, "ema": 0.9},
        "run": {"out": str(tmp_path / "run"), "checkpoint_every": 2, "log_every": 1, "tensorboard": False},
    }
    for k, v in over.items():
        sec, key = k.split("__")
        cfg[sec][key] = v
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


@pytest.mark.parametrize("override,key", [("optim.lr=-1", "optim.lr"), ("data.patch_size=33", "data.patch_size"),
                                          ("optim.bogus=1", "optim.bogus"), ("model.depth=x", "model.depth"),
                                          ("optim.amp=fp8", "optim.amp"), ("run.device=tpu", "run.device"),
                                          ("loss.pixel=l3", "loss.pixel"),
                                          ("loss.perceptual_weight=-1", "loss.perceptual_weight"),
                                          ("loss.ssim_weight=-0.5", "loss.ssim_weight")])
def test_config_errors_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(_config(tmp_path), [override])


def test_exponent_without_dot_is_a_number(tmp_path):
    # PyYAML (YAML 1.1) reads 5e-4 as the string "5e-4"; users write it that way on the command line
    assert load_config(_config(tmp_path), ["optim.lr=5e-4"]).optim.lr == 5e-4
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config(_config(tmp_path), ["optim.lr=fast"])


def test_shipped_configs_are_valid():
    for p in sorted((REPO / "configs").rglob("*.yaml")):
        if not p.name.startswith("_"):  # _base.yaml files are partial, only inherited
            load_config(p)


def test_short_run_writes_everything(tmp_path):
    cfg = load_config(_config(tmp_path), ["loss.perceptual_weight=0.1", "loss.perceptual_layers=[relu1_2]"])
    res = Trainer(cfg, progress=False).fit()
    run = Path(cfg.run.out)
    assert res["iteration"] == 6 and np.isfinite(res["val_psnr"])
    for f in ("config.yaml", "state.pt", "last.safetensors", "best.safetensors", "log.txt", "metrics.jsonl"):
        assert (run / f).is_file(), f
    assert list((run / "samples").glob("*.png"))
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("perceptual" in r for r in recs) and any("val_psnr" in r for r in recs)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["loss"]["perceptual_weight"] == 0.1
    from fclip_derain.models import load_model
    assert load_model(run / "best.safetensors")(torch.rand(1, 3, 20, 30)).shape == (1, 3, 20, 30)


def _weights(run):
    from fclip_derain.weights import read_checkpoint
    return read_checkpoint(Path(run) / "last.safetensors")[0]


def test_sigkill_and_resume_gives_identical_weights(tmp_path):
    # one thread in both runs: float reductions differ between thread counts
    cfg_path = _config(tmp_path, optim__iterations=10, run__checkpoint_every=1, run__threads=1)
    ref_cfg = load_config(cfg_path, [f"run.out={tmp_path / 'ref'}"])
    Trainer(ref_cfg, progress=False).fit()

    run = tmp_path / "killed"
    code = ("import sys; from fclip_derain.cli import main; "
            f"sys.exit(main(['train', '--config', r'{cfg_path}', '--out', r'{run}', '-q']))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        m = run / "metrics.jsonl"
        if m.exists() and sum(1 for _ in open(m)) >= 4:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    st = torch.load(run / "state.pt", weights_only=True)
    assert 0 < st["iteration"] < 10  # killed mid-run, with a readable checkpoint
    res = Trainer(load_config(cfg_path, [f"run.out={run}"]), progress=False).fit()
    assert res["iteration"] == 10
    a, b = _weights(tmp_path / "ref"), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_subprocess(cfg_path, run):
    code = ("import sys; from fclip_derain.cli import main; "
            f"sys.exit(main(['train', '--config', r'{cfg_path}', '--out', r'{run}', '-q']))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _logged_iterations(run):
    m = Path(run) / "metrics.jsonl"
    return max((json.loads(l)["iteration"] for l in m.read_text().splitlines() if l.strip()), default=0) \
        if m.exists() else 0


def test_random_kills_lose_at_most_one_checkpoint_interval(tmp_path):
    """kill -9 at seeded random moments; with a checkpoint every iteration many kills land inside
    a checkpoint write. Each time: the checkpoint reads, at most checkpoint_every iterations are
    lost, no temporary file survives the restart, and the end result is the uninterrupted run's."""
    cfg_path = _config(tmp_path, optim__iterations=30, run__checkpoint_every=1, run__threads=1)
    Trainer(load_config(cfg_path, [f"run.out={tmp_path / 'ref'}"]), progress=False).fit()
    run, rng, kills = tmp_path / "killed", np.random.default_rng(7), 0
    for trial in range(4):
        p = _train_subprocess(cfg_path, run)
        start = _logged_iterations(run)
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None and _logged_iterations(run) < start + 2:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0, 0.3)))  # a random moment within the next iterations
        if p.poll() is not None:
            break
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        st = torch.load(run / "state.pt", weights_only=True)
        assert _logged_iterations(run) - st["iteration"] <= 1
        _weights(run)  # last.safetensors reads too
    assert kills >= 3
    res = Trainer(load_config(cfg_path, [f"run.out={run}"]), progress=False).fit()
    assert res["iteration"] == 30 and not list(run.glob(".*.part"))
    a, b = _weights(tmp_path / "ref"), _weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_saves_and_stops_cleanly(tmp_path):
    cfg_path = _config(tmp_path, optim__iterations=500, run__checkpoint_every=100)
    run = tmp_path / "run"
    p = _train_subprocess(cfg_path, run)
    deadline = time.time() + 120
    while time.time() < deadline and _logged_iterations(run) < 3:
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0 and b"interrupted: saved iteration" in err
    st = torch.load(run / "state.pt", weights_only=True)
    assert 3 <= st["iteration"] < 500 and st["iteration"] >= _logged_iterations(run)


def test_full_disk_during_checkpoint_fails_loudly_keeping_the_last_one(tmp_path, monkeypatch):
    import errno
    cfg = load_config(_config(tmp_path, optim__iterations=8))
    tr = Trainer(cfg, progress=False)
    real_save, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # the third checkpoint finds the disk full, half-way through
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(FclipError, match="No space left on device.*intact"):
        tr.fit()
    run = Path(cfg.run.out)
    assert torch.load(run / "state.pt", weights_only=True)["iteration"] == 4
    assert not list(run.glob(".*.part"))


def test_too_little_disk_space_fails_before_work(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 ** 9, 10 ** 9 - 10 ** 5, 10 ** 5))
    with pytest.raises(FclipError, match="MB free"):
        Trainer(load_config(_config(tmp_path)), progress=False)


def test_unreadable_training_files_are_skipped(tmp_path):
    cfg_path = _config(tmp_path, optim__iterations=2)
    (tmp_path / "data" / "input" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    (tmp_path / "data" / "target" / "5.png").write_bytes(b"")
    log = io.StringIO()
    tr = Trainer(load_config(cfg_path), progress=False, log_stream=log)
    assert tr.fit()["iteration"] == 2
    text = log.getvalue()
    assert "3.png" in text and "5.png" in text and "skipping" in text


def test_nan_loss_stops_with_checkpoint_intact(tmp_path, monkeypatch):
    cfg = load_config(_config(tmp_path, optim__iterations=8))
    tr = Trainer(cfg, progress=False)
    real = tr.loss.forward
    calls = {"n": 0}

    def flaky(pred, target):
        calls["n"] += 1
        total, parts = real(pred, target)
        return (total * float("nan"), parts) if calls["n"] == 5 else (total, parts)

    monkeypatch.setattr(tr.loss, "forward", flaky)
    with pytest.raises(FclipError, match="loss became nan at iteration 5"):
        tr.fit()
    st = torch.load(Path(cfg.run.out) / "state.pt", weights_only=True)
    assert st["iteration"] == 4


def test_unwritable_run_dir_fails_before_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "run").write_text("a file where the run dir should be")
    with pytest.raises(FclipError, match="not writable"):
        Trainer(load_config(_config(tmp_path), [f"run.out={ro / 'run'}"]), progress=False)


def _free_port():
    import socket
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def _ranks(cfg_path, run, world=2):
    """The ranks of a DDP run started as torchrun starts them (its environment contract), each
    its own child of the test, so that the test can kill them all at once."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world)}
    cmd = [sys.executable, "-m", "fclip_derain", "train", "--config", str(cfg_path), "--out", str(run), "-q"]
    logs = Path(run).parent / f"{Path(run).name}-stderr"
    logs.mkdir(exist_ok=True)
    return [subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.DEVNULL,
                             stderr=open(logs / f"rank{r}-{time.time_ns()}.txt", "w")) for r in range(world)]


def _stderr(run):
    """What the ranks started by _ranks printed, for an assertion's message."""
    logs = Path(run).parent / f"{Path(run).name}-stderr"
    return "\n".join(f"--- {f.name}\n{f.read_text()[-1500:]}" for f in sorted(logs.glob("*.txt")))


def _ema(run):
    return torch.load(Path(run) / "state.pt", weights_only=True)["ema"]


def test_ddp_two_processes_killed_and_resumed_bit_identical(tmp_path):
    """2 gloo processes: torchrun trains to the end with rank 0 alone writing; a second run,
    SIGKILLed mid-run (both ranks) and started again, ends with the same weights and EMA bit for
    bit, across a progressive patch-size switch. Exact only if every rank restores its own RNG
    (LDFPS noise), the EMA copy is rebuilt without drawing from it and the ranks agree on when
    to checkpoint."""
    cfg_path = _config(tmp_path, optim__iterations=24, run__threads=1, run__checkpoint_every=1,
                       data__val_every=4, data__progressive=[[12, 64]])
    ref = tmp_path / "ref"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fclip_derain", "train", "--config", str(cfg_path), "--out", str(ref), "-q"]
    r = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    log = (ref / "log.txt").read_text()
    assert log.count("training efficientnet-lite0 on cpu x2") == 1  # rank 0 only
    # one summary line (rank 0's): both ranks printing once interleaved them into invalid JSON
    summaries = [ln for ln in r.stdout.splitlines() if "best_val_psnr" in ln]
    assert len(summaries) == 1 and r.stdout.count("best_val_psnr") == 1, r.stdout
    assert json.loads(summaries[0])["iteration"] == 24
    st = torch.load(ref / "state.pt", weights_only=True)
    assert st["iteration"] == 24 and len(st["rng"]["ranks"]) == 2
    assert not torch.equal(st["rng"]["ranks"][0], st["rng"]["ranks"][1])  # each rank its own noise

    run = tmp_path / "killed"
    procs = _ranks(cfg_path, run)
    deadline = time.time() + 180
    while time.time() < deadline and all(p.poll() is None for p in procs) and _logged_iterations(run) < 5:
        time.sleep(0.01)
    for p in procs:
        p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait()
    killed_at = torch.load(run / "state.pt", weights_only=True)["iteration"]
    assert 0 < killed_at < 24  # killed mid-run, with a readable checkpoint
    procs = _ranks(cfg_path, run)
    assert [p.wait(timeout=300) for p in procs] == [0, 0], _stderr(run)
    assert f"resumed from {run / 'state.pt'} at iteration {killed_at}" in (run / "log.txt").read_text()
    a, b = _weights(ref), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ea, eb = _ema(ref), _ema(run)
    assert all(torch.equal(ea[k], eb[k]) for k in ea)


def test_progressive_patch_sizes_switch_at_the_iteration_under_ddp(tmp_path):
    """Batch j of the stream is (iteration j // world, rank j % world): a patch size configured
    from iteration 3 starts at iteration 3 on every rank, whatever the number of ranks."""
    from fclip_derain.train.loop import build_data
    cfg = load_config(_config(tmp_path, data__progressive=[[3, 64]]))
    B = cfg.data.batch_size
    for world in (1, 2, 3):
        patches, _ = build_data(cfg, log=lambda m: None, world=world)
        for it in range(6):
            for rank in range(world):
                j = it * world + rank
                sizes = {patches.size_for(j * B + i) for i in range(B)}
                assert sizes == {64 if it >= 3 else 32}, (world, it, rank)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here (runs on a GPU machine)"))])
def test_every_collective_gets_tensors_on_the_trainer_device(tmp_path, monkeypatch, device):
    """NCCL has no CPU tensors: a flag built on the CPU stopped every multi-GPU run at its first
    iteration. The trainer runs here as one rank of a DDP run, with the collectives recorded
    (a world of one), and every tensor they are handed must be on the trainer's device."""
    import torch.distributed as dist
    cfg = load_config(_config(tmp_path, optim__iterations=4, optim__time_budget=5.0), [f"run.device={device}"])
    tr = Trainer(cfg, progress=False)
    seen = []

    def all_reduce(t, op=None, **kw):
        seen.append(("all_reduce", t.device))

    def all_gather(out, t, **kw):
        seen.append(("all_gather", t.device))
        out[0].copy_(t)

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    monkeypatch.setattr(dist, "all_gather", all_gather)
    tr.distributed = True  # the collectives of a DDP run, without the process group
    assert tr.fit()["iteration"] == 4
    assert {name for name, _ in seen} == {"all_reduce", "all_gather"}  # the stop/budget flag, the RNG states
    assert all(d == tr.device for _, d in seen), seen


def test_collectives_build_their_tensors_on_the_given_device(tmp_path, monkeypatch):
    """The same check for a device this machine may not have: on the `meta` device (tensors
    without data), the trainer's collectives must hand over meta tensors."""
    import torch.distributed as dist
    tr = Trainer(load_config(_config(tmp_path, optim__iterations=2)), progress=False)
    tr.distributed, tr.device, seen = True, torch.device("meta"), []

    class Handed(Exception):
        pass

    def record(*args, **kw):
        seen.append(next(a for a in args if isinstance(a, torch.Tensor)).device)
        raise Handed

    monkeypatch.setattr(dist, "all_reduce", record)
    monkeypatch.setattr(dist, "all_gather", record)
    with pytest.raises(Handed):
        tr._agree(False)
    with pytest.raises(Handed):
        tr._gather(tr._rng_state())
    assert seen == [torch.device("meta")] * 2


def test_ema_lives_on_the_model_device_after_resume(tmp_path):
    """The EMA copy is a module beside the model: resumed, its tensors are where the model's are
    (loading them onto the CPU broke the first EMA update of a resumed GPU run)."""
    cfg = load_config(_config(tmp_path, optim__iterations=2))
    Trainer(cfg, progress=False).fit()
    tr = Trainer(load_config(_config(tmp_path, optim__iterations=3)), progress=False)
    assert tr.iteration == 2
    ema = tr.ema.trainable_state_dict()
    assert all(v.device == tr.device for v in ema.values())
    saved = torch.load(Path(cfg.run.out) / "state.pt", weights_only=True)["ema"]
    assert all(torch.equal(saved[k], ema[k].cpu()) for k in saved)
    assert tr.fit()["iteration"] == 3


def test_init_from_checkpoint(tmp_path):
    cfg = load_config(_config(tmp_path, optim__iterations=2))
    Trainer(cfg, progress=False).fit()
    src = Path(cfg.run.out) / "last.safetensors"
    tr = Trainer(load_config(_config(tmp_path), [f"run.out={tmp_path / 'b'}", f"run.init_from={src}"]), progress=False)
    from fclip_derain.weights import read_checkpoint
    ref = read_checkpoint(src)[0]
    got = tr.model.trainable_state_dict()
    assert all(torch.equal(ref[k].to(got[k].dtype), got[k]) for k in ref)


def test_init_partial_takes_what_fits(tmp_path):
    """Fine-tuning a changed architecture: matching tensors are taken, the rest stay fresh."""
    cfg = load_config(_config(tmp_path, optim__iterations=2))
    Trainer(cfg, progress=False).fit()
    src = Path(cfg.run.out) / "last.safetensors"
    over = [f"run.out={tmp_path / 'b'}", f"run.init_from={src}", "model.out_blocks=0"]
    with pytest.raises(FclipError, match="unexpected key 'out_blocks"):
        Trainer(load_config(_config(tmp_path), over), progress=False)
    tr = Trainer(load_config(_config(tmp_path), [*over, "run.init_partial=true"]), progress=False)
    from fclip_derain.weights import read_checkpoint
    ref = read_checkpoint(src)[0]
    got = tr.model.trainable_state_dict()
    assert set(got) < set(ref) and all(torch.equal(ref[k].to(got[k].dtype), got[k]) for k in got)


def test_grown_decoder_starts_as_the_checkpoint(tmp_path):
    """A decoder grown by blocks (run.init_partial with more blocks per level) computes exactly
    the checkpoint's function at step 0: the added residual blocks start as the identity."""
    cfg = load_config(_config(tmp_path, model__block="res", optim__iterations=2))
    Trainer(cfg, progress=False).fit()
    src = Path(cfg.run.out) / "last.safetensors"
    grow = [f"run.out={tmp_path / 'g'}", f"run.init_from={src}", "run.init_partial=true",
            "model.blocks=[2,1,1,3]", "model.out_blocks=2"]
    tr = Trainer(load_config(_config(tmp_path, model__block="res"), grow), progress=False)
    from fclip_derain.models.loading import load_model
    small = load_model(src).eval()
    big = tr.model.eval()
    x = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(big(x), small(x), atol=1e-6)
    assert any(k.startswith("out_blocks.1.") for k in big.trainable_state_dict())


def test_time_budget_ends_the_run_and_anneals_the_lr(tmp_path):
    """optim.time_budget: the run stops when the budget is spent (not at the iteration cap), the
    learning rate reaches min_lr there, and the spent time survives a resume."""
    cfg = load_config(_config(tmp_path, optim__iterations=100000, optim__time_budget=0.02,
                              optim__budget_clock="wall", data__val_every=1000))
    summary = Trainer(cfg, progress=False).fit()
    assert 0 < summary["iteration"] < 100000
    assert summary["train_minutes"] >= 0.02
    recs = [json.loads(l) for l in (Path(cfg.run.out) / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in recs if "lr" in r]
    assert lrs[-1] < 0.05 * cfg.optim.lr  # annealed over the budget, not over the 100000-iteration cap
    assert "val_psnr" in recs[-1]  # the final weights are validated
    st = torch.load(Path(cfg.run.out) / "state.pt", weights_only=True)
    assert st["budget_spent_s"] >= 0.02 * 60
    assert (Path(cfg.run.out) / "best.safetensors").is_file()


def test_time_budget_and_loss_config_errors(tmp_path):
    for override, key in [("optim.time_budget=-1", "optim.time_budget"),
                          ("optim.budget_clock=moon", "optim.budget_clock"), ("loss.pixel=l3", "loss.pixel")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            Trainer(load_config(_config(tmp_path), [override]), progress=False)


def test_no_rain_preset_takes_no_rain_fields(tmp_path):
    p = _config(tmp_path)
    raw = yaml.safe_load(p.read_text())
    raw["data"]["train"][1].update(preset="none")
    p.write_text(yaml.safe_dump(raw))
    assert load_config(p).data.train[1].preset == "none"
    raw["data"]["train"][1]["rain"] = {"angle": [-10.0, 10.0]}
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"data\.train\[1\]\.rain"):
        load_config(p)


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").rglob("*.yaml")
                                        if not p.name.startswith("_")))
def test_every_shipped_config_loads(path):
    """A config named in the docs (an experiment's recipe) must still load: its `base:` chain,
    keys and model switches, so that a pasted command does not fail on a renamed file or field."""
    cfg = load_config(REPO / path)
    assert cfg.model.blocks and cfg.data.train


def test_one_uint8_rounding_for_files_validation_and_eval():
    """Training validation (to_uint8), the files `derain` writes (Derainer) and `eval` round a
    float output to 8 bits the same way: halves up, as MATLAB's im2uint8. (Validation used
    round-half-to-even, the derainer half-up: the same weights scored differently.)"""
    from fclip_derain.data.io import native_output, quantize, to_uint8
    from fclip_derain.inference.derainer import _tensor_to_array
    y = ((np.arange(256, dtype=np.float32) + 0.5) / 255).reshape(16, 16)  # values at or next to .5 ties
    y = np.stack([y, y.T, np.clip(y * 1.001, 0, 1)], -1).astype(np.float32)
    t = torch.from_numpy(y).permute(2, 0, 1)
    like = np.zeros((16, 16, 3), np.uint8)
    a = to_uint8(t)
    assert np.array_equal(a, _tensor_to_array(t[None], like))
    assert np.array_equal(a, native_output(y, Image.new("RGB", (16, 16)), "PNG"))
    assert np.array_equal(a, quantize(y))
    half_even = t.mul(255).round().byte().permute(1, 2, 0).numpy()
    assert not np.array_equal(a, half_even)  # the two roundings do differ on these values
