"""DRCT: shapes for any input size, gradients, checkpointing, and the official state-dict layout."""

from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network
from basicsr.archs.swinir_arch import SwinTransformerBlock
from basicsr.utils.registry import ARCH_REGISTRY
from torch.nn import functional as F

from aesop.archs import DRCT, drct_arch

# heads per RDG layer: 3, then 3 - (12 + 4k) % 3 = 2, 1, 3, 2 (exercises the official head rule)
TINY = {'img_size': 8, 'window_size': 4, 'embed_dim': 12, 'depths': (2, 2), 'num_heads': (3, 3), 'gc': 4}

# ``network_g`` of the official options/test/DRCT_SRx4.yml (and train_DRCT_SRx4_from_scratch.yml)
OFFICIAL_X4 = {
    'type': 'DRCT',
    'upscale': 4,
    'in_chans': 3,
    'img_size': 64,
    'window_size': 16,
    'compress_ratio': 3,
    'squeeze_factor': 30,
    'conv_scale': 0.01,
    'overlap_ratio': 0.5,
    'img_range': 1.0,
    'depths': [6, 6, 6, 6, 6, 6],
    'embed_dim': 180,
    'num_heads': [6, 6, 6, 6, 6, 6],
    'mlp_ratio': 2,
    'upsampler': 'pixelshuffle',
    'resi_connection': '1conv',
}
OFFICIAL_X4_PARAMS = 14_139_579  # the official parameter_size.ipynb (README: 14.13M)


@pytest.fixture(scope='module')
def official_x4() -> DRCT:
    return build_network(OFFICIAL_X4).eval()


@pytest.mark.parametrize('scale', [2, 3, 4, 8])
def test_shapes_for_each_scale_and_odd_sizes(scale):
    net = DRCT(**TINY, upscale=scale).eval()
    with torch.no_grad():
        for h, w in [(13, 17), (4, 12)]:
            out = net(torch.rand(1, 3, h, w))
            assert out.shape == (1, 3, h * scale, w * scale)
            assert torch.isfinite(out).all()


def test_odd_size_is_reflect_padded_and_cropped():
    net = DRCT(**TINY).eval()
    x = torch.rand(1, 3, 13, 17)
    with torch.no_grad():
        out = net(x)
        padded = net(F.pad(x, (0, 3, 0, 3), mode='reflect'))  # to 16×20, as the official DRCTModel
    assert out.shape == (1, 3, 52, 68)
    torch.testing.assert_close(out, padded[..., :52, :68], rtol=0, atol=0)


def test_inputs_smaller_than_the_window():
    net = DRCT(**{**TINY, 'window_size': 8, 'img_size': 16}, upscale=2).eval()
    with torch.no_grad():
        for h, w in [(1, 1), (1, 5), (3, 2), (7, 9)]:
            out = net(torch.rand(1, 3, h, w))
            assert out.shape == (1, 3, 2 * h, 2 * w) and torch.isfinite(out).all()


def test_gray_and_float64():
    net = DRCT(**TINY, in_chans=1, upscale=2).double().eval()
    with torch.no_grad():
        out = net(torch.rand(1, 1, 6, 10, dtype=torch.float64))
    assert out.shape == (1, 1, 12, 20) and out.dtype == torch.float64


def test_state_dict_round_trip(tmp_path):
    net = DRCT(**TINY, upscale=2).eval()
    torch.save(net.state_dict(), tmp_path / 'drct.pth')
    fresh = DRCT(**TINY, upscale=2).eval()
    fresh.load_state_dict(torch.load(tmp_path / 'drct.pth', weights_only=True), strict=True)
    x = torch.rand(1, 3, 9, 6)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)
    assert 'mean' not in net.state_dict()


def test_every_parameter_gets_a_gradient():
    net = DRCT(**TINY, upscale=2, drop_path_rate=0.0)
    out = net(torch.rand(1, 3, 8, 12))
    F.l1_loss(out, torch.rand_like(out)).backward()
    params = dict(net.named_parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params.values())
    nonzero = [name for name, p in params.items() if p.grad.abs().sum() > 0]
    assert len(nonzero) >= 0.95 * len(params)


def test_checkpointing_gives_the_same_output_and_gradients(monkeypatch):
    calls = []
    original = drct_arch.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls.append(kwargs.get('use_reentrant'))
        return original(*args, **kwargs)

    monkeypatch.setattr(drct_arch.checkpoint, 'checkpoint', counting)
    plain = DRCT(**TINY, upscale=2).train()  # drop_path_rate 0.1: the stochastic-depth draws must repeat too
    ckpt = DRCT(**TINY, upscale=2, use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 8, 8)
    outs = []
    for net in (plain, ckpt):
        torch.manual_seed(1)
        out = net(x)
        out.square().mean().backward()
        outs.append(out)
    assert calls == [False] * 5 * len(TINY['depths'])
    torch.testing.assert_close(outs[1], outs[0])
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_built_through_the_registry_with_the_official_options(official_x4):
    assert ARCH_REGISTRY.get('AesopDRCT') is DRCT  # the DRCT code's name 'DRCT' is an alias (aesop.official)
    options = {key: value for key, value in OFFICIAL_X4.items() if key != 'type'}  # incl. the unused HAT options
    tiny = ARCH_REGISTRY.get('DRCT')(**{**options, **TINY})
    assert isinstance(tiny, DRCT) and isinstance(official_x4, DRCT)
    with pytest.raises(ValueError, match="unknown option 'num_head' for AesopDRCT: did you mean 'num_heads'"):
        build_network({'type': 'DRCT', **TINY, 'num_head': 3})  # a YAML typo is an error


@pytest.mark.parametrize(
    ('option', 'message'),
    [
        (
            {'upsampler': 'pixelshuffledirect'},
            r"DRCT\.upsampler: input should be 'pixelshuffle', got 'pixelshuffledirect'",
        ),
        ({'upsampler': ''}, "upsampler: input should be 'pixelshuffle'"),
        ({'upscale': 5}, r'upscale: input should be 2, 3, 4 or 8, got 5'),
        ({'resi_connection': '3conv'}, r"resi_connection: input should be '1conv' or 'identity', got '3conv'"),
        ({'window_size': 1}, r'option AesopDRCT\.window_size must be ≥ 2, got 1'),
        ({'img_size': 10}, 'img_size must be a multiple of window_size'),
        ({'img_size': 4}, 'img_size must be a multiple of window_size'),
        ({'num_heads': (3,)}, 'one positive entry per RDG'),
        ({'gc': 7}, 'do not divide them'),  # swin2: 12 + 7 = 19 channels, 3 - 19 % 3 = 2 heads
    ],
)
def test_bad_options_raise_value_error(option, message):
    with pytest.raises(ValueError, match=message):
        DRCT(**{**TINY, **option})


def official_key_set(num_groups: int, upsample_convs: int) -> set[str]:
    """The keys of the official ``DRCT`` state dict, from the names in the official DRCT_arch.py."""
    keys = {
        f'{m}.{p}' for m in ('conv_first', 'patch_embed.norm', 'norm', 'conv_after_body') for p in ('weight', 'bias')
    }
    keys |= {f'{m}.{p}' for m in ('conv_before_upsample.0', 'conv_last') for p in ('weight', 'bias')}
    keys |= {f'upsample.{2 * j}.{p}' for j in range(upsample_convs) for p in ('weight', 'bias')}
    swin = ['norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2']
    for i in range(num_groups):
        for k in range(1, 6):
            keys |= {f'layers.{i}.swin{k}.{m}.{p}' for m in swin for p in ('weight', 'bias')}
            keys |= {f'layers.{i}.swin{k}.attn.relative_position_bias_table'}
            keys |= {f'layers.{i}.swin{k}.attn.relative_position_index'}  # a persistent buffer
            keys |= {f'layers.{i}.adjust{k}.weight', f'layers.{i}.adjust{k}.bias'}
            if k in (2, 4):  # shifted layers register their img_size mask; unshifted ones register None
                keys.add(f'layers.{i}.swin{k}.attn_mask')
    return keys


# shapes read off the official code for the ×4 DRCT: dims 180 + 32k, heads 6 - (180 + 32k) % 6 (6, 4, 2, 6, 4),
# MLP ratio 2 for swin1-3 and 1 for swin4-5, windows of 16 (961 relative positions), 64/16 = 4×4 windows per mask
OFFICIAL_X4_SHAPES = {
    'conv_first.weight': (180, 3, 3, 3),
    'patch_embed.norm.weight': (180,),
    'layers.0.swin1.norm1.weight': (180,),
    'layers.0.swin1.attn.relative_position_bias_table': (961, 6),
    'layers.0.swin1.attn.relative_position_index': (256, 256),
    'layers.0.swin1.attn.qkv.weight': (540, 180),
    'layers.0.swin1.attn.proj.weight': (180, 180),
    'layers.0.swin1.mlp.fc1.weight': (360, 180),
    'layers.0.adjust1.weight': (32, 180, 1, 1),
    'layers.0.swin2.attn.relative_position_bias_table': (961, 4),
    'layers.0.swin2.attn_mask': (16, 256, 256),
    'layers.0.swin2.mlp.fc1.weight': (424, 212),
    'layers.1.adjust2.weight': (32, 212, 1, 1),
    'layers.2.swin3.attn.relative_position_bias_table': (961, 2),
    'layers.2.swin3.attn.qkv.weight': (732, 244),
    'layers.2.swin3.mlp.fc2.weight': (244, 488),
    'layers.3.swin4.attn.relative_position_bias_table': (961, 6),
    'layers.3.swin4.attn_mask': (16, 256, 256),
    'layers.3.swin4.mlp.fc1.weight': (276, 276),
    'layers.4.adjust4.weight': (32, 276, 1, 1),
    'layers.5.swin5.attn.relative_position_bias_table': (961, 4),
    'layers.5.swin5.norm2.weight': (308,),
    'layers.5.swin5.mlp.fc1.weight': (308, 308),
    'layers.5.adjust5.weight': (180, 308, 1, 1),
    'layers.5.adjust5.bias': (180,),
    'norm.weight': (180,),
    'conv_after_body.weight': (180, 180, 3, 3),
    'conv_before_upsample.0.weight': (64, 180, 3, 3),
    'upsample.0.weight': (256, 64, 3, 3),
    'upsample.2.weight': (256, 64, 3, 3),
    'conv_last.weight': (3, 64, 3, 3),
    'conv_last.bias': (3,),
}


def test_official_x4_state_dict_layout(official_x4):
    state = official_x4.state_dict()
    assert set(state) == official_key_set(num_groups=6, upsample_convs=2)
    for key, shape in OFFICIAL_X4_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    assert state['layers.0.swin1.attn.relative_position_index'].dtype == torch.int64
    assert sum(p.numel() for p in official_x4.parameters()) == OFFICIAL_X4_PARAMS


def test_other_scales_layout():
    for scale, convs, out in [(2, 1, 256), (3, 1, 576), (8, 3, 256)]:
        state = DRCT(**TINY, upscale=scale).state_dict()
        assert {k for k in state if k.startswith('upsample.')} == {
            f'upsample.{2 * j}.{p}' for j in range(convs) for p in ('weight', 'bias')
        }
        assert state['upsample.0.weight'].shape == (out, 64, 3, 3)
    assert 'conv_after_body.weight' not in DRCT(**TINY, resi_connection='identity').state_dict()
    assert 'patch_embed.norm.weight' not in DRCT(**TINY, patch_norm=False).state_dict()


def test_masks_match_basicsr_for_stored_and_other_sizes(official_x4):
    stored = official_x4.layers[0].swin2.attn_mask
    computed = official_x4.layers[0].swin2.calculate_mask((64, 64))
    torch.testing.assert_close(computed, stored, rtol=0, atol=0)
    block = SwinTransformerBlock(dim=4, input_resolution=(8, 8), num_heads=1, window_size=4, shift_size=2)
    net = DRCT(**TINY).eval()
    used = []
    net.layers[0].swin2.register_forward_pre_hook(lambda module, args: used.append(args[2]))
    for size in [(8, 12), (4, 4), (16, 4)]:  # the mask each forward hands the shifted layers
        with torch.no_grad():
            net(torch.rand(1, 3, *size))
        expected = block.calculate_mask(size)
        torch.testing.assert_close(used[-1], expected)


def test_official_x4_forward_on_a_small_input(official_x4):
    with torch.no_grad():
        out = official_x4(torch.rand(1, 3, 16, 16))
    assert out.shape == (1, 3, 64, 64) and torch.isfinite(out).all()
