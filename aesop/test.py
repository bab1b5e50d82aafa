"""Test (evaluate) a model from an option file (BasicSR conventions).

python aesop/test.py -opt options/test_rrdb.yml
"""

import argparse
import sys
from os import path as osp

if __name__ == '__main__' and not __package__:  # run as a file: import the package, not its folder
    _here = osp.dirname(osp.abspath(__file__))
    sys.path[:] = [p for p in sys.path if osp.abspath(p or '.') != _here]
    sys.path.insert(0, osp.dirname(_here))


def build_parser() -> argparse.ArgumentParser:
    """This command line (basicsr's parser reads it) with a description and examples: the ``--help``."""
    from aesop.commands import pipeline_parser

    return pipeline_parser('test')


def main() -> None:
    from aesop.commands import exit_on_help

    exit_on_help('test')  # basicsr's parser has no description or examples: ours, with the same flags
    from aesop.cli import run

    run('test')


if __name__ == '__main__':
    main()
