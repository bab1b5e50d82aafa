"""Losses registered in basicsr's ``LOSS_REGISTRY``."""

from aesop.losses.fidelity_loss import AesopLoss, AesopLowPassLoss, AesopLRConsistencyLoss, TransformedFidelityLoss

__all__ = ['AesopLoss', 'AesopLRConsistencyLoss', 'AesopLowPassLoss', 'TransformedFidelityLoss']
