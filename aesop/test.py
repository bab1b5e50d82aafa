"""Test (evaluate) a model from an option file (BasicSR conventions): ``aesop-test``, or this file run with Python.

python aesop/test.py -opt options/test_rrdb.yml

``--help``: :func:`aesop.commands.pipeline_parser`.
"""

import os
import sys

if __name__ == '__main__' and not __package__:  # python aesop/test.py: its folder is not a top-level package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from aesop.cli import stage_command  # noqa: E402  (after the path is set)

build_parser, main = stage_command('test')

if __name__ == '__main__':
    main()
