"""Fidelity losses: L_AESOP (Eq. 8), LR-consistency, low-pass L1, against independent references."""

from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from conftest import TINY_AE
from scipy.ndimage import gaussian_filter
from torch.nn import functional as F

from aesop.errors import AesopError


@pytest.fixture
def ae_checkpoint(tmp_path):
    ae = build_network(TINY_AE)
    path = tmp_path / 'ae.pth'
    torch.save({'params': ae.state_dict(), 'params_ema': ae.state_dict()}, path)
    return path, ae


def aesop_loss(path, **kw):
    return build_loss({'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(path), **kw})


def test_aesop_loss_is_l1_in_ae_space_and_zero_on_hr(ae_checkpoint):
    path, ae = ae_checkpoint
    loss = aesop_loss(path, loss_weight=0.5)
    hr, sr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert loss(hr, hr).item() == 0.0
    with torch.no_grad():
        expected = 0.5 * (ae(sr) - ae(hr)).abs().mean()
    assert torch.allclose(loss(sr, hr), expected)
    assert torch.allclose(aesop_loss(path, criterion='l2')(sr, hr), ((ae(sr) - ae(hr)) ** 2).mean())


def test_gradients_reach_sr_and_never_the_autoencoder(ae_checkpoint):
    path, _ = ae_checkpoint
    loss = aesop_loss(path)
    before = {k: v.clone() for k, v in loss.autoencoder.state_dict().items()}
    sr = torch.rand(1, 3, 32, 32, requires_grad=True)
    hr = torch.rand(1, 3, 32, 32, requires_grad=True)
    optimizer = torch.optim.Adam([sr], lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        loss.train()  # the model toggles train mode; ψ must stay in eval
        loss(sr, hr).backward()
        optimizer.step()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert hr.grad is None  # ψ(HR) has no graph
    assert not loss.autoencoder.training
    assert all(not p.requires_grad and p.grad is None for p in loss.autoencoder.parameters())
    assert all(torch.equal(before[k], v) for k, v in loss.autoencoder.state_dict().items())


def test_official_autoencoder_loss_options(ae_checkpoint):
    path, ae = ae_checkpoint
    official = build_loss(
        {
            'type': 'AutoEncoderLoss',
            'criterion': 'l1',
            'loss_weight': 1.0,
            'reduction': 'mean',
            'as_loss_map': False,
            'autoencoder_arch': TINY_AE,
            'autoencoder_load': {'path': str(path), 'key': 'params_ema'},
        }
    )
    sr, hr = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert torch.allclose(official(sr, hr), aesop_loss(path)(sr, hr))


def test_loading_errors_name_the_file_and_the_problem(ae_checkpoint, tmp_path):
    path, ae = ae_checkpoint
    with pytest.raises(AesopError, match='checkpoint not found: .*missing.pth'):
        aesop_loss(tmp_path / 'missing.pth')
    torch.save({'params': ae.state_dict()}, tmp_path / 'no_ema.pth')
    with pytest.raises(AesopError, match="no key 'params_ema'; it has: params"):
        aesop_loss(tmp_path / 'no_ema.pth')
    with pytest.raises(
        AesopError, match=r'decoder.conv_first.weight has shape \(16, 3, 3, 3\) in the file but \(8, 3, 3, 3\)'
    ):
        aesop_loss(path, autoencoder={**TINY_AE, 'decoder': {**TINY_AE['decoder'], 'num_feat': 8}, 'num_feat': 16})


def test_lr_consistency_matches_bicubic_downscaling():
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    down = lambda x, aa: F.interpolate(x, scale_factor=0.25, mode='bicubic', align_corners=False, antialias=aa)  # noqa: E731
    loss = build_loss({'type': 'AesopLRConsistencyLoss', 'scale': 4})
    assert torch.allclose(loss(sr, hr), (down(sr, True) - down(hr, True)).abs().mean())
    to_lq = build_loss({'type': 'AesopLRConsistencyLoss', 'scale': 4, 'target': 'lq', 'criterion': 'l2'})
    lq = torch.rand(2, 3, 8, 8)
    assert torch.allclose(to_lq(sr, lq), ((down(sr, True) - lq) ** 2).mean())
    official = build_loss({'type': 'LRL1Loss', 'loss_weight': 2.0})
    assert torch.allclose(official(sr, hr), 2 * (down(sr, False) - down(hr, False)).abs().mean())
    assert build_loss({'type': 'AesopLRConsistencyLoss', 'scale': 2})(sr, hr).requires_grad is False


def test_low_pass_l1_matches_scipy_gaussian_filter():
    sr, hr = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    loss = build_loss({'type': 'AesopLowPassLoss', 'sigma': 1.5})
    blur = lambda x: torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, 1.5, 1.5), mode='mirror', truncate=3.0))  # noqa: E731
    expected = (blur(sr) - blur(hr)).abs().mean()
    assert torch.allclose(loss(sr, hr), expected.float(), atol=1e-6)


@pytest.mark.parametrize('bad', [{'criterion': 'l3'}, {'reduction': 'avg'}, {'sigma': 0.0}, {'kernel_size': 4}])
def test_bad_values_are_value_errors(bad):
    with pytest.raises(ValueError, match='must be'):
        build_loss({'type': 'AesopLowPassLoss', **bad})
