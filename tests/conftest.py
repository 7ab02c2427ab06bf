import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FCLIP_DERAIN_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def data_dir():
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def openai_clip_model():
    """OpenAI's reference `clip/model.py`, loaded as a file (its package __init__ needs torchvision)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("openai-clip is not installed (pip install --no-deps openai-clip)")
    path = Path(spec.submodule_search_locations[0]) / "model.py"
    mspec = importlib.util.spec_from_file_location("openai_clip_model", path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return mod


@pytest.fixture
def tiny_model():
    """A small FCLIP-UNet on the real EfficientNet-Lite0 weights (fast on CPU)."""
    from fclip_derain.models import FCLIPUNet, ModelConfig
    torch.manual_seed(0)
    return FCLIPUNet(ModelConfig(encoder="efficientnet-lite0", widths=(8, 8, 16, 16, 16), blocks=(1, 1, 1, 1)))


def rand_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture
def trained_tiny_model(tiny_model):
    """tiny_model moved off the identity, as training leaves a decoder: its output differs from
    its input, from its own mirrored output and between fp32 and bf16, so a test comparing two
    paths fails if one of them drops the model, --ensemble or --precision (test_model.py checks)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in tiny_model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return tiny_model.eval()
