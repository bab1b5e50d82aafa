"""Shared fixtures: offline backbones, a tiny paired dataset, option files, entry-point runs."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import runpy
import signal
import subprocess
import sys
import traceback
import types
import warnings
from collections.abc import Iterator
from copy import deepcopy
from pathlib import Path

import pytest
import torch
import yaml

os.environ['AESOP_RANDOM_BACKBONES'] = '1'  # no ImageNet weights can be downloaded in tests

import aesop  # noqa: E402,F401

REPO = Path(__file__).resolve().parent.parent
TINY_RRDB = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8}
TINY_AE = {'type': 'AesopAutoEncoder', 'scale': 4, 'decoder': TINY_RRDB, 'num_block': 1}


if os.environ.get('PYTEST_XDIST_WORKER_COUNT'):  # pytest -n N: share the cores between the workers
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ['PYTEST_XDIST_WORKER_COUNT'])))


def pytest_collection_modifyitems(config, items):
    """Heavy tests first: ``ddp`` (torchrun), then ``heavy`` (processes of their own, or seconds of work). ``make
    test``'s ``pytest -n auto --dist loadgroup`` hands tests out in this order as the workers free up, so the light
    tests fill in at the end and no worker is left running a long test alone."""
    items.sort(key=lambda item: 0 if any(item.iter_markers('ddp')) else 1 if any(item.iter_markers('heavy')) else 2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _basicsr_logger_given_back():
    """basicsr's logger as before the test: a console handler basicsr made during it (once per process, on the
    stderr of that moment: a ``capsys`` buffer closed after the test) is closed and dropped, and basicsr's record of
    set-up loggers put back, so no later test logs into a closed buffer whatever the order the tests run in."""
    from basicsr.utils import logger as basicsr_logger

    logger = logging.getLogger('basicsr')
    handlers, initialized = logger.handlers[:], dict(basicsr_logger.initialized_logger)
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    basicsr_logger.initialized_logger.clear()
    basicsr_logger.initialized_logger.update(initialized)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> Path:
    """A paired ×4 dataset: 2 photos cut into 128-px sub-images, 1 held-out 64-px crop."""
    from aesop.data import make_demo_dataset

    return make_demo_dataset(
        tmp_path_factory.mktemp('data'), train=('astronaut', 'chelsea'), val=('coffee',), sub_size=128, val_crop=64
    )


class MeanIQA(torch.nn.Module):
    """A stand-in pyiqa metric: the mean of its (N, 3, H, W) RGB input in [0, 1] (full-reference, ``metric_mode``
    ``FR``: the mean absolute difference of its two inputs); records ``(metric, (H, W))`` of every call."""

    def __init__(self, name: str, calls: list, mode: str):
        super().__init__()
        self.name, self.calls, self.metric_mode = name, calls, mode

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append((self.name, tuple(x.shape[-2:])))
        return x.mean() if y is None else (x - y).abs().mean()


@pytest.fixture
def fake_pyiqa(monkeypatch) -> Iterator[types.ModuleType]:
    """A stand-in ``pyiqa`` module in ``sys.modules`` (pyiqa is not installed for the tests, and its weights would
    be downloaded): ``list_models()``, and ``create_metric(name, device=…)`` a :class:`MeanIQA` (``psnr``:
    full-reference); ``calls`` lists what the metrics scored. pyiqa's metrics built earlier are forgotten."""
    import importlib.machinery

    from aesop.metrics.iqa import pyiqa_metric

    module = types.ModuleType('pyiqa')
    module.__spec__ = importlib.machinery.ModuleSpec('pyiqa', None)  # what importlib.util.find_spec returns
    module.calls = []
    module.list_models = lambda: ['clipiqa', 'maniqa', 'musiq', 'niqe', 'psnr']
    module.create_metric = lambda name, device=None, **options: MeanIQA(
        name, module.calls, 'FR' if name == 'psnr' else 'NR'
    )
    pyiqa_metric.cache_clear()
    monkeypatch.setitem(sys.modules, 'pyiqa', module)
    yield module
    pyiqa_metric.cache_clear()


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
    """An option file as written, read as every reader reads it (:func:`aesop.options.load_option_file`)."""
    from aesop.options import load_option_file

    return load_option_file(path)


def write_yaml(opt: dict, path: Path) -> Path:
    from aesop.options import OptionDumper

    path.write_text(yaml.dump(deepcopy(opt), Dumper=OptionDumper, sort_keys=False))
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


def python_env(env: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``env`` (default: this process's) for a Python subprocess of the checkout under test: ``PYTHONPATH`` starts
    with this repository, so that ``python -c 'import aesop'`` or ``python -m aesop.launch`` imports this
    checkout's ``aesop``, not the installed one (an editable install may point at another clone); one OpenMP
    thread per process, as the tests share the cores."""
    env = dict(os.environ if env is None else env)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO), *filter(None, [env.get('PYTHONPATH')])])
    return {**env, 'OMP_NUM_THREADS': '1', **extra}


def spawn(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``Popen(cmd, stdout=PIPE, stderr=STDOUT, text=True)``: a real process, for tests where the process is the
    point (kill -9, a lock held by another process, signals, torchrun). ``env``: :func:`python_env` of it."""
    return subprocess.Popen(
        cmd, cwd=cwd, env=python_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def run_subprocess(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """``subprocess.run(cmd, capture_output=True, text=True)`` with :func:`python_env` of ``env``: a fresh
    interpreter (import checks) or a launcher that starts its own processes (torchrun)."""
    return subprocess.run(cmd, cwd=cwd, env=python_env(env), capture_output=True, text=True, timeout=timeout)


# the root logger (pytest's handlers on it: none in a new process, where a record no handler takes goes to stderr),
# the ones a run sets up: basicsr's, aesop.launch's
_LOGGERS = ('', 'basicsr', 'torch.distributed.elastic.agent.server.api')


@contextlib.contextmanager
def _as_a_new_process(cwd: Path, env: dict[str, str], stdout: io.StringIO, stderr: io.StringIO) -> Iterator[None]:
    """Run the block as a new process would run a command, then give this one back its state.

    During the block: ``cwd`` and ``env``, ``sys.stdout``/``sys.stderr`` written to the buffers, the loggers as in
    a new process (no handler on the root one either, so that a record before basicsr's logger is set up goes to
    stderr; its console handler is made on the buffer). After it, whatever such a run changes of this
    process is restored: ``sys.argv``, ``sys.path``, the working directory, the environment, the loggers (the
    handlers a run added closed: its log file), basicsr's record of set-up loggers, the random generators, torch's
    thread count, default dtype, grad mode and cudnn flag, the SIGINT/SIGTERM handlers, the warning filters; the
    experiment locks the run took are released as at its exit (:mod:`aesop.runlock` releases them at exit).
    """
    import random

    import basicsr.utils.logger as basicsr_logger
    import numpy as np

    from aesop import runlock

    loggers = [logging.getLogger(name) for name in _LOGGERS]
    saved_loggers = [(lg.handlers[:], lg.filters[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    saved = dict(
        argv=sys.argv[:],
        path=sys.path[:],
        cwd=os.getcwd(),
        environ=dict(os.environ),
        initialized=dict(basicsr_logger.initialized_logger),
        rng=(random.getstate(), np.random.get_state(), torch.get_rng_state()),
        torch=(torch.get_num_threads(), torch.get_default_dtype(), torch.is_grad_enabled()),
        cudnn=torch.backends.cudnn.benchmark,
        signals={sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)},
        locks=set(runlock._HELD),
    )
    for lg in loggers:  # as in a new process: no handler, no filter, level unset (the root's: WARNING)
        level = logging.WARNING if lg is logging.root else logging.NOTSET
        lg.handlers, lg.filters, lg.propagate, lg.disabled = [], [], True, False
        lg.setLevel(level)  # (setLevel: the loggers' cached levels cleared)
    basicsr_logger.initialized_logger.clear()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            yield
    finally:
        for lock in set(runlock._HELD) - saved['locks']:  # released at the run's exit
            runlock.release_experiment(lock.parent / lock.name.removeprefix('.').removesuffix('.lock'))
        for lg, (handlers, filters, level, propagate, disabled) in zip(loggers, saved_loggers):
            for handler in lg.handlers:
                if handler not in handlers:
                    handler.close()
            lg.handlers, lg.filters, lg.propagate, lg.disabled = handlers, filters, propagate, disabled
            lg.setLevel(level)
        basicsr_logger.initialized_logger.clear()
        basicsr_logger.initialized_logger.update(saved['initialized'])
        os.environ.clear()
        os.environ.update(saved['environ'])
        os.chdir(saved['cwd'])
        sys.argv[:], sys.path[:] = saved['argv'], saved['path']
        random.setstate(saved['rng'][0])
        np.random.set_state(saved['rng'][1])
        torch.set_rng_state(saved['rng'][2])
        threads, dtype, grad = saved['torch']
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        torch.backends.cudnn.benchmark = saved['cudnn']
        for sig, handler in saved['signals'].items():
            signal.signal(sig, handler)


def run_python(cmd: list[str], *, cwd: Path, env: dict[str, str], merge_stderr: bool = False):
    """Run ``cmd`` (``[sys.executable, script.py | -c CODE | -m MODULE, ARGS…]``) in this process, as a new
    interpreter would run it (the script as ``__main__``, ``sys.argv`` as it would see it), with the working
    directory ``cwd`` and the environment ``env``; returns a :class:`subprocess.CompletedProcess` with its exit
    status (``SystemExit``'s; an uncaught exception is printed as the interpreter prints it, status 1) and what
    it printed (``stderr`` into ``stdout`` with ``merge_stderr``, as ``stderr=STDOUT``). This process's state is
    given back afterwards (:func:`_as_a_new_process`). Runs that need a process of their own (kill -9, locks held
    by another process, signals, torchrun, a fresh interpreter's imports): :func:`spawn`, :func:`run_subprocess`.
    """
    if cmd[0] != sys.executable:
        raise ValueError(f'run_python runs {sys.executable} commands in this process, not {cmd[0]}: run_subprocess')
    what, *args = cmd[1:]
    out = io.StringIO()
    err = out if merge_stderr else io.StringIO()
    with _as_a_new_process(cwd, env, out, err):
        try:
            if what == '-c':  # python -c CODE ARGS…
                sys.argv, sys.path[0] = ['-c', *args[1:]], ''
                main = types.ModuleType('__main__')
                exec(compile(args[0], '<string>', 'exec'), main.__dict__)
            elif what == '-m':  # python -m MODULE ARGS…
                sys.argv, sys.path[0] = args, os.getcwd()
                runpy.run_module(args[0], run_name='__main__', alter_sys=True)
            else:  # python path/to/script.py ARGS…
                sys.argv, sys.path[0] = [what, *args], str(Path(what).resolve().parent)
                runpy.run_path(what, run_name='__main__')
            status = 0
        except SystemExit as exit_:
            status = exit_.code
        except Exception:
            traceback.print_exc()
            status = 1
        if status is not None and not isinstance(status, int):
            print(status, file=sys.stderr)
            status = 1
    return subprocess.CompletedProcess(cmd, status or 0, out.getvalue(), None if merge_stderr else err.getvalue())


def run_entry(script: str, opt_file: Path, root: Path, *args: str, check: bool = True, launcher=None, process=False):
    """Run ``aesop/<script>.py -opt <opt_file>`` with experiments under ``root``: in this process
    (:func:`run_python`), or as a real process under ``launcher`` (torchrun) or with ``process``."""
    env = {**os.environ, 'AESOP_ROOT': str(root), 'OMP_NUM_THREADS': '1'}
    cmd = [*(launcher or [sys.executable]), str(REPO / 'aesop' / f'{script}.py'), '-opt', str(opt_file), *args]
    if launcher or process:
        proc = run_subprocess(cmd, cwd=root, env=env, timeout=300)
    else:
        proc = run_python(cmd, cwd=root, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
        )
    return proc
