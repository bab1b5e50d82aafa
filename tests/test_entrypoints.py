"""The real entry points (in the pytest worker, as ``conftest.run_python`` runs them; torchrun as processes): AE →
AESOP GAN → test, resume, DDP, one-line errors."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from conftest import REPO, TINY_AE, TINY_RRDB, load_yaml, point_at, python_env, run_entry, run_python, write_yaml

from aesop.options import load_option_file

DEMO = REPO / 'options' / 'demo'


def tiny(opt: dict, name: str, data: Path, iters: int) -> dict:
    """A demo option file shrunk to a few iterations of tiny networks on the tiny dataset."""
    opt = point_at(opt, data)
    opt['name'] = name
    if 'network_g' in opt:
        opt['network_g'] = deepcopy(TINY_AE if opt['network_g']['type'] == 'AesopAutoEncoder' else TINY_RRDB)
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
    if 'train' in opt:
        opt['train']['total_iter'] = iters
        opt['val']['val_freq'] = iters
        opt['logger'].update(print_freq=1, save_checkpoint_freq=iters)
        opt['datasets']['train'].update(batch_size_per_gpu=1, dataset_enlarge_ratio=1)
        if 'aesop_opt' in opt['train']:
            opt['train']['aesop_opt']['autoencoder'] = deepcopy(TINY_AE)
        if 'perceptual_opt' in opt['train']:
            opt['train']['perceptual_opt']['layer_weights'] = {'conv1_2': 0.1, 'conv2_2': 0.1}
    return opt


@pytest.fixture(scope='module')
def pipeline(tiny_data, tmp_path_factory):
    """AE pretraining (3 it) → AESOP GAN (2 it, ψ from the AE) → aesop/test.py, all via the CLI."""
    root = tmp_path_factory.mktemp('root')
    ae = tiny(load_yaml(DEMO / 'train_ae.yml'), 'e2e_ae', tiny_data, 3)
    ae['path']['pretrain_network_decoder'] = None
    ae['train']['freeze_decoder'] = 1
    run_entry('train', write_yaml(ae, root / 'ae.yml'), root)

    gan = tiny(load_yaml(DEMO / 'train_aesop.yml'), 'e2e_aesop', tiny_data, 2)
    gan['path']['pretrain_network_g'] = None
    gan['train']['aesop_opt']['pretrained'] = 'experiments/e2e_ae/models/net_g_latest.pth'  # relative to the root
    run_entry('train', write_yaml(gan, root / 'gan.yml'), root)

    test = tiny(load_yaml(DEMO / 'test_aesop.yml'), 'e2e_test', tiny_data, 0)
    test['path']['pretrain_network_g'] = str(root / 'experiments' / 'e2e_aesop' / 'models' / 'net_g_latest.pth')
    test['val']['metrics']['ae_psnr'].update(
        autoencoder=deepcopy(TINY_AE), pretrained=gan['train']['aesop_opt']['pretrained']
    )
    test['val']['metrics']['dists'] = {'type': 'calculate_dists', 'crop_border': 0, 'better': 'lower'}
    run_entry('test', write_yaml(test, root / 'test.yml'), root)
    return root, gan, tiny_data


def test_the_documented_defaults_are_what_runs(tiny_data, tmp_path):
    """A file without print_freq, save_checkpoint_freq, use_rot, batch_size_per_gpu, num_worker_per_gpu, num_gpu
    and save_img trains (basicsr read each with [] and stopped with a KeyError); --force_yml values are the
    schema's too."""
    opt = tiny(load_yaml(DEMO / 'train_psnr.yml'), 'defaults', tiny_data, 2)
    for key in ('print_freq', 'save_checkpoint_freq'):
        del opt['logger'][key]
    for key in ('use_rot', 'use_hflip', 'batch_size_per_gpu', 'num_worker_per_gpu'):
        del opt['datasets']['train'][key]
    del opt['num_gpu'], opt['val']['save_img']
    opt['train']['total_iter'] = 5
    path = write_yaml(opt, tmp_path / 'defaults.yml')
    run_entry('train', path, tmp_path, '--force_yml', 'train:total_iter=!!float 2e0', 'val:val_freq=2e0')
    log = next((tmp_path / 'experiments' / 'defaults').glob('train_*.log')).read_text()
    assert 'End of training' in log
    for line in ('print_freq: 100', 'save_checkpoint_freq: 5000', 'use_rot: False', 'batch_size_per_gpu: 1'):
        assert re.search(rf'^\s+{line}$', log, re.M), line  # basicsr logs the options it runs with
    assert re.search(r'^\s+total_iter: 2$', log, re.M) and re.search(r'^\s+val_freq: 2$', log, re.M)
    assert (tmp_path / 'experiments' / 'defaults' / 'models' / 'net_g_latest.pth').is_file()
    assert re.search(r'# psnr: [\d.]+', log)  # validated at iteration 2
    exp = tmp_path / 'experiments' / 'defaults'  # the file as written, and beside it the options as resolved
    assert (exp / 'defaults.yml').read_text().endswith(path.read_text())  # after basicsr's header (the command)
    resolved = load_option_file(exp / 'defaults.resolved.yml')
    assert resolved['train']['total_iter'] == 2 and resolved['logger']['print_freq'] == 100
    assert resolved['path']['experiments_root'] == str(exp) and resolved['datasets']['train']['use_rot'] is False


def test_training_writes_checkpoints_logs_and_tensorboard(pipeline):
    root = pipeline[0]
    for name, files in (('e2e_ae', ['net_g_3.pth', 'net_g_latest.pth']), ('e2e_aesop', ['net_g_2.pth', 'net_d_2.pth'])):
        exp = root / 'experiments' / name
        assert all((exp / 'models' / f).is_file() for f in files)
        assert any((exp / 'training_states').glob('*.state'))
        log = next(exp.glob('train_*.log')).read_text()
        assert 'End of training' in log
        assert any((root / 'tb_logger' / name).iterdir())
    log = next((root / 'experiments' / 'e2e_aesop').glob('train_*.log')).read_text()
    assert 'l_g_aesop' in log and 'l_g_artifacts' in log and 'l_g_pix' not in log


def test_test_writes_images_and_the_metric_tables(pipeline):
    root = pipeline[0]
    results = root / 'results' / 'e2e_test'
    assert (results / 'visualization' / 'demo_val' / 'coffee_e2e_test.png').is_file()
    # random backbones (the tests' AESOP_RANDOM_BACKBONES=1) are named in every header: their numbers mean nothing
    names = ['psnr', 'ssim', 'lpips (random AlexNet)', 'lr_psnr', 'ae_psnr', 'dists (random VGG16)']
    summary = (results / 'metrics.csv').read_text().splitlines()
    assert summary[0] == 'method,dataset,' + ','.join(names) and summary[1].startswith('e2e_test,demo_val,')
    table = re.sub(' +', ' ', (results / 'metrics.md').read_text())
    assert table.startswith('| method | dataset | ' + ' | '.join(names) + ' |') and '| e2e_test | demo_val |' in table
    per_image = [line.split(',') for line in (results / 'demo_val.csv').read_text().splitlines()]
    assert per_image[0] == ['image', *names] and [r[0] for r in per_image[1:]] == ['coffee', 'mean']
    # independent reference: PSNR on BT.601 Y (MATLAB's rgb2ycbcr), border 4, of the saved image
    sr = cv2.imread(str(results / 'visualization' / 'demo_val' / 'coffee_e2e_test.png'))[..., ::-1].astype(np.float64)
    hr = cv2.imread(str(pipeline[2] / 'val' / 'HR' / 'coffee.png'))[..., ::-1].astype(np.float64)
    y = lambda img: (16 + img @ np.array([65.481, 128.553, 24.966]) / 255)[4:-4, 4:-4]  # noqa: E731
    expected = 10 * np.log10(255**2 / np.mean((y(sr) - y(hr)) ** 2))
    assert float(per_image[1][1]) == pytest.approx(expected, abs=1e-5)
    assert float(summary[1].split(',')[2]) == pytest.approx(expected, abs=1e-4)
    assert all(0 <= float(v) for v in per_image[1][1:])  # ae_psnr is inf here: the tiny nets output ~0
    log = next(results.glob('test_e2e_test_*.log')).read_text()  # random backbones say so in the log too
    assert re.search(r'# lpips \(random AlexNet\): [\d.]+\n', log) and re.search(r'# psnr: [\d.]+\n', log)


def free_port() -> int:
    """A port nothing listens on now (bound to port 0, then closed)."""
    with socket.socket() as sock:
        sock.bind(('localhost', 0))
        return sock.getsockname()[1]


def run_side_by_side(commands: list[tuple[list[str], dict[str, str]]], cwd: Path, timeout: float = 240) -> list:
    """Start every ``(argv, env)`` at once as a process of its own (its output to a file: none waits on a full
    pipe); ``(exit status, output)`` of each once all have ended, or kill them all after ``timeout`` seconds."""
    procs = []
    try:
        for i, (cmd, env) in enumerate(commands):
            with open(cwd / f'process{i}.out', 'w') as out:
                procs.append(subprocess.Popen(cmd, cwd=cwd, env=python_env(env), stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        for proc in procs:
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:  # timed out: its workers follow it (aesop.pipeline's exit_with_parent)
                proc.kill()
                proc.wait()
    return [(proc.returncode, (cwd / f'process{i}.out').read_text()) for i, proc in enumerate(procs)]


def two_process_run(tiny_data: Path, root: Path, name: str, *, aesop: bool = False) -> tuple[Path, dict[str, str]]:
    """A 2-iteration tiny SR training (``aesop``: the AESOP GAN, ψ a random tiny auto-encoder) validated at its end,
    gloo (``num_gpu: 0``), and the environment of its processes."""
    opt = tiny(load_yaml(DEMO / ('train_aesop.yml' if aesop else 'train_psnr.yml')), name, tiny_data, 2)
    if aesop:
        torch.save({'params_ema': build_network(deepcopy(TINY_AE)).state_dict()}, root / 'ae.pth')
        opt['path']['pretrain_network_g'] = None
        opt['train']['aesop_opt']['pretrained'] = str(root / 'ae.pth')
    opt['num_gpu'] = 0  # gloo on CPU even where CUDA is visible
    env = {'AESOP_ROOT': str(root), 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'AESOP_RANDOM_BACKBONES': '1'}
    return write_yaml(opt, root / f'{name}.yml'), env


def assert_rank0_alone_wrote(root: Path, name: str, networks: tuple[str, ...] = ('net_g',)) -> str:
    """The run's folders hold rank 0's files alone: its checkpoints, one log (world size 2, validated at iteration
    2), one tensorboard file. Returns the log."""
    assert [p.name for p in (root / 'experiments').iterdir()] == [name]  # no other rank made or archived one
    exp = root / 'experiments' / name
    expected = sorted(f'{net}_{at}.pth' for net in networks for at in (2, 'latest'))
    assert sorted(p.name for p in (exp / 'models').iterdir()) == expected
    assert sorted(p.name for p in (exp / 'training_states').iterdir()) == ['2.state']
    [log] = list(exp.glob('train_*.log'))
    assert len(list((root / 'tb_logger' / name).iterdir())) == 1
    text = log.read_text()
    assert 'World size (gpu number): 2' in text and re.search(r'Validation demo_val\n\t # psnr: [\d.]+', text), text
    assert 'End of training' in text
    return text


@pytest.mark.ddp
def test_two_torchrun_agents_are_two_nodes_of_one_run(tiny_data, tmp_path):
    """The documented multi-node command on one machine, an AESOP GAN: two agents (``aesop-torchrun --nnodes=2
    --nproc_per_node=1 --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT --rdzv_id=ID``; the second node runs plain
    ``torchrun``, which this project's workers serve as well), one worker each, gloo: one run of world size 2 whose
    node ranks (group ranks) are 0 and 1; rank 0 alone writes; the sharded validation ends in rank 0's line."""
    opt_file, env = two_process_run(tiny_data, tmp_path, 'two_nodes', aesop=True)
    env['LOGLEVEL'] = 'INFO'  # the agents log their rendezvous: the node's rank and its workers' global ranks
    nodes = ['--nnodes=2', '--nproc_per_node=1', '--rdzv_backend=c10d', f'--rdzv_endpoint=localhost:{free_port()}']
    nodes += [f'--rdzv_id=two_nodes_{os.getpid()}', str(REPO / 'aesop' / 'train.py'), '-opt', str(opt_file)]
    nodes += ['--launcher', 'pytorch']
    torchrun = shutil.which('torchrun', path=str(Path(sys.executable).parent))
    agents = [([sys.executable, '-m', 'aesop.launch', *nodes], env), ([torchrun, *nodes], env)]
    agents = run_side_by_side(agents, tmp_path)
    assert [status for status, _ in agents] == [0, 0], agents
    ranks = {}
    for _, out in agents:
        found = dict(re.findall(r'\]   (group_rank|group_world_size|global_ranks|role_world_sizes)=(\S+)', out))
        assert found['group_world_size'] == '2' and found['role_world_sizes'] == '[2]', out
        ranks[int(found['group_rank'])] = (found['global_ranks'], out)
    assert sorted(ranks) == [0, 1] and [ranks[0][0], ranks[1][0]] == ['[0]', '[1]']
    assert 'World size (gpu number): 2' in ranks[0][1] and 'World size' not in ranks[1][1]  # rank 0 logs
    log = assert_rank0_alone_wrote(tmp_path, 'two_nodes', ('net_d', 'net_g'))
    assert 'l_g_aesop' in log


@pytest.mark.ddp
def test_launcher_slurm_runs_the_tasks_srun_would_start_on_gloo(tiny_data, tmp_path):
    """``--launcher slurm`` without srun: two plain ``aesop/train.py`` processes with the environment srun gives two
    tasks (SLURM_PROCID 0/1, SLURM_NTASKS 2, SLURM_LOCALID, SLURM_NODELIST read here: no scontrol, MASTER_PORT),
    on the CPU: gloo (basicsr's _init_dist_slurm set a CUDA device: it failed without one)."""
    opt_file, env = two_process_run(tiny_data, tmp_path, 'slurm_tasks')
    env.update(SLURM_NTASKS='2', SLURM_NODELIST='localhost', SLURM_JOB_ID='4242', MASTER_PORT=str(free_port()))
    cmd = [sys.executable, str(REPO / 'aesop' / 'train.py'), '-opt', str(opt_file), '--launcher', 'slurm']
    tasks = [(cmd, {**env, 'SLURM_PROCID': str(rank), 'SLURM_LOCALID': str(rank)}) for rank in (0, 1)]
    (status0, out0), (status1, out1) = run_side_by_side(tasks, tmp_path)
    assert (status0, status1) == (0, 0), (out0, out1)
    assert 'World size (gpu number): 2' in out0 and 'World size' not in out1
    log = assert_rank0_alone_wrote(tmp_path, 'slurm_tasks')
    assert re.search(r'^\s+dist: True\n\s+rank: 0\n\s+world_size: 2$', log, re.M)


def test_the_bicubic_row_is_matlab_imresize_scored_like_the_networks(tiny_data, tmp_path):
    """The demo's bicubic row (``options/demo/test_bicubic.yml``, no weights) through ``aesop/test.py``, against
    basicsr's numpy ``imresize`` of the LR image and the BT.601-Y PSNR computed here; then the demo's summary
    table reads it, with the colour shift of the saved image."""
    import importlib.util

    spec = importlib.util.spec_from_file_location('aesop_demo_script', REPO / 'scripts' / 'demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    opt = point_at(load_yaml(DEMO / 'test_bicubic.yml'), tiny_data)
    del opt['datasets']['test_2'], opt['val']['metrics']['ae_psnr']
    run_entry('test', write_yaml(opt, tmp_path / 'bicubic.yml'), tmp_path)
    from basicsr.utils.matlab_functions import imresize

    lr = cv2.imread(str(tiny_data / 'val' / 'LR_bicubic' / 'X4' / 'coffee.png'))[..., ::-1].astype(np.float64) / 255
    hr = cv2.imread(str(tiny_data / 'val' / 'HR' / 'coffee.png'))[..., ::-1].astype(np.float64)
    up = np.clip(np.round(imresize(lr, 4) * 255), 0, 255)
    y = lambda img: (16 + img @ np.array([65.481, 128.553, 24.966]) / 255)[4:-4, 4:-4]  # noqa: E731
    expected = 10 * np.log10(255**2 / np.mean((y(up) - y(hr)) ** 2))
    saved = tmp_path / 'results' / 'demo_test_bicubic' / 'visualization' / 'demo_val' / 'coffee_demo_test_bicubic.png'
    assert np.array_equal(cv2.imread(str(saved))[..., ::-1], up)
    shutil.copytree(tiny_data, tmp_path / 'datasets' / 'demo')
    table = demo.summary_table(tmp_path, 'demo_val', (('demo_test_bicubic', 'bicubic'),)).splitlines()
    header, row = ([c.strip() for c in line.strip('|').split('|')] for line in (table[0], table[2]))
    assert header[:3] == ['method', 'psnr', 'ssim'] and header[-1] == 'colour shift' and row[0] == 'bicubic'
    assert float(row[1]) == pytest.approx(expected, abs=1e-4)
    shift = np.abs(up.reshape(-1, 3).mean(0) - hr.reshape(-1, 3).mean(0)).max()
    assert float(row[-1]) == pytest.approx(shift, abs=0.05)
    demo.TABLES = (('bicubic only', 'demo_val', (('demo_test_bicubic', 'bicubic'), ('demo_test_bicubic', 'again'))),)
    goals = demo.goals(tmp_path, 301.0)  # "again" is bicubic: 0 dB over it; 301 s is past the goal
    assert [line.split()[0] for line in goals] == ['MISSED', 'met', 'MISSED'] and '+0.00 dB' in goals[0]


CHANGES_THE_PROCESS = """
import logging, os, random, signal, sys
import torch
from basicsr.utils import get_root_logger
from aesop.runlock import hold_experiment
hold_experiment(os.path.join(os.getcwd(), 'experiments', 'held'))
get_root_logger(log_file='run.log').info('logged')
os.environ['AESOP_SET_BY_THE_RUN'] = '1'
os.chdir('..')
sys.path.insert(0, 'elsewhere')
torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)
torch.manual_seed(1)
random.seed(1)
signal.signal(signal.SIGINT, signal.SIG_IGN)
print('out', sys.argv[1:])
raise SystemExit(3)
"""


def test_an_in_process_run_is_seen_as_a_process_and_gives_the_state_back(tmp_path):
    """``conftest.run_python``: status, output and argv as a process's; then what the run changed is given back:
    environment, working folder, sys.path, loggers (its log file closed), torch settings, generators, signal
    handlers, and the experiment lock it held (released, as at a process's exit)."""
    before = (dict(os.environ), os.getcwd(), sys.path[:], torch.get_num_threads(), torch.get_default_dtype())
    handlers, root, rng = logging.getLogger('basicsr').handlers[:], logging.root.handlers[:], torch.get_rng_state()
    sigint = signal.getsignal(signal.SIGINT)
    env = {**os.environ, 'AESOP_ROOT': str(tmp_path)}
    proc = run_python([sys.executable, '-c', CHANGES_THE_PROCESS, 'a', 'b'], cwd=tmp_path, env=env)
    assert proc.returncode == 3 and proc.stdout == "out ['a', 'b']\n", proc.stderr
    assert re.search(r' INFO: logged\n$', proc.stderr) and 'logged' in (tmp_path / 'run.log').read_text()
    after = (dict(os.environ), os.getcwd(), sys.path[:], torch.get_num_threads(), torch.get_default_dtype())
    assert after == before and logging.getLogger('basicsr').handlers == handlers and logging.root.handlers == root
    assert torch.equal(torch.get_rng_state(), rng) and signal.getsignal(signal.SIGINT) == sigint
    assert not (tmp_path / 'experiments' / '.held.lock').exists()
    failed = run_python([sys.executable, '-c', 'raise ValueError("boom")'], cwd=tmp_path, env=env)
    assert failed.returncode == 1 and failed.stderr.strip().splitlines()[-1] == 'ValueError: boom'
