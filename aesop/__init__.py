"""AESOP: Auto-Encoded Supervision for Perceptual Image Super-Resolution, as a BasicSR plugin.

Importing this package makes ``basicsr==1.4.2`` work on current PyTorch (:mod:`aesop.compat`)
and registers the archs, losses and models of the method under basicsr's registries.
"""

import torch

# isort: off
from aesop import compat  # noqa: F401  (first: fixes basicsr before anything else imports it)
from aesop import archs, losses, metrics, models, official, utils  # noqa: F401  (registration)
# isort: on

if utils.random_backbones():  # the test mode: random VGG19/Inception weights drive activations on real images
    torch.set_flush_denormal(True)  # into float32's denormal range, where CPU convolutions are ~20x slower

__version__ = '0.1.0'
