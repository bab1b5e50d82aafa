"""Inference on user images: tiling, window padding, image formats, the command line and its errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from torch import nn

from aesop.archs.tiling import tile_spans
from aesop.inference import input_multiple, load_generator, main, upscale

ARCH = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_block': 1, 'num_grow_ch': 4}
SWINIR = {
    'type': 'SwinIR',
    'upscale': 4,
    'img_size': 8,
    'window_size': 4,
    'depths': [1],
    'embed_dim': 8,
    'num_heads': [2],
    'mlp_ratio': 2,
    'upsampler': 'pixelshuffledirect',
}
RECEPTIVE_RADIUS = 19  # LR px: conv_first + 15 RDB convs + conv_body, then 4 convs at ×2/×4 (< 1 LR px)


def tiny_net(arch: dict) -> nn.Module:
    """``arch`` with PyTorch's default conv init and output bias 0.5: outputs inside [0, 1] that vary.

    (basicsr's init scales RRDB weights by 0.1, so an untrained net outputs ≈ -0.05: all clamped to 0.)
    """
    net = build_network(dict(arch)).eval()
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    with torch.no_grad():
        net.conv_last.bias.fill_(0.5)
    return net


@pytest.fixture
def rrdb() -> nn.Module:
    return tiny_net(ARCH)


@pytest.fixture
def weights(rrdb, tmp_path) -> Path:
    """A BasicSR-style checkpoint of ``rrdb`` with only ``params`` (no EMA)."""
    path = tmp_path / 'net_g.pth'
    torch.save({'params': rrdb.state_dict()}, path)
    return path


def cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


def arch_args(weights: Path) -> list[str | Path]:
    return ['--arch', yaml.safe_dump(ARCH, default_flow_style=True).strip(), '--weights', weights]


def test_tiles_equal_whole_image_when_pad_covers_receptive_field(rrdb):
    img = torch.rand(1, 3, 37, 29)
    whole = upscale(rrdb, img, scale=4)
    tiled = upscale(rrdb, img, scale=4, tile=12, tile_pad=RECEPTIVE_RADIUS + 1)
    assert whole.shape == tiled.shape == (1, 3, 148, 116)
    assert whole.std() > 0.01  # not clamped flat
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiles_agree_within_one_level_away_from_seams(rrdb):
    img = torch.rand(1, 3, 37, 29)
    whole = upscale(rrdb, img, scale=4)
    tiled = upscale(rrdb, img, scale=4, tile=12, tile_pad=2)
    no_context = upscale(rrdb, img, scale=4, tile=12, tile_pad=0)
    near_seam = torch.zeros(148, 116, dtype=torch.bool)
    band = 3 * 4  # 3 LR px either side of an inner seam, in HR px
    for _, stop in tile_spans(37, 12)[:-1]:
        near_seam[max(stop * 4 - band, 0) : stop * 4 + band] = True
    for _, stop in tile_spans(29, 12)[:-1]:
        near_seam[:, max(stop * 4 - band, 0) : stop * 4 + band] = True
    assert near_seam.any() and not near_seam.all()
    assert (tiled - whole).abs()[..., ~near_seam].max() < 1 / 255
    assert (no_context - whole).abs()[..., near_seam].max() > 1 / 255  # the check above can fail


@pytest.mark.parametrize(('h', 'w', 'tile'), [(1, 1, 0), (5, 3, 2), (13, 8, 4), (9, 17, 16)])
def test_any_size_and_tile(rrdb, h, w, tile):
    img = torch.rand(2, 3, h, w)
    out = upscale(rrdb, img, scale=4, tile=tile, tile_pad=RECEPTIVE_RADIUS + 1)
    assert out.shape == (2, 3, 4 * h, 4 * w) and out.dtype == torch.float32
    torch.testing.assert_close(out, upscale(rrdb, img, scale=4), atol=1e-5, rtol=0)


def test_tile_spans_cover_without_gaps():
    assert tile_spans(37, 12) == [(0, 9), (9, 18), (18, 28), (28, 37)]
    assert tile_spans(5, 256) == [(0, 5)]


def test_swinir_is_padded_to_its_window_and_cropped(tmp_path):
    net = build_network(dict(SWINIR)).eval()
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'swinir.pth')
    gen = load_generator(SWINIR, tmp_path / 'swinir.pth', scale=4, param_key='params_ema')
    assert gen.window == 4 and gen.scale == 4
    img = torch.rand(1, 3, 10, 7)
    assert upscale(gen.net, img, scale=4, window=gen.window).shape == (1, 3, 40, 28)
    assert upscale(gen.net, img, scale=4, window=gen.window, tile=4, tile_pad=2).shape == (1, 3, 40, 28)
    assert upscale(gen.net, img[..., :1, :1], scale=4, window=gen.window).shape == (1, 3, 4, 4)


def test_input_multiple():
    assert input_multiple(ARCH) is None
    assert input_multiple({**ARCH, 'scale': 2}) == 2
    assert input_multiple({**ARCH, 'scale': 1}) == 4
    assert input_multiple(SWINIR) == 4


def test_half_is_bf16_autocast_on_cpu(rrdb):
    img = torch.rand(1, 3, 9, 11)
    out = upscale(rrdb, img, scale=4, half=True)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, upscale(rrdb, img, scale=4), atol=0.02, rtol=0)


def write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_cli_grey_rgba_16_bit_jpeg_and_a_corrupt_file(rrdb, weights, tmp_path, capsys):
    rng = np.random.default_rng(0)
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    write(src / 'grey.png', rng.integers(0, 256, (9, 7), dtype=np.uint8))
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[:3, :, 3] = 0  # top half transparent
    write(src / 'rgba.png', rgba)
    deep = rng.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    write(src / 'deep.png', deep)
    write(src / 'photo.jpg', rng.integers(0, 256, (8, 10, 3), dtype=np.uint8))
    (src / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    (src / 'notes.txt').write_text('not an image: ignored')

    assert cli('-i', src, '-o', out, *arch_args(weights), '--tile', 4, '--tile-pad', 20, '--suffix', '_x4') == 1
    err = capsys.readouterr().err
    assert 'skipped 1 file: ' in err and 'broken.png' in err
    assert sorted(p.name for p in out.iterdir()) == ['deep_x4.png', 'grey_x4.png', 'photo_x4.png', 'rgba_x4.png']

    grey = read(out / 'grey_x4.png')
    assert grey.shape == (36, 28) and grey.dtype == np.uint8
    rgba_out = read(out / 'rgba_x4.png')
    assert rgba_out.shape == (24, 20, 4) and rgba_out.dtype == np.uint8
    assert (rgba_out[:8, :, 3] == 0).all() and (rgba_out[-8:, :, 3] == 255).all()
    assert read(out / 'photo_x4.png').shape == (32, 40, 3)

    deep_out = read(out / 'deep_x4.png')
    assert deep_out.shape == (20, 24, 3) and deep_out.dtype == np.uint16
    rgb = torch.from_numpy(deep[..., ::-1].astype(np.float32) / 65535).permute(2, 0, 1)[None]  # BGR file → RGB net
    expected = upscale(rrdb, rgb, scale=4)[0].permute(1, 2, 0).numpy()[..., ::-1] * 65535
    assert np.abs(deep_out - expected).max() <= 1  # colour order, 16-bit scaling and rounding all right

    assert cli('-i', src / 'deep.png', '-o', out, *arch_args(weights)) == 0
    np.testing.assert_array_equal(read(out / 'deep.png'), deep_out)  # tiling with enough pad changes nothing


def test_cli_option_file_gives_the_same_image(weights, tmp_path):
    img = write(tmp_path / 'lr.png', np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8))
    opt = {
        'name': 'x',
        'scale': 4,
        'network_g': ARCH,
        'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params_ema'},  # falls back to params
    }
    (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
    assert cli('-i', img, '-o', tmp_path / 'a', '--opt', tmp_path / 'opt.yml', '--half') == 0
    assert cli('-i', img, '-o', tmp_path / 'b', *arch_args(weights), '--half') == 0
    np.testing.assert_array_equal(read(tmp_path / 'a' / 'lr.png'), read(tmp_path / 'b' / 'lr.png'))


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--weights', 'missing.pth'], 'checkpoint not found: missing.pth (option --weights)'),
        (['--arch', '{type: RRDBNet, num_in_ch: 3, num_out_ch: 3, num_blocks: 1}'], "did you mean 'num_block'?"),
        (['--arch', '{type: RRDBNett}'], "unknown arch type 'RRDBNett'"),
        (['--arch', '[1, 2]'], '--arch must be a YAML mapping'),
        (['--scale', '2'], 'not x2'),
        (['--param-key', 'params_x'], "has no key 'params_x'; it has: params"),
        (['--tile', '-1'], '--tile and --tile-pad must be >= 0'),
        (['--opt', 'options/test_rrdb.yml'], 'not allowed with argument --arch'),
        (['-i', 'nowhere'], 'input not found: nowhere'),
        (['-o', 'lr.png'], '-o lr.png is a file: give a folder for the output images'),
    ],
)
def test_cli_errors_are_one_line_with_status_2(weights, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / 'lr.png', np.zeros((4, 4, 3), np.uint8))
    base = {'-i': 'lr.png', '-o': 'out', '--weights': str(weights), '--arch': yaml.safe_dump(ARCH).strip()}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    assert cli(*(x for kv in base.items() for x in kv)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('aesop: error: ') and message in err, err
    assert not (tmp_path / 'out').exists()


def test_cli_refuses_to_overwrite_its_input(weights, tmp_path, capsys):
    img = write(tmp_path / 'lr.png', np.zeros((4, 4, 3), np.uint8))
    assert cli('-i', img, '-o', tmp_path, *arch_args(weights)) == 2
    assert 'would overwrite its input' in capsys.readouterr().err


def test_help_says_what_half_does(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--help'])
    assert exit_info.value.code == 0 and 'fp16 on CUDA, bf16 on the CPU' in capsys.readouterr().out


def test_no_images_is_one_error_line(tmp_path, capsys):
    """``aesop-infer`` (``aesop.inference:main``) on a folder without images: status 2 and one line."""
    assert main(['-i', str(tmp_path), '-o', str(tmp_path / 'o'), '--arch', '{}']) == 2
    assert (
        capsys.readouterr().err
        == f'aesop: error: no images (.png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp) in {tmp_path}\n'
    )


def test_cli_stops_on_a_non_finite_output(rrdb, tmp_path, capsys):
    state = {k: v.clone() for k, v in rrdb.state_dict().items()}
    state['conv_last.bias'][0] = float('nan')
    torch.save({'params': state}, tmp_path / 'nan.pth')
    img = write(tmp_path / 'lr.png', np.zeros((4, 4, 3), np.uint8))
    assert cli('-i', img, '-o', tmp_path / 'out', *arch_args(tmp_path / 'nan.pth')) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f'aesop: error: {img}: the output of RRDBNet from {tmp_path / "nan.pth"} is not finite (NaN or inf)'
    assert not list((tmp_path / 'out').glob('*.png'))
