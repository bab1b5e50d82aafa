"""scripts/benchmark.py on tiny nets: the JSON it reports, and that its naive rows change only the work done."""

from __future__ import annotations

import importlib.util
import json
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


def test_tiny_run_reports_every_row_as_json(benchmark, capsys):
    assert benchmark.main(['--tiny', '--json', '--steps', '1', '--naive']) == 0
    out = capsys.readouterr().out.strip().splitlines()
    report = json.loads(out[-1])
    variants = [v.key for v in (*benchmark.OURS, *benchmark.NAIVE)]
    ratios = ['aesop_over_ldl', 'naive_aesop_over_ldl', 'naive_aesop_over_naive_ldl', 'esrgan_over_ldl']
    for key in [f'{v}_step_s' for v in variants] + ratios + ['infer_images_per_s', 'psi_hr_s', 'psi_sr_s']:
        assert report[key] > 0, key
    assert report['psi_floor_over_ldl'] == pytest.approx(
        1 + (report['psi_hr_s'] + report['psi_sr_s']) / report['ldl_step_s']
    )
    assert set(report['peak_mem_mb']) == set(variants) and all(v > 0 for v in report['peak_mem_mb'].values())
    assert [(t['lr_size'], t['tile']) for t in report['tiled']] == [(24, 16), (48, 16), (48, 0)]
    assert all(t['seconds'] > 0 and t['peak_mem_mb'] >= 0 for t in report['tiled'])  # RSS: may be reused pages
    assert report['conv_dtype'] == 'float32' and report['tiny'] and report['steps'] == 1
    assert any(line.startswith('| AESOP, naive') for line in out)  # the table is printed too


def test_bad_arguments_fail_with_one_line(benchmark, capsys):
    assert benchmark.main(['--patch', '64']) == 2
    assert capsys.readouterr().err.startswith('aesop: error: ')


def _step_twice(benchmark, variant, args, ckpt):
    torch.manual_seed(0)
    model = benchmark.build_variant(variant, args, device=torch.device('cpu'), ae_ckpt=ckpt)
    graphs = {'ema': [], 'd': []}
    model.net_g_ema.register_forward_hook(lambda m, i, o: graphs['ema'].append(o.requires_grad))
    model.net_d.register_forward_hook(lambda m, i, o: graphs['d'].append(o.requires_grad))
    batch = benchmark.make_batch(args)
    logs = []
    for it in (1, 2):
        model.feed_data(batch)
        model.optimize_parameters(it)
        logs.append({k: float(v) for k, v in model.log_dict.items()})
    return model, logs, graphs


def test_naive_model_does_the_extra_work_with_the_same_losses_and_updates(benchmark, tmp_path):
    args = benchmark.parse_args(['--tiny'])
    ckpt = benchmark.save_random_autoencoder(args, tmp_path)
    naive_variant = next(v for v in benchmark.NAIVE if v.key == 'naive_aesop')
    ours, ours_logs, ours_graphs = _step_twice(benchmark, benchmark.OURS[2], args, ckpt)
    naive, naive_logs, naive_graphs = _step_twice(benchmark, naive_variant, args, ckpt)

    for naive_log, ours_log in zip(naive_logs, ours_logs):
        assert naive_log == pytest.approx(ours_log, rel=1e-5, abs=1e-9)
    for a, b in zip(ours.net_g.parameters(), naive.net_g.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    psi_ours = ours.cri_fidelity['l_g_aesop'].autoencoder
    psi_naive = naive.cri_fidelity['l_g_aesop'].autoencoder
    assert all(p.grad is None for p in psi_ours.parameters())
    assert all(p.grad is not None for p in psi_naive.decoder.parameters())  # computed, never used
    assert all(torch.equal(a, b) for a, b in zip(psi_ours.parameters(), psi_naive.parameters()))
    assert ours_graphs['ema'] == [False, False] and naive_graphs['ema'] == [True, True]
    # the same D passes; naive records a graph for the fake scores' mean of the D step too
    assert len(naive_graphs['d']) == len(ours_graphs['d']) and sum(naive_graphs['d']) > sum(ours_graphs['d'])
    assert all(n or not o for n, o in zip(naive_graphs['d'], ours_graphs['d']))
