"""Pair rainy inputs with clean targets by file name, in the layouts deraining sets ship in."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import FclipError
from .io import is_image_path, no_images_found

# (input folder, target folder) names, first match wins
LAYOUTS = [("input", "target"), ("rain", "norain"), ("rainy", "gt"), ("data", "gt"), ("rainy", "clean")]


def natural_key(s: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted((p for p in it if is_image_path(p) and not p.name.startswith(".")),
                  key=lambda p: natural_key(str(p.relative_to(folder))))


def pair_key(stem: str) -> str:
    """Name normalisation: 'rain-12' ~ 'norain-12', '12_3' (Rain14000 copies) ~ '12', 'rain12x2' ~ ..."""
    s = stem.lower()
    s = re.sub(r"^(no)?rain[-_]?", "", s)
    s = re.sub(r"_(\d+|rain|gt|clean|norain)$", "", s)
    return s


@dataclass
class Pair:
    input: Path
    target: Path

    @property
    def name(self) -> str:
        return self.input.stem


def find_layout(root: str | Path) -> tuple[Path, Path]:
    root = Path(root)
    if not root.is_dir():
        raise FclipError(f"dataset folder not found: {root}")
    for a, b in LAYOUTS:
        if (root / a).is_dir() and (root / b).is_dir():
            return root / a, root / b
    raise FclipError(f"{root}: no paired layout found (expected one of "
                     + ", ".join(f"{a}/ + {b}/" for a, b in LAYOUTS) + "); or pass --input and --target")


def pair_folders(input_dir: str | Path, target_dir: str | Path, allow_unpaired: bool = False,
                 warn=print) -> list[Pair]:
    """Pair by exact stem first, then by normalised key; several inputs may share a target."""
    inputs, targets = list_images(input_dir), list_images(target_dir)
    if not inputs:
        raise FclipError(no_images_found(input_dir))
    by_stem = {p.stem: p for p in targets}
    by_key = {}
    for p in targets:
        by_key.setdefault(pair_key(p.stem), p)
    pairs, unpaired = [], []
    for p in inputs:
        t = by_stem.get(p.stem) or by_key.get(pair_key(p.stem))
        (pairs.append(Pair(p, t)) if t else unpaired.append(p))
    if unpaired:
        names = ", ".join(p.name for p in unpaired[:10]) + (" ..." if len(unpaired) > 10 else "")
        msg = f"{len(unpaired)} input(s) in {input_dir} have no target in {target_dir}: {names}"
        if not allow_unpaired:
            raise FclipError(msg + " (use --allow-unpaired to skip them)")
        warn(f"warning: {msg}; skipped")
    return pairs


def pairs_from(root: str | Path | None = None, input_dir=None, target_dir=None, allow_unpaired=False,
               warn=print) -> list[Pair]:
    if input_dir or target_dir:
        if not (input_dir and target_dir):
            raise FclipError("--input and --target go together")
        return pair_folders(input_dir, target_dir, allow_unpaired, warn)
    return pair_folders(*find_layout(root), allow_unpaired=allow_unpaired, warn=warn)
