"""Names and option keys of the official AESOP release, resolved to this package's classes.

Official option files and checkpoints work unchanged except for paths. Everything that exists
only for that lives here:

- archs ``AutoEncoder_RRDBNet`` / ``BicubicDown_RRDBNet`` (kwargs ``enc_opt``, ignored, and
  ``dec_opt``), ``VGGStyleDiscriminator128`` / ``VGGStyleDiscriminator256``, and the baselines
  ``RRDBNet_LEGACY`` (→ :class:`~aesop.archs.AesopRRDBNet`, which reads ESRGAN's old key layouts) and
  ``SPSRNet`` (:mod:`aesop.archs.legacy_arch`);
- losses ``AutoEncoderLoss`` (``autoencoder_arch``, ``autoencoder_load: {path, key}``) and
  ``LRL1Loss`` (plain bicubic ×1/4, L1, as the official one);
- models ``AEModel``, ``AesopESRGANArtifactsDisModel``, ``ESRGANArtifactsDisModel`` (LDL) and
  ``AesopRealESRGANArtifactsDisModel`` / ``RealESRGANArtifactsDisModel`` (real-world, App. B; LDL's name);
- dataset option ``use_flip`` (basicsr 1.4.2 reads ``use_hflip``);
- Real-ESRGAN's ``RealESRGANDataset`` (→ :class:`~aesop.data.AesopRealESRGANDataset`, which also
  takes ``meta_info: ~``) / ``UNetDiscriminatorSN``, which basicsr 1.4.2 registers as ``*_basicsr``;
- ``RRDBNet`` with ``use_checkpoint`` (→ :class:`~aesop.archs.AesopRRDBNet`), anywhere in the options;
- metrics ``calculate_{psnr,ssim,lpips,dists,aepsnr,niqe,musiq,maniqa,clipiqa_resnet}_pytorch``
  (:data:`METRIC_ALIASES`);
- in test files, basicsr's SR models (``ESRGANModel``, …) → :class:`~aesop.models.AesopSRModel`, so
  SwinIR inputs get padded to the window whatever model the file names.
"""

from __future__ import annotations

import numpy as np
import torch
from basicsr.archs.discriminator_arch import VGGStyleDiscriminator
from basicsr.metrics.psnr_ssim import calculate_psnr_pt, calculate_ssim_pt
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from aesop.archs.autoencoder_arch import AesopAutoEncoder
from aesop.archs.legacy_arch import SPSRNet
from aesop.archs.rrdbnet_arch import AesopRRDBNet
from aesop.errors import AesopError
from aesop.losses.fidelity_loss import AesopLoss, AesopLRConsistencyLoss
from aesop.metrics.metrics import to_tensor
from aesop.models.ae_model import AesopAEModel
from aesop.models.gan_model import AesopGANModel
from aesop.models.realworld_model import AesopRealGANModel
from aesop.utils import iter_mappings


def AutoEncoder_RRDBNet(*, dec_opt: dict, enc_opt: dict | None = None) -> AesopAutoEncoder:  # noqa: N802
    """Official ×4 auto-encoder with a learned encoder; ``enc_opt`` is ignored as upstream."""
    return AesopAutoEncoder(decoder=dec_opt, scale=4, encoder='learned')


def BicubicDown_RRDBNet(*, dec_opt: dict, enc_opt: dict | None = None) -> AesopAutoEncoder:  # noqa: N802
    """Official ablation Tab. 3(a): bicubic ×1/4 instead of the encoder."""
    return AesopAutoEncoder(decoder=dec_opt, scale=4, encoder='bicubic')


def VGGStyleDiscriminator128(*, num_in_ch: int = 3, num_feat: int = 64) -> VGGStyleDiscriminator:  # noqa: N802
    """basicsr's VGG-style discriminator for 128-px patches (same keys as the official one)."""
    return VGGStyleDiscriminator(num_in_ch=num_in_ch, num_feat=num_feat, input_size=128)


def VGGStyleDiscriminator256(*, num_in_ch: int = 3, num_feat: int = 64) -> VGGStyleDiscriminator:  # noqa: N802
    """basicsr's VGG-style discriminator for 256-px patches (SwinIR, RRDB-256)."""
    return VGGStyleDiscriminator(num_in_ch=num_in_ch, num_feat=num_feat, input_size=256)


def AutoEncoderLoss(  # noqa: N802
    *,
    autoencoder_arch: dict,
    autoencoder_load: dict,
    criterion: str = 'l1',
    loss_weight: float = 1.0,
    reduction: str = 'mean',
    as_loss_map: bool = False,
) -> AesopLoss:
    """Official name of :class:`~aesop.losses.AesopLoss`."""
    if as_loss_map:
        raise AesopError('AutoEncoderLoss: as_loss_map=true (an unpublished variant) is not supported')
    return AesopLoss(
        autoencoder=autoencoder_arch,
        pretrained=autoencoder_load['path'],
        param_key=autoencoder_load.get('key', 'params_ema'),
        criterion=criterion,
        loss_weight=loss_weight,
        reduction=reduction,
    )


def LRL1Loss(*, loss_weight: float = 1.0, reduction: str = 'mean') -> AesopLRConsistencyLoss:  # noqa: N802
    """Official LR-consistency loss: L1 after plain (not antialiased) bicubic ×1/4."""
    return AesopLRConsistencyLoss(scale=4, antialias=False, loss_weight=loss_weight, reduction=reduction)


def calculate_psnr_pytorch(
    img: np.ndarray, img2: np.ndarray, crop_border: int = 0, test_y_channel: bool = True, **kwargs
) -> float:
    """The release's PSNR: basicsr's ``calculate_psnr_pt`` on the 8-bit images as float64 RGB in [0, 1].

    ``crop_border`` cropped, BT.601 Y (``test_y_channel``, default true), ``10·log10(1 / (MSE + 1e-8))``.
    ``img``/``img2``: 8-bit (H, W, 3) BGR, the SR and GT images quantised as saved.
    """
    a, b = (to_tensor(x, 'cpu', torch.float64) for x in (img, img2))
    return float(calculate_psnr_pt(a, b, crop_border, test_y_channel=test_y_channel))


def calculate_ssim_pytorch(
    img: np.ndarray, img2: np.ndarray, crop_border: int = 0, test_y_channel: bool = False, **kwargs
) -> float:
    """The release's SSIM: basicsr's ``calculate_ssim_pt`` (11 × 11 Gaussian window, σ 1.5, float64,
    per channel then averaged; ``test_y_channel``: BT.601 Y only) on the 8-bit images."""
    a, b = (to_tensor(x, 'cpu', torch.float64) for x in (img, img2))
    return float(calculate_ssim_pt(a, b, crop_border, test_y_channel=test_y_channel))


for _fn in (calculate_psnr_pytorch, calculate_ssim_pytorch):
    METRIC_REGISTRY.register(_fn)
for _fn in (AutoEncoder_RRDBNet, BicubicDown_RRDBNet, VGGStyleDiscriminator128, VGGStyleDiscriminator256):
    ARCH_REGISTRY.register(_fn)
for _fn in (AutoEncoderLoss, LRL1Loss):
    LOSS_REGISTRY.register(_fn)
ARCH_REGISTRY._do_register('RRDBNet_LEGACY', AesopRRDBNet)  # reads the published ESRGAN checkpoint's layouts
ARCH_REGISTRY._do_register('SPSRNet', SPSRNet)  # SPSR's published checkpoint (baseline rows)
MODEL_REGISTRY._do_register('AEModel', AesopAEModel)
MODEL_REGISTRY._do_register('AesopESRGANArtifactsDisModel', AesopGANModel)
MODEL_REGISTRY._do_register('ESRGANArtifactsDisModel', AesopGANModel)
MODEL_REGISTRY._do_register('AesopRealESRGANArtifactsDisModel', AesopRealGANModel)
MODEL_REGISTRY._do_register('RealESRGANArtifactsDisModel', AesopRealGANModel)  # LDL's real-world model

DATASET_OPTION_ALIASES = {'use_flip': 'use_hflip'}
# Real-ESRGAN's names, which basicsr 1.4.2 registers with a suffix (the realesrgan package owns them)
TYPE_ALIASES = {
    'RealESRGANDataset': 'AesopRealESRGANDataset',  # basicsr's RealESRGANDataset_basicsr, and meta_info: ~
    'RealESRGANPairedDataset': 'RealESRGANPairedDataset_basicsr',
    'UNetDiscriminatorSN': 'UNetDiscriminatorSN_basicsr',
}
# The release's metric names → (this package's metric with the same semantics, the options that give it).
# calculate_psnr_pytorch / calculate_ssim_pytorch are registered above under their own names.
METRIC_ALIASES = {
    'calculate_lpips_pytorch': ('calculate_lpips', {'net': 'alex'}),  # pyiqa's lpips: the same LPIPS v0.1
    'calculate_dists_pytorch': ('calculate_dists', {}),  # pyiqa's dists: the same DISTS
    'calculate_aepsnr_pytorch': ('calculate_ae_psnr', {'quantize': False}),  # ψ of the training loss
    'calculate_niqe_pytorch': ('calculate_pyiqa', {'metric': 'niqe'}),
    'calculate_musiq_pytorch': ('calculate_pyiqa', {'metric': 'musiq'}),
    'calculate_maniqa_pytorch': ('calculate_pyiqa', {'metric': 'maniqa'}),
    'calculate_clipiqa_resnet_pytorch': ('calculate_pyiqa', {'metric': 'clipiqa'}),  # pyiqa's CLIP-IQA, RN50
}
# basicsr's SR models, whose test() does not pad to the window; AesopSRModel tests the same network
TEST_MODEL_ALIASES = ('SRModel', 'SRGANModel', 'ESRGANModel', 'SwinIRModel', 'RealESRNetModel', 'RealESRGANModel')
AUTOENCODER_LOSSES = ('AesopLoss', 'AutoEncoderLoss')
# the release's RRDBNet_LEGACY takes the ESRGAN code's names
LEGACY_RRDB_KEYS = {
    'in_nc': 'num_in_ch',
    'out_nc': 'num_out_ch',
    'nf': 'num_feat',
    'nb': 'num_block',
    'gc': 'num_grow_ch',
}


def translate_options(opt: dict) -> dict:
    """Rewrite the release's names and keys in ``opt`` (in place) to this package's; returns ``opt``.

    The dataset's ``use_flip``; Real-ESRGAN's dataset and discriminator names (unless the
    ``realesrgan`` package registered them); ``RRDBNet`` with ``use_checkpoint`` anywhere;
    the ``*_pytorch`` metrics; basicsr's SR models in test files.
    """
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY

    for dataset in (opt.get('datasets') or {}).values():
        for old, new in DATASET_OPTION_ALIASES.items():
            if old in dataset:
                dataset.setdefault(new, dataset.pop(old))
        if dataset.get('type') in TYPE_ALIASES and dataset['type'] not in DATASET_REGISTRY:
            dataset['type'] = TYPE_ALIASES[dataset['type']]
    for key, network in opt.items():
        if key.startswith('network_') and isinstance(network, dict):
            if network.get('type') in TYPE_ALIASES and network['type'] not in ARCH_REGISTRY:
                network['type'] = TYPE_ALIASES[network['type']]
    for node in iter_mappings(opt):
        if node.get('type') == 'RRDBNet' and 'use_checkpoint' in node:  # G, ψ's decoder (dec_opt, decoder)
            node['type'] = 'AesopRRDBNet'
        if node.get('type') == 'RRDBNet_LEGACY':  # the ESRGAN code's option names
            for old, new in LEGACY_RRDB_KEYS.items():
                if old in node:
                    node.setdefault(new, node.pop(old))
    for name, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        if isinstance(metric, dict) and metric.get('type') in METRIC_ALIASES:
            metric['type'], implied = METRIC_ALIASES[metric['type']]
            for key, value in implied.items():
                metric.setdefault(key, value)
            if metric['type'] == 'calculate_ae_psnr':
                _attach_autoencoder(opt, metric, f'val.metrics.{name}')
    if not opt.get('is_train', True) and opt.get('model_type') in TEST_MODEL_ALIASES:
        opt['model_type'] = 'AesopSRModel'
    return opt


def _attach_autoencoder(opt: dict, metric: dict, key: str) -> None:
    """ψ of an AE-PSNR entry: its own (``autoencoder_arch`` + ``autoencoder_load`` as the official loss,
    or ``autoencoder`` + ``pretrained``), else the one of the training loss (L_AESOP), as the release."""
    if 'autoencoder_arch' in metric:
        load = metric.pop('autoencoder_load', None) or {}
        metric['autoencoder'] = metric.pop('autoencoder_arch')
        metric.setdefault('pretrained', load.get('path'))
        metric.setdefault('param_key', load.get('key', 'params_ema'))
    if metric.get('autoencoder') is not None and metric.get('pretrained') is not None:
        return
    for loss in (opt.get('train') or {}).values():
        if isinstance(loss, dict) and loss.get('type') in AUTOENCODER_LOSSES:
            if loss['type'] == 'AutoEncoderLoss':
                load = loss.get('autoencoder_load') or {}
                psi = (loss.get('autoencoder_arch'), load.get('path'), load.get('key', 'params_ema'))
            else:
                psi = (loss.get('autoencoder'), loss.get('pretrained'), loss.get('param_key', 'params_ema'))
            metric.setdefault('autoencoder', psi[0])
            metric.setdefault('pretrained', psi[1])
            metric.setdefault('param_key', psi[2])
            return
    raise AesopError(
        f'{key} (AE-PSNR) needs the auto-encoder ψ: give it autoencoder + pretrained, or train with an '
        'AesopLoss / AutoEncoderLoss whose ψ it then uses'
    )
