"""Decode every image of one or more folders (recursively) and list the ones that fail.

Training reads only each image's header at start-up (``aesop.data.scan``); this decodes them all,
as a batch would. Prints one line per bad file and a summary; exit status 0 if all decode, 1 if
some do not, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a clone
from aesop.commands import command_help  # noqa: E402
from aesop.data.scan import file_or_bad_link  # noqa: E402
from aesop.utils import IMAGE_EXTENSIONS, link_problem  # noqa: E402


def decode_problem(path: Path) -> str | None:
    """Why ``path`` does not decode (a looping or broken symlink included), or ``None``."""
    if problem := link_problem(path):
        return problem
    if path.stat().st_size == 0:
        return 'empty file'
    return None if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None else 'does not decode'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        **command_help(
            'Decode every image of one or more folders (recursively) and list the ones that fail. Training reads '
            "only each image's header at start-up; this decodes them all, as a batch would. Prints one line per "
            'bad file and a summary; exit status 0 if all decode, 1 if some do not, 2 on bad arguments.',
            (
                '{prog} datasets/DF2K/HR_sub datasets/DF2K/LR_bicubic/X4 --workers 8',
                '{prog} datasets/demo/train/HR datasets/demo/val/HR',
            ),
        )
    )
    parser.add_argument('folders', nargs='+', type=Path, help='folders of images')
    parser.add_argument('--workers', type=int, default=8, help='decoding threads (default 8)')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    files = []
    for folder in args.folders:
        if not folder.is_dir():
            print(f'aesop: error: not a folder: {folder}', file=sys.stderr)
            return 2
        files += sorted(p for p in folder.rglob('*') if file_or_bad_link(p) and p.suffix.lower() in IMAGE_EXTENSIONS)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        problems = list(tqdm(pool.map(decode_problem, files), total=len(files), unit='image', desc='decoding'))
    bad = [(path, problem) for path, problem in zip(files, problems) if problem]
    for path, problem in bad:
        print(f'{path}: {problem}')
    print(f'{len(files) - len(bad)} of {len(files)} images decode; {len(bad)} do not', file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
