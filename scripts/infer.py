"""Super-resolve images with a trained generator (any size, tiled, 8/16-bit, grey and alpha).

    python scripts/infer.py -i IMAGE_OR_DIR -o OUT_DIR --opt options/test_rrdb.yml [--tile 256 --tile-pad 16] [--half]
    python scripts/infer.py -i IMAGE_OR_DIR -o OUT_DIR --weights net_g.pth \\
        --arch '{type: RRDBNet, num_in_ch: 3, num_out_ch: 3, num_feat: 64, num_block: 23}' [--scale 4]

Writes OUT_DIR/<stem><suffix>.png. Exit status 0: all written; 1: unreadable inputs were skipped
(listed at the end); 2: bad arguments, options or weights (one line ``aesop: error: …``).
See :mod:`aesop.inference`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.inference import build_parser, main  # noqa: E402,F401  (build_parser: this command line)

if __name__ == '__main__':
    sys.exit(main())
