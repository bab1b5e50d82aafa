"""Architectures registered in basicsr's ``ARCH_REGISTRY``."""

from aesop.archs.autoencoder_arch import AesopAutoEncoder, BicubicDownsample
from aesop.archs.drct_arch import DRCT
from aesop.archs.rrdbnet_arch import AesopRRDBNet

__all__ = ['DRCT', 'AesopAutoEncoder', 'AesopRRDBNet', 'BicubicDownsample']
