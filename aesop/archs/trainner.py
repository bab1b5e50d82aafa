"""traiNNer-redux's ψ, read as this project's :class:`~aesop.archs.AesopAutoEncoder` and written in its layout.

traiNNer-redux (github.com/the-database/traiNNer-redux) has its own AESOP auto-encoder (``AutoEncoder``, type
``autoencoder``; its ``AESOPLoss`` reads ψ from ``pretrain_network_ae``, a safetensors file). Its encoder::

    conv_first = Sequential(3×3 conv 3 → nf/s², 3×3 conv nf/s² → nf/s²)    at HR size
    down       = PixelUnshuffle(s)                                           nf/s² → nf channels, ÷s
    body       = Sequential(RRDB(nf), RRDB(nf))                              spandrel's ESRGAN-era block, growth 32
    conv_last  = Sequential(3×3 conv nf → nf, 3×3 conv nf → 3)
    encoder    = Sequential(conv_first, down, body, conv_last)               the same modules, registered again

and its decoder is built from ``decoder_opt`` (traiNNer's ``esrgan``: spandrel's ESRGAN, in ESRGAN's 2018 keys
``model.N``). The file is one state dict holding both key sets, ``conv_first.…`` and ``encoder.0.…``.

This project's encoder (the AESOP release's) is the same network but for two things:

- **RRDB keys**: ``body.<i>.RDB<k>.conv<j>.0.<w>`` there, ``body.<i>.rdb<k>.conv<j>.<w>`` here (basicsr's block:
  the same convolutions, LeakyReLU(0.2) and 0.2 residual scalings).
- **the unshuffle**: ``PixelUnshuffle(s)`` there, ``log2(s)`` ``PixelUnshuffle(2)`` here. Both sit between
  ``conv_first`` and ``body`` with the same channel counts around them (nf/s² before, nf after), so everything
  converts; they give the same values in another channel order (:func:`unshuffle_order`). The RRDB trunk carries
  those nf channels unchanged to ``conv_last`` (the dense blocks concatenate their input, RDBs and RRDBs add
  it back), so the conversion renumbers the trunk's channels: the first nf input channels of every RRDB
  convolution, the output channels of each RDB's ``conv5`` and the input channels of ``conv_last.0``
  (:func:`permute_trunk`). The growth channels and ``conv_first`` are untouched.

What does not convert, refused with a message: a traiNNer scale other than 2, 4 or 8 (its ``PixelUnshuffle(3)``
has no ×2 steps); in the other direction a ψ with the bicubic encoder, other than 2 encoder blocks, growth
channels other than 32 or images other than RGB (traiNNer fixes these), and a decoder other than basicsr's
``RRDBNet`` at ×2 / ×4 with growth 32 (what traiNNer's ``esrgan`` builds). A decoder in keys other than the
2018 ESRGAN layout is read as it is (e.g. the same arch under the same names) and loading it strictly decides.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
from torch.nn import functional as F

from aesop.archs.rrdbnet_arch import _SEQUENTIAL_TAIL, AesopRRDBNet
from aesop.errors import AesopError

__all__ = [
    'from_trainner',
    'is_trainner_layout',
    'permute_trunk',
    'to_trainner',
    'trainner_options',
    'trunk_order',
    'unshuffle_order',
]

_THEIR_RDB = re.compile(r'body\.(?P<i>\d+)\.RDB(?P<k>\d)\.conv(?P<j>\d)\.0\.(?P<what>weight|bias)')
_OUR_RDB = re.compile(r'body\.(?P<i>\d+)\.rdb(?P<k>\d)\.conv(?P<j>\d)\.(?P<what>weight|bias)')
_ENCODER = {'0': 'conv_first.', '2': 'body.', '3': 'conv_last.'}  # encoder.<index>: the attribute (1: the unshuffle)
_GROWTH = 32  # traiNNer's RRDB(nf=nf) and spandrel's ESRGAN keep spandrel's default growth
_ESRGAN_2018 = {k.removeprefix('model.').rstrip('.'): v for k, v in _SEQUENTIAL_TAIL.items()}  # '0': 'conv_first.', …


def _encoder_twins(trunk: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's trunk tensors again under ``encoder.<index>.`` (its ``nn.Sequential`` registers the same
    modules a second time: :data:`_ENCODER`)."""
    twins = ((i, p, k, v) for i, p in _ENCODER.items() for k, v in trunk.items() if k.startswith(p))
    return {f'encoder.{i}.{k.removeprefix(p)}': v for i, p, k, v in twins}


def unshuffle_order(scale: int, channels: int = 1) -> torch.Tensor:
    """The channel order that makes ``log2(scale)`` pixel-unshuffles by 2 equal one by ``scale``.

    ``F.pixel_unshuffle(x, scale) == unshuffle_2(x)[:, order]`` for ``x`` with ``channels`` channels, where
    ``unshuffle_2`` applies ``F.pixel_unshuffle(·, 2)`` log2(scale) times: channel ``k`` of the one unshuffle is
    channel ``order[k]`` of the repeated ones. Computed by unshuffling one block of distinct numbers both ways.
    At ×4 each input channel's 16 are ``[0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15]``: offset
    (i, j) = (2a' + a, 2b' + b) in the 4 × 4 block is channel 4i + j of one unshuffle, 8a + 4b + 2a' + b' of two.
    """
    if scale < 1 or scale & (scale - 1):
        raise AesopError(f'no pixel-unshuffles by 2 make one by {scale}: the scale must be a power of 2')
    block = torch.arange(channels * scale * scale).reshape(1, channels, scale, scale)
    once = F.pixel_unshuffle(block, scale).flatten()
    steps = block
    for _ in range(int(math.log2(scale))):
        steps = F.pixel_unshuffle(steps, 2)
    position = torch.empty_like(once)
    position[steps.flatten()] = torch.arange(once.numel())  # where each number sits after the ×2 steps
    return position[once]


def trunk_order(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, torch.Tensor]:
    """ψ's scale and :func:`unshuffle_order` for its trunk (nf channels), from the encoder's shapes (either layout):
    ``conv_first`` makes nf/s² channels, ``conv_last.0`` takes nf."""
    mid = state_dict['conv_first.0.weight'].shape[0]
    nf = state_dict['conv_last.0.weight'].shape[1]
    scale = round(math.sqrt(nf / mid))
    if scale * scale * mid != nf or scale not in (2, 4, 8):
        raise AesopError(
            f'an encoder that unshuffles {mid} channels into {nf} (by {math.sqrt(nf / mid):g}) does not convert: '
            "this project's encoder unshuffles by 2, log2(scale) times (scale 2, 4 or 8)"
        )
    return scale, unshuffle_order(scale, mid)


def permute_trunk(state_dict: Mapping[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """``state_dict`` (this project's keys) with its trunk channels renumbered: channel ``c`` of the result is
    channel ``index[c]`` of ``state_dict`` in every tensor that sees the nf unshuffled channels (the first nf input
    channels of each RRDB convolution, each RDB ``conv5``'s outputs, ``conv_last.0``'s inputs)."""
    nf = len(index)
    out = dict(state_dict)
    for key, value in state_dict.items():
        found = _OUR_RDB.fullmatch(key)
        if key == 'conv_last.0.weight':
            out[key] = value.index_select(1, index)
        elif found and found['what'] == 'weight':
            value = torch.cat([value[:, :nf].index_select(1, index), value[:, nf:]], dim=1)
            out[key] = value.index_select(0, index) if found['j'] == '5' else value
        elif found and found['j'] == '5':  # conv5's bias
            out[key] = value.index_select(0, index)
    return out


def is_trainner_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether ``state_dict`` is a traiNNer-redux ψ (its encoder's RRDBs in spandrel's keys)."""
    return any(_THEIR_RDB.fullmatch(key) for key in state_dict)


def from_trainner(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A traiNNer-redux ψ state dict as this project's ``AesopAutoEncoder`` (learned encoder) state dict.

    Its two registrations of the encoder are one here (they must hold equal tensors, as a file traiNNer saved
    does); both key sets are written back in this project's names. The trunk is renumbered
    (:func:`permute_trunk`) and an ESRGAN-layout decoder (traiNNer's ``esrgan``) renamed to basicsr's RRDBNet.
    """
    attributes: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not key.startswith('encoder.'):
            attributes[key] = value
    for key, value in state_dict.items():  # the second registration: equal to the first, or the only one
        index, _, rest = key.removeprefix('encoder.').partition('.')
        if not key.startswith('encoder.') or index not in _ENCODER:
            continue
        twin = _ENCODER[index] + rest
        if twin not in attributes:
            attributes[twin] = value
        elif not torch.equal(attributes[twin], value):
            raise AesopError(
                f'{key} differs from {twin}: traiNNer registers one module under both names, so its files hold '
                'equal copies'
            )
    ours: dict[str, torch.Tensor] = {}
    decoder: dict[str, torch.Tensor] = {}
    for key, value in attributes.items():
        found = _THEIR_RDB.fullmatch(key)
        if found:
            key = f'body.{found["i"]}.rdb{found["k"]}.conv{found["j"]}.{found["what"]}'
        if key.startswith('decoder.'):
            decoder[key.removeprefix('decoder.')] = value
        else:
            ours[key] = value
    if 'conv_first.0.weight' not in ours or 'conv_last.0.weight' not in ours:
        raise AesopError('a traiNNer ψ without conv_first.0.weight or conv_last.0.weight: not an AutoEncoder of it')
    _, order = trunk_order(ours)
    ours = permute_trunk(ours, torch.argsort(order))  # our channel order[k] is their channel k
    if 'model.0.weight' in decoder:
        stray = sorted(
            {m.group(1) for k in decoder if (m := re.match(r'model\.(\d+)\.', k))} - {'0', '1', *_ESRGAN_2018}
        )
        if stray:
            raise AesopError(
                f"the decoder has model.{stray[0]}: an ESRGAN that does not upscale by two ×2 steps, which basicsr's "
                "RRDBNet (ψ's decoder here) cannot be"
            )
        decoder = AesopRRDBNet.canonical_state_dict(decoder)
    return {**ours, **_encoder_twins(ours), **{f'decoder.{k}': v for k, v in decoder.items()}}


def to_trainner(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This project's ψ state dict in traiNNer-redux's layout, as its ``AutoEncoder`` with an ``esrgan`` decoder
    loads it strictly: both registrations of the encoder, spandrel's RRDB keys, the trunk renumbered, the decoder
    in ESRGAN's 2018 keys. Raises :class:`AesopError` for what traiNNer cannot hold (module docstring)."""
    sd = dict(state_dict)
    if not any(k.startswith('encoder.') for k in sd):
        raise AesopError('a ψ with the bicubic encoder (Tab. 3(a)) has no traiNNer layout: its encoder is learned')
    _, order = trunk_order(sd)
    blocks = sorted({m['i'] for k in sd if (m := _OUR_RDB.fullmatch(k))})
    growth = sd['body.0.rdb1.conv1.weight'].shape[0]
    channels = (sd['conv_first.0.weight'].shape[1], sd['conv_last.1.weight'].shape[0])
    if len(blocks) != 2 or growth != _GROWTH or channels != (3, 3):
        raise AesopError(
            f"traiNNer's encoder has 2 RRDB blocks of growth {_GROWTH} on RGB images; this ψ has {len(blocks)} of "
            f'growth {growth}, {channels[0]} → {channels[1]} channels'
        )
    decoder = {k.removeprefix('decoder.'): v for k, v in sd.items() if k.startswith('decoder.')}
    if not {'conv_first.weight', 'conv_up1.weight', 'conv_up2.weight', 'body.0.rdb1.conv1.weight'} <= decoder.keys():
        raise AesopError(
            "traiNNer's decoder here is its esrgan (spandrel's ESRGAN): ψ's decoder must be basicsr's RRDBNet, "
            f'not one with keys {", ".join(list(decoder)[:3])}, …'
        )
    if decoder['body.0.rdb1.conv1.weight'].shape[0] != _GROWTH:
        raise AesopError(
            f"traiNNer's esrgan decoder has growth {_GROWTH}; ψ's RRDBNet has num_grow_ch "
            f'{decoder["body.0.rdb1.conv1.weight"].shape[0]}'
        )
    ours = permute_trunk({k: v for k, v in sd.items() if not k.startswith(('encoder.', 'decoder.'))}, order)
    theirs: dict[str, torch.Tensor] = {}
    for key, value in ours.items():
        found = _OUR_RDB.fullmatch(key)
        theirs[f'body.{found["i"]}.RDB{found["k"]}.conv{found["j"]}.0.{found["what"]}' if found else key] = value
    encoder = _encoder_twins(theirs)
    num_block = len({m['i'] for k in decoder if (m := _OUR_RDB.fullmatch(k))})
    names = {v: k for k, v in _ESRGAN_2018.items()}
    esrgan = {}
    for key, value in decoder.items():
        found = _OUR_RDB.fullmatch(key)
        if found:
            key = f'model.1.sub.{found["i"]}.RDB{found["k"]}.conv{found["j"]}.0.{found["what"]}'
        elif key.startswith('conv_body.'):
            key = f'model.1.sub.{num_block}.' + key.removeprefix('conv_body.')
        else:
            prefix, _, what = key.partition('.')
            if f'{prefix}.' not in names:
                raise AesopError(f"ψ's decoder has {key}, which spandrel's ESRGAN has no place for")
            key = f'model.{names[prefix + "."]}.{what}'
        esrgan[f'decoder.{key}'] = value
    return {**theirs, **encoder, **esrgan}


def trainner_options(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """traiNNer-redux's options for ψ (this project's layout): its ``AESOPLoss`` / ``network_ae`` keys."""
    scale, _ = trunk_order(state_dict)
    return {
        'scale': scale,
        'nf': state_dict['conv_last.0.weight'].shape[1],
        'decoder_opt': {
            'type': 'esrgan',
            'num_filters': state_dict['decoder.conv_first.weight'].shape[0],
            'num_blocks': len({m.group(1) for k in state_dict if (m := re.match(r'decoder\.body\.(\d+)\.', k))}),
        },
    }
