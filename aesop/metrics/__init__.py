"""Metrics registered in basicsr's ``METRIC_REGISTRY`` (usable in ``val.metrics`` and the evaluator).

basicsr already has ``calculate_psnr``, ``calculate_ssim`` (MATLAB conventions, Y channel) and
``calculate_niqe``; this package adds LPIPS, DISTS, AE-PSNR and LR-PSNR (Sec. 5, App. A-C), the set-level FID
and patch-FID (``calculate_fid``, ``calculate_patch_fid``: one value per set, :mod:`aesop.metrics.fid`) and,
through the optional ``pyiqa``, MANIQA / MUSIQ / CLIP-IQA (``calculate_pyiqa``, App. B) and the release's NIQE
(``aesop_niqe``: pyiqa's when installed, else basicsr's).
"""

from aesop.metrics.fid import calculate_fid, calculate_patch_fid
from aesop.metrics.iqa import aesop_niqe, calculate_pyiqa
from aesop.metrics.metrics import (
    calculate_ae_psnr,
    calculate_dists,
    calculate_lpips,
    calculate_lr_psnr,
    metric_device,
)

__all__ = [
    'aesop_niqe',
    'calculate_ae_psnr',
    'calculate_dists',
    'calculate_fid',
    'calculate_lpips',
    'calculate_lr_psnr',
    'calculate_patch_fid',
    'calculate_pyiqa',
    'metric_device',
]
