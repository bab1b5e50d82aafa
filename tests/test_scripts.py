"""The figure scripts (paper Figs. 3, 4, 6) and the data preparation script, run in-process on tiny inputs."""

from __future__ import annotations

import errno
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.matlab_functions import imresize
from conftest import REPO, TINY_AE, write_yaml
from matplotlib.image import imread

from aesop.cli import cli_main
from aesop.figures import autoencode, autoencode_region, log_spectrum, read_image


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` as a module (registered, so the worker pool can pickle its functions)."""
    module_name = f'aesop_scripts_{name}'
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, REPO / 'scripts' / f'{name}.py')
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def run_script(name: str, *args: str | Path) -> int:
    return cli_main(load_script(name).main, [str(a) for a in args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith('aesop: error: ') and '\n' not in err, err
    return err


def png_shape(path: Path) -> tuple[int, ...]:
    assert path.is_file() and path.stat().st_size > 0
    return imread(path).shape


@pytest.fixture(scope='module')
def tiny_ae(tmp_path_factory) -> tuple[Path, Path]:
    """(option file with network_g = TINY_AE, checkpoint with params and params_ema)."""
    folder = tmp_path_factory.mktemp('ae')
    torch.manual_seed(0)
    state = build_network(dict(TINY_AE)).state_dict()
    torch.save({'params': state, 'params_ema': state}, folder / 'ae.pth')
    return write_yaml({'name': 'tiny_ae', 'network_g': TINY_AE}, folder / 'ae.yml'), folder / 'ae.pth'


@pytest.fixture(scope='module')
def triplet(tiny_data, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(SR, HR, LR) files: the held-out 64-px crop, its ×4 LR and a bicubic ×4 'SR' of the LR."""
    hr, lr = tiny_data / 'val' / 'HR' / 'coffee.png', tiny_data / 'val' / 'LR_bicubic' / 'X4' / 'coffee.png'
    sr = tmp_path_factory.mktemp('sr') / 'coffee_sr.png'
    cv2.imwrite(str(sr), cv2.resize(cv2.imread(str(lr)), (64, 64), interpolation=cv2.INTER_CUBIC))
    return sr, hr, lr


def test_loss_maps_figure(tiny_ae, triplet, tmp_path, capsys):
    opt, ckpt = tiny_ae
    sr, hr, lr = triplet
    out = tmp_path / 'maps.png'
    assert (
        run_script('visualize_loss_maps', '--sr', sr, '--hr', hr, '--lr', lr, '--ae', ckpt, '--ae-opt', opt, '-o', out)
        == 0
    )
    # 5 panels of 3 in + 0.8 in, at 100 dpi; square images: 3 in + 0.7 in high
    assert png_shape(out)[:2] == (370, 1580)
    zoom = tmp_path / 'zoom.png'
    args = ('--crop', '10,6,40,30', '--color-scale', 'per-panel', '--ae-key', 'params', '--dpi', '50')
    assert (
        run_script('visualize_loss_maps', '--sr', sr, '--hr', hr, '--ae', ckpt, '--ae-opt', opt, *args, '-o', zoom) == 0
    )
    assert png_shape(zoom)[:2] == (int(50 * (3 * 40 / 30 + 0.7)), int(50 * 12.8))


def test_loss_maps_values(tiny_ae, triplet):
    """The maps are mean_c |SR − HR| and mean_c |ψ(SR) − ψ(HR)|; a zoom's ψ sees the same pixel grid."""
    from aesop.figures import load_autoencoder

    net = load_autoencoder(tiny_ae[0], tiny_ae[1])
    sr, hr = read_image(triplet[0]), read_image(triplet[1])
    maps = load_script('visualize_loss_maps').loss_maps(net, sr, hr)
    np.testing.assert_allclose(maps['pixel'], np.abs(sr - hr).mean(2), atol=1e-7)
    np.testing.assert_allclose(maps['aesop'], np.abs(autoencode(net, sr) - autoencode(net, hr)).mean(2), atol=1e-6)
    box = (10, 6, 40, 30)  # not aligned to the scale: the window around it is
    zoomed = autoencode_region(net, hr, box, margin=64)
    np.testing.assert_allclose(zoomed, autoencode(net, hr)[10:50, 6:36], atol=1e-6)
    assert autoencode_region(net, hr, box, margin=4).shape == (40, 30, 3)


def test_spectrum_figure(tiny_ae, triplet, tmp_path):
    opt, ckpt = tiny_ae
    out = tmp_path / 'spectrum.png'
    assert (
        run_script(
            'spectrum', '--image', triplet[1], '--ae', ckpt, '--ae-opt', opt, '--sigma', '2', '--hann', '-o', out
        )
        == 0
    )
    assert png_shape(out)[:2] == (380, 1040)  # (3.2 + 0.6) in × (3 · 3.2 + 0.8) in at 100 dpi


def test_spectrum_helpers(tiny_ae, triplet):
    """A constant image has one peak at the centre; the low-pass removes high-frequency energy."""
    spec = log_spectrum(np.full((8, 10), 2.0))
    assert np.unravel_index(spec.argmax(), spec.shape) == (4, 5)
    assert spec[4, 5] == pytest.approx(np.log1p(2.0 * 80))
    spec[4, 5] = 0
    np.testing.assert_allclose(spec, 0, atol=1e-12)
    windowed = log_spectrum(np.full((8, 10), 2.0), hann=True)
    assert np.unravel_index(windowed.argmax(), windowed.shape) == (4, 5)

    from aesop.figures import load_autoencoder

    spectra = load_script('spectrum').spectra(load_autoencoder(*tiny_ae), read_image(triplet[1]), sigma=1.5)
    assert {k: v.shape for k, v in spectra.items()} == dict.fromkeys(('image', 'psi', 'lowpass'), (64, 64))
    far = np.hypot(*np.meshgrid(np.arange(64) - 32, np.arange(64) - 32, indexing='ij')) > 16
    assert spectra['lowpass'][far].mean() < 0.5 * spectra['image'][far].mean()


def write_csv(path: Path, rows: dict[str, tuple[float, float]], *, mean: bool = True) -> Path:
    lines = ['image,psnr,lpips'] + [f'{name},{p},{q}' for name, (p, q) in rows.items()]
    if mean:
        lines.append(f'mean,{np.mean([r[0] for r in rows.values()])},{np.mean([r[1] for r in rows.values()])}')
    path.write_text('\n'.join(lines) + '\n')
    return path


def test_pd_curve(tmp_path, capsys):
    a = write_csv(tmp_path / 'a.csv', {'coffee': (27.0, 0.20), 'rocket': (26.0, 0.22)})
    b = write_csv(tmp_path / 'b.csv', {'coffee': (26.0, 0.15), 'rocket': (25.5, 0.17)})
    out = tmp_path / 'pd.png'
    assert run_script('plot_pd_curve', '--csv', f'LDL={a}', f'AESOP@100k={b}', '-o', out) == 0
    assert png_shape(out)[:2] == (675, 900)
    curve = tmp_path / 'curve.png'
    args = ('--csv', f'ESRGAN={a}', '--method', 'AESOP', '--csv', f'50k={a}', f'100k={b}', '--dpi', '100')
    assert run_script('plot_pd_curve', *args, '-o', curve) == 0
    assert png_shape(curve)[:2] == (450, 600)
    plot = load_script('plot_pd_curve')
    assert plot.read_means(b, metrics=('psnr', 'lpips')) == pytest.approx({'psnr': 25.75, 'lpips': 0.16})
    assert plot.point_labels([(None, tmp_path / 'x' / 'metrics.csv'), (None, tmp_path / 'y' / 'metrics.csv')]) == [
        'x',
        'y',
    ]


def test_pd_curve_errors(tmp_path, capsys):
    a = write_csv(tmp_path / 'a.csv', {'coffee': (27.0, 0.20)})
    assert run_script('plot_pd_curve', '--csv', a, '--y', 'dists', '-o', tmp_path / 'x.png') == 2
    assert "no column 'dists'" in one_error_line(capsys)
    no_mean = write_csv(tmp_path / 'no_mean.csv', {'coffee': (27.0, 0.20)}, mean=False)
    assert run_script('plot_pd_curve', '--csv', f'X={no_mean}', '-o', tmp_path / 'x.png') == 2
    assert 'no mean row' in one_error_line(capsys)
    assert run_script('plot_pd_curve', '--method', 'AESOP', '-o', tmp_path / 'x.png') == 2
    assert 'no --csv' in one_error_line(capsys)
    assert not (tmp_path / 'x.png').exists()


def test_figure_input_errors(tiny_ae, triplet, tmp_path, capsys):
    opt, ckpt = tiny_ae
    sr, hr, lr = triplet
    missing = tmp_path / 'missing.png'
    assert run_script('visualize_loss_maps', '--sr', sr, '--hr', missing, '--ae', ckpt, '--ae-opt', opt) == 2
    assert 'image not found' in one_error_line(capsys)
    assert run_script('visualize_loss_maps', '--sr', sr, '--hr', lr, '--ae', ckpt, '--ae-opt', opt) == 2
    assert 'differ in size' in one_error_line(capsys)
    assert run_script('spectrum', '--image', hr, '--ae', tmp_path / 'none.pth', '--ae-opt', opt) == 2
    assert 'checkpoint not found' in one_error_line(capsys)
    assert run_script('spectrum', '--image', hr, '--ae', ckpt, '--ae-opt', opt, '--crop', '0,0,80,8') == 2
    assert 'outside' in one_error_line(capsys)


def expected_count(size: int, crop: int, step: int, thresh: int) -> int:
    """Crops along one dimension: every ``step`` while a crop fits, plus one flush with the border."""
    n = (size - crop) // step + 1
    return n + (size - ((n - 1) * step + crop) > thresh)


def test_prepare_dataset(tmp_path, capsys):
    import skimage.data

    photo = skimage.data.chelsea()  # 300 × 451 RGB
    src, out = tmp_path / 'hr', tmp_path / 'out'
    src.mkdir()
    cv2.imwrite(str(src / 'chelsea.png'), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    (src / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'not an image' * 10)
    (src / 'notes.txt').write_text('not an image file: ignored')
    scales = (2, 3, 4, 8)
    args = ['-i', src, '-o', out, '--crop-size', 100, '--step', 64, '--thresh-size', 8, '--scales', *scales]

    assert run_script('prepare_dataset', *args, '--workers', 2) == 1
    assert 'corrupt.png: unreadable' in capsys.readouterr().err
    rows, cols = expected_count(300, 100, 64, 8), expected_count(451, 100, 64, 8)
    assert (rows, cols) == (4, 7)  # 300: the 8 px left after the 4th crop are not > thresh; 451: 31 px are
    names = sorted(p.name for p in (out / 'HR_sub').iterdir())
    assert names == [f'chelsea_s{i:03d}.png' for i in range(1, rows * cols + 1)]
    for scale in scales:
        assert sorted(p.name for p in (out / 'LR_bicubic' / f'X{scale}').iterdir()) == names
    assert (out / 'meta_info_HR_sub.txt').read_text().splitlines() == names  # RealESRGANDataset's meta_info

    last = cv2.cvtColor(cv2.imread(str(out / 'HR_sub' / names[-1])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(last, photo[192:288, 351:447])  # flush right; 100 → 96 (lcm of the scales)
    for name in (names[0], names[-1]):
        hr = cv2.imread(str(out / 'HR_sub' / name))
        for scale in scales:
            lr = cv2.imread(str(out / 'LR_bicubic' / f'X{scale}' / name))
            assert lr.shape == (96 // scale, 96 // scale, 3)
            reference = np.clip(np.round(imresize(hr.astype(np.float64) / 255.0, 1 / scale) * 255.0), 0, 255)
            np.testing.assert_array_equal(lr, reference.astype(np.uint8))

    assert run_script('prepare_dataset', *args) == 2
    assert 'output exists' in one_error_line(capsys)
    (src / 'corrupt.png').unlink()
    assert run_script('prepare_dataset', *args, '--scales', 4, '--lmdb', '--overwrite') == 0
    meta = (out / 'LR_bicubic' / 'X4.lmdb' / 'meta_info.txt').read_text().splitlines()
    assert len(meta) == rows * cols and meta[0] == 'chelsea_s001.png (25,25,3) 1'  # scale 4 only: 100 px crops
    assert (out / 'HR_sub.lmdb' / 'data.mdb').is_file()


def test_prepare_dataset_errors(tmp_path, capsys):
    assert run_script('prepare_dataset', '-i', tmp_path / 'nowhere', '-o', tmp_path / 'out') == 2
    assert 'input folder not found' in one_error_line(capsys)
    (tmp_path / 'empty').mkdir()
    assert run_script('prepare_dataset', '-i', tmp_path / 'empty', '-o', tmp_path / 'out') == 2
    assert 'no images' in one_error_line(capsys)


def test_pd_curve_reads_and_labels_columns_of_random_backbones(tmp_path, capsys):
    """An evaluator CSV of random backbones (``lpips (random AlexNet)``) plots as lpips; its axis says so."""
    plot = load_script('plot_pd_curve')
    marked = tmp_path / 'marked.csv'
    marked.write_text('image,psnr,lpips (random AlexNet)\ncoffee,27.0,0.2\nmean,27.0,0.2\n')
    plain = write_csv(tmp_path / 'plain.csv', {'coffee': (26.0, 0.15)})
    assert plot.read_means(marked, metrics=('psnr', 'lpips')) == {'psnr': 27.0, 'lpips': 0.2}
    assert plot.random_headers([marked, plain], 'lpips') == ['lpips (random AlexNet)']
    assert plot.random_headers([marked, plain], 'psnr') == []
    assert plot.axis_label('lpips', 'lpips (random AlexNet)') == 'LPIPS (random AlexNet)  (↓ lower is better)'
    assert plot.axis_label('psnr') == 'PSNR (dB)  (↑ higher is better)'
    assert run_script('plot_pd_curve', '--csv', f'AESOP={marked}', f'PSNR={plain}', '-o', tmp_path / 'pd.png') == 0
    assert run_script('plot_pd_curve', '--csv', marked, '--y', 'dists', '-o', tmp_path / 'x.png') == 2
    assert "no column 'dists' (its metrics: psnr, lpips)" in one_error_line(capsys)


def test_prepare_dataset_mod_keeps_test_images_whole(tmp_path, capsys):
    """--mod 12: each HR image whole, cropped at the bottom/right to a multiple of 12 (GTmod12/, same name as PNG),
    and its MATLAB-bicubic ×4 LR (LRbicx4/): BasicSR's test-set layout; --mod must be a multiple of every scale."""
    import skimage.data

    photo = skimage.data.chelsea()[:101, :130]  # 101 × 130: GTmod12 96 × 120, LRbicx4 24 × 30
    src, out = tmp_path / 'HR', tmp_path / 'Set'
    src.mkdir()
    cv2.imwrite(str(src / 'chelsea.bmp'), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(src / 'tiny.png'), np.zeros((8, 40, 3), np.uint8))
    assert run_script('prepare_dataset', '-i', src, '-o', out, '--mod', 12, '--scales', 4) == 1
    assert 'tiny.png: smaller (8×40) than the scale multiple 12' in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob('*')) == [
        'GTmod12',
        'GTmod12/chelsea.png',
        'LRbicx4',
        'LRbicx4/chelsea.png',
    ]
    hr = cv2.imread(str(out / 'GTmod12' / 'chelsea.png'))
    np.testing.assert_array_equal(hr, cv2.cvtColor(photo[:96, :120], cv2.COLOR_RGB2BGR))
    reference = np.clip(np.round(imresize(hr.astype(np.float64) / 255.0, 1 / 4) * 255.0), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(cv2.imread(str(out / 'LRbicx4' / 'chelsea.png')), reference)

    assert run_script('prepare_dataset', '-i', src, '-o', tmp_path / 'x', '--mod', 12) == 2  # default scales 2 3 4 8
    assert '--mod 12 is not a positive multiple of scale 8' in one_error_line(capsys)
    assert run_script('prepare_dataset', '-i', src, '-o', tmp_path / 'x', '--mod', 12, '--crop-size', 96) == 2
    assert '--mod keeps images whole' in one_error_line(capsys)


def test_prepare_dataset_realsr_lays_out_side_by_side_pairs(tmp_path, capsys):
    """--realsr: RealSR's <name>_HR.png beside <name>_LR4.png become HR/<name>.png and LR/<name>.png (the names
    datasets/RealSR/Canon/Test/4/{HR,LR} of the option files), byte for byte; other files are left alone."""
    src = tmp_path / 'Canon' / 'Test' / '4'
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ('Canon_001', 'Canon_002'):
        cv2.imwrite(str(src / f'{name}_HR.png'), rng.integers(0, 256, (16, 20, 3), np.uint8))
        cv2.imwrite(str(src / f'{name}_LR4.png'), rng.integers(0, 256, (16, 20, 3), np.uint8))  # RealSR: HR size
    (src / 'Thumbs.db').write_bytes(b'stray')
    cv2.imwrite(str(src / 'Canon_003_LR2.png'), np.zeros((8, 8, 3), np.uint8))  # another scale's: ignored

    assert run_script('prepare_dataset', '-i', src, '-o', src, '--realsr') == 0  # in place, as the docs run it
    assert 'copied 2 RealSR ×4 pairs' in capsys.readouterr().out
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob('*') if p.parent != src) == [
        'HR/Canon_001.png',
        'HR/Canon_002.png',
        'LR/Canon_001.png',
        'LR/Canon_002.png',
    ]
    for name in ('Canon_001', 'Canon_002'):
        assert (src / 'HR' / f'{name}.png').read_bytes() == (src / f'{name}_HR.png').read_bytes()
        assert (src / 'LR' / f'{name}.png').read_bytes() == (src / f'{name}_LR4.png').read_bytes()

    assert run_script('prepare_dataset', '-i', src, '-o', src, '--realsr') == 2
    assert 'output exists' in one_error_line(capsys)
    assert run_script('prepare_dataset', '-i', src, '-o', tmp_path / 'out', '--realsr', '--scales', 2) == 2
    line = one_error_line(capsys)
    assert 'Canon_001_HR.png (and 1 more) in' in line and 'has no _LR2 file beside it (it has _LR4 files' in line
    (src / 'Canon_002_LR4.png').unlink()
    assert run_script('prepare_dataset', '-i', src, '-o', tmp_path / 'out', '--realsr') == 2
    assert 'Canon_002_HR.png in' in (line := one_error_line(capsys)) and 'has no _LR4 file beside it' in line
    assert '(it has _LR2 files: --scales 2)' in line
    assert not (tmp_path / 'out').exists()
    assert run_script('prepare_dataset', '-i', tmp_path, '-o', tmp_path / 'out', '--realsr') == 2
    assert 'no RealSR pairs in' in one_error_line(capsys)
    (tmp_path / 'lr_only').mkdir()
    (tmp_path / 'lr_only' / 'Nikon_050_LR4.png').write_bytes((src / 'Canon_001_LR4.png').read_bytes())
    assert run_script('prepare_dataset', '-i', tmp_path / 'lr_only', '-o', tmp_path / 'out', '--realsr') == 2
    assert 'Nikon_050_LR4.png in' in (line := one_error_line(capsys)) and 'has no _HR file beside it' in line
    assert run_script('prepare_dataset', '-i', src, '-o', tmp_path / 'out', '--realsr', '--mod', 12) == 2
    assert '--realsr copies the pairs unchanged: --mod do not apply' in one_error_line(capsys)


def small_hr_folder(tmp_path: Path) -> Path:
    src = tmp_path / 'hr'
    src.mkdir()
    cv2.imwrite(str(src / 'a.png'), np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8))
    return src


@pytest.mark.parametrize('case', ['out-a-file', 'out-under-a-file', 'a-file-in-the-way', 'realsr-out-a-file'])
def test_prepare_dataset_outputs_in_the_way_are_one_line(case, tmp_path, capsys):
    """-o a file, -o under a file, a file where one of its folders goes: one line naming it (tracebacks before)."""
    src = small_hr_folder(tmp_path)
    (tmp_path / 'f.txt').write_text('kept')
    args = ['-i', src, '--scales', 4, '--crop-size', 32, '--step', 32]
    if case == 'realsr-out-a-file':
        cv2.imwrite(str(src / 'a_HR.png'), np.zeros((8, 8, 3), np.uint8))
        cv2.imwrite(str(src / 'a_LR4.png'), np.zeros((8, 8, 3), np.uint8))
        args = ['-i', src, '--realsr']
    if case == 'a-file-in-the-way':
        (tmp_path / 'out').mkdir()
        (tmp_path / 'out' / 'LR_bicubic').write_text('kept')
    out, expected = {
        'out-a-file': (tmp_path / 'f.txt', f'-o {tmp_path}/f.txt is a file: give a folder'),
        'realsr-out-a-file': (tmp_path / 'f.txt', f'-o {tmp_path}/f.txt is a file: give a folder'),
        'out-under-a-file': (
            tmp_path / 'f.txt' / 'set',
            f'-o {tmp_path}/f.txt/set: {tmp_path}/f.txt is a file, not a folder',
        ),
        'a-file-in-the-way': (
            tmp_path / 'out',
            f'-o {tmp_path}/out/LR_bicubic/X4: {tmp_path}/out/LR_bicubic is a file, not a folder',
        ),
    }[case]
    assert run_script('prepare_dataset', *args, '-o', out) == 2
    assert one_error_line(capsys) == f'aesop: error: {expected}'
    assert (tmp_path / 'f.txt').read_text() == 'kept'
    assert not (tmp_path / 'out' / 'HR_sub').exists()  # refused before anything was written


@pytest.mark.timeout(60)
def test_prepare_dataset_skips_and_lists_a_named_pipe_and_a_broken_link(tmp_path, capsys):
    src = small_hr_folder(tmp_path)
    os.mkfifo(src / 'rocket.png')
    (src / 'gone.png').symlink_to(tmp_path / 'moved.png')
    assert run_script('prepare_dataset', '-i', src, '-o', tmp_path / 'out', '--scales', 4, '--crop-size', 32) == 1
    err = capsys.readouterr().err
    assert f'  {src}/gone.png: a broken symlink (its target {tmp_path}/moved.png does not exist)' in err
    assert f'  {src}/rocket.png: a named pipe, not a file' in err
    names = [f'a_s00{i}.png' for i in (1, 2, 3, 4)]  # 40 px: crops at 0 and 8, both ways
    assert (tmp_path / 'out' / 'meta_info_HR_sub.txt').read_text().splitlines() == names


def test_prepare_dataset_a_full_disk_is_one_line_and_leaves_no_truncated_image(tmp_path, monkeypatch, capsys):
    """Its images and meta_info file are written atomically: a failed write names the file and leaves nothing half
    written (cv2.imwrite returned False without a word)."""
    src = small_hr_folder(tmp_path)
    replace = os.replace

    def disk_full_at_the_lr_image(src_path, dst):
        if 'X4' in str(dst):
            raise OSError(errno.ENOSPC, 'No space left on device')
        replace(src_path, dst)

    monkeypatch.setattr(os, 'replace', disk_full_at_the_lr_image)
    out = tmp_path / 'out'
    assert run_script('prepare_dataset', '-i', src, '-o', out, '--scales', 4, '--crop-size', 32) == 2
    err = capsys.readouterr().err  # after the progress bar
    assert 'Traceback' not in err and err.strip().splitlines()[-1] == (
        f'aesop: error: cannot write {out}/LR_bicubic/X4/a_s001.png: No space left on device'
    )
    assert list((out / 'LR_bicubic' / 'X4').iterdir()) == []
    assert cv2.imread(str(out / 'HR_sub' / 'a_s001.png')).shape == (32, 32, 3)  # whole, as written before


def test_prepare_dataset_bad_numbers_are_one_line(tmp_path, capsys):
    assert run_script('prepare_dataset', '-i', tmp_path, '-o', tmp_path / 'out', '--scales', 'x') == 2
    assert one_error_line(capsys) == "aesop: error: argument --scales: invalid int value: 'x'"


def test_a_figure_is_written_atomically_and_a_full_disk_keeps_the_earlier_one(tmp_path, monkeypatch):
    """The figure scripts (spectrum, loss maps, PD curve, docs figures) save through figures.save_figure."""
    from aesop.errors import AesopError
    from aesop.figures import new_figure, save_figure

    fig = new_figure(width=1, height=1)
    path = save_figure(fig, tmp_path / 'sub' / 'fig.png', dpi=50)
    before = path.read_bytes()
    assert before.startswith(b'\x89PNG') and len(before) > 100

    def disk_full(*_):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'replace', disk_full)
    fig.gca().plot([0, 1], [1, 0])
    kept = r'^cannot write .*fig\.png: No space left on device \(the previous one is kept\)'
    with pytest.raises(AesopError, match=kept):
        save_figure(fig, path, dpi=50)
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ['fig.png']
