"""Shared body of ``aesop/train.py`` and ``aesop/test.py``: errors as one line, not tracebacks."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

TRACEBACK_ENV = 'AESOP_TRACEBACK'


def run(pipeline: Callable[[str], None]) -> None:
    """Run a BasicSR pipeline (``train_pipeline`` / ``test_pipeline``) on the project root.

    An :class:`~aesop.errors.AesopError` is printed as ``aesop: error: …`` with exit status 2;
    ``AESOP_TRACEBACK=1`` re-raises it with the full traceback.
    """
    from aesop.errors import AesopError
    from aesop.utils import project_root

    try:
        pipeline(str(project_root()))
    except AesopError as err:
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f'aesop: error: {err}', file=sys.stderr)
        sys.exit(2)
