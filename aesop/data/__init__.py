"""Data helpers. Training and testing use basicsr's datasets (``PairedImageDataset``, ...)."""

from aesop.data.demo import DEMO_TRAIN, DEMO_VAL, make_demo_dataset

__all__ = ['DEMO_TRAIN', 'DEMO_VAL', 'make_demo_dataset']
