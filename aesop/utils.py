"""Small helpers shared by the package: the project root and pretrained-file lookup."""

from __future__ import annotations

import difflib
import errno
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from aesop.errors import AesopError

RANDOM_BACKBONES_ENV = 'AESOP_RANDOM_BACKBONES'
ROOT_ENV = 'AESOP_ROOT'
PRETRAINED_DIR_ENV = 'AESOP_PRETRAINED_DIR'
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.webp')


def project_root() -> Path:
    """The folder that ``experiments/`` and ``results/`` go under (BasicSR's ``root_path``).

    ``$AESOP_ROOT`` if set; else a clone of the repository (the package sits next to
    ``options/``); else, for an installed package, the working directory.
    """
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    return clone_root() or Path.cwd()


def clone_root() -> Path | None:
    """The clone of the repository this package runs from (``options/`` beside it), or ``None`` (installed)."""
    clone = Path(__file__).resolve().parent.parent
    return clone if (clone / 'options').is_dir() and (clone / 'pyproject.toml').is_file() else None


def random_backbones() -> bool:
    """Whether ImageNet backbones (VGG19 of the perceptual loss) are left randomly initialised.

    Set ``AESOP_RANDOM_BACKBONES=1`` where nothing can be downloaded (the tests and the demo).
    Training with a random VGG is a smoke test, not the paper's recipe.
    """
    return os.environ.get(RANDOM_BACKBONES_ENV, '') not in ('', '0', 'false', 'False')


def pretrained_search_dirs() -> list[Path]:
    """Folders searched for pretrained backbone files, in order."""
    dirs = []
    if os.environ.get(PRETRAINED_DIR_ENV):
        dirs.append(Path(os.environ[PRETRAINED_DIR_ENV]).expanduser())
    dirs.append(project_root() / 'experiments' / 'pretrained_models')
    dirs.append(Path(torch.hub.get_dir()) / 'checkpoints')
    return dirs


def locate_pretrained_file(filename: str) -> Path | None:
    """The first existing ``filename`` in :func:`pretrained_search_dirs`, or ``None``."""
    return next((folder / filename for folder in pretrained_search_dirs() if (folder / filename).is_file()), None)


def pretrained_file_not_found(filename: str, *, url: str, what: str, option: str | None = None) -> str:
    """The one line saying that ``filename`` (``what``'s weights, named by ``option``) is in none of
    :func:`pretrained_search_dirs`: where to download it and where to put it."""
    named = f' (option {option})' if option else ''
    return (
        f'{what} weights {filename!r}{named} not found: download {url} into one of '
        f'{", ".join(str(d) for d in pretrained_search_dirs())} (or set {PRETRAINED_DIR_ENV}; '
        f'{RANDOM_BACKBONES_ENV}=1 uses random weights for smoke tests)'
    )


def find_pretrained_file(filename: str, *, url: str, what: str) -> Path:
    """Return the first existing ``filename`` in :func:`pretrained_search_dirs`.

    Raises:
        AesopError: naming the file, the download address and the folders searched.
    """
    path = locate_pretrained_file(filename)
    if path is None:
        raise AesopError(pretrained_file_not_found(filename, url=url, what=what))
    return path


def default_device() -> torch.device:
    """CUDA when available, else the CPU (tools and metrics outside a model)."""
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, columns padded to their widest cell (tools' and tests' printouts)."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[object]) -> str:
        return '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(cells, widths)) + ' |'

    return '\n'.join([line(header), '|' + '|'.join('-' * (w + 2) for w in widths) + '|', *map(line, rows)])


def iter_mappings(node: object) -> Iterator[dict]:
    """Every mapping in a nested option tree (through dicts and lists), ``node`` included."""
    for _, mapping in iter_keyed_mappings(node):
        yield mapping


def iter_keyed_mappings(node: object, key: str = '') -> Iterator[tuple[str, dict]]:
    """``(dotted key, mapping)`` for every mapping in a nested option tree, ``node`` (key ``key``) included."""
    if isinstance(node, dict):
        yield key, node
        for name, value in node.items():
            yield from iter_keyed_mappings(value, f'{key}.{name}' if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from iter_keyed_mappings(value, f'{key}.{index}')


def closest(name: object, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (difflib), or ``None`` when none is close: for "did you mean"."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return close[0] if close else None


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """``"did you mean 'X'? "`` for the choice closest to ``name``, or ``''``."""
    found = closest(name, choices)
    return f'did you mean {found!r}? ' if found else ''


def warn(opt: dict, message: str) -> None:
    """One ``aesop: warning: …`` line on stderr, from rank 0 only (options are parsed on every rank)."""
    if not opt.get('rank'):
        print(f'aesop: warning: {message}', file=sys.stderr)


def link_problem(path: str | Path) -> str | None:
    """Why the symlink ``path`` leads to no file (a loop, a missing target), or ``None``."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f'a symlink loop (it leads back to itself through {os.readlink(path)})'
        if err.errno == errno.ENOENT:
            return f'a broken symlink (its target {os.readlink(path)} does not exist)'
    return None


FILE_KINDS = (  # what something that is not a regular file is
    (stat.S_ISDIR, 'a folder'),
    (stat.S_ISFIFO, 'a named pipe'),  # reading one waits for a writer: forever
    (stat.S_ISSOCK, 'a socket'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
)


def not_a_file(path: str | Path) -> str | None:
    """What ``path`` is, in words, when something is there but not a regular file (symlinks followed): ``'a
    folder'``, ``'a named pipe'``, ``'a socket'``, ``'a character device'``, ``'a block device'``, or a looping or
    broken symlink (:func:`link_problem`); ``None`` for a regular file or nothing at all. Opens nothing.

    Reading a named pipe or a device blocks or never ends: tools check this before they open a file.
    """
    if problem := link_problem(path):
        return problem
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((name for test, name in FILE_KINDS if test(mode)), None)


def check_output_path(path: str | Path, *, option: str | None, folder: bool, give: str) -> Path:
    """Refuse an output path that cannot be what the tool writes, before any work: ``folder`` (a folder of
    outputs) when something else is there, a file when a folder (or a pipe, a device, a broken link) is there,
    and either under a path one of whose existing parents is not a folder (``-o notes.txt/out``) or not writable.

    Args:
        path: the output (a file, or with ``folder`` a folder, created later with its parents).
        option: the command-line option that named it (``-o``), quoted in the message (``None``: the path alone).
        folder: whether ``path`` is a folder of outputs.
        give: what the message asks for instead (``'a folder for the output images'``, ``'the output file'``).

    Raises:
        AesopError: one line naming ``path`` and what is in the way.
    """
    path = Path(path).expanduser()
    named = f'{option} {path}' if option else str(path)
    what = not_a_file(path)
    if folder:
        if what not in (None, 'a folder'):
            raise AesopError(f'{named} is {what}: give {give}')
        if what is None and path.exists():
            raise AesopError(f'{named} is a file: give {give}')
    elif what is not None:
        raise AesopError(f'{named} is {what}: give {give}')
    for parent in path.parents:  # the nearest one that is there must be a folder, and writable
        if not os.path.lexists(parent):
            continue
        if not parent.is_dir():
            kind = not_a_file(parent) or 'a file'
            raise AesopError(f'{named}: {parent} is {kind}, not a folder')
        if not os.access(parent, os.W_OK | os.X_OK):
            raise AesopError(f'{named}: the folder {parent} is not writable')
        break
    return path
