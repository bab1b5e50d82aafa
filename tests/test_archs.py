"""The auto-encoder ψ = D∘E: shapes, gradients, and the official checkpoint layout."""

from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.arch_util import make_layer
from basicsr.archs.rrdbnet_arch import RRDB, RRDBNet
from conftest import TINY_AE, TINY_RRDB
from torch import nn
from torch.nn import functional as F

from aesop.archs import AesopAutoEncoder
from aesop.weights import load_weights


@pytest.mark.parametrize('scale', [2, 4, 8])
def test_shapes_for_each_scale(scale):
    decoder = {**TINY_RRDB, 'scale': scale}
    if scale == 8:  # basicsr's RRDBNet stops at ×4
        decoder = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'upscale': 8}
    ae = AesopAutoEncoder(decoder=decoder, scale=scale, num_feat=64, num_block=1, num_grow_ch=8)
    hr = torch.rand(2, 3, 64, 48)
    decoded, bottleneck = ae(hr, return_bottleneck=True)
    assert bottleneck.shape == (2, 3, 64 // scale, 48 // scale)
    assert decoded.shape == hr.shape
    assert torch.equal(ae(hr), decoded)


def test_invalid_settings_fail_clearly():
    with pytest.raises(ValueError, match=r'^option AesopAutoEncoder\.scale: input should be 2, 4 or 8, got 3$'):
        AesopAutoEncoder(decoder=TINY_RRDB, scale=3)
    with pytest.raises(ValueError, match='upscales ×4, encoder ×2'):
        AesopAutoEncoder(decoder=TINY_RRDB, scale=2)
    with pytest.raises(ValueError, match=r"AesopAutoEncoder\.encoder: input should be 'learned' or 'bicubic'"):
        AesopAutoEncoder(decoder=TINY_RRDB, encoder='nearest')
    with pytest.raises(ValueError, match="unknown option 'num_blocks' for AesopAutoEncoder: did you mean 'num_block'"):
        build_network({**TINY_AE, 'num_blocks': 2})  # a YAML typo is an error
    with pytest.raises(ValueError, match='not a multiple of scale'):
        AesopAutoEncoder(decoder=TINY_RRDB)(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r'expected \(64, 64\) \(×8\)'):
        AesopAutoEncoder(decoder={**TINY_RRDB, 'scale': 8}, scale=8, num_feat=64)(torch.rand(1, 3, 64, 64))


def test_every_parameter_gets_a_gradient():
    ae = build_network(TINY_AE)
    decoded, bottleneck = ae(torch.rand(1, 3, 32, 32), return_bottleneck=True)
    (decoded.mean() + bottleneck.mean()).backward()
    named = dict(ae.named_parameters())
    assert named and all(p.grad is not None and torch.isfinite(p.grad).all() for p in named.values())


class OfficialLayout(nn.Module):
    """The official ``AutoEncoder_RRDBNet`` as described in its release (App. A), rebuilt here
    independently: encoder modules registered twice, no activations outside the RRDBs."""

    def __init__(self, nf: int, grow: int, dec_opt: dict):
        super().__init__()
        self.decoder = RRDBNet(**dec_opt)
        self.conv_first = nn.Sequential(nn.Conv2d(3, nf // 16, 3, 1, 1), nn.Conv2d(nf // 16, nf // 16, 3, 1, 1))
        self.down = nn.Sequential(nn.PixelUnshuffle(2), nn.PixelUnshuffle(2))
        self.body = make_layer(RRDB, 2, num_feat=nf, num_grow_ch=grow)
        self.conv_last = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.Conv2d(nf, 3, 3, 1, 1))
        self.encoder = nn.Sequential(self.conv_first, self.down, self.body, self.conv_last)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def test_official_checkpoint_round_trip(tmp_path):
    dec_opt = {k: v for k, v in TINY_RRDB.items() if k != 'type'}
    official = OfficialLayout(16, 8, dec_opt)
    keys = set(official.state_dict())
    assert {
        'conv_first.0.weight',
        'body.1.rdb3.conv5.bias',
        'encoder.0.1.weight',
        'encoder.2.0.rdb1.conv1.weight',
        'encoder.3.1.bias',
        'decoder.conv_first.weight',
    } <= keys
    assert not any(k.startswith('encoder.1.') for k in keys)
    state = official.state_dict()
    torch.save({'params': state, 'params_ema': state}, tmp_path / 'official.pth')

    ours = build_network({'type': 'AutoEncoder_RRDBNet', 'enc_opt': {'placeholder': 0}, 'dec_opt': TINY_RRDB})
    assert set(ours.state_dict()) == keys
    load_weights(ours, tmp_path / 'official.pth', param_key='params_ema', strict=True)
    hr = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(hr), official(hr), atol=1e-6)
    # and ours load strictly into the official layout
    fresh = OfficialLayout(16, 8, dec_opt)
    fresh.load_state_dict(build_network(TINY_AE | {'num_block': 2}).state_dict(), strict=True)


def test_bicubic_encoder_is_antialiased_bicubic_and_takes_official_checkpoints(tmp_path):
    ae = build_network({'type': 'BicubicDown_RRDBNet', 'enc_opt': {}, 'dec_opt': TINY_RRDB})
    hr = torch.rand(1, 3, 32, 32)
    expected = F.interpolate(hr, scale_factor=0.25, mode='bicubic', align_corners=False, antialias=True)
    assert torch.allclose(ae.encode(hr), expected)
    # official bicubic checkpoints still carry the unused learned encoder
    official = OfficialLayout(16, 8, {k: v for k, v in TINY_RRDB.items() if k != 'type'})
    state = {k: v for k, v in official.state_dict().items() if not k.startswith('encoder.')}
    torch.save({'params_ema': state}, tmp_path / 'bicubic.pth')
    load_weights(ae, tmp_path / 'bicubic.pth', param_key='params_ema', strict=True)
    assert torch.equal(ae.decoder.conv_first.weight, official.decoder.conv_first.weight)
    assert set(ae.state_dict()) == set(state)  # and ours load strictly in the official code
    assert {n for n, p in ae.named_parameters() if p.requires_grad} == {n for n in state if n.startswith('decoder.')}


@pytest.mark.parametrize('scale', [2, 4])
def test_bicubic_network_is_matlab_imresize(scale):
    """The bicubic baseline row: basicsr's numpy ``imresize`` (MATLAB's) of a real LR photo, in a batch."""
    import numpy as np
    from basicsr.utils.matlab_functions import imresize

    from aesop.data import bicubic_downscale
    from aesop.data.demo import skimage_photo

    lr = bicubic_downscale(skimage_photo('coffee')[:96, :120], 4).astype(np.float64) / 255
    expected = np.stack([imresize(lr, scale), imresize(lr[::-1].copy(), scale)])
    batch = torch.from_numpy(np.stack([lr, lr[::-1].copy()])).permute(0, 3, 1, 2)
    net = build_network({'type': 'AesopBicubic', 'scale': scale})
    out = net(batch).permute(0, 2, 3, 1).numpy()
    assert out.shape == expected.shape == (2, 24 * scale, 30 * scale, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert not list(net.parameters())
    with pytest.raises(ValueError, match='positive integer'):
        build_network({'type': 'AesopBicubic', 'scale': 0})
