"""The validation of the AESOP models (:class:`Validator`): one loop, per-image metrics, tables, save-best."""

from __future__ import annotations

import json
from os import path as osp
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from aesop.errors import AesopError
from aesop.metrics import metric_device
from aesop.metrics.fid import image_features, set_distance
from aesop.metrics.scoring import (
    csv_bytes,
    is_set_level,
    metric_better,
    metric_labels,
    needs_reference,
    score,
    scores_on,
    write_image_csv,
)
from aesop.utils import markdown_table
from aesop.weights import write_image, write_result

BEST = 'net_g_best'  # val.save_best's checkpoint (models/net_g_best.pth or .safetensors) and its record (.json)

Rows = dict[str, dict[str, float]]  # {image: {metric: value}}, in dataset order
Features = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # {image: {set-level metric: (SR's, GT's)}}


def save_best_rule(opt: dict) -> dict | None:
    """``val.save_best`` with its defaults resolved (``{'metric', 'better', 'dataset'}``), or ``None``."""
    rule = (opt.get('val') or {}).get('save_best')
    if not rule:
        return None
    metric_opt = opt['val']['metrics'][rule['metric']]
    first = next((d.get('name') for phase, d in opt['datasets'].items() if phase.split('_')[0] == 'val'), None)
    return {
        'metric': rule['metric'],
        'better': rule.get('better') or metric_better(metric_opt),
        'dataset': rule.get('dataset') or first,
    }


def no_record(better: str) -> dict:
    """basicsr's best-value record of a metric before its first validation (``better``: ``higher`` or ``lower``)."""
    return {'better': better, 'val': float('-inf' if better == 'higher' else 'inf'), 'iter': -1}


def is_better(value: float, than: dict | None) -> bool:
    """Whether ``value`` beats the record ``than`` (``{'value', 'better', …}``; ``None``: anything does)."""
    if than is None:
        return True
    return value < than['value'] if than['better'] == 'lower' else value > than['value']


def read_best_record(models_dir: str | Path) -> dict | None:
    """The record beside ``net_g_best.pth`` (what it scored, at which iteration), or ``None``."""
    path = Path(models_dir) / f'{BEST}.json'
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Validator:
    """The validation of a model of this package (``model.validator``), replacing basicsr's ``nondist_validation``.

    Under DDP every rank scores every world-size-th image (basicsr validated on rank 0 alone); metric networks run
    on the model's device and get the LR image too; each ``val.metrics`` entry is computed on every pair of the
    model's ``validation_pairs`` (without a GT only no-reference metrics; an entry with ``datasets: [<names>]``
    only on those datasets). A set-level entry (FID, patch-FID) keeps each pair's Inception features instead and
    its value is computed once, from every rank's features, at the end. A test run writes ``<dataset>.csv`` and
    ``metrics.csv``/``metrics.md`` to ``results/<name>/``; training logs basicsr's best value and iteration too, and
    ``val.save_best`` (:meth:`keep_best`) keeps the best validation's generator.
    """

    def __init__(self, model, opt: dict):
        """``opt``: the model's options (the validator is made before basicsr's ``__init__`` sets ``model.opt``)."""
        self.model = model
        self.opt = opt
        self.metric_results: dict[str, float] = {}  # the last validation's means
        self.best_checkpoint: dict | None = None  # val.save_best's record of net_g_best.pth
        self.metric_rows: dict[str, dict[str, float]] = {}  # a test run's means per dataset (metrics.md)

    def validate(self, dataloader, current_iter, tb_logger, save_img=False) -> None:
        """basicsr's ``validation``, skipped in training before ``val.val_start_iter`` (the release's option)."""
        if self.opt['is_train'] and current_iter < self.opt['val']['val_start_iter']:
            return
        shard = (self.opt['rank'], self.opt['world_size']) if self.opt['dist'] else (0, 1)
        self.score(dataloader, current_iter, tb_logger, save_img, shard)

    def score(self, dataloader, current_iter, tb_logger, save_img, shard: tuple[int, int] = (0, 1)) -> None:
        """Score every image (``shard=(rank, world_size)``: every world-size-th from ``rank``, the rows and set-level
        features of all ranks gathered in dataset order), then log and write the means and set-level values."""
        dataset_name = dataloader.dataset.opt['name']
        metrics = self.opt['val'].get('metrics') or {}
        rank, world = shard
        if world > 1:
            shard = Subset(dataloader.dataset, range(rank, len(dataloader.dataset), world))
            dataloader = DataLoader(shard, batch_size=1, num_workers=dataloader.num_workers)
        try:
            rows, features = self._score_images(dataloader, dataset_name, metrics, current_iter, save_img)
            failure = None
        except AesopError as err:
            rows, features, failure = {}, {}, str(err)
        if world > 1:
            rows, features, failure = gather_shards(rows, features, failure, world)
        if failure:
            raise AesopError(failure)
        if not rows or not metrics:
            return
        names = list(next(iter(rows.values())))
        self.metric_results = {name: float(np.mean([row[name] for row in rows.values()])) for name in names}
        self.metric_results.update(set_values(features, dataset_name))  # after the per-image means, as the evaluator
        if self.opt['is_train']:  # basicsr's best value and iteration of each metric, the tagged pairs' too
            best = self.best_records(dataset_name)
            for name, value in self.metric_results.items():
                if name not in best:  # e.g. psnr_lr: better in its metric's direction
                    better = best[max((m for m in best if name.startswith(m)), key=len)]['better']
                    best[name] = no_record(better)
                self.model._update_best_metric_result(dataset_name, name, value, current_iter)
            self._log(current_iter, dataset_name, tb_logger, best)
            self.keep_best(dataset_name, current_iter)
        else:  # a test run has no best iteration: no "Best: … @ <name> iter"
            self._log(current_iter, dataset_name, tb_logger, None)
            self.metric_rows[dataset_name] = dict(self.metric_results)
            write_tables(
                Path(self.opt['path']['results_root']), self.opt['name'], dataset_name, rows, self.metric_rows, metrics
            )

    def best_records(self, dataset_name: str) -> dict[str, dict]:
        """basicsr's record of the best value and iteration of each metric on ``dataset_name``
        (``model.best_metric_results``, made as basicsr's ``_initialize_best_metric_results`` makes it), each in its
        metric's direction (:func:`~aesop.metrics.scoring.metric_better`: FID's is lower without ``better:``)."""
        if not hasattr(self.model, 'best_metric_results'):
            self.model.best_metric_results = {}
        if dataset_name not in self.model.best_metric_results:
            directions = {name: metric_better(entry) for name, entry in (self.opt['val'].get('metrics') or {}).items()}
            self.model.best_metric_results[dataset_name] = {name: no_record(b) for name, b in directions.items()}
        return self.model.best_metric_results[dataset_name]

    def _log(self, current_iter, dataset_name: str, tb_logger, best: dict | None) -> None:
        """basicsr's validation log lines and tensorboard scalars, each metric under its label: a metric computed
        on a random backbone says so (``# lpips (random AlexNet): 0.0103``, :func:`metric_labels`)."""
        labels = metric_labels(self.opt['val'].get('metrics') or {}, self.metric_results)
        lines = [f'Validation {dataset_name}']
        for metric, value in self.metric_results.items():
            record = f'\tBest: {best[metric]["val"]:.4f} @ {best[metric]["iter"]} iter' if best else ''
            lines.append(f'\t # {labels[metric]}: {value:.4f}{record}')
        get_root_logger().info('\n'.join(lines) + '\n')
        if tb_logger:
            for metric, value in self.metric_results.items():
                tb_logger.add_scalar(f'metrics/{dataset_name}/{labels[metric]}', value, current_iter)

    def keep_best(self, dataset_name: str, current_iter: int) -> None:
        """``val.save_best``: write ``models/net_g_best.pth`` (G, and its EMA) and its record when this
        validation beats :attr:`best_checkpoint`, the best so far (paper 003, Sec. 5: early stopping)."""
        rule = save_best_rule(self.opt)
        if rule is None or dataset_name != rule['dataset']:
            return
        value = self.metric_results[rule['metric']]
        if not is_better(value, self.best_checkpoint):
            return
        self.model.save_generator('best')
        self.best_checkpoint = {**rule, 'value': value, 'iter': current_iter}
        try:
            write_best_record(Path(self.opt['path']['models']), self.best_checkpoint)
        except AesopError as err:  # the weights are written: say that the record beside them is the older one
            raise AesopError(
                f'{err}; {BEST} now holds iteration {current_iter} ({rule["metric"]} {value:.4f}) but its record '
                'still names the previous best'
            ) from err
        get_root_logger().info(
            f'Best {rule["metric"]} on {dataset_name}: {value:.4f} at iteration {current_iter} '
            f'({rule["better"]} is better): saved {BEST}.{self.opt["path"].get("save_format") or "pth"}'
        )

    def restore_best(self, resume_state: dict) -> None:
        """On resume: the best so far is the training state's, or the record beside ``net_g_best.pth`` when that
        one is better (the interrupted run went on past the state): the file is only ever replaced by a better one."""
        best = resume_state.get('best_checkpoint')
        on_disk = read_best_record(self.opt['path']['models'])
        if on_disk is not None and save_best_rule(self.opt) is not None and is_better(on_disk['value'], best):
            if best is not None:
                get_root_logger().info(
                    f'{BEST}.pth (iteration {on_disk["iter"]}, {on_disk["metric"]} {on_disk["value"]:.4f}) is better '
                    f"than the training state's best: the resumed run keeps it until it beats it"
                )
            best = on_disk
        self.best_checkpoint = best

    def _score_images(
        self, dataloader, dataset_name: str, metrics: dict, current_iter, save_img: bool
    ) -> tuple[Rows, Features]:
        """``{image: {metric: value}}`` and, for the set-level metrics, ``{image: {metric: (SR's, GT's)}}``
        (:func:`~aesop.metrics.fid.image_features`) for the images of ``dataloader`` (saved when ``save_img``)."""
        model = self.model
        rows: Rows = {}
        features: Features = {}
        pbar = tqdm(dataloader, unit='image', desc=dataset_name, disable=not self.opt['val']['pbar'])
        with metric_device(model.device):
            for data in pbar:
                img_name = osp.splitext(osp.basename(data['lq_path'][0]))[0]
                model.drop_batch()  # an LR-only image must not meet the last training batch's GT
                model.feed_data(data)
                model.test()
                if not torch.isfinite(model.output).all():  # black images and exit 0 would hide broken weights
                    weights = self.opt['path'].get('pretrain_network_g') if not self.opt['is_train'] else 'this run'
                    raise AesopError(
                        f'the output for {img_name} ({dataset_name}) is not finite (NaN or inf): the weights of '
                        f'network_g ({weights}) are broken'
                    )
                row = rows.setdefault(img_name, {})
                for tag, img, ref, lq in model.validation_pairs():
                    if save_img:
                        write_image(self.image_path(img_name, dataset_name, current_iter, tag), img)
                    for name, metric_opt in metrics.items():
                        if not scores_on(metric_opt, dataset_name):  # an entry with datasets: [<names>]
                            continue
                        if ref is None and needs_reference(metric_opt['type']):  # NIQE etc. need none
                            continue
                        options = model.metric_options(metric_opt, tag)
                        if is_set_level(metric_opt['type']):  # 2048 floats per image or patch, not the images
                            pair = (image_features(img, options), image_features(ref, options))
                            features.setdefault(img_name, {})[name + tag] = pair
                        else:
                            row[name + tag] = score(img, ref, lq, options)
                model.drop_batch()
        return rows, features

    def image_path(self, img_name: str, dataset_name: str, current_iter, tag: str = '') -> Path:
        """Where BasicSR saves a validation image (training: per image; test: per dataset)."""
        vis = Path(self.opt['path']['visualization'])
        if self.opt['is_train']:
            return vis / img_name / f'{img_name}{tag}_{current_iter}.png'
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return vis / dataset_name / f'{img_name}{tag}_{suffix}.png'


def gather_shards(rows: Rows, features: Features, failure: str | None, world: int) -> tuple[Rows, Features, str | None]:
    """Every rank's rows, set-level features and failure, on every rank (``dist.all_gather_object``: each rank's
    shard is a different number of images, and of patches, so the pickled objects travel, not padded tensors),
    put back in dataset order: rank ``r``'s ``j``-th image is the dataset's ``j * world + r``-th. Every rank then
    computes the same means and set-level values."""
    parts: list = [None] * world
    dist.all_gather_object(parts, (rows, features, failure))
    placed = [
        (j * world + r, name, row) for r, (part, _, _) in enumerate(parts) for j, (name, row) in enumerate(part.items())
    ]
    ordered = [name for _, name, _ in sorted(placed, key=lambda item: item[0])]
    rows = {name: row for _, name, row in placed}
    every = {name: pair for _, part, _ in parts for name, pair in part.items()}
    failure = next((f for _, _, f in parts if f), None)
    return {name: rows[name] for name in ordered}, {name: every[name] for name in ordered if name in every}, failure


def set_values(features: Features, dataset_name: str) -> dict[str, float]:
    """The value of each set-level metric (in the order first met): the Fréchet distance between the features of
    all SR images and all GT images, concatenated in dataset order (:func:`~aesop.metrics.fid.set_distance`)."""
    names = list(dict.fromkeys(name for per_image in features.values() for name in per_image))
    values = {}
    for name in names:
        pairs = [per_image[name] for per_image in features.values() if name in per_image]
        values[name] = set_distance([p[0] for p in pairs], [p[1] for p in pairs], f'{name} on {dataset_name}')
    return values


@master_only
def write_best_record(models_dir: Path, record: dict) -> None:
    """``net_g_best.json``: the record of ``net_g_best.pth``, written atomically after it."""
    write_result(models_dir / f'{BEST}.json', (json.dumps(record, indent=2) + '\n').encode())


@master_only
def write_tables(folder: Path, method: str, dataset: str, rows: dict, means: dict[str, dict], options: dict) -> None:
    """In ``folder``: ``<dataset>.csv`` (``image,<metric>,…``, a row per image and a last ``mean`` row: the
    evaluator's CSV) and ``metrics.csv``/``metrics.md`` (``method,dataset,<metric>,…``, a row per dataset of
    ``means``); ``options``: ``val.metrics``, whose random backbones label their columns. Each file is written
    atomically (:func:`aesop.weights.write_result`): a full disk or a kill leaves the previous one whole, and a
    failed write is one line naming the file."""
    write_image_csv(folder / f'{dataset}.csv', {**rows, 'mean': means[dataset]}, metric_labels(options, means[dataset]))
    metrics = list(dict.fromkeys(m for values in means.values() for m in values))
    header = ['method', 'dataset', *metric_labels(options, metrics).values()]
    lines = [[method, name, *(f'{v[m]:.4f}' if m in v else '' for m in metrics)] for name, v in means.items()]
    write_result(folder / 'metrics.csv', csv_bytes([header, *lines]))
    table = markdown_table(header, lines)
    write_result(folder / 'metrics.md', (table + '\n').encode())
    get_root_logger().info(f'Metric table: {folder / "metrics.md"}\n{table}')
