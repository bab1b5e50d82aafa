"""Scoring images with registered metrics, and the per-image CSV that validation and the evaluator write."""

from __future__ import annotations

import csv
import functools
import inspect
from pathlib import Path

import numpy as np
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY

__all__ = ['cells', 'needs_reference', 'score', 'takes_lq', 'write_image_csv']


def score(img: np.ndarray, ref: np.ndarray, lq: np.ndarray | None, metric_opt: dict) -> float:
    """basicsr's ``calculate_metric``, also passing the LR image to metrics that take it."""
    data = {'img': img, 'img2': ref, **({'lq': lq} if lq is not None and takes_lq(metric_opt['type']) else {})}
    return float(calculate_metric(data, metric_opt))


@functools.cache
def needs_reference(metric_type: str) -> bool:
    """Whether a registered metric needs the GT image (an ``img2`` parameter without default)."""
    param = inspect.signature(METRIC_REGISTRY.get(metric_type)).parameters.get('img2')
    return param is not None and param.default is inspect.Parameter.empty


@functools.cache
def takes_lq(metric_type: str) -> bool:
    """Whether a registered metric accepts the LR image (an ``lq`` or ``**kwargs`` parameter)."""
    params = inspect.signature(METRIC_REGISTRY.get(metric_type)).parameters
    return 'lq' in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def cells(row: dict[str, float], names: list[str], digits: int) -> list[str]:
    """The row's values in ``names`` order; blank where it has none (set-level metrics per image)."""
    return [f'{row[n]:.{digits}f}' if n in row else '' for n in names]


def write_image_csv(path: str | Path, rows: dict[str, dict[str, float]]) -> None:
    """``image,<metric>,…``: one row per image, the last one ``mean`` (its keys are the columns), 6 digits."""
    names = list(rows['mean'])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['image', *names])
        writer.writerows([image, *cells(row, names, 6)] for image, row in rows.items())
