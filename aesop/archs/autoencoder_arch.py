"""The auto-encoder ψ = D∘E of AESOP (Sec. 4.1, App. A); ψ found in options, built, loaded and frozen (Eq. 8)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import Literal

import torch
from basicsr.archs import build_network
from basicsr.archs.arch_util import default_init_weights, make_layer
from basicsr.archs.rrdbnet_arch import RRDB
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from aesop.archs.layouts import ReadsOtherLayouts
from aesop.archs.trainner import from_trainner, is_trainner_layout
from aesop.errors import AesopError, OptionValueError
from aesop.schema import checked
from aesop.weights import freeze, load_weights

Scale = Literal[2, 4, 8]
Encoder = Literal['learned', 'bicubic']


class BicubicDownsample(nn.Module):
    """Antialiased bicubic downscaling by ``1/scale``: the encoder of ablation Tab. 3(a).

    Matches the official ``AntialiasBicubicDown_x4`` (``F.interpolate``, ``antialias=True``).
    """

    def __init__(self, *, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, C, H/scale, W/scale)."""
        return F.interpolate(x, scale_factor=1 / self.scale, mode='bicubic', align_corners=False, antialias=True)


@ARCH_REGISTRY.register()
class AesopAutoEncoder(ReadsOtherLayouts, nn.Module):
    """ψ = D∘E: an HR → LR-sized encoder E and an SR decoder D (Sec. 4.1, App. A).

    Encoder E (``encoder='learned'``): fromRGB (3×3 conv 3 → nf/s², 3×3 conv nf/s² → nf/s²),
    ``log2(s)`` pixel-unshuffles by 2 (giving nf channels at LR size), ``num_block`` RRDB blocks
    (nf, grow ``num_grow_ch``), toRGB (3×3 conv nf → nf, 3×3 conv nf → 3). No activations outside
    the RRDBs, no global skip, as in the official code. ``encoder='bicubic'`` replaces E by
    antialiased bicubic downscaling (Tab. 3(a)).

    Decoder D: any registered SR arch of the same scale (``decoder`` options, ``RRDBNet`` by
    default; ``MSRResNet`` for Tab. 5(a)), initialised from PSNR-oriented weights by the AE model.
    basicsr's RRDBNet and MSRResNet stop at ×4: for ×8 use e.g. ``EDSR`` or ``SwinIR``.

    State-dict layout: the encoder's modules are registered twice, as ``conv_first``, ``body``,
    ``conv_last`` and as ``encoder.{0,2,3}`` (index 1 is the parameter-free unshuffle), exactly as
    the official ``AutoEncoder_RRDBNet``, so official checkpoints load strictly and ours load in
    the official code. Parameters are shared, so optimisers and EMA see each one once. With
    ``encoder='bicubic'`` the learned modules exist (frozen, unused) but ``encoder`` holds no
    parameters, as the official ``BicubicDown_RRDBNet``. traiNNer-redux's ψ (one ×s unshuffle, spandrel's RRDB
    keys) loads too, converted (:meth:`canonical_state_dict`, :mod:`aesop.archs.trainner`).

    Args:
        decoder: options of the decoder arch (``type`` defaults to ``RRDBNet``).
        scale: downscaling factor of E; must equal the decoder's upscaling factor.
        encoder: ``'learned'`` (the method) or ``'bicubic'`` (ablation Tab. 3(a)).
        num_feat: encoder width nf (default: the decoder's ``num_feat``, else 64).
        num_block: RRDB blocks in the encoder.
        num_grow_ch: RRDB growth channels (default: the decoder's ``num_grow_ch``, else 32).
        num_in_ch: image channels.
    """

    @checked
    def __init__(
        self,
        *,
        decoder: dict,
        scale: Scale = 4,
        encoder: Encoder = 'learned',
        num_feat: int | None = None,
        num_block: int = 2,
        num_grow_ch: int | None = None,
        num_in_ch: int = 3,
    ) -> None:
        super().__init__()
        decoder = {'type': 'RRDBNet', **deepcopy(dict(decoder))}
        num_feat = num_feat or decoder.get('num_feat', 64)
        num_grow_ch = num_grow_ch or decoder.get('num_grow_ch', 32)
        if num_feat % scale**2:
            raise OptionValueError(f'AesopAutoEncoder: num_feat ({num_feat}) must be divisible by scale² ({scale**2})')
        self.scale = scale
        self.encoder_type = encoder

        self.decoder = build_network(decoder)
        decoder_scale = getattr(self.decoder, 'scale', getattr(self.decoder, 'upscale', scale))
        if decoder_scale != scale:
            raise OptionValueError(
                f'AesopAutoEncoder: decoder {decoder["type"]} upscales ×{decoder_scale}, encoder ×{scale}'
            )

        mid = num_feat // scale**2
        self.conv_first = nn.Sequential(nn.Conv2d(num_in_ch, mid, 3, 1, 1), nn.Conv2d(mid, mid, 3, 1, 1))
        self.down = nn.Sequential(*[nn.PixelUnshuffle(2) for _ in range(int(math.log2(scale)))])
        self.body = make_layer(RRDB, num_block, num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.conv_last = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.Conv2d(num_feat, num_in_ch, 3, 1, 1))
        default_init_weights([self.conv_first, self.conv_last], 0.1)
        if encoder == 'learned':
            self.encoder = nn.Sequential(self.conv_first, self.down, self.body, self.conv_last)
        else:  # the official bicubic variant keeps (and saves) the unused learned encoder, frozen here
            self.encoder = BicubicDownsample(scale=scale)
            for module in (self.conv_first, self.body, self.conv_last):
                module.requires_grad_(False)

    @staticmethod
    def canonical_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state_dict`` in this layout (the release's), from traiNNer-redux's too: its keys, its double
        registration, the trunk's channel order after its one unshuffle (:func:`aesop.archs.trainner.from_trainner`)."""
        return from_trainner(state_dict) if is_trainner_layout(state_dict) else dict(state_dict)

    @classmethod
    def input_multiple(cls, options: Mapping) -> int:
        """H and W multiples of ``scale`` (E downscales by it; ψ tested as a network, as the release's AE test)."""
        return int(options.get('scale', 4))

    def encode(self, hr: torch.Tensor) -> torch.Tensor:
        """E: (N, 3, H, W) HR → (N, 3, H/s, W/s) LR estimate (the bottleneck, Eq. 4)."""
        return self.encoder(hr)

    def decode(self, lr: torch.Tensor) -> torch.Tensor:
        """D: (N, 3, h, w) → (N, 3, h·s, w·s)."""
        return self.decoder(lr)

    def forward(self, hr: torch.Tensor, return_bottleneck: bool = False):
        """ψ(hr) = D(E(hr)), (N, 3, H, W) → (N, 3, H, W); H and W multiples of ``scale``.

        With ``return_bottleneck`` returns ``(ψ(hr), E(hr))`` as the official module does.
        """
        if hr.shape[-1] % self.scale or hr.shape[-2] % self.scale:
            raise OptionValueError(
                f'AesopAutoEncoder: input {tuple(hr.shape[-2:])} is not a multiple of scale {self.scale}'
            )
        bottleneck = self.encode(hr)
        decoded = self.decode(bottleneck)
        if decoded.shape != hr.shape:  # e.g. RRDBNet(scale=8) silently upscales ×4
            raise OptionValueError(
                f'AesopAutoEncoder: decoder {type(self.decoder).__name__} maps {tuple(bottleneck.shape[-2:])} to '
                f'{tuple(decoded.shape[-2:])}, expected {tuple(hr.shape[-2:])} (×{self.scale})'
            )
        return (decoded, bottleneck) if return_bottleneck else decoded


def load_frozen_autoencoder(
    arch_opt: Mapping, path: str | Path, *, param_key: str = 'params_ema', option: str | None = None
) -> nn.Module:
    """Build ψ = D∘E from arch options, load it strictly and freeze it (Sec. 4.2, Eq. 8).

    The one place that builds, loads and freezes ψ: the AESOP loss uses it, and so should any
    metric or tool that needs the auto-encoder.

    Args:
        arch_opt: ``network_g``-style options with ``type`` (e.g. ``AesopAutoEncoder``).
        path: checkpoint written by AE pretraining (or an official AESOP checkpoint).
        param_key: ``params_ema`` (default, as the paper) or ``params``.
        option: option key naming ``path``, for error messages.
    """
    net = build_network(deepcopy(dict(arch_opt)))
    load_weights(net, path, param_key=param_key, strict=True, option=option)
    return freeze(net)


AUTOENCODER_TYPES = ('AesopAutoEncoder',)  # the release's names are translated to it (aesop.official)


def autoencoder_arch(opt: Mapping) -> dict:
    """The arch options of ψ in (translated) options: their ``network_g`` (AE pretraining/test files) or
    the AESOP loss's ``autoencoder`` (GAN training files)."""
    network_g = opt.get('network_g') or {}
    if network_g.get('type') in AUTOENCODER_TYPES:
        return dict(network_g)
    for loss in (opt.get('train') or {}).values():
        if isinstance(loss, Mapping):
            if isinstance(loss.get('autoencoder'), Mapping):
                return dict(loss['autoencoder'])
    raise AesopError('no auto-encoder in these options: expected network_g of type AesopAutoEncoder or an AesopLoss')
