"""Property-based fuzzing of the image loader: any bytes give an image or an ImageError, never
another exception (hypothesis; a few hundred cases per run, derandomized for reproducibility)."""
import io

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from fclip_derain.data.io import load_image
from fclip_derain.errors import ImageError


def _seed_files():
    rng = np.random.default_rng(0)
    out = []
    for fmt in ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF"):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(buf, fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_files()


def _check(data: bytes):
    try:
        img = load_image(data, "fuzz")
    except ImageError as e:
        assert "fuzz" in str(e)
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(SEEDS), cuts=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
       truncate=st.integers(0, 4000))
def test_mutated_images_never_crash(seed, cuts, truncate):
    data = bytearray(seed)
    for pos, val in cuts:
        if data:
            data[pos % len(data)] = val
    _check(bytes(data[: max(1, truncate)]) if truncate < len(data) else bytes(data))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data):
    _check(data)
