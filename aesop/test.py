"""Test (evaluate) a model from an option file (BasicSR conventions): ``aesop-test``, or this file run with Python.

python aesop/test.py -opt options/test_rrdb.yml

``--help``: :func:`aesop.commands.pipeline_parser`.
"""

import argparse
import os
import sys
from collections.abc import Sequence

if __name__ == '__main__' and not __package__:  # python aesop/test.py: its folder is not a top-level package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_parser() -> argparse.ArgumentParser:
    """This command line (basicsr's flags) with a description and examples: the ``--help``."""
    from aesop.commands import pipeline_parser

    return pipeline_parser('test')


def main(argv: Sequence[str] | None = None) -> None:
    from aesop.cli import run

    run('test', argv)


if __name__ == '__main__':
    main()
