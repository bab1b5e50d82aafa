"""FID / patch-FID pieces: patches, the Fréchet distance in closed form, the offline Inception."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from basicsr.metrics.fid import calculate_fid

from aesop.errors import AesopError
from aesop.metrics.fid import fid_inception, frechet_distance, image_patches, inception_features, patch_corners

# Patch starts along one dimension, by hand: the paper's rule (App. C) keeps the whole 299-px patches of a
# dimension of at least 299 px and drops the rest; a shorter dimension is one patch, zero-padded.
PAPER_STARTS = {298: [0], 299: [0], 300: [0], 700: [0, 299]}  # 300: 1 px dropped; 700: 102 px dropped
PADDED_STARTS = {298: [0], 299: [0], 300: [0, 299], 700: [0, 299, 598]}  # remainder='pad': every pixel kept


@pytest.mark.parametrize('height', [298, 299, 300, 700])
@pytest.mark.parametrize('width', [298, 299, 300, 700])
def test_patch_corners_follow_the_papers_rule(height, width):
    assert patch_corners(height, width) == [(t, left) for t in PAPER_STARTS[height] for left in PAPER_STARTS[width]]
    expected = [(t, left) for t in PADDED_STARTS[height] for left in PADDED_STARTS[width]]
    assert patch_corners(height, width, remainder='pad') == expected


@pytest.mark.parametrize('size', [298, 299, 300, 700])
def test_image_patches_cut_at_the_corners_and_pad_only_short_dimensions(size):
    img = np.random.default_rng(size).integers(1, 256, (size, 310, 3), dtype=np.uint8)  # 310 wide: one column
    patches = list(image_patches(img))
    assert len(patches) == len(PAPER_STARTS[size]) and all(p.shape == (299, 299, 3) for p in patches)
    for patch, top in zip(patches, PAPER_STARTS[size]):
        rows = min(299, size - top)
        np.testing.assert_array_equal(patch[:rows], img[top : top + rows, :299])
        assert not patch[rows:].any()  # zero padding only below a 298-px image
    assert (size == 298) == (not patches[0][-1].any())  # the last row is padding only for 298 px
    # 700 px: rows 0-597 in two patches, rows 598-699 (and columns 299-309 everywhere) in none


def test_image_patches_pad_option_is_the_earlier_rule():
    img = np.random.default_rng(0).integers(1, 256, (400, 650, 3), dtype=np.uint8)
    patches = list(image_patches(img, remainder='pad'))
    assert len(patches) == 2 * 3 and all(p.shape == (299, 299, 3) for p in patches)
    np.testing.assert_array_equal(patches[0], img[:299, :299])
    np.testing.assert_array_equal(patches[5][: 400 - 299, : 650 - 598], img[299:, 598:])
    assert not patches[5][400 - 299 :].any() and not patches[5][:, 650 - 598 :].any()  # zero padding
    assert len(list(image_patches(img))) == 1 * 2  # the paper's rule: 101 rows and 52 columns dropped
    assert len(list(image_patches(img[:100, :120]))) == 1  # smaller than a patch: one, padded
    with pytest.raises(ValueError, match="remainder must be one of \\('drop', 'pad'\\), got 'crop'"):
        list(image_patches(img, remainder='crop'))


def test_frechet_distance_closed_forms():
    """Shift by c: ‖c‖²; scale by 2: ‖μ‖² + Tr(Σ) (Tr(Σ + 4Σ − 2·2Σ))."""
    a = np.random.default_rng(1).normal(size=(500, 6)) @ np.diag([1.0, 2, 3, 0.5, 1, 4]) + 3
    c = np.arange(6.0)
    assert frechet_distance(a + c, a) == pytest.approx(c @ c, rel=1e-6)
    mu, sigma = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(2 * a, a) == pytest.approx(mu @ mu + np.trace(sigma), rel=1e-6)
    b = np.random.default_rng(2).normal(size=(300, 6)) @ np.random.default_rng(3).normal(size=(6, 6))
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    assert frechet_distance(a, b) == pytest.approx(calculate_fid(*stats[0], *stats[1]), rel=1e-6)  # basicsr's sqrtm
    with pytest.raises(ValueError, match='at least 2 samples'):
        frechet_distance(a[:1], a)


def test_frechet_distance_of_sets_smaller_than_the_dimension():
    """Fewer samples than features (every FID here): the n₁ × n₂ singular values equal basicsr's sqrtm."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(20, 64)) + 0.5, rng.normal(size=(30, 64)) @ rng.normal(size=(64, 64)) * 0.3
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (a, b)]
    assert frechet_distance(a, b) == pytest.approx(calculate_fid(*stats[0], *stats[1]), rel=1e-5)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-9)


def test_inception_features_offline_and_deterministic():
    imgs = [np.full((64, 80, 3), v, np.uint8) for v in (30, 200)]
    first = inception_features(imgs)
    assert first.shape == (2, 2048) and np.isfinite(first).all()
    fid_inception.cache_clear()
    np.testing.assert_allclose(inception_features(imgs), first, rtol=1e-6)  # random weights are seeded
    assert not np.allclose(first[0], first[1])


def test_missing_fid_weights_name_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv('AESOP_PRETRAINED_DIR', str(tmp_path))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    with pytest.raises(AesopError, match=r"FID Inception weights 'pt_inception-2015-12-05-6726825d\.pth' not found"):
        fid_inception(torch.device('cpu'), False)
