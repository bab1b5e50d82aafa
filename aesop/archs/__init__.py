"""Architectures registered in basicsr's ``ARCH_REGISTRY`` (the release's names: :mod:`aesop.official`)."""

from aesop.archs.autoencoder_arch import AesopAutoEncoder, BicubicDownsample
from aesop.archs.bicubic_arch import AesopBicubic
from aesop.archs.drct_arch import DRCT, AesopDRCT
from aesop.archs.hraware_arch import AesopClipImageEncoder, AesopHRAwareReconstructor
from aesop.archs.legacy_arch import AesopSPSRNet
from aesop.archs.rrdbnet_arch import AesopRRDBNet

__all__ = [
    'DRCT',
    'AesopAutoEncoder',
    'AesopBicubic',
    'AesopClipImageEncoder',
    'AesopDRCT',
    'AesopHRAwareReconstructor',
    'AesopRRDBNet',
    'AesopSPSRNet',
    'BicubicDownsample',
]
