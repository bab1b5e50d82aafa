"""The paper settings of issue items 6-8, each against its source: the sentences quoted in code, option files
and docs are the papers' own (001 AESOP, 002 LR consistency), the option files say what those sentences say,
and the MATLAB bicubic of the LR-consistency loss is basicsr's ``imresize``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from basicsr.losses import build_loss
from basicsr.utils.matlab_functions import imresize
from conftest import REPO
from skimage import data
from torch.nn import functional as F

from aesop.data.resize import matlab_bicubic_downscale

PAPERS = Path(os.environ.get('AESOP_PAPERS', REPO.parent / 'shared' / 'paper'))

# (paper, sentence, files quoting it). The paper text lost its "×" signs in extraction ("299299").
QUOTES = [
    ('001', 'Unless specified, the HR training patch size is 128.', ['options/train_ae.yml', 'docs/training.md']),
    (
        '001',
        'For patch-FID evaluation, 299×299 non-overlapping patches are extracted from the images.',
        ['aesop/metrics/fid.py', 'docs/evaluation.md'],
    ),
    (
        '001',
        'If an image is smaller than 299 pixels in any dimension, we use zero-padding to meet the required size.',
        ['aesop/metrics/fid.py', 'docs/evaluation.md'],
    ),
    (
        '001',
        'We apply LPF on SR and HR images before calculating',
        ['aesop/losses/fidelity_loss.py', 'options/train_lpf_rrdb.yml', 'docs/training.md'],
    ),
    (
        '002',
        'So, instead of MSE(HR, G(LR)), we use MSE(LR, bicubic(G(LR))) as the loss.',
        ['aesop/losses/fidelity_loss.py', 'options/train_lr_consistency_rrdb.yml', 'docs/training.md'],
    ),
    (
        '002',
        'One way to improve this method seems like adding adversarial training.',
        ['options/train_lr_consistency_rrdb.yml', 'docs/training.md'],
    ),
]


def flat(text: str) -> str:
    """Text without comment markers, line breaks, runs of spaces and "×" (for the extracted paper)."""
    text = re.sub(r'^\s*#', ' ', text, flags=re.MULTILINE).replace('×', '')
    return re.sub(r'\s+', ' ', text)


@pytest.mark.parametrize(
    ('paper', 'sentence', 'files'),
    QUOTES,
    ids=[f'{q[0]}-{q[1][:24]}'.encode('ascii', 'replace').decode() for q in QUOTES],
)
def test_quoted_sentences_are_the_papers_and_are_quoted(paper, sentence, files):
    for name in files:
        assert flat(sentence) in flat((REPO / name).read_text(encoding='utf-8')), name
    found = sorted(PAPERS.glob(f'{paper}_*.txt'))
    if not found:
        pytest.skip(f'no paper text {paper}_*.txt in {PAPERS} (set AESOP_PAPERS)')
    assert flat(sentence) in flat(found[0].read_text(encoding='utf-8'))


def test_ae_option_file_says_where_its_patch_size_comes_from():
    text = (REPO / 'options' / 'train_ae.yml').read_text(encoding='utf-8')
    assert yaml.safe_load(text)['datasets']['train']['gt_size'] == 256
    assert 'train_Synthetic_AE_RRDB_LRrecon1.yml' in text and 'gt_size: 128' in text


def test_lr_consistency_option_file_is_the_posts_loss():
    entry = yaml.safe_load((REPO / 'options' / 'train_lr_consistency_rrdb.yml').read_text())['train']['lr_opt']
    assert {k: entry[k] for k in ('target', 'kernel', 'criterion', 'crop_border')} == {
        'target': 'lq',
        'kernel': 'matlab',
        'criterion': 'mse',
        'crop_border': 0,
    }
    loss = build_loss(dict(entry))
    sr, lq = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 8, 8)
    assert torch.allclose(loss(sr, lq), ((matlab_bicubic_downscale(sr, 4) - lq) ** 2).mean())


@pytest.mark.parametrize(('shape', 'scale'), [((37, 50), 4), ((128, 128), 4), ((33, 29), 2), ((48, 60), 3)])
def test_matlab_bicubic_of_tensors_is_basicsrs_imresize(shape, scale):
    """Batched (N, C, H, W), float32 and float64, odd sizes: equal to basicsr's numpy ``imresize`` (float32)."""
    images = np.random.default_rng(scale).random((2, *shape, 3))
    expected = np.stack([imresize(img, 1 / scale) for img in images])
    for dtype in (torch.float32, torch.float64):
        x = torch.from_numpy(images).permute(0, 3, 1, 2).to(dtype)
        out = matlab_bicubic_downscale(x, scale)
        assert out.dtype == dtype and out.shape == (2, 3, -(-shape[0] // scale), -(-shape[1] // scale))
        np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), expected, atol=1e-6)


def test_torch_antialiased_bicubic_differs_from_matlab_only_at_the_borders():
    """astronaut ×1/4: identical inside; 46.3 dB on the outer 2 LR pixels (torch renormalises the kernel where
    MATLAB mirrors the image), 58.4 dB over the whole image."""
    x = torch.from_numpy(data.astronaut() / 255).permute(2, 0, 1)[None]  # float64
    diff = matlab_bicubic_downscale(x, 4) - F.interpolate(x, scale_factor=0.25, mode='bicubic', antialias=True)
    ring = torch.ones_like(diff, dtype=torch.bool)
    ring[..., 2:-2, 2:-2] = False
    psnr = lambda mse: 10 * torch.log10(1 / mse).item()  # noqa: E731
    assert diff[~ring].abs().max() < 1e-12
    assert psnr((diff[ring] ** 2).mean()) == pytest.approx(46.29, abs=0.01)
    assert psnr((diff**2).mean()) == pytest.approx(58.40, abs=0.01)
