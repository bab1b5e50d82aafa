"""LPIPS, DISTS, AE-PSNR and LR-PSNR as BasicSR metric functions.

Like basicsr's metrics they take 8-bit images as (H, W, C) BGR arrays (what ``tensor2img``
returns) and are called once per image; their networks are built once per run and device
(cached), on the device set by :func:`metric_device` (the model's, during validation) or
CUDA when available. Images reach the networks as (1, 3, H, W) RGB tensors in [0, 1].
ImageNet backbones are never downloaded: see :func:`aesop.utils.find_pretrained_file`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import NamedTuple

import numpy as np
import torch
from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_psnr_pt
from basicsr.utils import tensor2img
from basicsr.utils.registry import METRIC_REGISTRY
from torch import nn

from aesop.archs.autoencoder_arch import load_frozen_autoencoder
from aesop.backbones import OfflineZoo
from aesop.data.resize import bicubic_downscale
from aesop.errors import AesopError
from aesop.utils import default_device, random_backbones
from aesop.weights import read_checkpoint

_DEVICE: ContextVar[torch.device | None] = ContextVar('aesop_metric_device', default=None)


@contextlib.contextmanager
def metric_device(device: torch.device | str) -> Iterator[None]:
    """Run the metric networks on ``device`` inside this block (the models use their own)."""
    token = _DEVICE.set(torch.device(device))
    try:
        yield
    finally:
        _DEVICE.reset(token)


def _device() -> torch.device:
    return _DEVICE.get() or default_device()


def to_tensor(img: np.ndarray, device: torch.device | str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H, W, 3) uint8 BGR → (1, 3, H, W) RGB in [0, 1] (``dtype``: float32 or float64) on ``device``."""
    rgb = np.ascontiguousarray(img[..., ::-1], dtype=np.float64 if dtype == torch.float64 else np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device)


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border else img


@contextlib.contextmanager
def _offline_backbones(namespace: object, attr: str, purpose: str) -> Iterator[None]:
    """While inside, a package's torchvision models namespace (``namespace.attr``) is :class:`OfflineZoo`."""
    saved = getattr(namespace, attr)
    setattr(namespace, attr, OfflineZoo(purpose))
    try:
        yield
    finally:
        setattr(namespace, attr, saved)


@functools.cache
def lpips_net(net: str, device: torch.device, random: bool) -> nn.Module:
    """The ``lpips`` package's LPIPS (its learned linear layers ship with it); AlexNet/VGG16
    backbone from a local ImageNet file, or random with ``AESOP_RANDOM_BACKBONES=1``."""
    import lpips
    from lpips import pretrained_networks

    with _offline_backbones(pretrained_networks, 'tv', f'LPIPS-{net}'):
        model = lpips.LPIPS(net=net, verbose=False)  # its backbone: tv.<net>(pretrained=True), the zoo's
    del random  # part of the cache key: OfflineZoo reads AESOP_RANDOM_BACKBONES itself
    return model.eval().to(device)


@functools.cache
def dists_net(device: torch.device, random: bool) -> nn.Module:
    """DISTS (``DISTS_pytorch``; its learned alpha/beta ship with it) on a local VGG16."""
    from pathlib import Path

    import DISTS_pytorch
    from DISTS_pytorch import DISTS_pt

    with _offline_backbones(DISTS_pt, 'models', 'DISTS'):
        model = DISTS_pt.DISTS(load_weights=False)  # its backbone: models.vgg16(pretrained=True), the zoo's
    weights = read_checkpoint(Path(DISTS_pytorch.__file__).parent / 'weights.pt')
    model.alpha.data, model.beta.data = weights['alpha'], weights['beta']
    del random  # part of the cache key: OfflineZoo reads AESOP_RANDOM_BACKBONES itself
    return model.eval().to(device)


@functools.cache
def _autoencoder(arch_json: str, pretrained: str, param_key: str, device: torch.device) -> nn.Module:
    return load_frozen_autoencoder(json.loads(arch_json), pretrained, param_key=param_key).to(device)


@METRIC_REGISTRY.register()
def calculate_lpips(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, net: str = 'alex', **kwargs) -> float:
    """LPIPS (Zhang et al. 2018), AlexNet variant by default, as in the paper (Sec. 5)."""
    device = _device()
    model = lpips_net(net, device, random_backbones())
    with torch.no_grad():
        a, b = (to_tensor(_crop(x, crop_border), device) for x in (img, img2))
        return model(a, b, normalize=True).item()


@METRIC_REGISTRY.register()
def calculate_dists(img: np.ndarray, img2: np.ndarray, crop_border: int = 0, **kwargs) -> float:
    """DISTS (Ding et al. 2020), as in the paper (Sec. 5)."""
    device = _device()
    model = dists_net(device, random_backbones())
    a, b = (to_tensor(_crop(x, crop_border), device) for x in (img, img2))
    return model(a, b).item()


class Backbone(NamedTuple):
    """The ImageNet network a metric runs on."""

    builder: str | None  # the torchvision builder OfflineZoo builds it with; None: not torchvision's (FID's own file)
    name: str  # how a table names it when random: ``lpips (random AlexNet)``
    purpose: str  # how an error names what it is for: ``ALEXNET (LPIPS-alex)``


# The ImageNet backbone of each metric, by metric type and LPIPS's ``net``: what the start-up check looks for
# (aesop.options.missing_files, not at the first validation) and what the tables' labels name
# (aesop.metrics.scoring.metric_label). pyiqa's metrics have no random mode; AE-PSNR's ψ is a checkpoint.
METRIC_BACKBONES: dict[tuple[str, str | None], Backbone] = {
    ('calculate_lpips', 'alex'): Backbone('alexnet', 'AlexNet', 'LPIPS-alex'),  # lpips's pretrained_networks
    ('calculate_lpips', 'vgg'): Backbone('vgg16', 'VGG16', 'LPIPS-vgg'),
    ('calculate_lpips', 'squeeze'): Backbone('squeezenet1_1', 'SqueezeNet', 'LPIPS-squeeze'),
    ('calculate_dists', None): Backbone('vgg16', 'VGG16', 'DISTS'),
    ('calculate_fid', None): Backbone(None, 'Inception', 'FID'),  # basicsr's FID InceptionV3 (aesop.metrics.fid)
    ('calculate_patch_fid', None): Backbone(None, 'Inception', 'patch-FID'),
}


def metric_backbone(metric_opt: Mapping) -> Backbone | None:
    """The ImageNet backbone of a metric entry (its ``type``, and LPIPS's ``net``: ``alex`` by default), or ``None``
    when it runs on none."""
    kind = metric_opt.get('type')
    net = metric_opt.get('net', 'alex') if kind == 'calculate_lpips' else None
    return METRIC_BACKBONES.get((kind, net))


calculate_lpips.better = calculate_dists.better = 'lower'  # distances (aesop.metrics.scoring.metric_better)


@METRIC_REGISTRY.register()
def calculate_ae_psnr(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    autoencoder: dict | None = None,
    pretrained: str | None = None,
    param_key: str = 'params_ema',
    test_y_channel: bool = True,
    quantize: bool = True,
    **kwargs,
) -> float:
    """AE-PSNR: PSNR between ψ(SR) and ψ(HR) (Sec. 5): how well the fidelity bias is matched.

    Both 8-bit images (cropped bottom/right to a multiple of ψ's scale) go through the frozen ψ.
    With ``quantize`` (this project's default) ψ's outputs are rounded to 8 bit and scored by
    basicsr's ``calculate_psnr``; without (the official release's ``aepsnr``) the float outputs
    are scored by basicsr's ``calculate_psnr_pt`` (float64, ``10·log10(1 / (MSE + 1e-8))``).
    Both with ``crop_border`` and, by default, on the Y channel. ψ comes from ``autoencoder``
    (arch options) and ``pretrained[param_key]``.
    """
    if autoencoder is None or pretrained is None:
        raise AesopError('calculate_ae_psnr needs autoencoder (arch options) and pretrained (checkpoint)')
    device = _device()
    ae = _autoencoder(json.dumps(autoencoder, sort_keys=True), str(pretrained), param_key, device)
    s = ae.scale
    h, w = (img.shape[0] // s) * s, (img.shape[1] // s) * s
    with torch.no_grad():
        out = [ae(to_tensor(x[:h, :w], device)) for x in (img, img2)]
    if not quantize:
        a, b = (o.double() for o in out)
        return float(calculate_psnr_pt(a, b, crop_border, test_y_channel=test_y_channel))
    return calculate_psnr(tensor2img(out[0]), tensor2img(out[1]), crop_border, test_y_channel=test_y_channel)


@METRIC_REGISTRY.register()
def calculate_lr_psnr(
    img: np.ndarray,
    img2: np.ndarray | None = None,
    crop_border: int = 0,
    lq: np.ndarray | None = None,
    scale: int = 4,
    test_y_channel: bool = True,
    **kwargs,
) -> float:
    """LR-PSNR: PSNR-Y between the MATLAB-bicubic ×1/scale of SR (rounded to 8 bit, like a saved
    image) and the LR input (Sec. 5); AE-independent. No border is cropped (``crop_border`` is
    accepted for option-file uniformity and ignored). ``lq`` is passed by the AESOP models'
    validation and by the evaluator (``--lq``).
    """
    if lq is None:
        raise AesopError('calculate_lr_psnr needs the LR image (lq): use an AESOP model or evaluate.py --lq')
    down = bicubic_downscale(img, scale)
    if down.shape != lq.shape:
        raise AesopError(f'LR-PSNR: SR downscaled ×1/{scale} is {down.shape[:2]}, the LR image {lq.shape[:2]}')
    return calculate_psnr(down, lq, 0, test_y_channel=test_y_channel)
