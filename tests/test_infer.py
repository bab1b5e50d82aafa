"""Inference on user images: tiling, window padding, image formats, the command line and its errors."""

from __future__ import annotations

import errno
import json
import os
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
SWINIR_W8 = {**SWINIR, 'window_size': 8, 'img_size': 16, 'upsampler': 'pixelshuffle'}
DRCT = {
    'type': 'AesopDRCT',
    'upscale': 4,
    'img_size': 16,
    'window_size': 8,
    'embed_dim': 12,
    'depths': [1],
    'num_heads': [2],
    'mlp_ratio': 2,
    'gc': 4,
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


# --- hostile input (issue U): one line and status 2, never a traceback, a silent skip or a truncated result


def one_error_line(err: str) -> str:
    """The one ``aesop: error:`` line of ``err`` (progress lines may precede it; no traceback)."""
    assert 'Traceback' not in err, err
    lines = [line for line in err.splitlines() if line.startswith('aesop: error: ')]
    assert len(lines) == 1 and err.rstrip('\n').endswith(lines[0]), err
    return lines[0].removeprefix('aesop: error: ')


def disk_full(fd: int) -> None:
    raise OSError(errno.ENOSPC, 'No space left on device')


def test_a_full_disk_keeps_the_earlier_image_and_stops_with_one_line(weights, tmp_path, capsys, monkeypatch):
    """Output images are written atomically: a failed write names the file, keeps the earlier one whole, leaves no
    temporary file, and stops (status 2) with the count written before."""
    src = tmp_path / 'in'
    src.mkdir()
    for name in ('a', 'b'):
        write(src / f'{name}.png', np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8))
    out = tmp_path / 'out'
    assert cli('-i', src, '-o', out, *arch_args(weights)) == 0
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    write(src / 'a.png', np.zeros((5, 6, 3), np.uint8))  # another input: another result, if it were written
    capsys.readouterr()
    monkeypatch.setattr(os, 'fsync', disk_full)
    assert cli('-i', src, '-o', out, *arch_args(weights)) == 2
    assert one_error_line(capsys.readouterr().err) == (
        f'cannot write {out / "a.png"}: No space left on device (the previous one is kept); '
        f'0 of 2 image(s) written to {out} before'
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier  # whole, and no .a.png.tmp<pid> left


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    ('make', 'output', 'message'),
    [
        (lambda d: (d / 'notes.txt').write_text('x'), 'notes.txt/out', '-o {d}/notes.txt/out: {d}/notes.txt is a file'),
        (lambda d: None, 'lr.png', '-o {d}/lr.png is a file: give a folder'),
        (lambda d: (d / 'out').symlink_to('gone'), 'out', '-o {d}/out is a broken symlink (its target gone does not'),
        (lambda d: fifo(d / 'out'), 'out', '-o {d}/out is a named pipe: give a folder for the output images'),
        (lambda d: (d / 'out' / 'lr.png').mkdir(parents=True), 'out', '{d}/out/lr.png is a folder: it cannot be'),
    ],
    ids=['under-a-file', 'a-file', 'broken-link', 'named-pipe', 'image-name-is-a-folder'],
)
def test_output_paths_that_are_not_a_folder_are_one_line(weights, tmp_path, capsys, make, output, message):
    write(tmp_path / 'lr.png', np.zeros((4, 4, 3), np.uint8))
    make(tmp_path)
    assert cli('-i', tmp_path / 'lr.png', '-o', tmp_path / output, *arch_args(weights)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and one_error_line(err).startswith(message.format(d=tmp_path)), err


def test_links_pipes_and_devices_in_the_input_folder_are_skipped_by_name(weights, tmp_path, capsys):
    """Broken and looping symlinks, a named pipe (never opened: reading it would block) and a folder named like an
    image: the first three are skipped by name with status 1, as a corrupt image; the folder is not an input."""
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    write(src / 'good.png', np.zeros((4, 4, 3), np.uint8))
    (src / 'broken.png').symlink_to('gone.png')
    (src / 'loop1.png').symlink_to('loop2.png')
    (src / 'loop2.png').symlink_to('loop1.png')
    fifo(src / 'pipe.png')
    (src / 'folder.png').mkdir()
    assert cli('-i', src, '-o', out, *arch_args(weights)) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err and err.splitlines()[-1] == (
        f'aesop: skipped 4 files: {src / "broken.png"} (a broken symlink (its target gone.png does not exist)); '
        f'{src / "loop1.png"} (a symlink loop (it leads back to itself through loop2.png)); '
        f'{src / "loop2.png"} (a symlink loop (it leads back to itself through loop1.png)); '
        f'{src / "pipe.png"} (a named pipe)'
    )
    assert [p.name for p in out.iterdir()] == ['good.png']


@pytest.mark.parametrize(
    ('make', 'message'),
    [
        (lambda p: fifo(p), '-i {p} is a named pipe: give an image or a folder of images'),
        (lambda p: p.symlink_to(p), '-i {p} is a symlink loop (it leads back to itself through {p})'),
        (lambda p: Path('/dev/null'), '-i /dev/null is a character device: give an image or a folder of images'),
    ],
    ids=['named-pipe', 'symlink-loop', 'device'],
)
def test_an_input_that_is_neither_an_image_nor_a_folder_is_one_line(weights, tmp_path, capsys, make, message):
    path = make(tmp_path / 'lr.png') or tmp_path / 'lr.png'
    assert cli('-i', path, '-o', tmp_path / 'out', *arch_args(weights)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and one_error_line(err).startswith(message.format(p=path)), err
    assert not (tmp_path / 'out').exists()


def onnx_model(path: Path) -> Path:
    """A one-node ONNX model (Identity), as ``aesop-export`` or any exporter writes one."""
    onnx = pytest.importorskip('onnx')
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 'H', 'W'])
    y = helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, 3, 'H', 'W'])
    graph = helper.make_graph([helper.make_node('Identity', ['input'], ['output'])], 'g', [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)]), str(path))
    return path


NOT_CHECKPOINTS = [
    ('weights', lambda p: p.mkdir(), 'checkpoint {p} (option --weights) is a folder, not a checkpoint file'),
    ('weights.pth', fifo, 'checkpoint {p} (option --weights) is a named pipe, not a checkpoint file'),
    ('w.pth', lambda p: p.symlink_to('gone.pth'), 'checkpoint {p} (option --weights) is a broken symlink'),
    ('g.onnx', onnx_model, '{p} (option --weights) is an ONNX model (opset 18), not a PyTorch checkpoint: ONNX '),
    ('g.pth', onnx_model, '{p} (option --weights) is an ONNX model (opset 18), not a PyTorch checkpoint'),
    ('g.safetensors', onnx_model, '{p} (option --weights) is an ONNX model (opset 18)'),
    ('empty.pth', lambda p: p.write_bytes(b''), '{p} (option --weights) is an empty file (0 bytes), not a checkpoint'),
    ('lr.png', lambda p: write(p, np.zeros((2, 2, 3), np.uint8)), '{p} (option --weights) is a PNG image, not a'),
    ('opt.yml', lambda p: p.write_text(yaml.safe_dump({'network_g': ARCH})), '{p} (option --weights) is a YAML option'),
]


@pytest.mark.parametrize(
    ('name', 'make', 'message'),
    NOT_CHECKPOINTS,
    ids=[
        'folder',
        'named-pipe',
        'broken-link',
        'onnx',
        'onnx-as-pth',
        'onnx-as-safetensors',
        'empty',
        'image',
        'option-file',
    ],
)
@pytest.mark.parametrize('detected', [False, True], ids=['arch', 'detected'])
def test_weights_that_are_not_a_checkpoint_say_what_they_are(tmp_path, capsys, name, make, message, detected):
    """Not "checkpoint not found" for a folder, nor advice about unpickling for an ONNX model or an image."""
    img = write(tmp_path / 'in.png', np.zeros((4, 4, 3), np.uint8))
    path = tmp_path / name
    make(path)
    arch = [] if detected else ['--arch', json.dumps(ARCH)]
    assert cli('-i', img, '-o', tmp_path / 'out', '--weights', path, *arch) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and one_error_line(err).startswith(message.format(p=path)), err
    assert 'unpickling' not in err and 'not found' not in err


def padded_by_hand(x: torch.Tensor, side: int) -> torch.Tensor:
    """(N, C, h, w) mirrored with the edge repeated (0 1 2 2 1 0 0 1 …) up to ``side`` on each shorter side."""
    for dim in (2, 3):
        size = x.shape[dim]
        if size < side:
            period = [*range(size), *reversed(range(size))]
            x = x.index_select(dim, torch.tensor([period[i % len(period)] for i in range(side)]))
    return x


@pytest.mark.parametrize('arch', [SWINIR_W8, DRCT], ids=['swinir', 'drct'])
@pytest.mark.parametrize('detected', [True, False], ids=['spandrel', 'own'])
def test_tiny_images_through_window_padded_archs(arch, detected, tmp_path, capsys):
    """1x1 and 3x5 images (and 2-px tiles) through SwinIR / DRCT, detected by spandrel or built from the options:
    the output is scale x the input, finite, and what the network gives on the input padded by hand."""
    from aesop.inference import detect_generator

    net = build_network(dict(arch)).eval()
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'net.pth')
    src = tmp_path / 'in'
    src.mkdir()
    rng = np.random.default_rng(0)
    images = {(h, w): rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((1, 1), (3, 5), (9, 11))}
    for (h, w), image in images.items():
        write(src / f'{h}x{w}.png', image)
    source = [] if detected else ['--arch', json.dumps(arch)]
    for tile in ('0', '2'):
        out = tmp_path / f'out{tile}'
        assert (
            cli('-i', src, '-o', out, '--weights', tmp_path / 'net.pth', *source, '--tile', tile, '--tile-pad', 0) == 0
        )
        for (h, w), _ in images.items():
            sr = read(out / f'{h}x{w}.png')
            assert sr.shape == (4 * h, 4 * w, 3), (tile, h, w)
    if detected:
        gen = detect_generator(tmp_path / 'net.pth', device=torch.device('cpu'))
    else:
        gen = load_generator(arch, tmp_path / 'net.pth', scale=4, param_key='params_ema')
    # spandrel's SwinIR: no window outside but 8 px at least; spandrel's DRCT: multiples of 16; this project's
    # SwinIR: multiples of its window; its DRCT pads inside itself (a 1-px side replicated): nothing outside
    side = max(gen.min_side, gen.window or 1)
    assert (gen.window, gen.min_side) == {
        (True, 'SwinIR'): (None, 8),
        (True, 'AesopDRCT'): (16, 1),
        (False, 'SwinIR'): (8, 1),
        (False, 'AesopDRCT'): (None, 1),
    }[detected, arch['type']]
    for h, w in ((1, 1), (3, 5)):
        rgb = torch.from_numpy(images[h, w][..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            expected = gen.net(padded_by_hand(rgb, side))[0, :, : 4 * h, : 4 * w].clamp(0, 1)
        expected = expected.permute(1, 2, 0).numpy()[..., ::-1] * 255
        assert np.abs(read(tmp_path / 'out0' / f'{h}x{w}.png') - expected).max() <= 0.51


@pytest.mark.parametrize('make', [lambda p: p.mkdir(), fifo], ids=['folder', 'named-pipe'])
def test_an_option_file_that_is_not_a_file_is_one_line(tmp_path, capsys, make):
    """``--opt`` naming a named pipe blocked the reader forever; a folder got errno's words."""
    img = write(tmp_path / 'lr.png', np.zeros((4, 4, 3), np.uint8))
    make(tmp_path / 'opt.yml')
    kind = 'a folder' if (tmp_path / 'opt.yml').is_dir() else 'a named pipe'
    assert cli('-i', img, '-o', tmp_path / 'out', '--opt', tmp_path / 'opt.yml') == 2
    err = capsys.readouterr().err
    assert (
        err.count('\n') == 1 and one_error_line(err) == f'option file {tmp_path / "opt.yml"} is {kind}, not a YAML file'
    )
