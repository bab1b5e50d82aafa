"""Split a validation set off a paired test set, for early stopping in HR-aware finetuning (paper 003).

Paper 003, Sec. 5: "In Tab. 1, for the reproduction of LWay [4] and our method, we split a validation set from
the testing data and use the early stopping strategy." This writes the names of ``--count`` image pairs, drawn
with ``--seed`` from the names present in both ``--gt`` and ``--lq``, one per line, sorted: the
``meta_info_file`` of basicsr's PairedImageDataset that the finetuning option files' ``datasets.val`` reads.
The finetuning itself still trains on every LR image of the test set, as the paper ("The finetuning is on the
whole testing set"). The size of the split is not given by the paper: 10 by default (this project's choice).

It also writes the held-out remainder, every other pair (``--rest``, default ``test_split.txt`` beside
``-o``): the test files score it by default, so that the reported means never include the images the early
stopping chose its checkpoint on; the whole set, the protocol of the paper's Tab. 1, is their second entry.

Exit status 0, or 2 with one ``aesop: error:`` line (a missing folder, fewer pairs than ``--count``, an
existing output without ``--overwrite``, ``--rest`` equal to ``-o``).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a clone
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.data.scan import folder_images, skipped_entries  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.weights import atomic_write, check_output_file, write_result  # noqa: E402


def image_names(folder: Path, option: str) -> set[str]:
    """The image file names directly in ``folder`` (``option``: its flag, for the error): regular files only; an
    entry that is none (a named pipe, a broken or looping symlink) is skipped with a warning naming it."""
    if not folder.is_dir():
        raise AesopError(f'{option}: not a folder: {folder}')
    images, skipped = folder_images(folder)
    if skipped:
        print(f'aesop: warning: {skipped_entries(option, folder, skipped)}: skipped', file=sys.stderr)
    return {p.name for p in images}


def split(gt: Path, lq: Path, *, count: int, seed: int) -> tuple[list[str], list[str]]:
    """(validation, rest): ``count`` names present in both folders, drawn with ``seed`` (the same folders and
    seed: the same split), and the other pairs; both sorted."""
    pairs = sorted(image_names(gt, '--gt') & image_names(lq, '--lq'))
    if count < 1 or count >= len(pairs):
        raise AesopError(
            f'--count {count}: {gt} and {lq} share {len(pairs)} image names (count must be 1-{len(pairs) - 1}, '
            'leaving at least one pair to test on)'
        )
    validation = sorted(random.Random(seed).sample(pairs, count))
    return validation, sorted(set(pairs) - set(validation))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        **command_help(
            'Split a validation set off a paired test set, for early stopping in HR-aware finetuning (paper 003, '
            'Sec. 5): the names of --count image pairs, drawn with --seed from the names present in both --gt and '
            "--lq, one per line: the meta_info_file of the finetuning option files' datasets.val; and the other "
            'pairs (--rest): the held-out pairs the test files score. Finetuning still trains on every LR image of '
            'the test set.',
            (
                '{prog} --gt datasets/RealSR/Canon/Test/4/HR --lq datasets/RealSR/Canon/Test/4/LR '
                '-o datasets/RealSR/Canon/Test/4/val_split.txt',
                '{prog} --gt datasets/demo/val/HR --lq datasets/demo/val/LR_degraded/X4 --count 1 -o val_split.txt '
                '--rest test_split.txt',
            ),
        )
    )
    parser.add_argument('--gt', type=Path, required=True, help='folder of the HR images of the test pairs')
    parser.add_argument('--lq', type=Path, required=True, help='folder of their LR images (the same file names)')
    parser.add_argument('-o', '--out', type=Path, required=True, help='the meta_info_file to write')
    parser.add_argument(
        '--rest',
        type=Path,
        help='the meta_info_file of the held-out pairs, every pair not in --out (default: test_split.txt beside --out)',
    )
    parser.add_argument('--count', type=int, default=10, help='pairs in the validation split (default %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the draw (default %(default)s)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rest = args.rest or args.out.with_name('test_split.txt')
    if rest.resolve() == args.out.resolve():
        raise AesopError(f"the held-out pairs' file {rest} is -o: give --rest another path")
    for path, option in ((args.out, '-o'), (rest, '--rest')):
        check_output_file(path, option)
    validation, held_out = split(args.gt, args.lq, count=args.count, seed=args.seed)
    for path in (args.out, rest):
        if path.exists() and not args.overwrite:
            raise AesopError(f'{path} exists: --overwrite to replace it')
    write_pair({args.out: validation, rest: held_out})
    print(f'{args.out}: {len(validation)} validation pairs; {rest}: {len(held_out)} held-out pairs')
    return 0


def write_pair(files: dict[Path, list[str]]) -> None:
    """Write the two lists of names, each atomically; when the second fails (a full disk), the first is put back
    as it was: the split and its held-out remainder always come from the same draw (a validation image among the
    held-out ones would be scored as a test image)."""
    before: dict[Path, bytes | None] = {}
    try:
        for path, names in files.items():
            before[path] = path.read_bytes() if path.is_file() else None
            write_result(path, ''.join(f'{name}\n' for name in names).encode())
    except AesopError as err:
        done = [path for path in before if path != list(before)[-1]]
        for path in done:
            if before[path] is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, before[path])
        undone = f'; {", ".join(map(str, done))} left as before' if done else ''
        raise AesopError(f'{err}{undone}') from err


if __name__ == '__main__':
    sys.exit(cli_main(main))
