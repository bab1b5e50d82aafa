"""Real-ESRGAN's second-order degradation, on whatever device the images are on.

Real-ESRGAN (Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure
Synthetic Data", ICCV Workshops 2021, Sec. 3, "second-order degradation") makes a low-quality
(LQ) image from a ground-truth (GT) one by running the classic chain blur → random resize →
Gaussian/Poisson noise → JPEG twice, then a final sinc filter + resize back and JPEG in random
order. AESOP (App. B) trains its real-world models on exactly these synthetic pairs.

basicsr 1.4.2 splits the work in two: ``RealESRGANDataset`` reads a GT image and draws the three
blur kernels (``kernel1``, ``kernel2``, ``sinc_kernel``), and ``RealESRGANModel.feed_data``
degrades the batch. The latter puts its modules on the GPU unconditionally (``DiffJPEG``, ``USMSharp``, the training
pair queue), so it cannot run on CPU. :class:`RealESRGANDegradation` is ``feed_data``'s
degradation as a device-agnostic module and :class:`PairQueue` its ``_dequeue_and_enqueue``.

Both make their random draws from the *global* generators (:mod:`random`, :mod:`numpy.random`,
:mod:`torch`) in the same order as basicsr, reusing basicsr's own functions, so seeded alike
(e.g. ``basicsr.utils.set_random_seed``) they give bit-identical LQ images to basicsr's
``feed_data`` on the same device. That is also why there is no ``generator`` argument: basicsr's
noise functions draw from torch's global generator and cannot take one.
"""

from __future__ import annotations

import copy
import inspect
import math
import random
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NamedTuple

import numpy as np
import torch
from basicsr.data.degradations import random_add_gaussian_noise_pt, random_add_poisson_noise_pt
from basicsr.data.transforms import paired_random_crop
from basicsr.utils import DiffJPEG, USMSharp, img_process_util
from pydantic import BeforeValidator
from torch import Tensor, nn
from torch.nn import functional as F

from aesop.errors import AesopError, OptionValueError
from aesop.schema import checked, declare_options, keyword_fields

__all__ = ['REALESRGAN_OPTION_KEYS', 'DegradedPair', 'PairQueue', 'RealESRGANDegradation']


_UPDOWN = ['up', 'down', 'keep']  # the order basicsr passes to ``random.choices``
_MODES = ['area', 'bilinear', 'bicubic']  # the order basicsr passes to ``random.choice``
_USM_RADIUS = 51  # ``USMSharp()``'s default radius 50, made odd


class DegradedPair(NamedTuple):
    """A training batch made by :meth:`RealESRGANDegradation.forward` (unpacks as ``lq, gt, gt_usm``).

    Attributes:
        lq: (B, 3, gt_size / scale, gt_size / scale) float32 LQ input in [0, 1], multiples of 1/255.
        gt: (B, 3, gt_size, gt_size) float32 GT target in [0, 1] (a crop of the input GT).
        gt_usm: (B, 3, gt_size, gt_size) USM-sharpened ``gt``, the target basicsr uses when
            ``l1_gt_usm`` / ``percep_gt_usm`` / ``gan_gt_usm`` are true.
    """

    lq: Tensor
    gt: Tensor
    gt_usm: Tensor


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _rule(check) -> BeforeValidator:
    """An annotation's rule: ``check(value)`` returns the value to use or says what it must be (``'be …'``)."""

    def validate(value: Any) -> Any:
        result = check(value)
        if isinstance(result, str):
            raise ValueError(f'must {result}, got {_show(value)}')
        return result

    return BeforeValidator(validate)


def _numbers(value: Any, n: int, what: str) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise ValueError(f'must be a list of {n} numbers {what}, got {_show(value)}')
    if not all(_is_number(v) and math.isfinite(v) for v in value):
        raise ValueError(f'must be a list of {n} finite numbers {what}, got {_show(value)}')
    return [float(v) for v in value]


def _probability(value: Any) -> float | str:
    return float(value) if _is_number(value) and 0 <= value <= 1 else 'be a probability in [0, 1]'


def _probabilities(value: Any) -> list[float]:
    probs = _numbers(value, 3, '[up, down, keep]')
    if not all(0 <= p <= 1 for p in probs):
        raise ValueError(f'must have each probability [up, down, keep] in [0, 1], got {_show(value)}')
    if not abs(math.fsum(probs) - 1) <= 1e-6:
        raise ValueError(f'must sum to 1, got {_show(value)} (sum {math.fsum(probs):.6g})')
    return probs


def _range(allowed: str, ok) -> BeforeValidator:
    def check(value: Any) -> list[float] | str:
        pair = _numbers(value, 2, '[lo, hi]')
        return pair if pair[0] <= pair[1] and ok(*pair) else f'be [lo, hi] with {allowed}'

    return _rule(check)


def _at_least(minimum: int) -> BeforeValidator:
    def check(value: Any) -> int | str:
        integral = isinstance(value, float) and value.is_integer()  # 4e2: an int, as everywhere in option files
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool) or integral
        return int(value) if integer and value >= minimum else f'be an integer >= {minimum}'

    return _rule(check)


# The rules of the degradation's options, in their annotations: the schema checks the option file's top-level keys
# with them at start-up and the constructor its arguments (the same one-line messages).
Probability = Annotated[float, _rule(_probability)]
Probabilities = Annotated[Sequence[float], BeforeValidator(_probabilities)]  # [up, down, keep], summing to 1
# basicsr draws an 'up' scale in [1, hi] and a 'down' scale in [lo, 1]: lo > 1 or hi < 1 would be ignored/odd
ResizeRange = Annotated[Sequence[float], _range('0 < lo <= 1 <= hi', lambda lo, hi: 0 < lo <= 1 <= hi)]
SigmaRange = Annotated[Sequence[float], _range('0 <= lo <= hi', lambda lo, hi: lo >= 0)]
JpegRange = Annotated[
    Sequence[float], _range('1 <= lo <= hi <= 100 (JPEG quality)', lambda lo, hi: 1 <= lo and hi <= 100)
]
Positive = Annotated[int, _at_least(1)]
Count = Annotated[int, _at_least(0)]


class PairQueue:
    """basicsr's training-pair pool (``RealESRGANModel._dequeue_and_enqueue``), on any device.

    A batch of synthetic pairs shares one resize scale, noise type, etc.; the pool mixes pairs of
    ``size // B`` batches to make batches more diverse (Real-ESRGAN's "training pair pool"). While the pool is
    filling, a batch is stored and returned unchanged; once full, the pool is shuffled
    (``torch.randperm(size)`` from torch's global CPU generator, as basicsr), its first ``B``
    pairs are returned and replaced by the batch.

    The pool tensors are allocated on the first batch's device and dtype and follow later
    batches to another device.

    Args:
        size: Number of pairs the pool holds (basicsr's ``queue_size``); a multiple of the batch size.
    """

    @checked
    def __init__(self, *, size: Positive = 180) -> None:
        self.size = size
        self.reset()

    @staticmethod
    def check_batch(size: int, batch: int) -> None:
        """The pool's one rule on its size: ``size`` (``queue_size``) is a multiple of the batch ``batch`` (images
        per GPU); else an :class:`OptionValueError` (checked at start-up by the real-world model too)."""
        if size % batch:
            raise OptionValueError(
                f'option queue_size must be a multiple of the batch size {batch} (datasets.train.batch_size_per_gpu), '
                f'got {size} (use e.g. {max(batch, size // batch * batch)}, or 0 for no pool)'
            )

    def reset(self) -> None:
        """Empty the pool (its tensors are reallocated by the next batch)."""
        self.queue_lq: Tensor | None = None
        self.queue_gt: Tensor | None = None
        self.ptr = 0

    def __len__(self) -> int:
        """Number of pairs in the pool."""
        return self.ptr

    @property
    def full(self) -> bool:
        """Whether batches are now drawn from the pool."""
        return self.ptr == self.size

    @torch.no_grad()
    def __call__(self, lq: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
        """Put a batch into the pool; return it (pool filling) or ``B`` pairs from the shuffled pool.

        Args:
            lq: (B, C, h, w) LQ batch.
            gt: (B, C, H, W) GT batch of the same pairs.

        Returns:
            (lq, gt) of the same shapes.

        Raises:
            OptionValueError: ``size`` is not a multiple of ``B``.
            AesopError: The batch's shapes differ from the pool's, or it does not fit the free places.
        """
        b = lq.size(0)
        if gt.size(0) != b:
            raise AesopError(f'PairQueue: lq and gt batch sizes differ: {tuple(lq.shape)} vs {tuple(gt.shape)}')
        self.check_batch(self.size, b)
        if self.queue_lq is None:
            self.queue_lq = lq.new_zeros((self.size, *lq.shape[1:]))
            self.queue_gt = gt.new_zeros((self.size, *gt.shape[1:]))
        elif self.queue_lq.shape[1:] != lq.shape[1:] or self.queue_gt.shape[1:] != gt.shape[1:]:
            raise AesopError(
                f"PairQueue: batch shapes lq {tuple(lq.shape)}, gt {tuple(gt.shape)} differ from the pool's "
                f'{tuple(self.queue_lq.shape)}, {tuple(self.queue_gt.shape)}; call reset() first'
            )
        self.queue_lq = self.queue_lq.to(lq.device)
        self.queue_gt = self.queue_gt.to(gt.device)
        if not self.full:  # only enqueue
            if self.ptr + b > self.size:
                raise AesopError(
                    f'PairQueue: a batch of {b} does not fit the {self.size - self.ptr} free places of the pool; '
                    'keep the batch size constant or call reset()'
                )
            self.queue_lq[self.ptr : self.ptr + b] = lq
            self.queue_gt[self.ptr : self.ptr + b] = gt
            self.ptr += b
            return lq, gt
        idx = torch.randperm(self.size)  # CPU global generator, as basicsr
        self.queue_lq = self.queue_lq[idx.to(self.queue_lq.device)]
        self.queue_gt = self.queue_gt[idx.to(self.queue_gt.device)]
        lq_out, gt_out = self.queue_lq[:b].clone(), self.queue_gt[:b].clone()
        self.queue_lq[:b] = lq
        self.queue_gt[:b] = gt
        return lq_out, gt_out


class RealESRGANDegradation(nn.Module):
    """Real-ESRGAN's second-order degradation: basicsr's ``RealESRGANModel.feed_data``, device-agnostic.

    For a GT batch and the kernels ``RealESRGANDataset`` draws, :meth:`forward` does what
    ``feed_data`` does in training, with the same operations and random draws in the same order
    (Real-ESRGAN, Wang et al., ICCV-W 2021, Sec. 3; used by AESOP, App. B, for real-world
    training):

    1. USM-sharpen GT; blur it with ``kernel1``; resize by a random scale (up/down/keep with
       ``resize_prob``, scale in ``resize_range``, random area/bilinear/bicubic mode); add
       Gaussian (``gaussian_noise_prob``, sigma in ``noise_range``) or else Poisson noise (scale in
       ``poisson_scale_range``), gray with ``gray_noise_prob``; JPEG (quality in ``jpeg_range``).
    2. With ``second_blur_prob`` blur with ``kernel2``; resize to (H/scale, W/scale) × a random scale
       (``resize_prob2``, ``resize_range2``); noise as above with the ``*2`` options; then, in random
       order (1/2 each), [resize to (H/scale, W/scale) + ``sinc_kernel``] and JPEG (``jpeg_range2``).
    3. Round LQ to 8 bit; crop a random ``gt_size`` GT patch and its LQ patch; pass them through
       the :class:`PairQueue` (if ``queue_size`` > 0); USM-sharpen the GT patch.

    Defaults are Real-ESRGAN ×4's (basicsr's ``options/train/RealESRGAN/train_realesrgan_x4plus.yml``).
    The module holds a private ``DiffJPEG(differentiable=False)`` and ``USMSharp()`` (no trainable
    weights) and moves itself to the GT's device; ``.to(device)`` works too.

    Args:
        resize_prob: Probabilities [up, down, keep] of the first random resize.
        resize_range: [lo, hi] scale range of the first resize ('down' draws in [lo, 1], 'up' in [1, hi]).
        gaussian_noise_prob: Probability of Gaussian (else Poisson) noise in the first stage.
        noise_range: [lo, hi] Gaussian noise sigma (on the 0-255 scale).
        poisson_scale_range: [lo, hi] Poisson noise scale.
        gray_noise_prob: Probability, per image, that the noise is gray (same in all channels).
        jpeg_range: [lo, hi] JPEG quality of the first stage, per image.
        second_blur_prob: Probability of blurring with ``kernel2`` in the second stage.
        resize_prob2: Probabilities [up, down, keep] of the second random resize.
        resize_range2: [lo, hi] scale range of the second resize (relative to the LQ size).
        gaussian_noise_prob2: Probability of Gaussian (else Poisson) noise in the second stage.
        noise_range2: [lo, hi] Gaussian noise sigma of the second stage.
        poisson_scale_range2: [lo, hi] Poisson noise scale of the second stage.
        gray_noise_prob2: Gray-noise probability of the second stage.
        jpeg_range2: [lo, hi] JPEG quality of the final JPEG.
        scale: Super-resolution scale: LQ is GT's size / ``scale``.
        gt_size: Side of the GT patches cropped after degradation (a multiple of ``scale``, >= 26
            because ``USMSharp``'s 51-px kernel reflect-pads by 25).
        queue_size: Size of the training-pair pool (:class:`PairQueue`); 0 for none. A multiple of
            the batch size, checked at call time.

    Raises:
        OptionValueError: An option is out of its allowed range (one line naming it).
    """

    @checked(key='')
    def __init__(
        self,
        *,
        resize_prob: Probabilities = (0.2, 0.7, 0.1),
        resize_range: ResizeRange = (0.15, 1.5),
        gaussian_noise_prob: Probability = 0.5,
        noise_range: SigmaRange = (1, 30),
        poisson_scale_range: SigmaRange = (0.05, 3),
        gray_noise_prob: Probability = 0.4,
        jpeg_range: JpegRange = (30, 95),
        second_blur_prob: Probability = 0.8,
        resize_prob2: Probabilities = (0.3, 0.4, 0.3),
        resize_range2: ResizeRange = (0.3, 1.2),
        gaussian_noise_prob2: Probability = 0.5,
        noise_range2: SigmaRange = (1, 25),
        poisson_scale_range2: SigmaRange = (0.05, 2.5),
        gray_noise_prob2: Probability = 0.4,
        jpeg_range2: JpegRange = (30, 95),
        scale: Positive = 4,
        gt_size: Positive = 256,
        queue_size: Count = 180,
    ) -> None:
        super().__init__()
        for key, value in locals().items():  # validated (checked); a default list as the tuple of floats it gives
            if key in REALESRGAN_OPTION_KEYS:
                setattr(self, key, tuple(map(float, value)) if isinstance(value, Sequence) else value)
        if self.gt_size % self.scale or self.gt_size <= _USM_RADIUS // 2:
            raise OptionValueError(
                f'option gt_size must be a multiple of scale {self.scale} and > {_USM_RADIUS // 2} (USM padding), '
                f'got {gt_size}'
            )
        self.queue = PairQueue(size=self.queue_size) if self.queue_size else None

        # A deep copy: basicsr's DiffJPEG quantisation tables are module-level nn.Parameters shared by
        # every instance, so moving one DiffJPEG (.to/.cuda/.double) would move all of them.
        self.jpeger = copy.deepcopy(DiffJPEG(differentiable=False))
        self.usm_sharpener = USMSharp()
        self.requires_grad_(False)

    @classmethod
    def from_options(cls, opt: Mapping[str, Any]) -> RealESRGANDegradation:
        """Build from a basicsr option dict, reading the top-level keys basicsr's ``RealESRGANModel`` reads.

        Args:
            opt: Parsed option file (e.g. ``train_realesrgan_x4plus.yml``); other keys are ignored.
                All of :data:`REALESRGAN_OPTION_KEYS` are required except ``queue_size`` (180).

        Raises:
            OptionValueError: A key is missing or its value is out of range.
        """
        missing = [k for k in REALESRGAN_OPTION_KEYS if k not in opt and k not in _OPTIONAL_KEYS]
        if missing:
            raise OptionValueError(
                f'option {missing[0]} is missing: the Real-ESRGAN degradation needs the top-level options '
                f'{", ".join(missing)}'
            )
        return cls(**{k: opt.get(k, _OPTIONAL_KEYS.get(k)) for k in REALESRGAN_OPTION_KEYS})

    def extra_repr(self) -> str:
        return ', '.join(f'{k}={_show(getattr(self, k))}' for k in REALESRGAN_OPTION_KEYS)

    # ------------------------------------------------------------------------------------------ #

    def _check_inputs(self, gt: Tensor, kernels: dict[str, Tensor]) -> None:
        if gt.ndim != 4 or gt.size(1) != 3 or gt.dtype != torch.float32:
            raise ValueError(
                f'gt must be a (B, 3, H, W) float32 RGB tensor in [0, 1], got {gt.dtype} {tuple(gt.shape)}'
            )
        b, _, h, w = gt.shape
        for name, k in kernels.items():
            if k.ndim != 3 or k.size(0) not in (1, b) or k.size(1) != k.size(2) or k.size(-1) % 2 == 0:
                raise ValueError(f'{name} must be ({b} or 1, k, k) with odd k, got {tuple(k.shape)}')
        side, s = min(h, w), self.scale
        pad1, pad2, pad_sinc = (kernels[n].size(-1) // 2 for n in ('kernel1', 'kernel2', 'sinc_kernel'))
        down = self.resize_range[0] if self.resize_prob[1] > 0 else 1.0
        down2 = self.resize_range2[0] if self.resize_prob2[1] > 0 else 1.0
        smallest = math.floor(side * down)  # F.interpolate(scale_factor=down) output; kernel2 then reflect-pads
        problem = None
        if h % s or w % s:
            problem = f'H and W must be multiples of scale {s}'
        elif side < self.gt_size:
            problem = f'H and W must be >= gt_size {self.gt_size}'
        elif side <= max(pad1, _USM_RADIUS // 2):
            problem = f'H and W must be > {max(pad1, _USM_RADIUS // 2)} (USM and kernel1 reflect padding)'
        elif self.second_blur_prob > 0 and smallest <= pad2:
            problem = (
                f'the first resize (down to x{down:g}) can shrink {side} px to {smallest} px, '
                f'too small for kernel2 reflect padding {pad2}'
            )
        elif int(side / s * down2) < 1:
            problem = f'the second resize (down to x{down2:g} of {side // s} px) leaves no pixels'
        elif side // s <= pad_sinc:
            problem = f'the LQ side {side // s} must be > {pad_sinc} (sinc_kernel reflect padding)'
        if problem:
            raise ValueError(f'gt of size {h}x{w} does not fit the Real-ESRGAN degradation: {problem}')

    def _follow(self, device: torch.device) -> None:
        if self.usm_sharpener.kernel.device != device:
            self.to(device)

    @staticmethod
    def _random_scale(prob: Sequence[float], scale_range: Sequence[float]) -> float:
        updown_type = random.choices(_UPDOWN, prob)[0]
        if updown_type == 'up':
            return np.random.uniform(1, scale_range[1])
        if updown_type == 'down':
            return np.random.uniform(scale_range[0], 1)
        return 1

    @staticmethod
    def _random_noise(
        out: Tensor,
        gaussian_prob: float,
        sigma_range: Sequence[float],
        poisson_range: Sequence[float],
        gray_prob: float,
    ) -> Tensor:
        if np.random.uniform() < gaussian_prob:
            return random_add_gaussian_noise_pt(
                out, sigma_range=sigma_range, clip=True, rounds=False, gray_prob=gray_prob
            )
        return random_add_poisson_noise_pt(out, scale_range=poisson_range, gray_prob=gray_prob, clip=True, rounds=False)

    def _jpeg(self, out: Tensor, quality_range: Sequence[float]) -> Tensor:
        jpeg_p = out.new_zeros(out.size(0)).uniform_(*quality_range)
        out = torch.clamp(out, 0, 1)  # basicsr: otherwise JPEG gives unpleasant artifacts
        return self.jpeger(out, quality=jpeg_p)

    @staticmethod
    def _resize_sinc(out: Tensor, size: tuple[int, int], sinc_kernel: Tensor) -> Tensor:
        out = F.interpolate(out, size=size, mode=random.choice(_MODES))
        return img_process_util.filter2D(out, sinc_kernel)

    @torch.no_grad()
    def degrade(self, gt: Tensor, kernel1: Tensor, kernel2: Tensor, sinc_kernel: Tensor) -> tuple[Tensor, Tensor]:
        """The degradation and paired crop, without the pair pool and the final USM (steps 1-3 less the pool).

        Args:
            gt: (B, 3, H, W) float32 RGB GT in [0, 1]; H, W multiples of ``scale`` and >= ``gt_size``.
            kernel1: (B, k1, k1) first-stage blur kernels (or (1, k1, k1) for all), odd k1 (21 in basicsr).
            kernel2: (B, k2, k2) second-stage blur kernels.
            sinc_kernel: (B, ks, ks) final sinc filters (a unit pulse means none).

        Returns:
            ``(lq, gt)``: (B, 3, gt_size/scale, gt_size/scale) LQ patches (multiples of 1/255 in [0, 1])
            and the (B, 3, gt_size, gt_size) GT patches at the same place.
        """
        self._check_inputs(gt, {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc_kernel})
        self._follow(gt.device)
        kernel1, kernel2, sinc_kernel = (k.to(gt.device) for k in (kernel1, kernel2, sinc_kernel))
        gt_usm = self.usm_sharpener(gt)
        ori_h, ori_w = gt.size()[2:4]
        lq_size = (ori_h // self.scale, ori_w // self.scale)

        # ----------------------- the first degradation ----------------------- #
        out = img_process_util.filter2D(gt_usm, kernel1)  # basicsr degrades the USM-sharpened GT
        scale = self._random_scale(self.resize_prob, self.resize_range)
        out = F.interpolate(out, scale_factor=scale, mode=random.choice(_MODES))
        out = self._random_noise(
            out, self.gaussian_noise_prob, self.noise_range, self.poisson_scale_range, self.gray_noise_prob
        )
        out = self._jpeg(out, self.jpeg_range)

        # ----------------------- the second degradation ----------------------- #
        if np.random.uniform() < self.second_blur_prob:
            out = img_process_util.filter2D(out, kernel2)
        scale = self._random_scale(self.resize_prob2, self.resize_range2)
        mode = random.choice(_MODES)
        size = (int(ori_h / self.scale * scale), int(ori_w / self.scale * scale))
        out = F.interpolate(out, size=size, mode=mode)
        out = self._random_noise(
            out, self.gaussian_noise_prob2, self.noise_range2, self.poisson_scale_range2, self.gray_noise_prob2
        )
        # [resize back + sinc] and JPEG in random order (other orders give twisted lines, says basicsr)
        if np.random.uniform() < 0.5:
            out = self._resize_sinc(out, lq_size, sinc_kernel)
            out = self._jpeg(out, self.jpeg_range2)
        else:
            out = self._jpeg(out, self.jpeg_range2)
            out = self._resize_sinc(out, lq_size, sinc_kernel)

        lq = torch.clamp((out * 255.0).round(), 0, 255) / 255.0
        gt, lq = paired_random_crop(gt, lq, self.gt_size, self.scale)
        return lq, gt

    @torch.no_grad()
    def forward(self, gt: Tensor, kernel1: Tensor, kernel2: Tensor, sinc_kernel: Tensor) -> DegradedPair:
        """Make a training batch from GT and kernels, as ``RealESRGANModel.feed_data`` in training.

        Args:
            gt: (B, 3, H, W) float32 RGB GT in [0, 1] (``RealESRGANDataset``'s ``gt``, 400×400 there);
                H, W multiples of ``scale``, >= ``gt_size`` and large enough for the kernels after the
                first down-resize (a clear ``ValueError`` says otherwise).
            kernel1: (B, 21, 21) first-stage blur kernels (the dataset's ``kernel1``).
            kernel2: (B, 21, 21) second-stage blur kernels (``kernel2``).
            sinc_kernel: (B, 21, 21) final sinc filters (``sinc_kernel``).

        Returns:
            :class:`DegradedPair` ``(lq, gt, gt_usm)``: LQ (B, 3, gt_size/scale, gt_size/scale), GT and
            its USM-sharpened version (B, 3, gt_size, gt_size), on ``gt``'s device; drawn from the pair
            pool once it is full.

        Raises:
            OptionValueError: ``queue_size`` is not a multiple of B.
        """
        lq, gt = self.degrade(gt, kernel1, kernel2, sinc_kernel)
        if self.queue is not None:
            lq, gt = self.queue(lq, gt)
        return DegradedPair(lq.contiguous(), gt, self.usm_sharpener(gt))


#: The top-level keys of a basicsr option file that ``RealESRGANModel.feed_data`` (and its ``__init__``, for
#: ``queue_size``) reads: the keyword arguments of :class:`RealESRGANDegradation`, read from its signature, which
#: also declares their types to the option schema (below).
REALESRGAN_OPTION_KEYS = tuple(inspect.signature(RealESRGANDegradation).parameters)
#: basicsr: ``opt.get('queue_size', 180)``; all others are ``opt[key]``.
_OPTIONAL_KEYS = {'queue_size': inspect.signature(RealESRGANDegradation).parameters['queue_size'].default}


def _describe(key: str, default: str) -> str:
    if key == 'queue_size':
        return f'Training-pair pool (a multiple of datasets.train.batch_size_per_gpu; 0: none); unset: `{default}`.'
    needed = f'by a model that degrades (no default); Real-ESRGAN ×4plus: `{default}`.'
    return (
        f'HR crop of the degraded pair, a multiple of scale; needed {needed}'
        if key == 'gt_size'
        else f'Needed {needed}'
    )


declare_options(
    '',
    'RealESRGANDegradation',
    'The Real-ESRGAN degradation of the real-world models (its signature: types, ranges checked at start-up).',
    keyword_fields(RealESRGANDegradation.__init__, skip=('scale',), describe=_describe),
)
