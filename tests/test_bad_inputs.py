"""One corpus of awkward and broken image files, driven through every entry point: derain, eval,
metrics, synth, training data, web upload. Broken files get one error line naming the file, the
others complete, and no partial output is left (docs/reliability.md counts the cases)."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fclip_derain.cli import main
from fclip_derain.models import save_model
from conftest import rand_image

BROKEN = ["empty.png", "trunc.png", "trunc.jpg", "random.jpg", "bomb.png", "dir.png"]
AWKWARD = ["tiny.png", "odd.png", "deep.png", "cmyk.jpg", "palette.png", "anim.gif", "rotated.jpg",
           "unicode ☔ photo.png"]


def _png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def make_corpus(d):
    """-> the folder, with every BROKEN and AWKWARD file (all 40x56 where the format allows)."""
    d.mkdir(parents=True, exist_ok=True)
    base = rand_image(40, 56, 1)
    png = _png_bytes(base)
    (d / "empty.png").write_bytes(b"")
    (d / "trunc.png").write_bytes(png[: len(png) // 2])
    jpg = io.BytesIO()
    Image.fromarray(base).save(jpg, "JPEG")
    (d / "trunc.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    (d / "random.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    chunk = b"IHDR" + struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)  # a 2.5 gigapixel header
    (d / "bomb.png").write_bytes(png[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:])
    (d / "dir.png").mkdir()
    Image.fromarray(rand_image(1, 1, 2)).save(d / "tiny.png")
    Image.fromarray(rand_image(5, 7, 3)).save(d / "odd.png")
    Image.fromarray((rand_image(40, 56, 4)[..., 0].astype(np.uint16) * 257)).save(d / "deep.png")
    Image.fromarray(base).convert("CMYK").save(d / "cmyk.jpg")
    pal = Image.fromarray(base).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(d / "palette.png", transparency=0)
    frames = [Image.fromarray(rand_image(40, 56, 10 + i)).convert("P") for i in range(3)]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: stored 40 wide x 56 high, shown 56 wide x 40 high
    Image.fromarray(rand_image(56, 40, 5)).save(d / "rotated.jpg", exif=exif.tobytes())
    Image.fromarray(base).save(d / "unicode ☔ photo.png")
    return d


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "corpus")


@pytest.fixture
def ckpt(tiny_model, tmp_path):
    return str(save_model(tiny_model, tmp_path / "tiny.safetensors"))


def _no_temp_files(root):
    return not [p for p in root.rglob(".*") if p.is_file()]


def test_derain(corpus, ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["derain", str(corpus), "-o", str(out), "-c", ckpt, "-q", "-b", "4"]) == 1
    err = capsys.readouterr().err
    failed = [l for l in err.splitlines() if l.strip().startswith("failed:")]
    assert len(failed) == len(BROKEN) and all(any(b in l for l in failed) for b in BROKEN)
    assert f"done: {len(AWKWARD)}" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == sorted(a.replace(".gif", ".png") for a in AWKWARD)
    assert Image.open(out / "rotated.jpg").size == (56, 40)  # EXIF applied, upright output
    assert Image.open(out / "odd.png").size == (7, 5) and Image.open(out / "tiny.png").size == (1, 1)
    assert _no_temp_files(out)


def test_eval_and_metrics(corpus, ckpt, tmp_path, capsys):
    ds = tmp_path / "ds"
    (ds / "input").mkdir(parents=True)
    (ds / "target").mkdir()
    names = BROKEN + ["unicode ☔ photo.png", "cmyk.jpg", "odd.png"]  # odd.png: 7x5, too small for SSIM
    for n in names:
        src = corpus / n
        if src.is_dir():
            (ds / "input" / n).mkdir()
        else:
            (ds / "input" / n).write_bytes(src.read_bytes())
        h, w = (5, 7) if n == "odd.png" else (40, 56)
        Image.fromarray(rand_image(h, w, 1)).save(ds / "target" / f"{n.rsplit('.', 1)[0]}.png")
    assert main(["eval", str(ds), "-c", ckpt, "-q", "--save-images", str(tmp_path / "saved")]) == 1
    cap = capsys.readouterr()
    assert sum("failed:" in l for l in cap.err.splitlines()) == len(BROKEN) + 1 and "Traceback" not in cap.err
    assert "odd.png: SSIM needs images of at least 11x11" in cap.err
    assert "| ds | 2 |" in cap.out  # the two scorable images
    assert _no_temp_files(tmp_path / "saved")
    # metrics: the same broken files as predictions
    assert main(["metrics", "--pred", str(ds / "input"), "--target", str(ds / "target"), "-q"]) == 1
    err = capsys.readouterr().err
    assert sum("failed:" in l for l in err.splitlines()) == len(BROKEN) + 1


def test_synth(corpus, tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["synth", "--clean", str(corpus), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert sum("failed:" in l for l in err.splitlines()) == len(BROKEN)
    assert len(list((out / "input").iterdir())) == len(AWKWARD) and _no_temp_files(out)


def test_training_sources(corpus):
    from fclip_derain.data.datasets import SyntheticSource
    from fclip_derain.data.pairing import list_images
    warnings = []
    src = SyntheticSource(list_images(corpus), "light", warn=warnings.append)
    assert len(src) == len(AWKWARD) and len(warnings) == len(BROKEN)
    assert all(any(b in w for w in warnings) for b in BROKEN)


def test_web_upload(corpus, tiny_model):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from fclip_derain.inference import Derainer
    from fclip_derain.serve import create_app
    c = TestClient(create_app(Derainer(model=tiny_model, device="cpu")))
    for f in sorted(corpus.iterdir()):
        if f.is_dir():
            continue
        r = c.post("/api/derain", files={"file": (f.name, f.read_bytes(), "application/octet-stream")})
        if f.name in BROKEN:
            assert r.status_code in (400, 413, 415) and f.name in r.json()["detail"], (f.name, r.text)
        else:
            assert r.status_code == 200, (f.name, r.text)
