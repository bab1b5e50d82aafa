"""This project's archs told from a state dict alone (spandrel's job for the other archs).

spandrel (used by :func:`aesop.inference.detect_generator`) recognises SwinIR, DRCT, the old
ESRGAN layouts and many more. Read here first: the auto-encoder ψ, which spandrel does not know,
and basicsr's RRDBNet, whose growth channels spandrel assumes to be 32. Every hyper-parameter
comes from a tensor's shape or the count of a repeated block; the caller loads the weights
strictly into the result, so a wrong guess cannot pass silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch

from aesop.archs.trainner import from_trainner, is_trainner_layout

__all__ = ['detect_arch']


def _count(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    """How many ``<prefix><i>.`` blocks the state dict has."""
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    return len({m.group(1) for k in state_dict if (m := pattern.match(k))})


def _rrdbnet(sd: Mapping[str, torch.Tensor], prefix: str, scale: int) -> dict:
    """basicsr's RRDBNet (ψ's decoder): widths, blocks and growth channels; at ×2 / ×1 it pixel-unshuffles
    its input by 2 / 4 first (``conv_first`` takes 4 / 16 times the channels)."""
    return {
        'type': 'RRDBNet',
        'scale': scale,
        'num_in_ch': sd[f'{prefix}conv_first.weight'].shape[1] // {1: 16, 2: 4}.get(scale, 1),
        'num_out_ch': sd[f'{prefix}conv_last.weight'].shape[0],
        'num_feat': sd[f'{prefix}conv_first.weight'].shape[0],
        'num_block': _count(sd, f'{prefix}body.'),
        'num_grow_ch': sd[f'{prefix}body.0.rdb1.conv1.weight'].shape[0],
    }


def _msrresnet(sd: Mapping[str, torch.Tensor], prefix: str, scale: int) -> dict:
    """basicsr's MSRResNet (ψ's decoder of Tab. 5(a))."""
    return {
        'type': 'MSRResNet',
        'num_in_ch': sd[f'{prefix}conv_first.weight'].shape[1],
        'num_out_ch': sd[f'{prefix}conv_last.weight'].shape[0],
        'num_feat': sd[f'{prefix}conv_first.weight'].shape[0],
        'num_block': _count(sd, f'{prefix}body.'),
        'upscale': scale,
    }


def detect_arch(state_dict: Mapping[str, torch.Tensor]) -> dict | None:
    """The arch options (``network_g`` style) of a state dict of ``AesopAutoEncoder`` (in the release's layout or
    traiNNer-redux's, :mod:`aesop.archs.trainner`) or basicsr's ``RRDBNet``.

    Returns:
        e.g. ``{type: AesopAutoEncoder, scale: 4, encoder: learned, num_feat: 64, num_block: 2,
        num_grow_ch: 32, decoder: {type: RRDBNet, …}}``; ``None`` for anything else.
    """
    sd = from_trainner(state_dict) if is_trainner_layout(state_dict) else state_dict
    if {'conv_first.weight', 'body.0.rdb1.conv1.weight', 'conv_up1.weight'} <= sd.keys():  # ×4 input: 3 channels
        scale = {48: 1, 12: 2}.get(sd['conv_first.weight'].shape[1], 4)  # ×2 / ×1 pixel-unshuffle by 2 / 4
        return _rrdbnet(sd, '', scale)
    if 'decoder.conv_first.weight' not in sd or 'conv_first.0.weight' not in sd:
        return None
    num_feat = sd['body.0.rdb1.conv1.weight'].shape[1]
    scale = math.isqrt(num_feat // sd['conv_first.0.weight'].shape[0])  # E's first convs have num_feat / scale²
    if 'decoder.body.0.rdb1.conv1.weight' in sd:
        decoder = _rrdbnet(sd, 'decoder.', scale)
    elif 'decoder.body.0.conv1.weight' in sd:
        decoder = _msrresnet(sd, 'decoder.', scale)
    else:
        return None
    return {
        'type': 'AesopAutoEncoder',
        'scale': scale,
        'encoder': 'learned' if any(k.startswith('encoder.') for k in sd) else 'bicubic',
        'num_in_ch': sd['conv_first.0.weight'].shape[1],
        'num_feat': num_feat,
        'num_block': _count(sd, 'body.'),
        'num_grow_ch': sd['body.0.rdb1.conv1.weight'].shape[0],
        'decoder': decoder,
    }
