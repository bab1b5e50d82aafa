"""ImageNet backbones without downloads: the VGG of basicsr's perceptual loss and of DISTS.

Nothing is downloaded at run time: a backbone's weights are read from a local file, found in
:func:`aesop.utils.pretrained_search_dirs`, and a missing file is one error naming it and where
to put it. ``AESOP_RANDOM_BACKBONES=1`` keeps the weights random (tests, the demo).
"""

from __future__ import annotations

import logging

import torch

from aesop.utils import find_pretrained_file, random_backbones
from aesop.weights import read_checkpoint

__all__ = ['OfflineVGGZoo']

logger = logging.getLogger('basicsr')


class OfflineVGGZoo:
    """Stands in for ``torchvision.models.vgg`` inside ``basicsr.archs.vgg_arch`` (compat fix 4) and DISTS.

    ``vgg19(pretrained=True)`` loads the ImageNet file (``vgg19-dcbb9e9d.pth``) from the first of
    :func:`aesop.utils.pretrained_search_dirs` holding it (``$AESOP_PRETRAINED_DIR``, the
    project's ``experiments/pretrained_models/``, torch's hub cache), never downloads, and names
    the missing file otherwise. With ``AESOP_RANDOM_BACKBONES=1`` the weights stay random.
    """

    def __getattr__(self, name: str):
        from torchvision.models import vgg as tv_vgg

        builder = getattr(tv_vgg, name)

        def build(pretrained: bool = False) -> torch.nn.Module:
            with torch.random.fork_rng(devices=[]):
                if pretrained and random_backbones():
                    torch.manual_seed(0)  # the same random backbone in every run: comparable numbers
                net = builder(weights=None)
            if pretrained and random_backbones():
                logger.warning(f'{name}: random weights (AESOP_RANDOM_BACKBONES is set, seed 0)')
            elif pretrained:
                url = getattr(tv_vgg, f'{name.upper()}_Weights').IMAGENET1K_V1.url
                path = find_pretrained_file(url.rsplit('/', 1)[-1], url=url, what=f'{name.upper()} (perceptual loss)')
                net.load_state_dict(read_checkpoint(path))
            return net

        return build
