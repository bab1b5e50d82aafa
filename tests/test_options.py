"""aesop/options.py: option files are data (a safe YAML loader everywhere, YAML 1.2 numbers, --force_yml), checked
at start-up (load_options, check_components), with one line for each way a file can be wrong."""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
import textwrap
from collections import OrderedDict
from copy import deepcopy
from pathlib import Path

import basicsr.utils.logger
import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, TINY_RRDB, load_yaml, run_entry
from test_models import base_opt

import aesop.test
import aesop.train
from aesop.errors import AesopError
from aesop.options import (
    apply_force_yml,
    check_components,
    load_option_file,
    load_options,
    parse_override_value,
)


def load(path: Path) -> dict:
    return load_option_file(path)


@pytest.mark.parametrize('name', ['train_aesop_rrdb.yml', 'test_rrdb.yml', 'train_ae.yml'])
def test_placeholder_paths_say_which_option_to_edit(name, tmp_path):
    with pytest.raises(
        AesopError, match=r'dataset folder not found: .*(DF2K|DIV2K|Set14).* \(option datasets\.\w+\.dataroot_gt\)'
    ):
        load_options(REPO / 'options' / name, is_train=name.startswith('train'), root_path=tmp_path)


def test_a_loss_entry_the_model_does_not_read_is_an_error(tmp_path):
    opt = load(REPO / 'options' / 'train_aesop_rrdb.yml')
    opt['train']['artifact_opt'] = opt['train'].pop('artifacts_opt')
    with pytest.raises(
        AesopError, match=r"AesopGANModel does not read train\.artifact_opt: did you mean 'artifacts_opt'"
    ):
        load_options(opt, is_train=True, root_path=tmp_path)


def test_official_option_names_are_translated(tmp_path):
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    opt = {
        'name': 'run',
        'datasets': {'train': {'type': 'PairedImageDataset', 'dataroot_gt': 'hr', 'use_flip': True}},
        'path': {},
        'num_gpu': 1,
    }
    load_options(opt, is_train=True, root_path=tmp_path)
    dataset = opt['datasets']['train']
    assert 'use_flip' not in dataset and dataset['use_hflip'] is True
    assert dataset['type'] == 'AesopPairedImageDataset'  # basicsr's, with one-line errors
    assert dataset['dataroot_gt'] == str(tmp_path / 'hr')
    assert opt['num_gpu'] == (1 if torch.cuda.is_available() else 0)


# The archs the docs and option files name whose constructor takes **kwargs: basicsr's SwinIR (which drops them)
# and the release's names (aesop.official's builders, checked as the entry they build, e.g. from --arch).
# name: (options it needs, a typo, the option meant, a value for it, the option file that uses it, if any)
KWARGS_ARCHS = {
    'SwinIR': ({'upscale': 4}, 'embed_dimm', 'embed_dim', 24, 'test_swinir.yml'),
    'DRCT': ({}, 'embed_dimm', 'embed_dim', 24, 'test_drct.yml'),
    'SPSRNet': ({}, 'nff', 'nf', 8, 'test_spsr.yml'),
    'RRDBNet_LEGACY': ({'in_nc': 3, 'out_nc': 3}, 'num_blocks', 'num_block', 1, 'test_esrgan.yml'),
    'VGGStyleDiscriminator128': ({'num_in_ch': 3}, 'num_fet', 'num_feat', 8, None),
    'VGGStyleDiscriminator256': ({'num_in_ch': 3}, 'num_fet', 'num_feat', 8, None),
    'AutoEncoder_RRDBNet': (
        {'dec_opt': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3}},
        'num_blok',
        'num_block',
        1,
        None,
    ),
    'BicubicDown_RRDBNet': (
        {'dec_opt': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3}},
        'num_blok',
        'num_block',
        1,
        None,
    ),
}


@pytest.mark.parametrize('name', list(KWARGS_ARCHS))
def test_a_typo_in_an_arch_that_takes_kwargs_is_one_line(name, tmp_path):
    from aesop.inference import load_generator

    needs, typo, meant, value, option_file = KWARGS_ARCHS[name]
    arch = {'type': name, **deepcopy(needs)}
    check_components({'network_g': {**deepcopy(arch), meant: value}, 'scale': 4})  # a real option is taken
    message = rf"^unknown option '{typo}' for \w+ \(option network_g\): did you mean '{meant}'\? it takes .*{meant}"
    with pytest.raises(AesopError, match=message):  # --arch: checked before the weights are read
        load_generator({**arch, typo: value}, tmp_path / 'none.pth', scale=None)
    if option_file:
        opt = load(REPO / 'options' / option_file)
        opt['network_g'][typo] = value
        with pytest.raises(AesopError, match=message):
            load_options(opt, is_train=True, root_path=tmp_path)  # the start-up check of train.py / test.py


class _Parent(torch.nn.Module):
    def __init__(self, depth: int = 2) -> None:
        super().__init__()


class _Unused(torch.nn.Module):  # as basicsr's SwinIR: **kwargs taken and dropped
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()


class _ToSuper(_Parent):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)


class _ToNamedSuper(_Parent):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super(_ToNamedSuper, self).__init__(**kwargs)  # noqa: UP008  (basicsr's style)


class _ToGrandparent(_ToSuper):  # forwarded twice: _ToSuper's width, then _Parent's depth
    def __init__(self, height: int = 1, **kwargs) -> None:
        _ToSuper.__init__(self, **kwargs)


class _ToOther(torch.nn.Module):  # forwarded to a class its module names
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.body = _Parent(**kwargs)


class _Reads(torch.nn.Module):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.foo, self.bar = kwargs.get('foo'), kwargs['bar'] if 'qux' in kwargs else kwargs.pop('baz', 0)


class _Stores(torch.nn.Module):  # what it does with them can't be told: anything is taken, as before
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.extra = kwargs


class _ToUnknown(torch.nn.Module):  # forwarded to a method: not followed
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.body = self.make(**kwargs)

    def make(self, **kwargs) -> torch.nn.Module:
        return torch.nn.Identity()


class _Locals(torch.nn.Module):
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        self.args = locals()


class _ShadowsGlobal(torch.nn.Module):  # the name it calls is its own, not the module's _Parent
    def __init__(self, width: int = 1, **kwargs) -> None:
        super().__init__()
        _Parent = _Unused  # noqa: N806
        self.body = _Parent(**kwargs)


class _ParameterShadows(torch.nn.Module):  # a parameter named as a module class
    def __init__(self, width: int = 1, _Parent: type = _Unused, **kwargs) -> None:  # noqa: N803
        super().__init__()
        self.body = _Parent(**kwargs)


class _Three(torch.nn.Module):
    def __init__(self, width: int = 1, depth: int = 2, height: int = 3) -> None:
        super().__init__()


class _PositionalToOther(torch.nn.Module):  # width filled by position, height by name: depth is left
    def __init__(self, size: int = 1, **kwargs) -> None:
        super().__init__()
        self.body = _Three(3, height=2, **kwargs)


class _PositionalToSuper(_Three):  # super() passes self: 3 fills width
    def __init__(self, size: int = 1, **kwargs) -> None:
        super().__init__(3, **kwargs)


_NoSource = type('_NoSource', (), {'__init__': eval('lambda self, width=1, **kwargs: None')})  # noqa: S307


@pytest.mark.parametrize(
    ('arch', 'taken', 'refused', 'meant'),
    [
        (_Unused, ['width'], 'widht', 'width'),
        (_ToSuper, ['width', 'depth'], 'detph', 'depth'),
        (_ToNamedSuper, ['width', 'depth'], 'detph', 'depth'),
        (_ToGrandparent, ['height', 'width', 'depth'], 'detph', 'depth'),
        (_ToOther, ['width', 'depth'], 'widht', 'width'),
        (_Reads, ['width', 'foo', 'bar', 'qux', 'baz'], 'fooo', 'foo'),
        (_Stores, ['width', 'anything'], None, None),
        (_ToUnknown, ['width', 'anything'], None, None),
        (_Locals, ['width', 'anything'], None, None),
        (_NoSource, ['width', 'anything'], None, None),
        (_ShadowsGlobal, ['width', 'anything'], None, None),
        (_ParameterShadows, ['width', '_Parent', 'anything'], None, None),
        (_PositionalToOther, ['size', 'depth'], 'width', 'depth'),
        (_PositionalToOther, ['size', 'depth'], 'height', None),
        (_PositionalToSuper, ['size', 'depth', 'height'], 'width', 'depth'),
    ],
    ids=lambda v: v.__name__.strip('_') if isinstance(v, type) else None,
)
def test_what_an_arch_does_with_its_kwargs_is_read_from_its_source(arch, taken, refused, meant, monkeypatch):
    """A typo is refused when the source shows every key ``**kwargs`` can carry; else anything is taken."""
    from basicsr.utils.registry import ARCH_REGISTRY

    monkeypatch.setitem(ARCH_REGISTRY._obj_map, 'KwargsArch', arch)
    for name in taken:
        check_components({'network_g': {'type': 'KwargsArch', name: 1}})
    if refused:
        accepted, hint = ', '.join(taken), rf"did you mean '{meant}'\? " if meant else ''
        message = rf"^unknown option '{refused}' for KwargsArch \(option network_g\): {hint}it takes {accepted}$"
        with pytest.raises(AesopError, match=message):
            check_components({'network_g': {'type': 'KwargsArch', refused: 1}})


EVIL = 'note: !!python/object/apply:os.system ["touch {marker}"]\n'


@pytest.mark.parametrize('script', ['train', 'test'])
def test_an_option_file_that_would_run_code_is_refused(script, tmp_path):
    marker = tmp_path / 'marker'
    opt_file = tmp_path / 'evil.yml'
    opt_file.write_text(EVIL.format(marker=marker) + (REPO / 'options' / 'demo' / f'{script}_aesop.yml').read_text())
    proc = run_entry(script, opt_file, tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf'aesop: error: {re.escape(str(opt_file))}:1:7: refused YAML tag '
        r'tag:yaml\.org,2002:python/object/apply:os\.system: option files hold plain data only .*',
        line,
    ), proc.stderr
    assert 'Traceback' not in proc.stderr


def test_the_safe_loader_keeps_what_basicsr_files_use(tmp_path):
    path = tmp_path / 'o.yml'
    path.write_text(
        'name: x\ntrain:\n  lr: !!float 1e-4\n  milestones: [1, 2]\n  resume: ~\nval: {freq: !!float 5e3}\n'
    )
    opt = load_option_file(path)
    assert isinstance(opt, OrderedDict) and list(opt) == ['name', 'train', 'val']
    assert opt['train'] == {'lr': 1e-4, 'milestones': [1, 2], 'resume': None} and opt['val']['freq'] == 5000.0


def test_the_loader_reads_yaml_1_2_floats(tmp_path):
    """1e-3 and 4e5 (no dot: strings in YAML 1.1) are floats, as .5, 1. and -1E+2; an int stays an int, a quoted
    number a string, and yaml.SafeLoader itself is left as it is."""
    path = tmp_path / 'o.yml'
    path.write_text('a: [1e-3, 4e5, -1E+2, .5, 1., .inf, 4, -4, 0x10, \'1e-3\', "2e5", 1e, e5, 1e-3x]\n')
    values = load_option_file(path)['a']
    assert values[:3] == [1e-3, 400000.0, -100.0] and values[3:6] == [0.5, 1.0, float('inf')]
    assert values[6:9] == [4, -4, 16] and all(type(value) is int for value in values[6:9])
    assert values[9:] == ['1e-3', '2e5', '1e', 'e5', '1e-3x']
    assert yaml.safe_load('[1e-3, 4e5]') == ['1e-3', '4e5']


@pytest.fixture(autouse=True)
def _fresh_logging(monkeypatch):
    for name in ('basicsr', None):
        monkeypatch.setattr(logging.getLogger(name), 'handlers', [])
    monkeypatch.setattr(basicsr.utils.logger, 'initialized_logger', {})


def one_line(entry, argv: list[str], root, monkeypatch, capsys) -> str:
    """``aesop/<train|test>.py`` in this process with ``argv``; returns its one-line error."""
    monkeypatch.setenv('AESOP_ROOT', str(root))
    monkeypatch.setattr(sys, 'argv', [f'aesop/{entry.__name__.split(".")[-1]}.py', *argv])
    with pytest.raises(SystemExit) as exit_info:
        entry.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('aesop: error: ') and not any('Traceback' in line for line in err), '\n'.join(err)
    return err[-1].removeprefix('aesop: error: ')


DEMO_TRAIN = (REPO / 'options' / 'demo' / 'train_aesop.yml').read_text()


FILE_CASES = {
    'syntax error': ('name: x\ntrain: [1, 2\n', r'o\.yml:3:1: YAML syntax error: expected .*'),
    'empty file': ('', r'option file .*o\.yml is empty'),
    'top-level list': ('- a\n- b\n', r'option file .*o\.yml must be a mapping of options \(key: value\), not a list'),
    'no network_g': (
        re.sub(r'network_g: .*\n', '', DEMO_TRAIN),
        r'option file .*o\.yml has no network_g section \(each a mapping\)',
    ),
    'no train section': (
        DEMO_TRAIN[: DEMO_TRAIN.index('\ntrain:\n')] + DEMO_TRAIN[DEMO_TRAIN.index('\nval:\n') :],
        r'has no train section',
    ),
}


@pytest.mark.parametrize('case', list(FILE_CASES))
def test_a_malformed_option_file_is_one_line_and_creates_nothing(case, tmp_path, monkeypatch, capsys):
    text, expected = FILE_CASES[case]
    (tmp_path / 'o.yml').write_text(text)
    assert re.search(expected, one_line(aesop.train, ['-opt', str(tmp_path / 'o.yml')], tmp_path, monkeypatch, capsys))
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


def test_a_missing_option_file_is_one_line(tmp_path, monkeypatch, capsys):
    message = one_line(aesop.test, ['-opt', str(tmp_path / 'nope.yml')], tmp_path, monkeypatch, capsys)
    assert message == f'option file not found: {tmp_path / "nope.yml"}'


@pytest.mark.parametrize(
    ('entry', 'expected'),
    [
        ('train:total_itr=3', r"no option 'total_itr' in train; did you mean 'train:total_iter'\?"),
        ('trian:total_iter=3', r"no option 'trian' in the top level; did you mean 'train'\?"),
        ('train:total_iter', r'expected key:subkey=value'),
        ('train=5', r'train is a section; set one of its keys'),
        ('train:total_iter"]=0;import os;x=opt["a=1', r'is not an option key'),
    ],
)
def test_force_yml_entries_are_checked(entry, expected, tmp_path, monkeypatch, capsys):
    (tmp_path / 'o.yml').write_text(DEMO_TRAIN)
    argv = ['-opt', str(tmp_path / 'o.yml'), '--force_yml', entry]
    assert re.search(expected, one_line(aesop.train, argv, tmp_path, monkeypatch, capsys))


def test_force_yml_values_are_parsed_without_eval():
    assert parse_override_value('1e-4') == 1e-4 and parse_override_value('!!float 5e3') == 5000.0
    assert parse_override_value('300') == 300 and parse_override_value('~') is None
    assert parse_override_value('True') is True and parse_override_value('[1, 2.5, a]') == [1, 2.5, 'a']
    assert parse_override_value('4e5') == 400000.0 and parse_override_value("'1e-4'") == '1e-4'  # as in a file
    assert parse_override_value('none') is None and parse_override_value('no') is False
    assert parse_override_value('a: b') == 'a: b' and parse_override_value('x]') == 'x]'  # the string itself
    assert parse_override_value('__import__("os")') == '__import__("os")'  # a string, never evaluated
    with pytest.raises(AesopError, match='refused YAML tag'):
        parse_override_value('[!!python/object/apply:os.system ["x"]]')
    apply_force_yml({'train': {'ema_decay': 0.9}}, ['train:ema_decay=0.999'])  # a known key passes


def test_testing_without_weights_is_refused(tiny_data, tmp_path, monkeypatch, capsys):
    from conftest import load_yaml, point_at, write_yaml

    opt = point_at(load_yaml(REPO / 'options' / 'demo' / 'test_aesop.yml'), tiny_data)
    opt['path'].pop('pretrain_network_g', None)
    argv = ['-opt', str(write_yaml(opt, tmp_path / 'o.yml'))]
    message = one_line(aesop.test, argv, tmp_path, monkeypatch, capsys)
    assert message.startswith('path.pretrain_network_g is not set: testing would score a randomly initialised')


def test_numbers_written_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 reads 1e-3 and 4e5 as strings; the loader reads them as YAML 1.2 does, floats (an integral one for an
    int option is that int), in the schema's keys and in a component's parameters alike; a quoted number is a
    string, refused where a number is taken (a component's parameter too, by annotation or default); other
    strings stay."""
    from aesop.errors import AesopError
    from aesop.options import check_components, load_options

    path = tmp_path / 'o.yml'
    path.write_text(
        textwrap.dedent("""\
            name: x
            model_type: SRModel
            datasets: {}
            train:
              optim_g: {lr: 1e-3, type: Adam}
              total_iter: 4e5
              perceptual_opt:
                {type: PerceptualLoss, layer_weights: {conv5_4: 1}, perceptual_weight: 1e-2, criterion: l1}
              pixel_opt: {type: AesopLowPassLoss, loss_weight: 5e-1}
            val:
              metrics: {psnr: {type: calculate_lr_psnr, crop_border: 4}}
            logger: {print_freq: 1e2}
        """)
    )
    opt = load_option_file(path)
    load_options(opt)  # validated: the schema's keys and every component's parameters
    assert opt['train']['optim_g']['lr'] == 1e-3 and opt['train']['perceptual_opt']['perceptual_weight'] == 0.01
    assert opt['train']['pixel_opt']['loss_weight'] == 0.5  # annotated float (this project's loss)
    assert opt['train']['perceptual_opt']['criterion'] == 'l1'  # basicsr's default is a string: left alone
    assert opt['val']['metrics']['psnr']['crop_border'] == 4 and isinstance(
        opt['val']['metrics']['psnr']['crop_border'], int
    )
    assert opt['train']['total_iter'] == 400000 and isinstance(opt['train']['total_iter'], int)
    assert opt['logger']['print_freq'] == 100 and isinstance(opt['logger']['print_freq'], int)
    opt['train']['perceptual_opt']['perceptual_weight'] = '0.01'  # quoted: a string
    with pytest.raises(
        AesopError, match=r"^option train\.perceptual_opt\.perceptual_weight must be a number, got '0\.01'$"
    ):
        check_components(opt)
    opt['train']['perceptual_opt']['perceptual_weight'] = 0.01
    opt['train']['pixel_opt']['loss_weight'] = '1e-2'  # quoted: a string, whatever it spells (a weight's rule)
    with pytest.raises(
        AesopError, match=r"^option train\.pixel_opt\.loss_weight must be a finite number ≥ 0, got '1e-2'$"
    ):
        check_components(opt)


def test_force_yml_takes_optional_keys_and_stops_at_the_next_flag():
    from aesop.commands import pipeline_parser

    apply_force_yml(
        {'train': {'ema_decay': 0.9}, 'path': {}}, ['train:allow_psi_change=true', 'path:allow_random_init=1']
    )
    args = pipeline_parser('train').parse_args(['--force_yml', 'train:ema_decay=0.9', '-opt', 'x.yml'])
    assert args.force_yml == ['train:ema_decay=0.9']


def test_numbers_in_lists_too():
    from aesop.models.optim import build_scheduler
    from aesop.options import parse_yaml

    options = {'type': 'MultiStepLR', 'milestones': parse_yaml('[2e5, 4e5]', source='milestones')}
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    milestones = list(build_scheduler(options, optimizer, key='train.scheduler').milestones)
    assert milestones == [200000, 400000] and all(type(milestone) is int for milestone in milestones)


def test_cuda_prefetch_and_pinned_memory_fall_back_to_cpu(tmp_path, capsys):
    (tmp_path / 'hr').mkdir()
    cv2.imwrite(str(tmp_path / 'hr' / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    dataset = {'type': 'PairedImageDataset', 'dataroot_gt': 'hr', 'prefetch_mode': 'cuda', 'pin_memory': True}
    opt = {'name': 'run', 'datasets': {'train': dataset}, 'path': {}, 'num_gpu': 0}
    load_options(opt, is_train=True, root_path=tmp_path)
    assert dataset['prefetch_mode'] is None and dataset['pin_memory'] is False
    assert capsys.readouterr().err.count('aesop: warning: datasets.train: prefetch_mode cuda') == 1


@pytest.mark.parametrize(
    ('module', 'entry', 'message'),
    [
        ('pyiqa', {'val': {'metrics': {'musiq': {'type': 'calculate_pyiqa', 'metric': 'musiq'}}}}, 'val.metrics.musiq'),
        ('open_clip', {'network_clip': {'type': 'AesopClipImageEncoder'}}, 'network_clip'),
    ],
)
def test_a_missing_optional_package_is_one_line_at_start_up(tmp_path, monkeypatch, module, entry, message):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == module else find_spec(name, *a))
    opt = {'name': 'run', 'datasets': {}, 'path': {}, **entry}
    extra = {'pyiqa': 'iqa', 'open_clip': 'hraware'}[module]
    with pytest.raises(AesopError, match=rf'\(option {message}\) needs the optional package {module}: .*\[{extra}\]'):
        load_options(opt, is_train=True, root_path=tmp_path)
    monkeypatch.undo()
    if find_spec(module) is not None:  # installed here (open_clip, the dev extra): nothing to say
        load_options({'name': 'run', 'datasets': {}, 'path': {}, **entry}, is_train=True, root_path=tmp_path)


def test_ae_model_refuses_a_perceptual_loss_it_would_ignore(tmp_path):
    opt = load_yaml(REPO / 'options' / 'train_ae.yml')
    opt.update(is_train=True, dist=False)
    opt['train']['perceptual_opt'] = {'type': 'PerceptualLoss', 'layer_weights': {'conv5_4': 1}}
    with pytest.raises(AesopError, match=r'AesopAEModel does not read train\.perceptual_opt'):
        load_options(opt, is_train=True, root_path=tmp_path)


@pytest.mark.parametrize(
    ('key', 'value', 'message'),
    [
        ('resize_prob', [0.2, 0.7, 0.3], r'option resize_prob must sum to 1, got \[0.2, 0.7, 0.3\]'),
        ('jpeg_range', [30, 120], r'option jpeg_range must be \[lo, hi\] with 1 <= lo <= hi <= 100'),
        ('gan_gt_usm', 'yes', r"option gan_gt_usm: input should be a valid boolean.*got 'yes'$"),
        (
            'queue_size',
            10,
            r'option queue_size must be a multiple of the batch size 12 \(datasets.train.batch_size_per_gpu\), got 10',
        ),
    ],
)
def test_bad_degradation_options_fail_at_start_up(tmp_path, key, value, message):
    opt = load_yaml(REPO / 'options' / 'train_aesop_realworld.yml')
    opt.update(is_train=True, dist=False)
    opt[key] = value
    with pytest.raises(AesopError, match=message):
        load_options(opt, is_train=True, root_path=tmp_path)


def test_step_options_on_a_model_that_does_not_read_them_are_refused(tmp_path):
    from aesop.errors import AesopError
    from aesop.options import check_components

    opt = {**base_opt(tmp_path, accumulate=2), 'model_type': 'AesopSRModel', 'network_g': TINY_RRDB}
    with pytest.raises(AesopError, match='train.accumulate is not supported by AesopSRModel'):
        check_components(opt)
    del opt['train']['accumulate']
    # any value, the model's own default too (grad_clip: 1 was taken for "unset" and silently ignored)
    for key, value in (
        ('grad_clip', 1),
        ('grad_clip', 0.5),
        ('accumulate', 1),
        ('channels_last', False),
        ('amp', 'none'),
    ):
        with pytest.raises(AesopError, match=f'train.{key} is not supported by AesopSRModel'):
            check_components({**opt, 'train': {**opt['train'], key: value}})
    check_components({**opt, 'train': {**opt['train'], 'grad_clip': None}})  # ~ is unset


def test_a_crop_border_leaves_each_metric_the_side_it_needs():
    """The start-up check of val.metrics' crop_border has aesop-evaluate's rule (metrics.scoring.least_side): what
    the crop leaves of the smallest GT image must hold SSIM's 11 px window, NIQE's 96 px blocks, one pixel else."""
    from aesop.options import check_crop_borders

    smallest = {'val': (Path('v/a.png'), (40, 30))}  # (width, height) of the smallest GT image of the set
    opt = {'datasets': {'val': {'name': 'v'}}, 'val': {'metrics': {'ssim': {'type': 'calculate_ssim'}}}}
    opt['val']['metrics']['ssim']['crop_border'] = 10  # 10×20 px left
    message = (
        'option val.metrics.ssim.crop_border 10 leaves 10×20 px of v/a.png (30×40, datasets.val.dataroot_gt) for '
        'calculate_ssim, which needs 11 px a side: at most 9'
    )
    with pytest.raises(AesopError, match=f'^{re.escape(message)}$'):
        check_crop_borders(opt, smallest)
    opt['val']['metrics']['ssim']['crop_border'] = 9  # 12×22 px left
    check_crop_borders(opt, smallest)
    opt['val']['metrics'] = {'psnr': {'type': 'calculate_psnr', 'crop_border': 14}}  # 2×12 px: enough for PSNR
    check_crop_borders(opt, smallest)
    opt['val']['metrics'] = {'niqe': {'type': 'aesop_niqe', 'crop_border': 0}}
    with pytest.raises(AesopError, match='for aesop_niqe, which needs 96 px a side: leave niqe out of this set'):
        check_crop_borders(opt, smallest)
