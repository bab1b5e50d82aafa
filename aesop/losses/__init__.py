"""Losses registered in basicsr's ``LOSS_REGISTRY``."""

from aesop.losses.fidelity_loss import AesopLoss, AesopLowPassLoss, AesopLRConsistencyLoss, TransformedFidelityLoss
from aesop.losses.hraware_loss import AesopFeatureAlignmentLoss, AesopLRReconstructionLoss

__all__ = [
    'AesopFeatureAlignmentLoss',
    'AesopLRConsistencyLoss',
    'AesopLRReconstructionLoss',
    'AesopLoss',
    'AesopLowPassLoss',
    'TransformedFidelityLoss',
]
