"""Option files are data: a safe YAML loader everywhere, and one line for each way a file can be wrong."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from collections import OrderedDict

import basicsr.utils.logger
import pytest
import yaml
from conftest import REPO, run_entry

import aesop.test
import aesop.train
from aesop.errors import AesopError
from aesop.options import apply_force_yml, load_option_file, parse_override_value

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
    opt['train']['pixel_opt']['loss_weight'] = '1e-2'  # quoted: a string, whatever it spells
    with pytest.raises(AesopError, match=r"^option train\.pixel_opt\.loss_weight must be a number, got '1e-2'$"):
        check_components(opt)


def test_force_yml_takes_optional_keys_and_stops_at_the_next_flag():
    from aesop.commands import pipeline_parser

    apply_force_yml(
        {'train': {'ema_decay': 0.9}, 'path': {}}, ['train:allow_psi_change=true', 'path:allow_random_init=1']
    )
    args = pipeline_parser('train').parse_args(['--force_yml', 'train:ema_decay=0.9', '-opt', 'x.yml'])
    assert args.force_yml == ['train:ema_decay=0.9']


def test_numbers_in_lists_too():
    from aesop.options import parse_yaml
    from aesop.schema import apply_schema

    opt = {'name': 'x', 'datasets': {}, 'train': {'total_iter': 1, 'scheduler': {'type': 'MultiStepLR'}}}
    opt['train']['scheduler']['milestones'] = parse_yaml('[2e5, 4e5]', source='milestones')
    apply_schema(opt)
    assert opt['train']['scheduler']['milestones'] == [200000, 400000]
    assert all(type(milestone) is int for milestone in opt['train']['scheduler']['milestones'])
