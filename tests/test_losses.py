"""Fidelity losses: L_AESOP (Eq. 8), LR-consistency, low-pass L1, against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.losses.basic_loss import mse_loss
from basicsr.utils.matlab_functions import imresize
from conftest import TINY_AE
from scipy.ndimage import gaussian_filter
from skimage import data
from torch.nn import functional as F

from aesop.data.resize import bicubic_downscale, matlab_bicubic_downscale, matlab_resize_matrix
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


def matlab_down(x: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """basicsr's numpy ``imresize`` (MATLAB bicubic, float32), image by image: the independent reference."""
    images = [imresize(img.permute(1, 2, 0).double().numpy(), 1 / scale) for img in x]
    return torch.stack([torch.from_numpy(img).permute(2, 0, 1) for img in images]).float()


def torch_down(x: torch.Tensor, antialias: bool) -> torch.Tensor:
    return F.interpolate(x, scale_factor=0.25, mode='bicubic', align_corners=False, antialias=antialias)


def lr_loss(**kw):
    return build_loss({'type': 'AesopLRConsistencyLoss', 'scale': 4, **kw})


def test_lr_consistency_default_is_the_posts_mse_after_matlab_bicubic():
    """Paper 002: "MSE(LR, bicubic(G(LR)))", bicubic = MATLAB's imresize (the LR images' kernel)."""
    sr, hr, lq = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 8, 8)
    to_lq = lr_loss(target='lq', loss_weight=0.5)
    assert to_lq.kernel == 'matlab' and to_lq.criterion is mse_loss
    assert to_lq(sr, lq).item() == pytest.approx(0.5 * ((matlab_down(sr) - lq) ** 2).mean().item(), rel=1e-5)
    assert lr_loss()(sr, hr).item() == pytest.approx(((matlab_down(sr) - matlab_down(hr)) ** 2).mean().item(), rel=1e-5)
    l1 = lr_loss(target='lq', criterion='l1')(sr, lq)
    assert l1.item() == pytest.approx((matlab_down(sr) - lq).abs().mean().item(), rel=1e-5)


def test_lr_consistency_torch_kernels_are_options():
    sr, hr, lq = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 8, 8)
    loss = lr_loss(kernel='torch', criterion='l1')
    assert torch.allclose(loss(sr, hr), (torch_down(sr, True) - torch_down(hr, True)).abs().mean())
    to_lq = lr_loss(kernel='torch', target='lq', criterion='l2')
    assert torch.allclose(to_lq(sr, lq), ((torch_down(sr, True) - lq) ** 2).mean())
    plain = lr_loss(kernel='torch', antialias=False, criterion='l1', loss_weight=2.0)
    assert torch.allclose(plain(sr, hr), 2 * (torch_down(sr, False) - torch_down(hr, False)).abs().mean())
    assert lr_loss(scale=2)(sr, hr).requires_grad is False


def test_official_lr_l1_loss_is_l1_after_plain_torch_bicubic():
    """The AESOP release's LRL1Loss: L1 between plain (not antialiased) bicubic ×1/4 of SR and of HR."""
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    official = build_loss({'type': 'LRL1Loss', 'loss_weight': 2.0})
    assert torch.allclose(official(sr, hr), 2 * (torch_down(sr, False) - torch_down(hr, False)).abs().mean())


def test_lr_consistency_of_an_image_and_its_matlab_lr_is_what_saving_the_lr_lost():
    """astronaut (512²) and its MATLAB-bicubic LR: against the float LR the MATLAB kernel gives 0; against the
    LR as saved (8 bit) exactly the saving's rounding and clipping (52.9 dB); torch's antialiased bicubic adds
    its border difference (1.44e-6: 58.4 dB against the float LR)."""
    hr8 = data.astronaut()
    to_tensor = lambda a: torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    float_lr = imresize(hr8.astype(np.float64) / 255, 1 / 4)  # basicsr's numpy imresize, unrounded
    saved_lr = bicubic_downscale(hr8, 4) / 255
    hr = to_tensor(hr8 / 255)
    matlab, torch_aa = lr_loss(target='lq'), lr_loss(target='lq', kernel='torch')
    assert matlab(hr, to_tensor(float_lr)).item() < 1e-12
    assert torch_aa(hr, to_tensor(float_lr)).item() == pytest.approx(1.44e-6, rel=0.01)
    saving = ((float_lr - saved_lr) ** 2).mean()  # 5.13e-6: overshoots above 255 clipped, then rounding
    assert matlab(hr, to_tensor(saved_lr)).item() == pytest.approx(saving, rel=1e-4)
    assert torch_aa(hr, to_tensor(saved_lr)).item() > 1.2 * saving


def test_lr_consistency_crop_border_drops_the_pixels_a_patch_cannot_predict():
    """A 128-px HR crop and the matching crop of the whole image's LR (how paired datasets cut patches): the
    outer 2 LR pixels depend on HR outside the crop; with ``crop_border: 2`` the MATLAB kernel matches exactly."""
    img = data.astronaut().astype(np.float64) / 255
    lr = torch.from_numpy(imresize(img, 1 / 4)).permute(2, 0, 1)[None].float()
    hr = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    hr_patch, lr_patch = hr[..., 128:256, 192:320], lr[..., 32:64, 48:80]
    assert lr_loss(target='lq')(hr_patch, lr_patch).item() > 1e-6
    cropped = lr_loss(target='lq', crop_border=2)
    assert cropped(hr_patch, lr_patch).item() < 1e-12
    sr = torch.rand(1, 3, 128, 128)
    expected = ((matlab_down(sr)[..., 2:-2, 2:-2] - lr_patch[..., 2:-2, 2:-2]) ** 2).mean()
    assert cropped(sr, lr_patch).item() == pytest.approx(expected.item(), rel=1e-5)


def test_lr_consistency_gradient_is_the_transposed_matlab_resize():
    """d/dSR of sum(MATLAB(SR) · g) is MATLAB's resize transposed applied to g: checked against autograd of
    basicsr's weights written as explicit matrices, and by gradcheck in float64."""
    sr = torch.rand(2, 3, 20, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: matlab_bicubic_downscale(x, 4), (sr,))
    lq = torch.rand(2, 3, 5, 6)
    loss = lr_loss(target='lq', reduction='sum')
    x = sr.detach().float().requires_grad_()
    loss(x, lq).backward()
    rows, cols = matlab_resize_matrix(20, 0.25).float(), matlab_resize_matrix(24, 0.25).float()
    residual = matlab_down(x.detach()) - lq
    np.testing.assert_allclose(x.grad.numpy(), (2 * rows.T @ residual @ cols).numpy(), atol=1e-5)


@pytest.mark.parametrize(
    'bad',
    [{'kernel': 'pil'}, {'antialias': False}, {'crop_border': -1}, {'target': 'sr'}, {'criterion': 'l3'}],
)
def test_lr_consistency_bad_values_are_value_errors(bad):
    with pytest.raises(ValueError, match=rf'{next(iter(bad))}:? (must|input should) be'):
        lr_loss(**bad)


def test_low_pass_l1_is_by_default_the_release_lr_l1_loss():
    """Tab. 5(b)'s default filter is the release's LRL1Loss: L1 between plain bicubic ×1/4 of SR and of HR,
    here against a hand-written F.interpolate and against the release's name read through aesop.official."""
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    loss = build_loss({'type': 'AesopLowPassLoss', 'loss_weight': 2.0})
    down = lambda x: F.interpolate(x, scale_factor=0.25, mode='bicubic', align_corners=False)  # noqa: E731
    expected = 2 * (down(sr) - down(hr)).abs().mean()
    assert torch.allclose(loss(sr, hr), expected, atol=1e-7)
    assert torch.allclose(loss(sr, hr), build_loss({'type': 'LRL1Loss', 'loss_weight': 2.0})(sr, hr))
    antialiased = F.interpolate(sr, scale_factor=0.25, mode='bicubic', align_corners=False, antialias=True)
    assert not torch.allclose(loss.transform(sr), antialiased, atol=1e-3)  # the release's is not antialiased


def test_low_pass_l1_gaussian_matches_scipy_gaussian_filter():
    sr, hr = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24)
    loss = build_loss({'type': 'AesopLowPassLoss', 'filter': 'gaussian'})  # sigma 1.5 by default
    blur = lambda x: torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, 1.5, 1.5), mode='mirror', truncate=3.0))  # noqa: E731
    expected = (blur(sr) - blur(hr)).abs().mean()
    assert torch.allclose(loss(sr, hr), expected.float(), atol=1e-6)


@pytest.mark.parametrize(
    'bad',
    [
        {'criterion': 'l3'},
        {'reduction': 'avg'},
        {'filter': 'box'},
        {'scale': 0},
        {'sigma': 0.0, 'filter': 'gaussian'},
        {'kernel_size': 4, 'filter': 'gaussian'},
        {'sigma': 1.5},  # a Gaussian's sigma with the default filter: bicubic
    ],
)
def test_bad_values_are_value_errors(bad):
    with pytest.raises(ValueError, match=rf'{next(iter(bad))}:? (must|input should) be|must be set only'):
        build_loss({'type': 'AesopLowPassLoss', **bad})
