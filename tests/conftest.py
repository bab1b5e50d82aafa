"""Shared fixtures: offline backbones, a tiny paired dataset, option files, entry-point runs."""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

import pytest
import torch
import yaml

os.environ['AESOP_RANDOM_BACKBONES'] = '1'  # no ImageNet weights can be downloaded in tests

from zygote import Zygote  # noqa: E402

import aesop  # noqa: E402,F401

REPO = Path(__file__).resolve().parent.parent
TINY_RRDB = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8}
TINY_AE = {'type': 'AesopAutoEncoder', 'scale': 4, 'decoder': TINY_RRDB, 'num_block': 1}


if os.environ.get('PYTEST_XDIST_WORKER_COUNT'):  # pytest -n N: share the cores between the workers
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ['PYTEST_XDIST_WORKER_COUNT'])))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> Path:
    """A paired ×4 dataset: 2 photos cut into 128-px sub-images, 1 held-out 64-px crop."""
    from aesop.data import make_demo_dataset

    return make_demo_dataset(
        tmp_path_factory.mktemp('data'), train=('astronaut', 'chelsea'), val=('coffee',), sub_size=128, val_crop=64
    )


@pytest.fixture
def no_wandb_login(tmp_path, monkeypatch) -> Path:
    """A new user's machine: wandb installed, nobody logged in (no ``WANDB_*`` variables, no ``NETRC``, a
    ``HOME`` without a netrc file or wandb settings). Returns that ``HOME``."""
    for name in [name for name in os.environ if name.startswith('WANDB_')] + ['NETRC']:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / 'home'
    home.mkdir()
    monkeypatch.setenv('HOME', str(home))
    return home


def load_yaml(path: str | Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def write_yaml(opt: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(deepcopy(opt), sort_keys=False))
    return path


def build_model(opt: dict):
    """basicsr's ``build_model`` on ``opt`` as a run reads it (:func:`aesop.options.load_options`: the release's
    names translated, the schema's validated values and defaults written, every component checked)."""
    from basicsr.models import build_model as build

    from aesop.options import load_options

    return build(load_options(dict(opt)))


def point_at(opt: dict, data: Path) -> dict:
    """Point every dataset of ``opt`` at the tiny dataset (train split for train, val otherwise)."""
    for phase, dataset in opt['datasets'].items():
        split = 'train' if phase == 'train' else 'val'
        dataset['dataroot_gt'] = str(data / split / 'HR')
        dataset['dataroot_lq'] = str(data / split / 'LR_bicubic' / 'X4')
    return opt


@functools.cache
def zygote() -> Zygote:
    """This worker's fork server for entry-point runs (``tests/zygote.py``), started on first use."""
    server = Zygote({**os.environ, 'OMP_NUM_THREADS': '1'})
    atexit.register(server.close)
    return server


def forkable(cmd: list[str], env: dict[str, str]) -> bool:
    """Whether ``cmd`` may run forked from the zygote (Linux, Python, same import-time environment, not disabled)."""
    if sys.platform != 'linux' or cmd[0] != sys.executable or os.environ.get('AESOP_TEST_NO_ZYGOTE') == '1':
        return False
    return zygote().accepts(env)


def spawn(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None):
    """``Popen([sys.executable, …], stdout=PIPE, stderr=STDOUT, text=True)``, forked from the zygote.

    ``env`` defaults to this process's with ``OMP_NUM_THREADS=1``, as every run of the tests has.
    """
    cwd, env = cwd or Path.cwd(), {**os.environ, 'OMP_NUM_THREADS': '1'} if env is None else env
    if forkable(cmd, env):
        return zygote().popen(cmd, cwd=cwd, env=env, merge_stderr=True)
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_python(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)``, forked from the zygote when ``cmd`` runs Python."""
    if forkable(cmd, env):
        return zygote().run(cmd, cwd=cwd, env=env, timeout=timeout)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_entry(script: str, opt_file: Path, root: Path, *args: str, check: bool = True, launcher=None):
    """Run ``aesop/<script>.py -opt <opt_file>`` (or under ``launcher``) with experiments under ``root``."""
    env = {**os.environ, 'AESOP_ROOT': str(root), 'OMP_NUM_THREADS': '1'}
    cmd = [*(launcher or [sys.executable]), str(REPO / 'aesop' / f'{script}.py'), '-opt', str(opt_file), *args]
    proc = run_python(cmd, cwd=root, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        )
    return proc
