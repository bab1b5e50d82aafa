"""FID / patch-FID: patches, the Fréchet distance in closed form, the offline Inception, and the ``val.metrics``
entries (``calculate_fid``, ``calculate_patch_fid``): checked at start-up, scored by a test run as by the evaluator."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics.fid import calculate_fid
from basicsr.utils.registry import METRIC_REGISTRY

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


# ------------------------------------------------------------------ FID and patch-FID as val.metrics entries


def test_fid_entries_are_checked_like_every_metric_and_need_this_packages_validation():
    """Unknown or wrong options are refused at start-up; basicsr's own models would score them per image."""
    from aesop.options import check_components

    def check(entry: dict, model_type: str = 'AesopSRModel') -> None:
        check_components({'model_type': model_type, 'val': {'metrics': {'fid': entry}}})

    check({'type': 'calculate_fid', 'crop_border': 4, 'better': 'lower'})
    check({'type': 'calculate_patch_fid', 'remainder': 'pad'})
    with pytest.raises(AesopError, match="unknown option 'remainder' for metric calculate_fid .*it takes crop_border"):
        check({'type': 'calculate_fid', 'remainder': 'pad'})
    with pytest.raises(AesopError, match="val.metrics.fid.remainder: input should be 'drop' or 'pad', got 'crop'"):
        check({'type': 'calculate_patch_fid', 'remainder': 'crop'})
    with pytest.raises(AesopError, match="calculate_fid is set-level, .* not by basicsr's SRModel"):
        check({'type': 'calculate_fid'}, 'SRModel')


def test_missing_fid_weights_are_one_start_up_line(monkeypatch, tmp_path):
    """Every entry on the Inception named in one line, the line the first validation would otherwise raise."""
    from aesop.options import missing_files

    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    monkeypatch.setenv('AESOP_PRETRAINED_DIR', str(tmp_path / 'weights'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    metrics = {'psnr': {'type': 'calculate_psnr'}, 'fid': {'type': 'calculate_fid'}}
    opt = {'is_train': False, 'val': {'metrics': {**metrics, 'pfid': {'type': 'calculate_patch_fid'}}}}
    with pytest.raises(AesopError) as raised:
        fid_inception.__wrapped__(torch.device('cpu'), False)
    named = ' (option val.metrics.fid, val.metrics.pfid)'
    assert missing_files(opt, root=tmp_path) == [str(raised.value).replace(' not found', f'{named} not found')]
    assert str(raised.value).startswith(
        "FID Inception weights 'pt_inception-2015-12-05-6726825d.pth' not found: download "
        'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth '
        f'into one of {tmp_path / "weights"}'
    )
    (tmp_path / 'weights').mkdir()
    (tmp_path / 'weights' / 'pt_inception-2015-12-05-6726825d.pth').write_bytes(b'x')
    assert missing_files(opt, root=tmp_path) == []


def test_fid_called_per_image_says_it_is_set_level():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(AesopError, match='calculate_patch_fid is set-level: it takes the lists of SR and GT images'):
        METRIC_REGISTRY.get('calculate_patch_fid')(img, img)


def test_a_validation_set_of_one_image_is_an_error_naming_the_metric_and_the_set():
    """FID needs two samples per set; two give a finite value (the covariance is singular, the distance is not)."""
    from aesop.models.validation import set_values

    one = {'a': {'fid': (np.ones((1, 4), np.float32), np.zeros((1, 4), np.float32))}}
    with pytest.raises(AesopError, match=r'^fid on tiny: FID needs at least 2 samples per set, got 1 and 1$'):
        set_values(one, 'tiny')
    two = {**one, 'b': {'fid': (np.zeros((1, 4), np.float32), np.full((1, 4), 2, np.float32))}}
    # the closed form of two samples: ‖μ₁ − μ₂‖² + ‖d‖²/2 + ‖e‖²/2 − |d·e| = 4·0.5² + 4/2 + 4·4/2 − 4·2 = 3
    assert set_values(two, 'tiny') == {'fid': pytest.approx(3)}


@pytest.fixture(scope='module')
def two_pairs(tmp_path_factory) -> Path:
    """Two held-out 64-px crops and their ×4 LR: FID's smallest set (the covariance needs two samples)."""
    from aesop.data import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp('two'), train=(), val=('coffee', 'rocket'), val_crop=64)


@pytest.mark.heavy
def test_a_test_run_scores_fid_as_the_evaluator_and_by_hand(two_pairs, tmp_path):
    """aesop/test.py with fid and patch_fid: blank in the per-image rows, the value in the mean row and metrics.csv,
    equal to aesop-evaluate's on the saved SR images, and FID equal to its closed form for two samples per set:
    Σ₁ = ddᵀ/2, Σ₂ = eeᵀ/2 (d, e: the differences of the two SR and of the two GT features), so
    FID = ‖μ₁ − μ₂‖² + ‖d‖²/2 + ‖e‖²/2 − |d·e|."""
    from basicsr.archs import build_network
    from conftest import REPO, TINY_RRDB, load_yaml, point_at, run_entry, write_yaml

    from aesop import evaluation

    torch.save({'params': build_network(copy.deepcopy(TINY_RRDB)).state_dict()}, tmp_path / 'g.pth')
    opt = point_at(load_yaml(REPO / 'options' / 'demo' / 'test_aesop.yml'), two_pairs)
    opt.update(name='fid_test', network_g=copy.deepcopy(TINY_RRDB))
    opt['path'].update(pretrain_network_g=str(tmp_path / 'g.pth'), param_key_g='params')
    opt['val']['metrics'] = {
        'psnr': {'type': 'calculate_psnr', 'crop_border': 4, 'test_y_channel': True},
        'fid': {'type': 'calculate_fid'},
        'patch_fid': {'type': 'calculate_patch_fid'},
    }
    run_entry('test', write_yaml(opt, tmp_path / 'test.yml'), tmp_path)
    results = tmp_path / 'results' / 'fid_test'
    rows = list(csv.reader((results / 'demo_val.csv').open()))
    assert rows[0] == ['image', 'psnr', 'fid (random Inception)', 'patch_fid (random Inception)']
    assert [row[0] for row in rows[1:]] == ['coffee', 'rocket', 'mean']
    assert all(row[1] and row[2:] == ['', ''] for row in rows[1:-1])  # set-level: no per-image value
    fid, patch_fid = float(rows[-1][2]), float(rows[-1][3])
    summary = list(csv.reader((results / 'metrics.csv').open()))
    assert summary[1][:2] == ['fid_test', 'demo_val'] and float(summary[1][3]) == pytest.approx(fid, abs=1e-4)

    sr, gt = results / 'visualization' / 'demo_val', two_pairs / 'val' / 'HR'
    args = ['--sr', str(sr), '--sr-suffix', '_fid_test', '--gt', str(gt), '--metrics', 'psnr,fid,patch_fid']
    offline = evaluation.evaluate(evaluation.build_parser().parse_args(args))['mean']
    assert fid > 0 and patch_fid > 0 and fid != pytest.approx(patch_fid)
    assert offline['fid'] == pytest.approx(fid, rel=1e-6, abs=1e-6)
    assert offline['patch_fid'] == pytest.approx(patch_fid, rel=1e-6, abs=1e-6)

    ours = inception_features([cv2.imread(str(sr / f'{name}_fid_test.png')) for name in ('coffee', 'rocket')])
    theirs = inception_features([cv2.imread(str(gt / f'{name}.png')) for name in ('coffee', 'rocket')])
    ours, theirs = ours.astype(np.float64), theirs.astype(np.float64)
    d, e, shift = ours[0] - ours[1], theirs[0] - theirs[1], ours.mean(0) - theirs.mean(0)
    by_hand = shift @ shift + d @ d / 2 + e @ e / 2 - abs(d @ e)
    assert np.isfinite(by_hand) and fid == pytest.approx(by_hand, rel=1e-6)
