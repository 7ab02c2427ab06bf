"""The sound of a derained video (issue 36): is it kept, in sync, and what does it cost?

    python benchmarks/video_audio.py --json benchmarks/results/video-audio.json

A real rainy clip (real-video/r2, 10 frames of 528x282, written as H.264 at 10 fps) gets a sound
track made here (no rainy clip in the data has sound): a 440 Hz sine from 0.1 s after the first
frame, with a 10 ms click at 0.5 s. Two versions: AAC 44.1 kHz in MP4 (copied into the output)
and 8 kHz mu-law in a QuickTime file named .mp4 (the output MP4 cannot take mu-law: re-encoded).
Each is derained by `derain_video` with the shipped default model (neighbouring frames, the
default), with its sound and with `audio=False`, once each after one warm-up run, the first case
in that order, the second in the other; then by an identity "model" (no deraining: the time left
is decoding, encoding and the sound), `--repeats` times each, interleaved, best kept.
Reported: output codec, whether the decoded samples equal the input's (copy) or their SNR
(re-encode), where the click lands relative to the first frame in input and output, and the
times.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from fclip_derain import Derainer
from fclip_derain.benchmark import cpu_model
from fclip_derain.data.io import load_image
from fclip_derain.data.pairing import list_images
from fclip_derain.inference.video import derain_video

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FPS, AUDIO_START, CLICK = 10, 0.1, 0.5


def write_clip(path: Path, frames, acodec: str, rate: int, fmt: str | None = None) -> Path:
    with av.open(str(path), "w", format=fmt) as c:
        h, w = frames[0].shape[:2]
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        a = c.add_stream(acodec, rate=rate)
        a.layout = "mono"
        for f in frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:vs.height, :vs.width]),
                                                       format="rgb24")))
        c.mux(vs.encode())
        t = AUDIO_START + np.arange(int((len(frames) / FPS - AUDIO_START) * rate)) / rate
        x = 0.3 * np.sin(2 * np.pi * 440 * t)
        x[(t >= CLICK) & (t < CLICK + 0.01)] = 0.95
        s16 = (x * 32767).astype(np.int16)
        for k in range(0, len(s16), 1024):
            f = av.AudioFrame.from_ndarray(s16[None, k:k + 1024], format="s16", layout="mono")
            f.sample_rate, f.pts, f.time_base = rate, round(AUDIO_START * rate) + k, Fraction(1, rate)
            c.mux(a.encode(f))
        c.mux(a.encode())
    return path


def sound(path: Path) -> dict | None:
    """codec, rate, samples (mono float) from start_s, and the click's time, all after the first video frame."""
    with av.open(str(path)) as c:
        v = next(c.decode(video=0))
        v0 = v.pts * v.time_base
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        frames = list(c.decode(audio=0))
        x = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])  # mono: planar or packed alike
        x = x / 32768 if x.dtype == np.int16 else x.astype(np.float64)  # mu-law decodes to s16, AAC to float
        sr, start = frames[0].sample_rate, float(frames[0].pts * frames[0].time_base - v0)
        return {"codec": c.streams.audio[0].codec_context.name, "rate": sr, "samples": x, "start_s": start,
                "click_s": start + np.argmax(np.abs(x) > 0.8) / sr}


class Identity:
    """Frames out as they came in: what the video path costs without a model."""

    def derain_stream(self, frames, per_frame=False):
        return iter(frames)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--clip", default="real-video/r2", help="folder of frames under the shared data")
    ap.add_argument("--repeats", type=int, default=3, help="identity runs per case (default: 3)")
    args = ap.parse_args()
    frames = [np.asarray(load_image(p)) for p in list_images(DATA / args.clip)]
    res = {"machine": f"{cpu_model()}, {torch.get_num_threads()} torch threads, {platform.machine()}",
           "clip": f"{args.clip}, {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} at {FPS} fps",
           "cases": {}}
    model = Derainer()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = {"AAC 44.1 kHz in MP4": write_clip(tmp / "aac.mp4", frames, "aac", 44100),
                 "mu-law 8 kHz (QuickTime named .mp4)": write_clip(tmp / "mulaw.mp4", frames, "pcm_mulaw", 8000,
                                                                   fmt="mov")}
        derain_video(model, cases["AAC 44.1 kHz in MP4"], tmp / "warm-up.mp4", progress=False)  # one-time costs
        for i, (name, src) in enumerate(cases.items()):
            out, mute = tmp / f"out-{src.name}", tmp / f"mute-{src.name}"
            runs = {"with sound": lambda: derain_video(model, src, out, progress=False),
                    "audio=False": lambda: derain_video(model, src, mute, progress=False, audio=False)}
            order = list(runs) if i % 2 == 0 else list(runs)[::-1]  # neither always goes first
            r = {"model_s": {k: timed(runs[k]) for k in order}}
            ident = {"with sound": [], "audio=False": []}
            for _ in range(args.repeats):
                ident["with sound"].append(timed(lambda: derain_video(Identity(), src, tmp / "i.mp4",
                                                                      progress=False, per_frame=True)))
                ident["audio=False"].append(timed(lambda: derain_video(Identity(), src, tmp / "i.mp4",
                                                                       progress=False, per_frame=True,
                                                                       audio=False)))
            r["identity_best_s"] = {k: min(v) for k, v in ident.items()}
            a, b = sound(src), sound(out)
            n = len(a["samples"])
            r.update({"input": {"codec": a["codec"], "rate": a["rate"], "click_s": a["click_s"]},
                      "output": {"codec": b["codec"], "rate": b["rate"], "click_s": b["click_s"]},
                      "sync_error_ms": 1000 * (b["click_s"] - a["click_s"]),
                      "samples_equal": bool(len(b["samples"]) == n and np.array_equal(a["samples"], b["samples"]))})
            if not r["samples_equal"]:  # compared where both have sound, sample by sample in time
                k = round((a["start_s"] - b["start_s"]) * a["rate"])  # an encoder may start earlier
                y = b["samples"][k:k + n] if k >= 0 else np.concatenate([np.zeros(-k), b["samples"]])[:n]
                m = min(n, len(y))
                d = y[:m] - a["samples"][:m]
                r["snr_db"] = float(10 * np.log10(np.mean(a["samples"][:m] ** 2) / np.mean(d ** 2)))
            res["cases"][name] = r
            print(name, json.dumps(r, indent=1))
    print(res["machine"])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
