"""Issue 46: the heavy expert's training pieces (rain transplant, explicit validation pairs,
excluded backgrounds, bf16 fallback) and the routed default model (one encoder, two decoders,
a rain-density head; --rain)."""
import copy

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from fclip_derain.data.pairing import Pair
from fclip_derain.data.transplant import TransplantParams, TransplantSource, transplant_params
from fclip_derain.errors import ConfigError, FclipError
from fclip_derain.inference import Derainer
from fclip_derain.models.routing import RainDensityHead, RoutedUNet, blend_weight, pooled_taps
from fclip_derain.train.config import load_config
from fclip_derain.train.loop import build_data, train_amp_dtype
from fclip_derain.train.router import fit_head, tap_features
from conftest import rand_image
from test_train import _config, _dataset


def _smooth(h=64, w=96, seed=0):
    g = np.random.default_rng(seed).random((4, 4, 3))
    return np.asarray(Image.fromarray((g * 200).astype(np.uint8)).resize((w, h), Image.BILINEAR))


def _pair(tmp_path, name="a", seed=0):
    clean = _smooth(seed=seed)
    streaks = (np.random.default_rng(seed).random((64, 96, 1)) < 0.05) * 90
    rainy = np.clip(clean.astype(int) + streaks, 0, 255).astype(np.uint8)
    for d, im in (("input", rainy), ("target", clean)):
        (tmp_path / d).mkdir(exist_ok=True)
        Image.fromarray(im).save(tmp_path / d / f"{name}.png")
    return Pair(tmp_path / "input" / f"{name}.png", tmp_path / "target" / f"{name}.png"), rainy, clean


# ---------------------------------------------------------------- rain transplant

def test_transplant_onto_its_own_background_gives_back_the_rainy_input(tmp_path):
    pair, rainy, clean = _pair(tmp_path)
    src = TransplantSource([pair], [pair.target], TransplantParams(layers=(1, 1), gain=(1.0, 1.0), mirror=0.0))
    out, target = src.render(clean, np.random.default_rng(0))
    assert target is clean
    assert np.abs(out.astype(int) - rainy.astype(int)).max() <= 1


def test_transplant_moves_rain_onto_new_scenes_seeded(tmp_path):
    pair, rainy, clean = _pair(tmp_path)
    other = _smooth(seed=5)
    src = TransplantSource([pair], [pair.target])
    a, _ = src.render(other, np.random.default_rng([1, 2]))
    b, _ = src.render(other, np.random.default_rng([1, 2]))
    c, _ = src.render(other, np.random.default_rng([1, 3]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (a.astype(int) >= other.astype(int)).all()  # the layer only adds light
    assert (a != other).any(axis=2).mean() > 0.02  # and carries the pair's streaks


@pytest.mark.parametrize("rain,match", [({"layers": [0, 1]}, "layers"), ({"gain": [1.2, 1.0]}, "gain"),
                                        ({"colour": 1}, "colour")])
def test_transplant_params_are_checked(rain, match):
    with pytest.raises(ConfigError, match=match):
        transplant_params(rain)


# ---------------------------------------------------------------- config: val_pairs, select, exclude

def test_val_pairs_are_scored_as_their_own_kind_and_select_picks_best_on_them(tmp_path):
    heavy = _dataset(tmp_path / "heavy", n=2)
    cfg = load_config(_config(tmp_path), [f"data.val_pairs=[{{name: heavy, root: {heavy}}}]", "data.select=[heavy]"])
    _, sets = build_data(cfg, log=lambda m: None)
    assert [s.name for s in sets] == ["pairs", "heavy"] and len(sets[1].inputs) == 2
    from fclip_derain.train.validation import ValScores
    res = ValScores(psnr={"pairs": [30.0], "heavy": [20.0]}, ssim={"pairs": [0.9], "heavy": [0.5]},
                    rain={"pairs": True, "heavy": True})
    assert res.summary(cfg.data.select)["val_psnr"] == 20.0 and res.summary()["val_psnr"] == 25.0


@pytest.mark.parametrize("override,key", [("data.select=[nope]", "data.select"),
                                          ("data.val_pairs=[{name: pairs, root: x}]", r"data.val_pairs\[0\].name"),
                                          ("data.val_pairs=[{name: h}]", r"data.val_pairs\[0\]")])
def test_bad_validation_settings_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(_config(tmp_path), [override])


def test_excluded_backgrounds_leave_every_training_source(tmp_path):
    data = _dataset(tmp_path / "data")
    p = _config(tmp_path)
    d = yaml.safe_load(p.read_text())
    d["data"]["train"].append({"kind": "transplant", "root": str(data), "clean": str(data / "target")})
    d["data"]["exclude"] = ["0", "1"]
    p.write_text(yaml.safe_dump(d))
    cfg = load_config(p)
    patches, _ = build_data(cfg, log=lambda m: None)
    paired, synthetic, transplant = patches.sources
    from fclip_derain.train.loop import held_out_split
    held = {q.target.stem for q in held_out_split(cfg, log=lambda m: None)[1]} | {"0", "1"}
    for names in ([q.target.stem for q in paired.pairs], [c.stem for c in synthetic.clean],
                  [c.stem for c in transplant.clean]):
        assert names and not {"0", "1"} & set(names)
    assert len(transplant.layers) == 6 - len(held)  # nor the held-out pairs' rain


def test_bf16_training_falls_back_to_fp32_on_a_cpu_without_bf16(monkeypatch):
    import fclip_derain.devices as devices
    said = []
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "fma"})
    assert train_amp_dtype("bf16", torch.device("cpu"), said.append) is None
    assert len(said) == 1 and "fp32" in said[0]
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx512_bf16"})
    assert train_amp_dtype("bf16", torch.device("cpu"), said.append) is torch.bfloat16
    assert train_amp_dtype("none", torch.device("cpu"), said.append) is None and len(said) == 1


# ---------------------------------------------------------------- the router and the routed model

def _experts(trained_tiny_model):
    light = trained_tiny_model
    heavy = copy.deepcopy(light)
    with torch.no_grad():
        heavy.head.bias.add_(0.1)  # a different decoder: brighter outputs
    return light, heavy


def _head(dim, bias):
    head = RainDensityHead(dim)
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.fill_(bias)
    return head


def test_routed_model_runs_the_expert_the_head_picks(trained_tiny_model):
    light, heavy = _experts(trained_tiny_model)
    dim = 2 * sum(light.encoder.channels)
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        yl, yh = light(x), heavy(x)
        for bias, want in ((-10.0, yl), (10.0, yh)):
            routed = RoutedUNet(light, heavy, _head(dim, bias)).eval()
            assert torch.allclose(routed(x), want, atol=1e-6)
        mid = RoutedUNet(light, heavy, _head(dim, 0.0)).eval()  # P = 0.5: half of each
        assert torch.allclose(mid(x), 0.5 * yl + 0.5 * yh, atol=1e-5)
        assert float(mid.last_weights[0]) == pytest.approx(0.5)
        routed.mode = "light"
        assert torch.allclose(routed(x), yl, atol=1e-6)


def test_routed_model_runs_the_encoder_once(trained_tiny_model):
    light, heavy = _experts(trained_tiny_model)
    routed = RoutedUNet(light, heavy, _head(2 * sum(light.encoder.channels), 0.0)).eval()
    calls = []
    routed.encoder.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        routed(torch.rand(1, 3, 32, 32))
    assert len(calls) == 1


def test_derainer_reports_routes_and_tiles_share_their_image_s_expert(trained_tiny_model):
    light, heavy = _experts(trained_tiny_model)
    routed = RoutedUNet(light, heavy, _head(2 * sum(light.encoder.channels), 10.0))
    d = Derainer(model=routed, device="cpu", half=False, tile=64, tile_overlap=16)
    img = rand_image(100, 140)
    out = d.derain(img)
    assert d.last_routes == ["heavy"] and d.routes["heavy"] == 1
    plain = Derainer(model=heavy, device="cpu", half=False, tile=64, tile_overlap=16).derain(img)
    assert np.abs(out.astype(int) - plain.astype(int)).max() <= 1


def test_rain_option_is_checked(trained_tiny_model):
    with pytest.raises(FclipError, match="--rain heavy"):
        Derainer(model=trained_tiny_model, device="cpu", rain="heavy")
    light, heavy = _experts(trained_tiny_model)
    routed = RoutedUNet(light, heavy, _head(2 * sum(light.encoder.channels), 10.0))
    with pytest.raises(FclipError, match="--rain dense"):
        Derainer(model=routed, device="cpu", rain="dense")
    d = Derainer(model=routed, device="cpu", half=False, rain="light")
    d.derain(rand_image(40, 40))
    assert d.last_routes == ["light"]


def test_blend_weight_band():
    w = blend_weight(torch.tensor([0.0, 0.3, 0.5, 0.7, 1.0]), (0.3, 0.7))
    assert w.tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])


def test_fitted_head_separates_what_the_encoder_sees(trained_tiny_model):
    """Light and dense bright streaks over the same photos: the head fitted on the encoder's
    pooled taps tells them apart on photos it was not fitted on."""
    enc = trained_tiny_model.encoder
    def rainy(seed, density):
        c = _smooth(seed=seed)
        s = (np.random.default_rng(seed + 100).random((64, 96, 1)) < density) * 150
        return np.clip(c.astype(int) + s, 0, 255).astype(np.uint8)
    x = tap_features(enc, [rainy(i, 0.01) for i in range(12)] + [rainy(i, 0.25) for i in range(12)])
    y = torch.tensor([0.0] * 12 + [1.0] * 12)
    head = fit_head(x[::2], y[::2])
    with torch.no_grad():
        p = torch.sigmoid(head.logits(x[1::2]))
    assert ((p > 0.5).float() == y[1::2]).all()
    assert pooled_taps(enc(torch.rand(1, 3, 32, 32))).shape[1] == x.shape[1]


def test_report_summary_counts_routes():
    from fclip_derain.inference.plan import DerainReport
    r = DerainReport(done=3, routes={"light": 2, "heavy": 1, "blend": 0})
    assert r.summary() == "done: 3, skipped: 0, failed: 0 (rain: light 2, heavy 1)"
    assert DerainReport(done=1).summary() == "done: 1, skipped: 0, failed: 0"
