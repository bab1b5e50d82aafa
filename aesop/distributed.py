"""The process group of a run: torchrun's (``--launcher pytorch``) or srun's (``--launcher slurm``: the ranks and
the address read from the task's Slurm environment, in place of basicsr 1.4.2's ``_init_dist_slurm``, which needed
``scontrol``, a GPU and NCCL); gloo on the CPU, NCCL on GPUs."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping

import torch
import torch.distributed as dist

from aesop.errors import AesopError

__all__ = ['DEFAULT_MASTER_PORT', 'expand_nodelist', 'init_dist', 'slurm_environment']


def init_dist(launcher: str, *, cpu: bool = False, backend: str | None = None, port: int | None = None) -> None:
    """The process group: NCCL on GPUs, gloo on CPU (no CUDA, or ``cpu``: ``num_gpu: 0``); each rank's GPU chosen
    by ``LOCAL_RANK`` (basicsr 1.4.2's used NCCL always and the global rank).

    ``pytorch``: the rank, world size and address torchrun set. ``slurm``: the same read from the task's Slurm
    environment (:func:`slurm_environment`; ``port``: ``dist_params.port``) and set in this process's, in place of
    basicsr's ``_init_dist_slurm`` (which needed ``scontrol``, a GPU and NCCL)."""
    if launcher == 'pytorch' and not {'RANK', 'WORLD_SIZE', 'MASTER_ADDR'} <= set(os.environ):
        raise AesopError(
            '--launcher pytorch needs the process group torchrun sets up: '
            'torchrun --nproc_per_node=N aesop/train.py -opt … --launcher pytorch (or drop --launcher)'
        )
    if launcher == 'slurm':
        os.environ.update(slurm_environment(os.environ, port=port))
    cuda = torch.cuda.is_available() and not cpu
    backend = backend if cuda and backend else ('nccl' if cuda else 'gloo')
    if cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ.get('RANK', '0')))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend)


SLURM_TASK = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID')  # what srun gives each task
SLURM_NODELISTS = ('SLURM_STEP_NODELIST', 'SLURM_NODELIST', 'SLURM_JOB_NODELIST')  # the step's nodes first
DEFAULT_MASTER_PORT = 29500  # torch.distributed's


def slurm_environment(environ: Mapping[str, str], *, port: int | None = None) -> dict[str, str]:
    """``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` of an ``srun`` task
    (``--launcher slurm``: one task per GPU, or per process on the CPU), from its environment ``environ``:

    - the ranks: ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID`` (the GPU: ``LOCAL_RANK`` modulo the GPUs
      the task sees);
    - the address: ``MASTER_ADDR`` when set, else the first host of the step's node list (``SLURM_STEP_NODELIST``,
      ``SLURM_NODELIST``, ``SLURM_JOB_NODELIST``: task 0 runs there) as ``scontrol show hostnames`` gives it, or,
      without ``scontrol`` (a container, a compute image without Slurm's tools), as :func:`expand_nodelist` reads it;
    - the port: ``port`` (``dist_params.port``), else ``MASTER_PORT``, else 29500.

    A missing variable, or a node list that cannot be read, is one :class:`AesopError` line naming the fix."""
    if missing := [name for name in SLURM_TASK if not environ.get(name)]:
        raise AesopError(
            f'--launcher slurm needs the environment srun gives each task ({", ".join(missing)} not set): '
            'srun --ntasks-per-node=<GPUs> python aesop/train.py -opt … --launcher slurm '
            '(or start it with aesop-torchrun and --launcher pytorch)'
        )
    try:
        rank, world_size, local_rank = (int(environ[name]) for name in SLURM_TASK)
    except ValueError:
        values = ', '.join(f'{name}={environ[name]!r}' for name in SLURM_TASK)
        raise AesopError(f'--launcher slurm: {values}: each must be a whole number') from None
    address = environ.get('MASTER_ADDR') or _first_slurm_host(environ)
    return {
        'RANK': str(rank),
        'WORLD_SIZE': str(world_size),
        'LOCAL_RANK': str(local_rank),
        'MASTER_ADDR': address,
        'MASTER_PORT': str(port or environ.get('MASTER_PORT') or DEFAULT_MASTER_PORT),
    }


def _first_slurm_host(environ: Mapping[str, str]) -> str:
    """The first host of the task's node list (:func:`slurm_environment`)."""
    name = next((name for name in SLURM_NODELISTS if environ.get(name)), None)
    if name is None:
        raise AesopError(
            f'--launcher slurm: neither MASTER_ADDR nor {", ".join(SLURM_NODELISTS)} is set: '
            'set MASTER_ADDR to the address of the node of task 0'
        )
    nodelist = environ[name]
    scontrol = 'there is no scontrol to expand it'
    if program := shutil.which('scontrol', path=environ.get('PATH')):
        try:
            shown = subprocess.run(
                [program, 'show', 'hostnames', nodelist], capture_output=True, text=True, timeout=60, check=True
            ).stdout.split()
        except (OSError, subprocess.SubprocessError) as err:  # no reachable controller: read the list here
            said = (getattr(err, 'stderr', None) or str(err)).strip().splitlines()
            scontrol = f'scontrol show hostnames failed: {said[0] if said else err}'
        else:
            if shown:
                return shown[0]
            scontrol = 'scontrol show hostnames listed no host'
    try:
        return expand_nodelist(nodelist)[0]
    except ValueError as err:
        raise AesopError(
            f'--launcher slurm: cannot read {name}={nodelist!r} ({err}) and {scontrol}: '
            'set MASTER_ADDR to the address of the node of task 0'
        ) from None


_HOST_PART = re.compile(r'[A-Za-z0-9._-]*')
_RANGE = re.compile(r'(\d+)(?:-(\d+))?')


def expand_nodelist(nodelist: str) -> list[str]:
    """The hosts of a Slurm node list, in order, as ``scontrol show hostnames`` lists them: ``node01``,
    ``node[01-04]`` (zero padding kept: the width of the range's first number), ``node[01,03,07-08]``, ``a,b``,
    ``gpu[1-2],cpu07`` and brackets in several places (``rack[1-2]-n[1-2]``: every combination, the last bracket
    varying fastest). Anything else (nested or unbalanced brackets, a step ``[1-8:2]``, a range that runs
    backwards, a character a host name cannot hold) is a :class:`ValueError` saying what."""
    if not nodelist:
        raise ValueError('empty')
    items, depth, start = [], False, 0
    for i, char in enumerate(nodelist):
        if char == '[':
            if depth:
                raise ValueError(f'nested "[" at character {i + 1}')
            depth = True
        elif char == ']':
            if not depth:
                raise ValueError(f'"]" without "[" at character {i + 1}')
            depth = False
        elif char == ',' and not depth:
            items.append(nodelist[start:i])
            start = i + 1
    if depth:
        raise ValueError('"[" without "]"')
    items.append(nodelist[start:])
    hosts = []
    for item in items:
        parts = re.split(r'\[([^\]]*)\]', item)  # name, ranges, name, ranges, …, name
        names = parts[::2]
        if not ''.join(names) or any(not _HOST_PART.fullmatch(part) for part in names):
            raise ValueError(f'{item!r} is not a host name or a host range')
        choices = [[part] if i % 2 == 0 else _expand_ranges(part) for i, part in enumerate(parts)]
        hosts += [''.join(choice) for choice in itertools.product(*choices)]
    return hosts


def _expand_ranges(text: str) -> list[str]:
    """The numbers of a bracket of a Slurm node list (``01-04,07``), each as wide as its range's first number."""
    numbers = []
    for part in text.split(','):
        found = _RANGE.fullmatch(part)
        if not found:
            raise ValueError(f'[{text}]: {part!r} is not a number or a range a-b')
        first, last = found.group(1), found.group(2) or found.group(1)
        if int(last) < int(first):
            raise ValueError(f'[{text}]: the range {part} runs backwards')
        numbers += [str(n).zfill(len(first)) for n in range(int(first), int(last) + 1)]
    return numbers
