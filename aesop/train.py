"""Train a model from an option file (BasicSR conventions): ``aesop-train``, or this file run with Python.

python aesop/train.py -opt options/train_ae.yml [--auto_resume] [--debug] [--force_yml k=v]
aesop-torchrun --nproc_per_node=4 aesop/train.py -opt options/train_aesop_rrdb.yml --launcher pytorch

``--help``: :func:`aesop.commands.pipeline_parser`.
"""

import argparse
import os
import sys
from collections.abc import Sequence

if __name__ == '__main__' and not __package__:  # python aesop/train.py: its folder is not a top-level package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_parser() -> argparse.ArgumentParser:
    """This command line (basicsr's flags) with a description and examples: the ``--help``."""
    from aesop.commands import pipeline_parser

    return pipeline_parser('train')


def main(argv: Sequence[str] | None = None) -> None:
    from aesop.cli import run

    run('train', argv)


if __name__ == '__main__':
    main()
