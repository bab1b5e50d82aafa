"""The documentation (README.md and docs/*.md) stays true to the code: the options reference is the one
generated from the schema; every link, anchor, option file and script it names exists; every documented command
parses with its real parser, and the ones on the demo's data run as copied; every command's --help names it as
run and has a description and examples."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import inspect
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import pytest
import torch
from basicsr.archs import build_network
from conftest import load_yaml, run_python

from aesop.commands import pipeline_parser
from aesop.data import make_degraded_lr, make_demo_dataset
from aesop.errors import AesopError
from aesop.schema import options_reference
from aesop.utils import RANDOM_BACKBONES_ENV

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / 'docs'
PAGES = [REPO / 'README.md', *sorted(DOCS.glob('*.md'))]
FENCE = re.compile(r'^```.*?^```[ \t]*$', re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r'`[^`\n]*`')
LINK = re.compile(r'!?\[[^\]\n]*\]\(([^)\s]+)\)')
PROJECT_PATH = re.compile(r'(?<![\w./-])((?:options|scripts|aesop|tests)/[\w./-]*\w\.(?:yml|py))\b')
BARE_OPTION_FILE = re.compile(r'`((?:train|test|finetune)_[a-z0-9_]+\.yml)`')


def prose(page: Path) -> str:
    """The page without fenced code blocks and inline code (where link syntax is not a link)."""
    return INLINE_CODE.sub('', FENCE.sub('', page.read_text(encoding='utf-8')))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation (backticks too) dropped, spaces as hyphens."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (a repeated heading gets ``-1``, ``-2``, … as on GitHub)."""
    found: set[str] = set()
    for heading in re.findall(r'^#{1,6} (.+)$', FENCE.sub('', page.read_text(encoding='utf-8')), re.MULTILINE):
        base = anchor = slug(heading)
        n = 0
        while anchor in found:
            n += 1
            anchor = f'{base}-{n}'
        found.add(anchor)
    return found


def rel(page: Path) -> str:
    return str(page.relative_to(REPO))


def test_options_reference_is_generated_from_the_schema():
    """docs/options.md is exactly what aesop.schema.options_reference() renders."""
    assert (DOCS / 'options.md').read_text(encoding='utf-8') == options_reference(), (
        'docs/options.md is stale: run python scripts/options_reference.py'
    )


def test_options_reference_script_writes_and_checks(tmp_path):
    """scripts/options_reference.py writes the file; --check exits 1 while it is stale, 0 once written."""
    spec = importlib.util.spec_from_file_location('options_reference_script', REPO / 'scripts' / 'options_reference.py')
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script
    spec.loader.exec_module(script)
    out = tmp_path / 'options.md'
    assert script.main(['--check', '-o', str(out)]) == 1
    assert script.main(['-o', str(out)]) == 0
    assert out.read_text(encoding='utf-8') == options_reference()
    assert script.main(['--check', '-o', str(out)]) == 0


def test_the_reference_lists_every_section_and_family():
    text = options_reference()
    for title in ('## Top level', '## `datasets.<phase>`', '## `datasets.<phase>.io_backend`', '## `train`'):
        assert f'\n{title}\n' in text
    for title in ('`train.optim_g`', '## `train.scheduler`', '## `train.controller`', '## `val`', '## `logger`'):
        assert title in text
    for title in ('## `logger.wandb`', '## `path`', '## `dist_params`'):
        assert f'\n{title}\n' in text
    assert "| `backend` | `'nccl' \\| 'gloo' \\| 'mpi'` | `'nccl'` |" in text
    assert "| `type` | `str` | `'Adam'` |" in text and '| `lr` | `number`, > 0 | *required* |' in text
    assert '| `total_iter` | `int`, > 0 | *required* |' in text
    for family in ('`network_*`', '`pretrain_network_*`', '`param_key_*`', '`strict_load_*`', '`*_opt`'):
        assert f'- {family}: ' in text


@pytest.mark.parametrize('page', PAGES, ids=rel)
def test_relative_links_and_anchors_resolve(page: Path):
    """Every relative link (and image) points to an existing file, and every #anchor to a heading of it."""
    problems = []
    for target in LINK.findall(prose(page)):
        if re.match(r'[a-z][a-z0-9+.-]*:', target):  # https:, mailto:
            continue
        path, _, anchor = target.partition('#')
        file = (page.parent / path).resolve() if path else page
        if not file.is_file():
            problems.append(f'{target}: no such file')
        elif anchor and file.suffix == '.md' and anchor not in anchors(file):
            problems.append(f'{target}: no heading with anchor #{anchor} in {rel(file)}')
    assert not problems, f'{rel(page)}: ' + '; '.join(problems)


@pytest.mark.parametrize('page', PAGES, ids=rel)
def test_named_option_files_and_scripts_exist(page: Path):
    """Every options/…yml, scripts/…py, aesop/…py and tests/…py path, and every option file named bare
    (`train_….yml`, `test_….yml`, `finetune_….yml`), exists in the repository."""
    text = page.read_text(encoding='utf-8')
    missing = [p for p in PROJECT_PATH.findall(text) if not (REPO / p).is_file()]
    missing += [f'options/{name}' for name in BARE_OPTION_FILE.findall(text) if not (REPO / 'options' / name).is_file()]
    assert not missing, f'{rel(page)} names files that do not exist: {sorted(set(missing))}'


def test_the_readme_links_every_docs_page():
    linked = {(REPO / target.partition('#')[0]).resolve() for target in LINK.findall(prose(REPO / 'README.md'))}
    unlinked = [rel(page) for page in PAGES[1:] if page.resolve() not in linked]
    assert not unlinked, f'README.md does not link {unlinked}'


@pytest.mark.parametrize('page', PAGES, ids=rel)
def test_no_machine_paths(page: Path):
    """The docs name project-relative paths only, never a checkout's absolute location."""
    found = re.findall(r'(?<![\w.~-])/(?:work|home|tmp|root|Users)/\S*', page.read_text(encoding='utf-8'))
    assert not found, f'{rel(page)} names machine paths: {found}'


def test_no_merge_conflict_markers_anywhere():
    """A merge's markers once reached docs/architecture.md unnoticed: no tracked text file holds one."""
    import subprocess

    if not (REPO / '.git').exists():
        pytest.skip('not a git checkout')
    files = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True).stdout.split()
    marked = []
    for name in files:
        path = REPO / name
        if path.suffix in {'.md', '.py', '.yml', '.yaml', '.toml', '.txt', '.cfg'} and path.is_file():
            if re.search(r'^(<{7} |={7}$|>{7} )', path.read_text(encoding='utf-8'), re.MULTILINE):
                marked.append(name)
    assert files and not marked, marked


# ------------------------------------------------------------------------------------------------------------------
# The documented commands: every project command line of a fenced ``bash`` block is parsed with its command's own
# parser; the ones on the demo's data and outputs are run, as copied, in a folder shaped like a clone after
# ``make demo``; the others name nothing of the user's unless their block says so in its first line.

BASH_BLOCK = re.compile(r'^```bash\n(.*?)^```', re.MULTILINE | re.DOTALL)
OWN_DATA = '# needs your own'  # the first line of a block whose commands need the user's data or weights
DEMO_PATH = re.compile(r'(?<![\w/])(?:datasets/demo/|results/demo_|experiments/demo_)')
ENV_ASSIGNMENT = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=(.*)$', re.DOTALL)
SEPARATORS = ('&&', '||', ';', '|')
WRAPPERS = ('srun',)  # Slurm's launcher: the command after its options (each one word: --ntasks-per-node=4) is parsed
PATH_LIKE = re.compile(r'/|\.(?:pth|png|jpe?g|safetensors|csv|txt|onnx|yml)$')
OUTPUT_DESTS = ('out', 'output')  # the parsers' destinations of what a command writes (and the evaluator's csv)
PIPELINES = {'aesop-train': 'train', 'aesop/train.py': 'train', 'aesop-test': 'test', 'aesop/test.py': 'test'}
LAUNCHERS = ('aesop-torchrun', 'python -m aesop.launch')
CONSOLE_SCRIPTS = dict(
    re.findall(r'^(aesop-[\w-]+) = "([\w.]+):main"$', (REPO / 'pyproject.toml').read_text(), re.MULTILINE)
)
SCRIPTS = sorted(f'scripts/{p.name}' for p in (REPO / 'scripts').glob('*.py'))


@dataclass(frozen=True)
class Command:
    """One command line of a fenced ``bash`` block: continuation lines joined, the comment dropped."""

    page: str
    line: int
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]  # after the environment assignments
    marked: bool  # its block starts with OWN_DATA

    def __str__(self) -> str:
        return f'{self.page}:{self.line}: {shlex.join(self.argv)}'

    @property
    def program(self) -> str | None:
        """The project command it runs (``aesop-infer``, ``scripts/demo.py``, ``aesop/train.py``, ``python -m
        aesop.launch``), or ``None`` (pip, make, bash, …)."""
        return program_of(self.argv)

    @property
    def demo(self) -> bool:
        """Whether it reads or writes the demo's data and outputs (run by the tests)."""
        return any(DEMO_PATH.search(arg) for arg in self.argv)


def program_of(argv: Sequence[str]) -> str | None:
    if argv and argv[0].startswith('aesop-'):
        return argv[0]
    if len(argv) > 1 and argv[0] in ('python', 'python3'):
        if argv[1].endswith('.py') and argv[1].startswith(('scripts/', 'aesop/')):
            return argv[1]
        if argv[1] == '-m' and len(argv) > 2 and argv[2].startswith('aesop'):
            return f'python -m {argv[2]}'
    return None


def split_command_line(text: str) -> list[tuple[dict[str, str], list[str]]]:
    """``(environment assignments, argv)`` of each command of a shell line (``&&``, ``;``, ``|`` split it); the
    command ``srun`` runs stands for it."""
    commands, tokens = [], []
    for token in [*shlex.split(text, comments=True), ';']:
        if token not in SEPARATORS:
            tokens.append(token)
            continue
        env = {}
        while tokens and (assignment := ENV_ASSIGNMENT.match(tokens[0])):
            env[assignment.group(1)] = assignment.group(2)
            tokens.pop(0)
        if tokens and tokens[0] in WRAPPERS:
            tokens = tokens[1:]
            while tokens and tokens[0].startswith('-'):
                tokens.pop(0)
        if tokens:
            commands.append((env, tokens))
        tokens = []
    return commands


def documented_commands() -> list[Command]:
    """Every command of every fenced ``bash`` block of README.md and docs/*.md, in page order."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding='utf-8')
        for block in BASH_BLOCK.finditer(text):
            lines = block.group(1).splitlines()
            first = next((line.strip() for line in lines if line.strip() and not line.startswith('#!')), '')
            marked = first.startswith(OWN_DATA)  # a batch script's first line is its interpreter's
            logical, start = '', None
            for number, line in enumerate(lines, text.count('\n', 0, block.start(1)) + 1):
                start = start or number
                if line.rstrip().endswith('\\'):
                    logical += line.rstrip()[:-1] + ' '
                    continue
                for env, argv in split_command_line(logical + line):
                    found.append(Command(rel(page), start, tuple(env.items()), tuple(argv), marked))
                logical, start = '', None
    return found


COMMANDS = documented_commands()
PROJECT_COMMANDS = [c for c in COMMANDS if c.program]
DEMO_COMMANDS = list({(c.env, c.argv): c for c in PROJECT_COMMANDS if c.demo}.values())  # once each, page order


def load_module(program: str) -> ModuleType:
    """The module of a command: ``aesop-infer`` → ``aesop.inference``, ``scripts/x.py`` → that file."""
    if program in LAUNCHERS:
        return importlib.import_module('aesop.launch')
    if program.startswith('aesop-'):
        return importlib.import_module(CONSOLE_SCRIPTS[program])
    if program.startswith('aesop/'):
        return importlib.import_module(program.removesuffix('.py').replace('/', '.'))
    name = f'aesop_docs_{Path(program).stem}'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / program)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def parse_command(argv: Sequence[str]) -> tuple[str, argparse.Namespace]:
    """Parse a project command line with its command's real parser (and, for aesop-torchrun, its script's line);
    returns ``(program, namespace)`` of the innermost command."""
    program = program_of(argv)
    assert program, f'not a project command: {shlex.join(argv)}'
    args = list(argv[1:] if program.startswith('aesop-') else argv[2 + program.startswith('python -m ') :])
    parser = load_module(program).build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            namespace = parser.parse_args(args)
    except (SystemExit, AesopError) as failure:
        raise AssertionError(f'{shlex.join(argv)}: {err.getvalue().strip() or failure}') from None
    if program in LAUNCHERS:
        script = namespace.training_script
        assert (REPO / script).is_file(), f'{shlex.join(argv)}: no script {script}'
        return parse_command(['python', script, *namespace.training_script_args])
    if program in PIPELINES:
        assert (REPO / namespace.opt).is_file(), f'{shlex.join(argv)}: no option file {namespace.opt}'
    for dest in ('opt', 'ae_opt'):  # --opt / --ae-opt options/…: the repository's files
        value = str(getattr(namespace, dest, None) or '')
        assert not value.startswith('options/') or (REPO / value).is_file(), f'{shlex.join(argv)}: no {value}'
    return program, namespace


def outputs(program: str, namespace: argparse.Namespace) -> list[str]:
    """What a parsed command writes (its ``-o``; the evaluator's ``--csv``)."""
    dests = (*OUTPUT_DESTS, 'csv') if program == 'aesop-evaluate' else OUTPUT_DESTS
    return [str(getattr(namespace, dest)) for dest in dests if getattr(namespace, dest, None)]


@functools.cache
def tracked_files() -> frozenset[str]:
    """The repository's tracked files (git), or, outside a git checkout, every file of it but the ignored outputs."""
    try:
        listed = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, capture_output=True, check=True).stdout
        return frozenset(name for name in listed.decode().split('\0') if name)
    except (OSError, subprocess.CalledProcessError):
        ignored = ('.git', '.venv', 'datasets', 'results', 'experiments', 'figures', 'tb_logger')
        files = (p.relative_to(REPO).as_posix() for p in REPO.rglob('*') if p.is_file())
        return frozenset(f for f in files if f.split('/')[0] not in ignored)


def overwrites_tracked(path: str) -> bool:
    """Whether writing ``path`` (a file or a folder, relative to the clone) replaces a tracked file."""
    name = os.path.normpath(path).replace(os.sep, '/')
    return any(t == name or t.startswith(f'{name}/') for t in tracked_files())


def needs_users_files(program: str, namespace: argparse.Namespace, argv: Sequence[str]) -> bool:
    """Whether a command reads something a clone (after ``make demo``) lacks: a training or test run on an option
    file other than the demo's, or an input path that is not in the repository."""
    if program in PIPELINES and not str(namespace.opt).startswith('options/demo/'):
        return True
    written = set(outputs(program, namespace))
    values = [part for arg in argv[1:] for part in arg.split('=', 1)[-1:] if not arg.startswith('-') or '=' in arg]
    return any(PATH_LIKE.search(v) and v not in written and not (REPO / v).exists() for v in values)


def test_the_documented_commands_are_found():
    """The extraction sees the pages' commands (a broken pattern would make the tests below pass on nothing)."""
    assert len(PROJECT_COMMANDS) >= 30 and len(DEMO_COMMANDS) >= 5
    assert {c.page for c in PROJECT_COMMANDS} >= {'README.md', 'docs/evaluation.md', 'docs/training.md'}
    programs = {c.program for c in PROJECT_COMMANDS}
    assert {'aesop-torchrun', 'aesop-evaluate', 'aesop/test.py', 'scripts/prepare_dataset.py'} <= programs
    assert 'torchrun' not in {c.argv[0] for c in COMMANDS}, 'multi-GPU examples use aesop-torchrun'
    launchers = {c.argv[c.argv.index('--launcher') + 1] for c in PROJECT_COMMANDS if '--launcher' in c.argv}
    assert launchers >= {'pytorch', 'slurm'}, 'the commands srun runs are parsed too'


@pytest.mark.parametrize('command', PROJECT_COMMANDS, ids=str)
def test_documented_command_parses_and_writes_no_tracked_file(command: Command):
    """Every documented project command parses with its real parser; none writes over a tracked file (a committed
    figure, a doc); one that needs the user's own data or weights is in a block whose first line says so."""
    program, namespace = parse_command(command.argv)
    tracked = [out for out in outputs(program, namespace) if overwrites_tracked(out)]
    assert not tracked, f'{command}: writes over tracked {tracked} (write to figures/, results/, …)'
    if not command.demo and not command.marked:
        assert not needs_users_files(program, namespace, command.argv), (
            f'{command}: needs the user\'s own data or weights: start its block with "{OWN_DATA} …"'
        )


def _clean_env(root: Path) -> dict[str, str]:
    """A user's shell in the clone at ``root``: nothing of the tests' switches (AESOP_RANDOM_BACKBONES unset)."""
    env = {k: v for k, v in os.environ.items() if k != RANDOM_BACKBONES_ENV}
    return {**env, 'OMP_NUM_THREADS': '1', 'AESOP_ROOT': str(root)}


def run_documented(command: Command, root: Path) -> subprocess.CompletedProcess:
    """Run a documented command as copied in ``root`` (in this process: :func:`conftest.run_python`): ``python`` is
    this interpreter, a console script its module's ``main``; the environment is a clean shell's plus the command's
    own assignments."""
    argv = list(command.argv)
    if argv[0].startswith('aesop-'):
        module = CONSOLE_SCRIPTS[argv[0]]
        argv = ['python', '-c', f'import sys; from {module} import main; sys.exit(main())', *argv[1:]]
    cmd = [sys.executable, *argv[1:]]
    env = {**_clean_env(root), **dict(command.env)}
    return run_python(cmd, cwd=root, env=env)


@pytest.fixture(scope='session')
def demo_clone(tmp_path_factory) -> Path:
    """A folder shaped like a clone after ``make demo``: the repository's options/, scripts/ and aesop/ (links),
    the demo dataset (held-out photos cropped small), a checkpoint of random weights wherever a demo training run
    saves one (the network of its option file), and SR images where the demo's test runs write them."""
    root = tmp_path_factory.mktemp('clone')
    for name in ('options', 'scripts', 'aesop'):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    data = make_demo_dataset(root / 'datasets' / 'demo', train=(), val_crop=96)
    for split in ('train', 'val'):
        make_degraded_lr(data, split=split)
    torch.manual_seed(0)
    for option_file in sorted((REPO / 'options' / 'demo').glob('*.yml')):
        opt = load_yaml(option_file)
        if 'train' not in opt:  # a test run: no checkpoint
            continue
        state = build_network(dict(opt['network_g'])).state_dict()
        models = root / 'experiments' / opt['name'] / 'models'
        models.mkdir(parents=True)
        names = ['net_g_latest', *(['net_g_best'] if (opt.get('val') or {}).get('save_best') else [])]
        for name in names:  # as basicsr saves G with its EMA
            torch.save({'params': state, 'params_ema': state}, models / f'{name}.pth')
    for name in ('demo_test_aesop', 'demo_test_psnr', 'demo_test_bicubic'):  # scripts/demo.py's test runs
        folder = root / 'results' / name / 'visualization' / 'demo_val'
        folder.mkdir(parents=True)
        for lr in sorted((data / 'val' / 'LR_bicubic' / 'X4').glob('*.png')):
            sr = cv2.resize(cv2.imread(str(lr)), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(folder / f'{lr.stem}_{name}.png'), sr)
        (root / 'results' / name / 'metrics.csv').write_text(f'method,dataset,psnr\n{name},demo_val,30.0\n')
    return root


@pytest.mark.heavy
def test_documented_demo_commands_run_as_copied(demo_clone: Path):
    """The commands on the demo's data and outputs run as written, in page order (the PD curve reads the CSVs
    the evaluator commands write), without the tests' AESOP_RANDOM_BACKBONES unless the command sets it; they
    write what they say, and a Markdown table they print has the header the page shows."""
    failures = []
    for command in DEMO_COMMANDS:
        program, namespace = parse_command(command.argv)
        proc = run_documented(command, demo_clone)
        if proc.returncode != 0:
            failures.append(f'{command}\n  exit {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-1500:]}')
            continue
        missing = [out for out in outputs(program, namespace) if not (demo_clone / out).exists()]
        if missing:
            failures.append(f'{command}\n  did not write {missing}')
        printed = [line for line in proc.stdout.splitlines() if line.startswith('| image |')]
        page = (REPO / command.page).read_text(encoding='utf-8')
        shown = [line for line in page.splitlines() if line.startswith('| image |')]
        if printed and shown and re.sub(' +', ' ', printed[0]) not in shown:
            failures.append(f'{command}\n  prints the header {printed[0]!r}; {command.page} shows {shown}')
    assert not failures, '\n'.join(failures)


@pytest.mark.heavy
def test_make_figures_remakes_every_picture_of_the_docs_from_the_demo(demo_clone: Path, tmp_path):
    """``scripts/docs_figures.py`` (``make figures``) writes each figure docs/ shows, from the demo's outputs."""
    cmd = [sys.executable, str(REPO / 'scripts' / 'docs_figures.py'), '--root', str(demo_clone), '--out', str(tmp_path)]
    proc = run_python(cmd, cwd=demo_clone, env=_clean_env(demo_clone))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = set(re.findall(r'!\[[^]]*\]\(([\w.]+\.png)\)', (REPO / 'docs' / 'evaluation.md').read_text()))
    assert shown == {'infer_example.png', 'pd_curve.png', 'loss_maps.png', 'spectrum.png'}
    assert {p.name for p in tmp_path.glob('*.png')} == shown
    assert all(cv2.imread(str(tmp_path / name)) is not None for name in shown)
    for name in ('bicubic', 'psnr', 'aesop'):  # the evaluator's CSVs of the PD curve, random columns labelled
        assert 'lpips (random AlexNet)' in (demo_clone / 'results' / 'demo_eval' / f'{name}.csv').read_text()


def test_make_figures_runs_the_commands_the_page_shows():
    """``make figures`` remakes the pictures with docs/evaluation.md's own commands (one list, held to the page)."""
    figures = load_module('scripts/docs_figures.py')
    shown = {c.argv for c in DEMO_COMMANDS if c.page == 'docs/evaluation.md'}
    run = {tuple(argv) for argv in figures.commands(REPO, Path('figures'))}
    assert run <= shown, sorted(run - shown)
    assert len(run) == len(figures.COMMANDS) == 7


# ------------------------------------------------------------------------------------------------------------------
# --help: every command names itself as run, says in one paragraph what it does, and gives examples that parse.

HELP_COMMANDS = [*CONSOLE_SCRIPTS, *SCRIPTS, 'aesop/train.py', 'aesop/test.py']


@pytest.mark.parametrize('name', HELP_COMMANDS)
def test_every_command_has_a_help_with_its_name_a_description_and_examples(name, monkeypatch):
    monkeypatch.setattr(sys, 'argv', [f'/venv/bin/{name}' if name.startswith('aesop-') else name])
    monkeypatch.setattr(sys.modules['__main__'], '__spec__', None, raising=False)  # not `python -m pytest`
    parser = load_module(name).build_parser()
    assert parser.format_help().startswith(f'usage: {name} ')
    assert parser.description and '\n\n' not in parser.description.strip()
    assert parser.epilog and '\nexamples:\n' in f'\n{parser.epilog}'
    examples = parser.epilog.split('examples:\n', 1)[1].splitlines()
    assert examples
    for example in examples:
        for _, argv in split_command_line(example):
            parse_command(argv)


def test_the_train_and_test_help_is_basicsrs_command_line_with_a_description():
    """aesop-train / aesop-test --help list exactly basicsr's flags (plus --local-rank, see aesop.compat)."""
    from basicsr.utils import options as basicsr_options

    declared = set(re.findall(r"add_argument\(\s*'(-[\w-]+)'", inspect.getsource(basicsr_options.parse_options)))
    for stage in ('train', 'test'):
        flags = {flag for action in pipeline_parser(stage)._actions for flag in action.option_strings}
        assert flags == declared | {'-h', '--help', '--local-rank'}


def test_help_of_train_runs_before_basicsr_parses(tmp_path):
    """``python aesop/train.py --help`` prints this command's help and exits 0 (basicsr's parser would print its
    bare one); without -opt and without --help, basicsr's parser still says what is missing."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = run_python([sys.executable, 'aesop/train.py', '--help'], cwd=REPO, env=env)
    assert proc.returncode == 0 and proc.stdout.startswith('usage: aesop/train.py [-h] -opt OPTION_FILE')
    assert 'examples:\n  python aesop/train.py -opt options/demo/train_psnr.yml' in proc.stdout
    proc = run_python([sys.executable, 'aesop/test.py'], cwd=REPO, env=env)
    assert proc.returncode == 2 and 'the following arguments are required: -opt' in proc.stderr


def test_command_name_is_the_command_as_run(monkeypatch):
    """argparse's prog: a console script's name, a file's path as typed, ``python -m`` and the module."""
    from importlib.machinery import ModuleSpec

    from aesop.commands import command_name

    assert command_name('/venv/bin/aesop-infer') == 'aesop-infer'
    assert command_name('scripts/demo.py') == 'scripts/demo.py'
    monkeypatch.setattr(sys.modules['__main__'], '__spec__', ModuleSpec('aesop.launch', None), raising=False)
    assert command_name() == 'python -m aesop.launch'
