"""A small paired ×s dataset from the photos bundled with scikit-image (no download)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from aesop.data.resize import bicubic_downscale

DEMO_TRAIN = ('astronaut', 'chelsea', 'hubble_deep_field', 'immunohistochemistry', 'brick', 'grass')
DEMO_VAL = ('coffee', 'rocket')


def skimage_photo(name: str) -> np.ndarray:
    """A bundled ``skimage.data`` photo as an (H, W, 3) uint8 RGB array."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def make_demo_dataset(
    root: str | Path,
    *,
    scale: int = 4,
    train: Sequence[str] = DEMO_TRAIN,
    val: Sequence[str] = DEMO_VAL,
    sub_size: int = 192,
    max_sub_images: int = 8,
    val_crop: int | None = None,
) -> Path:
    """Write ``root/{train,val}/{HR,LR_bicubic/X<scale>}/*.png``; existing files are kept.

    Training photos are cut into ``sub_size`` sub-images, as BasicSR prepares DF2K (small files
    load fast), at most ``max_sub_images`` per photo, evenly spread; validation photos stay
    whole (or a centred ``val_crop`` square), cropped to a multiple of ``scale``. LR is
    MATLAB-style bicubic downscaling of HR (basicsr's ``imresize``, antialiased, as the paper's
    DIV2K/DF2K LR), rounded to 8 bit.
    """
    root = Path(root)
    for split, names in (('train', train), ('val', val)):
        hr_dir, lr_dir = root / split / 'HR', root / split / 'LR_bicubic' / f'X{scale}'
        hr_dir.mkdir(parents=True, exist_ok=True)
        lr_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            photo = skimage_photo(name)
            crops = (
                _sub_images(photo, name, sub_size, max_sub_images)
                if split == 'train'
                else {name: _centre_crop(photo, val_crop)}
            )
            for crop_name, hr in crops.items():
                if (lr_dir / f'{crop_name}.png').is_file():
                    continue
                hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
                lr = bicubic_downscale(hr, scale)
                cv2.imwrite(str(hr_dir / f'{crop_name}.png'), cv2.cvtColor(hr, cv2.COLOR_RGB2BGR))
                cv2.imwrite(str(lr_dir / f'{crop_name}.png'), cv2.cvtColor(lr, cv2.COLOR_RGB2BGR))
    return root


def make_degraded_lr(root: str | Path, *, split: str = 'val', scale: int = 4, seed: int = 0) -> Path:
    """Write ``root/<split>/LR_degraded/X<scale>``: the split's HR images under one fixed synthetic degradation
    (Gaussian blur σ 1.2, MATLAB bicubic ×1/scale, Gaussian noise σ 4/255, JPEG quality 70), the target
    domain of the demo's HR-aware finetuning (its GT known, so PSNR can be shown before and after), and the
    synthetic pairs of the demo's reconstruction network (``split='train'``)."""
    root = Path(root)
    out = root / split / 'LR_degraded' / f'X{scale}'
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for hr_path in sorted((root / split / 'HR').glob('*.png')):
        if (out / hr_path.name).is_file():
            continue
        hr = cv2.cvtColor(cv2.imread(str(hr_path)), cv2.COLOR_BGR2RGB)
        blurred = cv2.GaussianBlur(hr, (0, 0), 1.2)
        lr = bicubic_downscale(blurred, scale).astype(np.float64)
        lr = np.clip(lr + rng.normal(0, 4, lr.shape), 0, 255).round().astype(np.uint8)
        _, jpeg = cv2.imencode('.jpg', cv2.cvtColor(lr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 70])
        cv2.imwrite(str(out / hr_path.name), cv2.imdecode(jpeg, cv2.IMREAD_COLOR))
    return out


def _sub_images(img: np.ndarray, name: str, size: int, most: int) -> dict[str, np.ndarray]:
    """Up to ``most`` non-overlapping ``size`` × ``size`` crops named ``<name>_s<index>``."""
    h, w = img.shape[:2]
    tops, lefts = range(0, h - size + 1, size), range(0, w - size + 1, size)
    crops = [img[t : t + size, s : s + size] for t in tops for s in lefts]
    crops = [crops[i] for i in np.linspace(0, len(crops) - 1, min(most, len(crops))).round().astype(int)]
    return {f'{name}_s{i:03d}': crop for i, crop in enumerate(crops, 1)}


def _centre_crop(img: np.ndarray, size: int | None) -> np.ndarray:
    if not size:
        return img
    top, left = max((img.shape[0] - size) // 2, 0), max((img.shape[1] - size) // 2, 0)
    return img[top : top + size, left : left + size]
