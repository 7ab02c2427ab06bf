"""Image I/O, pairing rules, the training stream's determinism, synthetic rain."""
import io
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from fclip_derain.data.datasets import BatchStream, PairedSource, SyntheticSource, TrainPatches, holdout_split
from fclip_derain.data.io import load_image, save_image
from fclip_derain.data.pairing import pair_folders, pair_key, pairs_from
from fclip_derain.errors import FclipError, ImageError
from conftest import rand_image


def _png(path, arr):
    Image.fromarray(arr).save(path)
    return path


def test_modes_are_converted_to_rgb(tmp_path):
    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(g).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png").shape == (8, 8, 3)
    Image.fromarray((g.astype(np.uint16) * 257)).save(tmp_path / "g16.png")
    a16 = load_image(tmp_path / "g16.png")
    assert a16.dtype == np.uint8 and a16[..., 0].tolist() == g.tolist()
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert (load_image(tmp_path / "t.png") == 255).all()
    p = Image.fromarray(rand_image(6, 6)).convert("P")
    p.save(tmp_path / "p.gif")
    assert load_image(tmp_path / "p.gif").shape == (6, 6, 3)
    Image.fromarray(rand_image(6, 6)).convert("CMYK").save(tmp_path / "c.jpg")
    assert load_image(tmp_path / "c.jpg").shape == (6, 6, 3)


def test_exif_orientation_applied(tmp_path):
    arr = rand_image(10, 20)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    assert load_image(tmp_path / "r.jpg").shape == (20, 10, 3)


@pytest.mark.parametrize("content,match", [(b"", "empty"), (b"\x89PNG\r\n\x1a\nxxxx", "cannot read"),
                                           (b"random bytes" * 10, "cannot read")])
def test_bad_files_name_the_file(tmp_path, content, match):
    p = tmp_path / "bad image.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=match) as e:
        load_image(p)
    assert "bad image.png" in str(e.value)


def test_truncated_and_bomb_and_directory(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(rand_image(64, 64)).save(buf, "PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[:200])
    with pytest.raises(ImageError, match="trunc.png"):
        load_image(tmp_path / "trunc.png")
    # a PNG header claiming 50000 x 50000 pixels
    raw = buf.getvalue()
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    import zlib
    chunk = b"IHDR" + ihdr
    bomb = raw[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[33:]
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(ImageError, match="bomb.png.*(MP|bomb)"):
        load_image(tmp_path / "bomb.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path / "dir.png")


def test_save_is_atomic_and_keeps_icc(tmp_path):
    from PIL import ImageCms
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = Image.fromarray(rand_image(8, 8))
    src.info["icc_profile"] = icc
    out = save_image(tmp_path / "o.jpg", rand_image(8, 8), like=src)
    assert Image.open(out).info.get("icc_profile") == icc
    with pytest.raises(ImageError):
        save_image(tmp_path / "x.unknown", rand_image(4, 4))
    assert [p.name for p in tmp_path.iterdir()] == ["o.jpg"]  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize("a,b", [("rain-12", "norain-12"), ("12_3", "12"), ("rain12", "norain12"), ("007", "007")])
def test_pair_keys(a, b):
    assert pair_key(a) == pair_key(b)


def test_pairing_layouts_and_unpaired(tmp_path):
    for sub in ("rain", "norain"):
        (tmp_path / sub).mkdir()
    for i in (1, 2, 10):
        _png(tmp_path / "rain" / f"rain-{i}.png", rand_image(4, 4))
        _png(tmp_path / "norain" / f"norain-{i}.png", rand_image(4, 4))
    pairs = pairs_from(tmp_path)
    assert [p.input.name for p in pairs] == ["rain-1.png", "rain-2.png", "rain-10.png"]  # natural sort
    assert all(pair_key(p.input.stem) == pair_key(p.target.stem) for p in pairs)
    _png(tmp_path / "rain" / "rain-99.png", rand_image(4, 4))
    with pytest.raises(FclipError, match="rain-99.png.*--allow-unpaired"):
        pairs_from(tmp_path)
    warned = []
    assert len(pairs_from(tmp_path, allow_unpaired=True, warn=warned.append)) == 3 and warned
    with pytest.raises(FclipError, match="no paired layout"):
        pairs_from(tmp_path / "rain")


def test_real_sets_pair(data_dir):
    assert len(pairs_from(data_dir / "Rain100L")) == 100
    assert len(pairs_from(data_dir / "Rain12")) == 12
    pairs = pair_folders(data_dir / "RainTrainL" / "input", data_dir / "clean" / "BSDS500-test")
    assert len(pairs) == 200 and all(p.input.stem == p.target.stem for p in pairs)


def _tiny_pairs(tmp_path, n=4, h=40, w=52):
    (tmp_path / "input").mkdir()
    (tmp_path / "target").mkdir()
    for i in range(n):
        _png(tmp_path / "input" / f"{i}.png", rand_image(h, w, i))
        _png(tmp_path / "target" / f"{i}.png", rand_image(h, w, 100 + i))
    return pairs_from(tmp_path)


def test_stream_is_a_function_of_the_index(tmp_path):
    pairs = _tiny_pairs(tmp_path)
    mk = lambda: TrainPatches([PairedSource(pairs), SyntheticSource([p.target for p in pairs], "mixed")],
                              [1, 1], 32, seed=3)
    a, b = mk(), mk()
    for k in (0, 5, 17):
        assert all(torch.equal(x, y) for x, y in zip(a[k], b[k]))
    assert not torch.equal(a[0][0], a[1][0])
    x, y = BatchStream(a, 4)[2]
    assert x.shape == (4, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    # progressive patches: a size per sample index
    prog = TrainPatches([PairedSource(pairs)], [1], lambda k: 32 if k < 8 else 64, seed=0)
    assert prog[0][0].shape[-1] == 32 and prog[8][0].shape[-1] == 64  # smaller images are padded


def test_holdout_is_deterministic_and_disjoint(tmp_path):
    pairs = _tiny_pairs(tmp_path, n=10)
    tr, va = holdout_split(pairs, 3, seed=0)
    assert len(va) == 3 and len(tr) == 7 and not {p.input for p in tr} & {p.input for p in va}
    assert holdout_split(pairs, 3, seed=0)[1] == va
    with pytest.raises(FclipError, match="val_holdout"):
        holdout_split(pairs, 10)


class _VerticalStreaks:
    """A source whose rainy image has vertical bright lines (the target has none)."""
    def __len__(self):
        return 1

    def get(self, i, rng):
        a = np.full((64, 64, 3), 60, np.uint8)
        a[:, ::8] = 240
        return a, np.full((64, 64, 3), 60, np.uint8)


@pytest.mark.parametrize("rotations, sideways", [(True, True), ("any", True), ("upright", False),
                                                 (False, False), ("none", False)])
def test_upright_rotations_keep_rain_vertical(rotations, sideways):
    """Quarter turns put rain sideways, which no test set or photo has; `upright` keeps the
    streaks' direction (half turns and flips only)."""
    p = TrainPatches([_VerticalStreaks()], [1.0], 32, seed=0, rotations=rotations)
    turned = [bool((x[0].diff(dim=1).abs().sum() < x[0].diff(dim=0).abs().sum()).item())
              for x, _ in (p[k] for k in range(40))]
    assert any(turned) == sideways


def test_bad_rotations_value_is_named():
    from fclip_derain.train.config import load_config
    assert load_config(None, ["data.train=[{kind: paired, root: x}]", "data.rotations=upright"]).data.rotations == "upright"
    with pytest.raises(FclipError, match=r"data\.rotations"):
        load_config(None, ["data.train=[{kind: paired, root: x}]", "data.rotations=sideways"])


def test_no_rain_preset_gives_the_photo_as_input_and_target(tmp_path):
    # rain-free pairs teach "leave it alone": the input must be the target, byte for byte
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rand_image(48, 40, i)).save(paths[-1])
    patches = TrainPatches([SyntheticSource(paths, "none")], [1.0], 32, seed=0)
    for k in range(4):
        a, b = patches[k]
        assert a.shape == (3, 32, 32) and torch.equal(a, b)
