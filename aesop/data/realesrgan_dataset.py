"""Real-ESRGAN's training dataset, also without a meta_info file."""

from __future__ import annotations

import os

import cv2
from basicsr.data.realesrgan_dataset import RealESRGANDataset
from basicsr.utils import scandir
from basicsr.utils.registry import DATASET_REGISTRY

from aesop.data.scan import UndecodableImageError, first_decodable
from aesop.errors import AesopError
from aesop.utils import IMAGE_EXTENSIONS


@DATASET_REGISTRY.register()
class AesopRealESRGANDataset(RealESRGANDataset):
    """basicsr's ``RealESRGANDataset`` (GT images and the blur kernels of the real-world degradation).

    With ``meta_info: ~`` (or no ``meta_info``) on a disk backend, the GT images are every image
    under ``dataroot_gt`` (recursively, sorted), as the AESOP release does; basicsr's class needs
    the list file. Everything else is basicsr's.
    """

    def __init__(self, opt: dict) -> None:
        scan = opt['io_backend']['type'] != 'lmdb' and opt.get('meta_info') is None
        super().__init__({**opt, 'meta_info': os.devnull} if scan else opt)  # basicsr reads an empty list
        if scan:
            self.opt = opt
            folder = opt['dataroot_gt']
            found = scandir(folder, recursive=True, full_path=True)
            self.paths = sorted(p for p in found if p.lower().endswith(IMAGE_EXTENSIONS))
            if not self.paths:
                raise AesopError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) under {folder} (datasets.*.dataroot_gt)')

    def __getitem__(self, index: int) -> dict:
        """basicsr's item; an image that does not decode is skipped with a warning naming it
        (:func:`~aesop.data.scan.first_decodable`): a long run never dies on one bad file."""
        return first_decodable(self, index, self._load, skip=True)

    def _load(self, index: int) -> dict:
        try:
            return super().__getitem__(index)
        except (AttributeError, OSError, ValueError, TypeError) as err:  # cv2 gives None, basicsr then fails
            path = self.paths[index]
            if cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None:
                raise  # not a decoding problem
            raise UndecodableImageError(f'cannot read image {path}: missing, unreadable or corrupt') from err
