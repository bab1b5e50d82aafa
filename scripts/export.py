"""Export a generator or auto-encoder checkpoint to safetensors or ONNX (checked with onnxruntime).

    python scripts/export.py --weights CKPT [--key params_ema] [--arch YAML | --opt OPTION_FILE] \\
        --format onnx|safetensors [--half] -o OUT

Without --arch/--opt the arch is detected (spandrel; this project's ψ). Exit status 0: written
(and checked); 2: bad arguments or weights, or onnxruntime disagreeing with PyTorch. See
:mod:`aesop.export`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.export import build_parser, main  # noqa: E402,F401  (build_parser: this command line)

if __name__ == '__main__':
    sys.exit(main())
