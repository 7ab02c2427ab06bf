"""Folders of frames as clips (`fclip-derain derain FRAMES_DIR... --sequence`).

Most rain-video datasets come as folders of numbered frames, one folder per clip. With
`--sequence` each folder is one clip: its images, sorted by name (numbers in names in numeric
order), are derained with their neighbours (inference/temporal.py) or, with `--per-frame`, one by
one, and each derained frame is written under its own name by the rules images follow (format,
suffix, --compare, grey stays grey, 16-bit grey stays 16-bit, EXIF/ICC kept, never over an input,
atomic writes).

Where the frames go: with one INPUT folder, straight into the output folder (`out/frame000.png`);
with several, each clip into a folder of its own name there (`out/clipA/frame000.png`,
`out/clipB/frame000.png`), as datasets lay clips out, so clips whose frames share names do not
collide. The layout follows the command line, not which inputs turn out readable. Two clips of
one folder name would share a folder: the second is refused before any work.

The fusion works on 8-bit RGB, so a 16-bit grey frame derained with its neighbours is written as
16-bit from 8-bit values; with `--per-frame` it keeps its 16 bits, as an image does.

All frames of a folder must have one size once upright (EXIF orientation applied): that and
unreadable headers are checked before any work. A frame that fails to decode later is reported
and skipped: its clip goes on without it, the frames around it fused with the neighbours left.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data.io import FORMAT_BY_EXT, _to_rgb, native_array, native_output, no_images_found, open_native, save_image
from ..errors import FclipError
from .files import compare_path
from .plan import DerainReport, plan_outputs

_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that turn the picture a quarter


def _upright_size(im: Image.Image) -> tuple[int, int]:
    """The size `open_native` will decode `im` to, from its header."""
    # Image.getexif, not the format's own: PNG's decodes the whole file looking for a late eXIf
    # chunk, and this pass must stay header-only (a late one is caught when the frame is decoded)
    orientation = Image.Image.getexif(im).get(0x0112, 1)
    return im.size[::-1] if orientation in _SWAPS_SIDES else im.size


def _frame_sizes(frames: list[Path]) -> tuple[int, int]:
    """Header-only pass: every frame readable as an image and, upright, of the first frame's
    size; -> that size."""
    first = None
    for f in frames:
        try:
            with Image.open(f) as im:
                size, stored = _upright_size(im), im.size
        except Exception as e:  # noqa: BLE001  Pillow raises many kinds; the message names the file
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise FclipError(f"{f}: cannot read image ({msg})") from None
        if first is None:
            first = (f, size)
        elif size != first[1]:
            how = " (upright: its EXIF orientation turns it)" if size != stored else ""
            raise FclipError(f"{f}: frame size {size[0]}x{size[1]}{how} differs from {first[0].name}'s "
                             f"{first[1][0]}x{first[1][1]}: a sequence is one clip of one size")
    return first[1]


def derain_sequences(spec, folders: list[str], out: Path, *, fmt: str | None = None, suffix: str = "",
                     compare: bool = False, skip_existing: bool = False, per_frame: bool = False,
                     progress: bool = True) -> DerainReport:
    """Derain each folder of `folders` as one clip into `out` (one output per frame; with several
    folders, each clip in `out/<folder name>/`), with the model `spec.build()` makes (built once,
    after every clip's frame headers are checked, when a clip has frames to write)."""
    from ..data.pairing import list_images
    report, clips, files = DerainReport(), [], []
    nested = len(folders) > 1
    clip_dirs: dict[Path, Path] = {}  # output folder of a clip -> the input folder writing it
    for item in map(Path, folders):
        if not item.is_dir():
            report.failed.append(f"{item}: --sequence takes folders of frames, and this is "
                                 f"{'a file' if item.exists() else 'not there'}")
            continue
        frames = [f for f in list_images(item) if f.is_file()]
        if not frames:
            report.failed.append(no_images_found(item))
            continue
        sub = Path(item.resolve().name) if nested else Path()
        if sub in clip_dirs:
            other = clip_dirs[sub]
            why = ("is given twice" if other.resolve() == item.resolve() else
                   f"has the folder name of {other}: both clips would be written to {out / sub}; "
                   "derain one of them in a separate run (another -o)")
            report.failed.append(f"{item}: {why}")
            continue
        clip_dirs[sub] = item
        clips.append((item, frames))
        files += [(f, sub / f.name) for f in frames]
    report.found = len(files)
    if not files:
        return report
    plan, planned = plan_outputs(files, out, suffix, fmt, skip_existing, compare)
    report.skipped, report.failed = planned.skipped, report.failed + planned.failed
    dest_of = dict(plan)
    sizes = {}  # every clip's headers before the model loads: a bad second clip is not found a clip later
    for folder, frames in clips:
        if not any(f in dest_of for f in frames):
            continue  # every frame skipped or refused: nothing to write
        try:
            sizes[folder] = _frame_sizes(frames)
        except FclipError as e:
            report.failed.append(str(e))
    if not sizes:
        return report
    derainer = spec.build()  # outside the per-clip handling: a bad checkpoint stops the run, as for images
    for folder, frames in clips:
        if folder in sizes:
            try:
                _derain_clip(derainer, folder, frames, sizes[folder], dest_of, compare, per_frame, progress, report)
            except FclipError as e:
                report.failed.append(str(e))
    if derainer.routed:
        report.routes = dict(derainer.routes)
    return report


def _derain_clip(derainer, folder: Path, frames: list[Path], size: tuple[int, int], dest_of: dict,
                 compare: bool, per_frame: bool, progress: bool, report: DerainReport) -> None:
    """Write the derained frames of one clip, counting each file written in `report.done` as it
    is written (a clip stopped partway still reports what exists)."""
    from ..progress import progress_bar
    read = []  # (frame, PIL image) in order, until its output is written: at most the fusion's window
    bar = progress_bar(total=len(frames), desc=folder.name, unit="frame", enabled=progress)

    def decoded():
        for f in frames:
            try:
                im = open_native(f)
                if im.size != size:  # a turn the header did not show (a PNG's eXIf after its pixels)
                    raise FclipError(f"{f}: decoded as {im.size[0]}x{im.size[1]}, not the clip's "
                                     f"{size[0]}x{size[1]}")
            except FclipError as e:
                bar.update(1)
                if f in dest_of:  # a frame only read as a neighbour (skipped, refused) is not reported again
                    report.failed.append(f"{e}; skipped, the rest of {folder.name} is derained without it")
                continue
            read.append((f, im))
            # per frame: the array an image gets (16-bit grey keeps its 16 bits); fused: 8-bit RGB
            yield native_array(im) if per_frame else np.asarray(_to_rgb(im))

    outputs = map(derainer.derain, decoded()) if per_frame else derainer.derain_stream(decoded())
    try:
        for y in outputs:
            f, im = read.pop(0)
            bar.update(1)
            dest = dest_of.get(f)
            if dest is None:  # skipped or refused: still a neighbour of the frames around it
                continue
            fmt = FORMAT_BY_EXT[dest.suffix.lower()]
            try:
                save_image(dest, native_output(y if per_frame else _native(y, im), im, fmt), fmt, like=im)
                report.done += 1
                if compare:
                    pair = ([native_output(a, im, "JPEG") for a in (native_array(im), y)] if per_frame
                            else [np.asarray(_to_rgb(im)), y])  # 8-bit for viewing
                    save_image(compare_path(dest), np.concatenate(pair, 1))
            except FclipError as e:  # a full disk, say: reported per frame, as images are
                report.failed.append(str(e))
    finally:
        bar.close()


def _native(y: np.ndarray, im: Image.Image) -> np.ndarray:
    """An 8-bit RGB result in the form `native_output` expects for this frame's mode (grey as the
    channel mean, 16-bit grey as float in [0, 1])."""
    from ..data.io import GREY_16
    if im.mode in GREY_16:
        return (y.astype(np.float32).mean(2) / 255).astype(np.float32)
    if im.mode in ("L", "LA"):
        return (y.astype(np.float32).mean(2) + 0.5).astype(np.uint8)
    return y
