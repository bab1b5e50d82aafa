"""Real-ESRGAN's training dataset, also without a meta_info file."""

from __future__ import annotations

import logging
import os

import cv2
from basicsr.data.realesrgan_dataset import RealESRGANDataset
from basicsr.utils import scandir
from basicsr.utils.registry import DATASET_REGISTRY

from aesop.errors import AesopError
from aesop.utils import IMAGE_EXTENSIONS

logger = logging.getLogger('basicsr')


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
        """basicsr's item; an image that does not decode is skipped (the next one is used) with a warning
        naming it, as for paired data: a long run never dies on one bad file."""
        for attempt in range(len(self.paths)):
            i = (index + attempt) % len(self.paths)
            try:
                return super().__getitem__(i)
            except (AttributeError, OSError, ValueError, TypeError) as err:  # cv2 gives None, basicsr then fails
                if cv2.imread(str(self.paths[i]), cv2.IMREAD_UNCHANGED) is not None:
                    raise  # not a decoding problem
                self.skipped = getattr(self, 'skipped', 0) + 1
                logger.warning(
                    f'cannot read image {self.paths[i]}: missing, unreadable or corrupt ({type(err).__name__}): '
                    f'skipped ({self.skipped} skipped so far by this loader)'
                )
        raise AesopError(f'no image under {self.opt["dataroot_gt"]} decodes')
