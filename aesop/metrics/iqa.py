"""No-reference quality metrics of the real-world evaluation (App. B): MANIQA, MUSIQ, CLIP-IQA.

They come from ``pyiqa``, an optional extra (``pip install -e '.[iqa]'``) that nothing else
needs; NIQE is basicsr's ``calculate_niqe``. pyiqa downloads its weights on first use into its
cache (``<torch hub dir>/pyiqa``): on a machine without internet copy that folder over, or give
a local checkpoint as ``options: {pretrained_model_path: …}``. There is no random-weights mode:
leave these metrics out of smoke tests.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import torch
from basicsr.utils.registry import METRIC_REGISTRY
from torch import nn

from aesop.errors import AesopError
from aesop.metrics.metrics import _crop, _device, to_tensor

IQA_EXTRA = "pip install -e '.[iqa]'"


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


@METRIC_REGISTRY.register()
def calculate_pyiqa(
    img: np.ndarray,
    img2: np.ndarray | None = None,
    crop_border: int = 0,
    metric: str = 'musiq',
    options: dict | None = None,
    **kwargs,
) -> float:
    """A pyiqa metric on one 8-bit BGR image (``metric``: ``maniqa``, ``musiq``, ``clipiqa``, …).

    No-reference metrics score ``img`` alone (App. B); a full-reference one also gets ``img2``
    (on a test set without GT it raises: list it only for paired sets).
    ``options`` go to ``pyiqa.create_metric`` (e.g. ``pretrained_model_path``); other keys
    (``better``) are basicsr's.
    """
    device = _device()
    model = pyiqa_metric(metric, device, json.dumps(options or {}, sort_keys=True))
    x = to_tensor(_crop(img, crop_border), device)
    with torch.no_grad():
        if getattr(model, 'metric_mode', 'NR') == 'FR':
            if img2 is None:
                raise AesopError(f'pyiqa metric {metric!r} is full-reference: it needs the GT image')
            return float(model(x, to_tensor(_crop(img2, crop_border), device)))
        return float(model(x))


calculate_pyiqa.requires = ('pyiqa', 'iqa')  # checked at start-up: aesop.options.check_optional_packages
