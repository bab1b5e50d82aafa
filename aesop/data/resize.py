"""MATLAB-style bicubic resizing: how the paper's (and our) LR images are made, and the bicubic baseline.

Two forms of the same ``imresize`` (bicubic, a = −0.5, antialiased when downscaling, symmetric padding at
the borders): :func:`bicubic_downscale` for 8/16-bit images (basicsr's numpy ``imresize``, rounded like a
saved image) and :func:`matlab_bicubic_resize` / :func:`matlab_bicubic_downscale` for (N, C, H, W) tensors,
batched, on any device and differentiable (the LR-consistency loss of paper 002; the bicubic upscaling of
:class:`aesop.archs.AesopBicubic`).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from basicsr.utils.matlab_functions import calculate_weights_indices, imresize


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """basicsr's ``imresize`` (MATLAB ``imresize``, antialiased bicubic) by ``1/scale`` of an integer
    (H, W[, C]) image, rounded back to its dtype like a saved image."""
    peak = float(np.iinfo(img.dtype).max)
    low = imresize(img.astype(np.float64) / peak, 1 / scale)
    return np.clip(np.round(low * peak), 0, peak).astype(img.dtype)


@functools.cache
def matlab_resize_matrix(in_length: int, factor: float) -> torch.Tensor:
    """(out, in) float64 matrix of MATLAB's bicubic ``imresize`` by ``factor`` along one axis.

    Row i holds the weights basicsr's ``calculate_weights_indices`` gives output pixel i (the kernel
    widened by 1/``factor`` when downscaling: antialiasing), with basicsr's symmetric padding folded in:
    a tap at −1 reads pixel 0, one at ``in_length`` reads pixel ``in_length − 1``. ``out = ceil(in · factor)``.
    """
    out_length = math.ceil(in_length * factor)
    weights, indices, pad_start, _ = calculate_weights_indices(in_length, out_length, factor, 'cubic', 4, True)
    source = indices.long() - pad_start  # position in the unpadded signal
    for _ in range(2):  # mirror (edge repeated) as the padding does; twice covers taps past a tiny image
        source = torch.where(source < 0, -source - 1, source)
        source = torch.where(source >= in_length, 2 * in_length - 1 - source, source)
    if source.min() < 0:
        raise ValueError(f'MATLAB bicubic: an image of {in_length} px is too small to resize by {factor}')
    matrix = torch.zeros(out_length, in_length, dtype=torch.float64)
    return matrix.scatter_add_(1, source, weights.double())


def matlab_bicubic_resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """MATLAB ``imresize(x, factor)`` (bicubic; antialiased when ``factor`` < 1) of (..., H, W) tensors.

    Separable: ``M_H · x · M_Wᵀ`` with the matrices of :func:`matlab_resize_matrix`, so it is batched,
    runs on ``x``'s device and dtype, and has the exact gradient (the transposed resize).

    Returns:
        (..., ceil(H·factor), ceil(W·factor)), not rounded or clipped.
    """
    rows = matlab_resize_matrix(x.shape[-2], factor).to(x.device, x.dtype)
    cols = matlab_resize_matrix(x.shape[-1], factor).to(x.device, x.dtype)
    return rows @ x @ cols.T


def matlab_bicubic_downscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB ``imresize(x, 1/scale)`` (antialiased bicubic) of (..., H, W) tensors, differentiable.

    :func:`matlab_bicubic_resize` by ``1/scale``. Equals basicsr's ``imresize`` (float32, one (C, H, W)
    image at a time, no graph) to float precision.

    Returns:
        (..., ceil(H/scale), ceil(W/scale)), not rounded or clipped.
    """
    return matlab_bicubic_resize(x, 1 / scale)
