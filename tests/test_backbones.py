"""Backbone swap by YAML alone: the AESOP GAN trains and test.py runs with RRDB, SwinIR, DRCT and MSRResNet.

Only ``network_g`` of ``options/demo/train_aesop.yml`` / ``test_aesop.yml`` is edited (tiny sizes).
"""

from __future__ import annotations

import csv
from copy import deepcopy

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr
from conftest import REPO, TINY_AE, TINY_RRDB, build_model, load_yaml, run_entry, write_yaml

from aesop.data import bicubic_downscale

TRANSFORMER = {'in_chans': 3, 'img_size': 8, 'img_range': 1.0, 'depths': [1], 'embed_dim': 12, 'num_heads': [2]}
BACKBONES = {
    'RRDBNet': TINY_RRDB,
    'SwinIR': {
        'type': 'SwinIR',
        'upscale': 4,
        'window_size': 4,
        'mlp_ratio': 2,
        'upsampler': 'pixelshuffle',
        'resi_connection': '1conv',
        **TRANSFORMER,
    },
    'DRCT': {'type': 'DRCT', 'upscale': 4, 'window_size': 4, 'mlp_ratio': 2, 'gc': 4, **TRANSFORMER},
    'MSRResNet': {'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'upscale': 4},
}
HR_SIZE = (52, 72)  # LR 13 × 18: not a multiple of the transformers' window (4)


@pytest.fixture(scope='module')
def odd_test_set(tmp_path_factory):
    """A paired ×4 test set whose LR size is not a multiple of the window."""
    import skimage.data

    folder = tmp_path_factory.mktemp('odd')
    hr = skimage.data.coffee()[100 : 100 + HR_SIZE[0], 200 : 200 + HR_SIZE[1], ::-1]
    for sub, img in (('HR', hr), ('LR', bicubic_downscale(np.ascontiguousarray(hr), 4))):
        (folder / sub).mkdir()
        cv2.imwrite(str(folder / sub / 'coffee.png'), img)
    return folder


@pytest.mark.heavy
@pytest.mark.parametrize('backbone', BACKBONES)
def test_aesop_gan_trains_and_tests_with_each_backbone(backbone, tmp_path, odd_test_set):
    arch = BACKBONES[backbone]
    torch.save({'params_ema': build_network(deepcopy(TINY_AE)).state_dict()}, tmp_path / 'ae.pth')

    opt = load_yaml(REPO / 'options' / 'demo' / 'train_aesop.yml')
    opt['network_g'] = deepcopy(arch)  # the only edit that matters: the backbone
    opt['network_d'].update(num_feat=4)  # 128-px patches, as the demo
    opt['train']['aesop_opt'].update(autoencoder=deepcopy(TINY_AE), pretrained=str(tmp_path / 'ae.pth'))
    opt['train']['perceptual_opt']['layer_weights'] = {'conv1_2': 0.1}
    opt.pop('datasets')
    opt['path'] = {'models': str(tmp_path), 'training_states': str(tmp_path)}
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1)
    model = build_model(opt)
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data({'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 128, 128)})
    model.optimize_parameters(1)
    assert set(model.log_dict) >= {'l_g_aesop', 'l_g_percep', 'l_g_gan', 'l_g_artifacts', 'l_d_real'}
    assert all(np.isfinite(v) for v in model.log_dict.values())
    grads = [p.grad for p in model.net_g.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), f'{backbone}: a trainable parameter got no gradient'
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    model.save(0, 1)

    test = load_yaml(REPO / 'options' / 'demo' / 'test_aesop.yml')
    test['name'] = f'backbone_{backbone}'
    test['network_g'] = deepcopy(arch)
    test['datasets']['test_1'].update(dataroot_gt=str(odd_test_set / 'HR'), dataroot_lq=str(odd_test_set / 'LR'))
    test['path']['pretrain_network_g'] = str(tmp_path / 'net_g_1.pth')
    test['val']['metrics'] = {'psnr': test['val']['metrics']['psnr']}
    run_entry('test', write_yaml(test, tmp_path / 'test.yml'), tmp_path)

    results = tmp_path / 'results' / test['name']
    sr = cv2.imread(str(results / 'visualization' / 'demo_val' / f'coffee_{test["name"]}.png'))
    assert sr.shape == (*HR_SIZE, 3)  # padded to the window inside, cropped back
    with open(results / 'demo_val.csv') as f:
        row = next(csv.DictReader(f))
    hr = cv2.imread(str(odd_test_set / 'HR' / 'coffee.png'))
    assert float(row['psnr']) == pytest.approx(calculate_psnr(sr, hr, 4, test_y_channel=True), abs=1e-4)
    if backbone != 'SwinIR':  # the saved image is the EMA G on the unpadded LR (DRCT pads itself)
        with torch.no_grad():
            lq = torch.from_numpy(cv2.imread(str(odd_test_set / 'LR' / 'coffee.png'))[..., ::-1].copy())
            expected = model.net_g_ema.eval()(lq.permute(2, 0, 1)[None].float() / 255)
        ours = torch.from_numpy(sr[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255
        assert (expected.clamp(0, 1) - ours).abs().max() <= 1 / 255 + 1e-6
