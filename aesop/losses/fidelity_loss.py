"""Fidelity terms for GAN SR: L_AESOP (Eq. 8) and the baselines it is compared with.

Each compares SR and HR after the same transform ``T``: ``w · crit(T(SR), T(HR))`` with T(HR)
computed without a graph. The pixel L1 of ESRGAN/LDL is basicsr's ``L1Loss`` (T = identity).
"""

from __future__ import annotations

import logging
import math
from typing import Annotated, Literal

import torch
from basicsr.losses.basic_loss import charbonnier_loss, l1_loss, mse_loss
from basicsr.utils.registry import LOSS_REGISTRY
from pydantic import Field
from torch import nn
from torch.nn import functional as F
from torchvision.transforms.functional import gaussian_blur

from aesop.archs.autoencoder_arch import load_frozen_autoencoder
from aesop.data.resize import matlab_bicubic_downscale
from aesop.errors import OptionValueError
from aesop.schema import LossWeight, checked
from aesop.weights import file_digest

CRITERIA = {'l1': l1_loss, 'l2': mse_loss, 'mse': mse_loss, 'charbonnier': charbonnier_loss}
Criterion = Literal['l1', 'l2', 'mse', 'charbonnier']  # CRITERIA's keys
Reduction = Literal['none', 'mean', 'sum']


def torch_bicubic_downscale(x: torch.Tensor, scale: int, *, antialias: bool) -> torch.Tensor:
    """(N, C, H, W) → (N, C, H/scale, W/scale) by ``F.interpolate(mode='bicubic', align_corners=False)``:
    with ``antialias=False`` the release's ``LRL1Loss`` transform (a = −0.75, no antialiasing)."""
    return F.interpolate(x, scale_factor=1 / scale, mode='bicubic', align_corners=False, antialias=antialias)


class TransformedFidelityLoss(nn.Module):
    """``loss_weight · criterion(T(pred), T(target))``, T(target) without a graph.

    Subclasses define :meth:`transform`. ``target`` says which image the model passes as the
    target: ``'hr'`` (the ground truth) or ``'lq'`` (the LR input).
    """

    target = 'hr'

    @checked
    def __init__(
        self, *, criterion: Criterion = 'l1', loss_weight: LossWeight = 1.0, reduction: Reduction = 'mean'
    ) -> None:
        super().__init__()
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
        loss_weight: LossWeight = 1.0,
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
    """``crit(down(I_SR), I_LR)`` (or ``crit(down(I_SR), down(I_HR))``): LR-consistency.

    From S. Park, "Discussing a novel approach for the loss of Super-Resolution" (2021), section
    "Comparing the images at Downsampled space": "So, instead of MSE(HR, G(LR)), we use
    MSE(LR, bicubic(G(LR))) as the loss." Hence the defaults ``criterion: mse`` and ``kernel: matlab``
    (the training LR images, DIV2K/DF2K's and ours, are MATLAB-bicubic: :func:`aesop.data.resize.bicubic_downscale`).

    ``down`` is bicubic downscaling by ``1/scale``:

    - ``kernel: matlab`` (default): MATLAB's ``imresize`` (antialiased, symmetric padding at the borders) as
      a differentiable tensor operation (:func:`aesop.data.resize.matlab_bicubic_downscale`), the kernel
      that made the LR images: a whole HR image and its float LR give 0, its saved LR the saving's rounding;
    - ``kernel: torch``: ``F.interpolate(mode='bicubic')``; ``antialias: true`` is MATLAB's kernel inside the
      image but renormalises it at the borders instead of mirroring (equal inside, 46 dB apart on the outer
      2 LR pixels of skimage's astronaut ×1/4); ``antialias: false`` (plain bicubic, a = −0.75, no antialiasing)
      reproduces the official ``LRL1Loss`` of the AESOP release (with ``criterion: l1``, ``target: hr``).

    Args:
        scale: SR scale factor.
        target: ``'hr'`` compares with the downscaled HR, ``'lq'`` (the paper's formula) with the LR input.
        kernel: ``matlab`` (paper's LR kernel) or ``torch`` (this project's earlier choice).
        antialias: with ``kernel: torch``, antialiased (``True``) or plain (``False``) bicubic; MATLAB's
            kernel is always antialiased when downscaling.
        criterion: ``mse``/``l2`` (paper), ``l1`` (the release's ``LRL1Loss``) or ``charbonnier``.
        crop_border: LR pixels cut from each side of both images before comparing (default 0: the post
            cuts none). Training pairs are crops of whole images, so the pixels within 2 LR pixels of an HR
            crop's border (the ×4 kernel's reach) depend on HR pixels outside the crop: no kernel
            reproduces them, and ``crop_border: 2`` (×4) leaves only pixels that MATLAB's kernel does.
        loss_weight: weight of the term.
        reduction: ``mean``, ``sum`` or ``none``.
    """

    @checked
    def __init__(
        self,
        *,
        scale: Annotated[int, Field(ge=1)] = 4,
        target: Literal['hr', 'lq'] = 'hr',
        kernel: Literal['matlab', 'torch'] = 'matlab',
        antialias: bool = True,
        criterion: Criterion = 'mse',
        crop_border: Annotated[int, Field(ge=0)] = 0,
        loss_weight: LossWeight = 1.0,
        reduction: Reduction = 'mean',
    ) -> None:
        super().__init__(criterion=criterion, loss_weight=loss_weight, reduction=reduction)
        if kernel == 'matlab' and not antialias:
            raise OptionValueError(
                "AesopLRConsistencyLoss: antialias must be true with kernel: matlab (MATLAB's imresize always "
                "antialiases when downscaling); antialias: false is torch's plain bicubic: set kernel: torch"
            )
        self.scale = scale
        self.target = target
        self.kernel = kernel
        self.antialias = antialias
        self.crop_border = crop_border

    def downscale(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → (N, C, H/scale, W/scale) with the configured kernel."""
        if self.kernel == 'matlab':
            return matlab_bicubic_downscale(x, self.scale)
        return torch_bicubic_downscale(x, self.scale, antialias=self.antialias)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        b = self.crop_border
        return x[..., b : x.shape[-2] - b, b : x.shape[-1] - b] if b else x

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.crop(self.downscale(x))

    def transform_target(self, target: torch.Tensor) -> torch.Tensor:
        return self.crop(target) if self.target == 'lq' else self.transform(target)


@LOSS_REGISTRY.register()
class AesopLowPassLoss(TransformedFidelityLoss):
    """The baseline of Tab. 5(b): L_pix after a low-pass filter of SR and HR.

    The paper: "We apply LPF on SR and HR images before calculating L_pix on top of our baseline method
    LDL." It names no filter. The default, ``filter: bicubic``, is the release's only low-pass loss,
    ``LRL1Loss`` ("Simple version of L1 loss at LR scale / or equivalently, low-pass filtering",
    ``basicsr/losses/aesop_loss.py``): ``F.interpolate(x, scale_factor=1/scale, mode='bicubic')``, plain
    (not antialiased) bicubic, of SR and of HR, compared at LR size. ``filter: gaussian`` is this project's
    variant: a Gaussian blur at HR size (σ = ``sigma`` HR pixels, default 1.5, which removes roughly what
    ×4 bicubic downscaling removes), the filter of Fig. 6(d)'s spectra (``scripts/spectrum.py``).

    Args:
        filter: ``bicubic`` (the release's ``LRL1Loss``) or ``gaussian``.
        scale: the downscaling factor of ``filter: bicubic`` (the release's: 4).
        sigma: standard deviation of ``filter: gaussian``, in HR pixels (default 1.5).
        kernel_size: odd kernel size of ``filter: gaussian`` (default ``2·ceil(3σ) + 1``).
        criterion: ``l1`` (the release's), ``l2``/``mse`` or ``charbonnier``.
        loss_weight: weight of the term (the paper gives none for this baseline; see
            ``options/train_lpf_rrdb.yml``).
        reduction: ``mean``, ``sum`` or ``none``.
    """

    @checked
    def __init__(
        self,
        *,
        filter: Literal['bicubic', 'gaussian'] = 'bicubic',  # noqa: A002 (the option's name)
        scale: Annotated[int, Field(ge=1)] = 4,
        sigma: Annotated[float, Field(gt=0)] | None = None,
        kernel_size: Annotated[int, Field(ge=1)] | None = None,
        criterion: Criterion = 'l1',
        loss_weight: LossWeight = 1.0,
        reduction: Reduction = 'mean',
    ) -> None:
        super().__init__(criterion=criterion, loss_weight=loss_weight, reduction=reduction)
        if filter == 'bicubic' and (sigma is not None or kernel_size is not None):
            raise OptionValueError(
                'AesopLowPassLoss: sigma and kernel_size must be set only with filter: gaussian '
                "(filter: bicubic is the release's LRL1Loss, plain bicubic ×1/scale)"
            )
        self.filter = filter
        self.scale = scale
        self.sigma = 1.5 if sigma is None else sigma
        self.kernel_size = kernel_size or 2 * math.ceil(3 * self.sigma) + 1
        if self.kernel_size % 2 == 0:
            raise OptionValueError(f'AesopLowPassLoss: kernel_size must be odd, got {self.kernel_size}')

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter == 'bicubic':
            return torch_bicubic_downscale(x, self.scale, antialias=False)
        return gaussian_blur(x, [self.kernel_size, self.kernel_size], [self.sigma, self.sigma])
