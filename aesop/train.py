"""Train a model from an option file (BasicSR conventions).

python aesop/train.py -opt options/train_ae.yml [--auto_resume] [--debug] [--force_yml k=v]
aesop-torchrun --nproc_per_node=4 aesop/train.py -opt options/train_aesop_rrdb.yml --launcher pytorch

``--help``: :func:`aesop.commands.pipeline_parser`.
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

    return pipeline_parser('train')


def main() -> None:
    from aesop.commands import exit_on_help

    exit_on_help('train')  # basicsr's parser has no description or examples: ours, with the same flags
    from aesop.cli import run

    run('train')


if __name__ == '__main__':
    main()
