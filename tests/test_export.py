"""Export (safetensors, ONNX checked with onnxruntime) and arch detection from a state dict alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from conftest import TINY_AE, TINY_RRDB
from test_infer import DRCT, SWINIR_W8, disk_full, fifo, one_error_line, onnx_model, tiny_net

from aesop.archs.autoencoder_arch import load_frozen_autoencoder
from aesop.archs.detect import detect_arch
from aesop.errors import AesopError
from aesop.export import main as export_main
from aesop.inference import detect_generator, load_generator, upscale
from aesop.weights import load_weights


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


@pytest.mark.heavy
@pytest.mark.parametrize(
    'arch',
    [TINY_RRDB, SWINIR_W8, DRCT, {**TINY_AE, 'decoder': {'type': 'MSRResNet', 'num_feat': 16, 'num_block': 1}}],
    ids=['rrdb', 'swinir', 'drct', 'autoencoder'],  # ψ's encoder (its RRDB decoder: the rrdb case's network)
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


# --- hostile input (issue U): one line and status 2, never a traceback, a lie or a truncated result


def export(*args: str | Path) -> int:
    return export_main([str(a) for a in args])


@pytest.fixture
def rrdb_weights(tmp_path) -> Path:
    _checkpoint(TINY_RRDB, tmp_path / 'g.pth')
    return tmp_path / 'g.pth'


@pytest.mark.parametrize('opset', ['1000', '29', '16'])
def test_opsets_the_exporter_cannot_write_are_refused(rrdb_weights, tmp_path, capsys, opset):
    """torch.onnx logs a converter traceback for an opset onnx does not know and writes opset 18: refused first."""
    out = tmp_path / 'g.onnx'
    out.write_bytes(b'earlier')
    assert export('--weights', rrdb_weights, '--format', 'onnx', '--opset', opset, '-o', out) == 2
    err = capsys.readouterr().err
    import onnx

    newest = onnx.defs.onnx_opset_version()
    why = 'LayerNorm, used by SwinIR/DRCT, needs 17' if opset == '16' else 'the newest the installed onnx knows'
    assert err.count('\n') == 1 and one_error_line(err) == f'--opset {opset} cannot be written: 17 to {newest} ({why})'
    assert out.read_bytes() == b'earlier'


@pytest.mark.heavy
def test_onnx_says_the_opset_in_the_file_and_a_full_disk_keeps_the_earlier_one(
    rrdb_weights, tmp_path, capsys, monkeypatch
):
    """The opset printed is read back from the file; a write that fails names the file and keeps the earlier one;
    an opset the converter silently did not reach (its fallback: opset 18) is refused, nothing written."""
    import onnx

    out = tmp_path / 'g.onnx'
    programs = []
    monkeypatch.setattr(
        torch.onnx, 'export', lambda *a, export=torch.onnx.export, **k: programs.append(export(*a, **k)) or programs[-1]
    )
    assert export('--weights', rrdb_weights, '--format', 'onnx', '--opset', '19', '--no-check', '-o', out) == 0
    assert 'wrote ' + str(out) + ' (RRDBNet x4, opset 19, dynamic N/H/W)' in capsys.readouterr().err
    assert [o.version for o in onnx.load(str(out)).opset_import if o.domain == ''] == [19]
    earlier = out.read_bytes()

    monkeypatch.setattr(torch.onnx, 'export', lambda *a, **k: programs[0])  # the same graph again: the write is new
    monkeypatch.setattr(os, 'fsync', disk_full)
    assert export('--weights', rrdb_weights, '--format', 'onnx', '--opset', '19', '--no-check', '-o', out) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) == f'cannot write {out}: No space left on device (the previous one is kept)'
    monkeypatch.undo()
    assert out.read_bytes() == earlier and sorted(p.name for p in tmp_path.iterdir()) == ['g.onnx', 'g.pth']

    monkeypatch.setattr(onnx.defs, 'onnx_opset_version', lambda: 1000)  # the range check passed: the converter fails
    assert export('--weights', rrdb_weights, '--format', 'onnx', '--opset', '29', '--no-check', '-o', out) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) == f'ONNX export of RRDBNet: torch.onnx made opset 18, not --opset 29; {out} not written'
    assert out.read_bytes() == earlier


def test_safetensors_on_a_full_disk_keeps_the_earlier_file(rrdb_weights, tmp_path, capsys, monkeypatch):
    out = tmp_path / 'g.safetensors'
    out.write_bytes(b'earlier')
    monkeypatch.setattr(os, 'fsync', disk_full)
    assert export('--weights', rrdb_weights, '--format', 'safetensors', '-o', out) == 2
    err = capsys.readouterr().err
    assert one_error_line(err) == f'cannot write {out}: No space left on device (the previous one is kept)'
    assert out.read_bytes() == b'earlier' and sorted(p.name for p in tmp_path.iterdir()) == ['g.pth', 'g.safetensors']


@pytest.mark.parametrize('fmt', ['onnx', 'safetensors'])
@pytest.mark.parametrize(
    ('make', 'output', 'message'),
    [
        (
            lambda d: (d / 'notes.txt').write_text('x'),
            'notes.txt/g.{fmt}',
            '-o {d}/notes.txt/g.{fmt}: {d}/notes.txt is a file, not a folder',
        ),
        (
            lambda d: (d / 'x').symlink_to('gone'),
            'x/g.{fmt}',
            '-o {d}/x/g.{fmt}: {d}/x is a broken symlink (its target gone does not exist), not a folder',
        ),
        (lambda d: (d / 'out').mkdir(), 'out', '-o {d}/out is a folder: give the output file'),
        (lambda d: fifo(d / 'out'), 'out', '-o {d}/out is a named pipe: give the output file'),
        (lambda d: None, 'g.pth', '-o {d}/g.pth is the --weights file: write the export elsewhere'),
        (lambda d: None, 'g.pt', '-o {d}/g.pt: --format {fmt} writes a .{fmt} file, not a .pt one'),
    ],
    ids=['under-a-file', 'under-a-broken-link', 'a-folder', 'a-named-pipe', 'the-weights', 'another-format'],
)
def test_output_paths_that_are_not_a_file_are_one_line(rrdb_weights, tmp_path, capsys, fmt, make, output, message):
    make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert export('--weights', rrdb_weights, '--format', fmt, '-o', tmp_path / output.format(fmt=fmt)) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and one_error_line(err) == message.format(d=tmp_path, fmt=fmt), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file, nothing created


def test_an_onnx_model_as_weights_says_what_reads_it(tmp_path, capsys):
    model = onnx_model(tmp_path / 'g.onnx')
    assert export('--weights', model, '--format', 'safetensors', '-o', tmp_path / 'g.safetensors') == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and one_error_line(err) == (
        f'{model} (option --weights) is an ONNX model (opset 18), not a PyTorch checkpoint: ONNX runtimes such as '
        'onnxruntime run it; this project reads .pth and .safetensors weights'
    )


def test_atomic_write_under_a_file_is_one_line_and_leaves_nothing(tmp_path):
    """The temporary file's clean-up must not raise in its turn (NotADirectoryError) when the folder is a file."""
    from aesop.weights import atomic_write

    (tmp_path / 'notes.txt').write_text('x')
    with pytest.raises(AesopError, match=r'^cannot write .*notes\.txt/g\.onnx: Not a directory$'):
        atomic_write(tmp_path / 'notes.txt' / 'g.onnx', b'data')
    assert [p.name for p in tmp_path.iterdir()] == ['notes.txt']
