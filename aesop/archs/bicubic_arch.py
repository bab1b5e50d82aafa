"""MATLAB-bicubic upscaling as a network: the "Bicubic" row of an SR table, scored by the same test pipeline."""

from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from aesop.data.resize import matlab_bicubic_resize


@ARCH_REGISTRY.register()
class AesopBicubic(nn.Module):
    """``imresize(LR, scale)`` of MATLAB (bicubic, a = −0.5, symmetric borders), no parameters.

    The baseline every SR table starts from, computed the way the paper's LR images are made (the
    same ``imresize``, the other way): an option file with ``network_g: {type: AesopBicubic, scale: 4}``
    and no weights gives its row through ``aesop/test.py`` (``options/demo/test_bicubic.yml``).

    Args:
        scale: the upscaling factor.
    """

    weightless = True  # tested without path.pretrain_network_g (aesop.options)

    def __init__(self, *, scale: int = 4) -> None:
        super().__init__()
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise ValueError(f'scale must be a positive integer, got {scale!r}')
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, C, H·scale, W·scale), not rounded or clipped."""
        return matlab_bicubic_resize(x, self.scale)
