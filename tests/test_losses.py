"""Training losses: the pixel terms against their formulas."""
import pytest
import torch

from fclip_derain.errors import ConfigError
from fclip_derain.losses import DerainLoss


def test_pixel_losses_match_their_formulas():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    d = p - t
    assert DerainLoss("l1", 0)(p, t)[0].item() == pytest.approx(d.abs().mean().item(), rel=1e-6)
    assert DerainLoss("mse", 0)(p, t)[0].item() == pytest.approx((d ** 2).mean().item(), rel=1e-6)
    total, parts = DerainLoss("charbonnier", 0)(p, t)
    assert total.item() == pytest.approx(torch.sqrt(d ** 2 + 1e-6).mean().item(), rel=1e-6)
    assert set(parts) == {"charbonnier"}
    # smooth at zero, unlike L1: the gradient vanishes where prediction equals target
    q = t.clone().requires_grad_(True)
    DerainLoss("charbonnier", 0)(q, t)[0].backward()
    assert q.grad.abs().max().item() == 0


def test_unknown_pixel_loss_names_the_key():
    with pytest.raises(ConfigError, match="loss.pixel"):
        DerainLoss("l3", 0)


def test_ssim_term_matches_the_reported_metric():
    """1 - the loss's SSIM equals `ssim_y` (what eval reports) up to the metric's rounding of Y."""
    import numpy as np

    from fclip_derain.losses import ssim_y_loss
    from fclip_derain.metrics import ssim_y

    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    as_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    ours = 1 - ssim_y_loss(as_t(noisy), as_t(clean)).item()
    assert ours == pytest.approx(ssim_y(noisy, clean), abs=2e-3)
    assert ssim_y_loss(as_t(clean), as_t(clean)).item() == pytest.approx(0, abs=1e-9)


def test_ssim_weight_adds_the_term_and_its_gradient():
    g = torch.Generator().manual_seed(1)
    p, t = torch.rand(2, 3, 24, 24, generator=g), torch.rand(2, 3, 24, 24, generator=g)
    plain, _ = DerainLoss("l1", 0)(p, t)
    q = p.clone().requires_grad_(True)
    total, parts = DerainLoss("l1", 0, ssim_weight=0.5)(q, t)
    assert set(parts) == {"l1", "ssim"} and 0 < parts["ssim"] <= 2
    assert total.item() == pytest.approx(plain.item() + 0.5 * parts["ssim"], rel=1e-6)
    total.backward()
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_negative_ssim_weight_names_the_key():
    with pytest.raises(ConfigError, match="loss.ssim_weight"):
        DerainLoss("l1", 0, ssim_weight=-1)


def test_ssim_term_is_exact_under_bf16_autocast():
    """Training with optim.amp=bf16 runs the loss inside autocast; the SSIM variances (differences
    of squares near 255) must not be computed in bf16, where they cancel to noise (2026-12-02, the
    first try at stage 7: the term read 0.07-0.15 instead of 0.03-0.04 and validation fell 1.4 dB
    in 150 steps)."""
    from fclip_derain.losses import ssim_y_loss

    g = torch.Generator().manual_seed(2)
    t = torch.rand(2, 3, 32, 32, generator=g)
    p = (t + 0.03 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    ref = ssim_y_loss(p, t).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = ssim_y_loss(p, t)
    assert under.dtype == torch.float32
    assert under.item() == pytest.approx(ref, rel=1e-5)


def test_brightness_term_sees_a_mean_shift_that_l1_and_ssim_treat_alike():
    # half the pixels 2 grey levels darker, half 2 brighter (mean kept) vs all 2 darker: L1 is the
    # same for both, the brightness term is 0 for the first and 2/255 for the second
    g = torch.Generator().manual_seed(2)
    t = 0.2 + 0.6 * torch.rand(2, 3, 32, 32, generator=g)
    sign = torch.ones_like(t)
    sign[..., ::2] = -1
    kept, darker = t + sign * 2 / 255, t - 2 / 255
    loss = DerainLoss("l1", 0, brightness_weight=1.0)
    _, p_kept = loss(kept, t)
    _, p_dark = loss(darker, t)
    assert p_kept["l1"] == pytest.approx(p_dark["l1"], rel=1e-5)
    assert p_kept["brightness"] == pytest.approx(0, abs=1e-6)
    assert p_dark["brightness"] == pytest.approx(2 / 255, rel=1e-4)
    q = darker.clone().requires_grad_(True)
    DerainLoss("l1", 0, brightness_weight=1.0)(q, t)[0].backward()
    assert torch.isfinite(q.grad).all()


def test_negative_brightness_weight_names_the_key():
    with pytest.raises(ConfigError, match="loss.brightness_weight"):
        DerainLoss("l1", 0, brightness_weight=-1)
