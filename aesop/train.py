"""Train a model from an option file (BasicSR conventions): ``aesop-train``, or this file run with Python.

python aesop/train.py -opt options/train_ae.yml [--auto_resume] [--debug] [--force_yml k=v]
aesop-torchrun --nproc_per_node=4 aesop/train.py -opt options/train_aesop_rrdb.yml --launcher pytorch

``--help``: :func:`aesop.commands.pipeline_parser`.
"""

import os
import sys

if __name__ == '__main__' and not __package__:  # python aesop/train.py: its folder is not a top-level package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from aesop.cli import stage_command  # noqa: E402  (after the path is set)

build_parser, main = stage_command('train')

if __name__ == '__main__':
    main()
