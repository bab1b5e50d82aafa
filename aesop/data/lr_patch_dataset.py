"""LR images of a target domain in random patches: the data of HR-aware finetuning (paper 003).

basicsr's ``SingleImageDataset`` reads whole images and neither crops nor flips. Finetuning sees
only the target domain's LR images (no GT), so :class:`AesopLRPatchDataset` crops random
``lq_size`` patches and flips/rotates them as basicsr's paired datasets do.
"""

from __future__ import annotations

import random

import cv2
from basicsr.data.transforms import augment
from basicsr.utils import img2tensor, scandir
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from aesop.data.scan import UndecodableImageError, first_decodable
from aesop.errors import AesopError
from aesop.utils import IMAGE_EXTENSIONS

__all__ = ['AesopLRPatchDataset']


@DATASET_REGISTRY.register()
class AesopLRPatchDataset(data.Dataset):
    """Every image under ``dataroot_lq`` (recursively, sorted), as ``{'lq', 'lq_path'}`` (RGB in [0, 1]).

    Options: ``dataroot_lq``; ``lq_size`` (random crop side; ``~``: whole images, e.g. for
    validation); ``use_hflip``, ``use_rot`` (basicsr's ``augment``); ``io_backend: {type: disk}``.
    In training an image that does not decode is skipped with a warning naming it; one smaller
    than ``lq_size`` is an error naming it.
    """

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        if (opt.get('io_backend') or {}).get('type', 'disk') != 'disk':
            raise AesopError('AesopLRPatchDataset reads folders: io_backend must be {type: disk}')
        folder = opt['dataroot_lq']
        self.paths = sorted(
            p for p in scandir(folder, recursive=True, full_path=True) if p.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not self.paths:
            raise AesopError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) under {folder} (datasets.*.dataroot_lq)')

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        return first_decodable(self, index, self._load, skip=self.opt.get('phase') == 'train')

    def _load(self, index: int) -> dict:
        path = self.paths[index]
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise UndecodableImageError(f'cannot read image {path}: missing, unreadable or corrupt')
        img = img.astype('float32') / 255.0
        size = self.opt.get('lq_size')
        if size:
            h, w = img.shape[:2]
            if h < size or w < size:
                raise AesopError(f'{path} ({h}×{w}) is smaller than lq_size {size}')
            top, left = random.randint(0, h - size), random.randint(0, w - size)
            img = img[top : top + size, left : left + size]
        if self.opt.get('phase') == 'train':
            img = augment(img, self.opt.get('use_hflip', False), self.opt.get('use_rot', False))
        return {'lq': img2tensor(img, bgr2rgb=True, float32=True), 'lq_path': path}
