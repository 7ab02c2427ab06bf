"""Video deraining with neighbouring frames (issue 36): the synthetic rain clips, the fusion, the
streaming API, videos and --sequence folders. Small frames, few frames, the tiny model moved off
the identity (trained_tiny_model), so a path that skips the model cannot pass."""
import weakref

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from conftest import rand_image  # noqa: E402
from fclip_derain.cli import main  # noqa: E402
from fclip_derain.data.rain_video import make_clip  # noqa: E402
from fclip_derain.errors import FclipError  # noqa: E402
from fclip_derain.inference import Derainer  # noqa: E402
from fclip_derain.inference import temporal  # noqa: E402
from fclip_derain.inference.temporal import FusionParams, temporal_stream  # noqa: E402
from fclip_derain.metrics import psnr_y  # noqa: E402
from fclip_derain.models import save_model  # noqa: E402


def photo(h=150, w=200, seed=0):
    """A textured 'photo': smooth shapes plus fine grain, so flow has something to follow."""
    import cv2
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 10), max(2, w // 10), 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def streak_opening(frame: np.ndarray) -> np.ndarray:
    """A crude per-frame deraining: a horizontal grey opening removes thin bright streaks, and
    blurs the scene's own fine detail with them."""
    import cv2
    return cv2.morphologyEx(frame, cv2.MORPH_OPEN, np.ones((1, 5), np.uint8))


def mean_psnr(frames, clean):
    return float(np.mean([psnr_y(a, b) for a, b in zip(frames, clean)]))


def test_clips_are_deterministic_and_rain_falls_between_frames():
    p = photo()
    a, b = make_clip(p, seed=3, frames=4, size=(64, 96), camera="static"), \
        make_clip(p, seed=3, frames=4, size=(64, 96), camera="static")
    assert all(np.array_equal(x, y) for x, y in zip(a.rainy, b.rainy))
    assert all(np.array_equal(a.clean[0], c) for c in a.clean)  # static camera: one background
    rain = [x.astype(int) - c for x, c in zip(a.rainy, a.clean)]
    assert all((r > 8).mean() > 0.005 for r in rain)  # rain in every frame ...
    assert ((rain[0] > 8) != (rain[1] > 8)).mean() > 0.005  # ... and somewhere else in the next
    pan = make_clip(p, seed=3, frames=4, size=(64, 96), camera="pan", parallax=True)
    assert not np.array_equal(pan.clean[0], pan.clean[3])
    for cam in ("zoom", "shake"):
        assert len(make_clip(p, seed=1, frames=3, size=(64, 96), camera=cam).rainy) == 3
    with pytest.raises(ValueError, match="smaller"):
        make_clip(p, seed=0, size=(400, 96))


def run_both(clip, params=FusionParams()):
    per = [streak_opening(f) for f in clip.rainy]
    fused = list(temporal_stream(streak_opening, clip.rainy, params))
    return mean_psnr(per, clip.clean), mean_psnr(fused, clip.clean), per, fused


def test_static_clip_fusion_beats_per_frame():
    clip = make_clip(photo(), seed=5, frames=7, size=(96, 128), camera="static")
    per, fused, _, out = run_both(clip)
    assert len(out) == 7 and all(o.shape == (96, 128, 3) and o.dtype == np.uint8 for o in out)
    assert fused > per + 1.0, (per, fused)


def test_moving_camera_with_parallax_is_not_made_worse():
    clip = make_clip(photo(seed=1), seed=6, frames=7, size=(96, 128), camera="pan", parallax=True,
                     other=photo(seed=2))
    per, fused, _, _ = run_both(clip)
    assert fused > per, (per, fused)


def test_scene_cut_is_not_blended_across():
    a = make_clip(photo(seed=1), seed=1, frames=3, size=(96, 128), camera="static")
    b = make_clip(photo(seed=2), seed=2, frames=3, size=(96, 128), camera="static")
    frames, clean = a.rainy + b.rainy, a.clean + b.clean
    out = list(temporal_stream(streak_opening, frames))
    per = [streak_opening(f) for f in frames]
    for t in (2, 3):  # the frames either side of the cut: the other scene must not show through
        assert psnr_y(out[t], clean[t]) > psnr_y(per[t], clean[t]) - 0.5, t
    # ... at all: each frame comes out as if its scene were the whole clip (the other scene's
    # views, weighted down but not left out, change pixels by up to ~230 levels)
    alone = list(temporal_stream(streak_opening, a.rainy)) + list(temporal_stream(streak_opening, b.rainy))
    for t in range(6):
        assert np.abs(out[t].astype(int) - alone[t]).max() <= 1, t


def test_stream_holds_only_its_window(monkeypatch):
    n, r = 9, 1
    consumed, alive = [], []  # frames read; weak references to every input and output made

    class CountedFlows(temporal.FlowCache):
        most = 0

        def __call__(self, i, j):
            flow = super().__call__(i, j)
            CountedFlows.most = max(CountedFlows.most, len(self.grey))
            return flow

    monkeypatch.setattr(temporal, "FlowCache", CountedFlows)

    def frames():
        for i in range(n):
            consumed.append(i)
            frame = rand_image(32, 48, i)
            alive.append(weakref.ref(frame))
            yield frame

    def derain(f):
        y = 255 - f
        alive.append(weakref.ref(y))
        return y

    lag, held = [], []
    for _ in temporal_stream(derain, frames(), FusionParams(radius=r)):
        lag.append(len(consumed))
        held.append(sum(ref() is not None for ref in alive))
    assert lag == [min(t + r + 1, n) for t in range(n)]  # reads only r frames ahead ...
    # ... and lets go of what no later frame needs: inputs and outputs of 2 r + 1 frames at most
    # (the one yielded is the caller's), and as many frames' flows
    assert max(held) <= 2 * (2 * r + 1), held
    assert CountedFlows.most <= 2 * r + 1


def test_frames_too_small_for_flow_come_out_per_frame():
    # OpenCV's DIS refuses the first two; wide frames a little under 32 px high (the third) it
    # follows with the default preset but crashes the process on with `fast` (temporal.MIN_FLOW_SIDE).
    # Wide frames under 16 px high are left out here: without the guard they crash pytest itself.
    for h, w in ((10, 10), (8, 11), (31, 64)):
        frames = [rand_image(h, w, i) for i in range(4)]
        out = list(temporal_stream(lambda f: 255 - f, frames))
        assert all(np.array_equal(o, 255 - f) for o, f in zip(out, frames)), (h, w)


@pytest.fixture
def derainer(trained_tiny_model):
    return Derainer(model=trained_tiny_model, device="cpu", half=False)  # bf16 is ~10x slower at these sizes


def changed(y, x) -> float:
    """Mean absolute difference of two uint8 images: the trained tiny model moves pixels by ~30."""
    return float(np.abs(np.asarray(y, dtype=np.float32) - np.asarray(x, dtype=np.float32)).mean())


def test_derain_stream_types_order_and_errors(derainer):
    frames = [rand_image(32, 48, i) for i in range(4)]
    per = list(derainer.derain_stream(frames, per_frame=True))
    assert all(np.array_equal(p, derainer.derain(f)) for p, f in zip(per, frames))
    assert all(changed(p, f) > 10 for p, f in zip(per, frames))  # the model ran
    # a still camera: fusing its frames without the model would give the input back exactly
    still = [photo(32, 48)] * 3
    assert all(changed(y, still[0]) > 10 for y in derainer.derain_stream(still))
    pil = list(derainer.derain_stream([Image.fromarray(f) for f in frames]))
    assert len(pil) == 4 and all(isinstance(p, Image.Image) and p.size == (48, 32) for p in pil)
    with pytest.raises(FclipError, match="radius"):
        derainer.derain_stream(frames, radius=0)
    with pytest.raises(FclipError, match="iterable"):
        derainer.derain_stream(3)
    with pytest.raises(FclipError, match="frame 2: size 40x32 differs"):
        list(derainer.derain_stream(frames[:2] + [rand_image(32, 40)]))
    with pytest.raises(FclipError, match="frame 0: expected an HxWx3 uint8"):
        list(derainer.derain_stream([frames[0].astype(np.float32)]))
    with pytest.raises(FclipError, match="frame 1: expected an HxWx3 uint8 array or a PIL image"):
        list(derainer.derain_stream([frames[0], "x.png"]))


def _write_video(path, n=7, h=48, w=64):
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            for pkt in s.encode(av.VideoFrame.from_ndarray(rand_image(h, w, i), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


@pytest.mark.parametrize("per_frame", [False, True])
def test_video_keeps_fps_size_and_frame_count(derainer, tmp_path, per_frame):
    pytest.importorskip("av")
    from fclip_derain.inference.video import derain_video, video_info
    src = tmp_path / "in.mp4"
    _write_video(src)
    info = video_info(derain_video(derainer, src, tmp_path / "out.mp4", progress=False, per_frame=per_frame))
    assert (info["frames"], info["width"], info["height"]) == (7, 64, 48)
    assert abs(info["fps"] - 12) < 1e-6


@pytest.fixture
def ckpt(trained_tiny_model, tmp_path):
    return str(save_model(trained_tiny_model, tmp_path / "tiny.safetensors"))


def derain_cli(ckpt, *args) -> int:
    return main(["derain", *map(str, args), "-c", ckpt, "--precision", "fp32", "-q"])


def write_clip(folder, n=3, h=32, w=48, seed=0):
    """A clip from a still camera, frame000.png...: fusing its frames without the model would give
    the input back exactly, so an output that differs from its input shows the model ran."""
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(photo(h, w, seed)).save(folder / f"frame{i:03d}.png")
    return folder


def test_sequence_writes_each_frame_under_its_name(ckpt, tmp_path, capsys):
    src = tmp_path / "clip"
    src.mkdir()
    for i in (1, 2, 10):  # numeric order: 1, 2, 10
        Image.fromarray(rand_image(32, 48, i)).save(src / f"f{i}.jpg", quality=95)
    Image.fromarray(rand_image(32, 48, 9)[..., 0]).save(src / "f11.png")  # grey stays grey
    out = tmp_path / "out"
    assert main(["derain", str(src), "--sequence", "-o", str(out), "-c", ckpt, "--precision", "fp32", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["f1.jpg", "f10.jpg", "f11.png", "f2.jpg"]
    assert Image.open(out / "f11.png").mode == "L"
    assert "done: 4" in capsys.readouterr().err
    out2 = tmp_path / "out2"
    assert main(["derain", str(src), "--sequence", "--per-frame", "--format", "png", "--suffix", "_d",
                 "-o", str(out2), "-c", ckpt, "--precision", "fp32", "-q", "--compare"]) == 0
    names = sorted(p.name for p in out2.iterdir())
    assert "f1_d.png" in names and "f1_d_compare.png" in names and len(names) == 8
    # nothing left to do: skipped, not derained again
    assert main(["derain", str(src), "--sequence", "--skip-existing", "-o", str(out), "-c", ckpt,
                 "--precision", "fp32", "-q"]) == 0
    assert "skipped: 4" in capsys.readouterr().err


def test_sequence_bad_input_is_one_clear_error(ckpt, tmp_path, capsys):
    src = tmp_path / "clip"
    src.mkdir()
    Image.fromarray(rand_image(32, 48, 1)).save(src / "a.png")
    Image.fromarray(rand_image(30, 48, 2)).save(src / "b.png")
    out = tmp_path / "out"
    assert main(["derain", str(src), "--sequence", "-o", str(out), "-c", ckpt, "--precision", "fp32", "-q"]) == 1
    err = capsys.readouterr().err
    assert "b.png: frame size 48x30 differs from a.png's 48x32" in err and "Traceback" not in err
    assert not out.exists()  # checked before any work: nothing written, no empty folder left
    assert main(["derain", str(src / "a.png"), "--sequence", "-o", str(out), "-c", ckpt]) == 2  # a usage error
    assert "--sequence takes folders of frames" in capsys.readouterr().err
    assert main(["derain", str(src), "--sequence", "--engine", "ray", "-o", str(out), "-c", ckpt]) == 2
    assert "local engine" in capsys.readouterr().err


def test_cli_video_default_and_per_frame(ckpt, tmp_path, capsys):
    pytest.importorskip("av")
    from fclip_derain.inference.video import video_info
    src = tmp_path / "clip.mp4"
    _write_video(src, n=4, h=32, w=48)
    for flag in ([], ["--per-frame"]):
        out = tmp_path / f"out{len(flag)}"
        assert main(["derain", str(src), "-o", str(out), "-c", ckpt, "--precision", "fp32", "-q"] + flag) == 0
        assert video_info(out / "clip.mp4")["frames"] == 4


def test_sequence_clips_go_to_folders_of_their_names(ckpt, tmp_path, capsys):
    """Clips numbered alike (frame000.png, ...) each get their own folder, as datasets lay them out."""
    a, b = write_clip(tmp_path / "clipA", seed=0), write_clip(tmp_path / "clipB", seed=10)
    out = tmp_path / "out"
    assert derain_cli(ckpt, a, b, "--sequence", "-o", out) == 0
    assert "done: 6, skipped: 0, failed: 0" in capsys.readouterr().err
    for clip in (a, b):
        assert sorted(p.name for p in (out / clip.name).iterdir()) == ["frame000.png", "frame001.png", "frame002.png"]
    assert changed(Image.open(out / "clipA/frame001.png"), Image.open(a / "frame001.png")) > 10  # derained
    assert changed(Image.open(out / "clipA/frame001.png"), Image.open(out / "clipB/frame001.png")) > 10
    # one folder: its frames straight into -o, as before
    assert derain_cli(ckpt, a, "--sequence", "-o", tmp_path / "one") == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["frame000.png", "frame001.png", "frame002.png"]
    # two clips of one folder name would share a folder: the second is refused, in one line
    c = write_clip(tmp_path / "other" / "clipA", seed=20)
    assert derain_cli(ckpt, a, c, "--sequence", "-o", tmp_path / "same") == 1
    err = capsys.readouterr().err
    assert "done: 3, skipped: 0, failed: 1" in err and f"{c}: has the folder name of {a}" in err
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["clipA"]


@pytest.mark.parametrize("per_frame", [False, True])
def test_sequence_corrupt_frame_is_skipped_and_the_clip_goes_on(ckpt, tmp_path, capsys, per_frame):
    src = write_clip(tmp_path / "clip", n=9)
    bad = src / "frame005.png"
    bad.write_bytes(bad.read_bytes()[:300])  # header intact, pixels cut off: fails only when decoded
    out = tmp_path / "out"
    assert derain_cli(ckpt, src, "--sequence", "-o", out, *(["--per-frame"] if per_frame else [])) == 1
    err = capsys.readouterr().err
    assert "done: 8, skipped: 0, failed: 1" in err and "frame005.png: cannot read image" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == [f"frame{i:03d}.png" for i in range(9) if i != 5]


def test_sequence_of_tiny_frames_does_not_stop_the_run(ckpt, tmp_path, capsys):
    tiny, ok = write_clip(tmp_path / "tiny", h=8, w=10), write_clip(tmp_path / "ok", seed=5)
    out = tmp_path / "out"
    assert derain_cli(ckpt, tiny, ok, "--sequence", "-o", out) == 0
    assert "done: 6, skipped: 0, failed: 0" in capsys.readouterr().err
    assert Image.open(out / "tiny/frame002.png").size == (10, 8) and len(list((out / "ok").iterdir())) == 3


def _turned(path, upright: np.ndarray):
    """Save `upright` stored a quarter turn away, with the EXIF orientation (6) that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright, -1)).save(path, exif=exif.tobytes())


def test_sequence_sizes_are_checked_upright_before_any_work(ckpt, tmp_path, capsys):
    src = write_clip(tmp_path / "clip", n=3)  # 48x32
    _turned(src / "frame003.png", rand_image(32, 48, 3))  # stored 32x48, upright 48x32: fits
    out = tmp_path / "out"
    assert derain_cli(ckpt, src, "--sequence", "-o", out) == 0
    assert "done: 4" in capsys.readouterr().err
    assert all(Image.open(p).size == (48, 32) for p in out.iterdir())
    # stored 48x32 like the others, upright 32x48: refused by the header pass, nothing written
    _turned(src / "frame004.png", rand_image(48, 32, 4))
    out2 = tmp_path / "out2"
    assert derain_cli(ckpt, src, "--sequence", "-o", out2) == 1
    err = capsys.readouterr().err
    assert ("frame004.png: frame size 32x48 (upright: its EXIF orientation turns it) differs from "
            "frame000.png's 48x32") in err
    assert not out2.exists()


def test_sequence_per_frame_keeps_16_bit_grey(ckpt, tmp_path, capsys):
    src = tmp_path / "clip"
    src.mkdir()
    for i in range(3):  # values between the multiples of 257 an 8-bit image would give
        grey = rand_image(32, 48, i)[..., 0].astype(np.uint16) * 256 + np.uint16(37 * i + 11)
        Image.fromarray(grey).save(src / f"f{i}.png")
    assert derain_cli(ckpt, src, "--sequence", "--per-frame", "-o", tmp_path / "seq") == 0
    assert derain_cli(ckpt, src / "f1.png", "-o", tmp_path / "img") == 0  # the image path, 16 bits kept
    y = np.asarray(Image.open(tmp_path / "seq" / "f1.png"))
    assert y.dtype.itemsize == 2 and (y % 257).any()
    assert np.array_equal(y, np.asarray(Image.open(tmp_path / "img" / "f1.png")))
