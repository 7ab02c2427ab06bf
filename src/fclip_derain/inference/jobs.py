"""One derain job over many files: find the inputs, plan their outputs, run them on an engine.

`fclip-derain derain` and `fclip_derain.derain_dataset` both come through `derain_dataset`, so the
local engine (this process) and the Ray engine (a pool of workers on this machine or a cluster,
inference/ray_engine.py) find, name, skip and report files the same way and write the same bytes.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import FclipError
from ..options import (
    PRECISIONS,
    WORK_SIZE,
    check_engine,
    check_ensemble,
    check_precision,
    check_rain,
    check_tile,
    check_work_size,
)
from .plan import DerainReport, plan_outputs


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to build its own Derainer: small and picklable, unlike the model."""
    checkpoint: str | None = None
    device: str = "auto"
    half: bool | None = None
    tile: int | None = None
    tile_overlap: int = 32
    work_size: int | None = WORK_SIZE
    ensemble: int = 1
    threads: int | None = None  # torch CPU threads; None: as they are (Ray: its share per worker)
    rain: str = "auto"  # which expert of the default model: auto | light | heavy

    def build(self):
        from .derainer import Derainer
        if self.threads:
            import torch
            torch.set_num_threads(self.threads)
        return Derainer(self.checkpoint, device=self.device, half=self.half, tile=self.tile,
                        tile_overlap=self.tile_overlap, work_size=self.work_size, ensemble=self.ensemble,
                        rain=self.rain)


def expand_inputs(items: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """-> [(file, path relative to its root)], [errors]. Folders, globs and files."""
    from ..data.io import VIDEO_EXTS, is_image_path
    from ..data.pairing import list_images
    files, errors = [], []
    for item in map(str, items):
        p = Path(item)
        if p.is_dir():
            imgs = list_images(p, recursive) + [v for v in (p.rglob("*") if recursive else p.iterdir())
                                                if v.suffix.lower() in VIDEO_EXTS]
            files += [(f, f.relative_to(p)) for f in imgs if f.is_file()]
            errors += [f"{f}: is a directory, not an image" for f in imgs if f.is_dir() and not recursive]
            if not imgs:
                errors.append(f"{p}: no images found")
        elif p.exists():
            files.append((p, Path(p.name)))
        elif any(ch in item for ch in "*?["):
            hits = sorted(glob.glob(item, recursive=recursive))
            if not hits:
                errors.append(f"{item}: no file matches")
            files += [(Path(h), Path(Path(h).name)) for h in hits
                      if Path(h).is_file() and (is_image_path(h) or Path(h).suffix.lower() in VIDEO_EXTS)]
        else:
            errors.append(f"{item}: no such file or folder")
    return files, errors


def derain_dataset(inputs, output: str | os.PathLike = "derained", *, engine: str = "local",
                   recursive: bool = False, fmt: str | None = None, suffix: str = "", compare: bool = False,
                   skip_existing: bool = False, batch_size: int = 1, checkpoint: str | None = None,
                   device: str = "auto", precision: str = "auto", tile: int | None = None, tile_overlap: int = 32,
                   ray_address: str | None = None, workers: int | None = None,
                   work_size: int | None = WORK_SIZE, ensemble: int = 1, threads: int | None = None,
                   per_frame: bool = False, sequence: bool = False, rain: str = "auto",
                   progress: bool = True) -> DerainReport:
    """Derain images, folders, globs and videos into `output`, on this process or on Ray.

    >>> from fclip_derain import derain_dataset
    >>> r = derain_dataset(["photos/"], "derained/", recursive=True)            # here
    >>> r = derain_dataset(["/shared/cams/"], "/shared/out/", engine="ray",    # a cluster
    ...                    ray_address="auto", device="cuda", skip_existing=True)
    >>> print(r.summary())

    Inputs that fail are reported in `report.failed` (one line each) and the others go on; bad
    arguments raise FclipError before any work. `threads`: torch CPU threads per model (None: as
    they are; `fclip_derain.devices.auto_threads()` gives the cores no other program is busy on).
    Videos are derained with their neighbouring frames (docs/video.md); `per_frame=True` derains
    each frame alone. `rain`: which expert of the default model derains (auto: the rain-density
    head picks per image; the report counts its choices). `sequence=True`: each input is a folder of frames, derained as one clip
    (inference/sequence.py). With `engine="ray"` every worker reads inputs and
    writes outputs itself, so on a cluster both must be on a filesystem all nodes share.
    """
    from ..data.io import FORMAT_BY_EXT, missing_dirs, remove_if_empty, writable_dir
    check_engine(engine)
    check_precision(precision)
    if fmt and f".{fmt.lower()}" not in FORMAT_BY_EXT:
        raise FclipError(f"--format {fmt}: choose one of png, jpg, bmp, tiff, webp")
    check_tile(tile, tile_overlap)
    check_work_size(work_size)
    check_ensemble(ensemble)
    check_rain(rain, checkpoint is None)
    if sequence and engine != "local":
        raise FclipError("--sequence runs on the local engine: leave out --engine ray")
    if engine == "ray":
        from .ray_engine import probe_address, require_ray
        require_ray()  # before any work: a missing extra or a wrong address is a usage error
        if ray_address:
            probe_address(ray_address)
    files, errors = expand_inputs(list(inputs), recursive)
    if not files:
        return DerainReport(failed=errors)
    made = missing_dirs(output)  # removed again if nothing is written
    out = writable_dir(output, "-o")
    spec = ModelSpec(checkpoint, device, PRECISIONS[precision], tile, tile_overlap, work_size, ensemble, threads, rain)
    if sequence:  # each input folder is one clip, its frames derained together
        from .sequence import derain_sequences
        report = derain_sequences(spec, list(inputs), out, fmt=fmt, suffix=suffix, compare=compare,
                                  skip_existing=skip_existing, per_frame=per_frame, progress=progress)
        if not report.done:
            remove_if_empty(made)
        return report
    plan, report = plan_outputs(files, out, suffix, fmt, skip_existing, compare)
    report.found = len(files)
    report.failed[:0] = errors
    if engine == "ray":
        from .ray_engine import derain_on_ray
        done, failed = derain_on_ray(spec, plan, compare=compare, address=ray_address, workers=workers,
                                     progress=progress, per_frame=per_frame)
    else:
        from .files import derain_files
        derainer = spec.build()
        done, failed = derain_files(derainer, plan, batch_size=batch_size, compare=compare,
                                    progress=progress, per_frame=per_frame)
        if derainer.routed:
            report.routes = dict(derainer.routes)
    report.done += done
    report.failed += failed
    if not report.done:
        remove_if_empty(made)
    return report
