"""Real-world AESOP (App. B): frozen-decoder AE, GAN on Real-ESRGAN degradations, LR-only evaluation."""

from __future__ import annotations

import csv
import re
import sys
from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_niqe
from conftest import REPO, TINY_AE, TINY_RRDB, build_model, load_yaml, run_entry, write_yaml

from aesop.errors import AesopError
from aesop.models.validation import needs_reference
from aesop.options import load_options
from aesop.weights import read_checkpoint

OPTIONS = REPO / 'options'


def tiny_realworld(opt: dict, name: str, data: Path, iters: int, real_lr: Path) -> dict:
    """A real-world option file on the tiny dataset: tiny nets, 64-px GT patches, a 2-pair pool,
    validation on LR-only images with NIQE and PSNR (which has no GT there: skipped)."""
    opt['name'] = name
    train = opt['datasets']['train']
    train.update(dataroot_gt=str(data / 'train' / 'HR'), meta_info=str(data / 'meta_info.txt'))
    train.update(batch_size_per_gpu=1, num_worker_per_gpu=0)
    opt['datasets']['val']['dataroot_lq'] = str(real_lr)
    opt['val']['val_freq'] = iters
    opt['val']['metrics']['psnr'] = {'type': 'calculate_psnr', 'crop_border': 4}
    opt.update(gt_size=64, queue_size=2)
    opt['network_g'] = deepcopy(TINY_RRDB)
    opt['network_d']['num_feat'] = 4
    opt['path']['pretrain_network_g'] = None
    opt['train']['total_iter'] = iters
    opt['train']['perceptual_opt']['layer_weights'] = {'conv2_2': 0.1}
    opt['logger'].update(print_freq=1, save_checkpoint_freq=iters, use_tb_logger=False)
    if 'aesop_opt' in opt['train']:
        opt['train']['aesop_opt']['autoencoder'] = deepcopy(TINY_AE)
        opt['train']['aesop_opt']['pretrained'] = 'experiments/rw_ae/models/net_g_latest.pth'
    return opt


def real_lr_folder(folder: Path) -> Path:
    """LR-only images: 64×48 → SR 256×192, enough 96-px blocks for NIQE."""
    import skimage.data

    folder.mkdir()
    for photo in ('rocket', 'coffee'):
        img = cv2.resize(getattr(skimage.data, photo)()[..., ::-1], (64, 48), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f'{photo}.png'), img)
    return folder


@pytest.fixture(scope='module')
def realworld(tiny_data, tmp_path_factory):
    """AE with a frozen 'RealESRNet' decoder (3 it) → real-world AESOP GAN (2 it) → LR-only test."""
    root = tmp_path_factory.mktemp('rw_root')
    names = sorted(p.name for p in (tiny_data / 'train' / 'HR').iterdir())
    (tiny_data / 'meta_info.txt').write_text(''.join(f'{n}\n' for n in names))
    torch.manual_seed(1)
    decoder = build_network(deepcopy(TINY_RRDB)).state_dict()
    torch.save({'params_ema': decoder}, root / 'realesrnet.pth')

    ae = load_yaml(OPTIONS / 'train_ae_realworld.yml')
    ae['name'] = 'rw_ae'
    for phase in ('train', 'val'):
        split = 'train' if phase == 'train' else 'val'
        ae['datasets'][phase].update(
            dataroot_gt=str(tiny_data / split / 'HR'), dataroot_lq=str(tiny_data / split / 'LR_bicubic' / 'X4')
        )
    ae['datasets']['train'].update(batch_size_per_gpu=1, num_worker_per_gpu=0, gt_size=64)
    ae['network_g'] = deepcopy(TINY_AE)
    ae['path']['pretrain_network_decoder'] = str(root / 'realesrnet.pth')
    ae['train']['total_iter'] = 3
    ae['val']['val_freq'] = 3
    ae['logger'].update(print_freq=1, save_checkpoint_freq=3, use_tb_logger=False)
    assert ae['train']['freeze_decoder'] > ae['train']['total_iter'] == 3
    run_entry('train', write_yaml(ae, root / 'ae.yml'), root)

    lr = real_lr_folder(root / 'real_lr')
    gan = tiny_realworld(load_yaml(OPTIONS / 'train_aesop_realworld_paper.yml'), 'rw_aesop', tiny_data, 2, lr)
    run_entry('train', write_yaml(gan, root / 'gan.yml'), root)
    test = load_yaml(OPTIONS / 'test_realworld.yml')
    test['name'] = 'rw_test'
    test['datasets'] = {'test_1': {**test['datasets']['test_1'], 'name': 'real', 'dataroot_lq': str(lr)}}
    test['network_g'] = deepcopy(TINY_RRDB)
    test['path']['pretrain_network_g'] = str(root / 'experiments' / 'rw_aesop' / 'models' / 'net_g_latest.pth')
    test['val']['metrics'] = {'niqe': test['val']['metrics']['niqe']}  # pyiqa's need weights from the internet
    with pytest.MonkeyPatch.context() as patch:  # NIQE's auto without pyiqa (installed or not): basicsr's
        patch.setitem(sys.modules, 'pyiqa', None)
        run_entry('test', write_yaml(test, root / 'test.yml'), root)
    return root, decoder, lr


def test_ae_decoder_stays_frozen_for_the_whole_run(realworld):
    root, decoder, _ = realworld
    saved = read_checkpoint(root / 'experiments' / 'rw_ae' / 'models' / 'net_g_latest.pth')
    for name, value in decoder.items():
        assert torch.equal(saved['params'][f'decoder.{name}'], value), name
        torch.testing.assert_close(saved['params_ema'][f'decoder.{name}'], value)  # EMA of a constant
    # the encoder did learn: after 3 steps its weights have moved away from their EMA
    moved = [(saved['params'][k] - saved['params_ema'][k]).abs().max() for k in saved['params'] if 'encoder' in k]
    assert moved and max(moved) > 1e-5


def test_realworld_gan_trains_with_aesop_ldl_and_the_standard_gan(realworld):
    root = realworld[0]
    exp = root / 'experiments' / 'rw_aesop'
    assert (exp / 'models' / 'net_g_2.pth').is_file() and (exp / 'models' / 'net_d_2.pth').is_file()
    log = next(exp.glob('train_*.log')).read_text()
    assert 'End of training' in log
    assert 'l_g_aesop' in log and 'l_g_artifacts' in log and 'l_g_gan' in log and 'l_g_pix' not in log
    d = read_checkpoint(exp / 'models' / 'net_d_2.pth')['params']
    assert any(k.endswith('weight_orig') for k in d)  # spectral norm: the U-Net discriminator
    # validation on LR-only images after a training batch: NIQE logged, PSNR skipped (no GT)
    assert re.search(r'# niqe: [\d.]+', log) and '# psnr' not in log
    assert (exp / 'visualization' / 'rocket' / 'rocket_2.png').is_file()


def test_lr_only_test_set_gets_no_reference_scores(realworld):
    root = realworld[0]
    results = root / 'results' / 'rw_test'
    with open(results / 'real.csv') as f:
        rows = list(csv.DictReader(f))
    # without pyiqa, test_realworld.yml's NIQE (implementation: auto) is basicsr's, and its column says so
    assert [r['image'] for r in rows] == ['coffee', 'rocket', 'mean'] and set(rows[0]) == {'image', 'niqe (basicsr)'}
    for row in rows[:2]:  # independent reference: basicsr's NIQE on the saved SR image
        sr = cv2.imread(str(results / 'visualization' / 'real' / f'{row["image"]}_rw_test.png'))
        assert sr.shape == (192, 256, 3)
        assert float(row['niqe (basicsr)']) == pytest.approx(calculate_niqe(sr, crop_border=0), abs=1e-5)
    assert '| niqe (basicsr) |' in (results / 'metrics.md').read_text()
    assert re.search(r'# niqe \(basicsr\): [\d.]+', next((root / 'results' / 'rw_test').glob('test_*.log')).read_text())


def test_the_realworld_test_file_scores_niqe_and_clipiqa_as_app_b_says(tiny_data, tmp_path, fake_pyiqa):
    """test_realworld.yml's metrics through aesop/test.py, pyiqa a stand-in scoring the mean of the image: NIQE is
    pyiqa's (the release's) and labelled so; CLIP-IQA on whole images for the RealSR sets and on the four
    quadrants for DRealSR alone, each in its own column; every dataset's folder is the layout prepare_dataset writes."""
    opt = load_yaml(OPTIONS / 'test_realworld.yml')
    assert [d['dataroot_lq'] for d in opt['datasets'].values()] == [
        'datasets/RealSR/Canon/Test/4/LR', 'datasets/RealSR/Nikon/Test/4/LR', 'datasets/DRealSR/x4/LR'
    ]  # fmt: skip
    opt['name'] = 'rw_metrics'
    for dataset in opt['datasets'].values():
        dataset['dataroot_lq'] = str(tiny_data / 'val' / 'LR_bicubic' / 'X4')  # coffee, 16 × 16
    opt['network_g'] = {'type': 'AesopBicubic', 'scale': 4}  # no weights
    opt['path'] = {'pretrain_network_g': None}
    run_entry('test', write_yaml(opt, tmp_path / 'test.yml'), tmp_path)
    results = tmp_path / 'results' / 'rw_metrics'
    whole = [(name, (64, 64)) for name in ('niqe', 'maniqa', 'musiq', 'clipiqa')]
    quarters = [(name, (64, 64)) for name in ('niqe', 'maniqa', 'musiq')] + [('clipiqa', (32, 32))] * 4
    assert fake_pyiqa.calls == whole + whole + quarters
    with open(results / 'metrics.csv') as f:
        table = list(csv.reader(f))
    assert table[0] == ['method', 'dataset', 'niqe (pyiqa)', 'maniqa', 'musiq', 'clipiqa', 'clipiqa_quadrants']
    assert [row[1] for row in table[1:]] == ['RealSRv3_Canon', 'RealSRv3_Nikon', 'DRealSR']
    for row in table[1:]:
        sr = cv2.imread(str(results / 'visualization' / row[1] / 'coffee_rw_metrics.png'))
        rgb = sr[..., ::-1].astype(np.float32) / 255
        quadrants = np.mean([rgb[:32, :32].mean(), rgb[:32, 32:].mean(), rgb[32:, :32].mean(), rgb[32:, 32:].mean()])
        expected = [rgb.mean()] * 3 + ([rgb.mean(), None] if row[1] != 'DRealSR' else [None, quadrants])
        for cell, value in zip(row[2:], expected):
            if value is None:  # not computed on this dataset: blank
                assert cell == '', row
            else:
                assert float(cell) == pytest.approx(value, abs=1e-4), row


def test_ldl_realworld_option_file_trains(tiny_data, realworld, tmp_path):
    ldl = tiny_realworld(load_yaml(OPTIONS / 'train_ldl_realworld.yml'), 'rw_ldl', tiny_data, 1, realworld[2])
    run_entry('train', write_yaml(ldl, tmp_path / 'ldl.yml'), tmp_path)
    log = next((tmp_path / 'experiments' / 'rw_ldl').glob('train_*.log')).read_text()
    assert 'l_g_pix' in log and 'l_g_artifacts' in log and 'l_g_aesop' not in log


def _model(tmp_path: Path, train_relativistic: bool | None = None, train_aesop_opt=None, **top) -> object:
    opt = load_yaml(OPTIONS / 'train_ldl_realworld.yml')
    opt.update(gt_size=32, queue_size=0, **top)
    if train_aesop_opt is not None:
        opt['train']['aesop_opt'] = train_aesop_opt
    if train_relativistic is not None:
        opt['train']['relativistic_gan'] = train_relativistic
    opt.pop('datasets')
    opt['network_g'] = deepcopy(TINY_RRDB)
    opt['network_d']['num_feat'] = 4
    opt['train']['perceptual_opt']['layer_weights'] = {'conv2_2': 0.1}
    opt['path'] = {'models': str(tmp_path), 'training_states': str(tmp_path), 'experiments_root': str(tmp_path)}
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1, auto_resume=False)
    return build_model(opt)


def _batch(size: int = 128) -> dict:
    pulse = torch.zeros(1, 21, 21)
    pulse[0, 10, 10] = 1
    gt = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    return {'gt': gt, 'kernel1': pulse, 'kernel2': pulse, 'sinc_kernel': pulse}


@pytest.mark.parametrize('l1_gt_usm', [True, False])
def test_usm_switches_choose_the_targets(tmp_path, l1_gt_usm):
    model = _model(tmp_path, l1_gt_usm=l1_gt_usm)
    model.feed_data(_batch())
    assert model.lq.shape == (1, 3, 8, 8) and model.gt.shape == model.gt_usm.shape == (1, 3, 32, 32)
    assert not torch.equal(model.gt, model.gt_usm)
    assert model.target('fidelity') is (model.gt_usm if l1_gt_usm else model.gt)
    assert model.target('perceptual') is model.gt_usm and model.target('gan') is model.gt  # file defaults
    with torch.no_grad():  # the losses really compare with those targets
        model.output = model.net_g(model.lq)
        _, losses = model.generator_losses()
        fidelity = model.gt_usm if l1_gt_usm else model.gt
        torch.testing.assert_close(losses['l_g_pix'], 0.01 * (model.output - fidelity).abs().mean())
        torch.testing.assert_close(losses['l_g_percep'], model.cri_perceptual(model.output, model.gt_usm)[0])
    model.feed_data({'lq': torch.rand(1, 3, 8, 8), 'gt': torch.rand(1, 3, 32, 32)})  # validation pairs: as given
    assert model.lq.shape == (1, 3, 8, 8)


@pytest.mark.parametrize('aesop_gt_usm', [None, True])
def test_aesop_target_is_the_plain_gt_unless_aesop_gt_usm(tmp_path, aesop_gt_usm):
    """The release compares ψ(SR) with ψ(GT) even with l1_gt_usm: true (USM only for L1's target)."""
    ae = build_network(deepcopy(TINY_AE))
    torch.save({'params_ema': ae.state_dict()}, tmp_path / 'ae.pth')
    aesop = {'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(tmp_path / 'ae.pth')}
    top = {} if aesop_gt_usm is None else {'aesop_gt_usm': aesop_gt_usm}
    model = _model(tmp_path, l1_gt_usm=True, train_aesop_opt=aesop, **top)
    model.feed_data(_batch())
    with torch.no_grad():
        model.output = model.net_g(model.lq)
        _, losses = model.generator_losses()
        target = model.gt_usm if aesop_gt_usm else model.gt
        torch.testing.assert_close(losses['l_g_aesop'], (ae.eval()(model.output) - ae(target)).abs().mean())
        torch.testing.assert_close(losses['l_g_pix'], 0.01 * (model.output - model.gt_usm).abs().mean())


def test_standard_gan_losses(tmp_path):
    """Real-ESRGAN's GAN: G's term is BCE(D(SR), 1) · 0.1; D's are BCE(D(HR), 1) and BCE(D(SR), 0)."""
    model = _model(tmp_path)
    assert not model.relativistic
    model.feed_data(_batch())
    model.optimize_parameters(1)
    model.net_d.eval()  # spectral norm: no power iteration, so D gives the same score twice
    with torch.no_grad():
        torch.manual_seed(0)
        model.feed_data(_batch())
        model.output = model.net_g(model.lq)
        _, losses = model.generator_losses()
        fake = model.net_d(model.output)
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        expected = 0.1 * bce(fake, torch.ones_like(fake))
    torch.testing.assert_close(losses['l_g_gan'], expected)


@pytest.mark.parametrize('gan_gt_usm', [False, True])
def test_discriminator_real_input_follows_gan_gt_usm(tmp_path, gan_gt_usm):
    model = _model(tmp_path, gan_gt_usm=gan_gt_usm)
    model.feed_data(_batch())
    model.net_d.eval()  # no power iteration: D(x) is the same each call
    model.optimizer_d.zero_grad()
    real = model.gt_usm if gan_gt_usm else model.gt
    fake = torch.rand_like(model.gt)
    losses = model.discriminator_losses(model.target('gan'), fake)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        d_real, d_fake = model.net_d(real), model.net_d(fake)
        torch.testing.assert_close(losses['l_d_real'], bce(d_real, torch.ones_like(d_real)))  # no weight for D
        torch.testing.assert_close(losses['l_d_fake'], bce(d_fake, torch.zeros_like(d_fake)))


def test_relativistic_gan_option(tmp_path):
    assert _model(tmp_path, train_relativistic=True).relativistic
    assert not _model(tmp_path, train_relativistic=False).relativistic
    opt = load_yaml(OPTIONS / 'train_ldl_realworld.yml')
    opt.update(is_train=True, dist=False)
    opt['train']['relativistic_gan'] = 'no'
    with pytest.raises(AesopError, match=r"option train.relativistic_gan: input should be a valid boolean.*got 'no'$"):
        load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)
    assert not _model(tmp_path).relativistic  # unset: the real-world model's standard GAN


def test_no_reference_metrics_are_known():
    assert not needs_reference('calculate_niqe') and not needs_reference('calculate_pyiqa')
    assert needs_reference('calculate_psnr') and needs_reference('calculate_lpips')


def test_pyiqa_missing_names_the_extra(monkeypatch):
    from aesop.metrics.iqa import calculate_pyiqa, pyiqa_metric

    pyiqa_metric.cache_clear()
    monkeypatch.setitem(sys.modules, 'pyiqa', None)  # import fails as when it is not installed
    with pytest.raises(AesopError, match=r"metric 'musiq' needs the optional package pyiqa .*\[iqa\]"):
        calculate_pyiqa(np.zeros((8, 8, 3), np.uint8), metric='musiq')


class FakePyiqa:
    """Stands in for pyiqa: records what the adapter passes; scores an image by its mean R − B."""

    def __init__(self, fail: Exception | None = None):
        self.fail, self.created = fail, []

    def list_models(self):
        return ['musiq', 'maniqa', 'clipiqa']

    def create_metric(self, name, device=None, **options):
        if self.fail:
            raise self.fail
        self.created.append((name, device, options))
        return lambda x: (x[:, 0] - x[:, 2]).mean()


def test_pyiqa_adapter_passes_rgb_in_0_1(monkeypatch):
    from aesop.metrics.iqa import calculate_pyiqa, pyiqa_metric

    pyiqa_metric.cache_clear()
    fake = FakePyiqa()
    monkeypatch.setitem(sys.modules, 'pyiqa', fake)
    bgr = np.zeros((10, 10, 3), np.uint8)
    bgr[..., 0], bgr[..., 2] = 51, 255  # B = 0.2, R = 1.0
    bgr[:2] = 0  # cropped away by crop_border 2
    options = {'pretrained_model_path': 'musiq.pth'}
    assert calculate_pyiqa(bgr, crop_border=2, metric='musiq', options=options, better='higher') == pytest.approx(0.8)
    calculate_pyiqa(bgr, metric='musiq', options=options)
    assert fake.created == [('musiq', torch.device('cpu'), options)]  # created once, options passed through
    with pytest.raises(AesopError, match="pyiqa has no metric 'musiqq'"):
        calculate_pyiqa(bgr, metric='musiqq')
    pyiqa_metric.cache_clear()


def test_pyiqa_download_failure_is_one_line(monkeypatch):
    from aesop.metrics.iqa import calculate_pyiqa, pyiqa_metric

    pyiqa_metric.cache_clear()
    monkeypatch.setitem(sys.modules, 'pyiqa', FakePyiqa(fail=OSError('Network is unreachable')))
    with pytest.raises(AesopError, match=r"pyiqa could not get the weights of 'maniqa' \(Network is unreachable\)"):
        calculate_pyiqa(np.zeros((8, 8, 3), np.uint8), metric='maniqa')
    pyiqa_metric.cache_clear()


def test_official_realworld_names_resolve():
    from basicsr.utils.registry import MODEL_REGISTRY

    from aesop.models import AesopRealGANModel
    from aesop.official import translate_options

    assert MODEL_REGISTRY.get('AesopRealESRGANArtifactsDisModel') is AesopRealGANModel
    assert MODEL_REGISTRY.get('RealESRGANArtifactsDisModel') is AesopRealGANModel  # LDL's train_Realworld_LDL.yml
    opt = {'datasets': {'train': {'type': 'RealESRGANDataset'}}, 'network_d': {'type': 'UNetDiscriminatorSN'}}
    translate_options(opt)
    assert opt == {
        'datasets': {'train': {'type': 'AesopRealESRGANDataset'}},
        'network_d': {'type': 'UNetDiscriminatorSN_basicsr'},
    }
