"""MATLAB-style bicubic downscaling of 8/16-bit images: how the paper's (and our) LR images are made."""

from __future__ import annotations

import numpy as np
from basicsr.utils.matlab_functions import imresize


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """basicsr's ``imresize`` (MATLAB ``imresize``, antialiased bicubic) by ``1/scale`` of an integer
    (H, W[, C]) image, rounded back to its dtype like a saved image."""
    peak = float(np.iinfo(img.dtype).max)
    low = imresize(img.astype(np.float64) / peak, 1 / scale)
    return np.clip(np.round(low * peak), 0, peak).astype(img.dtype)
