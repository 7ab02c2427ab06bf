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
from typing import Callable

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


def check_checkpoint(checkpoint) -> None:
    """A --checkpoint that is not there is an argument error: found before torch and the model
    load (seconds), not after."""
    if checkpoint is not None and not Path(checkpoint).is_file():
        what = "is a folder, not a checkpoint file" if Path(checkpoint).is_dir() else "no such file"
        raise FclipError(f"checkpoint not found: {checkpoint} ({what})")


def expand_inputs(items: list[str], recursive: bool) -> tuple[list[tuple[Path, Path]], list[str]]:
    """-> [(file, path relative to its root)], [per-file errors]. Folders, globs and files.

    An INPUT that names nothing to derain (no such path, a glob matching no image, a folder without
    images) is reported among the per-file errors while the other inputs go on; when no INPUT
    names anything, it is an argument error: FclipError, one line per input, before any work."""
    from ..data.io import VIDEO_EXTS, is_image_path, looked_for, no_images_found
    from ..data.pairing import list_images
    files, errors, missing = [], [], []
    for item in map(str, items):
        p = Path(item)
        if p.is_dir():
            imgs = list_images(p, recursive) + [v for v in (p.rglob("*") if recursive else p.iterdir())
                                                if v.suffix.lower() in VIDEO_EXTS]
            files += [(f, f.relative_to(p)) for f in imgs if f.is_file()]
            errors += [f"{f}: is a directory, not an image" for f in imgs if f.is_dir() and not recursive]
            if not any(f.is_file() for f in imgs):
                deeper = not recursive and any(d.is_dir() for d in p.iterdir())
                missing.append(no_images_found(p, videos=True)
                               + ("; it has sub-folders: --recursive looks into them" if deeper else ""))
        elif p.exists():
            files.append((p, Path(p.name)))
        elif any(ch in item for ch in "*?["):
            hits = sorted(glob.glob(item, recursive=recursive))
            usable = [h for h in hits if Path(h).is_file() and (is_image_path(h) or Path(h).suffix.lower() in VIDEO_EXTS)]
            if not hits:
                missing.append(f"{item}: no file matches")
            elif not usable:
                missing.append(f"{item}: matches {len(hits)} path(s), none an image or video ({looked_for(True)})")
            files += [(Path(h), Path(Path(h).name)) for h in usable]
        else:
            missing.append(f"{item}: no such file or folder")
    if missing and not files:
        raise FclipError("\n".join(missing))
    return files, errors + missing


def check_clip_folders(items: list[str]) -> None:
    """--sequence: every INPUT a folder holding frames, before any work."""
    from ..data.io import no_images_found
    from ..data.pairing import list_images
    bad = []
    for item in map(Path, items):
        if not item.is_dir():
            bad.append(f"{item}: --sequence takes folders of frames, and this is "
                       f"{'a file' if item.exists() else 'not there'}")
        elif not any(f.is_file() for f in list_images(item)):
            bad.append(no_images_found(item))
    if bad:
        raise FclipError("\n".join(bad))


def derain_dataset(inputs, output: str | os.PathLike = "derained", *, engine: str = "local",
                   recursive: bool = False, fmt: str | None = None, suffix: str = "", compare: bool = False,
                   skip_existing: bool = False, batch_size: int = 1, checkpoint: str | None = None,
                   device: str = "auto", precision: str = "auto", tile: int | None = None, tile_overlap: int = 32,
                   ray_address: str | None = None, workers: int | None = None,
                   work_size: int | None = WORK_SIZE, ensemble: int = 1, threads: int | None = None,
                   per_frame: bool = False, sequence: bool = False, rain: str = "auto",
                   progress: bool = True, on_start: Callable[[], None] | None = None) -> DerainReport:
    """Derain images, folders, globs and videos into `output`, on this process or on Ray.

    >>> from fclip_derain import derain_dataset
    >>> r = derain_dataset(["photos/"], "derained/", recursive=True)            # here
    >>> r = derain_dataset(["/shared/cams/"], "/shared/out/", engine="ray",    # a cluster
    ...                    ray_address="auto", device="cuda", skip_existing=True)
    >>> print(r.summary())

    Bad arguments raise FclipError before any work and before torch loads: bad option values, an
    INPUT that names nothing to derain (no such path, a glob matching no image, a folder without
    images: one line each), a missing checkpoint, an unwritable `output`. Files that fail once
    the work runs are reported in `report.failed` (one line each) and the others go on.
    `threads`: torch CPU threads per model (None: as they are;
    `fclip_derain.devices.auto_threads()` gives the cores no other program is busy on).
    Videos are derained with their neighbouring frames (docs/video.md); `per_frame=True` derains
    each frame alone. `rain`: which expert of the default model derains (auto: the rain-density
    head picks per image; the report counts its choices). `sequence=True`: each input is a folder of frames, derained as one clip
    (inference/sequence.py). With `engine="ray"` every worker reads inputs and
    writes outputs itself, so on a cluster both must be on a filesystem all nodes share.
    `on_start`: called once the arguments have passed, before the model loads (the CLI sets and
    reports its threads there, so that an argument error costs no torch import).
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
    check_checkpoint(checkpoint)
    if sequence and engine != "local":
        raise FclipError("--sequence runs on the local engine: leave out --engine ray")
    if engine == "ray":
        from .ray_engine import probe_address, require_ray
        require_ray()  # before any work: a missing extra or a wrong address is a usage error
        if ray_address:
            probe_address(ray_address)
    if sequence:
        check_clip_folders(list(inputs))
    else:
        files, errors = expand_inputs(list(inputs), recursive)
        if not files:  # expand_inputs refuses every INPUT that yields no file: only an empty list gets here
            raise FclipError("no inputs given")
    made = missing_dirs(output)  # removed again if nothing is written
    out = writable_dir(output, "-o")
    spec = ModelSpec(checkpoint, device, PRECISIONS[precision], tile, tile_overlap, work_size, ensemble, threads, rain)
    report = None
    try:
        if on_start:
            on_start()
        if sequence:  # each input folder is one clip, its frames derained together
            from .sequence import derain_sequences
            report = derain_sequences(spec, list(inputs), out, fmt=fmt, suffix=suffix, compare=compare,
                                      skip_existing=skip_existing, per_frame=per_frame, progress=progress)
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
        return report
    finally:
        # also when the model fails to load or the run is interrupted: no empty output folder left
        if report is None or not report.done:
            remove_if_empty(made)
