"""Files in and out: one image loader for every entry point, atomic writes of every output, clear errors.

Every failure becomes an `ImageError` naming the file: zero-byte, truncated, not an image,
decompression bombs, directories named like images. Output files are written to a temporary
name in the destination folder and renamed, so no half-written image is ever left behind.
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from ..errors import FclipError, ImageError, UnsupportedImageError

# GIF is read (first frame) but never written: its 256 colours would undo the deraining
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}  # read and written with PyAV
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
FORMAT_BY_EXT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".webp": "WEBP"}
# Pillow's own bomb limit is ~179 MP and only warns below 2x that; we refuse above this outright.
MAX_PIXELS = int(os.environ.get("FCLIP_DERAIN_MAX_PIXELS", 120_000_000))


def atomic_write(dest: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` then rename onto `dest`; on any failure nothing is left behind.

    The temporary file lives in the destination folder so the final `os.replace` is atomic.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the permissions a normal open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def is_image_path(p: str | os.PathLike) -> bool:
    return Path(p).suffix.lower() in IMAGE_EXTS


def looked_for(videos: bool = False) -> str:
    """'looked for .bmp, ..., any case': said wherever nothing readable was found, so that a user
    whose files have another extension sees why they were passed over."""
    videos = f" and videos {', '.join(sorted(VIDEO_EXTS))}" if videos else ""
    return f"looked for {', '.join(sorted(IMAGE_EXTS))}{videos}, any case"


def no_images_found(folder, videos: bool = False) -> str:
    return f"{folder}: no images{' or videos' if videos else ''} found ({looked_for(videos)})"


def open_image(src, name: str | None = None) -> Image.Image:
    """Open and fully decode a path / bytes / file object into an RGB PIL image (EXIF upright).

    Returns the PIL image so callers that re-save can keep its EXIF/ICC info.
    """
    return _to_rgb(open_native(src, name))


def open_native(src, name: str | None = None) -> Image.Image:
    """Like `open_image`, but in the file's own mode (grey, 16-bit, alpha kept)."""
    name = name or str(src)
    if isinstance(src, (str, os.PathLike)):
        p = Path(src)
        if p.is_dir():
            raise ImageError(f"{name}: is a directory, not an image")
        if not p.exists():
            raise ImageError(f"{name}: no such file")
        if p.stat().st_size == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
    elif isinstance(src, (bytes, bytearray)):
        if not src:
            raise ImageError(f"{name}: empty upload (0 bytes)")
        src = io.BytesIO(src)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(src)
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{name}: {w}x{h} is {w * h / 1e6:.0f} MP, over the limit of "
                                 f"{MAX_PIXELS / 1e6:.0f} MP (set FCLIP_DERAIN_MAX_PIXELS to raise it)")
            info = dict(im.info)
            im.seek(0)  # animated GIF/WebP/TIFF: the first frame
            im.load()
            im = ImageOps.exif_transpose(im)
            im.info.update({k: v for k, v in info.items() if k in ("icc_profile", "exif", "dpi", "transparency")})
            return im
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused as a decompression bomb ({e})") from None
    except Image.UnidentifiedImageError:  # Pillow's message names a file object, not the file
        raise UnsupportedImageError(f"{name}: cannot read image (not an image, or a format Pillow cannot read)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            MemoryError, struct.error) as e:
        msg = str(e).split("\n")[0] or type(e).__name__
        raise ImageError(f"{name}: cannot read image ({msg})") from None


GREY_16 = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def native_array(im: Image.Image) -> np.ndarray:
    """The array to derain, keeping what the file holds: grey -> HxW uint8, 16-bit grey -> HxW
    float32 in [0, 1] (full precision), anything else -> HxWx3 uint8 RGB (alpha over white)."""
    if im.mode in GREY_16:  # scaled so that writing back (native_output) restores the values
        return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0, 1)
    if im.mode == "L":
        return np.asarray(im)
    if im.mode == "LA":
        return np.asarray(_to_rgb(im).convert("L"))
    return np.asarray(_to_rgb(im))


def native_output(y: np.ndarray, src: Image.Image, fmt: str) -> np.ndarray:
    """A derained `native_array` as the array to write: 16-bit grey stays 16-bit where the format
    holds it (PNG, TIFF), else 8-bit."""
    if y.dtype == np.uint8:
        return y
    if src.mode in GREY_16 and fmt in ("PNG", "TIFF"):
        return (np.clip(y, 0, 1) * 65535 + 0.5).astype(np.uint16)
    return quantize(y)


def _to_rgb(im: Image.Image) -> Image.Image:
    out = _to_rgb_pixels(im)
    out.info.update({k: v for k, v in im.info.items() if k in ("icc_profile", "exif", "dpi")})
    return out


def _to_rgb_pixels(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grey: keep the top 8 bits (Pillow's convert('L') would clip instead)
        a = np.asarray(im, dtype=np.uint32)
        scale = 257.0 if a.max() > 255 else 1.0
        return Image.fromarray(np.clip(a / scale + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # transparent pixels become white rather than whatever colour happens to be stored
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float32)
        a = a * 255 if a.max() <= 1.0 else a
        return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def load_image(src, name: str | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB array, EXIF-upright, from any supported file, path or bytes."""
    return np.asarray(open_image(src, name))


def save_image(path: str | os.PathLike, img, fmt: str | None = None, like: Image.Image | None = None,
               quality: int = 95) -> Path:
    """Atomically write an HxWx3 uint8 array (or PIL image); keeps `like`'s ICC profile and EXIF."""
    path = Path(path)
    fmt = fmt or FORMAT_BY_EXT.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unknown output image format {path.suffix!r}")
    im = img if isinstance(img, Image.Image) else Image.fromarray(np.ascontiguousarray(img))
    kw = save_options(fmt, like, quality)

    def write(tmp):
        im.save(tmp, format=fmt, **kw)

    try:
        return atomic_write(path, write)
    except OSError as e:
        raise ImageError(f"{path}: cannot write image ({e})") from None


def save_options(fmt: str, like: Image.Image | None = None, quality: int = 95) -> dict:
    """Pillow's save() keywords for an output in `fmt`: `like`'s ICC profile and EXIF kept, the
    package's quality and compression; shared by files (`save_image`) and the web API's answers."""
    kw = {}
    if like is not None:
        if like.info.get("icc_profile") and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
            kw["icc_profile"] = like.info["icc_profile"]
        exif = like.getexif()
        if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
            exif[0x0112] = 1  # pixels are already upright
            kw["exif"] = exif.tobytes()
    if fmt in ("JPEG", "WEBP"):
        kw["quality"] = quality
    if fmt == "PNG":
        # zlib level 1 (OpenCV's default): 3x faster than Pillow's 6 on photos, files ~1% larger
        # (481x321 Rain100L image: 21 ms vs 60 ms, 290 vs 293 KB; docs/performance.md)
        kw["compress_level"] = 1
    return kw


def to_float(img: np.ndarray):
    """uint8 HWC -> float32 torch CHW in [0, 1]."""
    import torch
    return torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float().div_(255)


def quantize(y: np.ndarray) -> np.ndarray:
    """float array in [0, 1] -> uint8, rounding halves up as MATLAB's im2uint8 (the papers save
    8-bit PNGs). The one rounding of the package: files written by `derain`, validation, `eval`
    and the benchmarks all go through it, so their scores agree to the last pixel."""
    return (np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8)


def to_uint8(t) -> np.ndarray:
    """float torch CHW in [0, 1] -> uint8 HWC (`quantize`)."""
    return quantize(t.detach().float().permute(1, 2, 0).cpu().numpy())


def writable_dir(path: str | Path, flag: str) -> Path:
    """Create `path` if needed and prove a file can be written there, before any work: an
    unwritable output found after deraining a whole folder costs the whole run."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FclipError(f"{flag} {p}: exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".fclip-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise FclipError(f"{flag} {p}: cannot write there ({e.strerror or e})") from None
    return p


def missing_dirs(path: str | Path) -> list[Path]:
    """The folders of `path` (itself included) that do not exist yet, deepest first."""
    p, out = Path(path).absolute(), []
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_if_empty(made: list[Path]) -> None:
    """Remove the folders `missing_dirs` listed before a run, and the empty folders under them, when
    the run wrote nothing there: a failed run leaves no empty output folder behind."""
    if not made:
        return
    for root, _, _ in sorted(os.walk(made[0]), key=lambda t: -len(t[0])):  # deepest first
        try:
            os.rmdir(root)
        except OSError:  # not empty: something was written; keep it and its parents
            return
    for d in made[1:]:
        try:
            d.rmdir()
        except OSError:
            return


def writable_file(path: str | Path | None, flag: str) -> None:
    """The folder of an output file must take a file, and the path must not be a folder."""
    if not path:
        return
    p = Path(path)
    if p.is_dir():
        raise FclipError(f"{flag} {p}: is a folder, expected a file name")
    writable_dir(p.parent if str(p.parent) else ".", flag)
