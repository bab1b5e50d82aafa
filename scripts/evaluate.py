"""Evaluate a folder of SR images against ground truth (Sec. 5 metrics): ``python scripts/evaluate.py --help``.

The same as ``aesop-evaluate``; see :mod:`aesop.evaluation`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.evaluation import build_parser, main  # noqa: E402,F401  (build_parser: this command line)

if __name__ == '__main__':
    sys.exit(main())
