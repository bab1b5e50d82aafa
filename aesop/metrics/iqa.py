"""No-reference quality metrics of the real-world evaluation (App. B): NIQE, MANIQA, MUSIQ, CLIP-IQA.

MANIQA, MUSIQ and CLIP-IQA come from ``pyiqa``, an optional extra (``pip install -e '.[iqa]'``) that nothing else
needs (``calculate_pyiqa``). NIQE (``aesop_niqe``) is pyiqa's when pyiqa can be imported, as the release computes
it (``pyiqa.create_metric('niqe')``), and basicsr's ``calculate_niqe`` otherwise; its column says which
(:func:`niqe_implementation`). pyiqa downloads its weights on first use into its cache (``<torch hub dir>/pyiqa``):
on a machine without internet copy that folder over, or give a local checkpoint as
``options: {pretrained_model_path: …}``. There is no random-weights mode: leave these metrics out of smoke tests.
"""

from __future__ import annotations

import functools
import json
from typing import Literal

import numpy as np
import torch
from basicsr.metrics.niqe import calculate_niqe
from basicsr.utils.registry import METRIC_REGISTRY
from torch import nn

from aesop.errors import AesopError
from aesop.metrics.metrics import _crop, _device, to_tensor

IQA_EXTRA = "pip install -e '.[iqa]'"
NIQE_IMPLEMENTATIONS = ('auto', 'pyiqa', 'basicsr')


def pyiqa_importable() -> bool:
    """Whether ``import pyiqa`` works here (not cached: a test may put a stand-in in ``sys.modules``)."""
    try:
        import pyiqa  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def pyiqa_metric(metric: str, device: torch.device, options_json: str) -> nn.Module:
    """``pyiqa.create_metric(metric, device=device, **options)``, once per run; one-line errors."""
    try:
        import pyiqa
    except ImportError as error:
        raise AesopError(f'metric {metric!r} needs the optional package pyiqa ({error}): {IQA_EXTRA}') from None
    if metric not in pyiqa.list_models():
        raise AesopError(f'pyiqa has no metric {metric!r}; e.g. maniqa, musiq, clipiqa (pyiqa.list_models())')
    try:
        return pyiqa.create_metric(metric, device=device, **json.loads(options_json))
    except OSError as error:  # download refused or unreadable file
        raise AesopError(
            f'pyiqa could not get the weights of {metric!r} ({error}): run it once with internet (pyiqa caches '
            f'them under {torch.hub.get_dir()}/pyiqa) or set options.pretrained_model_path to a local file'
        ) from None


def image_quadrants(img: np.ndarray) -> list[np.ndarray]:
    """The four quadrants of an (H, W, C) image at the integer halves ``h = H // 2``, ``w = W // 2``: top-left,
    top-right, bottom-left, bottom-right. An odd side's extra row or column goes to the bottom or right ones, so
    every pixel is in exactly one quadrant (a 5 × 7 image: 2 × 3, 2 × 4, 3 × 3, 3 × 4)."""
    h, w = img.shape[0] // 2, img.shape[1] // 2
    if not h or not w:
        raise AesopError(f'an image of {img.shape[0]} × {img.shape[1]} px has no four quadrants')
    return [img[:h, :w], img[:h, w:], img[h:, :w], img[h:, w:]]


@METRIC_REGISTRY.register()
def calculate_pyiqa(
    img: np.ndarray,
    img2: np.ndarray | None = None,
    crop_border: int = 0,
    metric: str = 'musiq',
    options: dict | None = None,
    quadrants: bool = False,
    **kwargs,
) -> float:
    """A pyiqa metric on one 8-bit BGR image (``metric``: ``maniqa``, ``musiq``, ``clipiqa``, …).

    No-reference metrics score ``img`` alone (App. B); a full-reference one also gets ``img2``
    (on a test set without GT it raises: list it only for paired sets).
    ``options`` go to ``pyiqa.create_metric`` (e.g. ``pretrained_model_path``); other keys
    (``better``) are basicsr's. With ``quadrants`` the image (after ``crop_border``) is split into its four
    quadrants (:func:`image_quadrants`), each is scored and the result is the mean of the four: App. B scores
    DRealSR's CLIP-IQA on quadrants "due to memory constraints"; that the four are averaged is this project's
    choice (the paper does not say how they were combined).
    """
    device = _device()
    model = pyiqa_metric(metric, device, json.dumps(options or {}, sort_keys=True))
    reference = getattr(model, 'metric_mode', 'NR') == 'FR'
    if reference and img2 is None:
        raise AesopError(f'pyiqa metric {metric!r} is full-reference: it needs the GT image')
    images = [_crop(x, crop_border) for x in ((img, img2) if reference else (img,))]
    parts = zip(*map(image_quadrants, images)) if quadrants else [images]  # each part: (img,) or (img, img2)
    with torch.no_grad():
        scores = [float(model(*(to_tensor(x, device) for x in part))) for part in parts]
    return float(np.mean(scores))


calculate_pyiqa.requires = ('pyiqa', 'iqa')  # checked at start-up: aesop.options.check_optional_packages


def niqe_implementation(implementation: str = 'auto', options: dict | None = None) -> str:
    """Which NIQE ``aesop_niqe`` runs: ``pyiqa`` (``pyiqa.create_metric('niqe')``, the release's) or ``basicsr``
    (``basicsr.metrics.calculate_niqe``); ``auto``: pyiqa's when pyiqa can be imported, else basicsr's.
    ``implementation: pyiqa`` without pyiqa, and ``options`` (pyiqa's) with ``implementation: basicsr``, raise."""
    if implementation not in NIQE_IMPLEMENTATIONS:
        raise AesopError(f'NIQE implementation {implementation!r}: choose from {", ".join(NIQE_IMPLEMENTATIONS)}')
    if implementation == 'pyiqa' and not pyiqa_importable():
        raise AesopError(f"NIQE implementation 'pyiqa' needs the optional package pyiqa: {IQA_EXTRA}")
    if implementation == 'basicsr' and options:
        raise AesopError("NIQE options go to pyiqa.create_metric: basicsr's calculate_niqe takes none")
    if implementation == 'auto':
        return 'pyiqa' if pyiqa_importable() else 'basicsr'
    return implementation


@METRIC_REGISTRY.register()
def aesop_niqe(
    img: np.ndarray,
    img2: np.ndarray | None = None,
    crop_border: int = 0,
    implementation: Literal['auto', 'pyiqa', 'basicsr'] = 'auto',
    options: dict | None = None,
    **kwargs,
) -> float:
    """NIQE (no reference, lower is better) of one 8-bit BGR image, by :func:`niqe_implementation`.

    ``pyiqa``: ``pyiqa.create_metric('niqe', **options)`` on the RGB image in [0, 1] (:func:`calculate_pyiqa`), as
    the release's ``calculate_niqe_pytorch`` scores; ``basicsr``: ``calculate_niqe(img, crop_border)`` (Y of YCbCr).
    Both are ports of the MATLAB NIQE and give different numbers; the tables label the column with the one used
    (``niqe (pyiqa)``, ``niqe (basicsr)``: :func:`aesop.metrics.scoring.metric_label`).
    """
    if niqe_implementation(implementation, options) == 'pyiqa':
        return calculate_pyiqa(img, crop_border=crop_border, metric='niqe', options=options)
    return float(calculate_niqe(img, crop_border))


aesop_niqe.better = 'lower'  # aesop.metrics.scoring.metric_better
