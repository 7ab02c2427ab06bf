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
