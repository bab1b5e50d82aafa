"""Running an SR network on an image of any size: padded to what the arch needs, whole or tile by tile.

:func:`upscale` is the one tiler: inference (``aesop-infer``) and validation (``val.tile``)
use it. Tiles are cut as Real-ESRGAN's ``tile_process`` does, each with context from the
surrounding image, so the memory the network needs does not grow with the image.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aesop.archs.sizes import pad_to_least, pad_to_multiple
from aesop.errors import AesopError

__all__ = ['half_dtype', 'network_device', 'run_padded', 'tile_spans', 'upscale']


def network_device(net: nn.Module, default: torch.device) -> torch.device:
    param = next(net.parameters(), None)
    return param.device if param is not None else default


def tile_spans(size: int, tile: int) -> list[tuple[int, int]]:
    """Cut ``range(size)`` into ``ceil(size / tile)`` near-equal ``(start, stop)`` spans (no thin last tile)."""
    count = max(1, -(-size // tile))
    edges = [round(i * size / count) for i in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _context(start: int, stop: int, size: int, pad: int, multiple: int, least: int = 1) -> tuple[int, int]:
    """``[start, stop)`` widened by ``pad`` each side, to at least ``least`` px and up to a multiple of ``multiple``,
    inside ``[0, size)``.

    Growing into real neighbouring pixels is better than mirror-padding the tile: only a tile
    that is the whole image dimension and still too small gets padded in :func:`run_padded`.
    """
    lo, hi = max(start - pad, 0), min(stop + pad, size)
    length = max(hi - lo, least)
    need = length + (-length % multiple) - (hi - lo)
    grow = min(need, size - hi)
    hi, need = hi + grow, need - grow
    return lo - min(need, lo), hi


def run_padded(net: nn.Module, img: Tensor, *, scale: int, window: int | None, half: bool, min_side: int = 1) -> Tensor:
    """Run ``net`` on (N, C, h, w) on its device; pad sides under ``min_side`` px up to it, then to multiples of
    ``window``; return (N, C', h*s, w*s) float32 in [0, 1]."""
    device = network_device(net, img.device)
    h, w = img.shape[-2:]
    x = pad_to_least(img.to(device, torch.float32), min_side)
    while window and (x.shape[-2] % window or x.shape[-1] % window):  # a mirror doubles at most: repeat for tiny inputs
        x = pad_to_multiple(x, window)
    with torch.no_grad(), torch.autocast(device.type, dtype=half_dtype(device), enabled=half):
        out = net(x)
    expected = (x.shape[-2] * scale, x.shape[-1] * scale)
    if tuple(out.shape[-2:]) != expected:
        raise AesopError(
            f'{type(net).__name__} turned a {x.shape[-2]}x{x.shape[-1]} input into {out.shape[-2]}x{out.shape[-1]}, '
            f'not x{scale}: set the scale (--scale or scale: in the option file) to what the network does'
        )
    return out[..., : h * scale, : w * scale].float().clamp(0, 1).to(img.device)


def half_dtype(device: torch.device) -> torch.dtype:
    """fp16 autocast on GPUs, bf16 on the CPU (which has no fast fp16 convolutions)."""
    return torch.bfloat16 if device.type == 'cpu' else torch.float16


def upscale(
    net: nn.Module,
    img: Tensor,
    *,
    scale: int,
    tile: int = 0,
    tile_pad: int = 16,
    window: int | None = None,
    half: bool = False,
    min_side: int = 1,
) -> Tensor:
    """Super-resolve ``img`` with ``net``, whole or tile by tile.

    With ``tile > 0``, the image is cut into tiles of at most ``tile`` x ``tile`` px; each is run
    with ``tile_pad`` px of the surrounding image as context (plus what ``window`` needs) and
    only the output of its own area is kept. Where ``tile_pad`` covers the network's receptive
    field the result equals the untiled one; otherwise it differs only near tile seams. The
    network sees one tile at a time on its own device; the result is assembled on ``img``'s.

    Args:
        net: SR network taking (N, C, h, w) to (N, C', h * scale, w * scale), in eval mode.
        img: (N, C, H, W) in [0, 1], any H and W, on any device.
        scale: the network's upscaling factor (checked on its output).
        tile: tile size in input px; 0: the whole image at once.
        tile_pad: context px around each tile.
        window: pad each input so H and W are multiples of this (SwinIR's ``window_size``);
            ``None``: any size.
        half: autocast, fp16 on CUDA and bf16 on the CPU.
        min_side: the smallest side the network takes (a network that pads inside itself by reflection, as
            spandrel's SwinIR to its window, needs more px than it pads): a shorter image or tile is padded to
            it (mirrored, :func:`~aesop.archs.sizes.pad_to_least`) and its output cropped back.

    Returns:
        (N, C', H * scale, W * scale) float32 in [0, 1], on ``img``'s device.

    Raises:
        AesopError: the network's output is not ``scale`` times its input.
    """
    if tile < 0 or tile_pad < 0:
        raise ValueError(f'tile and tile_pad must be >= 0, got {tile} and {tile_pad}')
    if img.dim() != 4:
        raise ValueError(f'img must be (N, C, H, W), got shape {tuple(img.shape)}')
    n, _, h, w = img.shape
    if tile == 0 or (h <= tile and w <= tile):
        return run_padded(net, img, scale=scale, window=window, half=half, min_side=min_side)
    multiple, out = window or 1, None
    for y0, y1 in tile_spans(h, tile):
        cy0, cy1 = _context(y0, y1, h, tile_pad, multiple, min_side)
        for x0, x1 in tile_spans(w, tile):
            cx0, cx1 = _context(x0, x1, w, tile_pad, multiple, min_side)
            tile_img = img[..., cy0:cy1, cx0:cx1]
            res = run_padded(net, tile_img, scale=scale, window=window, half=half, min_side=min_side)
            if out is None:
                out = img.new_empty((n, res.shape[1], h * scale, w * scale), dtype=torch.float32)
            ry, rx = (y0 - cy0) * scale, (x0 - cx0) * scale
            out[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = res[
                ..., ry : ry + (y1 - y0) * scale, rx : rx + (x1 - x0) * scale
            ]
    return out
