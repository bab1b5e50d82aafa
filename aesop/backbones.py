"""ImageNet backbones without downloads: the VGG19 of basicsr's perceptual loss, LPIPS's AlexNet/VGG16, DISTS's VGG16.

Nothing is downloaded at run time: a backbone's weights are read from a local file, found in
:func:`aesop.utils.pretrained_search_dirs`, and a missing file is one error naming it and where
to put it. ``AESOP_RANDOM_BACKBONES=1`` keeps the weights random (tests, the demo).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from aesop.utils import find_pretrained_file, locate_pretrained_file, pretrained_file_not_found, random_backbones
from aesop.weights import read_checkpoint

__all__ = ['OfflineZoo', 'imagenet_file', 'missing_imagenet_file', 'random_init']

logger = logging.getLogger('basicsr')


def random_init(net: nn.Module, *, seed: int = 0) -> nn.Module:
    """Give a backbone built on the meta device seeded random weights on the CPU, cheaply.

    Convolutions get torchvision's VGG initialisation (He normal, fan-out, zero bias); fully
    connected layers, which the feature extractors built on these backbones never run (basicsr's
    perceptual loss, LPIPS and DISTS all take ``.features``), are zero: drawing VGG's 120 M
    classifier weights is what made building a random VGG take 1.6 s.
    """
    net.to_empty(device='cpu')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the same random backbone in every run: comparable numbers
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
            else:
                continue
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net


def imagenet_file(name: str) -> tuple[str, str]:
    """``(file name, URL)`` of torchvision's ImageNet weights of the builder ``name``
    (``vgg19``: ``vgg19-dcbb9e9d.pth``, https://download.pytorch.org/models/vgg19-dcbb9e9d.pth)."""
    import torchvision.models

    url = torchvision.models.get_model_weights(name).IMAGENET1K_V1.url
    return url.rsplit('/', 1)[-1], url


def backbone_label(name: str, purpose: str) -> str:
    """How an error names a backbone: ``VGG19 (perceptual loss)``."""
    return f'{name.upper()} ({purpose})'


def missing_imagenet_file(name: str, *, purpose: str, option: str) -> str | None:
    """The line naming the ImageNet file of the backbone ``name`` that :class:`OfflineZoo` would not find (for
    ``purpose``, built for ``option``), or ``None`` when it is there or backbones are random: a start-up check."""
    if random_backbones():
        return None
    filename, url = imagenet_file(name)
    if locate_pretrained_file(filename) is not None:
        return None
    return pretrained_file_not_found(filename, url=url, what=backbone_label(name, purpose), option=option)


class OfflineZoo:
    """Stands in for ``torchvision.models`` where basicsr, LPIPS and DISTS build an ImageNet backbone.

    ``zoo.vgg19(pretrained=True)`` (any torchvision builder name) loads the ImageNet file
    (``vgg19-dcbb9e9d.pth``, ``alexnet-owt-7be5be79.pth``, …) from the first of
    :func:`aesop.utils.pretrained_search_dirs` holding it (``$AESOP_PRETRAINED_DIR``, the
    project's ``experiments/pretrained_models/``, torch's hub cache), never downloads, and names
    the missing file otherwise. With ``AESOP_RANDOM_BACKBONES=1`` the weights are random
    (:func:`random_init`). Either way the network is built on the meta device first, so no time
    goes into initialising weights that are then overwritten. ``pretrained=False`` is torchvision's
    own random initialisation.
    """

    def __init__(self, purpose: str = 'ImageNet backbone') -> None:
        self.purpose = purpose  # named in the missing-file error: 'VGG19 (perceptual loss)'

    def __getattr__(self, name: str):
        import torchvision.models

        if name.startswith('__'):
            raise AttributeError(name)

        builder = torchvision.models.get_model_builder(name)

        def build(pretrained: bool = False) -> nn.Module:
            if not pretrained:
                return builder(weights=None)
            with torch.device('meta'):
                net = builder(weights=None)
            if random_backbones():
                logger.warning(f'{name}: random weights (AESOP_RANDOM_BACKBONES is set, seed 0)')
                return random_init(net)
            filename, url = imagenet_file(name)
            path = find_pretrained_file(filename, url=url, what=backbone_label(name, self.purpose))
            net.load_state_dict(read_checkpoint(path), assign=True)
            return net

        build.__name__ = name
        return build
