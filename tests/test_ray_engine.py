"""`derain --engine ray` against the local engine, on a local Ray instance (127.0.0.1 only):
same bytes, same messages and counts, resumable, a worker killed mid-run costs nothing."""
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import rand_image
from fclip_derain.cli import main
from fclip_derain.models import save_model
from test_bad_inputs import AWKWARD, BROKEN, make_corpus

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (starting one costs ~10 s); the engine reuses it."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2, log_to_driver=False,
             logging_level="ERROR", configure_logging=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def keep_threads():
    """The local runs here set torch's threads to 1 in this process; later tests keep theirs."""
    import torch
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def ckpt(trained_tiny_model, tmp_path):
    """A model that changes its input, its mirror image and its bf16 self (test_model.py checks):
    with tiny_model's identity, Ray dropping the model, --ensemble or --precision went unseen."""
    return str(save_model(trained_tiny_model, tmp_path / "tiny.safetensors"))


# flags both engines get: a path dropping either writes other pixels with the trained model.
# One torch thread on both sides: a convolution's float sums depend on how many threads split
# them, which moves 16-bit outputs by a level (the local run would use 2 threads, each of 2
# Ray workers 1); with equal threads the bytes must match exactly.
FLAGS = ["--ensemble", "2", "--precision", "fp32", "--threads", "1"]


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _summary(err):
    return [line for line in err.splitlines() if line.startswith(("done:", "  failed:", "error:"))]


def test_same_outputs_and_messages_as_local_then_resume(local_ray, ckpt, tmp_path, capsys):
    src = make_corpus(tmp_path / "in")
    rgba = np.dstack([rand_image(40, 56, 7), np.full((40, 56), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src / "alpha.png")
    Image.fromarray(rand_image(40, 56, 8)[..., 0], "L").save(src / "grey.jpg")  # 8-bit grey (deep.png: 16-bit)
    common = ["derain", str(src), "-c", ckpt, "-q", "--compare", *FLAGS]
    assert main([*common, "-o", str(tmp_path / "local")]) == 1
    local_err = capsys.readouterr().err
    assert main([*common, "-o", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 1
    ray_err = capsys.readouterr().err
    # same counts, same one-line failures (trunc.jpg and trunc.png would share a _compare file)
    assert _summary(ray_err) == [line.replace("/local/", "/ray/") for line in _summary(local_err)]
    assert f"done: {len(AWKWARD) + 2}, skipped: 0, failed: {len(BROKEN)}" in ray_err
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")  # byte-identical, no temp files
    assert "Traceback" not in ray_err

    # an interrupted run, resumed: only the missing outputs are made
    (tmp_path / "ray" / "rotated.jpg").unlink()
    (tmp_path / "ray" / "alpha.png").unlink()
    assert main([*common, "-o", str(tmp_path / "ray"), "--engine", "ray", "--skip-existing"]) == 1
    assert f"done: 2, skipped: {len(AWKWARD)}, failed: {len(BROKEN)}" in capsys.readouterr().err
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")


def _worker_pids():
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::DerainWorker"):
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def test_killed_worker_costs_nothing(local_ray, ckpt, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    n = 40
    for i in range(n):
        Image.fromarray(rand_image(96, 128, i)).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    killed = []

    def kill_one_worker_when_work_started():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if out.exists() and any(out.glob("*.png")) and _worker_pids():
                pid = _worker_pids()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.005)

    t = threading.Thread(target=kill_one_worker_when_work_started, daemon=True)
    t.start()
    rc = main(["derain", str(src), "-o", str(out), "-c", ckpt, "-q", "--engine", "ray", "--workers", "2", *FLAGS])
    t.join()
    err = capsys.readouterr().err
    assert killed, "no worker was killed: the job ended before the first output appeared"
    assert rc == 0 and f"done: {n}, skipped: 0, failed: 0" in err
    assert "a Ray worker died" in err
    assert sorted(p.name for p in out.iterdir()) == [f"{i:02d}.png" for i in range(n)]  # once each, no .part
    assert main(["derain", str(src), "-o", str(tmp_path / "local"), "-c", ckpt, "-q", *FLAGS]) == 0
    assert _files(out) == _files(tmp_path / "local")


def test_without_ray_installed_says_how_to_install(ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    Image.fromarray(rand_image(20, 20)).save(tmp_path / "a.png")
    assert main(["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-c", ckpt, "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --engine ray needs Ray: pip install 'fclip-derain[ray]'"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9", "nonsense"])
def test_unreachable_address_fails_fast(ckpt, tmp_path, capsys, address):
    Image.fromarray(rand_image(20, 20)).save(tmp_path / "a.png")
    t0 = time.monotonic()
    rc = main(["derain", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-c", ckpt, "-q",
               "--engine", "ray", "--ray-address", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: --ray-address {address}:")
    assert time.monotonic() - t0 < 10
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def _frames(path):
    import av
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]


def test_video_is_one_unit_frames_in_order(local_ray, ckpt, tmp_path, capsys):
    av = pytest.importorskip("av")
    src = tmp_path / "in"
    src.mkdir()
    with av.open(str(src / "clip.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):  # each frame differs, so a reordering would show
            for pkt in s.encode(av.VideoFrame.from_ndarray(rand_image(48, 64, i), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    Image.fromarray(rand_image(48, 64, 99)).save(src / "still.png")
    common = ["derain", str(src), "-c", ckpt, "-q"]
    assert main([*common, "-o", str(tmp_path / "local")]) == 0
    assert main([*common, "-o", str(tmp_path / "ray"), "--engine", "ray"]) == 0
    assert "done: 2, skipped: 0, failed: 0" in capsys.readouterr().err
    local, remote = _frames(tmp_path / "local" / "clip.mp4"), _frames(tmp_path / "ray" / "clip.mp4")
    # not byte-equal: libx264 encodes the same derained frames a little differently from one process
    # to the next (seen on a loaded 2-core machine); each frame must still be its own, in its place
    dist = np.array([[np.abs(a.astype(np.int16) - b).mean() for a in local] for b in remote])
    assert len(remote) == 8 and (dist.argmin(axis=1) == np.arange(8)).all() and dist.diagonal().max() < 10


def test_interrupt_then_skip_existing_finishes(ckpt, tmp_path):
    """Ctrl-C mid-run (its own local Ray instance, in a child process): exit 130, no partial file;
    the re-run with --skip-existing makes exactly the missing outputs."""
    import subprocess
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    # enough work that the run cannot finish in the moment between the test seeing 3 outputs and
    # the child handling SIGINT, even when both wait for a loaded CPU (60 small images once did)
    n = 120
    for i in range(n):
        Image.fromarray(rand_image(192, 256, i)).save(src / f"{i:03d}.png")
    cmd = [sys.executable, "-m", "fclip_derain", "derain", str(src), "-o", str(out), "-c", ckpt, "-q",
           "--engine", "ray"]
    child = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and len(list(out.glob("*.png"))) >= 3):
        time.sleep(0.01)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=180)  # Ray's shutdown is slow on a loaded 2-core machine
    made = sorted(p.name for p in out.iterdir())
    assert child.returncode == 130 and "interrupted" in err, err
    assert 3 <= len(made) < n and all(not m.startswith(".") for m in made)  # no partial outputs
    done = subprocess.run([*cmd, "--skip-existing"], stderr=subprocess.PIPE, text=True, timeout=180)
    assert done.returncode == 0 and f"done: {n - len(made)}, skipped: {len(made)}, failed: 0" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{i:03d}.png" for i in range(n)]


class _FakeCluster:
    """ray.cluster_resources() / ray.nodes() of a cluster that is not here."""

    def __init__(self, cpus_per_node, gpus=0):
        self.cpus, self.gpus = cpus_per_node, gpus

    def cluster_resources(self):
        return {"CPU": float(sum(self.cpus)), **({"GPU": float(self.gpus)} if self.gpus else {})}

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": float(c)}} for c in self.cpus]


def test_pool_shape():
    from fclip_derain import FclipError
    from fclip_derain.inference.ray_engine import pool_shape
    # CPU: one worker per node with the smallest node's cores as torch threads
    assert pool_shape(_FakeCluster([16, 16, 8]), None, "cpu") == (3, {"num_cpus": 8.0}, 8)
    assert pool_shape(_FakeCluster([2]), 2, "cpu") == (2, {"num_cpus": 1.0}, 1)
    assert pool_shape(_FakeCluster([2]), 4, "cpu") == (4, {"num_cpus": 0.5}, 1)  # placeable, shared
    # GPUs: one worker per GPU, also for --device auto; more workers share them
    assert pool_shape(_FakeCluster([16, 16], gpus=4), None, "auto") == (4, {"num_gpus": 1.0, "num_cpus": 1}, None)
    assert pool_shape(_FakeCluster([16], gpus=2), 4, "cuda") == (4, {"num_gpus": 0.5, "num_cpus": 1}, None)
    with pytest.raises(FclipError, match="no GPUs"):
        pool_shape(_FakeCluster([16]), None, "cuda")


def test_partials_of_a_lost_file_are_removed_and_only_those(tmp_path):
    from fclip_derain.inference.ray_engine import _remove_partials
    for name in (".a[1].png.k2j.part", ".a[1]_compare.png.x9.part", ".a1.png.k2j.part", "a[1].png"):
        (tmp_path / name).write_bytes(b"")
    _remove_partials(tmp_path / "a[1].png", compare=True)  # [1] is not a glob class here
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a1.png.k2j.part", "a[1].png"]
