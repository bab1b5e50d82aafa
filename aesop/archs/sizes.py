"""What input sizes an arch takes, declared once per arch, and the one function that pads to them.

As spandrel's ``SizeRequirements``: an arch of this package declares ``input_multiple(options)``
(a classmethod: what H and W must be multiples of, 1 for anything); basicsr's archs, which
cannot declare it, are listed in :data:`BASICSR_MULTIPLES`. Callers (validation, tiled
inference) pad with :func:`pad_to_multiple` and crop the output back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.archs.swinir_arch import SwinIR
from basicsr.utils.registry import ARCH_REGISTRY
from torch.nn import functional as F

__all__ = ['BASICSR_MULTIPLES', 'input_multiple', 'pad_side', 'pad_to_least', 'pad_to_multiple']

#: basicsr's archs: RRDBNet at ×2 / ×1 pixel-unshuffles its input by 2 / 4; SwinIR needs multiples of its window.
BASICSR_MULTIPLES: dict[type, Callable[[Mapping], int]] = {
    RRDBNet: lambda options: {1: 4, 2: 2}.get(int(options.get('scale', 4)), 1),
    SwinIR: lambda options: int(options.get('window_size', 7)),
}


def input_multiple(arch: Mapping) -> int | None:
    """What H and W of the input must be multiples of for the arch options ``arch`` (``None``: anything)."""
    cls = ARCH_REGISTRY.get(arch['type']) if arch.get('type') in ARCH_REGISTRY else None
    if hasattr(cls, 'input_multiple'):
        multiple = cls.input_multiple(arch)
    else:
        rules = [rule for base, rule in BASICSR_MULTIPLES.items() if isinstance(cls, type) and issubclass(cls, base)]
        multiple = math.lcm(*(rule(arch) for rule in rules)) if rules else 1
    return multiple if multiple > 1 else None


def pad_to_multiple(
    img: torch.Tensor, multiple: int, *, mode: Literal['symmetric', 'reflect'] = 'symmetric'
) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom and right to multiples of ``multiple``.

    ``symmetric`` mirrors with the edge row repeated (SwinIR's test script: flip and concatenate);
    ``reflect`` without it (DRCT's ``pre_process``). Inputs smaller than the padding are padded
    again, as often as needed; a 1-pixel side is replicated under ``reflect``. Traced with
    symbolic sizes (``torch.export``, ONNX), a side of at least ``multiple`` px is one mirror with
    no branch on the size.
    """
    for dim in (-2, -1):
        size = img.shape[dim]
        missing = (size + multiple - 1) // multiple * multiple - size  # not -size % multiple: simpler when traced
        if isinstance(missing, int) and not missing:  # eager and already a multiple: no copy
            continue
        img = pad_side(img, dim, missing, mode=mode)
    return img


def pad_to_least(img: torch.Tensor, least: int) -> torch.Tensor:
    """Pad the sides of (N, C, H, W) shorter than ``least`` px at the bottom / right up to ``least`` (mirrored with
    the edge repeated, :func:`pad_side`); longer sides are left as they are."""
    for dim in (-2, -1):
        if img.shape[dim] < least:
            img = pad_side(img, dim, least - img.shape[dim])
    return img


def pad_side(
    img: torch.Tensor, dim: int, missing: int, *, mode: Literal['symmetric', 'reflect'] = 'symmetric'
) -> torch.Tensor:
    """``missing`` (> 0) px added at the end of ``dim`` (-2: bottom, -1: right), mirrored as :func:`pad_to_multiple`
    says, as often as a side smaller than the padding needs."""
    while True:
        size = img.shape[dim]
        if mode == 'symmetric':  # the most one mirror adds
            room = size
        else:
            room = size - 1 if size > 1 else missing  # a 1-pixel side: replicated at once
        step = missing if missing <= room else room
        if mode == 'symmetric':
            img = torch.cat([img, img.flip(dim).narrow(dim, 0, step)], dim)
        else:
            pad = (0, 0, 0, step) if dim == -2 else (0, step, 0, 0)
            img = F.pad(img, pad, mode='replicate' if size == 1 else 'reflect')
        missing = missing - step
        if missing <= 0:
            return img
