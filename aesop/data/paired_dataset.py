"""basicsr's ``PairedImageDataset`` with one-line errors and undecodable pairs skipped in training."""

from __future__ import annotations

import cv2
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY

from aesop.data.scan import UndecodableImageError, first_decodable
from aesop.errors import AesopError

__all__ = ['AesopPairedImageDataset']


@DATASET_REGISTRY.register()
class AesopPairedImageDataset(PairedImageDataset):
    """basicsr's ``PairedImageDataset`` (same options, same items), except that:

    - a corrupt image or an LR/GT pair of the wrong sizes is one error naming the files and sizes
      (basicsr fails with an ``AttributeError`` or a bare ``ValueError``);
    - in training, a pair that does not decode is skipped (the next one is used) with a warning
      naming it (:func:`aesop.data.scan.first_decodable`).

    Option files keep ``type: PairedImageDataset``: :func:`aesop.options.load_options` builds this one.
    """

    def __getitem__(self, index: int) -> dict:
        return first_decodable(self, index, self._checked_item, skip=self.opt['phase'] == 'train')

    def _checked_item(self, index: int) -> dict:
        paths = self.paths[index]
        try:
            item = super().__getitem__(index)
        except Exception as err:
            shapes = {}
            for key in ('gt_path', 'lq_path'):
                img = cv2.imread(paths[key], cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise UndecodableImageError(
                        f'cannot read image {paths[key]}: missing, unreadable or corrupt'
                    ) from err
                shapes[key] = img.shape[:2]
            check_pair_sizes(paths, shapes['gt_path'], shapes['lq_path'], self.opt)
            raise
        check_pair_sizes(paths, tuple(item['gt'].shape[-2:]), tuple(item['lq'].shape[-2:]), self.opt)
        return item


def check_pair_sizes(paths: dict, gt: tuple, lq: tuple, opt: dict) -> None:
    """GT must be exactly ``scale`` × LR (after basicsr's validation crop) and fit ``gt_size``."""
    scale = opt['scale']
    pair = f'{paths["gt_path"]} ({gt[0]}×{gt[1]}) and {paths["lq_path"]} ({lq[0]}×{lq[1]})'
    if tuple(gt) != (lq[0] * scale, lq[1] * scale):
        raise AesopError(f'GT/LR sizes do not match scale {scale}: {pair}')
    gt_size = opt.get('gt_size') if opt['phase'] == 'train' else None
    if gt_size and min(gt) < gt_size:
        raise AesopError(f'images smaller than gt_size {gt_size}: {pair}')
