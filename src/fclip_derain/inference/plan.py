"""What a job will write: one output path per input, refusing overwrites and collisions, and the
report of what was done. Shared by `derain_dataset` (jobs.py) and folders of frames (sequence.py),
below both of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DerainReport:
    """What a job did: counts for the summary line, one message per failed input."""
    found: int = 0  # input files found (0: nothing to do, `failed` says why)
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    # images (frames) sent to each expert of the routed default model; None: one model, no routing
    routes: dict | None = None

    def summary(self) -> str:
        line = f"done: {self.done}, skipped: {self.skipped}, failed: {len(self.failed)}"
        if self.routes and any(self.routes.values()):
            line += " (rain: " + ", ".join(f"{k} {v}" for k, v in self.routes.items() if v) + ")"
        return line


def plan_outputs(files: list[tuple[Path, Path]], out: Path, suffix: str = "", fmt: str | None = None,
                 skip_existing: bool = False, compare: bool = False) -> tuple[list[tuple[Path, Path]], DerainReport]:
    """-> [(input, output)] still to do, and a report holding the skipped and refused inputs.

    An output that would overwrite an input, or that two inputs would both write (`a.gif` and
    `a.png` both become `a.png`; `a.jpg` and `a.png` share `a_compare.png`), is refused: a user file
    is never overwritten and no result silently replaces another."""
    from ..data.io import FORMAT_BY_EXT, VIDEO_EXTS
    from .files import compare_path
    report = DerainReport()
    inputs_resolved = {f.resolve() for f, _ in files}
    claimed: dict[Path, Path] = {}  # output path -> the input that writes it
    plan = []
    for f, rel in files:
        is_video = f.suffix.lower() in VIDEO_EXTS
        ext = f.suffix if is_video or not fmt else f".{fmt.lower()}"
        if ext.lower() not in FORMAT_BY_EXT and not is_video:  # read-only formats (GIF) -> PNG
            ext = ".png"
        dest = out / rel.parent / f"{rel.stem}{suffix}{ext}"
        writes = [dest] + ([compare_path(dest)] if compare and not is_video else [])
        keys = [w.resolve() for w in writes]
        if any(k in inputs_resolved for k in keys):
            report.failed.append(f"{f}: output {dest} would overwrite an input; use another -o or --suffix")
        elif any(k in claimed for k in keys):
            other = next(claimed[k] for k in keys if k in claimed)
            report.failed.append(f"{f}: output {dest} would also be written for {other}; use --suffix or "
                                 "derain them separately")
        elif dest.exists() and skip_existing:
            report.skipped += 1
        else:
            claimed.update((k, f) for k in keys)
            plan.append((f, dest))
    return plan, report
