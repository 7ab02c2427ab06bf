"""Video in, video out (PyAV: FFmpeg's codecs from a wheel, no system FFmpeg).

Each frame is derained with its neighbours by default: aligned by optical flow and fused, so
rain one frame keeps is removed where the others saw the scene without it
(inference/temporal.py, docs/video.md); `per_frame=True` derains each frame alone. Frames are
decoded, derained and encoded as a stream, holding only the fusion's window in memory.

The output keeps the input's frame rate, size and frame count, encoded as H.264 (yuv420p) in the
input's container, and its sound: the first audio stream is copied in sync, re-encoded only where
the container cannot take its codec (inference/audio.py). Written to a temporary file and
renamed, so a failure leaves nothing behind.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ..errors import FclipError
from ..weights import atomic_write
from .audio import AudioTrack, _first_line, _q


def _av():
    try:
        import av
        return av
    except ImportError:
        raise FclipError("video needs PyAV: pip install 'fclip-derain[video]'") from None


def derain_video(derainer, src: str | Path, dest: str | Path, progress: bool = True, codec: str = "libx264",
                 per_frame: bool = False, audio: bool = True) -> Path:
    """Derain the video `src` into `dest` (its suffix picks the container); `audio=False` leaves
    the sound out."""
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
            ain = inp.streams.audio[0] if audio and inp.streams.audio else None
            track = AudioTrack(ain, src.name) if ain is not None else None
            rate = vs.average_rate or vs.guessed_rate or Fraction(25, 1)
            total = vs.frames or None
            out, os_ = _open_output(av, tmp, dest, codec, rate, vs, track, src)
            with out:
                from ..progress import progress_bar
                bar = progress_bar(total=total, desc=src.name, unit="frame", enabled=progress)

                def frames():
                    # one pass over the file: video frames go to the model, audio packets to the
                    # output as they come (the muxer interleaves them with the derained frames)
                    for packet in inp.demux(*[s for s in (vs, ain) if s is not None]):
                        if packet.stream is vs:
                            for frame in packet.decode():
                                if track is not None and frame.pts is not None:
                                    track.start(frame.pts * _q(frame.time_base))
                                yield frame.to_ndarray(format="rgb24")
                        else:
                            track.feed(packet)

                try:
                    for y in derainer.derain_stream(frames(), per_frame=per_frame):
                        for packet in os_.encode(av.VideoFrame.from_ndarray(y, format="rgb24")):
                            out.mux(packet)
                        bar.update(1)
                    for packet in os_.encode():
                        out.mux(packet)
                    if track is not None:
                        track.finish()
                except av.error.FFmpegError as e:
                    raise FclipError(f"{src}: video decoding failed ({e})") from None
                finally:
                    bar.close()

    return atomic_write(dest, write)


def _open_output(av, tmp: Path, dest: Path, codec: str, rate, vs, track, src: Path):
    """-> (output container with its header written, its video stream). With audio, the ways of
    `track` are tried in order (copy, re-encode), then none: the header is where a container
    refuses a codec, and it is written before any frame is derained."""
    fmt = _container(dest)
    for mode in (track.modes() if track is not None else []) + [None]:
        out = av.open(str(tmp), mode="w", format=fmt)
        try:
            os_ = out.add_stream(codec, rate=rate)
            os_.width, os_.height = vs.codec_context.width, vs.codec_context.height
            os_.pix_fmt = "yuv420p"
            if mode is not None:
                track.add_to(out, mode)
            out.start_encoding()
        except Exception as e:  # noqa: BLE001  FFmpeg's refusals come as several error types
            try:
                out.close()
            except Exception:  # noqa: BLE001  a half-set-up container may not close cleanly
                pass
            if mode is None:
                raise FclipError(f"{src}: cannot write {codec} video into {dest.suffix or fmt} "
                                 f"({_first_line(e)})") from None
            track.refused(mode, e)
            continue
        if track is not None:
            track.opened()
        return out, os_


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
