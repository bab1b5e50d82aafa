"""SPSR's generator (Ma et al., "Structure-Preserving Super Resolution with Gradient Guidance", CVPR 2020).

The SPSR row of the paper's tables evaluates the published checkpoint (``SPSR.pth``); the AESOP
release's test files name its network ``SPSRNet`` (an alias, :mod:`aesop.official`). :class:`AesopSPSRNet` is
built from spandrel's ESRGAN-era blocks so that the original checkpoint's keys (``model.*``,
``b_*``, ``f_*``, ``HR_conv*_new``, ``get_g_nopadding.*``) load strictly. (The ESRGAN row's old key
layouts are read by :class:`~aesop.archs.AesopRRDBNet`.)
"""

from __future__ import annotations

import importlib

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torch.nn import functional as F

from aesop.errors import OptionValueError

# spandrel's building blocks of the ESRGAN-era code (conv_block, RRDB, upconv_block, ShortcutBlockSPSR)
B = importlib.import_module('spandrel.architectures.__arch_helpers.block')


class GradientMap(nn.Module):
    """SPSR's gradient magnitude of each channel, ``sqrt(∂v² + ∂h² + 1e-6)`` by central differences
    (zero-padded); its two kernels are (frozen) parameters of the original checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        vertical = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        self.weight_h = nn.Parameter(vertical.T[None, None].clone(), requires_grad=False)
        self.weight_v = nn.Parameter(vertical[None, None].clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, C, H, W)."""
        flat = x.reshape(-1, 1, *x.shape[-2:])
        grad = torch.sqrt(
            F.conv2d(flat, self.weight_v, padding=1) ** 2 + F.conv2d(flat, self.weight_h, padding=1) ** 2 + 1e-6
        )
        return grad.reshape(x.shape)


@ARCH_REGISTRY.register()
class AesopSPSRNet(nn.Module):
    """SPSR's generator (Ma et al., CVPR 2020, Fig. 2), with the original code's module names.

    SR branch: ``model`` = conv, ``num_block`` RRDBs + conv with a shortcut, ``log2(upscale)``
    nearest ×2 + conv + LeakyReLU, conv + LeakyReLU (``HR_conv0_new``), then ``HR_conv1_new``.
    Gradient branch: the LR image's gradient map through a conv and four (RRDB, conv) stages
    (``b_block_i`` / ``b_concat_i``), each fed the SR branch's features after 5·i RRDBs, a conv
    with a shortcut, and an upsampler (``b_module``). Fusion: RRDB + conv + conv/LeakyReLU + conv
    on both HR feature maps (``f_*``). The gradient branch's own HR output (``conv_w``) exists in
    the checkpoints but is not returned, as in the original code. Needs ``num_block`` ≥ 20.

    Args:
        in_nc, out_nc: image channels.
        nf: feature width (``num_filters`` in spandrel).
        nb: RRDB blocks of the SR branch.
        gc: growth channels of the RRDBs (32 in SPSR).
        upscale: 2, 4 or 8.
        norm_type, act_type, mode, upsample_mode: the SPSR code's options; only the published
            model's values (none, ``leakyrelu``, ``CNA``, ``upconv``) are supported.
    """

    def __init__(
        self,
        *,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        nb: int = 23,
        gc: int = 32,
        upscale: int = 4,
        norm_type: str | None = None,
        act_type: str = 'leakyrelu',
        mode: str = 'CNA',
        upsample_mode: str = 'upconv',
    ) -> None:
        super().__init__()
        if nb < 20 or upscale not in (2, 4, 8):
            raise OptionValueError(f'SPSRNet: needs nb >= 20 and upscale 2, 4 or 8, got nb {nb}, upscale {upscale}')
        if (norm_type, act_type, mode, upsample_mode) != (None, 'leakyrelu', 'CNA', 'upconv'):
            raise OptionValueError('SPSRNet: only norm_type none, act_type leakyrelu, mode CNA, upsample_mode upconv')

        def rrdb(channels: int) -> nn.Module:
            return B.RRDB(channels, kernel_size=3, gc=gc, stride=1, bias=True, pad_type='zero', act_type='leakyrelu')

        def conv(cin: int, cout: int, act: str | None = None, kernel_size: int = 3) -> nn.Module:
            return B.conv_block(cin, cout, kernel_size=kernel_size, norm_type=None, act_type=act)

        def upsamplers() -> list[nn.Module]:
            return [B.upconv_block(nf, nf, act_type='leakyrelu') for _ in range(upscale.bit_length() - 1)]

        self.HR_conv0_new = conv(nf, nf, 'leakyrelu')  # noqa: N815  (the checkpoints' names)
        self.HR_conv1_new = conv(nf, nf)  # noqa: N815
        trunk = B.ShortcutBlockSPSR(B.sequential(*[rrdb(nf) for _ in range(nb)], conv(nf, nf)))
        self.model = B.sequential(conv(in_nc, nf), trunk, *upsamplers(), self.HR_conv0_new)
        self.get_g_nopadding = GradientMap()
        self.b_fea_conv = conv(in_nc, nf)
        for i in range(1, 5):
            setattr(self, f'b_concat_{i}', conv(2 * nf, nf))
            setattr(self, f'b_block_{i}', rrdb(2 * nf))
        self.b_LR_conv = conv(nf, nf)  # noqa: N815
        self.b_module = B.sequential(*upsamplers(), conv(nf, nf, 'leakyrelu'), conv(nf, nf))
        self.conv_w = conv(nf, out_nc, kernel_size=1)
        self.f_concat = conv(2 * nf, nf)
        self.f_block = rrdb(2 * nf)
        self.f_HR_conv0 = conv(nf, nf, 'leakyrelu')  # noqa: N815
        self.f_HR_conv1 = conv(nf, out_nc)  # noqa: N815
        self.scale = upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_nc, H, W) → (N, out_nc, H·upscale, W·upscale)."""
        gradient = self.get_g_nopadding(x)
        feat = self.model[0](x)
        feat, blocks = self.model[1](feat)  # the shortcut block returns its input and its body
        trunk_in, stages = feat, []
        for stage in range(4):  # SR-branch features after 5, 10, 15 and 20 RRDBs
            for block in blocks[5 * stage : 5 * stage + 5]:
                feat = block(feat)
            stages.append(feat)
        feat = trunk_in + blocks[20:](feat)
        sr_feat = self.HR_conv1_new(self.model[2:](feat))

        grad_feat = self.b_fea_conv(gradient)
        branch = grad_feat
        for i, stage_feat in enumerate(stages, 1):
            branch = torch.cat([branch, stage_feat], dim=1)
            branch = getattr(self, f'b_concat_{i}')(getattr(self, f'b_block_{i}')(branch))
        branch = self.b_module(self.b_LR_conv(branch) + grad_feat)

        fused = self.f_concat(self.f_block(torch.cat([branch, sr_feat], dim=1)))
        return self.f_HR_conv1(self.f_HR_conv0(fused))
