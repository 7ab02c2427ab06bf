"""`fclip-derain derain --engine ray`: the same job on a pool of Ray workers (docs/scale-out.md).

Each worker is a Ray actor that builds its model once and derains one file per call with the
local engine's own code (`derain_files`), so outputs are byte-identical to `--engine local`. Only
paths travel: workers read inputs and write outputs themselves (on a cluster, a filesystem every
node shares), and the driver keeps IN_FLIGHT_PER_WORKER files per worker, so memory does not grow
with the number of files. A worker that dies (kill -9, out of memory, a lost node) costs only its
in-flight files: their partial outputs are removed, a new worker takes its place, and the files
go to the pool again, unless the dead worker had finished writing them (then they count once).
"""
from __future__ import annotations

import glob
import os
import socket
import sys
import time
from collections import deque
from pathlib import Path

from ..errors import FclipError
from .files import compare_path, derain_files

RAY_HINT = "pip install 'fclip-derain[ray]'"
IN_FLIGHT_PER_WORKER = 2  # one being derained, one queued, so a worker never waits for the driver
MAX_ATTEMPTS = 3  # a file whose worker dies this many times fails alone (it may be what kills it)
PROBE_TIMEOUT_S = 3.0
LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # only paths and messages pass through it


def require_ray():
    try:
        import ray
    except ImportError:
        raise FclipError(f"--engine ray needs Ray: {RAY_HINT}") from None
    return ray


class DerainWorker:
    """One model per worker process; derains one file per call."""

    def __init__(self, spec, threads: int | None):
        threads = spec.threads or threads  # --threads N, else this worker's share of its node
        if threads:
            import torch
            torch.set_num_threads(threads)
        self.error = None
        try:
            self.derainer = spec.build()
        except FclipError as e:  # reported by ready(): a bad checkpoint is one line, not a traceback
            self.error = str(e)

    def ready(self) -> str | None:
        return self.error

    def pid(self) -> int:
        return os.getpid()

    def derain(self, src: str, dest: str, compare: bool, per_frame: bool = False) -> list[str]:
        """-> the failure messages, [] when the output was written."""
        return derain_files(self.derainer, [(Path(src), Path(dest))], compare=compare, progress=False,
                            per_frame=per_frame)[1]


def probe_address(address: str) -> None:
    """Fail in seconds, with one line, when the head node cannot be reached (ray.init would retry
    for a minute or more)."""
    if address == "auto":
        return  # ray.init finds a local cluster or raises ConnectionError at once
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise FclipError(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise FclipError(f"--ray-address {address}: cannot reach {host}:{port} "
                         f"({e.strerror or e.__class__.__name__})") from None


def connect(ray, address: str | None) -> bool:
    """Join `address`, or start a Ray instance on this machine; -> whether to ray.shutdown() after.

    A program that already called ray.init() keeps its connection (and shuts it down itself)."""
    quiet = {"log_to_driver": False, "logging_level": "ERROR", "configure_logging": False}
    if address:
        probe_address(address)
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise FclipError(f"--ray-address {address}: cannot join ({str(e).splitlines()[0]})") from None
        return True  # ray.shutdown() then only disconnects: the cluster keeps running
    # on 127.0.0.1: a private instance for this job, not reachable from the network
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
             _node_ip_address="127.0.0.1", **quiet)
    return True


def pool_shape(ray, workers: int | None, device: str) -> tuple[int, dict, int | None]:
    """-> (number of workers, Ray resources per worker, torch threads per worker).

    CPU: one worker per node by default, each with its share of the cluster's cores as torch
    threads (the model uses every core of a node; more workers per node only add model copies).
    GPUs (--device cuda, or auto on a cluster that has them): one worker per GPU by default."""
    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if device == "cuda" or (device == "auto" and resources.get("GPU")):
        gpus = resources.get("GPU", 0)
        if not gpus:
            raise FclipError("--device cuda: the Ray cluster has no GPUs")
        n = workers or int(gpus)
        return n, {"num_gpus": min(1.0, gpus / n), "num_cpus": 1}, None
    cpus = resources.get("CPU", 1)
    n = workers or max(1, len(nodes))
    smallest_node = min((nd["Resources"].get("CPU", 1) for nd in nodes), default=cpus)
    share = min(smallest_node, cpus / n)
    return n, {"num_cpus": share}, max(1, int(share))


def _stamp(path: Path):
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino
    except FileNotFoundError:
        return None


def _remove_partials(dest: Path, compare: bool) -> None:
    """Temporary files of an interrupted atomic write (data/io.py's atomic_write names them)."""
    for p in [dest] + ([compare_path(dest)] if compare else []):
        for tmp in p.parent.glob(f".{glob.escape(p.name)}.*.part"):  # names may hold [ ] * ?
            tmp.unlink(missing_ok=True)


def derain_on_ray(spec, plan: list[tuple[Path, Path]], compare: bool = False, address: str | None = None,
                  workers: int | None = None, progress: bool = True, per_frame: bool = False) -> tuple[int, list[str]]:
    """Derain each (input, output) of `plan` on Ray; -> (how many written, one message per failure)."""
    if not plan:
        return 0, []
    ray = require_ray()
    started = connect(ray, address)
    try:
        return _run_pool(ray, spec, plan, compare, workers, progress, per_frame)
    finally:
        if started:
            ray.shutdown()


def _run_pool(ray, spec, plan, compare, workers, progress, per_frame=False):
    from ray.exceptions import RayActorError, WorkerCrashedError

    from ..progress import progress_bar
    n, resources, threads = pool_shape(ray, workers, spec.device)
    remote_worker = ray.remote(DerainWorker).options(max_restarts=0, **resources)

    def spawn(count: int) -> list:
        new = [remote_worker.remote(spec, threads) for _ in range(count)]
        errors = [e for e in ray.get([a.ready.remote() for a in new]) if e]
        if errors:
            raise FclipError(errors[0])
        return new

    # what each output looked like when first handed out (not all up front: on a large collection
    # that is a stat per file before any work): a lost worker's finished file differs from it
    before = {}

    def finished_by_lost_worker(dest: Path, is_video: bool) -> bool:
        paths = [dest] + ([compare_path(dest)] if compare and not is_video else [])
        return all(_stamp(p) is not None and _stamp(p) != old for p, old in zip(paths, before[dest]))

    from ..data.io import VIDEO_EXTS
    order = {dest: i for i, (_, dest) in enumerate(plan)}  # failures are reported in input order
    todo = deque((src, dest, 0) for src, dest in plan)
    load = {a: 0 for a in spawn(min(n, len(plan)))}  # worker -> files in flight
    inflight = {}  # ObjectRef -> ((src, dest, attempts), worker)
    done, failed = 0, []
    bar = progress_bar(total=len(plan), desc="derain", unit="img", enabled=progress and len(plan) > 1)
    try:
        while todo or inflight:
            for worker in list(load):
                while load[worker] < IN_FLIGHT_PER_WORKER and todo:
                    item = todo.popleft()
                    if item[1] not in before:
                        before[item[1]] = (_stamp(item[1]), _stamp(compare_path(item[1])))
                    inflight[worker.derain.remote(str(item[0]), str(item[1]), compare, per_frame)] = (item, worker)
                    load[worker] += 1
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                (src, dest, attempts), worker = inflight.pop(ref)
                try:
                    errors = ray.get(ref)
                except (RayActorError, WorkerCrashedError):
                    if worker in load:  # first of its lost files: replace the worker once
                        del load[worker]
                        print("derain: a Ray worker died; its files in flight are retried", file=sys.stderr)
                        load.update({a: 0 for a in spawn(1)})
                    _remove_partials(dest, compare)
                    if finished_by_lost_worker(dest, src.suffix.lower() in VIDEO_EXTS):
                        errors = []
                    elif attempts + 1 < MAX_ATTEMPTS:
                        todo.appendleft((src, dest, attempts + 1))
                        continue
                    else:
                        errors = [(f"{src}: its Ray worker died {MAX_ATTEMPTS} times while deraining it "
                                   "(out of memory?)")]
                else:
                    load[worker] -= 1
                if errors:
                    failed += [(order[dest], e) for e in errors]
                else:
                    done += 1
                bar.update(1)
    finally:
        bar.close()
        if inflight:  # interrupted: stop the workers, then clear what they were writing
            for worker in load:
                ray.kill(worker)
            time.sleep(0.5)
            for (_, dest, _), _ in inflight.values():
                _remove_partials(dest, compare)
    return done, [e for _, e in sorted(failed)]
