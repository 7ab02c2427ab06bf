"""Scoring datasets the way the papers do: derain, save uint8 PNG, score the saved PNG.

`evaluate_model` streams one image at a time (memory flat in the number of images). Set scores
are means over images; the average over sets is the mean of set means (Table 3's "Average").
"""
from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.io import load_image, save_image, to_float, to_uint8
from .data.pairing import Pair
from .errors import FclipError, ImageError, MetricError
from .metrics import psnr_y, ssim_y


@dataclass
class SetResult:
    name: str
    per_image: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def mean(self, key: str) -> float:
        vals = [r[key] for r in self.per_image if key in r]
        return float(np.mean(vals)) if vals else float("nan")

    def summary(self, keys) -> dict:
        out = {"dataset": self.name, "images": len(self.per_image), "failed": len(self.failed),
               **{k: self.mean(k) for k in keys}}
        routes = [r["route"] for r in self.per_image if "route" in r]
        if routes:  # the routed default model: how many images went to each expert
            out["routes"] = ", ".join(f"{k} {routes.count(k)}" for k in ("light", "blend", "heavy") if k in routes)
        return out


def score_pair(pred: np.ndarray, target: np.ndarray, name: str, extra=()) -> dict:
    if pred.shape != target.shape:
        raise ImageError(f"{name}: output {pred.shape[1]}x{pred.shape[0]} and target "
                         f"{target.shape[1]}x{target.shape[0]} differ in size")
    try:
        rec = {"image": name, "psnr": psnr_y(pred, target), "ssim": ssim_y(pred, target)}
        for metric_name, fn in extra:
            rec[metric_name] = fn(pred, target)
    except MetricError as e:
        raise MetricError(f"{name}: {e}") from None
    return rec


def model_derain(model, device=None):
    """The bare model as a `derain(uint8 HxWx3) -> uint8 HxWx3` function: one fp32 pass, no tiling,
    no ensemble, the package's one rounding (`quantize`). Training validation, the ship script
    and the CI gate on the shipped weights score this."""
    import torch
    device = device or next(model.parameters()).device

    def derain(a: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return to_uint8(model(to_float(a)[None].to(device))[0])
    return derain


def evaluate_model(derain, pairs: list[Pair], name: str, save_dir: str | Path | None = None,
                   progress: bool = True, extra=(), annotate=None) -> SetResult:
    """`derain(uint8 HxWx3) -> uint8 HxWx3`. Outputs are written as PNG and re-read before scoring.
    `annotate()`: fields added to each image's record after its derain (e.g. the expert that ran)."""
    res = SetResult(name)
    tmp = None
    if save_dir is None:
        tmp = tempfile.TemporaryDirectory()
        save_dir = tmp.name
    save_dir = Path(save_dir)
    it = _bar(pairs, name, progress)
    try:
        for p in it:
            try:
                out = derain(load_image(p.input))
                path = save_image(save_dir / f"{p.input.stem}.png", out)
                rec = score_pair(load_image(path), load_image(p.target), p.input.name, extra)
                res.per_image.append({**rec, **(annotate() if annotate else {})})
            except (ImageError, FclipError) as e:
                res.failed.append(str(e))
    finally:
        if tmp:
            tmp.cleanup()
    return res


def score_folders(pred_dir, target_dir, name: str = "results", progress: bool = True, extra=()) -> SetResult:
    """Score an existing folder of results against targets (pairing by name)."""
    from .data.pairing import pair_folders
    pairs = pair_folders(pred_dir, target_dir, allow_unpaired=False)
    res = SetResult(name)
    for p in _bar(pairs, name, progress):
        try:
            res.per_image.append(score_pair(load_image(p.input), load_image(p.target), p.input.name, extra))
        except (ImageError, FclipError) as e:
            res.failed.append(str(e))
    return res


def _bar(items, desc, enabled):
    from .progress import progress_bar
    return progress_bar(items, desc=desc, enabled=enabled, leave=False)


def format_table(rows: list[dict], keys: list[str]) -> str:
    head = ["dataset", "images"] + [k.upper() for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["dataset"], str(r["images"])] + [_fmt(k, r.get(k)) for k in keys]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def _fmt(k, v):
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:.4f}" if k in ("ssim", "lpips") else f"{v:.2f}" if k == "psnr" else f"{v:.3f}"


def with_average(rows: list[dict], keys: list[str]) -> list[dict]:
    if len(rows) < 2:
        return rows
    avg = {"dataset": "Average", "images": sum(r["images"] for r in rows)}
    for k in keys:
        avg[k] = float(np.mean([r[k] for r in rows]))
    return rows + [avg]



def write_reports(rows: list[dict], per_image: dict, json_path=None, csv_path=None):
    from .weights import atomic_write
    if json_path:
        text = json.dumps({"sets": rows, "per_image": per_image}, indent=2)
        atomic_write(json_path, lambda t: Path(t).write_text(text))
    if csv_path:
        buf = io.StringIO()
        keys = list(rows[0].keys()) if rows else []
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
        atomic_write(csv_path, lambda t: Path(t).write_text(buf.getvalue()))
