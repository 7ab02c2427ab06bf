"""scripts/gpu_continue.py rehearsed on the CPU at tiny scale: pack -> unpack is lossless, and
`run` trains from the shipped weights and leaves a loadable checkpoint in --out."""
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import REPO, rand_image


def test_pack_unpack_run_on_cpu(tmp_path):
    inp, tgt = tmp_path / "input", tmp_path / "target"
    inp.mkdir()
    tgt.mkdir()
    for i in range(4):
        clean = rand_image(64, 80, i)
        Image.fromarray(clean).save(tgt / f"{i}.jpg", quality=90)
        decoded = np.asarray(Image.open(tgt / f"{i}.jpg").convert("RGB")).astype(int)
        rain = np.clip(decoded + (np.random.default_rng(i).random((64, 80, 1)) < 0.03) * 150, 0, 255)
        Image.fromarray(rain.astype(np.uint8)).save(inp / f"{i}.png")
    pack = tmp_path / "pack"
    script = str(REPO / "scripts" / "gpu_continue.py")
    subprocess.run([sys.executable, script, "pack", "--input", str(inp), "--target", str(tgt),
                    "--dest", str(pack), "--no-wheel"], check=True, timeout=120)

    sys.path.insert(0, str(REPO / "scripts"))
    from gpu_continue import unpack
    got_in, got_tgt = unpack(pack / "raintrainl.npz", tmp_path / "unpacked")
    for i in range(4):
        assert np.array_equal(np.asarray(Image.open(got_in / f"{i}.png")), np.asarray(Image.open(inp / f"{i}.png")))
        assert (got_tgt / f"{i}.jpg").read_bytes() == (tgt / f"{i}.jpg").read_bytes()

    out = tmp_path / "out"
    r = subprocess.run([sys.executable, script, "run", "--out", str(out), "--pack", str(pack), "--device", "cpu",
                        "--budget", "0.03", "--set", "data.val_holdout=1", "--set", "data.val_every=1000"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    from fclip_derain.models import load_model
    load_model(out / "best.safetensors")
    assert (out / "metrics.jsonl").read_text() and (out / "summary.json").is_file()
