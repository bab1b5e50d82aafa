"""The losses of HR-aware self-supervised finetuning (paper 003): FAR (Eq. 9–11), HQI (Eq. 7), the
controller s (Eq. 8) and the LR reconstruction loss L_rec (after LWay).

L_rec's exact form is in the paper's supplementary, which is not public. This project's choice
(options, off by default where marked): L1 between X̂ and X, weighted per pixel by
``1 + hf_weight · h(X)`` with h the normalised high-frequency magnitude of X (Haar DWT bands, as
LWay), plus ``lpips_weight`` · LPIPS(X̂, X).
"""

from __future__ import annotations

from typing import Literal

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F

from aesop.errors import AesopError, OptionValueError
from aesop.schema import LossWeight, checked

__all__ = [
    'AesopFeatureAlignmentLoss',
    'AesopLRReconstructionLoss',
    'controller',
    'far_descriptors',
    'high_frequency_map',
    'hqi',
]


def far_descriptors(e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """S_avg and S_max of Eq. 10 for features (N, C, H, W): the rows' means and maxima of the Gram
    matrix G(e) = e·eᵀ / (H·W), (N, C, C). Returns two (N, C) tensors."""
    n, c, h, w = e.shape
    flat = e.reshape(n, c, h * w).float()
    gram = flat @ flat.transpose(1, 2) / (h * w)
    return gram.mean(dim=2), gram.amax(dim=2)


@LOSS_REGISTRY.register()
class AesopFeatureAlignmentLoss(nn.Module):
    """L_far (Eq. 11): ‖T_a·S_avg(e_im) − S_avg(e_cl)‖_F + ‖T_m·S_max(e_im) − S_max(e_cl)‖_F, per image,
    averaged over the batch and times ``loss_weight`` (λ_pt or λ_ft of Eq. 5–6)."""

    def __init__(self, *, loss_weight: LossWeight = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, e_im: torch.Tensor, e_cl: torch.Tensor, t_avg: nn.Module, t_max: nn.Module) -> torch.Tensor:
        avg_im, max_im = far_descriptors(e_im)
        avg_cl, max_cl = far_descriptors(e_cl)
        distance = (t_avg(avg_im) - avg_cl).norm(dim=1) + (t_max(max_im) - max_cl).norm(dim=1)
        return self.loss_weight * distance.mean()


def hqi(lr: torch.Tensor, hr: torch.Tensor, lpips: nn.Module) -> torch.Tensor:
    """HQI(X, Y) = 1 − LPIPS(f↑(X), Y) (Eq. 7), one value per image, (N,).

    ``lr`` (N, 3, h, w) and ``hr`` (N, 3, H, W) are RGB in [0, 1]; f↑ is bicubic upsampling to
    ``hr``'s size; ``lpips`` an ``lpips.LPIPS`` network (inputs normalised by it)."""
    up = F.interpolate(lr, size=hr.shape[-2:], mode='bicubic', align_corners=False).clamp(0, 1)
    return 1 - lpips(up, hr, normalize=True).reshape(-1)


def controller(
    quality: torch.Tensor,
    *,
    form: Literal['finetune', 'pretrain', 'inverse'] = 'finetune',
    noise_std: float = 0.0,
    channels: int = 1,
) -> torch.Tensor:
    """The controller s of Eq. 8 from HQI values (N,), as (N, ``channels``): ``n + HQI`` in finetuning,
    ``n + (1 − HQI)`` in pretraining and in Tab. 4's inverted finetuning (``inverse``).

    Paper 003, Sec. 4.3: "the vector n is a C_d-dimensional random vector and n ∼ N(0, I), which helps
    the robustness": with ``channels`` = C_d (e_d's size) every image gets its own n, one value per
    channel of e_d, with HQI broadcast over the channels; ``noise_std`` is n's standard deviation (the
    paper: 1). ``channels=1`` is one n per image, scaling all of e_d alike (this project's scalar form)."""
    if form not in ('finetune', 'pretrain', 'inverse'):
        raise OptionValueError(f"controller form must be 'finetune', 'pretrain' or 'inverse', got {form!r}")
    if channels < 1:
        raise OptionValueError(f'controller: channels must be >= 1, got {channels}')
    base = (quality if form == 'finetune' else 1 - quality).reshape(-1, 1).expand(-1, channels)
    if not noise_std:
        return base
    return base + noise_std * torch.randn(base.shape, dtype=base.dtype, device=base.device)


def high_frequency_map(img: torch.Tensor) -> torch.Tensor:
    """The high-frequency magnitude of (N, C, H, W) in [0, 1] per image: |LH| + |HL| + |HH| of a one-level
    Haar DWT, averaged over channels, upsampled back to H × W (nearest) and divided by its maximum."""
    h, w = img.shape[-2:]
    x = F.pad(img, (0, w % 2, 0, h % 2), mode='replicate')
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    lh, hl, hh = (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2
    bands = (lh.abs() + hl.abs() + hh.abs()).mean(dim=1, keepdim=True)
    full = F.interpolate(bands, scale_factor=2, mode='nearest')[..., :h, :w]
    return full / full.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12)


@LOSS_REGISTRY.register()
class AesopLRReconstructionLoss(nn.Module):
    """L_rec(X̂, X): ``mean((1 + hf_weight·h(X))·|X̂ − X|) + lpips_weight·LPIPS(X̂, X)``, times ``loss_weight``.

    Args:
        loss_weight: weight of the whole term.
        hf_weight: weight of the high-frequency map h (:func:`high_frequency_map`); 0: plain L1.
        lpips_weight: weight of LPIPS (AlexNet; the offline network of :mod:`aesop.metrics`); 0: none.
    """

    @checked
    def __init__(
        self,
        *,
        loss_weight: LossWeight = 1.0,
        hf_weight: LossWeight = 0.0,
        lpips_weight: LossWeight = 0.0,
    ) -> None:
        super().__init__()
        self.loss_weight, self.hf_weight, self.lpips_weight = loss_weight, hf_weight, lpips_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = 1 + self.hf_weight * high_frequency_map(target) if self.hf_weight else 1
        loss = (weight * (pred - target).abs()).mean()
        if self.lpips_weight:
            if min(pred.shape[-2:]) < 32:
                raise AesopError(
                    f'AesopLRReconstructionLoss: LPIPS (AlexNet) needs LR images of at least 32 px, got '
                    f'{tuple(pred.shape[-2:])}: larger patches, or lpips_weight: 0'
                )
            from aesop.metrics.metrics import lpips_net
            from aesop.utils import random_backbones

            lpips = lpips_net('alex', pred.device, random_backbones())
            loss = loss + self.lpips_weight * lpips(pred.clamp(0, 1), target, normalize=True).mean()
        return self.loss_weight * loss
