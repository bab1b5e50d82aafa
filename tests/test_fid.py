"""FID / patch-FID pieces: patches, the Fréchet distance in closed form, the offline Inception."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from basicsr.metrics.fid import calculate_fid

from aesop.errors import AesopError
from aesop.metrics.fid import fid_inception, frechet_distance, image_patches, inception_features


def test_image_patches_cover_the_image_zero_padded():
    img = np.random.default_rng(0).integers(1, 256, (400, 650, 3), dtype=np.uint8)
    patches = list(image_patches(img))
    assert len(patches) == 2 * 3 and all(p.shape == (299, 299, 3) for p in patches)
    np.testing.assert_array_equal(patches[0], img[:299, :299])
    np.testing.assert_array_equal(patches[5][: 400 - 299, : 650 - 598], img[299:, 598:])
    assert not patches[5][400 - 299 :].any() and not patches[5][:, 650 - 598 :].any()  # zero padding
    assert len(list(image_patches(img[:100, :120]))) == 1  # smaller than a patch: one, padded


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
