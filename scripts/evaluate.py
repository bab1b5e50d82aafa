"""Evaluate a folder of SR images against ground truth: any method's outputs (Sec. 5 metrics).

    python scripts/evaluate.py --sr results/x/visualization/DIV2K100 --gt datasets/DIV2K/DIV2K_valid_HR \
        [--lq datasets/DIV2K/DIV2K_valid_LR_bicubic/X4] [--scale 4] [--crop-border 4] \
        [--metrics psnr,ssim,lpips,dists,ae_psnr,lr_psnr,niqe,fid,patch_fid] [--ae CKPT --ae-opt options/train_ae.yml] \
        [--sr-suffix _x] [--csv out.csv] [--verbose]

Images are paired by file stem (``--sr-suffix`` is removed from SR stems first). PSNR/SSIM are
basicsr's MATLAB-convention functions on the Y channel with ``--crop-border`` (default: the
scale); LPIPS (AlexNet) and DISTS run on the GPU when there is one; AE-PSNR needs ``--ae``;
LR-PSNR needs ``--lq``. FID and patch-FID (:mod:`aesop.metrics.fid`) compare the whole SR set
with the whole GT set: they fill only the ``mean`` row. Prints a Markdown table (per image with
``--verbose``; the mean always) and writes a CSV ``image,<metric>,…`` with a last row ``mean``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.evaluation import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
