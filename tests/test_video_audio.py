"""The sound of a derained video (issue 36): copied where the container takes its codec,
re-encoded where it does not, left out (with one line on stderr) where nothing can carry it, and
kept in sync with the picture. Tiny clips made with PyAV: 5 frames of 32x48 at 10 fps and a sine
with a click in it; the tiny model."""
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from conftest import rand_image  # noqa: E402
from fclip_derain.cli import main  # noqa: E402
from fclip_derain.inference import Derainer  # noqa: E402
from fclip_derain.inference.video import derain_video, video_info  # noqa: E402
from fclip_derain.models import save_model  # noqa: E402

FPS, FRAMES, CLICK = 10, 5, 0.3  # the click: 10 ms at full scale, 0.3 s after the first frame


def make_clip(path, acodec="aac", rate=44100, layout="mono", audio_start=0.0, video_start=0.0, fmt=None):
    """An H.264 clip whose first frame is at `video_start` s, with (unless acodec is None) a
    440 Hz sine from `audio_start` s to the end of the last frame, with a click at CLICK s."""
    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 48, 32, "yuv420p"
        a = None
        if acodec:
            a = c.add_stream(acodec, rate=rate)
            a.layout = layout
        for i in range(FRAMES):
            f = av.VideoFrame.from_ndarray(rand_image(32, 48, i), format="rgb24")
            f.pts, f.time_base = round(video_start * FPS) + i, Fraction(1, FPS)
            c.mux(vs.encode(f))
        c.mux(vs.encode())
        if a is None:
            return path
        t = audio_start + np.arange(int((video_start + FRAMES / FPS - audio_start) * rate)) / rate
        x = 0.3 * np.sin(2 * np.pi * 440 * t)
        x[(t >= CLICK) & (t < CLICK + 0.01)] = 0.95
        channels = len(av.AudioLayout(layout).channels)
        s16 = np.repeat((x * 32767).astype(np.int16)[:, None], channels, 1)  # interleaved
        start = round(audio_start * rate)
        for k in range(0, len(s16), 1024):
            f = av.AudioFrame.from_ndarray(s16[k:k + 1024].reshape(1, -1), format="s16", layout=layout)
            f.sample_rate, f.pts, f.time_base = rate, start + k, Fraction(1, rate)
            c.mux(a.encode(f))
        c.mux(a.encode())
    return path


def sound(path):
    """-> None without audio, else dict: codec, rate, channels, samples (channels x n, float in
    [-1, 1]) and click (its time after the first video frame, s)."""
    with av.open(str(path)) as c:
        v = next(c.decode(video=0))
        v0 = v.pts * v.time_base
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        frames = list(c.decode(a))
        ch = len(frames[0].layout.channels)
        parts = []
        for f in frames:
            x = f.to_ndarray()
            x = x if f.format.is_planar else x.reshape(-1, ch).T
            if x.dtype.kind in "iu":
                info = np.iinfo(x.dtype)
                x = (x.astype(np.float64) - (info.max + 1 if x.dtype.kind == "u" else 0) / 2) / (info.max + 1)
            parts.append(x.astype(np.float64))
        x = np.concatenate(parts, 1)
        first = frames[0].pts * frames[0].time_base
        click = float(first - v0) + np.argmax(np.abs(x[0]) > 0.8) / frames[0].sample_rate
        return {"codec": a.codec_context.name, "rate": frames[0].sample_rate, "channels": ch,
                "samples": x, "click": click}


@pytest.fixture
def derainer(tiny_model):
    return Derainer(model=tiny_model, device="cpu", half=False)


@pytest.fixture
def ckpt(tiny_model, tmp_path):
    return str(save_model(tiny_model, tmp_path / "tiny.safetensors"))


def derain_cli(src, out, ckpt, *flags):
    return main(["derain", str(src), "-o", str(out), "-c", ckpt, "--precision", "fp32", "-q", *flags])


def test_aac_is_copied_into_mp4_and_stays_in_sync(ckpt, tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mp4", audio_start=0.1)  # sound starts 0.1 s after the picture
    assert derain_cli(src, tmp_path / "out", ckpt) == 0  # neighbouring frames (the default path)
    assert "audio" not in capsys.readouterr().err  # a copy needs no word
    out = tmp_path / "out" / "clip.mp4"
    assert video_info(out)["frames"] == FRAMES
    a, b = sound(src), sound(out)
    assert b is not None, "the derained video lost its sound"
    assert (b["codec"], b["rate"], b["channels"]) == ("aac", 44100, 1)
    assert np.array_equal(a["samples"], b["samples"])  # the very packets: decoded sample for sample
    assert abs(b["click"] - a["click"]) < 1e-4 and abs(b["click"] - CLICK) < 0.03


def test_copy_on_the_per_frame_path_keeps_sync_when_the_picture_starts_late(derainer, tmp_path):
    # the first frame at 0.2 s, the sound from 0: the output's picture starts at 0, the sound
    # must move with it
    src = make_clip(tmp_path / "clip.mkv", acodec="pcm_s16le", rate=48000, layout="stereo", video_start=0.2)
    out = derain_video(derainer, src, tmp_path / "out.mkv", progress=False, per_frame=True)
    a, b = sound(src), sound(out)
    assert b is not None and (b["codec"], b["rate"], b["channels"]) == ("pcm_s16le", 48000, 2)
    assert np.array_equal(a["samples"], b["samples"])  # Matroska keeps the sound before the picture too
    assert abs(a["click"] - (CLICK - 0.2)) < 1e-3 and abs(b["click"] - a["click"]) < 1e-3


def test_sound_moves_by_less_than_the_input_audio_time_base(derainer, tmp_path, capsys):
    # AVI counts ADPCM audio in blocks (2041 samples, 93 ms here) and starts the picture one frame
    # (100 ms) after it: the sound must move by 100 ms, not by one block
    src = make_clip(tmp_path / "clip.avi", acodec="adpcm_ima_wav", rate=22050)
    out = derain_video(derainer, src, tmp_path / "out.mkv", progress=False)  # Matroska takes no ADPCM
    assert "re-encoded as aac" in capsys.readouterr().err
    a, b = sound(src), sound(out)
    assert b is not None and (b["codec"], b["rate"]) == ("aac", 22050)
    assert a["click"] < CLICK - 0.05  # the input's picture does start late
    assert abs(b["click"] - a["click"]) < 1e-3


def test_audio_the_container_cannot_take_is_reencoded_as_aac(ckpt, tmp_path, capsys):
    # a camera's QuickTime file with mu-law sound, named .mp4: the output is a real MP4, which
    # has no mu-law
    src = make_clip(tmp_path / "cam.mp4", acodec="pcm_mulaw", rate=8000, fmt="mov")
    assert derain_cli(src, tmp_path / "out", ckpt) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "audio" in line]
    assert len(err) == 1 and "pcm_mulaw" in err[0] and "re-encoded as aac" in err[0], err
    out = tmp_path / "out" / "cam.mp4"
    assert video_info(out)["frames"] == FRAMES
    a, b = sound(src), sound(out)
    assert b is not None and (b["codec"], b["rate"], b["channels"]) == ("aac", 8000, 1)
    n = a["samples"].shape[1]
    assert n <= b["samples"].shape[1] <= n + 1024  # the same length, up to one AAC frame of padding
    diff = b["samples"][0, :n] - a["samples"][0]
    snr = 10 * np.log10(np.mean(a["samples"][0] ** 2) / np.mean(diff ** 2))
    assert snr > 15, snr  # close to the input: re-encoded, not merely present
    assert abs(b["click"] - a["click"]) < 2e-3


def test_audio_nothing_can_carry_is_left_out_with_one_line(ckpt, tmp_path, capsys):
    # 4 kHz mu-law: no MP4 codec for it as it is, and the AAC encoder takes no 4 kHz
    src = make_clip(tmp_path / "cam.mp4", acodec="pcm_mulaw", rate=4000, fmt="mov")
    assert derain_cli(src, tmp_path / "out", ckpt) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "audio" in line]
    assert len(err) == 1 and "4000 Hz" in err[0] and "without sound" in err[0], err
    out = tmp_path / "out" / "cam.mp4"
    assert video_info(out)["frames"] == FRAMES and sound(out) is None


def test_audio_failing_partway_does_not_cost_the_video(derainer, tmp_path, capsys, monkeypatch):
    from fclip_derain.inference import audio
    src = make_clip(tmp_path / "clip.mp4")
    moved = audio.AudioTrack._moved
    calls = []

    def breaks_after_some(self, ts, tb):
        calls.append(ts)
        if len(calls) > 10:  # pts and dts of the first 5 packets go through
            raise ValueError("corrupt packet")
        return moved(self, ts, tb)

    monkeypatch.setattr(audio.AudioTrack, "_moved", breaks_after_some)
    out = derain_video(derainer, src, tmp_path / "out.mp4", progress=False)
    err = [line for line in capsys.readouterr().err.splitlines() if "audio" in line]
    assert len(err) == 1 and "audio stopped partway (corrupt packet)" in err[0], err
    assert video_info(out)["frames"] == FRAMES
    b = sound(out)
    assert b is not None and 0 < b["samples"].shape[1] < sound(src)["samples"].shape[1]


def test_silent_clip_and_audio_false_give_no_audio_stream(derainer, tmp_path):
    silent = derain_video(derainer, make_clip(tmp_path / "silent.mp4", acodec=None), tmp_path / "o1.mp4",
                          progress=False)
    assert video_info(silent)["frames"] == FRAMES and sound(silent) is None
    muted = derain_video(derainer, make_clip(tmp_path / "clip.mp4"), tmp_path / "o2.mp4", progress=False,
                         audio=False)
    assert video_info(muted)["frames"] == FRAMES and sound(muted) is None
