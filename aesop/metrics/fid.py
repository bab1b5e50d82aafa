"""FID and patch-FID (Sec. 5): set-level metrics of the evaluator, on basicsr's FID Inception.

The network is basicsr's ``InceptionV3`` with the TensorFlow FID weights
(``pt_inception-2015-12-05-6726825d.pth``), read from the usual pretrained-model folders
(:func:`aesop.utils.find_pretrained_file`), never downloaded; random (seeded) weights with
``AESOP_RANDOM_BACKBONES=1``. Features are the 2048-d pool features of RGB images in [0, 1]
(the network resizes its input to 299 × 299); the distance is the Fréchet distance between
Gaussians fitted to the two feature sets (:func:`frechet_distance`, equal to basicsr's
``calculate_fid``). Patch-FID (App. C, "Patch FID scores") cuts every image into non-overlapping
299 × 299 patches, as the paper: "For patch-FID evaluation, 299×299 non-overlapping patches are
extracted from the images. If an image is smaller than 299 pixels in any dimension, we use
zero-padding to meet the required size." (:func:`patch_corners`).

Both are registered metrics, ``calculate_fid`` and ``calculate_patch_fid`` (``val.metrics`` entries; the
evaluator's ``--metrics fid,patch_fid``), and set-level: a value compares the whole SR set with the whole GT set.
Whoever scores a set keeps the features of each image (:func:`image_features`: 2048 floats per image or patch,
never the images) and computes the distance once at the end (:func:`set_distance`): the evaluator over its folders,
the models' validation (:class:`aesop.models.validation.Validator`) over the validation set, gathered from every
DDP rank. Called directly, the registered functions take the two sets as lists of images.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Literal
from unittest import mock

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY
from pydantic import Field
from torch import nn

from aesop.errors import AesopError, OptionValueError
from aesop.metrics.metrics import _crop, _device, to_tensor
from aesop.utils import find_pretrained_file, locate_pretrained_file, pretrained_file_not_found, random_backbones
from aesop.weights import read_checkpoint

FID_WEIGHTS = 'pt_inception-2015-12-05-6726825d.pth'
PATCH = 299  # Inception's input size
REMAINDERS = ('drop', 'pad')  # what image_patches does with a partial patch at the bottom/right
SET_METRICS = ('calculate_fid', 'calculate_patch_fid')  # the registered set-level metrics (one value per set)
WHAT = 'FID Inception'  # how a missing-weights message names the network


@functools.cache
def fid_inception(device: torch.device, random: bool) -> nn.Module:
    """basicsr's FID ``InceptionV3`` (pool features), weights from a local file or random."""
    from basicsr.archs import inception
    from torchvision.models import Inception3

    def load_url(url: str, **kwargs) -> dict:
        if random:
            return {}
        return read_checkpoint(find_pretrained_file(FID_WEIGHTS, url=url, what=WHAT))

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(inception, 'load_url', load_url))
        stack.enter_context(mock.patch.object(inception, 'LOCAL_FID_WEIGHTS', ''))  # basicsr's is cwd-relative
        if random:
            stack.enter_context(mock.patch.object(Inception3, 'load_state_dict', lambda self, *a, **k: None))
        stack.enter_context(torch.random.fork_rng(devices=[]))
        torch.manual_seed(0)  # a random network is the same in every run
        net = inception.InceptionV3([3], resize_input=True, normalize_input=True)
        if random:  # PyTorch's default init makes features vanish (~1e-8) through 94 convolutions
            for module in net.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, nonlinearity='relu')
    return net.eval().to(device)


def patch_corners(height: int, width: int, size: int = PATCH, *, remainder: str = 'drop') -> list[tuple[int, int]]:
    """(top, left) of the non-overlapping ``size`` × ``size`` patches of an image, row by row.

    ``remainder='drop'`` (default, the paper's rule, App. C): along a dimension of at least ``size`` pixels
    the ``dim // size`` whole patches, the last ``dim % size`` pixels dropped; a dimension smaller than
    ``size`` gives one patch, zero-padded. ``remainder='pad'`` (this project's earlier rule, kept as an
    option): ``ceil(dim / size)`` patches, the partial last one zero-padded, so every pixel is in a patch.
    """
    if remainder not in REMAINDERS:
        raise OptionValueError(f'patch-FID: remainder must be one of {REMAINDERS}, got {remainder!r}')

    def starts(length: int) -> range:
        count = -(-length // size) if remainder == 'pad' else max(length // size, 1)
        return range(0, count * size, size)

    return [(top, left) for top in starts(height) for left in starts(width)]


def image_patches(img: np.ndarray, size: int = PATCH, *, remainder: str = 'drop') -> Iterator[np.ndarray]:
    """The ``size`` × ``size`` patches of an (H, W, C) image at :func:`patch_corners`, zero-padded at the
    bottom/right where the image ends (``remainder``: ``'drop'``, the paper's rule, or ``'pad'``)."""
    h, w = img.shape[:2]
    for top, left in patch_corners(h, w, size, remainder=remainder):
        patch = img[top : top + size, left : left + size]
        if patch.shape[:2] != (size, size):
            padded = np.zeros((size, size, *img.shape[2:]), img.dtype)
            padded[: patch.shape[0], : patch.shape[1]] = patch
            patch = padded
        yield patch


def missing_fid_weights(options: Sequence[str]) -> str | None:
    """The start-up line naming the FID Inception's weights file when it is in none of the pretrained-model folders
    (``options``: the option keys of the entries that need it), or ``None`` when it is there or the weights are
    random: the message :func:`fid_inception` would raise at the first validation."""
    if random_backbones() or locate_pretrained_file(FID_WEIGHTS) is not None:
        return None
    from basicsr.archs.inception import FID_WEIGHTS_URL

    return pretrained_file_not_found(FID_WEIGHTS, url=FID_WEIGHTS_URL, what=WHAT, option=', '.join(options))


@torch.no_grad()
def inception_features(images: Iterable[np.ndarray]) -> np.ndarray:
    """(N, 2048) float32 pool features (the network's precision) of 8-bit BGR images (any sizes), one image at a
    time, on the metric device (the model's during validation), the network in eval mode."""
    device = _device()
    net = fid_inception(device, random_backbones())
    features = [net(to_tensor(img, device))[0].flatten().float().cpu().numpy() for img in images]
    return np.stack(features)


def image_features(img: np.ndarray, metric_opt: Mapping) -> np.ndarray:
    """The Inception features one 8-bit BGR image adds to the set of a set-level entry ``metric_opt``
    (``{'type': 'calculate_fid' | 'calculate_patch_fid', <its options>}``): (1, 2048) for FID, the image itself
    (resized to 299 × 299 by the network); (k, 2048) for patch-FID, its k patches (:func:`image_patches` with the
    entry's ``remainder``); after ``crop_border``."""
    img = _crop(img, metric_opt.get('crop_border', 0))
    if metric_opt['type'] == 'calculate_patch_fid':
        return inception_features(image_patches(img, remainder=metric_opt.get('remainder', 'drop')))
    return inception_features([img])


def set_distance(features: Sequence[np.ndarray], reference: Sequence[np.ndarray], name: str) -> float:
    """The Fréchet distance between two sets, each given as the per-image arrays of :func:`image_features` in one
    order (the order only changes the last bits); too few samples is an :class:`AesopError` naming ``name``."""
    try:
        return frechet_distance(np.concatenate(features), np.concatenate(reference))
    except ValueError as error:
        raise AesopError(f'{name}: {error}') from None


def _fid_of_sets(images: Sequence[np.ndarray], references: Sequence[np.ndarray], metric_opt: Mapping) -> float:
    kind = metric_opt['type']
    if isinstance(images, np.ndarray) or isinstance(references, np.ndarray):
        raise AesopError(
            f'{kind} is set-level: it takes the lists of SR and GT images, not one pair (in val.metrics the '
            f"validation of this package's models, Aesop…Model, accumulates it over the validation set)"
        )
    features = [image_features(img, metric_opt) for img in images]
    return set_distance(features, [image_features(img, metric_opt) for img in references], kind)


CropBorder = Annotated[int, Field(ge=0)]


@METRIC_REGISTRY.register()
def calculate_fid(
    img: Sequence[np.ndarray], img2: Sequence[np.ndarray], crop_border: CropBorder = 0, **kwargs
) -> float:
    """FID (Sec. 5) between the set of SR images ``img`` and the set of GT images ``img2`` (lists of 8-bit BGR
    images), whole images, after ``crop_border``; lower is better (``better: lower`` is its default). Set-level: in
    ``val.metrics`` it fills the mean, never a per-image row. ``**kwargs``: basicsr's ``better``."""
    return _fid_of_sets(img, img2, {'type': 'calculate_fid', 'crop_border': crop_border})


@METRIC_REGISTRY.register()
def calculate_patch_fid(
    img: Sequence[np.ndarray],
    img2: Sequence[np.ndarray],
    crop_border: CropBorder = 0,
    remainder: Literal['drop', 'pad'] = 'drop',
    **kwargs,
) -> float:
    """Patch-FID (App. C): :func:`calculate_fid` on the non-overlapping 299 × 299 patches of every image
    (:func:`patch_corners`; ``remainder``: ``drop``, the paper's rule, or ``pad``, the evaluator's
    ``--patch-remainder pad``)."""
    options = {'type': 'calculate_patch_fid', 'crop_border': crop_border, 'remainder': remainder}
    return _fid_of_sets(img, img2, options)


# the direction when an entry has no better: (:func:`aesop.metrics.scoring.metric_better`)
calculate_fid.better = calculate_patch_fid.better = 'lower'


def frechet_distance(features: np.ndarray, reference: np.ndarray) -> float:
    """FID between two (N, D) feature sets: ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½).

    The value of basicsr's ``calculate_fid``, without scipy's ``sqrtm``: Tr((Σ₁Σ₂)^½) is the sum of
    the square roots of the eigenvalues of Σ₁Σ₂. With Σ₁ = AᵀA/(n₁−1) and Σ₂ = BᵀB/(n₂−1) (A, B the
    centred features), those are the squared singular values of AB ᵀ/√((n₁−1)(n₂−1)), an n₁ × n₂
    matrix: when the sets are smaller than D (2048), no D × D matrix is formed at all. Larger sets
    use the eigenvalues of the symmetric Σ₁^½ Σ₂ Σ₁^½ (two ``eigh``).
    """
    if len(features) < 2 or len(reference) < 2:
        raise ValueError(f'FID needs at least 2 samples per set, got {len(features)} and {len(reference)}')
    features, reference = features.astype(np.float64), reference.astype(np.float64)
    mu1, mu2 = features.mean(axis=0), reference.mean(axis=0)
    a, b = features - mu1, reference - mu2
    n1, n2 = len(a) - 1, len(b) - 1
    trace1, trace2 = (a * a).sum() / n1, (b * b).sum() / n2
    if max(len(a), len(b)) <= a.shape[1]:
        trace_sqrt = np.linalg.svd(a @ b.T / np.sqrt(n1 * n2), compute_uv=False).sum()
    else:
        sigma1, sigma2 = a.T @ a / n1, b.T @ b / n2
        w, v = np.linalg.eigh(sigma1)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ sigma2 @ root1), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + trace1 + trace2 - 2 * trace_sqrt)
