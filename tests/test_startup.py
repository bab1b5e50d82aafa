"""A run's start-up and end (``aesop/pipeline.py``): nothing on disk before the model is built, every missing
file in one message, the loop stopping at ``total_iter``, a non-negative eta, no "Best" line when testing."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import signal
import sys
import time
from copy import deepcopy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from basicsr.archs import build_network
from conftest import REPO, TINY_RRDB, load_yaml, run_entry, write_yaml
from test_docs import anchors
from test_entrypoints import DEMO, tiny
from test_robustness import _fresh_logging, gan_opt, run_main  # noqa: F401  (_fresh_logging: an autouse fixture)

import aesop.train
from aesop import pipeline
from aesop.cli import cli_main
from aesop.errors import AesopError
from aesop.runlock import hold_experiment, release_experiment


def tree(root: Path) -> list[str]:
    """Every path under ``root`` but the option file ``run_main`` writes, hidden files (the lock) included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.name != 'opt.yml')


def _weights_that_do_not_fit(opt, root):
    torch.save({'params_ema': build_network({**TINY_RRDB, 'num_feat': 8}).state_dict()}, root / 'g.pth')
    opt['path']['pretrain_network_g'] = str(root / 'g.pth')
    return r'weights in .*g\.pth do not fit RRDBNet: conv_first\.weight has shape \(8, 3, 3, 3\) in the file'


def _option_refused_by_the_loss(opt, root):
    opt['train']['lr_opt'] = {'type': 'AesopLRConsistencyLoss', 'antialias': False}  # a rule of two options: built
    return r'AesopLRConsistencyLoss: antialias must be true with kernel: matlab'


@pytest.mark.parametrize('earlier_run', [False, True])
@pytest.mark.parametrize('fail', [_weights_that_do_not_fit, _option_refused_by_the_loss])
def test_a_start_up_failing_once_the_networks_are_built_leaves_nothing(
    fail, earlier_run, tiny_data, tmp_path, monkeypatch, capsys
):
    """No experiment or tb_logger folder is made, an earlier run's is not archived, the lock is gone, and the
    error is not buried under the network descriptions (basicsr made the folders and logged those first)."""
    opt = gan_opt(tiny_data, tmp_path)  # use_tb_logger: true
    expected = fail(opt, tmp_path)
    if earlier_run:
        for folder in ('experiments/bad/models', 'tb_logger/bad'):
            (tmp_path / folder).mkdir(parents=True)
        (tmp_path / 'experiments' / 'bad' / 'models' / 'net_g_5.pth').write_bytes(b'kept')
    before = tree(tmp_path)
    assert re.search(expected, run_main(opt, tmp_path, monkeypatch, capsys))
    assert tree(tmp_path) == before  # no experiments/bad_archived_*, tb_logger/bad, log or .bad.lock
    run_main(opt, tmp_path, monkeypatch, capsys)  # and again: the lock was given up
    assert tree(tmp_path) == before


def test_the_console_shows_the_error_not_the_network_dump(tiny_data, tmp_path, monkeypatch, capsys):
    """The start-up's records are held: on failure only its warnings (here: the perceptual loss's random VGG19,
    built before the refused loss) come before the error."""
    opt = gan_opt(tiny_data, tmp_path)
    _option_refused_by_the_loss(opt, tmp_path)
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    monkeypatch.setattr(sys, 'argv', ['aesop/train.py', '-opt', str(write_yaml(opt, tmp_path / 'opt.yml'))])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        aesop.train.main()
    err = capsys.readouterr().err
    assert 'RRDBNet(' not in err and 'Network' not in err and 'Dataset' not in err and 'INFO' not in err, err
    assert 'random weights (AESOP_RANDOM_BACKBONES is set' in err  # the held warnings are shown
    assert err.strip().splitlines()[-1].startswith('aesop: error: AesopLRConsistencyLoss: antialias must be true')


def test_every_missing_file_is_one_line_of_one_message(tiny_data, tmp_path, monkeypatch, capsys):
    """Data, initial weights, an earlier stage's checkpoint and the perceptual loss's VGG19, each with its option,
    its path and where to get it (a URL, the option file that writes it, the docs' section on data)."""
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    monkeypatch.setenv('AESOP_PRETRAINED_DIR', str(tmp_path / 'weights'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    opt = gan_opt(tiny_data, tmp_path)
    opt['datasets']['val']['dataroot_gt'] = 'datasets/DIV2K/DIV2K_valid_HR'
    opt['path']['pretrain_network_g'] = 'experiments/pretrained_models/RRDB_PSNR_x4.pth'
    opt['train']['aesop_opt']['pretrained'] = 'experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth'
    opt['val']['metrics']['lpips'] = {'type': 'calculate_lpips', 'better': 'lower'}
    lines = run_main(opt, tmp_path, monkeypatch, capsys).splitlines()
    assert lines[0] == '5 files or folders the run needs are missing:'
    expected = [
        (f'dataset folder not found: {tmp_path}/datasets/DIV2K/DIV2K_valid_HR (option datasets.val.dataroot_gt)',
         'see docs/training.md#train-for-real-df2k-several-gpus'),
        (f'file not found: {tmp_path}/experiments/pretrained_models/RRDB_PSNR_x4.pth (option path.pretrain_network_g)',
         'https://github.com/xinntao/ESRGAN'),
        (f'file not found: {tmp_path}/experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth '
         '(option train.aesop_opt.pretrained)',
         'python aesop/train.py -opt options/train_ae.yml'),
        ("VGG19 (perceptual loss) weights 'vgg19-dcbb9e9d.pth' (option train.perceptual_opt) not found",
         'download https://download.pytorch.org/models/vgg19-dcbb9e9d.pth into one of'),
        ("ALEXNET (LPIPS-alex) weights 'alexnet-owt-7be5be79.pth' (option val.metrics.lpips) not found",
         'download https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'),
    ]  # fmt: skip
    for line, (what, where) in zip(lines[1:], expected, strict=True):
        assert line.startswith(f'  {what}') and where in line, line
    assert 'train-for-real-df2k-several-gpus' in anchors(REPO / 'docs' / 'training.md')
    assert (REPO / 'options' / 'train_ae.yml').is_file() and tree(tmp_path) == ['ae.pth']


def _test_run_error(option_file: Path, root: Path, monkeypatch, capsys) -> list[str]:
    """``aesop/test.py -opt option_file`` in this process with the project root ``root``: its error, line by line."""
    import aesop.test

    monkeypatch.setenv('AESOP_ROOT', str(root))
    monkeypatch.setattr(sys, 'argv', ['aesop/test.py', '-opt', str(option_file)])
    with pytest.raises(SystemExit):
        aesop.test.main()
    err = capsys.readouterr().err
    return err[err.index('aesop: error: ') :].splitlines()


def test_the_demo_missing_says_make_demo(tmp_path, monkeypatch, capsys):
    """The demo's data and checkpoints missing: ``make demo`` makes them (not "edit the option file")."""
    make_demo = "run make demo (scripts/demo.py makes the demo's data and checkpoints)"
    lines = _test_run_error(REPO / 'options' / 'demo' / 'test_aesop.yml', tmp_path, monkeypatch, capsys)
    assert lines == [
        'aesop: error: 4 files or folders the run needs are missing:',
        f'  dataset folder not found: {tmp_path}/datasets/demo/val/HR (option datasets.test_1.dataroot_gt): '
        f'{make_demo}',
        f'  dataset folder not found: {tmp_path}/datasets/demo/val/LR_bicubic/X4 '
        f'(option datasets.test_1.dataroot_lq): {make_demo}',
        f'  file not found: {tmp_path}/experiments/demo_aesop/models/net_g_latest.pth '
        f"(option path.pretrain_network_g): written by the demo's stage options/demo/train_aesop.yml: {make_demo}",
        f'  file not found: {tmp_path}/experiments/demo_ae/models/net_g_latest.pth '
        f"(option val.metrics.ae_psnr.pretrained): written by the demo's stage options/demo/train_ae.yml: {make_demo}",
    ]
    assert 'demo:' in (REPO / 'Makefile').read_text() and (REPO / 'scripts' / 'demo.py').is_file()


def test_a_test_runs_missing_data_points_at_the_papers_test_sets(tmp_path, monkeypatch, capsys):
    """The paper's seven test sets missing (GT and LR each): the docs' section on those sets, by the page's anchor."""
    lines = _test_run_error(REPO / 'options' / 'test_rrdb.yml', tmp_path, monkeypatch, capsys)
    data = [line for line in lines if line.startswith('  dataset folder not found: ')]
    assert len(data) == 14 and all(line.endswith('(see docs/evaluation.md#the-papers-test-sets)') for line in data)
    assert 'the-papers-test-sets' in anchors(REPO / 'docs' / 'evaluation.md')


def test_a_list_is_printed_whole_and_a_worker_traceback_dropped(capsys):
    def fails(message):
        def main(_):
            raise AesopError(message)

        return main

    assert cli_main(fails('2 things are missing:\n  a\n  b')) == 2
    assert capsys.readouterr().err == 'aesop: error: 2 things are missing:\n  a\n  b\n'
    worker = (  # what torch re-raises for an error in a DataLoader worker
        'Caught AesopError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n'
        '  File "x.py", line 1, in f\n    raise AesopError(...)\naesop.errors.AesopError: an image is broken\n'
    )
    assert cli_main(fails(worker)) == 2
    assert capsys.readouterr().err == 'aesop: error: an image is broken\n'


def test_release_experiment_removes_the_lock_and_the_folder_it_made(tmp_path):
    hold_experiment(tmp_path / 'experiments' / 'a')
    release_experiment(tmp_path / 'experiments' / 'a')
    assert not (tmp_path / 'experiments').exists()
    (tmp_path / 'experiments').mkdir()
    hold_experiment(tmp_path / 'experiments' / 'b')
    release_experiment(tmp_path / 'experiments' / 'b')
    assert (tmp_path / 'experiments').is_dir() and not any((tmp_path / 'experiments').iterdir())  # not its own


@pytest.fixture
def no_lock_held(monkeypatch):
    """This process holds no experiment lock and SIGTERM has its default handler (the test's own restored after)."""
    from aesop import runlock

    monkeypatch.setattr(runlock, '_HELD', {})
    monkeypatch.setattr(runlock, '_MADE', {})
    monkeypatch.setattr(runlock, '_SIGTERM_BEFORE', [])
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, before)


def test_release_experiment_gives_sigterm_back_once_no_lock_is_held(tmp_path, no_lock_held):
    hold_experiment(tmp_path / 'experiments' / 'a')
    hold_experiment(tmp_path / 'experiments' / 'b')
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL  # a kill releases the locks through exit handlers
    release_experiment(tmp_path / 'experiments' / 'a')
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL  # b is still held
    release_experiment(tmp_path / 'experiments' / 'b')
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_without_flock_a_failed_start_up_still_leaves_nothing(tmp_path, no_lock_held, monkeypatch):
    """A file system that does not lock files (flock: ENOLCK): no lock, but the lock file and the experiments
    folder it made are given up all the same."""

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, 'flock', no_locks)
    assert hold_experiment(tmp_path / 'experiments' / 'a').is_file()
    release_experiment(tmp_path / 'experiments' / 'a')
    assert not (tmp_path / 'experiments').exists()


def test_a_folder_made_again_while_taking_the_lock_goes_on_release(tmp_path, no_lock_held, monkeypatch):
    """experiments/ was there, but another run's failed start-up removed it before the lock file was opened: this run
    made it again, so its release removes it."""
    (tmp_path / 'experiments').mkdir()
    lock, real_open, removed = tmp_path / 'experiments' / '.a.lock', os.open, []

    def open_after_a_release(path, *args, **kwargs):
        if Path(path) == lock and not removed:  # the first try: the folder is gone
            removed.append(lock.parent)
            lock.parent.rmdir()
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, 'open', open_after_a_release)
    hold_experiment(tmp_path / 'experiments' / 'a')
    release_experiment(tmp_path / 'experiments' / 'a')
    assert removed and not (tmp_path / 'experiments').exists()


@pytest.mark.parametrize('val_freq', [3, 2])
def test_a_finished_run_validates_at_total_iter_once(val_freq, tiny_data, tmp_path):
    """basicsr's loop went past total_iter (its last validation: ``Best: … @ 5 iter`` and ``coffee_5.png`` for 3)."""
    opt = tiny(load_yaml(DEMO / 'train_psnr.yml'), 'end', tiny_data, 3)
    opt['val'].update(val_freq=val_freq, save_img=True)
    run_entry('train', write_yaml(opt, tmp_path / 'end.yml'), tmp_path)
    exp = tmp_path / 'experiments' / 'end'
    validated = sorted({val_freq, 3})
    images = sorted(p.name for p in (exp / 'visualization' / 'coffee').iterdir())
    assert images == [f'coffee_{i}.png' for i in validated]
    log = next(exp.glob('train_*.log')).read_text()
    assert [int(i) for i in re.findall(r'Best: [\d.]+ @ (\d+) iter', log)] == validated
    assert re.findall(r'iter:\s+(\d+),', log) == ['1', '2', '3']
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_3.pth', 'net_g_latest.pth']
    assert 'RRDBNet(' in log and 'Number of train images' in log  # the start-up's records reach the file


def test_the_eta_is_never_negative():
    """basicsr's eta at the last iteration was −1 × the time of one (``-1 day, 23:59:58`` at 2 s an iteration)."""
    opt = {'name': 'eta', 'logger': {'print_freq': 1, 'use_tb_logger': False}, 'train': {'total_iter': 10}}
    lines = []
    logger = pipeline.MessageLogger(opt, start_iter=0)
    logger.logger = SimpleNamespace(info=lines.append)
    logger.start_time = time.time() - 20  # 2 s an iteration
    for it in (5, 10):
        logger({'epoch': 0, 'iter': it, 'lrs': [1e-4], 'time': 2.0, 'data_time': 0.0})
    etas = [re.search(r'eta: ([^,]+),', line).group(1) for line in lines]
    assert etas[1] == '0:00:00' and 'day' not in etas[0] and not etas[0].startswith('-')


def test_a_training_set_without_a_batch_stops_instead_of_looping():
    opt = {
        'name': 'x', 'rank': 0, 'logger': {'print_freq': 1, 'use_tb_logger': False}, 'train': {'total_iter': 2},
        'datasets': {'train': {'batch_size_per_gpu': 1}},
    }  # fmt: skip
    empty = SimpleNamespace(reset=lambda: None, next=lambda: None)
    sampler = SimpleNamespace(set_epoch=lambda epoch: None, start_at=lambda samples: None)
    with pytest.raises(AesopError, match='datasets.train gave no batch in epoch 0'):
        pipeline.train(opt, None, prefetcher=empty, sampler=sampler, val_loaders=[], tb_logger=None)


def test_a_test_run_logs_its_metrics_without_a_best_iteration(tiny_data, tmp_path):
    """basicsr logged ``Best: 0.0336 @ <name> iter`` in a test run (the run's name for an iteration)."""
    torch.save({'params': build_network(deepcopy(TINY_RRDB)).state_dict()}, tmp_path / 'g.pth')
    opt = tiny(load_yaml(DEMO / 'test_aesop.yml'), 'no_best', tiny_data, 0)
    opt['network_g'], opt['path']['pretrain_network_g'] = deepcopy(TINY_RRDB), str(tmp_path / 'g.pth')
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True}}
    run_entry('test', write_yaml(opt, tmp_path / 'test.yml'), tmp_path)
    log = next((tmp_path / 'results' / 'no_best').glob('test_*.log')).read_text()
    assert re.search(r'# psnr: [\d.]+', log) and 'Best' not in log


def _state(states: Path, iteration: int, **extra) -> Path:
    """A training state as basicsr writes one (``training_states/<iteration>.state``), with ``extra`` keys."""
    states.mkdir(parents=True, exist_ok=True)
    state = {'epoch': 0, 'iter': iteration, 'optimizers': [], 'schedulers': [], **extra}
    torch.save(state, states / f'{iteration}.state')
    return states / f'{iteration}.state'


def test_a_state_of_another_experiment_names_both(tiny_data, tmp_path, monkeypatch, capsys):
    """Experiment other's ``4.state`` copied into bad's training_states, ``--auto_resume``: basicsr blamed
    ``path.pretrain_network_g``, an option that is null in the file (checkpoint not found: …/net_g_4.pth)."""
    state = _state(tmp_path / 'experiments' / 'bad' / 'training_states', 4, experiment='other')
    message = run_main(gan_opt(tiny_data, tmp_path), tmp_path, monkeypatch, capsys, '--auto_resume')
    assert message == (
        f"training state {state} belongs to experiment 'other', not to this one ('bad'): resume 'other' under its own "
        'name (its networks are in its models folder), or remove the state from this experiment'
    )
    assert tree(tmp_path) == ['ae.pth', 'experiments', 'experiments/bad', 'experiments/bad/training_states',
                              'experiments/bad/training_states/4.state']  # fmt: skip


def test_an_older_state_whose_networks_are_missing_names_the_state_not_the_option(
    tiny_data, tmp_path, monkeypatch, capsys
):
    """A state written before states recorded their experiment: the network file it needs is named with it."""
    state = _state(tmp_path / 'experiments' / 'bad' / 'training_states', 4)
    message = run_main(gan_opt(tiny_data, tmp_path), tmp_path, monkeypatch, capsys, '--auto_resume')
    network = tmp_path / 'experiments' / 'bad' / 'models' / 'net_g_4.pth'
    assert message == (
        f'training state {state} needs {network}, which is missing (the state was copied from another experiment, '
        'or the networks saved with it were removed): restore that file, or remove the state'
    )
    assert 'pretrain_network_g' not in message


def test_a_copied_state_is_refused_even_where_a_network_of_its_iteration_exists(tiny_data, tmp_path):
    """Both experiments saved iteration 1: B's ``1.state`` in A resumed A's network with B's optimiser silently.
    The state records its experiment (:meth:`AesopModel.extra_training_state`)."""
    for name in ('a', 'b'):
        opt = tiny(load_yaml(DEMO / 'train_psnr.yml'), name, tiny_data, 1)
        run_entry('train', write_yaml(opt, tmp_path / f'{name}.yml'), tmp_path)
    experiments = tmp_path / 'experiments'
    assert torch.load(experiments / 'b' / 'training_states' / '1.state', weights_only=False)['experiment'] == 'b'
    (experiments / 'b' / 'training_states' / '1.state').replace(experiments / 'a' / 'training_states' / '1.state')
    opt = tiny(load_yaml(DEMO / 'train_psnr.yml'), 'a', tiny_data, 2)
    proc = run_entry('train', write_yaml(opt, tmp_path / 'a.yml'), tmp_path, '--auto_resume', check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f'aesop: error: training state {experiments / "a" / "training_states" / "1.state"} belongs to experiment '
        "'b', not to this one ('a'): resume 'b' under its own name (its networks are in its models folder), or "
        'remove the state from this experiment'
    )


def _weights_of_another_arch(path: Path) -> Path:
    """MSRResNet's weights: 6 of a tiny RRDBNet's 42 tensors share their names and shapes."""
    net = build_network({'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1})
    torch.save({'params': net.state_dict(), 'params_ema': net.state_dict()}, path)
    return path


PARTIAL = (
    r'{path} \(option path\.pretrain_network_g\) loaded 6 of the 42 tensors of RRDBNet \(non-strict load\): '
    r'36 missing from the file: body\.0\.rdb1\.conv1\.weight, body\.0\.rdb1\.conv1\.bias, '
    r'body\.0\.rdb1\.conv2\.weight and 33 more; 8 in the file but not in the network: upconv1\.weight, '
    r'upconv1\.bias, upconv2\.weight and 5 more'
)


def test_a_partial_load_is_refused_when_testing_unless_allowed(tiny_data, tmp_path, monkeypatch, capsys):
    """``strict_load_g: false`` with weights of another arch: 6 of 42 tensors loaded, the rest random, and the test
    scored that with exit 0 (basicsr warned; this project's loader had dropped the warning)."""
    weights = _weights_of_another_arch(tmp_path / 'g.pth')
    opt = tiny(load_yaml(DEMO / 'test_aesop.yml'), 'partial', tiny_data, 0)
    opt['network_g'] = deepcopy(TINY_RRDB)
    opt['path'].update(pretrain_network_g=str(weights), strict_load_g=False, param_key_g='params')
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}
    lines = _test_run_error(write_yaml(opt, tmp_path / 'test.yml'), tmp_path, monkeypatch, capsys)
    assert len(lines) == 1 and re.fullmatch(
        'aesop: error: ' + PARTIAL.format(path=re.escape(str(weights))) + ': testing would score a partly random '
        r'network \(set path\.allow_partial_g: true to do that on purpose\)',
        lines[0],
    ), lines
    assert not (tmp_path / 'results').exists()
    opt['path']['allow_partial_g'] = True
    proc = run_entry('test', write_yaml(opt, tmp_path / 'test.yml'), tmp_path)
    assert re.search(
        PARTIAL.format(path=re.escape(str(weights))) + '; the others keep their initialisation', proc.stderr
    )
    assert (tmp_path / 'results' / 'partial' / 'visualization').is_dir()  # allow_partial_g: a setting, no folder


def test_a_partial_load_when_training_is_a_warning_naming_the_tensors(tiny_data, tmp_path):
    weights = _weights_of_another_arch(tmp_path / 'g.pth')
    opt = tiny(load_yaml(DEMO / 'train_psnr.yml'), 'partial', tiny_data, 1)
    opt['path'].update(pretrain_network_g=str(weights), strict_load_g=False)
    proc = run_entry('train', write_yaml(opt, tmp_path / 'train.yml'), tmp_path)
    expected = PARTIAL.format(path=re.escape(str(weights))) + '; the others keep their initialisation'
    assert re.search(r'WARNING: ' + expected, proc.stderr), proc.stderr[-3000:]
    log = next((tmp_path / 'experiments' / 'partial').glob('train_*.log')).read_text()
    assert re.search(expected, log)


def test_a_non_strict_load_reports_what_it_left_out(tmp_path, monkeypatch):
    """``load_weights(strict=False)``: a file of another arch is a :class:`PartialLoad` and a warning; one with more
    tensors than the network takes (a larger one's) a warning only; one that fits, nothing."""
    from aesop import weights

    warned = []
    monkeypatch.setattr(weights.logger, 'warning', warned.append)
    net = build_network(deepcopy(TINY_RRDB))
    partial = weights.load_weights(net, _weights_of_another_arch(tmp_path / 'other.pth'), strict=False, option='x')
    assert (partial.loaded, partial.total, len(partial.missing), len(partial.unexpected)) == (6, 42, 36, 8)
    assert warned == [f'{partial}; the others keep their initialisation']
    warned.clear()
    with pytest.raises(AesopError, match=r'^.*other\.pth \(option x\) loaded 6 of the 42 tensors .* and 5 more: no$'):
        weights.load_weights(net, tmp_path / 'other.pth', strict=False, option='x', refuse_partial='no')
    assert not warned  # refused, not also warned about
    torch.save({'params': build_network({**TINY_RRDB, 'num_feat': 8}).state_dict()}, tmp_path / 'narrow.pth')
    narrow = weights.load_weights(net, tmp_path / 'narrow.pth', strict=False)
    assert (narrow.loaded, len(narrow.reshaped), narrow.missing) == (13, 29, []) and 'of another shape' in str(narrow)
    warned.clear()
    torch.save({'params': build_network({**TINY_RRDB, 'num_block': 2}).state_dict()}, tmp_path / 'deeper.pth')
    assert weights.load_weights(net, tmp_path / 'deeper.pth', strict=False) is None
    assert len(warned) == 1 and re.fullmatch(
        r'.*deeper\.pth loaded 42 of the 42 tensors of RRDBNet \(non-strict load\): 30 in the file but not in the '
        r'network: body\.1\.rdb1\.conv1\.weight, body\.1\.rdb1\.conv1\.bias, body\.1\.rdb1\.conv2\.weight and 27 more',
        warned[0],
    )
    warned.clear()
    torch.save({'params': build_network(deepcopy(TINY_RRDB)).state_dict()}, tmp_path / 'same.pth')
    assert weights.load_weights(net, tmp_path / 'same.pth', strict=False) is None and not warned


def test_a_state_of_another_number_of_processes_says_its_random_streams_start_afresh():
    """A training state holds one set of random streams per process: resumed on another number of processes there
    is none to give each, and one warning says the run is not the stopped one's continued exactly."""
    opt = {
        'name': 'x', 'rank': 0, 'world_size': 1, 'logger': {'print_freq': 1, 'use_tb_logger': False},
        'train': {'total_iter': 2}, 'datasets': {'train': {'batch_size_per_gpu': 1}},
    }  # fmt: skip
    empty = SimpleNamespace(reset=lambda: None, next=lambda: None)
    sampler = SimpleNamespace(set_epoch=lambda epoch: None, start_at=lambda samples: None)
    state = {'epoch': 0, 'iter': 1, 'random': [{}, {}]}  # 2 processes' streams
    records = []
    handler = logging.Handler()
    handler.emit = records.append  # basicsr's logger does not propagate: caplog sees nothing
    logging.getLogger('basicsr').addHandler(handler)
    try:
        with pytest.raises(AesopError, match='gave no batch'):
            pipeline.train(
                opt, None, prefetcher=empty, sampler=sampler, val_loaders=[], tb_logger=None, resume_state=state
            )
    finally:
        logging.getLogger('basicsr').removeHandler(handler)
    expected = 'the training state holds the random streams of 2 process(es), this run has 1: they start afresh'
    assert any(r.getMessage().startswith(expected) for r in records)
