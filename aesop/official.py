"""Names and option keys of the official AESOP release, resolved to this package's classes.

Official option files and checkpoints work unchanged except for paths. This module is the one
place that knows the release: :func:`translate_options` rewrites an option file's entries into
this package's names and keys before anything is checked or built (so errors name our types).
The release's names are also registered as aliases when no other plugin took them (for code
that calls ``build_network`` itself); an alias already taken is skipped, never a crash, and
release files keep working through the translation. What it covers:

- archs ``AutoEncoder_RRDBNet`` / ``BicubicDown_RRDBNet`` (``enc_opt``, ignored, and ``dec_opt``)
  → ``AesopAutoEncoder``; ``VGGStyleDiscriminator128`` / ``256`` → basicsr's
  ``VGGStyleDiscriminator`` (``256``'s batch norms synchronised under DDP, ``train.sync_bn_d``, as the
  release's); the baselines ``RRDBNet_LEGACY`` (→ ``AesopRRDBNet``, which reads ESRGAN's old key layouts)
  and ``SPSRNet`` (→ ``AesopSPSRNet``); ``DRCT`` → ``AesopDRCT``;
- losses ``AutoEncoderLoss`` (``autoencoder_arch``, ``autoencoder_load: {path, key}``: :func:`psi_options`)
  → ``AesopLoss`` and ``LRL1Loss`` → ``AesopLRConsistencyLoss`` (plain bicubic ×1/4, L1);
- models ``AEModel``, ``AesopESRGANArtifactsDisModel``, ``ESRGANArtifactsDisModel`` (LDL) and
  ``AesopRealESRGANArtifactsDisModel`` / ``RealESRGANArtifactsDisModel`` (real-world, App. B; LDL's name);
- dataset option ``use_flip`` (basicsr 1.4.2 reads ``use_hflip``);
- Real-ESRGAN's ``RealESRGANDataset`` (→ :class:`~aesop.data.AesopRealESRGANDataset`, which also
  takes ``meta_info: ~``) / ``UNetDiscriminatorSN``, which basicsr 1.4.2 registers as ``*_basicsr``
  (unless the ``realesrgan`` package registered them: then theirs);
- ``RRDBNet`` with ``use_checkpoint`` (→ :class:`~aesop.archs.AesopRRDBNet`), anywhere in the options;
- metrics ``calculate_{psnr,ssim,lpips,dists,aepsnr,niqe,musiq,maniqa,clipiqa_resnet}_pytorch``
  (:data:`METRIC_ALIASES`);
- in test files, basicsr's SR models (``ESRGANModel``, …) → :class:`~aesop.models.AesopSRModel`, so
  SwinIR inputs get padded to the window whatever model the file names.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from basicsr.metrics.psnr_ssim import calculate_psnr_pt, calculate_ssim_pt
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from aesop import archs, losses, models  # noqa: F401  (this package's names are registered before the aliases)
from aesop.errors import AesopError
from aesop.metrics.metrics import to_tensor
from aesop.utils import iter_mappings


def _autoencoder(encoder: str) -> Rewrite:
    """``AutoEncoder_RRDBNet`` / ``BicubicDown_RRDBNet`` → ``AesopAutoEncoder`` (×4; ``enc_opt`` ignored)."""

    def rewrite(node: dict) -> dict:
        node.pop('enc_opt', None)
        return {'type': 'AesopAutoEncoder', **_moved(node, {'dec_opt': 'decoder'}), 'scale': 4, 'encoder': encoder}

    return rewrite


def _discriminator(input_size: int) -> Rewrite:
    """``VGGStyleDiscriminator128`` / ``…256`` → basicsr's ``VGGStyleDiscriminator`` with that ``input_size``."""
    return lambda node: {'type': 'VGGStyleDiscriminator', **node, 'input_size': input_size}


def _autoencoder_loss(node: dict) -> dict:
    """``AutoEncoderLoss`` (``autoencoder_arch``, ``autoencoder_load: {path, key}``) → ``AesopLoss``."""
    if node.pop('as_loss_map', False):
        raise AesopError('AutoEncoderLoss: as_loss_map=true (an unpublished variant) is not supported')
    return {'type': 'AesopLoss', **psi_options(node)}


def psi_options(node: dict) -> dict:
    """``node`` with the release's ψ keys (``autoencoder_arch``, ``autoencoder_load: {path, key}``) as
    this package's (``autoencoder``, ``pretrained``, ``param_key``); the only place that knows them."""
    load = node.pop('autoencoder_load', None)
    if isinstance(load, dict):
        load = dict(load)
        if 'path' in load:
            node.setdefault('pretrained', load.pop('path'))
        node.setdefault('param_key', load.pop('key', 'params_ema'))
        if load:
            raise AesopError(f'unknown option {next(iter(load))!r} in autoencoder_load: it takes path, key')
    return _moved(node, {'autoencoder_arch': 'autoencoder'})


def _lr_l1_loss(node: dict) -> dict:
    """``LRL1Loss`` → ``AesopLRConsistencyLoss``: L1 after torch's plain (not antialiased) bicubic ×1/4 (the
    release's loss, not the 002 post's MSE after MATLAB's kernel, this loss's defaults)."""
    return {
        'type': 'AesopLRConsistencyLoss',
        **node,
        'scale': 4,
        'criterion': 'l1',
        'kernel': 'torch',
        'antialias': False,
    }


def _legacy_rrdb(node: dict) -> dict:
    """``RRDBNet_LEGACY`` (the ESRGAN code's option names) → ``AesopRRDBNet``, which reads ESRGAN's old
    checkpoint layouts."""
    return {'type': 'AesopRRDBNet', **_moved(node, LEGACY_RRDB_KEYS)}


def _renamed(canonical: str) -> Rewrite:
    return lambda node: {'type': canonical, **node}


def _replace(node: dict, entry: dict) -> None:
    """Rewrite ``node`` in place (it sits inside the options) as ``entry``."""
    node.clear()
    node.update(entry)


def _moved(node: dict, renames: dict[str, str]) -> dict:
    """``node`` with the keys in ``renames`` renamed (order kept; a key given both ways keeps the new one)."""
    return {renames.get(k, k): v for k, v in node.items() if not (k in renames and renames[k] in node)}


Rewrite = Callable[[dict], dict]  # a release entry without its ``type`` → this package's entry

# The release's arch and loss names → the rewrite of their entries into this package's. Applied to every
# ``type:`` of an option file by translate_options; also registered (when the name is free) for build_network.
ARCH_REWRITES: dict[str, Rewrite] = {
    'AutoEncoder_RRDBNet': _autoencoder('learned'),
    'BicubicDown_RRDBNet': _autoencoder('bicubic'),  # Tab. 3(a)
    'VGGStyleDiscriminator128': _discriminator(128),
    'VGGStyleDiscriminator256': _discriminator(256),  # SwinIR, RRDB-256
    'RRDBNet_LEGACY': _legacy_rrdb,  # ESRGAN's published checkpoints (baseline rows)
    'SPSRNet': _renamed('AesopSPSRNet'),  # SPSR's published checkpoint (baseline rows)
    'DRCT': _renamed('AesopDRCT'),  # the DRCT code's name
}
LOSS_REWRITES: dict[str, Rewrite] = {'AutoEncoderLoss': _autoencoder_loss, 'LRL1Loss': _lr_l1_loss}
MODEL_ALIASES = {
    'AEModel': 'AesopAEModel',
    'AesopESRGANArtifactsDisModel': 'AesopGANModel',
    'ESRGANArtifactsDisModel': 'AesopGANModel',  # LDL's name
    'AesopRealESRGANArtifactsDisModel': 'AesopRealGANModel',
    'RealESRGANArtifactsDisModel': 'AesopRealGANModel',  # LDL's real-world model
}


def rewrite_entry(node: dict) -> dict:
    """The release's arch or loss entry ``node`` (with its ``type``) as this package's; other entries as they are."""
    rewrite = ARCH_REWRITES.get(node.get('type')) or LOSS_REWRITES.get(node.get('type'))
    if rewrite is None:
        return node
    rest = {k: v for k, v in node.items() if k != 'type'}
    return rewrite(rest)


def aesop_psnr_pytorch(
    img: np.ndarray, img2: np.ndarray, crop_border: int = 0, test_y_channel: bool = True, **kwargs
) -> float:
    """The release's PSNR: basicsr's ``calculate_psnr_pt`` on the 8-bit images as float64 RGB in [0, 1].

    ``crop_border`` cropped, BT.601 Y (``test_y_channel``, default true), ``10·log10(1 / (MSE + 1e-8))``.
    ``img``/``img2``: 8-bit (H, W, 3) BGR, the SR and GT images quantised as saved.
    """
    a, b = (to_tensor(x, 'cpu', torch.float64) for x in (img, img2))
    return float(calculate_psnr_pt(a, b, crop_border, test_y_channel=test_y_channel))


def aesop_ssim_pytorch(
    img: np.ndarray, img2: np.ndarray, crop_border: int = 0, test_y_channel: bool = False, **kwargs
) -> float:
    """The release's SSIM: basicsr's ``calculate_ssim_pt`` (11 × 11 Gaussian window, σ 1.5, float64,
    per channel then averaged; ``test_y_channel``: BT.601 Y only) on the 8-bit images."""
    a, b = (to_tensor(x, 'cpu', torch.float64) for x in (img, img2))
    return float(calculate_ssim_pt(a, b, crop_border, test_y_channel=test_y_channel))


def _builder(registry, name: str) -> Callable[..., object]:
    """``name``'s entry built as this package's, for code that calls ``build_network``/``build_loss`` itself."""

    def build(**options):
        entry = rewrite_entry({'type': name, **options})
        return registry.get(entry.pop('type'))(**entry)

    build.__name__ = name
    return build


def register_alias(registry, name: str, obj: object) -> bool:
    """Register the release's ``name`` for ``obj`` unless another plugin registered it (basicsr's registry
    asserts on duplicates: importing aesop must never crash). Option files are translated before they are
    built, so they work either way. Returns whether ``name`` was registered."""
    if name in registry:
        return False
    registry._do_register(name, obj)
    return True


METRIC_REGISTRY.register(aesop_psnr_pytorch)
METRIC_REGISTRY.register(aesop_ssim_pytorch)
for _name in ARCH_REWRITES:
    register_alias(ARCH_REGISTRY, _name, _builder(ARCH_REGISTRY, _name))
for _name in LOSS_REWRITES:
    register_alias(LOSS_REGISTRY, _name, _builder(LOSS_REGISTRY, _name))
for _name, _canonical in MODEL_ALIASES.items():
    register_alias(MODEL_REGISTRY, _name, MODEL_REGISTRY.get(_canonical))
register_alias(METRIC_REGISTRY, 'calculate_psnr_pytorch', aesop_psnr_pytorch)
register_alias(METRIC_REGISTRY, 'calculate_ssim_pytorch', aesop_ssim_pytorch)

DATASET_OPTION_ALIASES = {'use_flip': 'use_hflip'}
# Real-ESRGAN's names, which basicsr 1.4.2 registers with a suffix (the realesrgan package owns them)
TYPE_ALIASES = {
    'RealESRGANDataset': 'AesopRealESRGANDataset',  # basicsr's RealESRGANDataset_basicsr, and meta_info: ~
    'RealESRGANPairedDataset': 'RealESRGANPairedDataset_basicsr',
    'UNetDiscriminatorSN': 'UNetDiscriminatorSN_basicsr',
}
# The release's metric names → (this package's metric with the same semantics, the options that give it).
METRIC_ALIASES = {
    'calculate_psnr_pytorch': ('aesop_psnr_pytorch', {}),  # basicsr's *_pt functions in float64
    'calculate_ssim_pytorch': ('aesop_ssim_pytorch', {}),
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
        _replace(dataset, _moved(dataset, DATASET_OPTION_ALIASES))
        if dataset.get('type') in TYPE_ALIASES and dataset['type'] not in DATASET_REGISTRY:
            dataset['type'] = TYPE_ALIASES[dataset['type']]
    for key, network in opt.items():
        if key.startswith('network_') and isinstance(network, dict):
            if network.get('type') in TYPE_ALIASES and network['type'] not in ARCH_REGISTRY:
                network['type'] = TYPE_ALIASES[network['type']]
    if (opt.get('network_d') or {}).get('type') == 'VGGStyleDiscriminator256' and isinstance(opt.get('train'), dict):
        opt['train'].setdefault('sync_bn_d', True)  # the release's 256-px D is built with nn.SyncBatchNorm
    for node in list(iter_mappings(opt)):
        if node.get('type') in ARCH_REWRITES or node.get('type') in LOSS_REWRITES:
            _replace(node, rewrite_entry(node))
    for node in iter_mappings(opt):
        if node.get('type') == 'RRDBNet' and 'use_checkpoint' in node:  # G, ψ's decoder (dec_opt, decoder)
            node['type'] = 'AesopRRDBNet'
    if opt.get('model_type') in MODEL_ALIASES:
        opt['model_type'] = MODEL_ALIASES[opt['model_type']]
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
    """ψ of an AE-PSNR entry: its own (``autoencoder`` + ``pretrained``, or the release's keys), else the one
    of the training loss (L_AESOP), as the release."""
    _replace(metric, psi_options(dict(metric)))
    if metric.get('autoencoder') is not None and metric.get('pretrained') is not None:
        return
    for loss in (opt.get('train') or {}).values():
        if isinstance(loss, dict) and loss.get('type') == 'AesopLoss':  # translated from AutoEncoderLoss too
            metric.setdefault('autoencoder', loss.get('autoencoder'))
            metric.setdefault('pretrained', loss.get('pretrained'))
            metric.setdefault('param_key', loss.get('param_key', 'params_ema'))
            return
    raise AesopError(
        f'{key} (AE-PSNR) needs the auto-encoder ψ: give it autoencoder + pretrained, or train with an '
        'AesopLoss / AutoEncoderLoss whose ψ it then uses'
    )
