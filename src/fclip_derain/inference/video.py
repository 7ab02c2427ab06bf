"""Video in, video out (PyAV: FFmpeg's codecs from a wheel, no system FFmpeg).

Each frame is derained with its neighbours by default: aligned by optical flow and fused, so
rain one frame keeps is removed where the others saw the scene without it
(inference/temporal.py, docs/video.md); `per_frame=True` derains each frame alone. Frames are
decoded, derained and encoded as a stream, holding only the fusion's window in memory.

The output keeps the input's frame rate, size and frame count, encoded as H.264 (yuv420p) in the
input's container; audio is not copied. Written to a temporary file and renamed, so a failure
leaves nothing behind.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..errors import FclipError
from ..weights import atomic_write


def _av():
    try:
        import av
        return av
    except ImportError:
        raise FclipError("video needs PyAV: pip install 'fclip-derain[video]'") from None


def derain_video(derainer, src: str | Path, dest: str | Path, progress: bool = True, codec: str = "libx264",
                 per_frame: bool = False) -> Path:
    av = _av()
    if not per_frame:
        from .temporal import _cv2
        _cv2()  # a missing extra is one error before any work
    src, dest = Path(src), Path(dest)

    def write(tmp: Path):
        try:
            inp = av.open(str(src))
        except Exception as e:
            raise FclipError(f"{src}: cannot open video ({str(e).splitlines()[0]})") from None
        with inp:
            if not inp.streams.video:
                raise FclipError(f"{src}: no video stream")
            vs = inp.streams.video[0]
            rate = vs.average_rate or vs.guessed_rate or Fraction(25, 1)
            total = vs.frames or None
            with av.open(str(tmp), mode="w", format=_container(dest)) as out:
                os_ = out.add_stream(codec, rate=rate)
                os_.width, os_.height = vs.codec_context.width, vs.codec_context.height
                os_.pix_fmt = "yuv420p"
                from ..progress import progress_bar
                bar = progress_bar(total=total, desc=src.name, unit="frame", enabled=progress)
                try:
                    frames = (frame.to_ndarray(format="rgb24") for frame in inp.decode(vs))
                    for y in derainer.derain_stream(frames, per_frame=per_frame):
                        for packet in os_.encode(av.VideoFrame.from_ndarray(y, format="rgb24")):
                            out.mux(packet)
                        bar.update(1)
                    for packet in os_.encode():
                        out.mux(packet)
                except av.error.FFmpegError as e:
                    raise FclipError(f"{src}: video decoding failed ({e})") from None
                finally:
                    bar.close()

    return atomic_write(dest, write)


def _container(dest: Path) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".avi": "avi", ".mkv": "matroska", ".webm": "webm"}.get(
        dest.suffix.lower(), "mp4")


def video_info(path) -> dict:
    av = _av()
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        n = sum(1 for _ in c.decode(vs))
        return {"fps": float(vs.average_rate), "frames": n, "width": vs.codec_context.width,
                "height": vs.codec_context.height}
