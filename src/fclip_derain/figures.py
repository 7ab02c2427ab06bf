"""Measured figures of the shipped default model that the help text quotes: one source of truth.

`figures.json` beside this file holds, per measurement, what was measured, on which images, with
which command, and for which model version. Help text formats them from here; the docs quote the
same numbers and `tests/test_figures.py` checks help, README and docs against this file and its
model version against the shipped model's, so that a figure cannot go stale unnoticed.

After shipping a model, regenerate every section with the command it records, e.g.

    python benchmarks/ensemble.py --update-figures
    python benchmarks/darkening.py --update-figures
"""
from __future__ import annotations

import json
from pathlib import Path

FIGURES = Path(__file__).with_name("figures.json")


def load() -> dict:
    """The figures; {} if the file is missing or unreadable (help then quotes none)."""
    try:
        return json.loads(FIGURES.read_text())
    except (OSError, ValueError):
        return {}


def benchmark_args(what: str):
    """The arguments every figure-writing benchmark takes (--checkpoint, --json, --update-figures),
    parsed, with the one check they share: figures describe the shipped model only."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", help="default: the shipped model")
    ap.add_argument("--json")
    ap.add_argument("--update-figures", action="store_true",
                    help=f"write {what} into src/fclip_derain/figures.json (the shipped model only)")
    args = ap.parse_args()
    if args.update_figures and args.checkpoint:
        ap.error("--update-figures measures the shipped model: leave --checkpoint out")
    return args


def update(section: str, data: dict, model_version: str, path: Path = FIGURES) -> None:
    """Replace one section (with the version of the model it measured), atomically."""
    from .data.io import atomic_write
    figs = json.loads(path.read_text()) if path.exists() else {}
    figs[section] = {"model_version": str(model_version), **data}
    text = json.dumps(figs, indent=1, sort_keys=True) + "\n"
    atomic_write(path, lambda t: Path(t).write_text(text))


def ensemble_gains(figs: dict | None = None) -> str:
    """'+0.45 / +0.69 dB' for 2 / 4 mirrored copies, or '' when not measured."""
    e = (load() if figs is None else figs).get("ensemble", {})
    gains = e.get("gain_db", {})
    if not {"2", "4"} <= set(gains):
        return ""
    return f"+{gains['2']:.2f} / +{gains['4']:.2f} dB"


def ensemble_help(figs: dict | None = None) -> str:
    figs = load() if figs is None else figs
    gains = ensemble_gains(figs)
    if not gains:
        return ""
    e = figs["ensemble"]
    return f"{gains} on {e['images']} (model v{e['model_version']})"


def default_model_version() -> str | None:
    """The shipped model's `version` metadata, read from the file header (no tensors loaded)."""
    import struct

    from .models.loading import DEFAULT_CHECKPOINT
    try:
        with open(DEFAULT_CHECKPOINT, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(f.read(n)).get("__metadata__", {})
    except (OSError, ValueError, struct.error):
        return None
    return meta.get("version")
