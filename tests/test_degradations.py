"""Real-ESRGAN's second-order degradation on CPU, checked against basicsr's own ``feed_data``."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from basicsr.data.realesrgan_dataset import RealESRGANDataset
from basicsr.models.realesrgan_model import RealESRGANModel
from basicsr.utils import DiffJPEG, USMSharp, set_random_seed
from basicsr.utils import diffjpeg as basicsr_diffjpeg
from torch.utils.data import default_collate

from aesop.data import REALESRGAN_OPTION_KEYS, DegradedPair, PairQueue, RealESRGANDegradation
from aesop.errors import AesopError, OptionValueError

SIZE, GT_SIZE, SCALE = 80, 48, 4  # GT side, crop, scale: LQ patches are 12×12 (80 px: 0.15 × 80 > kernel2's pad 10)

# The top-level synthesis options of basicsr's options/train/RealESRGAN/train_realesrgan_x4plus.yml
X4PLUS = {
    'resize_prob': [0.2, 0.7, 0.1],
    'resize_range': [0.15, 1.5],
    'gaussian_noise_prob': 0.5,
    'noise_range': [1, 30],
    'poisson_scale_range': [0.05, 3],
    'gray_noise_prob': 0.4,
    'jpeg_range': [30, 95],
    'second_blur_prob': 0.8,
    'resize_prob2': [0.3, 0.4, 0.3],
    'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5,
    'noise_range2': [1, 25],
    'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4,
    'jpeg_range2': [30, 95],
    'scale': 4,
    'gt_size': 256,
    'queue_size': 180,
}
# ... and its dataset's kernel options
KERNELS = {
    'blur_kernel_size': 21,
    'kernel_list': ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
    'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob': 0.1,
    'blur_sigma': [0.2, 3],
    'betag_range': [0.5, 4],
    'betap_range': [1, 2],
    'blur_kernel_size2': 21,
    'kernel_list2': ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob2': 0.1,
    'blur_sigma2': [0.2, 1.5],
    'betag_range2': [0.5, 4],
    'betap_range2': [1, 2],
    'final_sinc_prob': 0.8,
}
SMALL = {**X4PLUS, 'gt_size': GT_SIZE, 'queue_size': 0}


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> dict[str, torch.Tensor]:
    """A batch of 2 from basicsr's ``RealESRGANDataset``: 80×80 photo crops and its kernels."""
    root = tmp_path_factory.mktemp('realesrgan')
    photos = {
        'astronaut.png': skimage.data.astronaut()[40:120, 180:260],
        'chelsea.png': skimage.data.chelsea()[:80, 100:180],
    }
    for name, rgb in photos.items():
        cv2.imwrite(str(root / name), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    (root / 'meta_info.txt').write_text(''.join(f'{name}\n' for name in photos))
    opt = {'dataroot_gt': str(root), 'meta_info': str(root / 'meta_info.txt'), 'io_backend': {'type': 'disk'}}
    dataset = RealESRGANDataset({**opt, **KERNELS, 'use_hflip': False, 'use_rot': False})
    set_random_seed(3)
    batch = default_collate([dataset[0], dataset[1]])
    # the dataset reflect-pads to 400×400 at the bottom and right: the top-left corner is the photo
    gt = batch['gt'][:, :, :SIZE, :SIZE].contiguous()
    assert torch.equal(gt[0], torch.from_numpy(photos['astronaut.png']).permute(2, 0, 1).float() / 255)
    return {'gt': gt, 'kernel1': batch['kernel1'], 'kernel2': batch['kernel2'], 'sinc_kernel': batch['sinc_kernel']}


def _kernels(data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return data['gt'], data['kernel1'], data['kernel2'], data['sinc_kernel']


def basicsr_feed_data(opt: dict, monkeypatch: pytest.MonkeyPatch):
    """basicsr's own ``RealESRGANModel.feed_data`` / ``_dequeue_and_enqueue`` on CPU, unmodified.

    Only ``Tensor.cuda`` is patched, inside the test, to a no-op (the pair queue). basicsr's
    ``filter2D`` runs with compat fix 6 (a contiguous input), without which ``feed_data`` fails on
    current PyTorch.
    """
    monkeypatch.setattr(torch.Tensor, 'cuda', lambda self, *args, **kwargs: self)
    model = types.SimpleNamespace(
        is_train=True,
        opt=dict(opt),
        device=torch.device('cpu'),
        jpeger=DiffJPEG(differentiable=False),
        usm_sharpener=USMSharp(),
        queue_size=opt['queue_size'],
    )
    model._dequeue_and_enqueue = types.MethodType(RealESRGANModel._dequeue_and_enqueue, model)

    def feed(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        RealESRGANModel.feed_data(model, dict(batch))
        return model.lq, model.gt, model.gt_usm

    return feed


# Option sets forcing each branch: resize up/down/keep, Gaussian/Poisson, gray/colour noise, second blur or not
VARIANTS = {
    'x4plus': {},
    'up-gaussian-gray': {
        **dict.fromkeys(('resize_prob', 'resize_prob2'), [1, 0, 0]),
        **dict.fromkeys(('gaussian_noise_prob', 'gaussian_noise_prob2', 'gray_noise_prob', 'gray_noise_prob2'), 1.0),
        'second_blur_prob': 1.0,
    },
    'down-poisson-gray': {
        **dict.fromkeys(('resize_prob', 'resize_prob2'), [0, 1, 0]),
        **dict.fromkeys(('gaussian_noise_prob', 'gaussian_noise_prob2'), 0.0),
        **dict.fromkeys(('gray_noise_prob', 'gray_noise_prob2'), 1.0),
        'second_blur_prob': 0.0,
    },
    'keep-poisson-colour': {
        **dict.fromkeys(('resize_prob', 'resize_prob2'), [0, 0, 1]),
        **dict.fromkeys(('gaussian_noise_prob', 'gaussian_noise_prob2', 'gray_noise_prob', 'gray_noise_prob2'), 0.0),
    },
}


def test_matches_basicsr_feed_data(data, monkeypatch):
    """Seeded alike, 2 consecutive batches (1 filling the pool of 2, 1 drawn from it) equal basicsr's exactly."""
    orders = []
    jpeg, resize_sinc = RealESRGANDegradation._jpeg, RealESRGANDegradation._resize_sinc
    monkeypatch.setattr(RealESRGANDegradation, '_jpeg', lambda s, *a: orders.append('jpeg') or jpeg(s, *a))
    monkeypatch.setattr(
        RealESRGANDegradation, '_resize_sinc', staticmethod(lambda *a: orders.append('sinc') or resize_sinc(*a))
    )
    for seed, (name, variant) in enumerate(VARIANTS.items()):
        opt = {**X4PLUS, **variant, 'gt_size': GT_SIZE, 'queue_size': 2}
        ours, theirs = RealESRGANDegradation.from_options(opt), basicsr_feed_data(opt, monkeypatch)
        set_random_seed(seed)
        expected = [theirs(data) for _ in range(2)]
        set_random_seed(seed)
        for step, (lq, gt, gt_usm) in enumerate(expected):
            out = ours(*_kernels(data))
            assert out.lq.shape == (2, 3, GT_SIZE // SCALE, GT_SIZE // SCALE), (name, step)
            assert torch.equal(out.lq, lq), (name, step, (out.lq - lq).abs().max())
            assert torch.equal(out.gt, gt), (name, step)
            assert torch.equal(out.gt_usm, gt_usm), (name, step)
        assert ours.queue.full
        # the second batch is the first one's pairs, from the pool
        firsts = [(lq, gt) for lq, gt in zip(expected[0][0], expected[0][1])]
        for lq, gt in zip(expected[1][0], expected[1][1]):
            assert any(torch.equal(lq, a) and torch.equal(gt, b) for a, b in firsts), name
    # after the first stage's JPEG, the second stage ran [resize + sinc] → JPEG and JPEG → [resize + sinc]
    second = [tuple(orders[i + 1 : i + 3]) for i in range(0, len(orders), 3)]
    assert set(second) == {('sinc', 'jpeg'), ('jpeg', 'sinc')}


def test_output_contract(data):
    degrade = RealESRGANDegradation(gt_size=GT_SIZE, queue_size=0)
    set_random_seed(0)
    out = degrade(*_kernels(data))
    assert isinstance(out, DegradedPair)
    lq, gt, gt_usm = out
    assert lq.shape == (2, 3, GT_SIZE // SCALE, GT_SIZE // SCALE) and lq.dtype == torch.float32
    assert lq.is_contiguous() and lq.device.type == 'cpu'
    assert 0 <= lq.min() and lq.max() <= 1
    assert torch.allclose(lq * 255, (lq * 255).round(), atol=1e-4)  # rounded to 8 bit, as basicsr does
    assert gt.shape == gt_usm.shape == (2, 3, GT_SIZE, GT_SIZE)
    offsets = [
        (top, left) for top in range(0, SIZE - GT_SIZE + 1, SCALE) for left in range(0, SIZE - GT_SIZE + 1, SCALE)
    ]
    assert any(torch.equal(gt, data['gt'][:, :, top : top + GT_SIZE, left : left + GT_SIZE]) for top, left in offsets)
    assert torch.equal(gt_usm, USMSharp()(gt))
    assert (lq - torch.nn.functional.interpolate(gt, scale_factor=1 / SCALE, mode='area')).abs().mean() < 0.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_runs_on_cuda_with_the_queue(data):
    """Same code on the GPU: every tensor (pool, JPEG tables, USM kernel) follows the GT's device."""
    degrade = RealESRGANDegradation(gt_size=GT_SIZE, queue_size=4)
    device = torch.device('cuda')
    for seed in range(3):  # fills the pool, then draws from it
        set_random_seed(seed)
        lq, gt, gt_usm = degrade(*(t.to(device) for t in _kernels(data)))
        assert lq.device == gt.device == gt_usm.device == degrade.queue.queue_lq.device
        assert lq.shape == (2, 3, GT_SIZE // SCALE, GT_SIZE // SCALE) and 0 <= lq.min() and lq.max() <= 1


def test_seeds(data):
    degrade = RealESRGANDegradation.from_options(SMALL)
    lqs = []
    for seed in (7, 7, 8):
        set_random_seed(seed)
        lqs.append(degrade(*_kernels(data)).lq)
    assert torch.equal(lqs[0], lqs[1])
    assert not torch.equal(lqs[0], lqs[2])


def test_defaults_are_x4plus():
    from_yml = RealESRGANDegradation.from_options(
        {**X4PLUS, 'name': 'x', 'datasets': {}, 'high_order_degradation': True}
    )
    default = RealESRGANDegradation()
    for key in REALESRGAN_OPTION_KEYS:
        assert getattr(default, key) == getattr(from_yml, key) == pytest.approx(X4PLUS[key]), key
    assert default.queue.size == 180
    assert RealESRGANDegradation.from_options({k: v for k, v in X4PLUS.items() if k != 'queue_size'}).queue_size == 180


@pytest.mark.parametrize(
    ('key', 'value', 'message'),
    [
        ('resize_prob', [0.2, 0.7, 0.3], 'option resize_prob must sum to 1, got [0.2, 0.7, 0.3] (sum 1.2)'),
        (
            'resize_prob2',
            [0.5, 0.5],
            'option resize_prob2 must be a list of 3 numbers [up, down, keep], got [0.5, 0.5]',
        ),
        ('resize_prob', [1.5, -0.5, 0], 'option resize_prob must have each probability [up, down, keep] in [0, 1]'),
        ('resize_range', [0, 1.5], 'option resize_range must be [lo, hi] with 0 < lo <= 1 <= hi, got [0, 1.5]'),
        ('resize_range2', [1.2, 0.3], 'option resize_range2 must be [lo, hi] with 0 < lo <= 1 <= hi, got [1.2, 0.3]'),
        ('noise_range', [-1, 30], 'option noise_range must be [lo, hi] with 0 <= lo <= hi, got [-1, 30]'),
        ('poisson_scale_range2', [0.5], 'option poisson_scale_range2 must be a list of 2 numbers [lo, hi], got [0.5]'),
        ('jpeg_range', [0, 95], 'option jpeg_range must be [lo, hi] with 1 <= lo <= hi <= 100 (JPEG quality), got'),
        ('jpeg_range2', [30, 101], 'option jpeg_range2 must be [lo, hi] with 1 <= lo <= hi <= 100'),
        ('gaussian_noise_prob', 1.5, 'option gaussian_noise_prob must be a probability in [0, 1], got 1.5'),
        ('gray_noise_prob2', 'high', "option gray_noise_prob2 must be a probability in [0, 1], got 'high'"),
        ('second_blur_prob', float('nan'), 'option second_blur_prob must be a probability in [0, 1], got nan'),
        ('scale', 2.5, 'option scale must be an integer >= 1, got 2.5'),
        ('gt_size', 66, 'option gt_size must be a multiple of scale 4 and > 25 (USM padding), got 66'),
        ('gt_size', 24, 'option gt_size must be a multiple of scale 4 and > 25'),
        ('queue_size', -12, 'option queue_size must be an integer >= 0, got -12'),
    ],
)
def test_invalid_options(key, value, message):
    with pytest.raises(OptionValueError) as err:
        RealESRGANDegradation.from_options({**X4PLUS, key: value})
    assert str(err.value).startswith(message) and '\n' not in str(err.value)
    with pytest.raises(OptionValueError, match=f'^option {key} '):
        RealESRGANDegradation(**{key: value})


def test_missing_option():
    opt = {k: v for k, v in X4PLUS.items() if k not in ('noise_range', 'jpeg_range2')}
    with pytest.raises(OptionValueError, match=r'^option noise_range is missing: .* noise_range, jpeg_range2$'):
        RealESRGANDegradation.from_options(opt)


def test_queue_size_checked_per_batch(data):
    degrade = RealESRGANDegradation.from_options({**SMALL, 'queue_size': 5})
    message = r'^option queue_size must be a multiple of the batch size 2 \(datasets.train.batch_size_per_gpu\), got 5'
    with pytest.raises(OptionValueError, match=message):
        degrade(*_kernels(data))
    with pytest.raises(OptionValueError, match=r'batch size 2 \(datasets.train.batch_size_per_gpu\), got 3'):
        PairQueue(size=3)(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 16, 16))


def test_pair_queue():
    """Fills, then hands out shuffled earlier pairs (lq and gt kept together), never losing one."""
    queue = PairQueue(size=4)
    inputs, drawn = [], []
    for step in range(1, 7):
        values = torch.tensor([10.0 * step, 10.0 * step + 1]).view(2, 1, 1, 1)
        lq, gt = values.expand(2, 3, 4, 4).clone(), values.expand(2, 3, 16, 16).clone()
        inputs += values.flatten().tolist()
        out_lq, out_gt = queue(lq, gt)
        assert out_lq.shape == lq.shape and out_gt.shape == gt.shape
        assert torch.equal(out_lq[:, :, 0, 0], out_gt[:, :, 0, 0])  # pairs stay pairs
        if step <= 2:  # filling: the batch itself
            assert out_lq is lq and out_gt is gt and len(queue) == 2 * step
        else:  # full: pairs of earlier batches
            assert queue.full and not set(out_lq[:, 0, 0, 0].tolist()) & set(values.flatten().tolist())
            drawn += out_lq[:, 0, 0, 0].tolist()
        assert sorted(queue.queue_lq[: len(queue), 0, 0, 0].tolist() + drawn) == sorted(inputs)
        assert torch.equal(queue.queue_lq[:, :, 0, 0], queue.queue_gt[:, :, 0, 0])
    queue.reset()
    assert len(queue) == 0 and not queue.full
    queue(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 16, 16))
    with pytest.raises(AesopError, match='a batch of 4 does not fit the 2 free places'):
        queue(torch.zeros(4, 3, 4, 4), torch.zeros(4, 3, 16, 16))
    with pytest.raises(AesopError, match=r"differ from the pool's"):
        queue(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 32, 32))


def test_too_small_gt_is_a_clear_error(data):
    gt, k1, k2, sinc = _kernels(data)
    with pytest.raises(ValueError, match='too small for kernel2 reflect padding 10'):
        RealESRGANDegradation(gt_size=GT_SIZE)(gt[:, :, :64, :64], k1, k2, sinc)  # 0.15 × 64 px → 9 px
    with pytest.raises(ValueError, match='multiples of scale 4'):
        RealESRGANDegradation(gt_size=GT_SIZE)(gt[:, :, :78, :78], k1, k2, sinc)


def test_jpeg_tables_are_private():
    """basicsr's DiffJPEG tables are module-level Parameters shared by every instance: ours is a copy."""
    RealESRGANDegradation().double()
    assert basicsr_diffjpeg.y_table.dtype == basicsr_diffjpeg.c_table.dtype == torch.float32
    assert not any(p.requires_grad for p in RealESRGANDegradation().parameters())
