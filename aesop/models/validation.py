"""Validation helpers shared by the AESOP models: window padding, the metric table, image paths."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only


class ValidationMixin:
    """Validation and testing additions for BasicSR's ``SRModel`` family.

    - :meth:`test` pads the LR input to the generator's ``window_size`` (SwinIR, which in
      basicsr 1.4.2 does not pad itself) and crops the output back;
    - the metrics of a test run go to ``metrics.csv`` and ``metrics.md`` in the results folder
      (rows ``(method, dataset)``, columns the metrics, as the paper's tables); during training
      BasicSR logs them and tensorboard gets them under ``metrics/<dataset>/<metric>``.
    """

    def test(self):
        window = self.opt['network_g'].get('window_size')  # as basicsr's SwinIRModel
        h, w = self.lq.shape[-2:]
        if not window or (h % window == 0 and w % window == 0):
            return super().test()
        lq = self.lq
        self.lq = pad_to_multiple(lq, window)
        try:
            super().test()
        finally:
            self.lq = lq
        scale = self.opt['scale']
        self.output = self.output[..., : h * scale, : w * scale]

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        if not self.opt['is_train']:
            self._metric_rows = getattr(self, '_metric_rows', {})
            self._metric_rows[dataset_name] = dict(self.metric_results)
            write_metric_table(Path(self.opt['path']['results_root']), self.opt['name'], self._metric_rows)

    def image_path(self, img_name: str, dataset_name: str, current_iter, tag: str = '') -> Path:
        """Where BasicSR saves a validation image (training: per image; test: per dataset)."""
        vis = Path(self.opt['path']['visualization'])
        if self.opt['is_train']:
            return vis / img_name / f'{img_name}{tag}_{current_iter}.png'
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return vis / dataset_name / f'{img_name}{tag}_{suffix}.png'


def pad_to_multiple(img: torch.Tensor, multiple: int) -> torch.Tensor:
    """Mirror-pad (N, C, H, W) at the bottom/right to multiples of ``multiple``, as SwinIR's tests do."""
    h, w = img.shape[-2:]
    img = torch.cat([img, torch.flip(img, [2])], 2)[..., : h + (-h) % multiple, :]
    return torch.cat([img, torch.flip(img, [3])], 3)[..., : w + (-w) % multiple]


@master_only
def write_metric_table(folder: Path, method: str, rows: dict[str, dict[str, float]]) -> None:
    """Write ``metrics.csv`` (``method,dataset,<metric>,…``) and ``metrics.md`` in ``folder``."""
    metrics = list(dict.fromkeys(m for values in rows.values() for m in values))
    with open(folder / 'metrics.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'dataset', *metrics])
        for dataset, values in rows.items():
            writer.writerow([method, dataset, *(f'{values[m]:.4f}' if m in values else '' for m in metrics)])
    lines = [
        '| method | dataset | ' + ' | '.join(metrics) + ' |',
        '|---|---|' + '---|' * len(metrics),
        *(
            f'| {method} | {dataset} | ' + ' | '.join(f'{values[m]:.4f}' if m in values else '' for m in metrics) + ' |'
            for dataset, values in rows.items()
        ),
    ]
    (folder / 'metrics.md').write_text('\n'.join(lines) + '\n')
    get_root_logger().info(f'Metric table: {folder / "metrics.md"}\n' + '\n'.join(lines))
