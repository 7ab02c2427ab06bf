"""FCLIP-UNet: sizes, frozen encoder, LDFPS, ablation switches, checkpoints."""
import pytest
import torch

from fclip_derain.errors import ConfigError, WeightsError
from fclip_derain.models import blocks
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
    m.config.ldfps = False
    m.train()
    assert torch.equal(m(x), m(x))


def test_ldfps_modes_are_the_papers_formulas():
    """multiplicative f * (1 + s n) and additive f + s n, level by level with that level's sigma,
    on features far from 1 (on all-ones features the two are the same function)."""
    base = dict(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1),
                ldfps_sigmas=(0.0, 0.05, 0.1, 0.3))
    feats = [torch.randn(2, 4, 8 >> i, 8 >> i, generator=torch.Generator().manual_seed(i)) * 3 + 2 for i in range(4)]
    noise = []
    torch.manual_seed(1)
    for f, s in zip(feats, base["ldfps_sigmas"]):
        noise.append(torch.randn_like(f) * s if s else None)
    outs = {}
    for mode in ("multiplicative", "additive"):
        m = FCLIPUNet(ModelConfig(**base, ldfps_mode=mode)).train()
        torch.manual_seed(1)
        outs[mode] = m.perturb(feats)
        assert torch.equal(outs[mode][0], feats[0])  # sigma 0: untouched, and no noise drawn for it
    for f, n, mul, add in zip(feats[1:], noise[1:], outs["multiplicative"][1:], outs["additive"][1:]):
        assert torch.allclose(mul, f * (1 + n)) and torch.allclose(add, f + n)
        assert (mul - add).abs().max() > 0.1  # where the features are not 1, the modes differ


def _small(**kw):
    base = dict(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1))
    torch.manual_seed(0)
    return FCLIPUNet(ModelConfig(**{**base, **kw}))


def _blocks(m):
    return [b for lv in m.levels for b in lv["blocks"]] + list(m.out_blocks)


def _ups(m):
    return [lv["up"] for lv in m.levels]


def _identity_at_start(m):
    x = torch.rand(1, 3, 32, 48)
    return torch.equal(m.eval()(x), x)


def _noisy_in_training(m):
    torch.nn.init.normal_(m.head.weight, std=0.1)
    x = torch.rand(1, 3, 32, 32)
    m.train()
    with torch.no_grad():
        return not torch.equal(m(x), m(x))


def _interp(mode):
    def check(m):
        x = torch.rand(1, 2, 4, 4)
        extra = {} if mode == "nearest" else {"align_corners": False}
        ref = torch.nn.functional.interpolate(x, scale_factor=2, mode=mode, **extra)
        return all(u.mode == mode for u in _ups(m)) and torch.equal(blocks.upsample2x(x, _ups(m)[0].mode), ref)
    return check


def _sigma_order(sigmas):
    def check(m):
        feats = [torch.full((1, 4, 8, 8), 2.0) for _ in range(4)]
        m.train()
        spread = [float((p - f).std()) for p, f in zip(m.perturb(feats), feats)]
        return spread == sorted(spread, reverse=sigmas[0] > sigmas[-1]) and m.config.ldfps_sigmas == sigmas
    return check


def _normalized(flag):
    def check(m):
        from fclip_derain.models.encoders import FrozenEncoder
        x = torch.rand(1, 3, 32, 32)
        other = FrozenEncoder(m.config.encoder, m.config.encoder_weights, m.config.depth, not flag)
        return not torch.allclose(m.encoder(x)[0], other(x)[0])
    return check


@pytest.mark.parametrize("kw,expect", [
    (dict(), lambda m: all(isinstance(u, blocks.UpDWBlock) for u in _ups(m))
        and all(isinstance(b, blocks.ConvNeXtBlock) for b in _blocks(m)) and _identity_at_start(m)),
    (dict(updw=False), lambda m: all(isinstance(u, blocks.PlainUp) for u in _ups(m))),
    (dict(ldfps=False), lambda m: not _noisy_in_training(m)),
    (dict(ldfps=True), _noisy_in_training),
    (dict(global_residual=False), lambda m: not _identity_at_start(m) and m.head.weight.abs().sum() > 0),
    (dict(depth=3, widths=(8, 8, 16, 16), blocks=(1, 1, 1), ldfps_sigmas=(0.1,) * 3),
     lambda m: len(m.levels) == 3 and len(m.encoder(torch.rand(1, 3, 32, 32))) == 3 and m.pad_multiple == 8),
    (dict(upsample="pixelshuffle"), lambda m: all(hasattr(u, "expand") for u in _ups(m))),
    (dict(upsample="nearest"), _interp("nearest")),
    (dict(upsample="bilinear"), _interp("bilinear")),
    (dict(ldfps_sigmas=(0.1, 0.06, 0.03, 0.01)), _sigma_order((0.1, 0.06, 0.03, 0.01))),
    (dict(ldfps_sigmas=(0.01, 0.03, 0.06, 0.1)), _sigma_order((0.01, 0.03, 0.06, 0.1))),
    (dict(normalize_input=False), _normalized(False)),
    (dict(block="res", out_blocks=2), lambda m: all(isinstance(b, blocks.ResBlock) for b in _blocks(m))
        and len(m.out_blocks) == 2 and all(isinstance(u, blocks.ShuffleUp) for u in _ups(m))),
    (dict(block="naf"), lambda m: all(isinstance(b, blocks.NAFBlock) for b in _blocks(m))),
    (dict(block="res", zero_init_head=False), lambda m: not _identity_at_start(m)),
    (dict(kernel_size=5, mlp_ratio=2.0), lambda m: all(b.dwconv.kernel_size == (5, 5)
        and b.pwconv1.out_features == 2 * b.pwconv1.in_features for b in _blocks(m))),
])
def test_ablation_switches_change_the_network(kw, expect):
    """Each switch builds the network it names (module types, sizes) or changes its behaviour,
    and the network trains (one backward) and keeps the input size."""
    assert expect(_small(**kw))
    m = _small(**kw)
    x = torch.rand(1, 3, 48, 80)
    m.train()
    m(x).mean().backward()
    assert m.eval()(x).shape == x.shape


@pytest.mark.parametrize("kw,key", [(dict(block="res", kernel_size=5), "kernel_size"),
                                    (dict(block="naf", mlp_ratio=2.0), "mlp_ratio"),
                                    (dict(block="res", updw=False), "updw"),
                                    (dict(block="res", upsample="nearest"), "upsample"),
                                    (dict(updw=False, upsample="pixelshuffle"), "upsample"),
                                    (dict(ldfps=False, ldfps_mode="additive"), "ldfps_mode"),
                                    (dict(ldfps=False, ldfps_sigmas=(0.1,) * 4), "ldfps_sigmas"),
                                    (dict(global_residual=False, zero_init_head=False), "zero_init_head")])
def test_fields_the_network_ignores_are_refused(kw, key):
    """block res with kernel_size 5 computed exactly what kernel_size 7 did: a setting that
    changes nothing is an error naming it; its default value passes (configs that do not set it)."""
    base = dict(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1))
    with pytest.raises(ConfigError, match=rf"^model\.{key}: .*change nothing"):
        ModelConfig(**base, **kw)
    cfg = ModelConfig(**base, **{k: v for k, v in kw.items() if k != key})
    if kw.get("upsample") != "pixelshuffle":  # (updw false still interpolates: bilinear or nearest)
        assert key not in cfg.to_dict()  # what a checkpoint records: only the fields the network uses


def test_old_checkpoints_with_ignored_fields_still_load(tmp_path):
    """Checkpoints written before the refusal record kernel 7, mlp 4, updw and bilinear for
    block res (the shipped v14 does), even other values: they load, and mean what they did."""
    from fclip_derain.weights import read_checkpoint, save_checkpoint
    m = _small(block="res")
    torch.nn.init.normal_(m.head.weight, std=0.05)
    path = save_model(m, tmp_path / "new.safetensors")
    tensors, cfg, meta = read_checkpoint(path)
    assert not {"kernel_size", "mlp_ratio", "updw", "upsample"} & set(cfg)
    x = torch.rand(1, 3, 40, 56)
    for old in (dict(kernel_size=7, mlp_ratio=4.0, updw=True, upsample="bilinear"),
                dict(kernel_size=5, mlp_ratio=2.0, updw=False, upsample="nearest")):
        save_checkpoint(tmp_path / "old.safetensors", tensors, {**cfg, **old},
                        {"encoder_sha256": meta["encoder_sha256"]})
        assert torch.equal(load_model(tmp_path / "old.safetensors")(x), m.eval()(x))


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


def test_trained_tiny_model_is_not_the_identity(trained_tiny_model):
    """The model the equivalence tests (batch vs single, Ray vs local) run: paths that dropped the
    model, the mirrored ensemble or the precision would give different files with it."""
    m = trained_tiny_model
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = m(x)
        mirrored = m(x.flip(-1)).flip(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = m(x).float()
    assert (y - x).abs().mean() > 5 / 255  # not the identity
    assert ((y * 255).round() != (mirrored * 255).round()).float().mean() > 0.5  # the ensemble changes pixels
    assert ((y * 255).round() != (half * 255).round()).float().mean() > 0.05  # so does bf16
