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
import math
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from aesop.archs.autoencoder_arch import autoencoder_arch
from aesop.cli import ArgumentParser, add_autoencoder_arguments, cli_main
from aesop.commands import command_help
from aesop.data.scan import folder_images, image_header, skipped_entries, skipped_names
from aesop.errors import AesopError
from aesop.metrics.fid import image_features, set_distance
from aesop.metrics.scoring import cells, crop_shortfall, metric_labels, score, write_image_csv
from aesop.options import load_options
from aesop.utils import markdown_table
from aesop.weights import check_output_file

SET_METRICS = ('fid', 'patch_fid')  # one value for the whole set (set_options)
IMAGE_METRICS = ('psnr', 'ssim', 'lpips', 'dists', 'niqe', 'lr_psnr', 'ae_psnr')  # one value per image
KNOWN_METRICS = (*IMAGE_METRICS, *SET_METRICS)
CROPPED = ('psnr', 'ssim', 'niqe', 'ae_psnr')  # the metrics that crop --crop-border px from each side


def requested(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``--metrics`` split into per-image and set-level names, in the order given."""
    names = [m.strip() for m in args.metrics.split(',') if m.strip()]
    return [m for m in names if m not in SET_METRICS], [m for m in names if m in SET_METRICS]


def crop_border(args: argparse.Namespace) -> int:
    """``--crop-border``, by default ``--scale``."""
    return args.scale if args.crop_border is None else args.crop_border


def check_arguments(args: argparse.Namespace) -> None:
    """The numbers, the metric list and the output path, before any image is read: one line for the first
    that makes no sense (:func:`metric_options` checks the metrics' own needs)."""
    if args.scale < 1:
        raise AesopError(f'--scale {args.scale}: the upscaling factor must be 1 or more')
    if args.crop_border is not None and args.crop_border < 0:
        raise AesopError(f'--crop-border {args.crop_border}: the border cropped must be 0 or more')
    names = [m.strip() for m in args.metrics.split(',') if m.strip()]
    if not names:
        raise AesopError(f'--metrics {args.metrics!r} names no metric; choose from {", ".join(KNOWN_METRICS)}')
    unknown = [m for m in names if m not in KNOWN_METRICS]
    if unknown:
        raise AesopError(f'--metrics: unknown metric {unknown[0]!r}; choose from {", ".join(KNOWN_METRICS)}')
    twice = next((m for i, m in enumerate(names) if m in names[:i]), None)
    if twice:
        raise AesopError(f'--metrics {args.metrics!r} names {twice} twice')
    if args.csv is not None:
        check_output_file(args.csv, '--csv')
    if 'ae_psnr' in names and args.ae is not None and not Path(args.ae).is_file():
        what = 'a folder, not a checkpoint file' if Path(args.ae).is_dir() else 'not found'
        raise AesopError(f'--ae {args.ae}: {what}')


def metric_options(args: argparse.Namespace) -> dict[str, dict]:
    """Options (as in ``val.metrics``) of each requested per-image metric, by the name the user gave."""
    crop = crop_border(args)
    known = {
        'psnr': {'type': 'calculate_psnr', 'crop_border': crop, 'test_y_channel': True},
        'ssim': {'type': 'calculate_ssim', 'crop_border': crop, 'test_y_channel': True},
        'lpips': {'type': 'calculate_lpips', 'crop_border': 0},
        'dists': {'type': 'calculate_dists', 'crop_border': 0},
        'niqe': {'type': 'aesop_niqe', 'crop_border': crop},  # pyiqa's if installed, else basicsr's: labelled
        'lr_psnr': {'type': 'calculate_lr_psnr', 'scale': args.scale},
        'ae_psnr': {'type': 'calculate_ae_psnr', 'crop_border': crop},
    }
    names = requested(args)[0]  # known: check_arguments
    if 'lr_psnr' in names and not args.lq:
        raise AesopError('lr_psnr needs --lq (the LR images)')
    if 'ae_psnr' in names:
        if not args.ae:
            raise AesopError('ae_psnr needs --ae (an auto-encoder checkpoint)')
        arch = autoencoder_arch(load_options(args.ae_opt))
        known['ae_psnr'].update(autoencoder=arch, pretrained=str(args.ae), param_key=args.ae_key)
    return {name: known[name] for name in names}


def images(folder: Path, option: str, strip: str = '') -> tuple[dict[str, Path], list[str]]:
    """``({stem: file}, skipped)``: the images directly in ``folder`` by stem (``strip`` removed from its end), regular
    files only (a named pipe would be waited on forever), and ``'<name> is <why>'`` of each entry with an image
    extension that is no file to read (a broken or looping symlink, a named pipe, a folder). Two files of one stem
    (``coffee.png`` and ``coffee.jpg``) are refused: which one pairs would be a guess. ``option``: the flag that
    named ``folder``."""
    if not folder.is_dir():
        what = 'a file' if folder.is_file() else 'not found'
        raise AesopError(f'{option} {folder}: not a folder ({what})')
    files, skipped = folder_images(folder)
    found: dict[str, Path] = {}
    for path in files:
        stem = path.stem.removesuffix(strip) if strip else path.stem
        if stem in found:
            removed = f' once --sr-suffix {strip!r} is removed' if strip else ''
            raise AesopError(
                f'{option}: {found[stem].name} and {path.name} in {folder} both pair as {stem!r}{removed}: '
                'keep one of them (images are paired by file stem)'
            )
        found[stem] = path
    if not found:
        more = f' ({len(skipped)} entries are no files to read: {skipped_names(skipped)})' if skipped else ''
        raise AesopError(f'{option}: no images in {folder}{more}')
    return found, skipped


def check_crop(args: argparse.Namespace, sr: dict[str, Path], metrics: dict[str, dict]) -> None:
    """The crop border leaves every SR image (its GT has the same size) enough pixels for each metric that crops
    it (:data:`CROPPED`; the least side each needs: :func:`aesop.metrics.scoring.crop_shortfall`): one line naming the
    smallest image, before any image is scored (``metrics``: :func:`metric_options`)."""
    cropping = [name for name in metrics if name in CROPPED]
    if not cropping:
        return
    crop = crop_border(args)
    given = f'--crop-border {crop}' if args.crop_border is not None else f'--crop-border {crop} (the default: --scale)'
    sides = {path: size for path in sr.values() if (size := image_header(path)[1]) is not None}  # (w, h)
    if not sides:  # no header Pillow knows: reading the images says why
        return
    path, (w, h) = min(sides.items(), key=lambda item: min(item[1]))
    for name in cropping:
        if short := crop_shortfall((w, h), crop, metrics[name]['type']):
            left, need, most = short
            fix = f'use --crop-border {most} or less' if most >= 0 else f'leave {name} out for images this small'
            message = f'{given} leaves {left} of {path} ({h}×{w}) for {name}, which needs {need} px a side'
            raise AesopError(f'{message}: {fix}')


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


def scored(name: str, metric_opt: dict, img: np.ndarray, ref: np.ndarray, low: np.ndarray | None, path: Path) -> float:
    """:func:`~aesop.metrics.scoring.score`, where a metric that fails on an image, or gives NaN, is one line
    naming the image and the metric, not a traceback or a NaN mean."""
    size = f'{img.shape[0]}×{img.shape[1]}'
    try:
        value = score(img, ref, low, metric_opt)
    except AesopError:
        raise
    except (RuntimeError, ValueError, AssertionError, cv2.error) as err:
        first = next(iter(str(err).strip().splitlines()), '') or type(err).__name__
        raise AesopError(f'{name} failed on {path} ({size}): {first}') from err
    if math.isnan(value):
        raise AesopError(f'{name} of {path} ({size}) is NaN: is the image too small for it?')
    return value


def input_images(args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path]]:
    """The SR, GT and LR images by stem (:func:`images`; no LR without ``--lq``). An entry that is no file to read
    is skipped with a warning naming it (``--strict`` refuses), as ``aesop-infer`` skips what it cannot read; the
    SR folder as the GT one (without ``--sr-suffix``) and a ``--csv`` that is an input are refused."""
    if not args.sr_suffix and args.sr.resolve() == args.gt.resolve():
        raise AesopError(f'--sr and --gt are the same folder, {args.sr}: every image would be scored against itself')
    found = {}
    for option, folder, strip in (('--sr', args.sr, args.sr_suffix), ('--gt', args.gt, ''), ('--lq', args.lq, '')):
        if folder is None:
            found[option] = {}
            continue
        found[option], skipped = images(folder, option, strip)
        if skipped:
            line = skipped_entries(option, folder, skipped)
            if args.strict:
                raise AesopError(f'--strict: {line}')
            print(f'aesop: warning: {line}: skipped (--strict refuses)', file=sys.stderr)
    if args.csv is not None:
        inputs = {path.resolve(): option for option, stems in found.items() for path in stems.values()}
        if args.csv.resolve() in inputs:
            raise AesopError(f'--csv {args.csv} is one of the {inputs[args.csv.resolve()]} images: give another path')
    return found['--sr'], found['--gt'], found['--lq']


def evaluate(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Per-image metric values, in the order of the SR folder; the last key is ``mean``."""
    check_arguments(args)
    metrics, per_set = metric_options(args), set_options(args)
    features: dict[str, tuple[list, list]] = {name: ([], []) for name in per_set}  # per image: (k, 2048) each
    sr, gt, lq = input_images(args)
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
    check_crop(args, sr, metrics)
    rows = {}
    for stem in tqdm(sr, unit='image', desc='evaluate'):
        img, ref = read(sr[stem]), read(gt[stem])
        if img.shape != ref.shape:
            raise AesopError(f'{sr[stem]} is {img.shape[:2]} but {gt[stem]} is {ref.shape[:2]}')
        low = read(lq[stem]) if lq else None
        rows[stem] = {name: scored(name, opt, img, ref, low, sr[stem]) for name, opt in metrics.items()}
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
    parser = ArgumentParser(
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
    """``aesop-evaluate``: 0, or 2 with one ``aesop: error:`` line (a bad option, file or image)."""

    def run(given: list[str] | None) -> int:
        args = build_parser().parse_args(given)
        return report(evaluate(args), args)

    return cli_main(run, argv)


def report(rows: dict[str, dict[str, float]], args: argparse.Namespace) -> int:
    columns = labels(args)
    print(markdown(rows, args.verbose, columns))
    if args.csv:
        write_image_csv(args.csv, rows, columns)
        print(f'CSV: {args.csv}')
    return 0
