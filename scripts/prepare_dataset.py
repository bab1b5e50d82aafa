"""Prepare paired SR data as BasicSR does: HR sub-images and their bicubic LR (training), or whole HR images
cropped to a multiple and their bicubic LR (test sets: ``GTmod12`` / ``LRbicx4``).

For every image in --input (not recursive): sub-images of --crop-size pixels every --step pixels,
plus a last row/column of crops flush with the border where more than --thresh-size pixels would
be left over (BasicSR's scripts/data_preparation/extract_subimages.py; an image smaller than the
crop size in a dimension is kept whole in it). Each crop is mod-cropped (bottom/right) to a
multiple of every factor in --scales (their least common multiple, so one HR set serves all) and
its LR images are MATLAB-style bicubic downscales (basicsr.utils.matlab_functions.imresize,
antialiased, as the paper's DIV2K/DF2K LR) rounded to the input's bit depth. With --mod N, every
image is kept whole instead, cropped (bottom/right) to a multiple of N: the test sets' layout
(BasicSR's Set5/Set14 ``GTmod12`` and ``LRbicx4``; N a multiple of every scale). With --realsr, a
RealSR folder (``<name>_HR.png`` beside ``<name>_LR<s>.png``) is copied, unchanged, to ``HR/<name>.png`` and
``LR/<name>.png``: the paired-by-name layout the option files read (``datasets/RealSR/Canon/Test/4/{HR,LR}``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import re
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aesop  # noqa: E402,F401  (first: fixes basicsr before anything imports it)
from aesop.cli import ArgumentParser, cli_main  # noqa: E402
from aesop.commands import command_help  # noqa: E402
from aesop.data import bicubic_downscale  # noqa: E402
from aesop.data.scan import folder_images  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.utils import IMAGE_EXTENSIONS  # noqa: E402
from aesop.weights import check_output_file, make_folder, write_image, write_result  # noqa: E402


def crop_positions(size: int, *, crop_size: int, step: int, thresh_size: int) -> list[int]:
    """Start offsets of the crops along one dimension of ``size`` pixels (BasicSR's rule).

    Every ``step`` from 0 while a whole crop fits, plus ``size - crop_size`` if more than
    ``thresh_size`` pixels are left after the last one; ``[0]`` (one crop of the whole extent)
    when ``size <= crop_size``.
    """
    if size <= crop_size:
        return [0]
    positions = list(range(0, size - crop_size + 1, step))
    if size - (positions[-1] + crop_size) > thresh_size:
        positions.append(size - crop_size)
    return positions


def process_image(
    path: Path,
    *,
    out: Path,
    crop_size: int,
    step: int,
    thresh_size: int,
    scales: Sequence[int],
    compression: int = 3,
    mod: int | None = None,
) -> tuple[Path, int, str | None]:
    """Write the HR sub-images of one file (with ``mod``: the whole image) and their LR images; return
    ``(path, images written, problem)``.

    ``problem`` is ``None`` or why the file was skipped (unreadable, too small, float pixels).
    """
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        return path, 0, 'unreadable (not an image or corrupt)'
    if not np.issubdtype(img.dtype, np.integer):
        return path, 0, f'unsupported pixel type {img.dtype} (8- or 16-bit images only)'
    multiple = mod or math.lcm(*scales)
    h, w = img.shape[:2]
    if min(h, w) < multiple:
        return path, 0, f'smaller ({h}×{w}) than the scale multiple {multiple}'
    if mod:
        crops = [(img, f'{path.stem}.png')]
    else:
        corners = [
            (top, left)
            for top in crop_positions(h, crop_size=crop_size, step=step, thresh_size=thresh_size)
            for left in crop_positions(w, crop_size=crop_size, step=step, thresh_size=thresh_size)
        ]
        crops = [
            (img[top : top + crop_size, left : left + crop_size], f'{path.stem}_s{index:03d}.png')
            for index, (top, left) in enumerate(corners, 1)
        ]
    hr_dir, lr_dirs = image_folders(out, scales, mod=mod)
    params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
    for hr, name in crops:
        hr = np.ascontiguousarray(hr[: hr.shape[0] - hr.shape[0] % multiple, : hr.shape[1] - hr.shape[1] % multiple])
        write_image(hr_dir / name, hr, params)
        for scale in scales:
            write_image(lr_dirs[scale] / name, bicubic_downscale(hr, scale), params)
    return path, len(crops), None


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one process per core already


def image_folders(out: Path, scales: Sequence[int], *, mod: int | None = None) -> tuple[Path, dict[int, Path]]:
    """The HR folder and the LR folder of each scale: ``HR_sub``, ``LR_bicubic/X<s>`` (sub-images) or, with
    ``mod``, BasicSR's test-set names ``GTmod<mod>``, ``LRbicx<s>``."""
    if mod:
        return out / f'GTmod{mod}', {s: out / f'LRbicx{s}' for s in scales}
    return out / 'HR_sub', {s: out / 'LR_bicubic' / f'X{s}' for s in scales}


def output_paths(out: Path, scales: Sequence[int], *, lmdb: bool, mod: int | None = None) -> list[Path]:
    """The folders this script writes under ``out`` (the image folders first), and the meta_info file of the
    sub-images."""
    hr_dir, lr_dirs = image_folders(out, scales, mod=mod)
    folders = [hr_dir, *lr_dirs.values()]
    lmdbs = [f.with_name(f'{f.name}.lmdb') for f in folders] if lmdb else []
    return folders + lmdbs + ([] if mod else [out / META_INFO])


META_INFO = 'meta_info_HR_sub.txt'


def list_images(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Image files directly in ``folder``, sorted, and ``(entry, why)`` for each entry with an image extension that
    is no file to read (a named pipe, a broken or looping symlink: skipped, listed at the end); raises on a missing
    folder, no images or clashing stems."""
    if not folder.is_dir():
        raise AesopError(f'input folder not found: {folder}')
    images, not_files = folder_images(folder)
    if not images:
        raise AesopError(f'no images in {folder} (looked for {", ".join(sorted(IMAGE_EXTENSIONS))})')
    seen: dict[str, Path] = {}
    for path in images:
        if path.stem in seen:
            raise AesopError(f'{seen[path.stem].name} and {path.name} would write the same sub-image names')
        seen[path.stem] = path
    return images, not_files


def make_lmdbs(folders: Sequence[Path], *, workers: int) -> None:
    """Pack each folder of PNGs into ``<folder>.lmdb`` with ``meta_info.txt`` (keys: file stems)."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    for folder in folders:
        names = sorted(p.name for p in folder.glob('*.png'))
        keys = [Path(n).stem for n in names]
        make_lmdb_from_imgs(str(folder), f'{folder}.lmdb', names, keys, n_thread=max(workers, 1))


def prepare(
    input_dir: Path,
    out: Path,
    *,
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    scales: Sequence[int] = (2, 3, 4, 8),
    workers: int = 1,
    lmdb: bool = False,
    overwrite: bool = False,
    compression: int = 3,
    mod: int | None = None,
) -> tuple[int, list[tuple[Path, str]]]:
    """Write the sub-images (with ``mod``: the whole images, cropped to a multiple of ``mod``) and their LR
    images; return ``(number of HR images written, skipped files with reasons)``."""
    scales = sorted(set(scales))
    if not scales or min(scales) < 1:
        raise AesopError(f'--scales must be positive integers, got {scales}')
    if mod is not None:
        wrong = [s for s in scales if mod < 1 or mod % s]
        if wrong:
            raise AesopError(
                f'--mod {mod} is not a positive multiple of scale {wrong[0]}: give a multiple of every --scales '
                f'factor (here {math.lcm(*scales)}, or one of its multiples), or fewer scales (test sets: --mod 12 '
                '--scales 4)'
            )
    elif crop_size < math.lcm(*scales):
        raise AesopError(f'--crop-size {crop_size} is smaller than the multiple of all scales ({math.lcm(*scales)})')
    if step < 1 or thresh_size < 0:
        raise AesopError(f'--step must be >= 1 and --thresh-size >= 0, got {step} and {thresh_size}')
    images, not_files = list_images(input_dir)
    check_output_file(out, '-o', folder=True)
    paths = output_paths(out, scales, lmdb=lmdb, mod=mod)
    for path in paths:  # one that exists is --overwrite's (clear_outputs); a file in the way of another is refused
        if not (path.exists() or path.is_symlink()):
            check_output_file(path, '-o', folder=path.name != META_INFO)
    clear_outputs(paths, overwrite=overwrite)
    for folder in paths[: len(scales) + 1]:
        make_folder(folder, '-o')

    job = partial(
        process_image,
        out=out,
        crop_size=crop_size,
        step=step,
        thresh_size=thresh_size,
        scales=scales,
        compression=compression,
        mod=mod,
    )
    total, skipped = 0, list(not_files)
    with tqdm(total=len(images), unit='image', desc=f'GTmod{mod}' if mod else 'sub-images') as bar:
        if workers > 1:
            context = multiprocessing.get_context('fork' if 'fork' in multiprocessing.get_all_start_methods() else None)
            with context.Pool(workers, initializer=_init_worker) as pool:
                results = list(_progress(pool.imap_unordered(job, images), bar))
        else:
            results = list(_progress(map(job, images), bar))
    for path, count, problem in sorted(results):
        total += count
        if problem:
            skipped.append((path, problem))
    skipped.sort()
    if not mod:
        names = sorted(p.name for p in paths[0].iterdir())
        write_result(out / META_INFO, ''.join(f'{name}\n' for name in names).encode())
    if lmdb and total:
        make_lmdbs(paths[: len(scales) + 1], workers=workers)
    return total, skipped


REALSR_FOLDERS = ('HR', 'LR')


def clear_outputs(paths: list[Path], *, overwrite: bool) -> None:
    """Refuse outputs that exist and are not empty (one line), or with ``overwrite`` remove them."""
    existing = [p for p in paths if p.exists() and (not p.is_dir() or next(p.iterdir(), None) is not None)]
    if existing and not overwrite:
        raise AesopError(f'output exists: {existing[0]} (and {len(existing) - 1} more); use --overwrite to replace')
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def realsr_pairs(folder: Path, scale: int) -> list[tuple[str, Path, Path]]:
    """``(name, HR file, LR file)`` of every ``<name>_HR<ext>`` / ``<name>_LR<scale><ext>`` pair directly in
    ``folder`` (RealSR's naming), sorted; other files (other scales, notes) are ignored. Raises on a missing
    folder, no pairs, an HR or LR file without its partner, or a pair whose extensions differ."""
    if not folder.is_dir():
        raise AesopError(f'input folder not found: {folder}')
    sides: dict[str, dict[str, Path]] = {}
    other_scales: set[int] = set()
    images, skipped = folder_images(folder)
    for path, problem in skipped:  # a named pipe, a broken or looping symlink
        print(f'aesop: warning: skipped {path}: it is {problem}', file=sys.stderr)
    for path in images:
        found = re.search(r'_LR(\d+)$', path.stem)
        if found and int(found[1]) != scale:
            other_scales.add(int(found[1]))
        for side, tag in (('HR', '_HR'), ('LR', f'_LR{scale}')):
            if path.stem.endswith(tag) and len(path.stem) > len(tag):
                sides.setdefault(path.stem.removesuffix(tag), {})[side] = path
    if not sides:
        raise AesopError(f'no RealSR pairs in {folder} (looked for <name>_HR.png beside <name>_LR{scale}.png)')
    for side, other in (('HR', 'LR'), ('LR', 'HR')):
        alone = [files[side].name for files in sides.values() if other not in files]
        if alone:
            more = f' (and {len(alone) - 1} more)' if len(alone) > 1 else ''
            want = f'_LR{scale}' if other == 'LR' else '_HR'
            hint = f' (it has _LR{min(other_scales)} files: --scales {min(other_scales)})' if other_scales else ''
            raise AesopError(f'{alone[0]}{more} in {folder} has no {want} file beside it{hint}')
    for files in sides.values():
        if files['HR'].suffix.lower() != files['LR'].suffix.lower():
            raise AesopError(
                f'{files["HR"].name} and {files["LR"].name} differ in format (HR/ and LR/ pair by the whole file name)'
            )
    return [(name, files['HR'], files['LR']) for name, files in sorted(sides.items())]


def layout_realsr(input_dir: Path, out: Path, *, scale: int = 4, overwrite: bool = False) -> int:
    """Copy RealSR's pairs in ``input_dir`` (``<name>_HR.png``, ``<name>_LR<scale>.png``), byte for byte, to
    ``out/HR/<name>.png`` and ``out/LR/<name>.png``; return the number of pairs. ``out`` may be ``input_dir``."""
    if scale < 1:
        raise AesopError(f'--scales must be a positive integer, got {scale}')
    pairs = realsr_pairs(input_dir, scale)
    folders = [out / name for name in REALSR_FOLDERS]
    check_output_file(out, '-o', folder=True)
    clear_outputs(folders, overwrite=overwrite)
    for folder in folders:
        make_folder(folder, '-o')
    for name, hr, lr in tqdm(pairs, unit='pair', desc='RealSR'):
        for side, src in (('HR', hr), ('LR', lr)):
            write_result(out / side / f'{name}{src.suffix}', partial(_copy_from, src))
    return len(pairs)


def _copy_from(src: Path, f) -> None:
    """Copy the file ``src`` into the open file ``f`` (a failed read names ``src``; a failed write, ``f``'s file)."""
    try:
        source = open(src, 'rb')  # noqa: SIM115  (closed below; only opening is the reader's fault)
    except OSError as err:
        raise AesopError(f'cannot read {src}: {err.strerror or err}') from err
    with source:
        shutil.copyfileobj(source, f)


def _progress(results: Iterable[tuple[Path, int, str | None]], bar: tqdm) -> Iterator[tuple[Path, int, str | None]]:
    for result in results:
        bar.update(1)
        bar.set_postfix_str(result[0].name, refresh=False)
        yield result


OUTPUTS = """\
outputs (PNG; the same file names in every folder):
  sub-images: <out>/HR_sub/<stem>_s001.png, ...      HR sub-images
              <out>/LR_bicubic/X<s>/                 their LR images, one folder per scale
              <out>/meta_info_HR_sub.txt             the sub-image names (basicsr's RealESRGANDataset)
  --mod N:    <out>/GTmod<N>/<stem>.png              whole HR images, cropped to a multiple of N
              <out>/LRbicx<s>/                       their LR images, one folder per scale
  --lmdb:     each image folder also as <folder>.lmdb (basicsr's make_lmdb_from_imgs, meta_info.txt)
  --realsr:   <out>/HR/<name>.png, <out>/LR/<name>.png  RealSR's <name>_HR.png and <name>_LR<s>.png
              (s: --scales, default 4) copied unchanged; other files are ignored, -o may be -i
Unreadable files are skipped and listed at the end (exit status 1). Existing outputs are refused unless
--overwrite, which deletes them first."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        **command_help(
            'Prepare paired SR data as BasicSR does. Training sets: sub-images of --crop-size pixels every --step '
            "pixels (BasicSR's extract_subimages.py), each cropped to a multiple of every scale, with their "
            "MATLAB-bicubic LR images (basicsr's imresize, as the paper's DF2K LR). Test sets (--mod N): every "
            "image whole, cropped to a multiple of N, with its MATLAB-bicubic LR: BasicSR's GTmod12 / LRbicx4. "
            'RealSR (--realsr): its side-by-side <name>_HR.png / <name>_LR4.png copied into HR/ and LR/.',
            (
                '{prog} -i datasets/DF2K/DF2K_HR -o datasets/DF2K --scales 4 --workers 8',
                '{prog} -i datasets/DF2K/DF2K_HR -o datasets/DF2K --crop-size 480 --step 240 --scales 4 --lmdb',
                '{prog} -i datasets/General100/HR -o datasets/General100 --mod 12 --scales 4',
                '{prog} -i datasets/RealSR/Canon/Test/4 -o datasets/RealSR/Canon/Test/4 --realsr',
            ),
            OUTPUTS,
        )
    )
    parser.add_argument('-i', '--input', type=Path, required=True, help='folder of HR images (--realsr: of pairs)')
    parser.add_argument('-o', '--out', type=Path, required=True, help='output folder')
    parser.add_argument('--crop-size', type=int, help='sub-image size in pixels (default: 480)')
    parser.add_argument('--step', type=int, help='stride between sub-images (default: 240)')
    parser.add_argument(
        '--thresh-size', type=int, help='keep a last border crop if more than this is left (default: 0)'
    )
    parser.add_argument(
        '--mod',
        type=int,
        metavar='N',
        help='test-set mode: whole images cropped to a multiple of N (GTmod<N>, LRbicx<s>), no sub-images',
    )
    parser.add_argument(
        '--realsr',
        action='store_true',
        help="RealSR's <name>_HR.png / <name>_LR<s>.png pairs copied to HR/<name>.png, LR/<name>.png",
    )
    parser.add_argument(
        '--scales', type=int, nargs='+', help='LR factors (default: 2 3 4 8; --realsr: the one scale, default 4)'
    )
    parser.add_argument('--lmdb', action='store_true', help='also pack every output folder into an lmdb')
    parser.add_argument('--workers', type=int, default=1, help='processes (default: 1)')
    parser.add_argument('--compression-level', type=int, help='PNG compression 0-9 (default: 3)')
    parser.add_argument('--overwrite', action='store_true', help='delete and rewrite existing outputs')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cropping = {'crop_size': args.crop_size, 'step': args.step, 'thresh_size': args.thresh_size}
    if args.realsr:
        given = [f'--{key.replace("_", "-")}' for key, value in cropping.items() if value is not None]
        given += [
            flag
            for flag, value in (('--mod', args.mod), ('--compression-level', args.compression_level))
            if value is not None
        ]
        given += ['--lmdb'] * args.lmdb
        if given:
            raise AesopError(f'--realsr copies the pairs unchanged: {", ".join(given)} do not apply')
        if args.scales is not None and len(args.scales) != 1:
            raise AesopError(
                f'--realsr takes one scale (the _LR<s> files), got --scales {" ".join(map(str, args.scales))}'
            )
        scale = 4 if args.scales is None else args.scales[0]
        count = layout_realsr(args.input, args.out, scale=scale, overwrite=args.overwrite)
        print(f'copied {count} RealSR ×{scale} pairs to {args.out / "HR"} and {args.out / "LR"}')
        return 0
    if args.mod is not None and any(value is not None for value in cropping.values()):
        raise AesopError('--mod keeps images whole: --crop-size, --step and --thresh-size do not apply')
    defaults = {'crop_size': 480, 'step': 240, 'thresh_size': 0}
    scales = [2, 3, 4, 8] if args.scales is None else args.scales
    total, skipped = prepare(
        args.input,
        args.out,
        **{key: defaults[key] if value is None else value for key, value in cropping.items()},
        scales=scales,
        workers=args.workers,
        lmdb=args.lmdb,
        overwrite=args.overwrite,
        compression=3 if args.compression_level is None else args.compression_level,
        mod=args.mod,
    )
    scales = sorted(set(scales))
    hr_dir, lr_dirs = image_folders(args.out, scales, mod=args.mod)
    what = f'HR images (cropped to a multiple of {args.mod})' if args.mod else 'HR sub-images'
    print(f'wrote {total} {what} to {hr_dir} and their LR to {", ".join(str(d) for d in lr_dirs.values())}')
    if skipped:
        print(f'skipped {len(skipped)} file(s):', file=sys.stderr)
        for path, problem in skipped:
            print(f'  {path}: {problem}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(cli_main(main))
