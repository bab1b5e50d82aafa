"""Names and option keys of the official AESOP release, resolved to this package's classes.

Official option files and checkpoints work unchanged except for paths. Everything that exists
only for that lives here:

- archs ``AutoEncoder_RRDBNet`` / ``BicubicDown_RRDBNet`` (kwargs ``enc_opt``, ignored, and
  ``dec_opt``), ``VGGStyleDiscriminator128`` / ``VGGStyleDiscriminator256``;
- losses ``AutoEncoderLoss`` (``autoencoder_arch``, ``autoencoder_load: {path, key}``) and
  ``LRL1Loss`` (plain bicubic ×1/4, L1, as the official one);
- models ``AEModel``, ``AesopESRGANArtifactsDisModel``, ``ESRGANArtifactsDisModel`` (LDL) and
  ``AesopRealESRGANArtifactsDisModel`` / ``RealESRGANArtifactsDisModel`` (real-world, App. B; LDL's name);
- dataset option ``use_flip`` (basicsr 1.4.2 reads ``use_hflip``);
- Real-ESRGAN's ``RealESRGANDataset`` / ``UNetDiscriminatorSN``, which basicsr 1.4.2 registers as
  ``*_basicsr``.
"""

from __future__ import annotations

from basicsr.archs.discriminator_arch import VGGStyleDiscriminator
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

from aesop.archs.autoencoder_arch import AesopAutoEncoder
from aesop.errors import AesopError
from aesop.losses.fidelity_loss import AesopLoss, AesopLRConsistencyLoss
from aesop.models.ae_model import AesopAEModel
from aesop.models.gan_model import AesopGANModel
from aesop.models.realworld_model import AesopRealGANModel


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


for _fn in (AutoEncoder_RRDBNet, BicubicDown_RRDBNet, VGGStyleDiscriminator128, VGGStyleDiscriminator256):
    ARCH_REGISTRY.register(_fn)
for _fn in (AutoEncoderLoss, LRL1Loss):
    LOSS_REGISTRY.register(_fn)
MODEL_REGISTRY._do_register('AEModel', AesopAEModel)
MODEL_REGISTRY._do_register('AesopESRGANArtifactsDisModel', AesopGANModel)
MODEL_REGISTRY._do_register('ESRGANArtifactsDisModel', AesopGANModel)
MODEL_REGISTRY._do_register('AesopRealESRGANArtifactsDisModel', AesopRealGANModel)
MODEL_REGISTRY._do_register('RealESRGANArtifactsDisModel', AesopRealGANModel)  # LDL's real-world model

DATASET_OPTION_ALIASES = {'use_flip': 'use_hflip'}
# Real-ESRGAN's names, which basicsr 1.4.2 registers with a suffix (the realesrgan package owns them)
TYPE_ALIASES = {
    'RealESRGANDataset': 'RealESRGANDataset_basicsr',
    'RealESRGANPairedDataset': 'RealESRGANPairedDataset_basicsr',
    'UNetDiscriminatorSN': 'UNetDiscriminatorSN_basicsr',
}


def translate_options(opt: dict) -> dict:
    """Rename official option keys in place: the dataset's ``use_flip``, and Real-ESRGAN's dataset and
    discriminator names to basicsr's suffixed ones unless the ``realesrgan`` package registered them."""
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
    return opt
