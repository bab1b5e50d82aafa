"""scripts/benchmark.py run as a command on tiny nets: the JSON it reports (rows, modes, FLOPs, ψ's own work,
peak memory, inference) and its usage errors."""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import REPO, run_python


def benchmark(*argv: str) -> tuple[int, str, str]:
    """``python scripts/benchmark.py ARGV`` as a process would run it (in this one: :func:`conftest.run_python`,
    which gives back the thread count and environment the script sets): (status, stdout, stderr)."""
    cmd = [sys.executable, str(REPO / 'scripts' / 'benchmark.py'), *argv]
    proc = run_python(cmd, cwd=REPO, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    return proc.returncode, proc.stdout, proc.stderr


def report(*argv: str) -> tuple[dict, list[str]]:
    """The JSON of a ``--tiny --json`` run (its last line) and every line it printed."""
    status, out, err = benchmark('--tiny', '--json', *argv)
    assert status == 0, err[-3000:]
    lines = out.strip().splitlines()
    return json.loads(lines[-1]), lines


@pytest.mark.heavy
def test_tiny_run_reports_every_row_flops_and_inference():
    result, out = report()
    rows = ['esrgan', 'ldl', 'aesop', 'aesop_srresnet']
    assert result['variants'] == rows and result['modes'] == ['fp32'] and result['threads'] == 1
    training = result['training']['fp32']
    assert list(training) == rows
    for row in rows:
        cell = training[row]
        assert cell['step_s'] > 0 and cell['peak_mem_mb'] > 0 and cell['minor_faults'] >= 0, row
        assert cell['over_ldl'] == pytest.approx(cell['step_s'] / training['ldl']['step_s'])
    ldl = training['ldl']['step_s']
    for row, psi in (('aesop', 'psi'), ('aesop_srresnet', 'psi_srresnet')):
        cell = training[row]
        assert cell['psi_s'] > 0 and cell['psi_over_ldl'] == pytest.approx(cell['psi_s'] / ldl)
        assert cell['overhead_over_ldl'] == pytest.approx((cell['step_s'] - ldl - cell['psi_s']) / ldl)
        # FLOPs: AESOP = LDL + ψ exactly; per step = per image × batch
        flops = result['flops']
        assert flops[f'{row}_minus_ldl_minus_psi'] == 0
        assert flops['per_image'][row] == flops['per_image']['ldl'] + flops['per_image'][psi] > 0
        assert flops['per_step'][row] == result['batch'] * flops['per_image'][row]
    infer = result['inference']
    assert infer['images_per_s'] > 0 and infer['lr_size'] == 16
    assert [(t['lr_hw'], t['tile']) for t in infer['tiled']] == [([24, 24], 16), ([48, 48], 16), ([48, 48], 0)]
    assert all(t['seconds'] > 0 and t['peak_mem_mb'] > 0 for t in infer['tiled'])
    whole, tiled = infer['tiled'][2]['peak_mem_mb'], infer['tiled'][1]['peak_mem_mb']
    assert tiled < whole  # tiles keep the network's activations small
    assert any(line.startswith('| fp32 | AESOP, ψ MSRResNet') for line in out)  # the tables are printed too
    assert any(line.startswith('| ψ rrdb alone') for line in out)


def test_modes_are_columns_of_one_run_and_parts_can_be_left_out():
    modes = ['fp32', 'channels_last']
    result, out = report('--parts', 'steps', '--variants', 'ldl,aesop', '--modes', ','.join(modes))
    assert result['modes'] == modes and list(result['training']) == modes
    for mode in modes:
        assert list(result['training'][mode]) == ['ldl', 'aesop']
        assert result['training'][mode]['aesop']['psi_s'] > 0
    assert 'flops' not in result and 'inference' not in result
    assert any(line.startswith('| channels_last | AESOP, ψ RRDB') for line in out)


def test_tiled_sizes_take_n_or_h_x_w():
    result, _ = report('--parts', 'inference', '--tiled-sizes', '20x28,12', '--tile', '8', '--tile-pad', '0')
    tiled = [(t['lr_hw'], t['tile'], t['tile_pad']) for t in result['inference']['tiled']]
    assert tiled == [([20, 28], 8, 0), ([12, 12], 8, 0), ([20, 28], 0, 0)]


@pytest.mark.parametrize('argv', [['--modes', 'fp32,fp32'], ['--variants', 'esrgan,aesop'], ['--tiled-sizes', '339x']])
def test_bad_arguments_fail_with_one_line(argv):
    status, _, err = benchmark(*argv)
    assert status == 2 and err.startswith('aesop: error: ') and err.count('\n') == 1, err
