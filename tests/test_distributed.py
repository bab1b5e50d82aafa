"""aesop/distributed.py: the process group of --launcher slurm read from the task's Slurm environment (ranks,
address, port) and Slurm's node lists read as scontrol lists them."""

from __future__ import annotations

import re

import pytest

from aesop.distributed import expand_nodelist, slurm_environment
from aesop.errors import AesopError


@pytest.mark.parametrize(
    ('nodelist', 'hosts'),
    [
        ('node01', ['node01']),
        ('node[01-04]', ['node01', 'node02', 'node03', 'node04']),
        ('node[01,03]', ['node01', 'node03']),
        ('a,b', ['a', 'b']),
        ('node[8-10]', ['node8', 'node9', 'node10']),  # the width of the first number: no padding
        ('n[098-100,7],login-1.cluster', ['n098', 'n099', 'n100', 'n7', 'login-1.cluster']),
        ('rack[1-2]-gpu[1,3]', ['rack1-gpu1', 'rack1-gpu3', 'rack2-gpu1', 'rack2-gpu3']),
    ],
)
def test_a_slurm_node_list_is_read_as_scontrol_lists_it(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize(
    ('nodelist', 'message'),
    [
        ('', 'empty'),
        ('node[1-2', '"[" without "]"'),
        ('node1-2]', '"]" without "["'),
        ('node[1-[2]]', 'nested "["'),
        ('node[4-1]', 'the range 4-1 runs backwards'),
        ('node[1-8:2]', "'1-8:2' is not a number or a range"),
        ('a,,b', "'' is not a host name"),
        ('node 1', "'node 1' is not a host name"),
    ],
)
def test_a_slurm_node_list_that_cannot_be_read_says_why(nodelist, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        expand_nodelist(nodelist)


def test_the_slurm_environment_gives_ranks_address_and_port(tmp_path):
    """--launcher slurm (aesop.distributed.init_dist) reads what srun gives a task, in place of basicsr's
    _init_dist_slurm: the ranks from SLURM_*, the address from MASTER_ADDR, scontrol or the node list itself, the port
    from dist_params.port, MASTER_PORT or 29500; what it cannot read is one line naming MASTER_ADDR."""
    task = {'SLURM_PROCID': '5', 'SLURM_NTASKS': '8', 'SLURM_LOCALID': '1', 'SLURM_NODELIST': 'gpu[07-08]'}
    no_scontrol = {'PATH': str(tmp_path / 'empty')}
    expected = {'RANK': '5', 'WORLD_SIZE': '8', 'LOCAL_RANK': '1', 'MASTER_ADDR': 'gpu07', 'MASTER_PORT': '29500'}
    assert slurm_environment({**task, **no_scontrol}) == expected
    step = {**task, **no_scontrol, 'SLURM_STEP_NODELIST': 'gpu08', 'MASTER_PORT': '1234'}  # the step's nodes first
    assert slurm_environment(step) == {**expected, 'MASTER_ADDR': 'gpu08', 'MASTER_PORT': '1234'}
    assert slurm_environment(step, port=4321)['MASTER_PORT'] == '4321'  # dist_params.port
    given = {**task, 'SLURM_NODELIST': 'weird{list}', 'MASTER_ADDR': '10.0.0.7'}
    assert slurm_environment(given)['MASTER_ADDR'] == '10.0.0.7'  # set: neither scontrol nor the list is read

    bin_ = tmp_path / 'bin'
    bin_.mkdir()
    scontrol = bin_ / 'scontrol'
    scontrol.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "head-%s\\nother\\n" "$3"\n')
    scontrol.chmod(0o755)
    with_scontrol = {**task, 'PATH': f'{bin_}:/usr/bin:/bin'}
    assert slurm_environment(with_scontrol)['MASTER_ADDR'] == 'head-gpu[07-08]'  # scontrol's first line
    scontrol.write_text('#!/bin/sh\necho "slurm_load_partitions: Unable to contact slurm controller" >&2; exit 1\n')
    assert slurm_environment(with_scontrol)['MASTER_ADDR'] == 'gpu07'  # scontrol failed: the list read here
    with pytest.raises(
        AesopError,
        match=r"^--launcher slurm: cannot read SLURM_NODELIST='n\[1-2' .*scontrol show "
        r'hostnames failed: .*: set MASTER_ADDR to the address of the node of task 0$',
    ):
        slurm_environment({**with_scontrol, 'SLURM_NODELIST': 'n[1-2'})

    with pytest.raises(
        AesopError,
        match=r"cannot read SLURM_NODELIST='n\[1-2' \(.*\) and there is no scontrol "
        r'to expand it: set MASTER_ADDR',
    ):
        slurm_environment({**task, **no_scontrol, 'SLURM_NODELIST': 'n[1-2'})
    with pytest.raises(AesopError, match='neither MASTER_ADDR nor SLURM_STEP_NODELIST, SLURM_NODELIST, '):
        slurm_environment({k: v for k, v in task.items() if k != 'SLURM_NODELIST'})
    with pytest.raises(
        AesopError, match=r'needs the environment srun gives each task \(SLURM_LOCALID not set\): srun '
    ):
        slurm_environment({k: v for k, v in task.items() if k != 'SLURM_LOCALID'})
    with pytest.raises(AesopError, match="SLURM_PROCID='0x1'.*: each must be a whole number"):
        slurm_environment({**task, 'SLURM_PROCID': '0x1'})
