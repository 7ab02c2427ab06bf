"""FCLIP-UNet: sizes, frozen encoder, LDFPS, ablation switches, checkpoints."""
import pytest
import torch

from fclip_derain.errors import ConfigError, WeightsError
from fclip_derain.models import FCLIPUNet, ModelConfig, load_model, save_model


@pytest.mark.parametrize("hw", [(321, 481), (64, 64), (1, 1), (7, 5), (33, 17)])
def test_any_size_same_size_out(tiny_model, hw):
    m = tiny_model.eval()
    x = torch.rand(2, 3, *hw)
    y = m(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


def test_clip_rn50_encoder_taps():
    m = FCLIPUNet(ModelConfig(encoder="clip-rn50", encoder_weights="random")).eval()
    assert m.encoder.channels == [64, 256, 512, 1024]
    feats = m.encoder(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 32, 48), (256, 16, 24), (512, 8, 12), (1024, 4, 6)]
    assert m(torch.rand(1, 3, 50, 70)).shape == (1, 3, 50, 70)


def test_starts_as_identity(tiny_model):
    x = torch.rand(1, 3, 40, 56)
    assert torch.allclose(tiny_model.eval()(x), x)


def test_encoder_is_frozen(tiny_model):
    m = tiny_model
    m.train()
    enc = m.encoder
    assert not any(p.requires_grad for p in enc.parameters())
    bns = [b for b in enc.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert bns and not any(b.training for b in bns)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    x = torch.rand(2, 3, 64, 64)
    feats = enc(x)
    assert all(f.grad_fn is None for f in feats)  # no activations kept for backward
    m(x).mean().backward()
    after = enc.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats did not drift
    assert any(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_ldfps_only_in_training_and_seeded():
    cfg = ModelConfig(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1))
    m = FCLIPUNet(cfg)
    torch.nn.init.normal_(m.head.weight, std=0.1)  # make the decoder's output depend on the skips
    x = torch.rand(1, 3, 64, 64)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    torch.manual_seed(5)
    a = m(x)
    torch.manual_seed(5)
    b = m(x)
    c = m(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    feats = [torch.ones(1, 2, 4, 4)] * 4
    m.config.ldfps_mode = "additive"
    assert not torch.equal(m.perturb(feats)[3], feats[3])
    m.config.ldfps = False
    m.train()
    assert torch.equal(m(x), m(x))


@pytest.mark.parametrize("kw", [dict(updw=False), dict(ldfps=False), dict(global_residual=False),
                                dict(depth=3, widths=(8, 8, 16, 16), blocks=(1, 1, 1), ldfps_sigmas=(0.1,) * 3),
                                dict(upsample="pixelshuffle"), dict(upsample="nearest"),
                                dict(ldfps_sigmas=(0.1, 0.06, 0.03, 0.01)), dict(normalize_input=False),
                                dict(block="res", out_blocks=2), dict(block="naf"),
                                dict(block="res", zero_init_head=False)])
def test_ablation_switches_build_and_run(kw):
    base = dict(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1))
    m = FCLIPUNet(ModelConfig(**{**base, **kw}))
    x = torch.rand(1, 3, 48, 80)
    m.train()
    m(x).mean().backward()
    assert m.eval()(x).shape == x.shape


@pytest.mark.parametrize("kw,key", [(dict(encoder="nope"), "model.encoder"), (dict(depth=9), "model.depth"),
                                    (dict(widths=(1, 2)), "model.widths"), (dict(ldfps_mode="x"), "model.ldfps_mode"),
                                    (dict(ldfps_sigmas=(0.1,)), "model.ldfps_sigmas"), (dict(block="vit"), "model.block")])
def test_bad_config_names_the_key(kw, key):
    with pytest.raises(ConfigError, match=key):
        ModelConfig(**kw)
    with pytest.raises(ConfigError, match="model.bogus"):
        ModelConfig.from_dict({"bogus": 1})


def test_checkpoint_round_trip(tiny_model, tmp_path):
    m = tiny_model
    for p in m.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    path = save_model(m, tmp_path / "m.safetensors")
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("encoder.") for k in keys)  # encoder not duplicated
    m2 = load_model(path)
    x = torch.rand(1, 3, 45, 61)
    assert torch.equal(m.eval()(x), m2(x))
    assert m2.config == m.config


def test_checkpoint_errors(tiny_model, tmp_path):
    from fclip_derain.weights import read_checkpoint, save_checkpoint
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    tensors, cfg, meta = read_checkpoint(path)
    del tensors["head.weight"]
    save_checkpoint(tmp_path / "bad.safetensors", tensors, cfg, {"encoder_sha256": meta["encoder_sha256"]})
    with pytest.raises(WeightsError, match="head.weight"):
        load_model(tmp_path / "bad.safetensors")
    save_checkpoint(tmp_path / "other.safetensors", read_checkpoint(path)[0], cfg, {"encoder_sha256": "ab" * 32})
    with pytest.raises(WeightsError, match="different efficientnet-lite0 encoder weights"):
        load_model(tmp_path / "other.safetensors")
    raw = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightsError, match="trunc.safetensors"):
        load_model(tmp_path / "trunc.safetensors")
    # one weight changed in place (same layout, header intact): the stored checksum refuses it
    from safetensors.torch import save_file
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta, sd = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    sd["head.bias"] = sd["head.bias"] + 0.5
    save_file(sd, str(tmp_path / "tampered.safetensors"), metadata=meta)
    with pytest.raises(WeightsError, match="tampered.safetensors.*checksum"):
        load_model(tmp_path / "tampered.safetensors")
    (tmp_path / "pickle.pt").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(WeightsError, match="pickle.pt"):
        load_model(tmp_path / "pickle.pt")


def test_half_checkpoint(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "h.safetensors", half=True)
    m = load_model(path)
    assert all(p.dtype == torch.float32 for p in m.parameters())


def test_banded_inference_mlp_equals_whole_image(monkeypatch):
    import fclip_derain.models.blocks as blocks
    blk = blocks.ConvNeXtBlock(8, layer_scale=0.5).eval()
    x = torch.rand(2, 8, 37, 23)
    whole = blk(x).detach()  # grad enabled: one pass over the whole image
    monkeypatch.setattr(blocks, "MLP_BAND_ELEMENTS", 2 * 23 * 32 * 5)  # 5 rows per band, 8 bands
    with torch.no_grad():
        banded = blk(x)
    assert torch.allclose(whole, banded, atol=1e-6)


def _with_random_bn_stats(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return module


@pytest.mark.parametrize("encoder", ["efficientnet-lite0", "resnet50-imagenet"])
def test_folded_batchnorm_gives_the_same_features(encoder):
    from fclip_derain.models.encoders import FrozenEncoder
    enc = FrozenEncoder(encoder, "random", depth=3)
    _with_random_bn_stats(enc.backbone)
    x = torch.rand(2, 3, 48, 40)
    before = enc(x)
    n = enc.fold_batchnorm()
    after = enc(x)
    assert n > 0 and enc.bn_folded == n
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.backbone.modules())
    for a, b in zip(after, before):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())


def test_folding_leaves_a_shared_conv_alone():
    """A conv whose output feeds its BatchNorm and another path cannot be folded exactly."""
    from fclip_derain.models.fold_bn import fold_batchnorm

    class Shared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    m = _with_random_bn_stats(Shared().eval())
    out, n = fold_batchnorm(m, lambda mod, x: mod(x), torch.rand(1, 3, 8, 8))
    assert n == 0 and out is m and isinstance(m.bn, torch.nn.BatchNorm2d)


def test_folding_keeps_the_published_encoder_digest(tiny_model, tmp_path):
    """Checkpoints name the encoder's published weights, folded or not (training folds them)."""
    before = tiny_model.encoder_digest()
    assert tiny_model.encoder.fold_batchnorm() > 0
    assert tiny_model.encoder_digest() == before
    save_model(tiny_model, tmp_path / "m.safetensors")
    load_model(tmp_path / "m.safetensors")  # verifies the digest against freshly built weights


@pytest.mark.parametrize("block", ["convnext", "res", "naf"])
def test_zero_init_head_starts_as_the_identity(block):
    """zero_init_head: output = input at step 0 for every decoder unit; off: it is not."""
    base = dict(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1), block=block)
    x = torch.rand(1, 3, 32, 48)
    torch.manual_seed(0)
    assert torch.equal(FCLIPUNet(ModelConfig(**base)).eval()(x), x)
    torch.manual_seed(0)
    assert not torch.allclose(FCLIPUNet(ModelConfig(**base, zero_init_head=False)).eval()(x), x, atol=1e-3)
