"""Fidelity terms for GAN SR: L_AESOP (Eq. 8) and the baselines it is compared with.

Each compares SR and HR after the same transform ``T``: ``w · crit(T(SR), T(HR))`` with T(HR)
computed without a graph. The pixel L1 of ESRGAN/LDL is basicsr's ``L1Loss`` (T = identity).
"""

from __future__ import annotations

import logging
import math

import torch
from basicsr.losses.basic_loss import charbonnier_loss, l1_loss, mse_loss
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F
from torchvision.transforms.functional import gaussian_blur

from aesop.archs.autoencoder_arch import load_frozen_autoencoder
from aesop.errors import OptionValueError
from aesop.weights import file_digest

CRITERIA = {'l1': l1_loss, 'l2': mse_loss, 'mse': mse_loss, 'charbonnier': charbonnier_loss}
REDUCTIONS = ('none', 'mean', 'sum')
TARGETS = ('hr', 'lq')


class TransformedFidelityLoss(nn.Module):
    """``loss_weight · criterion(T(pred), T(target))``, T(target) without a graph.

    Subclasses define :meth:`transform`. ``target`` says which image the model passes as the
    target: ``'hr'`` (the ground truth) or ``'lq'`` (the LR input).
    """

    target = 'hr'

    def __init__(self, *, criterion: str = 'l1', loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        if criterion not in CRITERIA:
            raise OptionValueError(
                f'{type(self).__name__}: criterion must be one of {tuple(CRITERIA)}, got {criterion!r}'
            )
        if reduction not in REDUCTIONS:
            raise OptionValueError(f'{type(self).__name__}: reduction must be one of {REDUCTIONS}, got {reduction!r}')
        self.criterion = CRITERIA[criterion]
        self.loss_weight = loss_weight
        self.reduction = reduction

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def transform_target(self, target: torch.Tensor) -> torch.Tensor:
        return self.transform(target)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred (N, C, H, W) SR; target: HR (N, C, H, W) or, for ``target='lq'``, the LR image."""
        with torch.no_grad():
            target = self.transform_target(target.detach()).float()
        return self.loss_weight * self.criterion(self.transform(pred).float(), target, reduction=self.reduction)


@LOSS_REGISTRY.register()
class AesopLoss(TransformedFidelityLoss):
    """L_AESOP = ‖ψ(I_HR) − ψ(I_SR)‖₁ with ψ = D∘E frozen (Eq. 8, Sec. 4.2).

    ψ is built from ``autoencoder`` options and loaded from ``pretrained[param_key]`` by
    :func:`aesop.archs.autoencoder_arch.load_frozen_autoencoder`: eval mode, ``requires_grad=False``, never in
    an optimiser, never saved with the SR model. ψ(HR) is computed without a graph; gradients
    reach G through ψ(SR) only.

    Args:
        autoencoder: arch options of ψ (``type: AesopAutoEncoder``, ...).
        pretrained: checkpoint of the AE pretraining stage.
        param_key: key in the checkpoint (``params_ema`` as in the paper).
        criterion: ``l1`` (paper), ``l2``/``mse`` or ``charbonnier``.
        loss_weight: λ_AESOP (1 in Eq. 9).
        reduction: ``mean``, ``sum`` or ``none``.
    """

    def __init__(
        self,
        *,
        autoencoder: dict,
        pretrained: str,
        param_key: str = 'params_ema',
        criterion: str = 'l1',
        loss_weight: float = 1.0,
        reduction: str = 'mean',
    ) -> None:
        super().__init__(criterion=criterion, loss_weight=loss_weight, reduction=reduction)
        self.autoencoder = load_frozen_autoencoder(autoencoder, pretrained, param_key=param_key)
        self.pretrained = str(pretrained)
        self.digest = file_digest(pretrained)  # recorded in training states: a resumed run checks ψ is the same
        logging.getLogger('basicsr').info(f'AesopLoss: ψ = {pretrained} [{param_key}], sha256 {self.digest}')

    def train(self, mode: bool = True) -> AesopLoss:
        """ψ stays in eval mode whatever the caller asks."""
        super().train(mode)
        self.autoencoder.eval()
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder(x)


@LOSS_REGISTRY.register()
class AesopLRConsistencyLoss(TransformedFidelityLoss):
    """‖down(I_SR) − down(I_HR)‖ (or ‖down(I_SR) − I_LR‖): LR-consistency.

    From S. Park, "Discussing a novel approach for the loss of Super-Resolution" (2021).

    ``down`` is bicubic downscaling by ``1/scale`` (``F.interpolate``; ``antialias=True`` is close
    to MATLAB's ``imresize``, ``False`` reproduces the official ``LRL1Loss``).

    Args:
        scale: SR scale factor.
        target: ``'hr'`` compares with the downscaled HR, ``'lq'`` with the LR input itself.
        antialias: antialiased bicubic (``True``) or plain (``False``).
        criterion: ``l1``, ``l2``/``mse`` (that post's MSE) or ``charbonnier``.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        target: str = 'hr',
        antialias: bool = True,
        criterion: str = 'l1',
        loss_weight: float = 1.0,
        reduction: str = 'mean',
    ) -> None:
        super().__init__(criterion=criterion, loss_weight=loss_weight, reduction=reduction)
        if target not in TARGETS:
            raise OptionValueError(f'AesopLRConsistencyLoss: target must be one of {TARGETS}, got {target!r}')
        self.scale = scale
        self.target = target
        self.antialias = antialias

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(
            x, scale_factor=1 / self.scale, mode='bicubic', align_corners=False, antialias=self.antialias
        )

    def transform_target(self, target: torch.Tensor) -> torch.Tensor:
        return target if self.target == 'lq' else self.transform(target)


@LOSS_REGISTRY.register()
class AesopLowPassLoss(TransformedFidelityLoss):
    """L1 between Gaussian low-passed SR and HR: the baseline of Tab. 5(b).

    Args:
        sigma: standard deviation of the Gaussian, in HR pixels.
        kernel_size: odd kernel size (default ``2·ceil(3σ) + 1``).
    """

    def __init__(
        self,
        *,
        sigma: float = 1.0,
        kernel_size: int | None = None,
        criterion: str = 'l1',
        loss_weight: float = 1.0,
        reduction: str = 'mean',
    ) -> None:
        super().__init__(criterion=criterion, loss_weight=loss_weight, reduction=reduction)
        if sigma <= 0:
            raise OptionValueError(f'AesopLowPassLoss: sigma must be > 0, got {sigma}')
        self.sigma = sigma
        self.kernel_size = kernel_size or 2 * math.ceil(3 * sigma) + 1
        if self.kernel_size % 2 == 0:
            raise OptionValueError(f'AesopLowPassLoss: kernel_size must be odd, got {self.kernel_size}')

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, [self.kernel_size, self.kernel_size], [self.sigma, self.sigma])
