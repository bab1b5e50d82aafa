"""Validation helpers shared by the AESOP models: the metric table and image paths."""

from __future__ import annotations

import csv
from pathlib import Path

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only


class MetricTableMixin:
    """Writes the validation metrics of a test run as ``metrics.csv`` and ``metrics.md``.

    Rows are ``(method, dataset)``, columns the metrics, as the paper's tables. Files go to
    the results folder (``results/<name>/``); during training BasicSR logs them and tensorboard
    gets them under ``metrics/<dataset>/<metric>``.
    """

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
