"""Paper 003's option files hold the paper's settings: degradations, the ablations' pretraining, early stopping,
the SwinIR-GAN rows; and the validation split's script."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import REPO, load_yaml, run_python

OPTIONS = REPO / 'options'
FINETUNING = sorted(OPTIONS.glob('finetune_*.yml')) + [OPTIONS / 'demo' / 'finetune_hraware.yml']

# Real-ESRGAN ×4's second-order degradation (Real-ESRGAN's options/train_realesrgan_x4plus.yml), written out here
REAL_ESRGAN_X4 = {
    'resize_prob': [0.2, 0.7, 0.1], 'resize_range': [0.15, 1.5], 'gaussian_noise_prob': 0.5, 'noise_range': [1, 30],
    'poisson_scale_range': [0.05, 3], 'gray_noise_prob': 0.4, 'jpeg_range': [30, 95], 'second_blur_prob': 0.8,
    'resize_prob2': [0.3, 0.4, 0.3], 'resize_range2': [0.3, 1.2], 'gaussian_noise_prob2': 0.5, 'noise_range2': [1, 25],
    'poisson_scale_range2': [0.05, 2.5], 'gray_noise_prob2': 0.4, 'jpeg_range2': [30, 95],
}  # fmt: skip
REAL_ESRGAN_X4_KERNELS = {
    'blur_kernel_size': 21, 'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], 'sinc_prob': 0.1,
    'blur_sigma': [0.2, 3], 'betag_range': [0.5, 4], 'betap_range': [1, 2], 'blur_kernel_size2': 21,
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], 'sinc_prob2': 0.1, 'blur_sigma2': [0.2, 1.5],
    'betag_range2': [0.5, 4], 'betap_range2': [1, 2], 'final_sinc_prob': 0.8,
}  # fmt: skip


@pytest.mark.parametrize(
    'name', ['train_hraware_recon', 'train_hraware_recon_s_only', 'train_hraware_recon_far_only', 'train_lway_recon']
)
def test_pretraining_degrades_as_real_esrgan_x4(name):
    """Sec. 5.1: DIV2K's GT "through the second-order degradation pipeline [32]" (Real-ESRGAN)."""
    opt = load_yaml(OPTIONS / f'{name}.yml')
    assert {k: opt[k] for k in REAL_ESRGAN_X4} == REAL_ESRGAN_X4
    train = opt['datasets']['train']
    assert {k: train[k] for k in REAL_ESRGAN_X4_KERNELS} == REAL_ESRGAN_X4_KERNELS


def parts(opt: dict) -> tuple[bool, bool]:
    """(controller, FAR) of a stage's option file."""
    return 'controller' in opt['train'], 'far_opt' in opt['train']


@pytest.mark.parametrize('path', FINETUNING, ids=lambda p: p.relative_to(OPTIONS).as_posix())
def test_each_finetuning_reads_a_pretraining_with_the_same_controller_and_far(path):
    """Tab. 2's baseline is "without the controller s in the pretraining and finetuning stages"; Fig. 7's networks
    differ by the controller and "neither network utilizes FAR": each finetuning reads its own pretraining."""
    opt = load_yaml(path)
    recon = opt['path']['pretrain_network_recon']
    pretraining = {load_yaml(p)['name']: p for p in (*OPTIONS.glob('train_*recon*.yml'), *OPTIONS.glob('demo/*.yml'))}
    name = recon.split('/')[1]  # experiments/<name>/models/...
    assert name in pretraining, recon
    assert parts(opt) == parts(load_yaml(pretraining[name])), (path.name, pretraining[name].name)


def test_tab2s_rows_have_their_own_pretraining():
    rows = {
        'finetune_lway_realesrgan': (False, False),
        'finetune_hraware_realesrgan_s_only': (True, False),
        'finetune_hraware_realesrgan_far_only': (False, True),
        'finetune_hraware_realesrgan': (True, True),
    }
    recon = {name: load_yaml(OPTIONS / f'{name}.yml')['path']['pretrain_network_recon'] for name in rows}
    assert len(set(recon.values())) == 4
    for name, expected in rows.items():
        assert parts(load_yaml(OPTIONS / f'{name}.yml')) == expected


@pytest.mark.parametrize('path', FINETUNING, ids=lambda p: p.relative_to(OPTIONS).as_posix())
def test_finetuning_stops_early_on_a_split_of_the_target_domain(path):
    """Sec. 5: "we split a validation set from the testing data and use the early stopping strategy"."""
    opt = load_yaml(path)
    rule = opt['val']['save_best']
    assert rule['metric'] in opt['val']['metrics'] and opt['val']['val_freq']
    if rule['metric'] == 'lpips':
        assert opt['val']['metrics']['lpips']['better'] == 'lower'
    if path.parent == OPTIONS:  # the paper's files: the split lists images of the folders finetuning trains on
        val, train = opt['datasets']['val'], opt['datasets']['train']
        assert val['meta_info_file'].startswith(val['dataroot_lq'].rsplit('/', 1)[0])
        assert val['dataroot_lq'] == train['dataroot_lq']


@pytest.mark.parametrize('name', ['test_hraware', 'test_hraware_swinir', 'test_hraware_ntire20', 'demo/test_hraware'])
def test_the_test_files_score_the_early_stopped_generator(name):
    assert load_yaml(OPTIONS / f'{name}.yml')['path']['pretrain_network_g'].endswith('/net_g_best.pth')


# each test file, the finetuning file whose net_g_best.pth it scores
SCORED = {
    'test_hraware': 'finetune_hraware_realesrgan',
    'test_hraware_swinir': 'finetune_hraware_swinir',
    'test_hraware_ntire20': 'finetune_hraware_realesrgan_ntire20',
}


@pytest.mark.parametrize('name', sorted(SCORED))
def test_the_test_files_score_the_held_out_pairs_then_the_whole_set(name):
    """The checkpoint was chosen on the validation split: the first table is every other pair of the test set (the
    remainder split_validation.py writes beside the split), the second the whole set (Tab. 1), labelled so."""
    opt, finetuning = load_yaml(OPTIONS / f'{name}.yml'), load_yaml(OPTIONS / f'{SCORED[name]}.yml')
    assert opt['path']['pretrain_network_g'] == f'experiments/{finetuning["name"]}/models/net_g_best.pth'
    val = finetuning['datasets']['val']
    held_out, whole = opt['datasets']['test_1'], opt['datasets']['test_2']
    assert list(opt['datasets']) == ['test_1', 'test_2']
    for entry in (held_out, whole):
        assert (entry['dataroot_gt'], entry['dataroot_lq']) == (val['dataroot_gt'], val['dataroot_lq'])
    assert held_out['meta_info_file'] == val['meta_info_file'].replace('val_split.txt', 'test_split.txt')
    assert 'meta_info_file' not in whole
    assert held_out['name'].endswith('_heldout') and whole['name'].endswith('_whole')


def differences(a: dict, b: dict, prefix: str = '') -> set[str]:
    """The dotted keys whose values differ between two option trees."""
    keys = set(a) | set(b)
    out = set()
    for key in keys:
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out |= differences(x, y, f'{prefix}{key}.')
        elif x != y:
            out.add(f'{prefix}{key}')
    return out


DATA_KEYS = {
    'datasets.train.name', 'datasets.train.dataroot_lq', 'datasets.val.name', 'datasets.val.dataroot_gt',
    'datasets.val.dataroot_lq', 'datasets.val.meta_info_file',
}  # fmt: skip


def test_tab4s_rows_run_on_ntire20_and_differ_only_in_the_controller():
    """Tab. 4's "n + HQI" row (25.87 / 0.7204 / 0.2369 / 6.137) is Tab. 1's NTIRE20 "+Ours" row: both of Tab. 4's
    finetunings read NTIRE20, the method's file is the RealSR one but for the data, the inverted one differs from it
    only in the controller's form."""
    method, inverse = (
        load_yaml(OPTIONS / f'{n}.yml')
        for n in ('finetune_hraware_realesrgan_ntire20', 'finetune_hraware_realesrgan_inverse')
    )
    realsr = load_yaml(OPTIONS / 'finetune_hraware_realesrgan.yml')
    for opt in (method, inverse):
        assert all(
            opt['datasets'][s][k].startswith('datasets/NTIRE20/')
            for s, k in [('train', 'dataroot_lq'), ('val', 'meta_info_file')]
        )
    assert differences(realsr, method) == {'name'} | DATA_KEYS
    assert differences(method, inverse) == {'name', 'train.controller.form'}
    assert (method['train']['controller']['form'], inverse['train']['controller']['form']) == ('finetune', 'inverse')
    test = load_yaml(OPTIONS / 'test_hraware_ntire20.yml')
    assert all(d['dataroot_lq'].startswith('datasets/NTIRE20/') for d in test['datasets'].values())


@pytest.mark.parametrize('path', FINETUNING, ids=lambda p: p.relative_to(OPTIONS).as_posix())
def test_every_finetuning_file_holds_the_papers_controller(path):
    """Sec. 4.3's n: "the vector n is a C_d-dimensional random vector and n ∼ N(0, I)", as each file reads it once
    loaded (the file's own values, not only the schema's defaults); the files without a controller are Tab. 2's rows
    without s."""
    from aesop.options import load_options

    opt = load_options(str(path), is_train=True)
    if 'controller' not in load_yaml(path)['train']:  # Tab. 2's rows without s
        assert path.stem in {'finetune_lway_realesrgan', 'finetune_lway_swinir', 'finetune_hraware_realesrgan_far_only'}
        return
    assert {k: opt['train']['controller'][k] for k in ('noise', 'noise_std', 'redraw')} == {
        'noise': 'vector',
        'noise_std': 1.0,
        'redraw': True,
    }


# SwinIR's main_test_swinir.py, task real_sr (not the large model): the published real-world ×4 SwinIR-GAN
SWINIR_M_REAL_X4 = {
    'upscale': 4, 'in_chans': 3, 'img_size': 64, 'window_size': 8, 'img_range': 1.0, 'depths': [6] * 6,
    'embed_dim': 180, 'num_heads': [6] * 6, 'mlp_ratio': 2.0, 'upsampler': 'nearest+conv', 'resi_connection': '1conv',
}  # fmt: skip


@pytest.mark.parametrize('name', ['finetune_hraware_swinir', 'finetune_lway_swinir', 'test_hraware_swinir'])
def test_the_swinir_gan_files_build_the_published_real_world_swinir(name):
    """spandrel reads the network's hyper-parameters back from its state dict (as it does from the published file):
    they are the real-world SwinIR-M's, so the published checkpoint fits."""
    from basicsr.archs import build_network
    from spandrel import ModelLoader

    opt = load_yaml(OPTIONS / f'{name}.yml')
    net = build_network(dict(opt['network_g']))
    found = ModelLoader().load_from_state_dict(net.state_dict()).model.hyperparameters
    assert {k: found[k] for k in SWINIR_M_REAL_X4} == SWINIR_M_REAL_X4
    assert opt['path']['param_key_g'] == 'params_ema'  # the published real-world SwinIR files' key


def split(tmp_path, *args: str):
    cmd = [sys.executable, str(REPO / 'scripts' / 'split_validation.py'), *args]
    return run_python(cmd, cwd=tmp_path, env={'PATH': '/usr/bin:/bin', 'OMP_NUM_THREADS': '1'})


def test_the_validation_split_is_drawn_from_the_pairs_and_repeatable(tmp_path):
    gt, lq = tmp_path / 'HR', tmp_path / 'LR'
    gt.mkdir(), lq.mkdir()
    for i in range(8):
        (gt / f'{i}.png').write_bytes(b'')
        if i != 5:  # no LR image: not a pair
            (lq / f'{i}.png').write_bytes(b'')
    (lq / 'notes.txt').write_text('not an image')
    out = tmp_path / 'split.txt'
    proc = split(tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(out), '--count', '3')
    assert proc.returncode == 0, proc.stderr
    names = out.read_text().splitlines()
    assert len(names) == 3 and names == sorted(names) and '5.png' not in names
    assert set(names) <= {f'{i}.png' for i in range(8)}
    held_out = (tmp_path / 'test_split.txt').read_text().splitlines()  # the remainder, beside -o by default
    assert held_out == sorted(held_out) and sorted(names + held_out) == [f'{i}.png' for i in range(8) if i != 5]
    again = split(tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(out), '--count', '3', '--overwrite')
    assert again.returncode == 0 and out.read_text().splitlines() == names  # same folders and seed: same split
    rest = tmp_path / 'sub' / 'rest.txt'
    named = split(
        tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(tmp_path / 'v.txt'), '--rest', str(rest), '--count', '3'
    )
    assert named.returncode == 0 and rest.read_text().splitlines() == held_out
    same = split(tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(rest), '--rest', str(rest), '--count', '3')
    assert same.returncode == 2 and f"the held-out pairs' file {rest} is -o" in same.stderr
    kept = split(tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(tmp_path / 'w.txt'), '--count', '3')
    assert kept.returncode == 2 and f'{tmp_path / "test_split.txt"} exists' in kept.stderr
    assert not (tmp_path / 'w.txt').exists()  # nothing written when either file is refused
    refused = split(tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(out), '--count', '3')
    assert (
        refused.returncode == 2 and refused.stderr.strip() == f'aesop: error: {out} exists: --overwrite to replace it'
    )
    too_many = split(tmp_path, '--gt', str(gt), '--lq', str(lq), '-o', str(tmp_path / 'b.txt'), '--count', '8')
    assert too_many.returncode == 2 and 'share 7 image names (count must be 1-6' in too_many.stderr
    missing = split(tmp_path, '--gt', str(tmp_path / 'nope'), '--lq', str(lq), '-o', str(tmp_path / 'c.txt'))
    assert missing.returncode == 2 and missing.stderr.count('\n') == 1 and '--gt: not a folder' in missing.stderr


def pairs(tmp_path, count: int = 4):
    """HR and LR folders of ``count`` (empty) files of the same names."""
    gt, lq = tmp_path / 'HR', tmp_path / 'LR'
    gt.mkdir(), lq.mkdir()
    for i in range(count):
        (gt / f'{i}.png').write_bytes(b'')
        (lq / f'{i}.png').write_bytes(b'')
    return ['--gt', str(gt), '--lq', str(lq), '--count', '1']


@pytest.mark.parametrize('case', ['out-a-folder', 'out-under-a-file', 'rest-a-folder'])
def test_output_paths_that_are_not_file_paths_are_one_line_and_nothing_is_written(case, tmp_path):
    """``-o dir --overwrite`` with -o a folder, -o under a file, --rest a folder: one line naming the option, before
    the draw (the -o file was written before the --rest one failed)."""
    args = pairs(tmp_path)
    (tmp_path / 'a.txt').write_text('kept')
    (tmp_path / 'dir').mkdir()
    out, rest, expected = {
        'out-a-folder': (tmp_path / 'dir', None, f'-o {tmp_path}/dir is a folder: give a file name'),
        'out-under-a-file': (
            tmp_path / 'a.txt' / 'val.txt',
            None,
            f'-o {tmp_path}/a.txt/val.txt: {tmp_path}/a.txt is a file, not a folder',
        ),
        'rest-a-folder': (
            tmp_path / 'val.txt',
            tmp_path / 'dir',
            f'--rest {tmp_path}/dir is a folder: give a file name',
        ),
    }[case]
    proc = split(tmp_path, *args, '-o', str(out), *(['--rest', str(rest)] if rest else []), '--overwrite')
    assert proc.returncode == 2 and proc.stderr.strip() == f'aesop: error: {expected}', proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['HR', 'LR', 'a.txt', 'dir']
    assert (tmp_path / 'a.txt').read_text() == 'kept' and list((tmp_path / 'dir').iterdir()) == []


def test_a_failed_write_of_the_held_out_pairs_puts_the_split_back(tmp_path, monkeypatch):
    """A full disk at the second file: the first is put back as it was (a new split beside an old remainder would
    score validation images as test images); one line names the file."""
    import errno
    import os

    args = pairs(tmp_path, 6)
    out, rest = tmp_path / 'val.txt', tmp_path / 'test_split.txt'
    assert split(tmp_path, *args, '-o', str(out)).returncode == 0
    before = out.read_bytes(), rest.read_bytes()
    replace = os.replace

    def disk_full_at_the_rest(src, dst):
        if Path(dst).name == rest.name:
            raise OSError(errno.ENOSPC, 'No space left on device')
        replace(src, dst)

    monkeypatch.setattr(os, 'replace', disk_full_at_the_rest)
    proc = split(tmp_path, *args, '-o', str(out), '--seed', '1', '--overwrite')
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f'aesop: error: cannot write {rest}: No space left on device (the previous one is kept); {out} left as before'
    )
    assert (out.read_bytes(), rest.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['HR', 'LR', 'test_split.txt', 'val.txt']


@pytest.mark.timeout(60)
def test_a_named_pipe_and_a_broken_link_among_the_pairs_are_skipped_and_named(tmp_path):
    import os

    args = pairs(tmp_path)
    os.mkfifo(tmp_path / 'HR' / 'rocket.png')
    (tmp_path / 'LR' / 'rocket.png').write_bytes(b'')
    (tmp_path / 'HR' / 'gone.png').symlink_to(tmp_path / 'moved.png')
    (tmp_path / 'LR' / 'gone.png').write_bytes(b'')
    out = tmp_path / 'val.txt'
    proc = split(tmp_path, *args, '-o', str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        f'aesop: warning: --gt: {tmp_path}/HR holds 2 entries that are no image file to read: gone.png is a broken '
        f'symlink (its target {tmp_path}/moved.png does not exist); rocket.png is a named pipe, not a file: skipped'
    )
    names = out.read_text().splitlines() + (tmp_path / 'test_split.txt').read_text().splitlines()
    assert sorted(names) == ['0.png', '1.png', '2.png', '3.png']
