"""Write the options reference (docs/options.md) from the declared schema (aesop/schema.py).

    python scripts/options_reference.py            # (re)write docs/options.md
    python scripts/options_reference.py --check    # exit status 1 if docs/options.md is stale

Run it after adding or changing a field of a section model in aesop/schema.py (a test compares the file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file from a clone

from aesop.commands import command_help  # noqa: E402
from aesop.schema import options_reference  # noqa: E402

DEFAULT_OUTPUT = ROOT / 'docs' / 'options.md'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        **command_help(
            'Write the options reference (docs/options.md) from the declared option schema (aesop/schema.py). Run '
            'it after adding or changing a field of a section model (tests/test_docs.py compares the file).',
            ('{prog}', '{prog} --check'),
        )
    )
    parser.add_argument('-o', '--output', type=Path, default=DEFAULT_OUTPUT, help='the Markdown file to write')
    parser.add_argument('--check', action='store_true', help='write nothing; exit 1 if the file differs')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the reference; the exit status."""
    args = build_parser().parse_args(argv)
    text = options_reference()
    current = args.output.read_text(encoding='utf-8') if args.output.is_file() else None
    if args.check:
        if current != text:
            print(f'{args.output} is stale: run python scripts/options_reference.py', file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding='utf-8')
    print(f'wrote {args.output}' if current != text else f'{args.output} is up to date')
    return 0


if __name__ == '__main__':
    sys.exit(main())
