"""Models registered in basicsr's ``MODEL_REGISTRY``."""

from aesop.models.ae_model import AesopAEModel
from aesop.models.base import AesopModel
from aesop.models.gan_model import FIDELITY_TERMS, AesopGANModel, AesopSRModel
from aesop.models.hraware_model import AesopHRAwareFinetuneModel, AesopHRAwareModel, AesopHRAwareReconModel
from aesop.models.realworld_model import AesopRealGANModel

__all__ = [
    'FIDELITY_TERMS',
    'AesopAEModel',
    'AesopGANModel',
    'AesopModel',
    'AesopHRAwareFinetuneModel',
    'AesopHRAwareModel',
    'AesopHRAwareReconModel',
    'AesopRealGANModel',
    'AesopSRModel',
]
