"""``val.save_best``: early stopping's checkpoint (paper 003, Sec. 5), for every model."""

from __future__ import annotations

import copy
import json
import re

import pytest
import torch
from conftest import REPO, TINY_RRDB, load_yaml, point_at, run_entry, write_yaml
from test_schema import checked

from aesop.models.validation import Validator, is_better, read_best_record, save_best_rule, write_best_record


def test_the_rule_takes_the_metrics_direction_and_the_first_validation_set():
    opt = {
        'datasets': {'train': {'name': 't'}, 'val': {'name': 'split'}, 'val_2': {'name': 'other'}},
        'val': {
            'metrics': {'psnr': {'type': 'calculate_psnr'}, 'lpips': {'type': 'calculate_lpips', 'better': 'lower'}}
        },
    }
    assert save_best_rule(opt) is None
    opt['val']['save_best'] = {'metric': 'lpips'}
    assert save_best_rule(opt) == {'metric': 'lpips', 'better': 'lower', 'dataset': 'split'}
    opt['val']['save_best'] = {'metric': 'psnr', 'dataset': 'other'}
    assert save_best_rule(opt) == {'metric': 'psnr', 'better': 'higher', 'dataset': 'other'}
    opt['val']['save_best'] = {'metric': 'psnr', 'better': 'lower'}
    assert save_best_rule(opt)['better'] == 'lower'
    assert is_better(0.2, None) and is_better(0.2, {'value': 0.3, 'better': 'lower'})
    assert not is_better(0.3, {'value': 0.3, 'better': 'lower'}) and not is_better(
        0.3, {'value': 0.3, 'better': 'higher'}
    )
    assert is_better(31.0, {'value': 30.0, 'better': 'higher'}) and not is_better(
        29.0, {'value': 30.0, 'better': 'higher'}
    )


def test_only_rank_0_writes_the_best_record(tmp_path, monkeypatch):
    """Under DDP every rank validates; one file, written by rank 0 (the others would race it to the same path)."""
    import basicsr.utils.dist_util as dist_util

    record = {'iter': 5, 'metric': 'lpips', 'value': 0.25}
    monkeypatch.setattr(dist_util, 'get_dist_info', lambda: (1, 2))
    write_best_record(tmp_path, record)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(dist_util, 'get_dist_info', lambda: (0, 2))
    write_best_record(tmp_path, record)
    assert json.loads((tmp_path / 'net_g_best.json').read_text()) == record


def test_the_schema_refuses_a_rule_without_its_metric_or_its_validation_set():
    assert checked(val__save_best={'metric': 'psnr'}) is None
    assert checked(val__save_best={'metric': 'psrn'}).startswith(
        "val.save_best.metric 'psrn' is not one of val.metrics: did you mean 'psnr'?"
    )
    assert "val.save_best.dataset 'DIV2K_vl' is not the name of a validation set: did you mean 'DIV2K_val'?" in checked(
        val__save_best={'metric': 'psnr', 'dataset': 'DIV2K_vl'}
    )
    assert 'val.save_best.better' in checked(val__save_best={'metric': 'psnr', 'better': 'up'})


class Recorder:
    """A model for the validator's bookkeeping alone: saves are recorded, not written."""

    def __init__(self, tmp_path, better='lower'):
        self.opt = {
            'is_train': True,
            'datasets': {'val': {'name': 'split'}},
            'val': {'metrics': {'lpips': {'better': better}}, 'save_best': {'metric': 'lpips'}},
            'path': {'models': str(tmp_path)},
            'train': {'total_iter': 100},
        }
        self.saved = []

    def save_generator(self, label):
        self.saved.append(('net_g', label))


def validator(tmp_path, better='lower') -> Validator:
    model = Recorder(tmp_path, better)
    return Validator(model, model.opt)


def test_fid_is_lower_is_better_without_saying_so(tmp_path):
    """``val.save_best: {metric: fid}``: FID's direction comes from its metric (``calculate_fid.better``), in the
    rule and in basicsr's best-value records; the entry's ``better`` still wins; the lowest FID is kept."""
    model = validator(tmp_path)
    model.opt['val'] = {'metrics': {'fid': {'type': 'calculate_fid'}}, 'save_best': {'metric': 'fid'}}
    assert save_best_rule(model.opt) == {'metric': 'fid', 'better': 'lower', 'dataset': 'split'}
    assert model.best_records('split') == {'fid': {'better': 'lower', 'val': float('inf'), 'iter': -1}}
    for it, value in ((10, 80.0), (20, 60.0), (30, 70.0), (40, 55.0)):
        model.metric_results = {'fid': value}
        model.keep_best('split', it)
    assert model.model.saved == [('net_g', 'best')] * 3 and read_best_record(tmp_path)['iter'] == 40
    patch = {'patch_fid': {'type': 'calculate_patch_fid'}, 'psnr': {'type': 'calculate_psnr'}}
    opt = {**model.opt, 'val': {'metrics': patch, 'save_best': {'metric': 'patch_fid'}}}
    assert save_best_rule(opt)['better'] == 'lower'
    opt['val']['save_best']['metric'] = 'psnr'
    assert save_best_rule(opt)['better'] == 'higher'  # basicsr's default for a metric that says nothing
    opt['val']['metrics']['patch_fid']['better'] = 'higher'
    opt['val']['save_best']['metric'] = 'patch_fid'
    assert save_best_rule(opt)['better'] == 'higher'


def test_a_better_validation_replaces_the_best_and_a_resumed_run_keeps_the_better_of_state_and_file(tmp_path):
    model = validator(tmp_path)
    for it, value in ((10, 0.30), (20, 0.25), (30, 0.27), (40, 0.25), (50, 0.20)):
        model.metric_results = {'lpips': value}
        model.keep_best('split', it)
        model.keep_best('another_set', it)  # only the deciding set counts
    assert model.model.saved == [('net_g', 'best')] * 3  # 10, 20, 50: strictly better each time
    assert model.best_checkpoint == {'metric': 'lpips', 'better': 'lower', 'dataset': 'split', 'value': 0.2, 'iter': 50}
    assert read_best_record(tmp_path) == model.best_checkpoint
    model.metric_results = {'lpips': 0.1}
    model.keep_best('split', 100)  # the final validation, at total_iter (basicsr's was labelled past it)
    assert read_best_record(tmp_path)['iter'] == 100

    resumed = validator(tmp_path)  # state written at 30 (best 0.25 @ 20); the file's record is better
    resumed.restore_best({'best_checkpoint': {'metric': 'lpips', 'better': 'lower', 'value': 0.25, 'iter': 20}})
    assert resumed.best_checkpoint['iter'] == 100
    resumed.metric_results = {'lpips': 0.15}
    resumed.keep_best('split', 40)
    assert resumed.model.saved == []  # 0.15 is worse than the file's 0.1: the file stays
    (tmp_path / 'net_g_best.json').unlink()
    resumed.restore_best({'best_checkpoint': {'metric': 'lpips', 'better': 'lower', 'value': 0.25, 'iter': 20}})
    assert resumed.best_checkpoint['value'] == 0.25
    resumed.restore_best({})  # a state from before save_best: nothing known
    assert resumed.best_checkpoint is None


def test_a_training_run_keeps_the_best_iteration_and_its_weights(tiny_data, tmp_path):
    """Through aesop/train.py: net_g_best.pth equals the checkpoint of the logged best iteration, which is the
    extremum of the logged validation values; the record is in the training state."""
    opt = point_at(load_yaml(REPO / 'options' / 'demo' / 'train_psnr.yml'), tiny_data)
    opt.update(name='best_run', network_g=copy.deepcopy(TINY_RRDB))
    opt['datasets']['train'].update(batch_size_per_gpu=1, dataset_enlarge_ratio=1)
    opt['train'].update(total_iter=4, optim_g={'type': 'Adam', 'lr': 3e-2, 'betas': [0.9, 0.99]})
    opt['val'].update(val_freq=1, save_best={'metric': 'psnr', 'better': 'lower'})  # lower: any direction works
    opt['logger'].update(print_freq=1, save_checkpoint_freq=1, use_tb_logger=False)
    run_entry('train', write_yaml(opt, tmp_path / 'best.yml'), tmp_path)
    exp = tmp_path / 'experiments' / 'best_run'
    log = next(exp.glob('train_*.log')).read_text()
    values = [float(v) for v in re.findall(r'# psnr: (-?[\d.]+)', log)]
    assert len(values) == 4  # iterations 1-4, and no second validation of 4 after the loop
    best_iter = 1 + min(range(4), key=lambda i: (values[i], i))
    record = json.loads((exp / 'models' / 'net_g_best.json').read_text())
    assert record['iter'] == best_iter and record['value'] == pytest.approx(values[best_iter - 1], abs=1e-4)
    assert f'at iteration {best_iter} (lower is better): saved net_g_best.pth' in log
    best, same = (
        torch.load(exp / 'models' / f, weights_only=True) for f in ('net_g_best.pth', f'net_g_{best_iter}.pth')
    )
    assert set(best) == {'params', 'params_ema'}
    for key in best:
        for name, tensor in best[key].items():
            assert torch.equal(tensor, same[key][name]), (key, name)
    state = torch.load(exp / 'training_states' / '4.state', weights_only=False)
    assert state['best_checkpoint'] == record


@pytest.mark.parametrize(
    ('entry', 'better'),
    [
        ({'type': 'calculate_psnr'}, 'higher'),
        ({'type': 'calculate_lpips'}, 'lower'),
        ({'type': 'calculate_dists'}, 'lower'),
        ({'type': 'calculate_niqe'}, 'lower'),
        ({'type': 'aesop_niqe'}, 'lower'),
        ({'type': 'calculate_pyiqa', 'metric': 'niqe'}, 'lower'),
        ({'type': 'calculate_pyiqa', 'metric': 'musiq'}, 'higher'),
        ({'type': 'calculate_lpips', 'better': 'higher'}, 'higher'),  # the entry's own word wins
    ],
)
def test_distances_and_niqe_are_lower_is_better_without_saying_so(entry, better):
    """save_best on an LPIPS entry without `better:` kept the worst checkpoint (basicsr's default: higher)."""
    from aesop.metrics.scoring import metric_better

    assert metric_better(entry) == better


def test_a_failed_record_write_keeps_the_previous_record_and_says_what_the_weights_hold(tmp_path, monkeypatch):
    """net_g_best.json is written atomically after the weights: a full disk keeps the previous record whole, and the
    one line says that net_g_best now holds the newer iteration while its record names the previous best."""
    import errno
    import os

    from aesop.errors import AesopError

    model = validator(tmp_path)
    model.metric_results = {'lpips': 0.3}
    model.keep_best('split', 10)
    before = (tmp_path / 'net_g_best.json').read_bytes()

    def disk_full(*_):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'replace', disk_full)
    model.metric_results = {'lpips': 0.2}
    with pytest.raises(AesopError) as failure:
        model.keep_best('split', 20)
    assert str(failure.value) == (
        f'cannot write {tmp_path}/net_g_best.json: No space left on device (the previous one is kept); net_g_best now '
        'holds iteration 20 (lpips 0.2000) but its record still names the previous best'
    )
    assert (tmp_path / 'net_g_best.json').read_bytes() == before and os.listdir(tmp_path) == ['net_g_best.json']
