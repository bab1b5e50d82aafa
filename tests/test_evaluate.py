"""aesop-evaluate (aesop.evaluation): pairing by stem, the CSV format, values equal basicsr's functions."""

from __future__ import annotations

import csv
import errno
import os
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from conftest import REPO, load_yaml, point_at, run_entry, write_yaml
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
        "aesop: error: --metrics: unknown metric 'fidd'; choose from psnr, ssim, lpips, dists, niqe, lr_psnr, ae_psnr, "
        'fid, patch_fid'
    )
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr']) == 2  # stems differ: _x4
    assert "no ground truth for 3 SR image(s), e.g. 'astronaut_s001_x4'" in capsys.readouterr().err
    shutil.rmtree(lq)
    assert (
        evaluate.main(['--sr', str(sr), '--gt', str(gt), '--lq', str(lq), '--sr-suffix', '_x4', '--metrics', 'lr_psnr'])
        == 2
    )
    assert capsys.readouterr().err.strip() == f'aesop: error: --lq {lq}: not a folder (not found)'


@pytest.mark.heavy
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


# Hostile input (issue 37): one ``aesop: error:`` line naming the option or file, exit 2, nothing earlier lost.


def small_pairs(tmp_path: Path, size=(48, 64), stems=('a', 'b')) -> tuple[Path, Path]:
    """SR and GT folders of random ``size`` images, one pair per stem (the SR a darker copy of the GT)."""
    rng = np.random.default_rng(0)
    sr, gt = tmp_path / 'sr', tmp_path / 'gt'
    sr.mkdir(), gt.mkdir()
    for stem in stems:
        img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        cv2.imwrite(str(gt / f'{stem}.png'), img)
        cv2.imwrite(str(sr / f'{stem}.png'), img // 2 + 64)
    return sr, gt


def error_line(capsys) -> str:
    """The one error line of a run (after its warnings, if any), without its ``aesop: error: ``."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('aesop: ')]
    assert 'Traceback' not in err and [line.startswith('aesop: error: ') for line in lines][-1:] == [True], err
    assert all(line.startswith('aesop: warning: ') for line in lines[:-1]), err
    return lines[-1].removeprefix('aesop: error: ')


@pytest.fixture
def no_reading(monkeypatch):
    """Checks made before any work: reading an image fails the test."""

    def read(path):
        raise AssertionError(f'read {path} before the check')

    monkeypatch.setattr(evaluation, 'read', read)


@pytest.mark.parametrize('stage', ['write', 'rename'])
def test_a_failed_csv_write_keeps_the_earlier_csv_and_is_one_line(stage, tmp_path, monkeypatch, capsys):
    """A full disk while the CSV is written (or renamed into place) leaves the earlier CSV whole, no temporary
    beside it, and one line naming the file (it was truncated to ``image,psnr\\ncoffee,1`` and a traceback)."""
    sr, gt = small_pairs(tmp_path)
    out = tmp_path / 'earlier.csv'
    args = ['--sr', str(sr), '--gt', str(gt), '--csv', str(out)]
    assert evaluate.main([*args, '--metrics', 'psnr']) == 0
    earlier = out.read_bytes()

    def disk_full(*_):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync' if stage == 'write' else 'replace', disk_full)
    assert evaluate.main([*args, '--metrics', 'psnr,ssim']) == 2
    assert error_line(capsys) == f'cannot write {out}: No space left on device (the previous one is kept)'
    assert out.read_bytes() == earlier and sorted(p.name for p in tmp_path.iterdir()) == ['earlier.csv', 'gt', 'sr']


@pytest.mark.parametrize('case', ['under-a-file', 'a-folder', 'an-input'])
def test_a_csv_path_that_is_not_a_file_path_is_refused_before_any_work(case, tmp_path, no_reading, capsys):
    sr, gt = small_pairs(tmp_path)
    (tmp_path / 'a.txt').write_text('kept')
    (tmp_path / 'results').mkdir()
    csv_path, expected = {
        'under-a-file': (tmp_path / 'a.txt' / 'out.csv', f'--csv {tmp_path}/a.txt/out.csv: '),
        'a-folder': (
            tmp_path / 'results',
            f'--csv {tmp_path}/results is a folder: give a file name',
        ),
        'an-input': (gt / 'a.png', f'--csv {gt}/a.png is one of the --gt images: give another path'),
    }[case]
    image = (gt / 'a.png').read_bytes()
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr', '--csv', str(csv_path)]) == 2
    line = error_line(capsys)
    assert line.startswith(expected), line
    if case == 'under-a-file':
        assert line.endswith(f'{tmp_path}/a.txt is a file, not a folder')
    assert (tmp_path / 'a.txt').read_text() == 'kept' and (gt / 'a.png').read_bytes() == image
    assert list((tmp_path / 'results').iterdir()) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize('where', ['sr', 'gt'])
def test_a_named_pipe_called_like_an_image_is_skipped_not_waited_on(where, tmp_path, capsys):
    """``rocket.png`` a named pipe in the SR or GT folder: it hung the evaluator forever (cv2.imread waits for a
    writer); now only regular files are listed and the pipe is named as skipped; --strict refuses it."""
    sr, gt = small_pairs(tmp_path)
    os.mkfifo(tmp_path / where / 'rocket.png')
    out = tmp_path / 'm.csv'
    args = ['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr', '--csv', str(out)]
    assert evaluate.main(args) == 0
    err = capsys.readouterr().err
    assert (
        f'aesop: warning: --{where}: {tmp_path / where} holds 1 entry that is no image file to read: rocket.png is a '
        'named pipe, not a file: skipped (--strict refuses)'
    ) in err
    assert [row[0] for row in csv.reader(out.open())] == ['image', 'a', 'b', 'mean']
    assert evaluate.main([*args, '--strict']) == 2
    assert error_line(capsys).startswith(f'--strict: --{where}: {tmp_path / where} holds 1 entry that is no image')


def test_broken_and_looping_symlinks_are_skipped_with_a_warning_naming_them(tmp_path, capsys):
    """As aesop-infer skips what it cannot read: a warning naming each link and why, the means over the rest;
    --strict refuses. (A GT link that leads nowhere leaves its SR image without ground truth: one line.)"""
    sr, gt = small_pairs(tmp_path)
    (sr / 'gone.png').symlink_to(tmp_path / 'moved' / 'gone.png')
    (sr / 'loop1.png').symlink_to('loop2.png')
    (sr / 'loop2.png').symlink_to('loop1.png')
    (sr / 'c.png').mkdir()  # a folder called like an image
    args = ['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr']
    assert evaluate.main(args) == 0
    warning = next(line for line in capsys.readouterr().err.splitlines() if line.startswith('aesop: warning: --sr'))
    assert warning.startswith(f'aesop: warning: --sr: {sr} holds 4 entries that are no image file to read: ')
    for entry in (
        'c.png is a folder, not a file',
        f'gone.png is a broken symlink (its target {tmp_path}/moved/gone.png does not exist)',
        'loop1.png is a symlink loop (it leads back to itself through loop2.png)',
        'loop2.png is a symlink loop (it leads back to itself through loop1.png)',
    ):
        assert entry in warning
    assert evaluate.main([*args, '--strict']) == 2
    assert error_line(capsys).startswith(f'--strict: --sr: {sr} holds 4 entries')
    (gt / 'b.png').unlink()
    (gt / 'b.png').symlink_to(tmp_path / 'moved' / 'b.png')
    assert evaluate.main(args) == 2
    assert error_line(capsys) == "no ground truth for 1 SR image(s), e.g. 'b'"


def test_a_file_where_a_folder_is_expected_and_a_folder_where_a_file_is(tmp_path, no_reading, capsys):
    sr, gt = small_pairs(tmp_path)
    assert evaluate.main(['--sr', str(sr / 'a.png'), '--gt', str(gt), '--metrics', 'psnr']) == 2
    assert error_line(capsys) == f'--sr {sr}/a.png: not a folder (a file)'
    args = ['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr,ae_psnr']
    assert evaluate.main([*args, '--ae', str(tmp_path)]) == 2
    assert error_line(capsys) == f'--ae {tmp_path}: a folder, not a checkpoint file'
    assert evaluate.main([*args, '--ae', str(tmp_path / 'ae.pth')]) == 2
    assert error_line(capsys) == f'--ae {tmp_path}/ae.pth: not found'


NONSENSE = {  # arguments → the line (``{sr}``: the SR folder); the images are 48 × 64
    'negative-crop': (['--crop-border', '-5'], '--crop-border -5: the border cropped must be 0 or more'),
    'crop-past-the-middle': (
        ['--crop-border', '100'],
        '--crop-border 100 leaves 0×0 px of {sr}/a.png (48×64) for psnr, which needs 1 px a side: use --crop-border 23 '
        'or less',
    ),
    'default-crop-of-a-large-scale': (
        ['--scale', '24'],
        '--crop-border 24 (the default: --scale) leaves 0×16 px of {sr}/a.png (48×64) for psnr, which needs 1 px a '
        'side: use --crop-border 23 or less',
    ),
    'crop-too-large-for-ssim': (
        ['--metrics', 'psnr,ssim', '--crop-border', '20'],
        '--crop-border 20 leaves 8×24 px of {sr}/a.png (48×64) for ssim, which needs 11 px a side: use --crop-border '
        '18 or less',
    ),
    'images-too-small-for-niqe': (
        ['--metrics', 'niqe', '--crop-border', '0'],
        '--crop-border 0 leaves 48×64 px of {sr}/a.png (48×64) for niqe, which needs 96 px a side: leave niqe out for '
        'images this small',
    ),
    'zero-scale': (['--scale', '0'], '--scale 0: the upscaling factor must be 1 or more'),
    'not-a-number': (['--scale', 'x'], "argument --scale: invalid int value: 'x'"),
    'no-metric': (
        ['--metrics', ','],
        "--metrics ',' names no metric; choose from psnr, ssim, lpips, dists, niqe, lr_psnr, ae_psnr, fid, patch_fid",
    ),
    'a-metric-twice': (['--metrics', 'psnr,ssim,psnr'], "--metrics 'psnr,ssim,psnr' names psnr twice"),
    'an-unknown-metric': (
        ['--metrics', 'psnr,PSNR'],
        "--metrics: unknown metric 'PSNR'; choose from psnr, ssim, lpips, dists, niqe, lr_psnr, ae_psnr, fid, "
        'patch_fid',
    ),
}


@pytest.mark.parametrize('case', NONSENSE)
def test_numbers_that_make_no_sense_are_one_line_before_any_work(case, tmp_path, no_reading, capsys):
    """--crop-border -5 printed ``| mean | nan |`` with exit 0, --crop-border 100 ended in a cv2 assertion, --scale 0
    in ZeroDivisionError, --metrics , in an empty table with exit 0: each is now one line, before any image is read
    (``no_reading``), the crop bounds naming the smallest image."""
    sr, gt = small_pairs(tmp_path)
    given, expected = NONSENSE[case]
    args = ['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr', *given]
    assert evaluate.main(args) == 2
    assert error_line(capsys) == expected.format(sr=sr)


@pytest.mark.parametrize('where', ['sr', 'gt', 'suffix'])
def test_two_images_of_one_stem_are_refused_naming_both(where, tmp_path, no_reading, capsys):
    """``coffee.png`` and ``coffee.jpg`` both in a folder: one was picked without a word; now both are named."""
    sr, gt = small_pairs(tmp_path, stems=('coffee',))
    folder = gt if where == 'gt' else sr
    second = 'coffee_x4.png' if where == 'suffix' else 'coffee.jpg'
    shutil.copy(folder / 'coffee.png', folder / second)
    suffix = ['--sr-suffix', '_x4'] if where == 'suffix' else []
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr', *suffix]) == 2
    removed = " once --sr-suffix '_x4' is removed" if where == 'suffix' else ''
    option = '--gt' if where == 'gt' else '--sr'
    first, then = ('coffee.jpg', 'coffee.png') if where != 'suffix' else ('coffee.png', 'coffee_x4.png')
    assert error_line(capsys) == (
        f"{option}: {first} and {then} in {folder} both pair as 'coffee'{removed}: keep one of them (images are "
        'paired by file stem)'
    )


def test_the_sr_folder_as_the_gt_folder_is_refused(tmp_path, no_reading, capsys):
    """Every image scored against itself (PSNR inf) is a wrong result, not a measurement."""
    _, gt = small_pairs(tmp_path)
    assert evaluate.main(['--sr', str(gt) + '/', '--gt', str(gt), '--metrics', 'psnr']) == 2
    assert error_line(capsys) == f'--sr and --gt are the same folder, {gt}: every image would be scored against itself'


def test_a_metric_that_fails_on_an_image_or_gives_nan_names_the_image(tmp_path, monkeypatch, capsys):
    """8 × 8 images are too small for LPIPS's AlexNet (a RuntimeError traceback before); a NaN would make a NaN mean."""
    sr, gt = small_pairs(tmp_path, size=(8, 8), stems=('a',))
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'lpips']) == 2
    line = error_line(capsys)
    assert line.startswith(f'lpips failed on {sr}/a.png (8×8): ') and 'too small' in line
    monkeypatch.setattr(evaluation, 'score', lambda *_: float('nan'))
    assert evaluate.main(['--sr', str(sr), '--gt', str(gt), '--metrics', 'psnr', '--crop-border', '0']) == 2
    assert error_line(capsys) == f'psnr of {sr}/a.png (8×8) is NaN: is the image too small for it?'


def test_a_failed_table_write_of_a_test_run_keeps_the_tables_before_it(tiny_data, tmp_path, monkeypatch):
    """aesop/test.py rewrites metrics.csv / metrics.md after each test set (validation.py's write_tables): a full disk
    at the second set's leaves the first set's tables whole (they were written in place, truncated, before) and
    stops with one line naming the file."""
    opt = point_at(load_yaml(REPO / 'options' / 'demo' / 'test_bicubic.yml'), tiny_data)
    opt['datasets']['test_2'] = {**opt['datasets']['test_1'], 'name': 'again'}
    opt['val']['metrics'] = {'psnr': opt['val']['metrics']['psnr']}
    results = tmp_path / 'results' / 'demo_test_bicubic'
    replace, written = os.replace, {}

    def disk_full_at_the_second_set(src, dst):
        if Path(dst) in written:  # its second write
            raise OSError(errno.ENOSPC, 'No space left on device')
        replace(src, dst)
        written[Path(dst)] = Path(dst).read_bytes()

    monkeypatch.setattr(os, 'replace', disk_full_at_the_second_set)
    proc = run_entry('test', write_yaml(opt, tmp_path / 'bicubic.yml'), tmp_path, check=False)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f'aesop: error: cannot write {results}/metrics.csv: No space left on device (the previous one is kept)'
    )
    assert sorted(p.relative_to(results).as_posix() for p in written) == [
        'again.csv',  # the second set's own table, then metrics.csv failed
        'bicubic.resolved.yml',  # the options as the run resolved them, written at start-up
        'demo_val.csv',
        'metrics.csv',
        'metrics.md',
        'visualization/again/coffee_demo_test_bicubic.png',  # the images: atomic too
        'visualization/demo_val/coffee_demo_test_bicubic.png',
    ]
    for name in ('metrics.csv', 'metrics.md', 'demo_val.csv'):
        assert (results / name).read_bytes() == written[results / name]  # the first set's, whole
    assert (results / 'metrics.csv').read_text().splitlines()[1].startswith('demo_test_bicubic,demo_val,')
    assert not [p for p in results.rglob('.*.tmp*')]  # no temporary left beside them
