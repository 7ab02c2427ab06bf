"""Issue 35's training pieces: the new rain kinds, validation per rain kind, the wsd schedule."""
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fclip_derain.data.synth import PRESETS, get_preset, render_pair
from fclip_derain.errors import ConfigError
from fclip_derain.metrics import psnr_y
from fclip_derain.train.config import load_config
from fclip_derain.train.loop import Trainer, lr_lambda
from fclip_derain.train.validation import ValScores, difference
from test_train import _dataset  # the tiny paired set the training tests use


def _smooth(h=96, w=128, seed=0):
    """A photo-like (smooth) background: rain on it is what changes the pixels."""
    g = np.random.default_rng(seed).random((4, 4, 3))
    return np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR))


@pytest.mark.parametrize("name", ["torrential", "thick", "screen", "editor"])
def test_new_rain_kinds_are_seeded_and_add_rain(name):
    clean = _smooth()
    a, ta = render_pair(clean, get_preset(name), np.random.default_rng([3, 1]))
    b, _ = render_pair(clean, get_preset(name), np.random.default_rng([3, 1]))
    c, _ = render_pair(clean, get_preset(name), np.random.default_rng([3, 2]))
    assert (a == b).all() and not (a == c).all()
    assert ta is clean  # these kinds keep no veil in the target
    assert psnr_y(a, clean) < 30  # visible rain
    assert (a.astype(int) >= clean.astype(int) - 1).mean() > 0.95  # rain brightens (haze aside)


def test_torrential_is_heavier_than_heavy():
    ps = {k: np.mean([psnr_y(render_pair(_smooth(seed=j), PRESETS[k], np.random.default_rng([0, j]))[0], _smooth(seed=j))
                      for j in range(4)]) for k in ("light", "heavy", "torrential")}
    assert ps["torrential"] < ps["heavy"] < ps["light"]


def test_blur_range_keeps_older_presets_rain_unchanged():
    """A preset without blur draws exactly as before the field existed (no extra random draw)."""
    from fclip_derain.data.synth import rain_layer
    p = PRESETS["light"]
    assert p.blur == (0.0, 0.0)
    a = rain_layer(40, 50, p, 0.0, np.random.default_rng(5))
    b = rain_layer(40, 50, p, 0.0, np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_screen_draws_no_width_so_its_validation_images_stay_the_same():
    """`screen` is a fixed validation kind: the `width` field added for `editor` must not draw
    from the RNG when it is a single value, or every stage's screen scores would stop comparing."""
    from dataclasses import replace
    clean = _smooth()
    p = PRESETS["screen"]
    assert p.width[0] == p.width[1]
    a = render_pair(clean, p, np.random.default_rng(9))[0]
    # the same width given as a range that draws: the streaks (and all later draws) change
    b = render_pair(clean, replace(p, width=(p.width[0], p.width[0] + 1e-9)), np.random.default_rng(9))[0]
    assert not np.array_equal(a, b)
    assert np.array_equal(a, render_pair(clean, p, np.random.default_rng(9))[0])


def test_editor_rain_is_heavier_than_screen_rain():
    ps = {k: np.mean([psnr_y(render_pair(_smooth(seed=j), PRESETS[k], np.random.default_rng([1, j]))[0], _smooth(seed=j))
                      for j in range(4)]) for k in ("screen", "editor")}
    assert ps["editor"] < ps["screen"]


def _config(tmp_path, **optim):
    data = _dataset(tmp_path / "data")
    cfg = {
        "model": {"encoder": "efficientnet-lite0", "widths": [8, 8, 16, 16, 16], "blocks": [1, 1, 1, 1]},
        "data": {"train": [{"kind": "paired", "root": str(data)},
                           {"kind": "synthetic", "clean": str(data / "target"), "preset": "torrential"}],
                 "val_holdout": 2, "val_every": 4, "patch_size": 32, "batch_size": 2,
                 "val_synthetic": [{"name": "heavy", "preset": "heavy", "seed": 1},
                                   {"name": "thick", "preset": "thick", "seed": 2},
                                   {"name": "dry", "preset": "none"}]},
        "loss": {"perceptual_weight": 0.0},
        "optim": {"iterations": 8, "warmup": 2, "lr": 1e-3, "ema": 0.9, "schedule": "wsd", "decay": 0.5, **optim},
        "run": {"out": str(tmp_path / "run"), "checkpoint_every": 4, "log_every": 1, "tensorboard": False},
    }
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_validation_scores_every_kind_over_held_out_backgrounds(tmp_path):
    cfg = load_config(_config(tmp_path))
    tr = Trainer(cfg, progress=False)
    names = [s.name for s in tr.val_sets]
    assert names == ["pairs", "heavy", "thick", "dry"]
    held = {p for p in ("0", "1", "2", "3", "4", "5")} - {Path(p).stem for p in tr.patches.sources[1].clean}
    assert len(held) == 2 and all(len(s.inputs) == 2 for s in tr.val_sets)
    # the same held-out backgrounds, rendered with the kind's seed: identical in a second trainer
    tr2 = Trainer(cfg, progress=False, resume=False)
    assert all(np.array_equal(a, b) for s, t in zip(tr.val_sets, tr2.val_sets) for a, b in zip(s.inputs, t.inputs))
    summary = tr.fit()
    kinds = {k: summary[f"val_psnr_{k}"] for k in names}
    # the aggregate is the mean over kinds with rain; the rain-free kind is reported, not averaged
    assert summary["val_psnr"] == pytest.approx(np.mean([kinds["pairs"], kinds["heavy"], kinds["thick"]]))
    assert kinds["dry"] > 35


def test_wsd_holds_the_rate_then_decays_and_keeps_the_stable_weights(tmp_path):
    cfg = load_config(_config(tmp_path))
    f = lr_lambda(cfg)
    lrs = [f(s) for s in range(9)]
    assert lrs[0] < 1 and lrs[2] == lrs[5] == 1.0  # warm-up, then constant until the last half
    assert lrs[6] < 1 and lrs[8] == pytest.approx(cfg.optim.min_lr / cfg.optim.lr)
    Trainer(cfg, progress=False).fit()
    run = Path(cfg.run.out)
    assert (run / "stable.safetensors").is_file()
    log = (run / "log.txt").read_text()
    assert log.count("wsd decay begins") == 1


def test_cosine_keeps_its_shape_and_bad_schedule_is_a_config_error(tmp_path):
    p = _config(tmp_path)
    cfg = load_config(p, ["optim.schedule=cosine"])
    f = lr_lambda(cfg)
    assert f(3) < 1 and f(3) > f(6)
    for override, key in [("optim.schedule=linear", "optim.schedule"), ("optim.decay=0", "optim.decay"),
                          ("data.val_synthetic=[{name: pairs, preset: light}]", "data.val_synthetic"),
                          ("data.val_synthetic=[{name: x, preset: none, rain: {angle: [0, 1]}}]", "data.val_synthetic")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(p, [override])


def test_difference_has_a_standard_error():
    a = ValScores(psnr={"pairs": [30.0, 31.0, 32.0], "dry": [50.0] * 3}, rain={"pairs": True, "dry": False})
    b = ValScores(psnr={"pairs": [30.5, 31.4, 32.6], "dry": [40.0] * 3}, rain={"pairs": True, "dry": False})
    d = difference(a, b)
    assert d["aggregate"] == pytest.approx(0.5)
    assert d["se"] == pytest.approx(np.std([0.5, 0.4, 0.6], ddof=1) / np.sqrt(3))
    assert "dry" not in d["per_kind"]


def test_difference_can_leave_out_a_kind():
    a = ValScores(psnr={"pairs": [30.0, 31.0], "screen": [20.0, 21.0]}, rain={"pairs": True, "screen": True})
    b = ValScores(psnr={"pairs": [30.2, 31.2], "screen": [25.0, 26.0]}, rain={"pairs": True, "screen": True})
    assert difference(a, b)["aggregate"] == pytest.approx(2.6)
    d = difference(a, b, exclude=["screen"])
    assert d["aggregate"] == pytest.approx(0.2) and list(d["per_kind"]) == ["pairs"]
