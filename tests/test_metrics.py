"""Metrics against independent references: the lpips and DISTS packages, basicsr's NIQE, hand computations."""

from __future__ import annotations

import os
import sys

import lpips
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_niqe
from basicsr.utils.matlab_functions import imresize
from conftest import REPO, TINY_AE, load_yaml
from skimage import data
from torchvision.models import alexnet

from aesop.errors import AesopError
from aesop.metrics import calculate_ae_psnr, calculate_dists, calculate_lpips, calculate_lr_psnr
from aesop.metrics import metrics as m
from aesop.metrics.iqa import aesop_niqe, calculate_pyiqa
from aesop.metrics.scoring import metric_label, metric_name, score, scores_on
from aesop.options import load_options

RNG = np.random.default_rng(0)


def photo(h=64, w=64) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def rgb01(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img[..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)[None]


def psnr_y(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """PSNR on MATLAB's BT.601 Y of 8-bit BGR images, written out."""
    y = lambda img: 16 + img.astype(np.float64)[..., ::-1] @ np.array([65.481, 128.553, 24.966]) / 255  # noqa: E731
    a, b = y(a), y(b)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return 10 * np.log10(255**2 / np.mean((a - b) ** 2))


def test_lpips_equals_the_lpips_package_with_the_same_backbone():
    a, b = photo(), photo()
    ours = calculate_lpips(a, b, crop_border=2)
    net = m.lpips_net('alex', torch.device('cpu'), True)
    reference = lpips.LPIPS(net='alex', pnet_rand=True, verbose=False).eval()
    reference.load_state_dict(net.state_dict())
    expected = reference(rgb01(a[2:-2, 2:-2]) * 2 - 1, rgb01(b[2:-2, 2:-2]) * 2 - 1).item()
    assert ours == pytest.approx(expected, rel=1e-5)
    assert calculate_lpips(a, a) == pytest.approx(0, abs=1e-6)
    calculate_lpips(a, b)
    assert m.lpips_net.cache_info().currsize == 1  # built once per run and device


def test_lpips_backbone_from_a_local_file_and_a_clear_error_without_one(tmp_path, monkeypatch):
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    with pytest.raises(AesopError, match=r"'alexnet-owt-7be5be79\.pth' not found"):
        m.lpips_net('alex', torch.device('cpu'), False)
    backbone = alexnet(weights=None)
    torch.save(backbone.state_dict(), tmp_path / 'alexnet-owt-7be5be79.pth')
    monkeypatch.setenv('AESOP_PRETRAINED_DIR', str(tmp_path))
    net = m.lpips_net('alex', torch.device('cpu'), False)
    assert torch.equal(getattr(net.net.slice1, '0').weight, backbone.features[0].weight)
    assert torch.equal(getattr(net.net.slice5, '10').weight, backbone.features[10].weight)
    m.lpips_net.cache_clear()


def test_dists_equals_the_dists_package_with_the_same_backbone(monkeypatch):
    from DISTS_pytorch import DISTS_pt
    from torchvision.models import vgg16

    a, b = photo(), photo()
    ours = calculate_dists(a, b)
    net = m.dists_net(torch.device('cpu'), True)
    monkeypatch.setattr(DISTS_pt.models, 'vgg16', lambda pretrained: vgg16(weights=None))
    monkeypatch.setattr(sys, 'prefix', os.path.dirname(DISTS_pt.__file__))  # where it looks for weights.pt
    reference = DISTS_pt.DISTS(load_weights=True).eval()
    assert torch.equal(reference.alpha, net.alpha) and torch.equal(reference.beta, net.beta)  # shipped weights
    reference.load_state_dict(net.state_dict())
    assert ours == pytest.approx(reference(rgb01(a), rgb01(b)).item(), rel=1e-5)
    assert calculate_dists(a, a) == pytest.approx(0, abs=1e-5)


def test_ae_psnr_by_hand(tmp_path):
    ae = build_network(TINY_AE).eval()
    torch.save({'params_ema': ae.state_dict()}, tmp_path / 'ae.pth')
    sr, hr = photo(34, 33), photo(34, 33)  # cropped to 32×32 (multiples of the scale) before ψ
    ours = calculate_ae_psnr(sr, hr, 4, autoencoder=TINY_AE, pretrained=str(tmp_path / 'ae.pth'))
    with torch.no_grad():
        out = [ae(rgb01(x[:32, :32])).clamp(0, 1)[0].permute(1, 2, 0).numpy()[..., ::-1] for x in (sr, hr)]
    quantised = [np.round(o * 255).astype(np.uint8) for o in out]
    assert ours == pytest.approx(psnr_y(*quantised, 4), abs=1e-6)


def test_lr_psnr_by_hand():
    sr, lq = photo(32, 24), photo(8, 6)
    down = np.clip(np.round(imresize(sr.astype(np.float64) / 255, 0.25) * 255), 0, 255).astype(np.uint8)
    assert calculate_lr_psnr(sr, None, lq=lq, scale=4) == pytest.approx(psnr_y(down, lq, 0), abs=1e-6)
    with pytest.raises(AesopError, match='needs the LR image'):
        calculate_lr_psnr(sr, sr)


@pytest.mark.parametrize(
    'entry',
    [*({'type': 'calculate_lpips', 'net': net} for net in ('alex', 'vgg', 'squeeze')), {'type': 'calculate_dists'}],
    ids=lambda entry: entry.get('net', entry['type']),
)
def test_the_backbone_table_names_what_each_metric_builds(entry, monkeypatch):
    """``METRIC_BACKBONES``, which the start-up check and the tables' labels read, names the torchvision builder
    (and purpose) that lpips / DISTS really ask the offline zoo for."""
    from aesop.backbones import OfflineZoo

    built, real = [], OfflineZoo.__getattr__

    def recorded(zoo: OfflineZoo, name: str):
        built.append((name, zoo.purpose))
        return real(zoo, name)

    monkeypatch.setattr(OfflineZoo, '__getattr__', recorded)
    if entry['type'] == 'calculate_lpips':
        m.lpips_net.__wrapped__(entry['net'], torch.device('cpu'), True)
    else:
        m.dists_net.__wrapped__(torch.device('cpu'), True)
    backbone = m.metric_backbone(entry)
    assert built == [(backbone.builder, backbone.purpose)]


def test_columns_of_random_backbones_say_so(monkeypatch):
    """With AESOP_RANDOM_BACKBONES=1 a metric on an ImageNet backbone is labelled with it; others, and every metric
    on real weights, keep their name; a label reads back as its metric."""
    from aesop.metrics.scoring import metric_label, metric_labels, metric_name, random_backbone

    metrics = {
        'psnr': {'type': 'calculate_psnr'},
        'lpips': {'type': 'calculate_lpips'},
        'lpips_vgg': {'type': 'calculate_lpips', 'net': 'vgg'},
        'dists': {'type': 'calculate_dists'},
        'ae_psnr': {'type': 'calculate_ae_psnr'},
        'maniqa': {'type': 'calculate_pyiqa', 'metric': 'maniqa'},  # pyiqa has no random mode
    }
    names = [*metrics, 'lpips_lr', 'psnr_lr', 'fid']  # tagged pairs (the AE model) take their metric's label
    assert metric_labels({**metrics, 'fid': {'type': 'calculate_fid'}}, names) == {
        'psnr': 'psnr',
        'lpips': 'lpips (random AlexNet)',
        'lpips_vgg': 'lpips_vgg (random VGG16)',
        'dists': 'dists (random VGG16)',
        'ae_psnr': 'ae_psnr',
        'maniqa': 'maniqa',
        'lpips_lr': 'lpips_lr (random AlexNet)',
        'psnr_lr': 'psnr_lr',
        'fid': 'fid (random Inception)',
    }
    assert metric_name('lpips (random AlexNet)') == 'lpips' and metric_name('psnr') == 'psnr'
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    assert random_backbone(metrics['lpips']) is None and metric_label('lpips', metrics['lpips']) == 'lpips'


# ---------------------------------------------------------------- NIQE and CLIP-IQA as the release / App. B

NIQE = {'type': 'aesop_niqe', 'crop_border': 0}


def coffee() -> np.ndarray:
    """A real photo (scikit-image's coffee, 192 × 288: 2 × 3 NIQE blocks of 96 px) as 8-bit BGR."""
    return np.ascontiguousarray(data.coffee()[:192, :288, ::-1])


def test_niqe_is_pyiqas_when_pyiqa_imports_and_its_column_says_so(fake_pyiqa):
    img = coffee()
    rgb = img[..., ::-1].astype(np.float32) / 255
    assert score(img, None, None, NIQE) == pytest.approx(float(rgb.mean()), rel=1e-6)  # the stand-in's: the mean
    assert fake_pyiqa.calls == [('niqe', (192, 288))]  # pyiqa.create_metric('niqe'), the release's
    assert metric_label('niqe', NIQE) == 'niqe (pyiqa)' and metric_name('niqe (pyiqa)') == 'niqe'
    basicsr = {**NIQE, 'implementation': 'basicsr'}  # asked for: basicsr's even with pyiqa
    assert score(img, None, None, basicsr) == pytest.approx(calculate_niqe(img, 0), abs=1e-9)
    assert metric_label('niqe', basicsr) == 'niqe (basicsr)'


def test_niqe_without_pyiqa_is_basicsrs_and_its_column_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pyiqa', None)  # import fails as when it is not installed
    img = coffee()
    reference = calculate_niqe(img, crop_border=0)  # basicsr's, called here on the same photo
    assert 3 < reference < 8  # a photo's NIQE, not a degenerate value
    assert score(img, None, None, NIQE) == pytest.approx(reference, abs=1e-9)
    assert aesop_niqe(img, crop_border=8) == pytest.approx(calculate_niqe(img, crop_border=8), abs=1e-9)
    assert metric_label('niqe', NIQE) == 'niqe (basicsr)' and metric_name('niqe (basicsr)') == 'niqe'
    with pytest.raises(AesopError, match=r"NIQE implementation 'pyiqa' needs the optional package pyiqa: .*\[iqa\]"):
        aesop_niqe(img, implementation='pyiqa')
    with pytest.raises(AesopError, match=r'NIQE options go to pyiqa\.create_metric'):
        aesop_niqe(img, implementation='basicsr', options={'pretrained_model_path': 'niqe.mat'})


def _niqe_run(implementation: str) -> dict:
    metrics = {'niqe': {**NIQE, 'implementation': implementation}}
    return {'name': 'run', 'datasets': {}, 'path': {}, 'val': {'metrics': metrics}}


def test_niqe_at_start_up_says_once_which_one_runs(tmp_path, monkeypatch, capsys, fake_pyiqa):
    fallback = "aesop: warning: val.metrics.niqe: pyiqa is not installed, so NIQE is basicsr's calculate_niqe"
    load_options(_niqe_run('auto'), is_train=True, root_path=tmp_path)  # pyiqa importable: the release's, silently
    assert fallback not in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, 'pyiqa', None)
    load_options(_niqe_run('auto'), is_train=True, root_path=tmp_path)
    assert capsys.readouterr().err.count(fallback) == 1
    load_options(_niqe_run('basicsr'), is_train=True, root_path=tmp_path)  # asked for: nothing to say
    assert fallback not in capsys.readouterr().err
    with pytest.raises(
        AesopError,
        match=r"^NIQE implementation 'pyiqa' needs the optional package pyiqa: pip install -e '\.\[iqa\]' "
        r'\(option val\.metrics\.niqe\)$',
    ):
        load_options(_niqe_run('pyiqa'), is_train=True, root_path=tmp_path)
    with pytest.raises(AesopError, match=r'val\.metrics\.niqe\.implementation.*pyiqa'):
        load_options(_niqe_run('pyiq'), is_train=True, root_path=tmp_path)


def test_quadrants_score_each_quarter_and_average_them(fake_pyiqa):
    """2 × 2 at the integer halves of the cropped image (odd sides: the extra row and column in the bottom and right
    quadrants), each scored, the mean of the four; by hand on a 9 × 13 image cropped by 1 (7 × 11)."""
    img = RNG.integers(0, 100, (9, 13, 3), dtype=np.uint8)
    img[4:, 6:] += 150  # a bright bottom-right corner: the mean of the quadrants is not the mean of the image
    rgb = img[1:-1, 1:-1, ::-1].astype(np.float32) / 255
    quarters = [rgb[:3, :5], rgb[:3, 5:], rgb[3:, :5], rgb[3:, 5:]]
    by_hand = np.mean([q.mean() for q in quarters])
    assert calculate_pyiqa(img, metric='clipiqa', crop_border=1, quadrants=True) == pytest.approx(by_hand, rel=1e-6)
    assert fake_pyiqa.calls == [('clipiqa', (3, 5)), ('clipiqa', (3, 6)), ('clipiqa', (4, 5)), ('clipiqa', (4, 6))]
    whole = calculate_pyiqa(img, metric='clipiqa', crop_border=1)
    assert whole == pytest.approx(rgb.mean(), rel=1e-6) and abs(whole - by_hand) > 0.01
    ref = RNG.integers(0, 256, img.shape, dtype=np.uint8)  # a full-reference metric: the same quadrants of both
    diff = np.abs(img.astype(np.float32) - ref)[..., ::-1] / 255
    expected = np.mean([diff[:4, :6].mean(), diff[:4, 6:].mean(), diff[4:, :6].mean(), diff[4:, 6:].mean()])
    assert calculate_pyiqa(img, ref, metric='psnr', quadrants=True) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(AesopError, match='an image of 1 × 5 px has no four quadrants'):
        calculate_pyiqa(img[:1, :5], metric='clipiqa', quadrants=True)


def test_a_metric_entry_restricted_to_datasets():
    """``datasets: [<name>, …]`` in a val.metrics entry: computed on those datasets only; the names are checked."""
    assert scores_on({'type': 'calculate_psnr'}, 'any') and scores_on({'datasets': ['DRealSR']}, 'DRealSR')
    assert not scores_on({'datasets': ['DRealSR']}, 'RealSRv3_Canon')
    opt = load_yaml(REPO / 'options' / 'test_realworld.yml')
    opt['val']['metrics']['clipiqa_quadrants']['datasets'] = ['DRealSRR']
    with pytest.raises(
        AesopError,
        match=r"val\.metrics\.clipiqa_quadrants\.datasets: 'DRealSRR' is not the name of a "
        r"validation or test set: did you mean 'DRealSR'",
    ):
        load_options(opt, is_train=False)
    opt['val']['metrics']['clipiqa_quadrants']['datasets'] = 'DRealSR'
    with pytest.raises(AesopError, match=r'datasets must be a list of dataset names'):
        load_options(opt, is_train=False)
    train = load_yaml(REPO / 'options' / 'train_aesop_realworld.yml')  # validates on DRealSR
    train['datasets']['val_2'] = {**train['datasets']['val'], 'name': 'other'}
    train['val']['metrics']['psnr']['datasets'] = ['other']
    train['val']['save_best'] = {'metric': 'psnr'}
    with pytest.raises(AesopError, match=r"val\.save_best\.metric 'psnr' is computed on other only .*'DRealSR'"):
        load_options(train, is_train=True)
