"""Evaluate a folder of SR images against ground truth: any method's outputs (Sec. 5 metrics).

The body of ``aesop-evaluate`` (:func:`build_parser` for the command line).
Images are paired by file stem (``--sr-suffix`` is removed from SR stems first). PSNR/SSIM are
basicsr's MATLAB-convention functions on the Y channel with ``--crop-border`` (default: the
scale); LPIPS (AlexNet) and DISTS run on the GPU when there is one; NIQE is pyiqa's when pyiqa is installed
(the release's), else basicsr's, and its column says which (``niqe (pyiqa)``); AE-PSNR needs ``--ae``;
LR-PSNR needs ``--lq``. FID and patch-FID (:mod:`aesop.metrics.fid`) compare the whole SR set
with the whole GT set: they fill only the ``mean`` row. Prints a Markdown table (per image with
``--verbose``; the mean always) and writes a CSV ``image,<metric>,…`` with a last row ``mean``;
a metric on a random backbone (``AESOP_RANDOM_BACKBONES=1``) is labelled so in both
(:func:`aesop.metrics.scoring.metric_label`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from aesop.archs.autoencoder_arch import autoencoder_arch
from aesop.cli import add_autoencoder_arguments, cli_main
from aesop.commands import command_help
from aesop.errors import AesopError
from aesop.metrics.fid import image_features, set_distance
from aesop.metrics.scoring import cells, metric_labels, score, write_image_csv
from aesop.options import load_options
from aesop.utils import IMAGE_EXTENSIONS, markdown_table

SET_METRICS = ('fid', 'patch_fid')  # one value for the whole set (set_options)


def requested(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``--metrics`` split into per-image and set-level names, in the order given."""
    names = [m.strip() for m in args.metrics.split(',') if m.strip()]
    return [m for m in names if m not in SET_METRICS], [m for m in names if m in SET_METRICS]


def metric_options(args: argparse.Namespace) -> dict[str, dict]:
    """Options (as in ``val.metrics``) of each requested per-image metric, by the name the user gave."""
    crop = args.scale if args.crop_border is None else args.crop_border
    known = {
        'psnr': {'type': 'calculate_psnr', 'crop_border': crop, 'test_y_channel': True},
        'ssim': {'type': 'calculate_ssim', 'crop_border': crop, 'test_y_channel': True},
        'lpips': {'type': 'calculate_lpips', 'crop_border': 0},
        'dists': {'type': 'calculate_dists', 'crop_border': 0},
        'niqe': {'type': 'aesop_niqe', 'crop_border': crop},  # pyiqa's if installed, else basicsr's: labelled
        'lr_psnr': {'type': 'calculate_lr_psnr', 'scale': args.scale},
        'ae_psnr': {'type': 'calculate_ae_psnr', 'crop_border': crop},
    }
    names = requested(args)[0]
    unknown = [m for m in names if m not in known]
    if unknown:
        raise AesopError(f'unknown metric {unknown[0]!r}; choose from {", ".join([*known, *SET_METRICS])}')
    if 'lr_psnr' in names and not args.lq:
        raise AesopError('lr_psnr needs --lq (the LR images)')
    if 'ae_psnr' in names:
        if not args.ae:
            raise AesopError('ae_psnr needs --ae (an auto-encoder checkpoint)')
        arch = autoencoder_arch(load_options(args.ae_opt))
        known['ae_psnr'].update(autoencoder=arch, pretrained=str(args.ae), param_key=args.ae_key)
    return {name: known[name] for name in names}


def images(folder: Path, strip: str = '') -> dict[str, Path]:
    if not folder.is_dir():
        raise AesopError(f'not a folder: {folder}')
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            stem = path.stem.removesuffix(strip) if strip else path.stem
            found[stem] = path
    if not found:
        raise AesopError(f'no images in {folder}')
    return found


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise AesopError(f'cannot read image {path}')
    return img


def set_options(args: argparse.Namespace) -> dict[str, dict]:
    """Options (as in ``val.metrics``) of each requested set-level metric: ``patch_fid`` with ``--patch-remainder``."""
    remainder = getattr(args, 'patch_remainder', 'drop')
    options = {'fid': {'type': 'calculate_fid'}, 'patch_fid': {'type': 'calculate_patch_fid', 'remainder': remainder}}
    return {name: options[name] for name in requested(args)[1]}


def evaluate(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per-image metric values, in the order of the SR folder; the last key is ``mean``."""
    metrics, per_set = metric_options(args), set_options(args)
    features: dict[str, tuple[list, list]] = {name: ([], []) for name in per_set}  # per image: (k, 2048) each
    sr, gt = images(args.sr, args.sr_suffix), images(args.gt)
    lq = images(args.lq) if args.lq else {}
    missing = [stem for stem in sr if stem not in gt or (args.lq and stem not in lq)]
    if missing:
        raise AesopError(
            f'no ground truth{" or LR" if args.lq else ""} for {len(missing)} SR image(s), e.g. {missing[0]!r}'
        )
    unscored = [stem for stem in gt if stem not in sr]
    if unscored and args.strict:
        raise AesopError(f'--strict: {len(unscored)} of {len(gt)} GT images have no SR image, e.g. {unscored[0]!r}')
    if unscored:
        print(
            f'aesop: warning: {len(unscored)} of {len(gt)} GT images have no SR image (e.g. {unscored[0]!r}): '
            f'the means are over the {len(sr)} that do (--strict refuses)',
            file=sys.stderr,
        )
    rows = {}
    for stem in tqdm(sr, unit='image', desc='evaluate'):
        img, ref = read(sr[stem]), read(gt[stem])
        if img.shape != ref.shape:
            raise AesopError(f'{sr[stem]} is {img.shape[:2]} but {gt[stem]} is {ref.shape[:2]}')
        low = read(lq[stem]) if lq else None
        rows[stem] = {name: score(img, ref, low, opt) for name, opt in metrics.items()}
        for name, (ours, theirs) in features.items():
            ours.append(image_features(img, per_set[name]))
            theirs.append(image_features(ref, per_set[name]))
    rows['mean'] = {name: float(np.mean([row[name] for row in rows.values()])) for name in metrics}
    for name, (ours, theirs) in features.items():
        rows['mean'][name] = set_distance(ours, theirs, name)
    return rows


def labels(args: argparse.Namespace) -> dict[str, str]:
    """Column labels of the requested metrics (:func:`aesop.metrics.scoring.metric_labels`)."""
    per_image, per_set = requested(args)
    return metric_labels({**metric_options(args), **set_options(args)}, [*per_image, *per_set])


def markdown(rows: dict[str, dict[str, float]], verbose: bool, labels: dict[str, str] | None = None) -> str:
    names = list(rows['mean'])
    shown = rows if verbose else {'mean': rows['mean']}
    header = ['image', *((labels or {}).get(name, name) for name in names)]
    return markdown_table(header, [[image, *cells(row, names, 4)] for image, row in shown.items()])


def build_parser() -> argparse.ArgumentParser:
    """The ``aesop-evaluate`` command line."""
    parser = argparse.ArgumentParser(
        **command_help(
            "Evaluate a folder of SR images (any method's outputs) against ground truth with the paper's metrics "
            '(Sec. 5): images are paired by file stem, --sr-suffix removed from the SR stems first. Prints a '
            'Markdown table (one row per image with --verbose; the mean always) and writes a CSV image,<metric>,... '
            'whose last row is the mean. FID and patch-FID are set-level: they fill the mean row only. LPIPS, '
            'DISTS and FID need their ImageNet weights (docs/evaluation.md); AESOP_RANDOM_BACKBONES=1 uses random '
            'ones instead, and their columns then say so.',
            (
                '{prog} --sr results/test_AESOP_RRDB/visualization/Set14 --sr-suffix _test_AESOP_RRDB '
                '--gt datasets/Set14/GTmod12 --lq datasets/Set14/LRbicx4 --metrics psnr,ssim,lpips,dists,lr_psnr '
                '--csv set14.csv',
                '{prog} --sr SR_DIR --gt HR_DIR --metrics psnr,ssim,ae_psnr,fid,patch_fid '
                '--ae experiments/train_AESOP_AE_RRDB/models/net_g_latest.pth --ae-opt options/train_ae.yml',
                'AESOP_RANDOM_BACKBONES=1 {prog} --sr results/demo_test_aesop/visualization/demo_val '
                '--sr-suffix _demo_test_aesop --gt datasets/demo/val/HR --metrics psnr,lpips --verbose',
            ),
        )
    )
    parser.add_argument('--sr', type=Path, required=True, help='folder of SR images')
    parser.add_argument('--gt', type=Path, required=True, help='folder of ground-truth HR images')
    parser.add_argument('--lq', type=Path, help='folder of LR images (for lr_psnr)')
    parser.add_argument('--scale', type=int, default=4, help='upscaling factor (default: 4)')
    parser.add_argument('--crop-border', type=int, help='border cropped for PSNR/SSIM/NIQE/AE-PSNR (default: scale)')
    parser.add_argument(
        '--metrics',
        default='psnr,ssim,lpips,dists',
        help='comma-separated, from psnr, ssim, lpips, dists, niqe, lr_psnr, ae_psnr, fid, patch_fid '
        "(default: %(default)s); niqe is pyiqa's when pyiqa is installed, else basicsr's (its column says which)",
    )
    add_autoencoder_arguments(parser, required=False)
    parser.add_argument('--sr-suffix', default='', help='suffix removed from SR file stems before pairing')
    parser.add_argument('--csv', type=Path, help='write the CSV here')
    parser.add_argument(
        '--patch-remainder',
        choices=('drop', 'pad'),
        default='drop',
        help="patch_fid's border rule: drop (the paper's: a side >= 299 px drops its remainder) or pad (every partial "
        'patch zero-padded)',
    )
    parser.add_argument('--verbose', action='store_true', help='print one row per image')
    parser.add_argument('--strict', action='store_true', help='refuse GT images without an SR image')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli_main(lambda _: report(evaluate(args), args), None)


def report(rows: dict[str, dict[str, float]], args: argparse.Namespace) -> int:
    columns = labels(args)
    print(markdown(rows, args.verbose, columns))
    if args.csv:
        write_image_csv(args.csv, rows, columns)
        print(f'CSV: {args.csv}')
    return 0
