"""Scoring images with registered metrics, the per-image CSV that validation and the evaluator write, and the
column labels of every metric table: a metric computed on a random backbone says so where its numbers are shown.

With ``AESOP_RANDOM_BACKBONES=1`` (the demo, the tests) LPIPS, DISTS, FID and patch-FID run on randomly
initialised ImageNet networks, so their values mean nothing. Their columns are then labelled
``<name> (random <backbone>)``, e.g. ``lpips (random AlexNet)``, in ``metrics.md``/``metrics.csv``, the
per-image CSVs, the evaluator's table and CSV, and the axis labels of the PD-curve plot
(:func:`metric_label`); :func:`metric_name` gives a label's metric name back (CSV readers).

NIQE (``aesop_niqe``) has two implementations that give different numbers: its column says which computed it,
``niqe (pyiqa)`` (the release's) or ``niqe (basicsr)`` (:func:`aesop.metrics.iqa.niqe_implementation`).
A ``val.metrics`` entry with ``datasets: [<name>, …]`` is computed on those datasets only (:func:`scores_on`).
FID and patch-FID are set-level (:func:`is_set_level`): their cells in the per-image rows are blank, the mean row
has their value. A metric's direction, ``better``, is the entry's or its function's (:func:`metric_better`).
"""

from __future__ import annotations

import csv
import functools
import inspect
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from basicsr.metrics import calculate_metric
from basicsr.utils.registry import METRIC_REGISTRY

from aesop.metrics.fid import SET_METRICS
from aesop.metrics.iqa import niqe_implementation
from aesop.metrics.metrics import metric_backbone
from aesop.utils import random_backbones
from aesop.weights import write_result

__all__ = [
    'cells',
    'csv_bytes',
    'is_set_level',
    'metric_better',
    'metric_label',
    'metric_labels',
    'metric_name',
    'needs_reference',
    'random_backbone',
    'score',
    'scores_on',
    'takes_lq',
    'write_image_csv',
]

RANDOM_MARK = ' (random {})'
RANDOM_LABEL = re.compile(r' \(random [^()]*\)$')
IMPLEMENTATION_MARK = ' ({})'  # which NIQE: niqe (pyiqa), niqe (basicsr)
LABEL_MARK = re.compile(r' \((random [^()]*|pyiqa|basicsr)\)$')  # any mark metric_label adds
SCOPE_KEY = 'datasets'  # a val.metrics entry's: the names of the datasets it is computed on (default: all)


def score(img: np.ndarray, ref: np.ndarray, lq: np.ndarray | None, metric_opt: dict) -> float:
    """basicsr's ``calculate_metric``, also passing the LR image to metrics that take it."""
    data = {'img': img, 'img2': ref, **({'lq': lq} if lq is not None and takes_lq(metric_opt['type']) else {})}
    return float(calculate_metric(data, {k: v for k, v in metric_opt.items() if k != SCOPE_KEY}))


def scores_on(metric_opt: Mapping, dataset_name: str) -> bool:
    """Whether a ``val.metrics`` entry is computed on the dataset named ``dataset_name``: on every dataset, or with
    ``datasets: [<name>, …]`` on those only (test_realworld.yml: CLIP-IQA on quadrants for DRealSR alone)."""
    names = metric_opt.get(SCOPE_KEY)
    return names is None or dataset_name in names


# The least side (px) a metric needs of what its crop_border leaves: SSIM's 11 × 11 Gaussian window, NIQE's 96 × 96
# blocks (basicsr's and pyiqa's); any other metric one pixel. Below it: NaN or an error, after the images were made.
LEAST_SIDES = {'calculate_ssim': 11, 'calculate_ssim_pt': 11, 'calculate_niqe': 96, 'aesop_niqe': 96}


def least_side(metric_type: str) -> int:
    """The least side a ``val.metrics`` entry of ``metric_type`` needs of its cropped images (:data:`LEAST_SIDES`)."""
    return LEAST_SIDES.get(metric_type, 1)


def crop_shortfall(size: tuple[int, int], border: int, metric_type: str) -> tuple[str, int, int] | None:
    """``None`` when cropping ``border`` px from each side of a ``size`` (width, height) image leaves the least side
    ``metric_type`` needs (:func:`least_side`); else what it leaves (``'H×W px'``), that need, and the largest border
    that would do (negative: none). The one rule of the start-up check of ``val.metrics.*.crop_border`` and of
    ``aesop-evaluate --crop-border``."""
    (width, height), need = size, least_side(metric_type)
    if min(width, height) - 2 * border >= need:
        return None
    left = f'{max(height - 2 * border, 0)}×{max(width - 2 * border, 0)} px'
    return left, need, (min(width, height) - need) // 2


def is_set_level(metric_type: str) -> bool:
    """Whether a metric compares whole sets (FID, patch-FID: :data:`aesop.metrics.fid.SET_METRICS`): the features
    of each image are kept and the value is computed once per set, not per image."""
    return metric_type in SET_METRICS


# Lower is better for these, whose functions are not this package's: basicsr's NIQE, and pyiqa's by metric name
# (pyiqa's own `lower_better` list, for the metrics the papers and the release use)
LOWER_IS_BETTER = {'calculate_niqe'}
PYIQA_LOWER_IS_BETTER = {'niqe', 'ilniqe', 'brisque', 'pi', 'lpips', 'dists'}


def metric_better(metric_opt: Mapping) -> str:
    """``'higher'`` or ``'lower'``: the direction of a ``val.metrics`` entry, its ``better`` (basicsr's key), else
    its function's (``calculate_fid.better``, ``calculate_lpips.better``, ``aesop_niqe.better``: lower; basicsr's
    ``calculate_niqe`` and pyiqa's NIQE, BRISQUE, PI: lower), else ``higher`` (basicsr's default)."""
    if metric_opt.get('better'):
        return metric_opt['better']
    kind = metric_opt.get('type')
    if kind in LOWER_IS_BETTER or (kind == 'calculate_pyiqa' and metric_opt.get('metric') in PYIQA_LOWER_IS_BETTER):
        return 'lower'
    return getattr(METRIC_REGISTRY.get(kind), 'better', 'higher') if kind in METRIC_REGISTRY else 'higher'


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


def random_backbone(metric_opt: Mapping) -> str | None:
    """The name of the backbone a metric's values come from (:data:`aesop.metrics.metrics.METRIC_BACKBONES`) when
    it is random (``AESOP_RANDOM_BACKBONES=1``), else ``None``."""
    backbone = metric_backbone(metric_opt) if random_backbones() else None
    return backbone.name if backbone else None


def metric_label(name: str, metric_opt: Mapping) -> str:
    """The column label of metric ``name``: ``lpips (random AlexNet)`` on a random backbone, ``niqe (pyiqa)`` /
    ``niqe (basicsr)`` for the NIQE that computed it (``aesop_niqe``), else ``name``."""
    backbone = random_backbone(metric_opt)
    if backbone:
        return name + RANDOM_MARK.format(backbone)
    if metric_opt.get('type') == 'aesop_niqe':
        implementation = niqe_implementation(metric_opt.get('implementation', 'auto'), metric_opt.get('options'))
        return name + IMPLEMENTATION_MARK.format(implementation)
    return name


def metric_labels(metrics: Mapping[str, Mapping], names: Iterable[str]) -> dict[str, str]:
    """:func:`metric_label` of each of ``names`` whose options are in ``metrics`` (``val.metrics``); a tagged
    name (the AE model's ``lpips_lr``) is labelled as the longest metric name it starts with."""
    labels = {}
    for name in names:
        base = name if name in metrics else max((m for m in metrics if name.startswith(m)), key=len, default=None)
        labels[name] = metric_label(name, metrics[base]) if base is not None else name
    return labels


def metric_name(label: str) -> str:
    """The metric name of a column label: ``lpips (random AlexNet)`` → ``lpips``, ``niqe (pyiqa)`` → ``niqe``."""
    return LABEL_MARK.sub('', label)


def csv_bytes(rows: Iterable[Iterable[object]]) -> bytes:
    """``rows`` as the bytes of a CSV file (``csv.writer``'s dialect: ``\\r\\n`` line ends), for an atomic write."""
    text = io.StringIO(newline='')
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


def write_image_csv(
    path: str | Path, rows: dict[str, dict[str, float]], labels: Mapping[str, str] | None = None
) -> None:
    """``image,<metric>,…``: one row per image, the last one ``mean`` (its keys are the columns), 6 digits;
    a column's header is its ``labels`` entry if it has one (:func:`metric_labels`). Written atomically
    (:func:`aesop.weights.write_result`): a failed write is one line naming the file, and the previous file stays."""
    names = list(rows['mean'])
    labels = labels or {}
    header = ['image', *(labels.get(name, name) for name in names)]
    write_result(path, csv_bytes([header, *([image, *cells(row, names, 6)] for image, row in rows.items())]))
