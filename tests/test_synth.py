"""Synthetic rain: determinism, ranges, shapes, and preset statistics near the real sets."""
import numpy as np
import pytest

from fclip_derain.data.synth import PRESETS, get_preset, render_rain, streak_kernel
from fclip_derain.errors import ConfigError
from fclip_derain.metrics import psnr_y


def _scene(h, w, seed=0):
    """A smooth synthetic 'photo' (gradients + blobs), so rain is the only high frequency."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    rng = np.random.default_rng(seed)
    img = np.stack([0.3 + 0.4 * x, 0.2 + 0.5 * y, 0.5 - 0.3 * x * y], -1)
    for _ in range(5):
        cy, cx, r = rng.random(3)
        img += 0.15 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.02 + 0.05 * r))[..., None] * rng.random(3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def test_deterministic_per_seed_and_varied():
    c = _scene(64, 80)
    a = render_rain(c, PRESETS["light"], np.random.default_rng([1, 2]))
    b = render_rain(c, PRESETS["light"], np.random.default_rng([1, 2]))
    d = render_rain(c, PRESETS["light"], np.random.default_rng([1, 3]))
    assert np.array_equal(a, b) and not np.array_equal(a, d)


@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (33, 129), (321, 481)])
@pytest.mark.parametrize("preset", ["light", "heavy", "mixed", "real"])
def test_shapes_and_ranges(hw, preset):
    c = _scene(*hw)
    out = render_rain(c, get_preset(preset), np.random.default_rng(0))
    assert out.shape == c.shape and out.dtype == np.uint8
    if preset == "light" and hw[0] > 30:
        assert (out.astype(int) >= c.astype(int)).all()  # light rain only adds light
    g = c[..., :1].repeat(3, -1)  # grey photos stay grey (rain is achromatic)
    og = render_rain(g, PRESETS["heavy"], np.random.default_rng(0))
    assert np.array_equal(og[..., 0], og[..., 1])


def test_kernel_is_a_line_at_the_angle():
    k = streak_kernel(20, 0.5, 0.0)
    assert k.max() == 1.0
    cols = k.sum(0)
    assert cols.argmax() == k.shape[1] // 2 and cols[k.shape[1] // 2] > 5 * cols[0]  # vertical
    k45 = streak_kernel(20, 0.5, 45.0)
    c = k45.shape[0] // 2
    assert k45[c + 4, c + 4] > 0.3 and k45[c - 4, c + 4] < 1e-3  # along the 45-degree diagonal only


def test_preset_statistics_close_to_real_sets():
    """Mean rainy-vs-clean Y-PSNR over 40 generated 256x256 scenes (documented tolerance:
    light within 2 dB of Rain100L's 26.90, heavy within 2 dB of Rain100H's ~13.6)."""
    scenes = [_scene(256, 256, s) for s in range(40)]
    light = np.mean([psnr_y(render_rain(c, PRESETS["light"], np.random.default_rng(i)), c) for i, c in enumerate(scenes)])
    heavy = np.mean([psnr_y(render_rain(c, PRESETS["heavy"], np.random.default_rng(i)), c) for i, c in enumerate(scenes)])
    assert abs(light - 26.90) < 2.0, light
    assert abs(heavy - 13.6) < 2.0, heavy


def test_unknown_preset():
    with pytest.raises(ConfigError, match="drizzle"):
        get_preset("drizzle")


# ---------------------------------------------------------------- renderer v2 (`real` preset)

def test_real_preset_deterministic_and_varied():
    c = _scene(96, 128)
    a = render_rain(c, PRESETS["real"], np.random.default_rng([4, 1]))
    b = render_rain(c, PRESETS["real"], np.random.default_rng([4, 1]))
    d = render_rain(c, PRESETS["real"], np.random.default_rng([4, 2]))
    assert np.array_equal(a, b) and not np.array_equal(a, d)


def test_real_streaks_follow_the_background():
    """Streaks pull the background towards the sky's light: much brighter on dark backgrounds,
    barely visible on a bright sky (the v1 presets add a fixed amount everywhere)."""
    import dataclasses
    p = dataclasses.replace(PRESETS["real"], mist=(0.0, 0.0), splash_p=0.0, drops_p=0.0, light=(0.85, 0.85))
    gain = {}
    for level in (20, 128, 230):
        flat = np.full((128, 128, 3), level, np.uint8)
        gain[level] = np.mean([render_rain(flat, p, np.random.default_rng(i)).astype(float).mean() - level
                               for i in range(6)])
    assert gain[20] > 2 * gain[128] > 0 and abs(gain[230]) < gain[128] / 2


def test_real_mist_thickens_with_depth():
    """With mist and no streaks, the top of the frame (far, by the depth prior) is veiled more."""
    import dataclasses
    p = dataclasses.replace(PRESETS["real"], mist=(0.4, 0.4), density_far=(0.0, 0.0), density_near=(0.0, 0.0),
                            splash_p=0.0, drops_p=0.0)
    dark = np.full((128, 96, 3), 10, np.uint8)
    veils = np.mean([render_rain(dark, p, np.random.default_rng(i)).astype(float) for i in range(8)], 0)
    assert veils[:16].mean() > veils[-16:].mean() + 20


def test_rain_stats_see_streaks_and_mist():
    from fclip_derain.metrics.rain_stats import moved_fraction, rain_stats
    c = _scene(128, 160)
    base = rain_stats(c)
    rainy = c.copy()
    rainy[:, ::9] = np.minimum(255, rainy[:, ::9].astype(int) + 60).astype(np.uint8)  # thin vertical lines
    s = rain_stats(rainy)
    assert s["anisotropy"] > base["anisotropy"] + 1 and s["streak_cover"] > base["streak_cover"] + 5
    assert s["streak_contrast"] > 40
    misty = (0.6 * c + 0.4 * 230).astype(np.uint8)
    assert rain_stats(misty)["veil"] > base["veil"] + 40
    assert moved_fraction(10.0, 6.0, 2.0) == 0.5


def test_real_streaks_keep_the_mist_in_the_target():
    """`real-streaks`: the same rainy image as `real` (same draws), and a target that is the clean
    image under the same mist, so a model learns to remove streaks but not to lift the veil."""
    import dataclasses

    from fclip_derain.data.synth import render_pair
    c = _scene(96, 128)
    rainy, _ = render_pair(c, PRESETS["real-streaks"], np.random.default_rng([5, 1]))
    assert np.array_equal(rainy, render_rain(c, PRESETS["real"], np.random.default_rng([5, 1])))
    r2, t2 = render_pair(c, PRESETS["real"], np.random.default_rng([5, 1]))
    assert np.array_equal(r2, rainy) and t2 is c
    # no mist drawn: the target is the clean image exactly
    clear = dataclasses.replace(PRESETS["real-streaks"], mist=(0.0, 0.0))
    assert np.array_equal(render_pair(c, clear, np.random.default_rng(3))[1], c)
    # thick mist, no streaks/splashes/drops: the rain to remove is nothing, target == input
    fog = dataclasses.replace(PRESETS["real-streaks"], mist=(0.4, 0.4), density_far=(0.0, 0.0),
                              density_near=(0.0, 0.0), splash_p=0.0, drops_p=0.0)
    r, t = render_pair(c, fog, np.random.default_rng(3))
    assert np.abs(r.astype(int) - t).max() <= 1 and np.abs(t.astype(int) - c).mean() > 5


def test_training_patches_use_the_misty_target(tmp_path):
    """The training stream takes the target from the renderer: with only mist drawn, input and
    target patches agree (the clean photo would differ by the whole veil)."""
    import dataclasses

    from PIL import Image

    from fclip_derain.data.datasets import SyntheticSource, TrainPatches
    Image.fromarray(_scene(160, 160)).save(tmp_path / "a.png")
    src = SyntheticSource([tmp_path / "a.png"], "real-streaks")
    src.params = dataclasses.replace(src.params, mist=(0.4, 0.4), density_far=(0.0, 0.0),
                                     density_near=(0.0, 0.0), splash_p=0.0, drops_p=0.0)
    x, y = TrainPatches([src], [1.0], 64, seed=0)[0]
    assert x.shape == y.shape == (3, 64, 64)
    assert (x - y).abs().max() <= 1.5 / 255


def test_preset_fields_can_be_overridden_and_bad_ones_are_named():
    from fclip_derain.data.synth import preset_params
    p = preset_params("real-streaks", {"density_near": [0.002, 0.004], "angle": [-35, 35], "splash_p": 0})
    assert p.density_near == (0.002, 0.004) and p.angle == (-35.0, 35.0) and p.splash_p == 0.0
    assert p.mist_in_target and p.length_near == PRESETS["real-streaks"].length_near
    assert preset_params("heavy", None) is PRESETS["heavy"]
    for preset, rain, named in [("real", {"density_nea": [0, 1]}, "rain.density_nea"),
                                ("real", {"density_near": [0.004, 0.001]}, "rain.density_near"),
                                ("real", {"length_near": [-5, 10]}, "rain.length_near"),
                                ("real", {"splash_p": "often"}, "rain.splash_p"),
                                ("real", {"mist_in_target": 1}, "rain.mist_in_target"),
                                ("mixed", {"density": [0, 0.01]}, "rain"),
                                ("light", [1, 2], "rain")]:
        with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
            preset_params(preset, rain)


def test_training_config_rain_overrides_reach_the_renderer(tmp_path):
    """A synthetic source's `rain:` fields are validated with the config (one error naming the
    key, before any training) and used by the source's renderer."""
    from PIL import Image

    from fclip_derain.data.datasets import SyntheticSource
    from fclip_derain.train.config import load_config
    good = ["data.train=[{kind: synthetic, clean: x, preset: real-streaks, rain: {density_near: [0.002, 0.003]}}]"]
    cfg = load_config(None, good)
    assert cfg.data.train[0].rain == {"density_near": [0.002, 0.003]}
    with pytest.raises(ConfigError, match=r"data\.train\[0\]\.rain\.widht_near"):
        load_config(None, ["data.train=[{kind: synthetic, clean: x, preset: real, rain: {widht_near: [1, 2]}}]"])
    Image.fromarray(_scene(64, 64)).save(tmp_path / "a.png")
    src = SyntheticSource([tmp_path / "a.png"], "real-streaks", rain=cfg.data.train[0].rain)
    assert src.params.density_near == (0.002, 0.003)


def test_rain_variants_of_the_dense_arm_config():
    """The benchmarks' --from-config reads the varied sources of a shipped experiment config."""
    from pathlib import Path

    from fclip_derain.train.config import rain_variants
    cfg = Path(__file__).resolve().parents[1] / "configs/experiments/data-mix/pairs-mixed-dense.yaml"
    (label, p), = rain_variants(cfg).items()
    assert label == "real-streaks+pairs-mixed-dense[3]"
    assert p.mist_in_target and p.density_near[1] > PRESETS["real-streaks"].density_near[1]
