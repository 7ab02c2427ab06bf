"""Derain a list of files (images and videos) to output paths: what `fclip-derain derain` runs.

Decoding the next image and encoding the previous one run in two threads while the model works
on the current one (Pillow and zlib release the GIL), so a folder costs about the model's time
per image rather than model + I/O (docs/performance.md, "Overlapped I/O"). A file that fails is
reported and the others go on; outputs are written atomically, so an interrupted run leaves no
half-written file.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..data.io import (
    FORMAT_BY_EXT,
    VIDEO_EXTS,
    native_array,
    native_output,
    open_native,
    save_image,
)
from ..errors import FclipError

# Model pixels x passes above which one image (or batch) gets its own progress bar: 2-3 s or more
# on a 2-core CPU; below it the file bar (or the summary line) says enough.
LARGE_PIXELS = 1_000_000


def compare_path(dest: Path) -> Path:
    """Where `--compare` writes input|output side by side for `dest`."""
    return dest.with_name(f"{dest.stem}_compare.png")


def model_passes(derainer, b: int, h: int, w: int) -> tuple[int, int]:
    """-> (pixels the model sees per pass, passes) for a batch of b h x w images: the work size
    scales large images down, large ones are cut into tiles, each mirrored copy is one more pass."""
    from .tiling import tile_count
    ws = getattr(derainer, "work_size", None)
    if ws and max(h, w) > ws:
        k = ws / max(h, w)
        h, w = max(1, round(h * k)), max(1, round(w * k))
    tile_for = getattr(derainer, "_tile_for", None)
    tile = tile_for(b, h, w) if tile_for else None
    tiles = tile_count(h, w, tile, getattr(derainer, "tile_overlap", 32)) if tile else 1
    return (min(h, tile or h) * min(w, tile or w)) * b, tiles * getattr(derainer, "ensemble", 1)


def derain_files(derainer, plan: list[tuple[Path, Path]], batch_size: int = 1, compare: bool = False,
                 progress: bool = True, per_frame: bool = False) -> tuple[int, list[str]]:
    """Derain each (input, output) of `plan`; -> (how many written, one message per failure).
    Videos use their neighbouring frames unless `per_frame` (inference/video.py)."""
    done, failed = 0, []
    reader, writer = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    writes = deque()  # futures of saves, oldest first
    pending = []  # decoded images of one size waiting to be derained together (batch_size)

    def load(f: Path):
        if f.suffix.lower() in VIDEO_EXTS:
            return None
        im = open_native(f)  # grey stays grey, 16-bit stays 16-bit (native_array)
        return im, native_array(im)

    def save(dest: Path, y, im, arr):
        fmt = FORMAT_BY_EXT[dest.suffix.lower()]
        save_image(dest, native_output(y, im, fmt), fmt, like=im)
        if compare:
            pair = [native_output(a, im, "JPEG") for a in (arr, y)]  # 8-bit for viewing
            save_image(compare_path(dest), np.concatenate(pair, 1))

    def collect(keep: int):
        nonlocal done
        while len(writes) > keep:  # bounds the outputs held in memory waiting to be written
            try:
                writes.popleft().result()
                done += 1
            except FclipError as e:
                failed.append(str(e))

    def flush():
        if not pending:
            return
        arrays = [a for _, a, _, _ in pending]
        pixels, passes = model_passes(derainer, len(arrays), *arrays[0].shape[:2])
        name = pending[0][0].name if len(pending) == 1 else f"{len(pending)} images"
        try:
            from ..progress import layer_progress
            with layer_progress(derainer.model, passes, f"{name} ({arrays[0].shape[1]}x{arrays[0].shape[0]})",
                                enabled=progress and pixels * passes >= LARGE_PIXELS, leave=False):
                outs = derainer.derain_batch(arrays)
        except FclipError as e:
            failed.extend(f"{f}: {e}" for f, _, _, _ in pending)
            outs = []
        for (_, arr, im, dest), y in zip(pending, outs):
            writes.append(writer.submit(save, dest, y, im, arr))
        pending.clear()
        collect(keep=batch_size)

    from ..progress import progress_bar
    nxt = reader.submit(load, plan[0][0]) if plan else None
    try:
        for i, (f, dest) in enumerate(progress_bar(plan, desc="derain", unit="img",
                                                   enabled=progress and len(plan) > 1)):
            cur, nxt = nxt, (reader.submit(load, plan[i + 1][0]) if i + 1 < len(plan) else None)
            try:
                loaded = cur.result()
                if loaded is None:
                    from .video import derain_video
                    flush()
                    derain_video(derainer, f, dest, progress=progress, per_frame=per_frame)
                    done += 1
                    continue
            except FclipError as e:
                failed.append(str(e))
                continue
            im, arr = loaded
            if pending and (pending[0][1].shape, pending[0][1].dtype) != (arr.shape, arr.dtype):
                flush()
            pending.append((f, arr, im, dest))
            if len(pending) >= batch_size:
                flush()
        flush()
    finally:
        collect(keep=0)
        reader.shutdown(cancel_futures=True)
        writer.shutdown()
    return done, failed
