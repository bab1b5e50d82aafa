"""Datasets and data helpers: basicsr's datasets with clear errors, the Real-ESRGAN degradation, the demo data."""

from aesop.data.degradations import REALESRGAN_OPTION_KEYS, DegradedPair, PairQueue, RealESRGANDegradation
from aesop.data.demo import DEMO_TRAIN, DEMO_VAL, make_degraded_lr, make_demo_dataset
from aesop.data.lr_patch_dataset import AesopLRPatchDataset
from aesop.data.paired_dataset import AesopPairedImageDataset
from aesop.data.realesrgan_dataset import AesopRealESRGANDataset
from aesop.data.resize import bicubic_downscale

__all__ = [
    'AesopLRPatchDataset',
    'AesopPairedImageDataset',
    'AesopRealESRGANDataset',
    'DEMO_TRAIN',
    'DEMO_VAL',
    'REALESRGAN_OPTION_KEYS',
    'DegradedPair',
    'PairQueue',
    'RealESRGANDegradation',
    'bicubic_downscale',
    'make_degraded_lr',
    'make_demo_dataset',
]
