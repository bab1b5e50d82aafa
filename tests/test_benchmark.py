"""scripts/benchmark.py on tiny nets: the JSON it reports (rows, modes side by side, FLOPs, AE-PSNR, the
machine) and its usage errors."""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import sys
from types import ModuleType

import pytest
import torch
from conftest import REPO


@pytest.fixture(scope='module')
def benchmark() -> ModuleType:
    """``scripts/benchmark.py`` imported as a module."""
    name = 'aesop_scripts_benchmark'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / 'scripts' / 'benchmark.py')
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _report(benchmark: ModuleType, capsys, argv: list[str]) -> tuple[dict, list[str]]:
    """Run the benchmark; its JSON (the last line) and every line it printed."""
    assert benchmark.main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1]), out


def test_tiny_run_reports_every_row_as_json(benchmark, capsys):
    threads = torch.get_num_threads()
    report, out = _report(benchmark, capsys, ['--tiny', '--json', '--steps', '1'])
    rows = list(benchmark.VARIANTS)
    assert report['variants'] == rows and report['mode_keys'] == ['fp32'] and list(report['modes']) == ['fp32']
    ratios = ['aesop_over_ldl', 'aesop_srresnet_over_ldl', 'esrgan_over_ldl']
    psi = ['psi_hr_s', 'psi_sr_s', 'psi_srresnet_hr_s', 'psi_srresnet_sr_s', 'psi_cpu_s', 'psi_srresnet_cpu_s']
    for key in [f'{v}_step_s' for v in rows] + [f'{v}_cpu_s' for v in rows] + ratios + psi + ['infer_images_per_s']:
        assert report[key] > 0, key
    ldl = report['ldl_step_s']
    for row, p in (('aesop', 'psi'), ('aesop_srresnet', 'psi_srresnet')):
        alone = report[f'{p}_hr_s'] + report[f'{p}_sr_s']
        assert report[f'{p}_floor_over_ldl'] == pytest.approx(1 + alone / ldl)
        assert report[f'{row}_overhead_over_ldl'] == pytest.approx((report[f'{row}_step_s'] - ldl - alone) / ldl)
        assert report[f'{row}_overhead_over_ldl_rounds'] == [pytest.approx(report[f'{row}_overhead_over_ldl'])]
        assert math.isfinite(report[f'{row}_overhead_over_ldl_cpu'])
        # FLOPs: AESOP = LDL + ψ exactly; per step = per image × batch, × 16 at the paper's batch
        flops = report['flops']
        assert flops[f'{row}_minus_ldl_minus_psi'] == 0
        assert flops['per_image'][row] == flops['per_image']['ldl'] + flops['per_image'][p] > 0
        assert flops['per_step_paper_batch'][row] == 16 * flops['per_image'][row] == 16 * flops['per_step'][row]
    assert report['modes']['fp32']['aesop_step_s'] == report['aesop_step_s']  # the first mode is the top level
    assert set(report['peak_mem_mb']) == set(rows) and all(v > 0 for v in report['peak_mem_mb'].values())
    assert [(t['lr_hw'], t['tile']) for t in report['tiled']] == [([24, 24], 16), ([48, 48], 16), ([48, 48], 0)]
    assert all(t['seconds'] > 0 and t['peak_mem_mb'] >= 0 for t in report['tiled'])  # RSS: may be reused pages
    assert report['conv_dtype'] == 'float32' and report['tiny'] and report['steps'] == 1
    assert report['ae_psnr'] is None and 'no trained' in report['ae_psnr_note']
    assert {'model', 'avx2', 'avx512_bf16', 'amx_bf16', 'bf16_units'} <= set(report['cpu'])
    assert len(report['load_average']['rounds']) == 1 and report['cpu_s'] > 0 and report['threads'] == 1
    assert torch.get_num_threads() == threads  # --tiny ran on 1 thread, then gave the process its threads back
    assert any(line.startswith('| fp32 | AESOP, ψ MSRResNet') for line in out)  # the tables are printed too
    assert any('avx512_bf16' in line for line in out[:3])  # the header names the CPU's BF16 support


def test_modes_are_timed_side_by_side_in_one_run(benchmark, capsys):
    modes = ['fp32', 'bf16', 'channels_last']
    argv = ['--tiny', '--json', '--parts', 'steps', '--variants', 'ldl,aesop', '--modes', ','.join(modes)]
    report, out = _report(benchmark, capsys, argv)
    assert report['mode_keys'] == modes and list(report['modes']) == modes and report['variants'] == ['ldl', 'aesop']
    seen = {m: (report['modes'][m]['conv_dtype'], report['modes'][m]['conv_channels_last']) for m in modes}
    assert seen == {'fp32': ('float32', False), 'bf16': ('bfloat16', False), 'channels_last': ('float32', True)}
    for m in modes:
        assert report['modes'][m]['aesop_step_s'] > 0 and math.isfinite(report['modes'][m]['aesop_overhead_over_ldl'])
    assert set(report['mode_over_first']) == {'bf16', 'channels_last'}
    assert 'flops' not in report and 'tiled' not in report and 'checkpointing' not in report
    assert any(line.startswith('| training step | fp32 s | bf16 s | channels_last s') for line in out)


def test_tiled_sizes_take_n_or_h_x_w(benchmark):
    args = benchmark.parse_args(['--tiled-sizes', '339x510,64', '--tile', '128', '--tile-pad', '0'])
    assert args.tiled_sizes == [(339, 510), (64, 64)] and (args.tile, args.tile_pad) == (128, 0)
    assert benchmark.parse_args([]).tiled_sizes == [(96, 96), (192, 192)] and benchmark.parse_args([]).tile == 64


def test_the_gpu_checks_flags_still_mean_one_mode(benchmark):
    assert all(flag in benchmark.build_parser().format_help() for flag in ('--amp', '--channels-last', '--json'))
    args = benchmark.parse_args(['--amp', 'bf16', '--channels-last'])
    assert [m.key for m in args.modes] == ['bf16_channels_last']
    assert [m.key for m in benchmark.parse_args([]).modes] == ['fp32']


def test_flops_are_exact_and_linear_in_the_batch(benchmark, tmp_path):
    args = benchmark.parse_args(['--tiny'])
    variants = [benchmark.VARIANTS[k] for k in ('ldl', 'aesop_srresnet')]
    ckpts = {'srresnet': benchmark.save_random_autoencoder(args, tmp_path, 'srresnet')}
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # --tiny's 1 thread, and gc.freeze() (quick collections), as main does
    gc.freeze()
    try:
        one, two = (
            benchmark.count_flops(variants, args, device=torch.device('cpu'), ckpts=ckpts, batch=n) for n in (1, 2)
        )
    finally:
        gc.unfreeze()
        torch.set_num_threads(threads)
    assert set(one) == {'ldl', 'aesop_srresnet', 'psi_srresnet'}
    assert two == {k: 2 * f for k, f in one.items()}
    assert one['aesop_srresnet'] == one['ldl'] + one['psi_srresnet']


def test_ae_part_trains_both_psi_on_the_demo_data(benchmark, capsys):
    report, out = _report(benchmark, capsys, ['--tiny', '--json', '--parts', 'ae', '--ae-iters', '2'])
    ae = report['ae_psnr']
    assert ae['iters'] == 2 and ae['val_images'] == 1 and 20 < ae['bicubic_psnr'] < 60
    for kind in ('rrdb', 'srresnet'):
        r = ae[kind]
        assert all(math.isfinite(r[k]) for k in ('psnr_init', 'psnr', 'psnr_lr')) and r['step_s'] > 0, kind
    assert any(line.startswith('| bicubic down + up (reference)') for line in out)
    assert 'steps' not in report['parts'] and 'ldl_step_s' not in report


def test_cpu_info_reads_the_bf16_flags(benchmark):
    new = benchmark.cpu_info(
        'processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx2 avx512f avx512_bf16 '
        'amx_bf16 amx_tile\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n'
    )
    assert new['model'] == 'Intel(R) Xeon(R) Platinum 8480+' and new['bf16_units'] and new['amx_bf16']
    old = benchmark.cpu_info('model name : AMD EPYC 7B12\nflags : fpu sse avx2\n')
    assert old['avx2'] and not (old['avx512f'] or old['avx512_bf16'] or old['bf16_units'])
    line = benchmark.cpu_line(old)
    assert 'avx512_bf16 no' in line and 'slower than fp32' in line and 'Sapphire Rapids' in line and 'Zen 4' in line
    assert 'can be faster' in benchmark.cpu_line(new)
    assert 'unknown' in benchmark.cpu_line(benchmark.cpu_info(''))  # no /proc/cpuinfo: no verdict


@pytest.mark.parametrize(
    'argv',
    [
        ['--patch', '64'],
        ['--modes', 'fp32', '--amp', 'bf16'],
        ['--modes', 'fp64'],
        ['--modes', 'fp32,fp32'],
        ['--variants', 'esrgan,aesop'],
        ['--parts', 'steps,naive'],
        ['--threads', '0'],
        ['--naive'],
        ['--tiled-sizes', '339x'],
        ['--tiled-sizes', '0x5'],
        ['--tile', '0'],
    ],
)
def test_bad_arguments_fail_with_one_line(benchmark, capsys, argv):
    assert benchmark.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('aesop: error: ') and err.count('\n') == 1, err
