"""A folder of frames as one clip (`fclip-derain derain FRAMES_DIR --sequence`).

Most rain-video datasets come as folders of numbered frames. With `--sequence` each folder is
one clip: its images, sorted by name (numbers in names in numeric order), are derained with
their neighbours (inference/temporal.py) or, with `--per-frame`, one by one, and each derained
frame is written under its own name by the rules images follow (format, suffix, --compare,
grey stays grey, EXIF/ICC kept, never over an input, atomic writes). The fusion works on 8-bit
RGB, so a 16-bit grey frame is written as 16-bit from 8-bit values.

All frames of a folder must have one size; that and unreadable headers are checked before any
work. A frame that fails to decode later stops its clip with one error naming it; the frames
written before it are complete files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data.io import FORMAT_BY_EXT, _to_rgb, native_output, open_native, save_image
from ..errors import FclipError
from .files import compare_path
from .plan import DerainReport, plan_outputs


def _frame_sizes(frames: list[Path]) -> None:
    """Header-only pass: every frame readable as an image and of the first frame's size."""
    first = None
    for f in frames:
        try:
            with Image.open(f) as im:
                size = im.size
        except Exception as e:  # noqa: BLE001  Pillow raises many kinds; the message names the file
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise FclipError(f"{f}: cannot read image ({msg})") from None
        if first is None:
            first = (f, size)
        elif size != first[1]:
            raise FclipError(f"{f}: frame size {size[0]}x{size[1]} differs from {first[0].name}'s "
                             f"{first[1][0]}x{first[1][1]}: a sequence is one clip of one size")


def derain_sequences(spec, folders: list[str], out: Path, *, fmt: str | None = None, suffix: str = "",
                     compare: bool = False, skip_existing: bool = False, per_frame: bool = False,
                     progress: bool = True) -> DerainReport:
    """Derain each folder of `folders` as one clip into `out` (one output per frame), with the
    model `spec.build()` makes (built once, when the first clip has frames to write)."""
    from ..data.pairing import list_images
    report, clips, files = DerainReport(), [], []
    for item in map(Path, folders):
        if not item.is_dir():
            report.failed.append(f"{item}: --sequence takes folders of frames, and this is "
                                 f"{'a file' if item.exists() else 'not there'}")
            continue
        frames = [f for f in list_images(item) if f.is_file()]
        if not frames:
            report.failed.append(f"{item}: no images found")
            continue
        clips.append((item, frames))
        files += [(f, Path(f.name)) for f in frames]
    report.found = len(files)
    if not files:
        return report
    plan, planned = plan_outputs(files, out, suffix, fmt, skip_existing, compare)
    report.skipped, report.failed = planned.skipped, report.failed + planned.failed
    dest_of = dict(plan)
    derainer = None
    for folder, frames in clips:
        if not any(f in dest_of for f in frames):
            continue  # every frame skipped or refused: nothing to write
        try:
            _frame_sizes(frames)
            derainer = derainer or spec.build()
            report.done += _derain_clip(derainer, folder, frames, dest_of, compare, per_frame, progress)
        except FclipError as e:
            report.failed.append(str(e))
    if derainer is not None and derainer.routed:
        report.routes = dict(derainer.routes)
    return report


def _derain_clip(derainer, folder: Path, frames: list[Path], dest_of: dict, compare: bool, per_frame: bool,
                 progress: bool) -> int:
    from ..progress import progress_bar
    read = []  # (frame, PIL image) in order, until its output is written: at most the fusion's window

    def rgb_frames():
        for f in frames:
            im = open_native(f)
            read.append((f, im))
            yield np.asarray(_to_rgb(im))

    done = 0
    bar = progress_bar(total=len(frames), desc=folder.name, unit="frame", enabled=progress)
    try:
        for y in derainer.derain_stream(rgb_frames(), per_frame=per_frame):
            f, im = read.pop(0)
            bar.update(1)
            dest = dest_of.get(f)
            if dest is None:  # skipped or refused: still a neighbour of the frames around it
                continue
            out = _native(y, im)
            fmt = FORMAT_BY_EXT[dest.suffix.lower()]
            save_image(dest, native_output(out, im, fmt), fmt, like=im)
            if compare:
                src = np.asarray(_to_rgb(im))
                save_image(compare_path(dest), np.concatenate([src, y], 1))
            done += 1
    finally:
        bar.close()
    return done


def _native(y: np.ndarray, im: Image.Image) -> np.ndarray:
    """An 8-bit RGB result in the form `native_output` expects for this frame's mode (grey as the
    channel mean, 16-bit grey as float in [0, 1])."""
    from ..data.io import GREY_16
    if im.mode in GREY_16:
        return (y.astype(np.float32).mean(2) / 255).astype(np.float32)
    if im.mode in ("L", "LA"):
        return (y.astype(np.float32).mean(2) + 0.5).astype(np.uint8)
    return y
