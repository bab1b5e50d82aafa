"""Architectures registered in basicsr's ``ARCH_REGISTRY``."""

from aesop.archs.autoencoder_arch import AesopAutoEncoder, BicubicDownsample

__all__ = ['AesopAutoEncoder', 'BicubicDownsample']
