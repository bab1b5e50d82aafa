"""Data helpers. Training and testing use basicsr's datasets (``PairedImageDataset``, ...)."""

from aesop.data.degradations import REALESRGAN_OPTION_KEYS, DegradedPair, PairQueue, RealESRGANDegradation
from aesop.data.demo import DEMO_TRAIN, DEMO_VAL, make_demo_dataset
from aesop.data.realesrgan_dataset import AesopRealESRGANDataset
from aesop.data.resize import bicubic_downscale

__all__ = [
    'AesopRealESRGANDataset',
    'DEMO_TRAIN',
    'DEMO_VAL',
    'REALESRGAN_OPTION_KEYS',
    'DegradedPair',
    'PairQueue',
    'RealESRGANDegradation',
    'bicubic_downscale',
    'make_demo_dataset',
]
