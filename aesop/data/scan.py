"""A fast start-up scan of the data folders: every image's header is read before the first batch.

basicsr finds a corrupt or non-image file only when a batch happens to draw it: a short run exits
0 without a word, a long one dies hours in. :func:`scan_dataset_folders` reads each file's header
(Pillow, in threads; about 0.1 ms a file) and refuses empty files, non-images and unreadable
headers with one line naming them. A file whose header is fine but whose pixels do not decode is
skipped during training with a warning (:func:`first_decodable`, used by the paired and the
real-world datasets); ``scripts/check_dataset.py`` decodes everything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from aesop.errors import AesopError
from aesop.utils import IMAGE_EXTENSIONS, link_problem, not_a_file

logger = logging.getLogger('basicsr')

# basicsr reads every file of their folders
FOLDER_DATASETS = ('PairedImageDataset', 'AesopPairedImageDataset', 'SingleImageDataset')


def folder_images(folder: Path, option: str = '') -> tuple[list[Path], list[tuple[Path, str]]]:
    """The images (by extension) directly in ``folder``, sorted: regular files and symlinks to them only; and
    ``(entry, why)`` for each entry with an image extension that is none (:func:`aesop.utils.not_a_file`: a named
    pipe called ``rocket.png``, a broken or looping symlink), for the caller to name as skipped. Reads no file.
    ``option``: the command-line option that gave the folder, for the message of a folder that cannot be listed."""
    try:
        entries = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    except OSError as err:
        given = f' ({option})' if option else ''
        raise AesopError(f'cannot list {folder}{given}: {err.strerror or err}') from None
    images, skipped = [], []
    for path in entries:
        problem = not_a_file(path)
        if problem:  # a bad link names itself; a pipe, a folder, a device called like an image is "not a file"
            skipped.append((path, problem if link_problem(path) else f'{problem}, not a file'))
        else:
            images.append(path)
    return images, skipped


def skipped_names(skipped: list[tuple[Path, str]]) -> str:
    """``'<name> is <why>; …'`` of :func:`folder_images`' skipped entries."""
    return '; '.join(f'{path.name} is {why}' for path, why in skipped)


def skipped_entries(option: str, folder: Path, skipped: list[tuple[Path, str]]) -> str:
    """The line naming the entries :func:`folder_images` skipped in ``folder`` (given by ``option``)."""
    one = len(skipped) == 1
    return (
        f'{option}: {folder} holds {len(skipped)} entr{"y" if one else "ies"} that {"is" if one else "are"} no image '
        f'file to read: {skipped_names(skipped)}'
    )


def file_or_bad_link(path: Path) -> bool:
    """A file, or a symlink that leads to nothing (:func:`link_problem`): basicsr lists a looping link and
    fails on it at start-up with a traceback, and skips a broken one without a word; both are refused by
    :func:`image_header` instead."""
    return path.is_file() or (path.is_symlink() and not path.exists())


def image_header(path: str | Path) -> tuple[str | None, tuple[int, int] | None]:
    """Why ``path`` is not a readable image (``'empty file'``, ``'not an image: …'``, a looping or broken symlink) or
    ``None``, and the image's ``(width, height)`` from its header (``None`` when unknown)."""
    if problem := link_problem(path):
        return problem, None
    try:
        if os.path.getsize(path) == 0:
            return 'empty file', None
        with Image.open(path) as image:
            return None, image.size  # the header is parsed on open
    except Image.DecompressionBombError:
        return None, None  # a very large image is still an image (cv2 reads it)
    except (OSError, ValueError, SyntaxError) as err:
        return f'not an image or unreadable header: {err}', None


def dataset_files(dataset: dict) -> Iterator[tuple[str, Path]]:
    """``(option key, file)`` for the images a disk dataset reads from its folders."""
    if (dataset.get('io_backend') or {}).get('type', 'disk') != 'disk':
        return
    folder_mode = dataset.get('type') in FOLDER_DATASETS and not dataset.get('meta_info_file')
    for key in ('dataroot_gt', 'dataroot_lq'):
        if dataset.get(key):
            root = Path(dataset[key])
            try:
                files = list(root.iterdir() if folder_mode else _walk(root))
            except OSError as err:
                raise AesopError(f'cannot list {root} ({key}): {err.strerror or err}') from None
            for path in files:
                if file_or_bad_link(path) and (folder_mode or path.suffix.lower() in IMAGE_EXTENSIONS):
                    yield key, path


def _walk(root: Path) -> Iterator[Path]:
    """Every file under ``root``, following symlinks, refusing a symlink loop."""
    for folder, _, names in os.walk(root, followlinks=True):
        real, parent = os.path.realpath(folder), Path(folder).parent
        while parent != root.parent and parent != parent.parent:  # a folder inside itself: a loop
            if os.path.realpath(parent) == real:
                raise AesopError(f'symlink loop under {root}: {folder} is {real} again')
            parent = parent.parent
        yield from (Path(folder) / name for name in names)


def scan_images(files: Iterable[tuple[str, Path]], *, where: str) -> int:
    """Check the header of every file; raise one :class:`AesopError` naming the bad ones. Returns the count."""
    return len(_scan(list(files), where=where, crop=None))


def _scan(
    files: list[tuple[str, Path]], *, where: str, crop: tuple[str, str, int] | None
) -> list[tuple[str, Path, tuple[int, int] | None]]:
    """:func:`scan_images`: ``(folder option, file, (width, height) or None)`` of each file. ``crop``: ``(folder
    option, size option, side)``, a random crop of ``side`` px that the dataset cuts from each image of that folder:
    an image smaller than it is refused now, naming the first (basicsr: at the first batch that drew one, hours in
    where few are)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        headers = pool.map(image_header, [path for _, path in files])
        progress = tqdm(headers, total=len(files), desc=f'scanning {where}', unit='file', disable=len(files) < 5000)
        headers = list(progress)
    bad = [(key, path, problem) for (key, path), (problem, _) in zip(files, headers, strict=True) if problem]
    if bad:
        key, path, problem = bad[0]
        more = f' and {len(bad) - 1} more' if len(bad) > 1 else ''
        raise AesopError(f'{where}.{key}: {path}: {problem}{more} (scripts/check_dataset.py lists them all)')
    scanned = [(key, path, size) for (key, path), (_, size) in zip(files, headers, strict=True)]
    if crop is not None:
        folder, option, side = crop
        small = [(path, size) for key, path, size in scanned if key == folder and size is not None and min(size) < side]
        if small:
            (path, (width, height)), more = small[0], f' and {len(small) - 1} more' if len(small) > 1 else ''
            raise AesopError(
                f'{where}.{option} {side} is larger than {path} ({height}×{width}, option {where}.{folder}){more}: '
                f'lower {option}, or leave the smaller images out'
            )
    return scanned


# the random crop a dataset cuts from every image of a folder: type → (folder option, size option, phases or None: any)
CROPS = {
    'AesopPairedImageDataset': ('dataroot_gt', 'gt_size', ('train',)),
    'AesopLRPatchDataset': ('dataroot_lq', 'lq_size', None),
}


def scan_dataset_folders(opt: dict) -> dict[str, tuple[Path, tuple[int, int]]]:
    """:func:`scan_images` on every disk dataset of ``opt`` (before anything is built), with the crop it cuts
    (:data:`CROPS`). Returns each dataset's GT image with the smallest side, ``{phase: (file, (width, height))}``
    (for the metrics' ``crop_border``: :func:`aesop.options.check_crop_borders`)."""
    smallest = {}
    for phase, dataset in (opt.get('datasets') or {}).items():
        folder, option, phases = CROPS.get(dataset.get('type'), (None, None, ()))
        cropped = option is not None and dataset.get(option) and (phases is None or phase.split('_')[0] in phases)
        crop = (folder, option, dataset[option]) if cropped else None
        scanned = _scan(list(dataset_files(dataset)), where=f'datasets.{phase}', crop=crop)
        sizes = [(path, size) for key, path, size in scanned if key == 'dataroot_gt' and size is not None]
        if sizes:
            smallest[phase] = min(sizes, key=lambda item: min(item[1]))
    return smallest


class UndecodableImageError(Exception):
    """An image file of a dataset item that does not decode (see :func:`first_decodable`)."""


def first_decodable(dataset, index: int, load: Callable[[int], dict], *, skip: bool) -> dict:
    """``load(index)``; if its image does not decode (:class:`UndecodableImageError`) and ``skip`` (training),
    the next item instead, with a warning naming the file and counting the skips of this loader. Without
    ``skip`` (validation, test) the error is one line."""
    for attempt in range(len(dataset)):
        try:
            return load((index + attempt) % len(dataset))
        except UndecodableImageError as err:
            if not skip:
                raise AesopError(str(err)) from None
            dataset.skipped = getattr(dataset, 'skipped', 0) + 1
            logger.warning(f'{err}: skipped ({dataset.skipped} skipped so far by this loader)')
    raise AesopError(f'no image of {dataset.opt.get("name", "the dataset")} decodes')


def check_dataset_files(opt: dict) -> None:
    """A paired folder dataset has an LR image for every GT one, and enough images for one batch."""
    for phase, dataset in (opt.get('datasets') or {}).items():
        if (dataset.get('io_backend') or {}).get('type') == 'lmdb':
            for key in ('dataroot_gt', 'dataroot_lq'):
                folder = dataset.get(key)
                if folder and not (Path(folder) / 'data.mdb').is_file():
                    raise AesopError(
                        f'datasets.{phase}.{key}: {folder} is not an LMDB database (no data.mdb): use '
                        'io_backend: {type: disk} for a folder of images, or scripts/prepare_dataset.py --lmdb'
                    )
        if (dataset.get('io_backend') or {}).get('type', 'disk') != 'disk':
            continue
        gt, lq = dataset.get('dataroot_gt'), dataset.get('dataroot_lq')
        if dataset.get('type') == 'AesopPairedImageDataset' and gt and lq and not dataset.get('meta_info_file'):
            gt_files = sorted(p.name for p in Path(gt).iterdir() if p.is_file())
            lq_files = {p.name for p in Path(lq).iterdir() if p.is_file()}
            template = dataset.get('filename_tmpl', '{}')
            missing = [n for n in gt_files if f'{template.format(Path(n).stem)}{Path(n).suffix}' not in lq_files]
            if missing or len(gt_files) != len(lq_files):
                first = f'; e.g. no LR image for {missing[0]}' if missing else ''
                raise AesopError(
                    f'datasets.{phase}: {len(gt_files)} GT images in {gt} but {len(lq_files)} LR images in {lq}'
                    f'{first} (pairs are matched by name, filename_tmpl {template!r})'
                )
        if phase == 'train' and (gt or lq):  # the LR folder of an LR-only dataset (AesopLRPatchDataset)
            count = len([p for p in Path(gt or lq).rglob('*') if p.is_file()]) * dataset.get('dataset_enlarge_ratio', 1)
            batch = dataset.get('batch_size_per_gpu', 1) * opt.get('world_size', 1)
            if isinstance(batch, int) and count < batch:
                raise AesopError(
                    f'datasets.train: {count} images (x dataset_enlarge_ratio) for a batch of {batch}: no iteration '
                    'would run (the last incomplete batch is dropped); lower batch_size_per_gpu'
                )
