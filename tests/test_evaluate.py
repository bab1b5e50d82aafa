"""aesop-evaluate (aesop.evaluation): pairing by stem, the CSV format, values equal basicsr's functions."""

from __future__ import annotations

import csv
import re
import shutil
import sys

import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from skimage import data

from aesop import evaluation

evaluate = evaluation  # the module behind the aesop-evaluate console script


@pytest.fixture
def folders(tiny_data, tmp_path):
    """SR = bicubic ×4 of the LR images, named ``<stem>_x4.png`` (another method's outputs)."""
    gt = shutil.copytree(tiny_data / 'train' / 'HR', tmp_path / 'gt')
    lq = shutil.copytree(tiny_data / 'train' / 'LR_bicubic' / 'X4', tmp_path / 'lq')
    sr = tmp_path / 'sr'
    sr.mkdir()
    for path in sorted(lq.glob('*.png'))[:3]:
        img = cv2.imread(str(path))
        cv2.imwrite(str(sr / f'{path.stem}_x4.png'), cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC))
    return sr, gt, lq


def test_csv_format_and_values(folders, tmp_path, capsys):
    sr, gt, lq = folders
    out = tmp_path / 'm.csv'
    args = ['--sr', str(sr), '--gt', str(gt), '--lq', str(lq), '--sr-suffix', '_x4', '--metrics', 'ssim,psnr,lr_psnr']
    assert evaluate.main([*args, '--csv', str(out), '--verbose']) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ['image', 'ssim', 'psnr', 'lr_psnr'] and rows[-1][0] == 'mean' and len(rows) == 5
    for row in rows[1:-1]:
        img, ref = cv2.imread(str(sr / f'{row[0]}_x4.png')), cv2.imread(str(gt / f'{row[0]}.png'))
        assert float(row[1]) == pytest.approx(calculate_ssim(img, ref, 4, test_y_channel=True), abs=1e-6)
        assert float(row[2]) == pytest.approx(calculate_psnr(img, ref, 4, test_y_channel=True), abs=1e-6)
    for col in (1, 2, 3):
        assert float(rows[-1][col]) == pytest.approx(sum(float(r[col]) for r in rows[1:-1]) / 3, abs=1e-5)
    printed = capsys.readouterr().out
    squeezed = re.sub(' +', ' ', printed)
    assert squeezed.startswith('| image | ssim | psnr | lr_psnr |') and '| mean |' in squeezed


def test_bad_input_is_one_line(folders, tmp_path, capsys):
    sr, gt, lq = folders
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr,fidd']) == 2
    assert capsys.readouterr().err.strip() == (
        "aesop: error: unknown metric 'fidd'; choose from psnr, ssim, lpips, dists, niqe, lr_psnr, ae_psnr, fid, "
        'patch_fid'
    )
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr']) == 2  # stems differ: _x4
    assert "no ground truth for 3 SR image(s), e.g. 'astronaut_s001_x4'" in capsys.readouterr().err
    shutil.rmtree(lq)
    assert (
        evaluate.main(['--sr', str(sr), '--gt', str(gt), '--lq', str(lq), '--sr-suffix', '_x4', '--metrics', 'lr_psnr'])
        == 2
    )
    assert capsys.readouterr().err.startswith('aesop: error: not a folder:')


def test_fid_and_patch_fid_fill_the_mean_row(folders, tmp_path):
    """Set-level: blank per image; 0 for a set against itself, > 0 against another set."""
    sr, all_gt, lq = folders
    gt = tmp_path / 'gt3'  # the GT of the 3 SR images: 4 Inception passes per image (fid, patch_fid; 2 runs)
    gt.mkdir()
    for path in sr.glob('*_x4.png'):
        shutil.copy(all_gt / path.name.replace('_x4', ''), gt)
    out = tmp_path / 'fid.csv'
    same = tmp_path / 'same'
    shutil.copytree(gt, same)
    args = ['--gt', str(gt), '--metrics', 'psnr,fid,patch_fid', '--csv', str(out)]
    assert evaluate.main(['--sr', str(sr), '--sr-suffix', '_x4', *args]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ['image', 'psnr', 'fid (random Inception)', 'patch_fid (random Inception)']  # random backbone
    assert all(r[2] == r[3] == '' for r in rows[1:-1])
    fid, patch_fid = float(rows[-1][2]), float(rows[-1][3])
    assert fid > 0 and patch_fid > 0
    assert evaluate.main(['--sr', str(same), *args]) == 0
    rows = list(csv.reader(out.open()))
    assert float(rows[-1][2]) == pytest.approx(0, abs=1e-3 * fid) and float(rows[-1][3]) == pytest.approx(
        0, abs=1e-3 * patch_fid
    )


def test_gt_images_without_sr_are_counted_and_strict_refuses(folders, tmp_path, capsys):
    sr, gt, _ = folders  # 3 SR images for all the GT ones
    total = len(list(gt.glob('*.png')))
    out = tmp_path / 'new' / 'folder' / 'm.csv'  # --csv into a folder that does not exist yet
    args = ['--sr', str(sr), '--gt', str(gt), '--sr-suffix', '_x4', '--metrics', 'psnr']
    assert evaluate.main([*args, '--csv', str(out)]) == 0 and out.is_file()
    err = capsys.readouterr().err
    assert f'aesop: warning: {total - 3} of {total} GT images have no SR image' in err
    assert 'the means are over the 3 that do' in err
    assert evaluate.main([*args, '--strict']) == 2
    assert f'aesop: error: --strict: {total - 3} of {total} GT images have no SR image' in capsys.readouterr().err


@pytest.mark.parametrize(('remainder', 'patches'), [('drop', 1), ('pad', 4)])
def test_patch_remainder_flag_picks_the_border_rule(tmp_path, monkeypatch, remainder, patches):
    """300 × 300 pairs: the paper's rule gives one 299-px patch per image (1 px dropped), ``pad`` four."""
    import numpy as np

    import aesop.metrics.fid

    seen = []

    def features(images):
        images = list(images)
        seen.append([img.shape for img in images])
        return np.random.default_rng(len(seen)).normal(size=(len(images), 8))

    monkeypatch.setattr(aesop.metrics.fid, 'inception_features', features)  # what image_features calls
    img = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    for name in ('sr', 'gt'):
        (tmp_path / name).mkdir()
        for stem in ('a', 'b'):  # FID needs two samples per set
            cv2.imwrite(str(tmp_path / name / f'{stem}.png'), img)
    args = ['--sr', str(tmp_path / 'sr'), '--gt', str(tmp_path / 'gt'), '--metrics', 'patch_fid']
    assert evaluate.main([*args, '--patch-remainder', remainder]) == 0
    assert seen == [[(299, 299, 3)] * patches] * 4  # SR and GT of both images


def test_random_backbones_are_named_in_the_table_and_the_csv(folders, tmp_path, capsys, monkeypatch):
    """AESOP_RANDOM_BACKBONES=1 (the tests'): LPIPS's column is "lpips (random AlexNet)" in the printed table and the
    CSV header; FID's would be "fid (random Inception)"; without the switch the names stay bare."""
    sr, gt, _ = folders
    out = tmp_path / 'm.csv'
    args = ['--sr', str(sr), '--gt', str(gt), '--sr-suffix', '_x4', '--metrics', 'psnr,lpips', '--csv', str(out)]
    assert evaluate.main(args) == 0
    assert next(csv.reader(out.open())) == ['image', 'psnr', 'lpips (random AlexNet)']
    assert re.sub(' +', ' ', capsys.readouterr().out).startswith('| image | psnr | lpips (random AlexNet) |')
    parsed = evaluate.build_parser().parse_args(['--sr', 'a', '--gt', 'b', '--metrics', 'psnr,fid,patch_fid'])
    assert evaluation.labels(parsed) == {
        'psnr': 'psnr',
        'fid': 'fid (random Inception)',
        'patch_fid': 'patch_fid (random Inception)',
    }
    monkeypatch.delenv('AESOP_RANDOM_BACKBONES')
    assert evaluation.labels(parsed) == {'psnr': 'psnr', 'fid': 'fid', 'patch_fid': 'patch_fid'}


@pytest.mark.parametrize('pyiqa', [False, True], ids=['without-pyiqa', 'with-pyiqa'])
def test_niqe_is_pyiqas_when_installed_else_basicsrs_and_the_column_says_which(pyiqa, tmp_path, request, monkeypatch):
    """--metrics niqe: pyiqa's NIQE (the release's; here a stand-in scoring the image's mean) when pyiqa imports,
    else basicsr's calculate_niqe, on the image cropped by --crop-border (default: the scale)."""
    if pyiqa:
        request.getfixturevalue('fake_pyiqa')
    else:
        monkeypatch.setitem(sys.modules, 'pyiqa', None)  # import fails as when it is not installed
    img = np.ascontiguousarray(data.coffee()[:200, :296, ::-1])  # 192 × 288 once 4 px are cropped
    for folder in ('sr', 'gt'):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / 'coffee.png'), img)
    out = tmp_path / 'niqe.csv'
    args = ['--sr', str(tmp_path / 'sr'), '--gt', str(tmp_path / 'gt'), '--metrics', 'niqe', '--csv', str(out)]
    assert evaluate.main(args) == 0
    rows = list(csv.reader(out.open()))
    cropped = img[4:-4, 4:-4]
    expected = (cropped[..., ::-1].astype(np.float32) / 255).mean() if pyiqa else calculate_niqe(cropped, 0)
    assert rows[0] == ['image', f'niqe ({"pyiqa" if pyiqa else "basicsr"})']
    assert float(rows[1][1]) == pytest.approx(expected, abs=1e-5)
