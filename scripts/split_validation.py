"""Split a validation set off a paired test set, for early stopping in HR-aware finetuning (paper 003).

Paper 003, Sec. 5: "In Tab. 1, for the reproduction of LWay [4] and our method, we split a validation set from
the testing data and use the early stopping strategy." This writes the names of ``--count`` image pairs, drawn
with ``--seed`` from the names present in both ``--gt`` and ``--lq``, one per line, sorted: the
``meta_info_file`` of basicsr's PairedImageDataset that the finetuning option files' ``datasets.val`` reads.
The finetuning itself still trains on every LR image of the test set, as the paper ("The finetuning is on the
whole testing set"). The size of the split is not given by the paper: 10 by default (this project's choice).

Exit status 0, or 2 with one ``aesop: error:`` line (a missing folder, fewer pairs than ``--count``, an
existing output without ``--overwrite``).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a clone
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.utils import IMAGE_EXTENSIONS  # noqa: E402


def image_names(folder: Path, option: str) -> set[str]:
    """The image file names directly in ``folder`` (``option``: its flag, for the error)."""
    if not folder.is_dir():
        raise AesopError(f'{option}: not a folder: {folder}')
    return {p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}


def split(gt: Path, lq: Path, *, count: int, seed: int) -> list[str]:
    """``count`` names present in both folders, drawn with ``seed`` (the same folders and seed: the same split)."""
    pairs = sorted(image_names(gt, '--gt') & image_names(lq, '--lq'))
    if count < 1 or count > len(pairs):
        raise AesopError(
            f'--count {count}: {gt} and {lq} share {len(pairs)} image names (count must be 1-{len(pairs)})'
        )
    return sorted(random.Random(seed).sample(pairs, count))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        **command_help(
            'Split a validation set off a paired test set, for early stopping in HR-aware finetuning (paper 003, '
            'Sec. 5): the names of --count image pairs, drawn with --seed from the names present in both --gt and '
            "--lq, one per line: the meta_info_file of the finetuning option files' datasets.val. Finetuning still "
            'trains on every LR image of the test set.',
            (
                '{prog} --gt datasets/RealSR/Canon/Test/4/HR --lq datasets/RealSR/Canon/Test/4/LR '
                '-o datasets/RealSR/Canon/Test/4/val_split.txt',
                '{prog} --gt datasets/demo/val/HR --lq datasets/demo/val/LR_degraded/X4 --count 1 -o val_split.txt',
            ),
        )
    )
    parser.add_argument('--gt', type=Path, required=True, help='folder of the HR images of the test pairs')
    parser.add_argument('--lq', type=Path, required=True, help='folder of their LR images (the same file names)')
    parser.add_argument('-o', '--out', type=Path, required=True, help='the meta_info_file to write')
    parser.add_argument('--count', type=int, default=10, help='pairs in the validation split (default %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the draw (default %(default)s)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out.exists() and not args.overwrite:
        raise AesopError(f'{args.out} exists: --overwrite to replace it')
    names = split(args.gt, args.lq, count=args.count, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(''.join(f'{name}\n' for name in names))
    print(f'{args.out}: {len(names)} validation pairs')
    return 0


if __name__ == '__main__':
    sys.exit(cli_main(main))
