"""Data helpers. Training and testing use basicsr's datasets (``PairedImageDataset``, ...)."""

from aesop.data.demo import DEMO_TRAIN, DEMO_VAL, make_demo_dataset
from aesop.data.resize import bicubic_downscale

__all__ = ['DEMO_TRAIN', 'DEMO_VAL', 'bicubic_downscale', 'make_demo_dataset']
