"""Image quality metrics. Full-reference (MATLAB protocol) and no-reference (NIQE, BRISQUE)."""
from .full_reference import psnr, psnr_rgb, psnr_y, rgb_to_y, ssim_rgb, ssim_y

__all__ = ["psnr", "psnr_rgb", "psnr_y", "rgb_to_y", "ssim_rgb", "ssim_y"]
