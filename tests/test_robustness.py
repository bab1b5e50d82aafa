"""Bad input through the real entry points: one line, no traceback, exit 2; crash-safe resume."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from copy import deepcopy
from pathlib import Path

import basicsr.utils.logger
import pytest
import torch
from basicsr.archs import build_network
from conftest import (
    REPO,
    TINY_AE,
    TINY_RRDB,
    load_yaml,
    point_at,
    python_env,
    run_python,
    run_subprocess,
    spawn,
    write_yaml,
)

import aesop.pipeline
import aesop.test
import aesop.train
from aesop.errors import AesopError
from aesop.weights import atomic_save, read_checkpoint

DEMO = REPO / 'options' / 'demo'


def gan_opt(data, root):
    """A tiny AESOP GAN option file whose ψ checkpoint exists under ``root``."""
    opt = point_at(load_yaml(DEMO / 'train_aesop.yml'), data)
    opt['name'] = 'bad'
    opt['network_g'], opt['path']['pretrain_network_g'] = deepcopy(TINY_RRDB), None
    opt['network_d']['num_feat'] = 4
    ae = build_network(TINY_AE)
    torch.save({'params': ae.state_dict(), 'params_ema': ae.state_dict()}, root / 'ae.pth')
    opt['train']['aesop_opt'].update(autoencoder=deepcopy(TINY_AE), pretrained=str(root / 'ae.pth'))
    opt['train']['total_iter'] = 1
    opt['datasets']['train']['batch_size_per_gpu'] = 1
    return opt


@pytest.fixture(autouse=True)
def _fresh_logging(monkeypatch):
    """BasicSR sets up its logger (and the root one) once per process, on the stderr of that time."""
    for name in ('basicsr', None):
        monkeypatch.setattr(logging.getLogger(name), 'handlers', [])
    monkeypatch.setattr(basicsr.utils.logger, 'initialized_logger', {})


def run_main(opt, root, monkeypatch, capsys, *args: str) -> str:
    """``aesop/train.py -opt … [args]`` in this process; returns its error (one line, or a list: one line each)."""
    monkeypatch.setenv('AESOP_ROOT', str(root))
    monkeypatch.setattr(sys, 'argv', ['aesop/train.py', '-opt', str(write_yaml(opt, root / 'opt.yml')), *args])
    with pytest.raises(SystemExit) as exit_info:
        aesop.train.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    start = max((i for i, line in enumerate(err) if line.startswith('aesop: error: ')), default=None)
    assert start is not None and not any('Traceback' in line for line in err), '\n'.join(err)
    assert all(line.startswith('  ') for line in err[start + 1 :]), '\n'.join(err)  # the list's lines, indented
    return '\n'.join(err[start:]).removeprefix('aesop: error: ')


def _missing_ae(opt, root, data):
    opt['train']['aesop_opt']['pretrained'] = 'experiments/none/ae.pth'


def _mismatch(opt, root, data):
    other = build_network({**TINY_AE, 'num_feat': 16, 'decoder': {**TINY_RRDB, 'num_feat': 8}})
    torch.save({'params_ema': other.state_dict()}, root / 'ae.pth')


def _no_ema_key(opt, root, data):
    torch.save({'params': build_network(TINY_AE).state_dict()}, root / 'ae.pth')


def _empty_dataset(opt, root, data):
    (root / 'empty').mkdir()
    opt['datasets']['train']['dataroot_gt'] = str(root / 'empty')


def _corrupt_image(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    for png in (copy / 'train' / 'HR').glob('*.png'):
        png.write_bytes(b'not a png')
    point_at(opt, copy)


def _empty_image(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    (copy / 'val' / 'LR_bicubic' / 'X4' / 'coffee.png').write_bytes(b'')
    point_at(opt, copy)


def _size_mismatch(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    for png in (copy / 'train' / 'LR_bicubic' / 'X4').glob('*.png'):
        shutil.copy(copy / 'val' / 'LR_bicubic' / 'X4' / 'coffee.png', png)  # 16×16 LR for 128×128 GT
    point_at(opt, copy)


def _unknown_type(opt, root, data):
    opt['network_g']['type'] = 'RRDBNett'


def _unknown_key(opt, root, data):
    opt['network_g'] = {**TINY_RRDB, 'num_blocks': 2}


def _unknown_loss_key(opt, root, data):
    opt['train']['aesop_opt']['weight'] = 1.0


def _ae_scale(opt, root, data):
    opt['train']['aesop_opt']['autoencoder'] = {**TINY_AE, 'scale': 2, 'decoder': {**TINY_RRDB, 'scale': 2}}


def _pickled_code(opt, root, data):
    class Payload:
        def __reduce__(self):
            return (open, (str(root / 'pwned'), 'w'))

    torch.save({'params': Payload()}, root / 'evil.pth')
    opt['path']['pretrain_network_g'] = str(root / 'evil.pth')


def _zero_iterations(opt, root, data):
    opt['train']['total_iter'] = 0


def _batch_too_large(opt, root, data):
    opt['datasets']['train'].update(batch_size_per_gpu=1000, dataset_enlarge_ratio=1)


def _gt_size(opt, root, data):
    opt['datasets']['train']['gt_size'] = 126


def _lbfgs(opt, root, data):
    opt['train']['optim_g']['type'] = 'LBFGS'


def _sgd_with_betas(opt, root, data):
    opt['train']['optim_d']['type'] = 'SGD'  # the file's Adam options stay: betas


def _scheduler_typo(opt, root, data):
    opt['train']['scheduler']['type'] = 'MultiStepLRR'


def _plateau(opt, root, data):
    opt['train']['scheduler'] = {'type': 'ReduceLROnPlateau', 'patience': 5}


def _scheduler_option(opt, root, data):
    opt['train']['scheduler'] = {'type': 'CosineAnnealingLR', 'T_mx': 80}


def _missing_lr_image(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    next((copy / 'train' / 'LR_bicubic' / 'X4').glob('*.png')).unlink()
    point_at(opt, copy)


def _foreign_resume_state(opt, root, data):
    state = root / 'experiments' / 'other' / 'training_states' / '1.state'
    state.parent.mkdir(parents=True)
    state.write_bytes(b'x')
    opt['path']['resume_state'] = str(state)


def _lmdb_folder(opt, root, data):
    opt['datasets']['train']['io_backend'] = {'type': 'lmdb'}


def _symlink_loop(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    (copy / 'val' / 'HR' / 'loop').symlink_to(copy / 'val' / 'HR')
    point_at(opt, copy)
    opt['datasets']['val']['type'] = 'AesopRealESRGANDataset'  # a dataset that reads its folder recursively


def _file_symlink_loop(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    (copy / 'train' / 'LR_bicubic' / 'X4' / 'a.png').symlink_to('b.png')
    (copy / 'train' / 'LR_bicubic' / 'X4' / 'b.png').symlink_to('a.png')  # basicsr: OSError ELOOP, a traceback
    point_at(opt, copy)


def _broken_symlink(opt, root, data):
    copy = shutil.copytree(data, root / 'data')
    (copy / 'val' / 'HR' / 'gone.png').symlink_to(root / 'moved' / 'gone.png')  # basicsr: skipped without a word
    point_at(opt, copy)


def _metric_typo(opt, root, data):
    opt['val']['metrics']['psnr']['crop_bordr'] = 4


def _top_level_typo(opt, root, data):
    opt['manual_sead'] = 1


def _dataset_typo(opt, root, data):
    opt['datasets']['train']['gt_sise'] = 64


def _train_typo(opt, root, data):
    opt['train']['ema_decy'] = 0.999


def _test_set_in_training(opt, root, data):
    opt['datasets']['test_1'] = dict(opt['datasets']['val'])  # basicsr refused it; it must not become a val set


def _optimizer_typo(opt, root, data):
    opt['train']['optim_g']['betas_'] = [0.9, 0.99]


def _logger_type(opt, root, data):
    opt['logger']['print_freq'] = 'often'


def _path_typo(opt, root, data):
    opt['path']['pretrain_netwrk_g'] = 'g.pth'


def _bool_type(opt, root, data):
    opt['datasets']['train']['use_hflip'] = 'maybe'


def _dist_backend(opt, root, data):
    opt['dist_params'] = {'backend': 'ncl', 'port': 29500}


def _negative_loss_weight(opt, root, data):
    opt['train']['perceptual_opt']['perceptual_weight'] = -1  # basicsr's PerceptualLoss: not annotated


def _nan_loss_weight(opt, root, data):
    opt['train']['aesop_opt']['loss_weight'] = math.nan


def _infinite_gan_weight(opt, root, data):
    opt['train']['gan_opt']['loss_weight'] = math.inf


def _negative_layer_weight(opt, root, data):
    opt['train']['perceptual_opt']['layer_weights']['conv5_4'] = -0.1


def _negative_crop_border(opt, root, data):
    opt['val']['metrics']['psnr']['crop_border'] = -4  # basicsr's calculate_psnr: psnr nan, exit 0


def _gt_size_larger_than_the_images(opt, root, data):
    opt['datasets']['train']['gt_size'] = 512


def _one_image_smaller_than_gt_size(opt, root, data):
    import cv2

    copy = shutil.copytree(data, root / 'data')
    gt = sorted((copy / 'train' / 'HR').glob('*.png'))[-1]
    cv2.imwrite(str(gt), cv2.imread(str(gt))[:64, :64])  # gt_size 128: basicsr failed when a batch drew it
    lq = copy / 'train' / 'LR_bicubic' / 'X4' / gt.name
    cv2.imwrite(str(lq), cv2.imread(str(lq))[:16, :16])
    point_at(opt, copy)


def _crop_border_larger_than_the_images(opt, root, data):
    opt['val']['metrics']['psnr']['crop_border'] = 32  # coffee: 64×64, basicsr's PSNR of an empty crop: nan


def _resume_state_folder(opt, root, data):
    (root / 'experiments' / 'bad' / 'training_states').mkdir(parents=True)
    opt['path']['resume_state'] = str(root / 'experiments' / 'bad' / 'training_states')


def _resume_state_network(opt, root, data):
    models = root / 'experiments' / 'bad' / 'models'
    models.mkdir(parents=True)
    torch.save({'params': build_network(deepcopy(TINY_RRDB)).state_dict()}, models / 'net_g_4.pth')
    opt['path']['resume_state'] = str(models / 'net_g_4.pth')  # basicsr: KeyError: 'iter'


CASES = {
    'metric option typo': (
        _metric_typo,
        r"unknown option 'crop_bordr' for metric calculate_psnr \(option val\.metrics\.psnr\): "
        r"did you mean 'crop_border'",
    ),
    'top-level typo': (_top_level_typo, r"unknown option 'manual_sead' at the top level: did you mean 'manual_seed'\?"),
    'dataset key typo': (_dataset_typo, r"unknown option 'gt_sise' in datasets\.train: did you mean 'gt_size'\?"),
    'train key typo': (_train_typo, r"unknown option 'ema_decy' in train: did you mean 'ema_decay'\?"),
    'test set in a training file': (
        _test_set_in_training,
        r'^datasets\.test_1: a training run reads datasets\.train and datasets\.val\* only$',
    ),
    'optimizer key typo': (
        _optimizer_typo,
        r"^unknown option 'betas_' for Adam \(option train\.optim_g\): did you mean 'betas'\? it takes lr, betas, eps,",
    ),
    'path key typo': (
        _path_typo,
        r"unknown option 'pretrain_netwrk_g' in path: did you mean 'pretrain_network_g'\?",
    ),
    'logger value type': (_logger_type, r"option logger\.print_freq: input should be a valid integer.*, got 'often'$"),
    'boolean value type': (_bool_type, r"option datasets\.train\.use_hflip: input should be a valid boolean.*'maybe'$"),
    'dist backend': (
        _dist_backend,
        r"option dist_params\.backend: input should be 'nccl', 'gloo' or 'mpi', got 'ncl'; did you mean 'nccl'\?$",
    ),
    'negative loss weight': (
        _negative_loss_weight,
        r'^option train\.perceptual_opt\.perceptual_weight must be a finite number ≥ 0, got -1$',
    ),
    'NaN loss weight': (
        _nan_loss_weight,
        r'^option train\.aesop_opt\.loss_weight must be a finite number ≥ 0, got nan$',
    ),
    'infinite GAN loss weight': (
        _infinite_gan_weight,
        r'^option train\.gan_opt\.loss_weight must be a finite number ≥ 0, got inf$',
    ),
    'negative layer weight': (
        _negative_layer_weight,
        r'^option train\.perceptual_opt\.layer_weights\.conv5_4 must be a finite number ≥ 0, got -0\.1$',
    ),
    'negative crop_border': (
        _negative_crop_border,
        r'^option val\.metrics\.psnr\.crop_border must be an integer ≥ 0, got -4$',
    ),
    'gt_size larger than the images': (
        _gt_size_larger_than_the_images,
        r'^datasets\.train\.gt_size 512 is larger than .*/train/HR/\w+\.png \(128×128, option '
        r'datasets\.train\.dataroot_gt\) and \d+ more: lower gt_size, or leave the smaller images out$',
    ),
    'one image smaller than gt_size': (
        _one_image_smaller_than_gt_size,
        r'^datasets\.train\.gt_size 128 is larger than .*/data/train/HR/chelsea_s\d+\.png \(64×64, option '
        r'datasets\.train\.dataroot_gt\): lower gt_size, or leave the smaller images out$',
    ),
    'crop_border larger than the images': (
        _crop_border_larger_than_the_images,
        r'^option val\.metrics\.psnr\.crop_border 32 leaves 0×0 px of .*/val/HR/coffee\.png \(64×64, '
        r'datasets\.val\.dataroot_gt\) for calculate_psnr, which needs 1 px a side: at most 31$',
    ),
    'resume_state is a folder': (
        _resume_state_folder,
        r'^.*/experiments/bad/training_states \(option path\.resume_state\) is a folder: name a training state '
        r'\(training_states/<iter>\.state\) or use --auto_resume$',
    ),
    'resume_state is a network': (
        _resume_state_network,
        r"^.*/experiments/bad/models/net_g_4\.pth \(option path\.resume_state\) is a network's weights, not a "
        r'training state \(training_states/<iter>\.state\): to start from these weights, set path\.pretrain_network_g',
    ),
    'lmdb backend on a folder': (
        _lmdb_folder,
        r'datasets\.train\.dataroot_gt: .* is not an LMDB database \(no data\.mdb\)',
    ),
    'symlink loop': (_symlink_loop, r'symlink loop under .*val/HR: .*val/HR/loop is .*val/HR again'),
    'file symlink loop': (
        _file_symlink_loop,
        r'datasets\.train\.dataroot_lq: .*train/LR_bicubic/X4/a\.png: a symlink loop \(it leads back to itself '
        r'through b\.png\) and 1 more \(scripts/check_dataset\.py lists them all\)$',
    ),
    'broken symlink': (
        _broken_symlink,
        r'datasets\.val\.dataroot_gt: .*val/HR/gone\.png: a broken symlink \(its target .*moved/gone\.png does not '
        r'exist\)',
    ),
    'total_iter 0': (_zero_iterations, r'option train\.total_iter must be > 0, got 0$'),
    'batch larger than the dataset': (
        _batch_too_large,
        r'datasets\.train: \d+ images \(x dataset_enlarge_ratio\) for a batch of 1000: no iteration would run',
    ),
    'gt_size not a multiple of scale': (
        _gt_size,
        r'datasets\.train\.gt_size \(126\) must be a multiple of scale \(4\)',
    ),
    'optimizer that needs a closure': (
        _lbfgs,
        r'option train\.optim_g\.type: optimizer LBFGS cannot be used: it needs a closure that re-evaluates the '
        r'loss at each step, and the training step calls step\(\) without one; use one of .*\bAdamW\b.*\bSGD$',
    ),
    'optimizer option of another optimizer': (
        _sgd_with_betas,
        r"^unknown option 'betas' for SGD \(option train\.optim_d\): it takes lr, momentum, dampening, weight_decay, "
        r'nesterov,',
    ),
    'scheduler typo': (
        _scheduler_typo,
        r"^unknown scheduler type 'MultiStepLRR' \(option train\.scheduler\.type\): did you mean 'MultiStepLR'\? ",
    ),
    'scheduler that needs a metric': (
        _plateau,
        r'^option train\.scheduler\.type: scheduler ReduceLROnPlateau cannot be used: it needs a metric at each step',
    ),
    'scheduler option typo': (
        _scheduler_option,
        r"^unknown option 'T_mx' for CosineAnnealingLR \(option train\.scheduler\): did you mean 'T_max'\? it "
        r'takes T_max, eta_min$',
    ),
    'GT without LR': (
        _missing_lr_image,
        r'datasets\.train: (\d+) GT images in .* but (\d+) LR images in .*; e\.g\. no LR image for \w+\.png',
    ),
    'resume_state of another experiment': (
        _foreign_resume_state,
        r'path\.resume_state .*/other/training_states/1\.state is not a state of this experiment',
    ),
    'missing AE checkpoint': (
        _missing_ae,
        r'file not found: .*experiments/none/ae\.pth \(option train\.aesop_opt\.pretrained\)',
    ),
    'tensors do not fit': (
        _mismatch,
        r'weights in .*ae\.pth do not fit AesopAutoEncoder: '
        r'decoder\.conv_first\.weight has shape \(8, 3, 3, 3\) in the file but \(16, 3, 3, 3\)',
    ),
    'missing params_ema': (_no_ema_key, r"checkpoint .*ae\.pth has no key 'params_ema'; it has: params$"),
    'empty dataset folder': (
        _empty_dataset,
        r'dataset folder is empty: .*empty \(option datasets\.train\.dataroot_gt\)',
    ),
    'corrupt image': (
        _corrupt_image,
        r'datasets\.train\.dataroot_gt: .*train/HR/\w+\.png: not an image or unreadable header: .* and \d+ more '
        r'\(scripts/check_dataset\.py lists them all\)',
    ),
    'empty image file': (
        _empty_image,
        r'datasets\.val\.dataroot_lq: .*val/LR_bicubic/X4/coffee\.png: empty file',
    ),
    'LR/GT size mismatch': (
        _size_mismatch,
        r'GT/LR sizes do not match scale 4: .*HR/\w+\.png \(128×128\) and .*X4/\w+\.png \(16×16\)',
    ),
    'unknown type': (_unknown_type, r"unknown arch type 'RRDBNett' \(option network_g\.type\); did you mean RRDBNet"),
    'unknown arch option': (
        _unknown_key,
        r"unknown option 'num_blocks' for RRDBNet \(option network_g\): did you mean 'num_block'\?",
    ),
    'unknown loss option': (
        _unknown_loss_key,
        r"unknown option 'weight' for AesopLoss \(option train\.aesop_opt\): did you mean 'loss_weight'\?",
    ),
    'AE scale != scale': (_ae_scale, r'the auto-encoder at train\.aesop_opt\.autoencoder works at ×2 but scale is 4'),
    'pickled code': (
        _pickled_code,
        r'refused to load .*evil\.pth \(option path\.pretrain_network_g\): it needs arbitrary unpickling',
    ),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input_is_one_clear_line(case, tiny_data, tmp_path, monkeypatch, capsys):
    mutate, expected = CASES[case]
    opt = gan_opt(tiny_data, tmp_path)
    mutate(opt, tmp_path, tiny_data)
    assert __import__('re').search(expected, run_main(opt, tmp_path, monkeypatch, capsys))
    assert not (tmp_path / 'pwned').exists()


def test_the_traceback_is_there_when_asked_for(tiny_data, tmp_path, monkeypatch):
    opt = gan_opt(tiny_data, tmp_path)
    _unknown_type(opt, tmp_path, tiny_data)
    monkeypatch.setenv('AESOP_TRACEBACK', '1')
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    monkeypatch.setattr(sys, 'argv', ['aesop/train.py', '-opt', str(write_yaml(opt, tmp_path / 'opt.yml'))])
    with pytest.raises(AesopError, match="unknown arch type 'RRDBNett'"):
        aesop.train.main()


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'net_g_latest.pth'
    atomic_save({'params': {'w': torch.ones(2)}}, path)

    def dies_midway(obj, f):
        f.write(b'half a checkpoint')
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', dies_midway)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({'params': {'w': torch.zeros(2)}}, path)
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(path)['params']['w'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['net_g_latest.pth']


def test_placeholder_paths_of_a_paper_option_file(tmp_path, monkeypatch, capsys):
    """Every missing file in one message (basicsr, and this project before, stopped at the first): one line each
    with the option, the path and where to get the file."""
    message = run_main(load_yaml(REPO / 'options' / 'train_aesop_rrdb.yml'), tmp_path, monkeypatch, capsys)
    data = 'edit the option file to point at your data (see docs/training.md#train-for-real-df2k-several-gpus)'
    assert message.splitlines() == [
        '6 files or folders the run needs are missing:',
        f'  dataset folder not found: {tmp_path}/datasets/DF2K/HR_sub (option datasets.train.dataroot_gt): {data}',
        f'  dataset folder not found: {tmp_path}/datasets/DF2K/LR_bicubic/X4 (option datasets.train.dataroot_lq): '
        f'{data}',
        f'  dataset folder not found: {tmp_path}/datasets/DIV2K/DIV2K_valid_HR (option datasets.val.dataroot_gt): '
        f'{data}',
        f'  dataset folder not found: {tmp_path}/datasets/DIV2K/DIV2K_valid_LR_bicubic/X4 '
        f'(option datasets.val.dataroot_lq): {data}',
        f'  file not found: {tmp_path}/experiments/pretrained_models/ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth '
        "(option path.pretrain_network_g): download it from BasicSR's model zoo, "
        "https://github.com/XPixelGroup/BasicSR/blob/master/docs/ModelZoo.md (ESRGAN's RRDB_PSNR_x4.pth in BasicSR's "
        'keys; that one: https://github.com/xinntao/ESRGAN, a Google Drive link in its README)',
        f'  file not found: {tmp_path}/experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth '
        '(option train.aesop_opt.pretrained): an earlier stage writes it: python aesop/train.py -opt '
        'options/train_ae.yml',
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['opt.yml']  # nothing made


def ae_opt(data, name, total_iter, save_freq):
    opt = point_at(load_yaml(DEMO / 'train_ae.yml'), data)
    opt.update(name=name)
    opt['network_g'] = deepcopy(TINY_AE)
    opt['path']['pretrain_network_decoder'] = None
    opt['train'].update(total_iter=total_iter, freeze_decoder=0)
    opt['datasets']['train'].update(batch_size_per_gpu=1)
    opt['val']['val_freq'] = 10**6
    opt['logger'].update(print_freq=1, save_checkpoint_freq=save_freq, use_tb_logger=False)
    return opt


def _train_command(opt_file, root, *args):
    env = {'AESOP_ROOT': str(root), 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'AESOP_RANDOM_BACKBONES': '1'}
    return [sys.executable, str(REPO / 'aesop' / 'train.py'), '-opt', str(opt_file), *args], env


def launch(opt_file, root, *args) -> subprocess.Popen:
    """``python aesop/train.py -opt …`` as a process of its own (stdout and stderr together): for a test that kills
    it or holds its lock from another process."""
    cmd, env = _train_command(opt_file, root, *args)
    return spawn(cmd, cwd=root, env=env)


def train(opt_file, root, *args) -> subprocess.CompletedProcess:
    """``python aesop/train.py -opt …`` run in this process (:func:`conftest.run_python`), stderr into stdout."""
    cmd, env = _train_command(opt_file, root, *args)
    return run_python(cmd, cwd=root, env=env, merge_stderr=True)


@pytest.mark.heavy
def test_kill_9_then_auto_resume_finishes_from_the_last_complete_state(tiny_data, tmp_path):
    opt_file = write_yaml(ae_opt(tiny_data, 'killed', 400, 2), tmp_path / 'ae.yml')
    proc = launch(opt_file, tmp_path)
    states = tmp_path / 'experiments' / 'killed' / 'training_states'
    deadline = time.time() + 120
    while len(list(states.glob('*.state'))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = max(int(p.stem) for p in states.glob('*.state'))
    models = tmp_path / 'experiments' / 'killed' / 'models'
    before = torch.load(models / f'net_g_{last}.pth', weights_only=True)

    opt = ae_opt(tiny_data, 'killed', last + 2, 2)
    out = train(write_yaml(opt, opt_file), tmp_path, '--auto_resume').stdout
    assert f'Resuming training from epoch: 0, iter: {last}.' in out
    assert f'iter:{last + 1:8,d}' in out and 'End of training' in out
    after = torch.load(models / f'net_g_{last + 2}.pth', weights_only=True)
    assert set(after) == {'params', 'params_ema'} and not torch.equal(
        after['params_ema']['decoder.conv_last.weight'], before['params_ema']['decoder.conv_last.weight']
    )
    assert not list(models.glob('.*tmp*'))


def test_a_non_finite_loss_stops_training_and_saves_nothing(tiny_data, tmp_path):
    opt_file = write_yaml(ae_opt(tiny_data, 'nan', 2, 1), tmp_path / 'ae.yml')
    assert train(opt_file, tmp_path).returncode == 0
    opt = ae_opt(tiny_data, 'nan', 4, 1)
    opt['train']['pixel_opt']['loss_weight'] = 1e300  # finite (a NaN weight is refused at start-up), inf in float32
    proc = train(write_yaml(opt, opt_file), tmp_path, '--auto_resume')
    out = proc.stdout
    assert proc.returncode == 2
    errors = [line for line in out.splitlines() if line.startswith('aesop: error: ')]
    assert errors == [errors[0]] and errors[0].startswith(
        'aesop: error: loss l_pix is inf at iteration 3: training stopped'
    )
    exp = tmp_path / 'experiments' / 'nan'
    assert sorted(p.name for p in (exp / 'models').iterdir()) == ['net_g_1.pth', 'net_g_2.pth', 'net_g_latest.pth']
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['1.state', '2.state']
    assert errors[0].endswith(f'the newest finite checkpoint is {exp / "models" / "net_g_2.pth"}')


def test_a_diverging_run_never_writes_a_checkpoint_whose_forward_is_not_finite(tiny_data, tmp_path):
    opt = ae_opt(tiny_data, 'diverge', 4, 1)
    opt['train']['optim_g']['lr'] = 1e6
    opt['train']['pixel_at_LR_opt']['loss_weight'] = 0
    proc = train(write_yaml(opt, tmp_path / 'ae.yml'), tmp_path)
    out = proc.stdout
    assert proc.returncode == 2, out
    error = next(line for line in out.splitlines() if line.startswith('aesop: error: '))
    assert error == (  # weights of ~1e6 are finite; their forward is not: refused before the first save
        "aesop: error: net_g's output on the last training batch is not finite at iteration 1: training stopped "
        'and nothing was saved; no finite checkpoint of this run exists'
    )
    net = build_network(deepcopy(TINY_AE)).eval()
    for path in (tmp_path / 'experiments' / 'diverge' / 'models').glob('net_g_*.pth'):
        for key in ('params', 'params_ema'):
            net.load_state_dict(torch.load(path, weights_only=True)[key])
            with torch.no_grad():
                assert torch.isfinite(net(torch.rand(1, 3, 32, 32))).all(), (path, key)


def test_resume_needs_no_initial_weights_and_refuses_another_psi(tiny_data, tmp_path):
    opt = gan_opt(tiny_data, tmp_path)
    init = tmp_path / 'init.pth'
    torch.save({'params_ema': build_network(deepcopy(TINY_RRDB)).state_dict()}, init)
    opt['path']['pretrain_network_g'] = str(init)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=1, use_tb_logger=False)
    opt['val']['val_freq'] = 10**6
    opt_file = write_yaml(opt, tmp_path / 'gan.yml')
    assert train(opt_file, tmp_path).returncode == 0

    init.unlink()  # the initial weights are not read on resume
    torch.manual_seed(7)  # ψ replaced, e.g. by re-running the AE stage
    torch.save({'params_ema': build_network(TINY_AE).state_dict()}, tmp_path / 'ae.pth')
    opt['train']['total_iter'] = 2
    proc = train(write_yaml(opt, opt_file), tmp_path, '--auto_resume')
    out = proc.stdout
    assert proc.returncode == 2, out
    error = next(line for line in out.splitlines() if line.startswith('aesop: error: '))
    assert re.fullmatch(
        r'aesop: error: ψ of l_g_aesop changed since the training state was written: .*ae\.pth had sha256 '
        r'[0-9a-f]{16}…, .*ae\.pth has [0-9a-f]{16}…; restore that file or set train\.allow_psi_change: true',
        error,
    ), error

    opt['train']['allow_psi_change'] = True
    opt['train']['optim_g']['lr'] = 5e-5  # the file's lr wins over the state's 1e-4 (basicsr kept 1e-4), reported
    proc = train(write_yaml(opt, opt_file), tmp_path, '--auto_resume')
    out = proc.stdout
    assert proc.returncode == 0 and 'allow_psi_change: true' in out and 'End of training' in out, out
    assert (
        "resuming at iteration 1 with the option file's optimizers and schedule, not the training state's: "
        'train.optim_g: lr 0.0001 → 5e-05; lr now 5e-05\n'
    ) in out
    assert 'iter:       2, lr:(5.000e-05,)' in out


@pytest.mark.heavy
def test_a_second_run_on_a_live_experiment_is_refused_and_a_stale_lock_taken_over(tiny_data, tmp_path):
    opt_file = write_yaml(ae_opt(tiny_data, 'busy', 10**6, 10**6), tmp_path / 'ae.yml')
    first = launch(opt_file, tmp_path)
    lock = tmp_path / 'experiments' / '.busy.lock'
    deadline = time.time() + 120
    while not (tmp_path / 'experiments' / 'busy' / 'models').is_dir() and time.time() < deadline:
        time.sleep(0.1)
    try:
        assert lock.read_text().split()[0] == str(first.pid)
        second = train(opt_file, tmp_path)  # here: the lock is held by another process, the first run
        out = second.stdout
        assert second.returncode == 2, out
        assert re.search(
            rf'aesop: error: experiment busy is in use by pid {first.pid} on \S+ \(lock .*\.busy\.lock\)', out
        )
        assert first.poll() is None and not list((tmp_path / 'experiments').glob('busy_archived_*'))
    finally:
        first.kill()
        first.wait()
    opt_file = write_yaml(ae_opt(tiny_data, 'busy', 1, 1), opt_file)
    third = train(opt_file, tmp_path)  # the killed run's lock is stale: taken over
    out = third.stdout
    assert third.returncode == 0 and 'stale lock' in out, out
    assert not lock.exists()  # released at exit (in a process's: test_racing_takeovers_of_a_stale_lock_…)


def test_an_unwritable_root_is_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    root = tmp_path / 'readonly'
    root.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: deny like a read-only mount would
        real_access = os.access
        monkeypatch.setattr(
            aesop.pipeline.os,
            'access',
            lambda p, mode: not (mode & os.W_OK and Path(p) == root) and real_access(p, mode),
        )
    else:
        root.chmod(0o555)
    monkeypatch.setenv('AESOP_ROOT', str(root))
    monkeypatch.setattr(
        sys, 'argv', ['train.py', '-opt', str(write_yaml(gan_opt(tiny_data, tmp_path), tmp_path / 'o.yml'))]
    )
    try:
        with pytest.raises(SystemExit) as exit_info:
            aesop.train.main()
    finally:
        root.chmod(0o755)
    assert exit_info.value.code == 2
    message = f'aesop: error: cannot write to {root}: run from a writable folder or set AESOP_ROOT to one\n'
    assert capsys.readouterr().err.endswith(message)
    assert list(root.iterdir()) == []  # nothing created


RACER = """
import sys, time, types
aesop = sys.modules['aesop'] = types.ModuleType('aesop')  # the package without its __init__ (torch, basicsr):
aesop.__path__ = [sys.argv[2]]  # the lock needs neither, and 4 processes importing torch took a minute
from aesop.errors import AesopError
from aesop.runlock import hold_experiment
try:
    hold_experiment(sys.argv[1])
except AesopError as err:
    print('refused', err)
else:
    print('held')
    time.sleep(3)
"""


@pytest.mark.heavy
def test_racing_takeovers_of_a_stale_lock_leave_one_holder(tmp_path):
    lock = tmp_path / 'experiments' / '.race.lock'
    lock.parent.mkdir()
    lock.write_text('999999 a-host-that-died 2026-01-01T00:00:00\n')  # left by a killed run: no flock on it
    racer = [sys.executable, '-c', RACER, str(tmp_path / 'experiments' / 'race'), str(REPO / 'aesop')]
    racers = [spawn(racer) for _ in range(4)]
    outputs = [racer.communicate(timeout=120)[0] for racer in racers]
    assert sum('held' in out.splitlines() for out in outputs) == 1, outputs  # the winner also warns: taken over
    assert sum(out.startswith('refused experiment race is in use by pid') for out in outputs) == 3, outputs
    assert not lock.exists()  # the winner released it at exit


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try:
            fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.ddp
@pytest.mark.skipif(not Path('/proc').is_dir(), reason='reads /proc')
def test_workers_stop_when_the_torchrun_agent_is_killed(tiny_data, tmp_path):
    torchrun = shutil.which('torchrun', path=str(Path(sys.executable).parent))
    opt_file = write_yaml(ae_opt(tiny_data, 'orphans', 10**6, 10**6), tmp_path / 'ae.yml')
    env = {'AESOP_ROOT': str(tmp_path), 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'AESOP_RANDOM_BACKBONES': '1'}
    cmd = [torchrun, '--nproc_per_node=2', '--master_port=0', '--rdzv_backend=c10d', '--rdzv_endpoint=localhost:0']
    cmd += [str(REPO / 'aesop' / 'train.py'), '-opt', str(opt_file), '--launcher', 'pytorch']
    agent = subprocess.Popen(
        cmd, cwd=tmp_path, env=python_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while not (tmp_path / 'experiments' / 'orphans' / 'models').is_dir() and time.time() < deadline:
        time.sleep(0.2)
    workers = _children(agent.pid)
    assert len(workers) == 2 and agent.poll() is None
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    deadline = time.time() + 60
    while any(Path(f'/proc/{pid}').exists() and 'Z' not in _state(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.5)
    alive = [pid for pid in workers if Path(f'/proc/{pid}').exists() and 'Z' not in _state(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, 'workers still training a minute after their agent was killed'


def _state(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return 'Z'


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno

    path = tmp_path / 'net_g_latest.pth'
    atomic_save({'params': {'w': torch.ones(2)}}, path)

    def disk_full(obj, f):
        f.write(b'part')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    with pytest.raises(AesopError, match=r'cannot write .*net_g_latest\.pth: No space left on device \(the previous'):
        atomic_save({'params': {'w': torch.zeros(2)}}, path)
    monkeypatch.undo()
    assert torch.equal(read_checkpoint(path)['params']['w'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['net_g_latest.pth']


def test_temporaries_of_killed_saves_are_removed_at_the_next_start(tmp_path):
    from aesop.runlock import remove_stale_temporaries

    models = tmp_path / 'exp' / 'models'
    models.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale, live = models / f'.net_g_5.pth.tmp{dead.pid}', models / f'.net_g_6.pth.tmp{os.getpid()}'
    stale.write_bytes(b'half')
    live.write_bytes(b'being written')
    assert remove_stale_temporaries(tmp_path / 'exp') == [stale]
    assert not stale.exists() and live.exists()


def test_launcher_pytorch_outside_torchrun_is_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR'):
        monkeypatch.delenv(name, raising=False)
    opt = gan_opt(tiny_data, tmp_path)
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    argv = ['aesop/train.py', '-opt', str(write_yaml(opt, tmp_path / 'opt.yml')), '--launcher', 'pytorch']
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as exit_info:
        aesop.train.main()
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith('aesop: error: --launcher pytorch needs the process group torchrun sets up')
    )


def test_an_image_that_does_not_decode_is_skipped_in_training(tiny_data, tmp_path):
    """Its header is fine (the start-up scan passes), its pixels are cut off: a warning, not a crash."""
    copy = shutil.copytree(tiny_data, tmp_path / 'data')
    kept = sorted((copy / 'train' / 'HR').glob('*.png'))[:2]
    for folder in (copy / 'train' / 'HR', copy / 'train' / 'LR_bicubic' / 'X4'):
        for path in folder.glob('*.png'):
            if path.name not in {k.name for k in kept}:
                path.unlink()
    broken = kept[0]
    broken.write_bytes(broken.read_bytes()[:200])
    opt = point_at(ae_opt(copy, 'skips', 4, 4), copy)  # 2 pairs, batch 1: the broken one is drawn
    opt['datasets']['train'].update(dataset_enlarge_ratio=1, num_worker_per_gpu=0)
    out = train(write_yaml(opt, tmp_path / 'ae.yml'), tmp_path).stdout
    assert 'End of training' in out, out
    assert re.search(
        rf'cannot read image {re.escape(str(broken))}: missing, unreadable or corrupt: skipped \(1 skipped', out
    )
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, str(REPO / 'scripts' / 'check_dataset.py'), str(copy / 'train' / 'HR')]
    checker = run_python(cmd, cwd=tmp_path, env=env)
    assert checker.returncode == 1 and f'{broken}: does not decode' in checker.stdout, checker.stdout + checker.stderr


def test_check_dataset_lists_looping_links(tiny_data, tmp_path):
    folder = shutil.copytree(tiny_data / 'val' / 'HR', tmp_path / 'HR')
    (folder / 'a.png').symlink_to('b.png')
    (folder / 'b.png').symlink_to('a.png')
    cmd = [sys.executable, str(REPO / 'scripts' / 'check_dataset.py'), str(folder)]
    checker = run_python(cmd, cwd=tmp_path, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    lines = checker.stdout.splitlines()
    assert checker.returncode == 1 and lines == [
        f'{folder / "a.png"}: a symlink loop (it leads back to itself through b.png)',
        f'{folder / "b.png"}: a symlink loop (it leads back to itself through a.png)',
    ], checker.stdout + checker.stderr
    assert checker.stderr.splitlines()[-1] == '1 of 3 images decode; 2 do not'


def test_testing_a_checkpoint_with_nan_weights_stops_with_one_line(tiny_data, tmp_path, monkeypatch, capsys):
    state = build_network(deepcopy(TINY_RRDB)).state_dict()
    state['conv_last.bias'][0] = float('nan')
    torch.save({'params_ema': state}, tmp_path / 'nan.pth')
    opt = point_at(load_yaml(DEMO / 'test_aesop.yml'), tiny_data)
    opt['network_g'] = deepcopy(TINY_RRDB)
    opt['path']['pretrain_network_g'] = str(tmp_path / 'nan.pth')
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    monkeypatch.setattr(sys, 'argv', ['aesop/test.py', '-opt', str(write_yaml(opt, tmp_path / 'opt.yml'))])
    with pytest.raises(SystemExit) as exit_info:
        aesop.test.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'aesop: error: the output for coffee (demo_val) is not finite (NaN or inf): the weights of network_g '
        f'({tmp_path / "nan.pth"}) are broken'
    )


def test_the_header_scan_takes_huge_images_and_shared_symlinked_folders(tmp_path):
    from PIL import Image

    from aesop.data.scan import dataset_files, scan_images

    (tmp_path / 'shared').mkdir()
    Image.new('RGB', (8, 8)).save(tmp_path / 'shared' / 'a.png')
    (tmp_path / 'root').mkdir()
    for name in ('x', 'y'):  # two links to one folder: not a loop
        (tmp_path / 'root' / name).symlink_to(tmp_path / 'shared')
    dataset = {'type': 'AesopRealESRGANDataset', 'dataroot_gt': str(tmp_path / 'root')}
    assert scan_images(dataset_files(dataset), where='datasets.train') == 2
    huge = Image.new('1', (20000, 20000))  # above Pillow's decompression-bomb limit, but an image
    huge.save(tmp_path / 'shared' / 'huge.png')
    assert scan_images(dataset_files(dataset), where='datasets.train') == 4


def test_realesrgan_dataset_skips_an_image_that_does_not_decode(tiny_data, tmp_path, capfd):
    from basicsr.data import build_dataset

    copy = shutil.copytree(tiny_data / 'train' / 'HR', tmp_path / 'hr')
    broken = sorted(copy.glob('*.png'))[0]
    broken.write_bytes(broken.read_bytes()[:200])
    opt = load_yaml(REPO / 'options' / 'train_aesop_realworld.yml')['datasets']['train']
    opt.update(meta_info=None, dataroot_gt=str(copy), gt_size=64, phase='train', scale=4)
    dataset = build_dataset(opt)
    logging.getLogger('basicsr').addHandler(logging.StreamHandler())
    item = dataset[dataset.paths.index(str(broken))]
    assert item['gt'].shape[0] == 3
    err = capfd.readouterr().err
    assert f'cannot read image {broken}' in err and 'skipped (1 skipped' in err


@pytest.mark.ddp
def test_a_start_up_error_under_torchrun_is_printed_once(tiny_data, tmp_path):
    """aesop-torchrun, 2 workers: rank 0's error line alone (rank 1 waits a grace, and the agent stops it first:
    the same under plain torchrun, whose agent then adds its ChildFailedError banner), status 2."""
    cmd = [sys.executable, '-m', 'aesop.launch']  # the aesop-torchrun console script
    opt = ae_opt(tiny_data, 'once', 2, 2)
    opt['train']['total_iter'] = 0
    env = {'AESOP_ROOT': str(tmp_path), 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'AESOP_RANDOM_BACKBONES': '1'}
    cmd += ['--nproc_per_node=2', '--master_port=0', '--rdzv_backend=c10d', '--rdzv_endpoint=localhost:0']
    cmd += [
        str(REPO / 'aesop' / 'train.py'),
        '-opt',
        str(write_yaml(opt, tmp_path / 'ae.yml')),
        '--launcher',
        'pytorch',
    ]
    proc = run_subprocess(cmd, cwd=tmp_path, env=env)  # torchrun and all its workers: processes of their own
    output = (proc.stdout + proc.stderr).strip().splitlines()
    lines = [line for line in output if 'aesop: error:' in line]
    assert len(lines) == 1, output  # rank 1 waits: stopped by the agent before it prints
    assert lines[0] == 'aesop: error: option train.total_iter must be > 0, got 0', output
    assert proc.returncode == 2 and output == lines  # nothing else


def test_an_error_of_another_rank_alone_is_printed_after_a_grace(monkeypatch, capsys):
    from aesop import cli

    def fails(_):
        raise AesopError('only here')

    slept = []
    monkeypatch.setattr(cli.time, 'sleep', slept.append)
    monkeypatch.setenv('TORCHELASTIC_RUN_ID', 'x')
    monkeypatch.setenv('RANK', '1')
    assert cli.cli_main(fails) == 2
    assert slept == [cli.RANK_GRACE_S] and capsys.readouterr().err == 'aesop: error: (rank 1) only here\n'
    monkeypatch.setenv('RANK', '0')
    assert cli.cli_main(fails) == 2 and slept == [cli.RANK_GRACE_S]  # rank 0 prints at once
    assert capsys.readouterr().err == 'aesop: error: only here\n'


def stop_when_logged(proc: subprocess.Popen, iteration: int, signum: int) -> str:
    """Read the run's output until it logs ``iteration`` (print_freq 1), then send it ``signum``; its whole output."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        found = re.search(r'\[epoch:\s*\d+, iter:\s*([\d,]+)', line)
        if found and int(found.group(1).replace(',', '')) >= iteration:
            proc.send_signal(signum)
            break
    rest, _ = proc.communicate(timeout=120)
    return ''.join(lines) + rest


@pytest.mark.heavy
def test_a_stop_signal_saves_where_it_stopped_and_the_resumed_run_equals_an_uninterrupted_one(tiny_data, tmp_path):
    """SIGUSR1 (Slurm's early warning; SIGTERM: the 2-process test below; SIGINT: tests/test_resume.py) at a random
    iteration: the iteration under way ends, its networks and training state are saved, the process exits with
    128 + signal; --auto_resume then gives, at a later iteration, the weights of a run that was never stopped
    (seeded, CPU, data in the main process: the same batches, crops and random streams)."""
    import random

    signum, stop_at = signal.SIGUSR1, random.randint(2, 8)
    opt = ae_opt(tiny_data, 'stopped', 10**6, 10**6)  # no checkpoint but the stop's
    opt['datasets']['train']['num_worker_per_gpu'] = 0
    opt['val']['val_freq'] = 3  # validation must not change the training's random streams
    opt_file = write_yaml(opt, tmp_path / 'ae.yml')
    proc = launch(opt_file, tmp_path)
    out = stop_when_logged(proc, stop_at, signum)
    assert proc.returncode == 128 + signum, out
    exp = tmp_path / 'experiments' / 'stopped'
    [state] = list((exp / 'training_states').glob('*.state'))
    stopped = int(state.stem)
    assert stopped >= stop_at and f'{signal.Signals(signum).name}: stopped after iteration {stopped}, saved' in out
    assert (exp / 'models' / f'net_g_{stopped}.pth').is_file() and not list((exp / 'models').glob('.*tmp*'))

    final = stopped + 3
    opt['train']['total_iter'] = final
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the resumed and the whole run in this process, on one thread as the stopped one
    try:
        resumed = train(write_yaml(opt, opt_file), tmp_path, '--auto_resume').stdout
        assert f'Resuming training from epoch: 0, iter: {stopped}.' in resumed and 'End of training' in resumed
        opt['name'] = 'never_stopped'
        whole = train(write_yaml(opt, tmp_path / 'whole.yml'), tmp_path)
        assert 'End of training' in whole.stdout and whole.returncode == 0
    finally:
        torch.set_num_threads(threads)
    a = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)  # at `final`
    b = torch.load(tmp_path / 'experiments' / 'never_stopped' / 'models' / 'net_g_latest.pth', weights_only=True)
    for key in ('params', 'params_ema'):
        assert a[key].keys() == b[key].keys() and all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key


def worker_of_rank(agent: int, rank: int) -> int:
    """The pid of torchrun's worker of ``rank`` among the children of the agent ``agent`` (Linux's /proc)."""
    for pid in Path(f'/proc/{agent}/task/{agent}/children').read_text().split():
        environ = Path(f'/proc/{pid}/environ').read_bytes().split(b'\0')
        if f'RANK={rank}'.encode() in environ:
            return int(pid)
    raise AssertionError(f'no worker of rank {rank} under {agent}')


@pytest.mark.ddp
def test_a_signal_to_one_rank_stops_both_at_the_same_iteration_and_the_resumed_run_equals_an_uninterrupted_one(
    tiny_data, tmp_path
):
    """2 gloo processes under aesop-torchrun; SIGTERM to rank 1 alone at a random iteration: both ranks stop after
    the same iteration (they agree on it at every iteration), rank 0 saves there, the launcher exits with 143 and
    one line; --auto_resume under torchrun then equals a 2-process run never stopped."""
    import random

    stop_at = random.randint(2, 6)
    opt = ae_opt(tiny_data, 'stopped_ddp', 10**6, 10**6)
    opt['datasets']['train']['num_worker_per_gpu'] = 0
    opt['num_gpu'] = 0  # gloo on CPU even where CUDA is visible
    opt_file = write_yaml(opt, tmp_path / 'ae.yml')

    def torchrun(opt_file, *args, agent=(sys.executable, '-m', 'aesop.launch')) -> subprocess.Popen:
        cmd, env = _train_command(opt_file, tmp_path, '--launcher', 'pytorch', *args)
        launcher = [*agent, '--nproc_per_node=2', '--rdzv_backend=c10d']
        return spawn([*launcher, '--rdzv_endpoint=localhost:0', *cmd[1:]], cwd=tmp_path, env=env)

    agent = torchrun(opt_file)
    lines = []
    for line in agent.stdout:
        lines.append(line)
        found = re.search(r'\[epoch:\s*\d+, iter:\s*([\d,]+)', line)
        if found and int(found.group(1).replace(',', '')) >= stop_at:
            os.kill(worker_of_rank(agent.pid, 1), signal.SIGTERM)
            break
    out = ''.join(lines) + agent.communicate(timeout=120)[0]
    assert agent.returncode == 143 and 'aesop-torchrun: the workers stopped for SIGTERM' in out, out
    exp = tmp_path / 'experiments' / 'stopped_ddp'
    [state] = list((exp / 'training_states').glob('*.state'))
    stopped = int(state.stem)
    assert stopped >= stop_at and f'SIGTERM: stopped after iteration {stopped}, saved' in out  # rank 0's line
    assert len(read_checkpoint(state)['random']) == 2  # both ranks' random streams

    opt['train']['total_iter'] = stopped + 2
    resumed = torchrun(write_yaml(opt, opt_file), '--auto_resume')
    out = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0 and f'Resuming training from epoch: 0, iter: {stopped}.' in out, out
    opt['name'] = 'never_stopped_ddp'
    plain = shutil.which('torchrun', path=str(Path(sys.executable).parent))  # the reference: a lighter agent
    whole = torchrun(write_yaml(opt, tmp_path / 'whole.yml'), agent=(plain,))
    assert whole.communicate(timeout=120)[0] and whole.returncode == 0
    a = torch.load(exp / 'models' / 'net_g_latest.pth', weights_only=True)
    b = torch.load(tmp_path / 'experiments' / 'never_stopped_ddp' / 'models' / 'net_g_latest.pth', weights_only=True)
    for key in ('params', 'params_ema'):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
