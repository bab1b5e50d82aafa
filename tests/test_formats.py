"""Checkpoint formats: networks saved as safetensors (``path.save_format``), and traiNNer-redux's ψ read and written."""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path

import pytest
import torch
from basicsr.archs import build_network
from conftest import TINY_AE, TINY_RRDB, write_yaml
from spandrel.architectures.__arch_helpers.block import RRDB  # the block traiNNer-redux's AutoEncoder builds
from spandrel.architectures.ESRGAN import ESRGAN  # what traiNNer-redux's `esrgan` decoder builds
from test_robustness import ae_opt, train
from torch import nn
from torch.nn import functional as F

from aesop.archs.autoencoder_arch import load_frozen_autoencoder
from aesop.archs.detect import detect_arch
from aesop.archs.trainner import permute_trunk, to_trainner, trunk_order, unshuffle_order
from aesop.errors import AesopError
from aesop.export import main as export_main
from aesop.losses import AesopLoss
from aesop.models.checkpoint import where_to_resume
from aesop.pipeline import check_resume
from aesop.weights import load_weights, read_checkpoint, save_checkpoint

# ψ as traiNNer-redux can hold it: 2 encoder RRDBs and an RRDBNet decoder, growth 32 (nf 16: nf/s² = 1 at ×4)
DECODER = {**TINY_RRDB, 'num_grow_ch': 32}
PSI = {'type': 'AesopAutoEncoder', 'scale': 4, 'decoder': DECODER, 'num_block': 2}


# ---- path.save_format: safetensors ----


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_load_weights_gives_the_same_tensors_from_pth_and_safetensors(tmp_path):
    """One ψ (its encoder registered twice: shared tensors) and its EMA saved both ways: every param key loads the
    same tensors, params_ema falls back to params alike, and a missing key is refused alike."""
    nets = [build_network(dict(TINY_AE)) for _ in range(2)]
    checkpoint = {'params': nets[0].state_dict(), 'params_ema': nets[1].state_dict()}
    for suffix in ('pth', 'safetensors'):
        save_checkpoint(checkpoint, tmp_path / f'ae.{suffix}')
        save_checkpoint({'params': checkpoint['params']}, tmp_path / f'g_only.{suffix}')
    for key in ('params', 'params_ema'):
        loaded = []
        for suffix in ('pth', 'safetensors'):
            net = build_network(dict(TINY_AE))
            load_weights(net, tmp_path / f'ae.{suffix}', param_key=key)
            loaded.append(net.state_dict())
        assert all(torch.equal(loaded[0][k], loaded[1][k]) for k in loaded[0])
        assert all(torch.equal(loaded[1][k], v) for k, v in checkpoint[key].items())
    for suffix in ('pth', 'safetensors'):
        net = build_network(dict(TINY_AE))
        load_weights(net, tmp_path / f'g_only.{suffix}', param_key='params_ema', fallback=True)
        assert torch.equal(net.state_dict()['conv_first.0.weight'], checkpoint['params']['conv_first.0.weight'])
        with pytest.raises(AesopError, match=rf"g_only\.{suffix} has no key 'params_ema'; it has: params$"):
            load_weights(build_network(dict(TINY_AE)), tmp_path / f'g_only.{suffix}', param_key='params_ema')
    assert set(read_checkpoint(tmp_path / 'ae.safetensors')) == {'params', 'params_ema'}


def test_a_truncated_safetensors_is_one_line_naming_the_file(tmp_path, capsys):
    path = tmp_path / 'net_g_2.safetensors'
    save_checkpoint({'params': build_network(dict(TINY_AE)).state_dict()}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AesopError) as err:
        load_weights(build_network(dict(TINY_AE)), path, option='path.pretrain_network_g')
    assert '\n' not in str(err.value)
    assert str(err.value).startswith(
        f'cannot read checkpoint {path} (option path.pretrain_network_g): truncated or corrupt file ('
    )
    assert export_main(['--weights', str(path), '--format', 'safetensors', '-o', str(tmp_path / 'x.safetensors')]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'aesop: error: cannot read checkpoint {path} (option --weights)')


def test_auto_resume_takes_the_network_file_of_either_format(tmp_path):
    models = tmp_path / 'models'
    models.mkdir()
    save_checkpoint({'params': build_network(dict(TINY_AE)).state_dict()}, models / 'net_g_4.safetensors')
    opt = {
        'network_g': {},
        'network_recon': {},  # frozen, read from its own file: the run saves none
        'path': {
            'models': str(models),
            'resume_state': 'x/4.state',
            'pretrain_network_recon': 'recon.pth',
            'param_key_g': 'params_ema',
        },
    }
    check_resume(opt, 4)  # a run with the default save_format: pth finds its .safetensors
    assert opt['path']['pretrain_network_g'] == str(models / 'net_g_4.safetensors')
    assert opt['path']['pretrain_network_recon'] == 'recon.pth' and opt['path']['param_key_g'] == 'params'
    save_checkpoint({'params': build_network(dict(TINY_AE)).state_dict()}, models / 'net_g_4.pth')
    check_resume(opt, 4)  # both there: the run's own format first
    assert opt['path']['pretrain_network_g'] == str(models / 'net_g_4.pth')
    opt['path']['save_format'] = 'safetensors'
    check_resume(opt, 4)
    assert opt['path']['pretrain_network_g'] == str(models / 'net_g_4.safetensors')
    check_resume(opt, 6)  # none there: the run's format, for the error naming it
    assert opt['path']['pretrain_network_g'] == str(models / 'net_g_6.safetensors')
    assert where_to_resume(opt) == f'the newest finite checkpoint is {models / "net_g_4.safetensors"}'


def test_a_safetensors_run_writes_safetensors_networks_and_resumes_from_them_bit_identically(tiny_data, tmp_path):
    """Two AE runs from the same seed, one per format, 2 iterations then --auto_resume to 3: the safetensors run
    writes only .safetensors networks (and .state training states), and every network it writes, resumed ones
    included, equals the .pth run's bit for bit (params and params_ema)."""
    for name, fmt in (('run_pth', 'pth'), ('run_st', 'safetensors')):
        for total_iter, args in ((2, ()), (3, ('--auto_resume',))):
            opt = ae_opt(tiny_data, name, total_iter, 1)
            opt['path']['save_format'] = fmt
            proc = train(write_yaml(opt, tmp_path / f'{name}.yml'), tmp_path, *args)
            assert proc.returncode == 0, proc.stdout
        assert 'Resuming training from epoch: 0, iter: 2.' in proc.stdout
        assert f'Set pretrain_network_g to {tmp_path}/experiments/{name}/models/net_g_2.{fmt}' in proc.stdout
    st, pth = (tmp_path / 'experiments' / name for name in ('run_st', 'run_pth'))
    assert _files(st / 'models') == [f'net_g_{i}.safetensors' for i in (1, 2, 3, 'latest')]
    assert _files(st / 'training_states') == ['1.state', '2.state', '3.state']
    assert not (tmp_path / 'safetensors').exists()  # path.save_format is no folder to make
    for label in (1, 2, 3, 'latest'):
        ours, theirs = (
            read_checkpoint(st / 'models' / f'net_g_{label}.safetensors'),
            read_checkpoint(pth / 'models' / f'net_g_{label}.pth'),
        )
        assert set(ours) == set(theirs) == {'params', 'params_ema'}
        for key in ours:
            assert ours[key].keys() == theirs[key].keys()
            assert all(torch.equal(ours[key][k], theirs[key][k]) for k in ours[key]), (label, key)


# ---- traiNNer-redux's ψ ----


class TrainnerAutoEncoder(nn.Module):
    """traiNNer-redux's ``AutoEncoder`` re-implemented from its description (not its code): the encoder
    Sequential(conv_first = [conv 3 → nf/s², conv nf/s² → nf/s²], PixelUnshuffle(s), body = [RRDB, RRDB],
    conv_last = [conv nf → nf, conv nf → 3]) registered as attributes and as ``encoder``, spandrel's RRDB (what it
    imports), and its ``esrgan`` decoder (spandrel's ESRGAN; at ×2 with its pixel-unshuffle input)."""

    def __init__(self, *, nf: int, scale: int, num_filters: int, num_blocks: int) -> None:
        super().__init__()
        mid = nf // scale**2
        self.conv_first = nn.Sequential(nn.Conv2d(3, mid, 3, 1, 1), nn.Conv2d(mid, mid, 3, 1, 1))
        self.down = nn.PixelUnshuffle(scale)
        self.body = nn.Sequential(RRDB(nf=nf), RRDB(nf=nf))
        self.conv_last = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.Conv2d(nf, 3, 3, 1, 1))
        self.encoder = nn.Sequential(self.conv_first, self.down, self.body, self.conv_last)
        shuffled = {'in_nc': 12, 'shuffle_factor': 2} if scale == 2 else {}
        self.decoder = ESRGAN(scale=4, num_filters=num_filters, num_blocks=num_blocks, **shuffled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _random_psi(arch: dict) -> nn.Module:
    psi = build_network(deepcopy(arch)).eval()
    with torch.no_grad():
        for param in psi.parameters():
            param.normal_(0, 0.1)  # every weight matters (basicsr initialises the RRDBs small)
    return psi


def _unshuffled_by_twos(x: torch.Tensor, scale: int) -> torch.Tensor:
    while scale > 1:
        x, scale = F.pixel_unshuffle(x, 2), scale // 2
    return x


def test_one_unshuffle_by_s_is_the_steps_by_two_in_another_channel_order():
    assert unshuffle_order(4).tolist() == [0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15]
    assert unshuffle_order(2).tolist() == [0, 1, 2, 3]  # ×2: one step either way
    for scale in (2, 4, 8):
        for channels in (1, 3):
            x = torch.rand(2, channels, 3 * scale, 5 * scale)
            order = unshuffle_order(scale, channels)
            assert torch.equal(F.pixel_unshuffle(x, scale), _unshuffled_by_twos(x, scale)[:, order])
    with pytest.raises(AesopError, match='must be a power of 2'):
        unshuffle_order(3)


@pytest.mark.parametrize('scale', [4, 2])
def test_a_psi_exported_in_trainner_layout_reads_back_identically_and_runs_as_trainner_does(scale, tmp_path, capsys):
    arch = {**PSI, 'scale': scale, 'decoder': {**DECODER, 'scale': scale}}
    psi = _random_psi(arch)
    torch.save({'params_ema': psi.state_dict()}, tmp_path / 'ae.pth')
    out = tmp_path / 'psi_trainner.safetensors'
    args = ['--weights', str(tmp_path / 'ae.pth'), '--arch', json.dumps(arch), '--format', 'safetensors']
    assert export_main([*args, '--layout', 'traiNNer', '-o', str(out)]) == 0
    err = capsys.readouterr().err
    decoder_opt = {'type': 'esrgan', 'num_filters': 16, 'num_blocks': 1}
    assert f'"scale": {scale}, "decoder_opt": {json.dumps(decoder_opt)}' in err and 'builds nf 64' in err

    # traiNNer's AutoEncoder (re-implemented here) loads the file strictly: both key sets, spandrel's keys
    theirs = TrainnerAutoEncoder(nf=16, scale=scale, num_filters=16, num_blocks=1).eval()
    theirs.load_state_dict(read_checkpoint(out), strict=True)
    assert {'conv_first.0.weight', 'encoder.0.0.weight', 'body.1.RDB3.conv5.0.bias', 'decoder.model.10.weight'} <= set(
        read_checkpoint(out)
    )
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encoder(x), psi.encode(x), rtol=0, atol=1e-5)
        torch.testing.assert_close(theirs(x), psi(x), rtol=0, atol=1e-5)

    # read back as this project's ψ (the loss's loader, the arch detected): identical outputs
    back = load_frozen_autoencoder(arch, out)
    assert all(torch.equal(back.state_dict()[k], v) for k, v in psi.state_dict().items())
    with torch.no_grad():
        assert torch.equal(back(x), psi(x))
    assert detect_arch(read_checkpoint(out)) == detect_arch(psi.state_dict())

    if scale == 4:  # the renumbered trunk is what makes it work: without it the encoders disagree
        _, order = trunk_order(psi.state_dict())
        theirs.load_state_dict(to_trainner(permute_trunk(psi.state_dict(), torch.argsort(order))), strict=True)
        with torch.no_grad():
            assert (theirs.encoder(x) - psi.encode(x)).abs().max() > 1e-3


def test_aesop_loss_takes_a_trainner_psi_as_it_is(tmp_path):
    psi = _random_psi(PSI)
    torch.save({'params_ema': psi.state_dict()}, tmp_path / 'ae.pth')
    trainner = TrainnerAutoEncoder(nf=16, scale=4, num_filters=16, num_blocks=1)  # a file traiNNer saved itself
    trainner.load_state_dict(to_trainner(psi.state_dict()))
    from safetensors.torch import save_file

    save_file({k: v.clone() for k, v in trainner.state_dict().items()}, tmp_path / 'net_ae.safetensors')
    sr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    losses = [AesopLoss(autoencoder=PSI, pretrained=str(tmp_path / f)) for f in ('ae.pth', 'net_ae.safetensors')]
    torch.testing.assert_close(losses[0](sr, hr), losses[1](sr, hr), rtol=0, atol=1e-6)
    assert (
        export_main(
            [
                '--weights',
                str(tmp_path / 'net_ae.safetensors'),
                '--format',
                'safetensors',
                '-o',
                str(tmp_path / 'ours.safetensors'),
            ]
        )
        == 0
    )  # detected (traiNNer's layout), saved in ours
    assert 'encoder.2.0.rdb1.conv1.weight' in read_checkpoint(tmp_path / 'ours.safetensors')


def test_what_does_not_convert_is_refused_in_one_line(tmp_path, capsys):
    sd = _random_psi(PSI).state_dict()
    with pytest.raises(
        AesopError, match=r"^traiNNer's encoder has 2 RRDB blocks of growth 32 on RGB images; this ψ has 1"
    ):
        to_trainner(build_network(dict(TINY_AE)).state_dict())
    bicubic = build_network({**PSI, 'encoder': 'bicubic'}).state_dict()
    with pytest.raises(AesopError, match=r'^a ψ with the bicubic encoder'):
        to_trainner(bicubic)
    srresnet = {'type': 'MSRResNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'upscale': 4}
    with pytest.raises(AesopError, match=r"ψ's decoder must be basicsr's RRDBNet"):
        to_trainner(build_network({**PSI, 'decoder': srresnet}).state_dict())

    theirs = to_trainner(sd)
    changed = {**theirs, 'encoder.2.0.RDB1.conv1.0.bias': theirs['body.0.RDB1.conv1.0.bias'] + 1}
    torch.save(changed, tmp_path / 'two.pth')
    with pytest.raises(AesopError, match=r'two\.pth as AesopAutoEncoder: encoder\.2\.0\.RDB1\.conv1\.0\.bias differs'):
        load_weights(build_network(dict(PSI)), tmp_path / 'two.pth', param_key=None)
    x3 = TrainnerAutoEncoder(nf=18, scale=3, num_filters=16, num_blocks=1)  # traiNNer's ×3: PixelUnshuffle(3)
    torch.save(x3.state_dict(), tmp_path / 'x3.pth')
    with pytest.raises(
        AesopError,
        match=r'x3\.pth as AesopAutoEncoder: an encoder that unshuffles 2 channels into 18 '
        r'\(by 3\) does not convert',
    ):
        load_weights(build_network(dict(PSI)), tmp_path / 'x3.pth', param_key=None)

    torch.save({'params': sd}, tmp_path / 'ae.pth')
    args = ['--weights', str(tmp_path / 'ae.pth'), '--layout', 'traiNNer', '-o', str(tmp_path / 'x.onnx')]
    assert export_main([*args, '--format', 'onnx']) == 2
    assert capsys.readouterr().err.strip() == (
        'aesop: error: --layout traiNNer writes safetensors (what traiNNer-redux reads ψ from): --format safetensors'
    )
    torch.save({'params': build_network(dict(TINY_RRDB)).state_dict()}, tmp_path / 'g.pth')
    rrdb = ['--weights', str(tmp_path / 'g.pth'), '--format', 'safetensors', '--layout', 'traiNNer']
    assert export_main([*rrdb, '-o', str(tmp_path / 'g.safetensors')]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        'aesop: error: --layout traiNNer writes an auto-encoder ψ (AesopAutoEncoder), not RRDBNet'
    )
