"""Option values and checks shared by the CLI, the jobs (`derain_dataset`) and `Derainer`.

This module sits below all of them (it imports only `errors`), so each concept has one home and
the CLI, `inference/jobs.py`, `inference/derainer.py` and `benchmark.py` import it without
importing one another.
"""
from __future__ import annotations

from .errors import FclipError

ENGINES = ("local", "ray")
PRECISIONS = {"auto": None, "fp32": False, "half": True}  # precision name -> Derainer(half=...)
MIN_TILE_ARG = 64  # below this a tile is mostly overlap and padding: slow and visibly different

# Long side, in pixels, at which the model sees an image by default. It learnt rain at the scale
# of ~481x321 photos (RainTrainL, synthetic rain on BSDS500); in a larger photo the same rain spans
# more pixels and the model misses it: on the 20 held-out validation pairs upscaled 3x, full
# resolution scores 30.15 dB, this path 34.16 and 4.5x faster (docs/work-size.md). A
# larger image is derained at this size, and the rain removed there is upsampled and subtracted
# from the full-resolution image, so the photo keeps its own fine detail, which upsampling the
# small output would blur. None: off (`--work-size full`).
WORK_SIZE = 640
MIN_WORK_SIZE = 64

# Self-ensemble: average the model over mirrored copies (dims to flip per copy). No quarter turns:
# the model learnt rain upright, and turned copies would show it sideways rain. What each count
# gains on held-out pairs is measured per shipped model: fclip_derain/figures.json.
ENSEMBLE_FLIPS = {1: [()], 2: [(), (-1,)], 4: [(), (-1,), (-2,), (-2, -1)]}


# Which expert of the default model derains an image (models/routing.py): auto lets the
# rain-density head decide per image; light and heavy force one.
RAIN_MODES = ("auto", "light", "heavy")


def check_rain(rain: str, routed: bool = True) -> None:
    if rain not in RAIN_MODES:
        raise FclipError(f"--rain {rain}: choose one of {', '.join(RAIN_MODES)}")
    if rain != "auto" and not routed:
        raise FclipError(f"--rain {rain}: picks one of the default model's two experts; a --checkpoint "
                         "model has only one (leave --rain out)")


def check_tile(tile: int | None, overlap: int = 32) -> None:
    if tile is None:
        return
    if tile < MIN_TILE_ARG:
        raise FclipError(f"--tile {tile}: tiles must be at least {MIN_TILE_ARG} pixels (or leave --tile out "
                         "for automatic tiling)")
    if tile <= 2 * overlap:
        raise FclipError(f"--tile {tile}: must be larger than twice --tile-overlap ({overlap})")


def check_work_size(work_size: int | None) -> None:
    if work_size is not None and work_size < MIN_WORK_SIZE:
        raise FclipError(f"--work-size {work_size}: must be at least {MIN_WORK_SIZE} pixels, or `full` to derain "
                         "at the image's own resolution")


def check_ensemble(ensemble: int) -> None:
    if ensemble not in ENSEMBLE_FLIPS:
        raise FclipError(f"--ensemble {ensemble}: choose {', '.join(map(str, ENSEMBLE_FLIPS))} (mirrored copies)")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise FclipError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise FclipError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
