"""Export (safetensors, ONNX checked with onnxruntime) and arch detection from a state dict alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from conftest import TINY_AE, TINY_RRDB
from test_infer import SWINIR, tiny_net

from aesop.archs.autoencoder_arch import load_frozen_autoencoder
from aesop.archs.detect import detect_arch
from aesop.errors import AesopError
from aesop.export import main as export_main
from aesop.inference import detect_generator, load_generator, upscale
from aesop.weights import load_weights

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
SWINIR_W8 = {**SWINIR, 'window_size': 8, 'img_size': 16, 'upsampler': 'pixelshuffle'}


def _checkpoint(arch: dict, path: Path, key: str = 'params_ema') -> torch.nn.Module:
    net = tiny_net(arch) if arch['type'] == 'RRDBNet' else build_network(dict(arch)).eval()
    torch.save({key: net.state_dict()}, path)
    return net


def test_safetensors_round_trip_infer_and_psi(tmp_path, capsys):
    """A ψ checkpoint → safetensors (arch in the metadata) → loaded strictly by the loss's loader, equal outputs."""
    from safetensors import safe_open

    ae = build_network(dict(TINY_AE)).eval()
    torch.save({'params_ema': ae.state_dict()}, tmp_path / 'ae.pth')
    out = tmp_path / 'psi.safetensors'
    assert export_main(['--weights', str(tmp_path / 'ae.pth'), '--format', 'safetensors', '-o', str(out)]) == 0
    assert 'detected AesopAutoEncoder (this project)' in capsys.readouterr().err
    with safe_open(str(out), 'pt') as f:
        meta = f.metadata()
    assert meta['aesop.scale'] == '1' and json.loads(meta['aesop.arch'])['decoder']['num_block'] == 1
    psi = load_frozen_autoencoder(json.loads(meta['aesop.arch']), out, param_key='params_ema')
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(psi(x), ae(x))

    rrdb = _checkpoint(TINY_RRDB, tmp_path / 'g.pth')
    half = tmp_path / 'g16.safetensors'
    assert (
        export_main(['--weights', str(tmp_path / 'g.pth'), '--format', 'safetensors', '--half', '-o', str(half)]) == 0
    )
    again = build_network(dict(TINY_RRDB))
    load_weights(again, half, param_key='params', strict=True)  # the key does not apply to safetensors
    for (name, a), b in zip(rrdb.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a.half().float(), b), name


@pytest.mark.parametrize(
    'arch',
    [TINY_RRDB, SWINIR_W8, DRCT, TINY_AE],
    ids=['rrdb', 'swinir', 'drct', 'autoencoder'],
)
def test_onnx_matches_pytorch_on_other_sizes(arch, tmp_path, capsys):
    """ONNX with dynamic N/H/W and the padding in the graph: onnxruntime equals PyTorch ≤ 1e-4 on sizes
    other than the traced one, including sizes that are not multiples of the window."""
    import onnxruntime as ort

    _checkpoint(arch, tmp_path / 'net.pth')
    out = tmp_path / 'net.onnx'
    inline = json.dumps(arch)
    assert (
        export_main(['--weights', str(tmp_path / 'net.pth'), '--arch', inline, '--format', 'onnx', '-o', str(out)]) == 0
    )
    err = capsys.readouterr().err
    reported = float(err.split('max abs error ')[1].split()[0])
    assert reported <= 1e-4
    # an independent check on yet another size, against the PyTorch path of inference (upscale)
    gen = load_generator(arch, tmp_path / 'net.pth', scale=None, param_key='params_ema')
    x = torch.rand(3, 3, 19, 26) if arch['type'] != 'AesopAutoEncoder' else torch.rand(3, 3, 18, 26)
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    (got,) = session.run(None, {'input': x.numpy()})
    ref = upscale(gen.net, x, scale=gen.scale, window=gen.window).numpy()
    assert got.shape == ref.shape
    assert np.abs(np.clip(got, 0, 1) - ref).max() <= 1e-4


def test_detection_of_this_projects_archs():
    """ψ (both decoders, both encoders) and basicsr's RRDBNet at any growth width: strict loads of the result."""
    cases = [
        dict(TINY_AE),
        {**TINY_AE, 'scale': 2, 'encoder': 'bicubic', 'decoder': {**TINY_RRDB, 'scale': 2}},
        {**TINY_AE, 'decoder': {'type': 'MSRResNet', 'num_feat': 16, 'num_block': 2, 'upscale': 4}},
        TINY_RRDB,
        {**TINY_RRDB, 'scale': 2},
    ]
    for arch in cases:
        net = build_network(dict(arch))
        detected = detect_arch(net.state_dict())
        build_network(detected).load_state_dict(net.state_dict(), strict=True)
        assert detected['type'] == arch['type']
    assert detect_arch({'conv.weight': torch.zeros(1)}) is None


def test_spandrel_detection_equals_this_projects_swinir(tmp_path, capsys):
    """A SwinIR checkpoint without options: spandrel's network, padded as ours, equals basicsr's SwinIR."""
    net = build_network(dict(SWINIR_W8)).eval()
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'swinir.pth')
    gen = detect_generator(tmp_path / 'swinir.pth', device=torch.device('cpu'))
    assert 'detected SwinIR x4 with spandrel' in capsys.readouterr().err
    ours = load_generator(SWINIR_W8, tmp_path / 'swinir.pth', scale=4, param_key='params_ema')
    x = torch.rand(1, 3, 16, 24)  # multiples of the window: no padding on either side
    assert torch.equal(upscale(gen.net, x, scale=gen.scale, window=gen.window), upscale(ours.net, x, scale=4))


def test_detection_refuses_unknown_weights(tmp_path):
    torch.save({'params': {'foo.weight': torch.zeros(3, 3)}}, tmp_path / 'x.pth')
    with pytest.raises(AesopError, match='cannot tell the architecture'):
        detect_generator(tmp_path / 'x.pth', param_key='params')
