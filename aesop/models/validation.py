"""Validation and testing shared by the AESOP models: one loop, per-image metrics, tables."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from os import path as osp
from pathlib import Path

import numpy as np
import torch
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import master_only
from tqdm import tqdm

from aesop.archs.sizes import input_multiple, pad_to_multiple
from aesop.errors import AesopError
from aesop.metrics import metric_device
from aesop.metrics.scoring import needs_reference, score, write_image_csv
from aesop.utils import markdown_table

STALE = ('gt', 'gt_usm', 'lq', 'output', 'bottleneck')  # per-batch tensors, dropped around each image


class ValidationMixin:
    """Validation for BasicSR's ``SRModel`` family, replacing its ``nondist_validation``.

    - :meth:`test` mirror-pads the LR input to what the generator needs (:mod:`aesop.archs.sizes`:
      SwinIR's ``window_size``, which basicsr 1.4.2's SRModel ignores) and crops the output back;
    - metric networks run on the model's device (:func:`aesop.metrics.metric_device`) and get
      the LR image too (``lq``, for LR-PSNR);
    - per image, each ``val.metrics`` entry is computed on every pair :meth:`validation_pairs`
      yields (SR vs HR here; the AE model adds its LR estimate, suffix ``_lr``); without a GT
      (LR-only test sets) only no-reference metrics (NIQE, pyiqa's) are computed;
    - a test run writes ``<dataset>.csv`` (``image,<metric>,…`` and a last ``mean`` row, the
      evaluator's format) and ``metrics.csv``/``metrics.md`` (rows ``(method, dataset)``,
      columns the metric means, as the paper's tables) to ``results/<name>/``; training logs
      the means and sends them to tensorboard (``metrics/<dataset>/<metric>``) as BasicSR does.
    """

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        """basicsr's, except that training skips validations before ``val.val_start_iter`` (the release's
        option; 0 by default)."""
        if self.is_train and current_iter < (self.opt['val'].get('val_start_iter') or 0):
            return
        super().validation(dataloader, current_iter, tb_logger, save_img)

    def test(self):
        window = input_multiple(self.opt['network_g'])  # SwinIR's window, RRDBNet ×2's unshuffle
        h, w = self.lq.shape[-2:]
        if not window or (h % window == 0 and w % window == 0):
            return super().test()
        lq = self.lq
        self.lq = pad_to_multiple(lq, window)
        try:
            super().test()
        finally:
            self.lq = lq
        scale = self.output.shape[-1] // (w + (-w) % window)  # the network's own (1 for an auto-encoder)
        self.output = self.output[..., : h * scale, : w * scale]

    def validation_pairs(self) -> Iterator[tuple[str, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """``(tag, image, reference, lq)`` to save and score after :meth:`test` (8-bit BGR)."""
        gt = tensor2img(self.gt) if hasattr(self, 'gt') else None
        yield '', tensor2img(self.output), gt, tensor2img(self.lq)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset_name = dataloader.dataset.opt['name']
        metrics = self.opt['val'].get('metrics') or {}
        if metrics:
            self._initialize_best_metric_results(dataset_name)
        rows: dict[str, dict[str, float]] = {}
        pbar = tqdm(dataloader, unit='image', desc=dataset_name, disable=not self.opt['val'].get('pbar'))
        with metric_device(self.device):
            for data in pbar:
                img_name = osp.splitext(osp.basename(data['lq_path'][0]))[0]
                for attr in STALE:  # an LR-only image must not meet the last training batch's GT
                    self.__dict__.pop(attr, None)
                self.feed_data(data)
                self.test()
                if not torch.isfinite(self.output).all():  # black images and exit 0 would hide broken weights
                    weights = self.opt['path'].get('pretrain_network_g') if not self.opt['is_train'] else 'this run'
                    raise AesopError(
                        f'the output for {img_name} ({dataset_name}) is not finite (NaN or inf): the weights of '
                        f'network_g ({weights}) are broken'
                    )
                row = rows.setdefault(img_name, {})
                for tag, img, ref, lq in self.validation_pairs():
                    if save_img:
                        imwrite(img, str(self.image_path(img_name, dataset_name, current_iter, tag)))
                    for name, metric_opt in metrics.items():
                        if ref is not None or not needs_reference(metric_opt['type']):  # NIQE etc. need none
                            row[name + tag] = score(img, ref, lq, self.metric_options(metric_opt, tag))
                for attr in STALE:
                    self.__dict__.pop(attr, None)
        if not rows or not metrics:
            return
        names = list(next(iter(rows.values())))
        self.metric_results = {name: float(np.mean([row[name] for row in rows.values()])) for name in names}
        record = self.best_metric_results[dataset_name]
        for name, value in self.metric_results.items():
            if name not in record:  # a tagged pair (e.g. psnr_lr) is better in the same direction
                better = record[max((m for m in record if name.startswith(m)), key=len)]['better']
                record[name] = {'better': better, 'val': float('-inf' if better == 'higher' else 'inf'), 'iter': -1}
            self._update_best_metric_result(dataset_name, name, value, current_iter)
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if not self.opt['is_train']:
            folder = Path(self.opt['path']['results_root'])
            write_image_table(folder / f'{dataset_name}.csv', rows, self.metric_results)
            self._metric_rows = {**getattr(self, '_metric_rows', {}), dataset_name: dict(self.metric_results)}
            write_metric_table(folder, self.opt['name'], self._metric_rows)

    def metric_options(self, metric_opt: dict, tag: str) -> dict:
        """Options of a metric for the pair ``tag`` (the AE model shrinks the border at LR size)."""
        return metric_opt

    def image_path(self, img_name: str, dataset_name: str, current_iter, tag: str = '') -> Path:
        """Where BasicSR saves a validation image (training: per image; test: per dataset)."""
        vis = Path(self.opt['path']['visualization'])
        if self.opt['is_train']:
            return vis / img_name / f'{img_name}{tag}_{current_iter}.png'
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return vis / dataset_name / f'{img_name}{tag}_{suffix}.png'


@master_only
def write_image_table(path: Path, rows: dict[str, dict[str, float]], means: dict[str, float]) -> None:
    """``image,<metric>,…`` with one row per image and a last ``mean`` row (the evaluator's CSV)."""
    write_image_csv(path, {**rows, 'mean': means})


@master_only
def write_metric_table(folder: Path, method: str, rows: dict[str, dict[str, float]]) -> None:
    """Write ``metrics.csv`` (``method,dataset,<metric>,…``) and ``metrics.md`` in ``folder``."""
    metrics = list(dict.fromkeys(m for values in rows.values() for m in values))
    with open(folder / 'metrics.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'dataset', *metrics])
        for dataset, values in rows.items():
            writer.writerow([method, dataset, *(f'{values[m]:.4f}' if m in values else '' for m in metrics)])
    table = markdown_table(
        ['method', 'dataset', *metrics],
        [
            [method, dataset, *(f'{values[m]:.4f}' if m in values else '' for m in metrics)]
            for dataset, values in rows.items()
        ],
    )
    (folder / 'metrics.md').write_text(table + '\n')
    get_root_logger().info(f'Metric table: {folder / "metrics.md"}\n{table}')
