"""The documentation (README.md and docs/*.md) stays true to the code: the options reference is the one
generated from the schema, and every link, anchor, option file and script it names exists."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from aesop.schema import options_reference

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
    assert '| `betas` | `list[number]`, length 2 | `[0.9, 0.999]` |' in text
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
