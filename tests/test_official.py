"""The authors' release: its names, keys and semantics, each against an independent reference, and
option files in its schema through train.py and test.py."""

from __future__ import annotations

import importlib.util
import re
import sys
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_metric
from conftest import REPO, TINY_AE, TINY_RRDB, build_model, load_yaml, run_entry, run_subprocess, write_yaml

from aesop.archs.rrdbnet_arch import CheckpointedSequential
from aesop.errors import AesopError
from aesop.metrics import calculate_dists, calculate_lpips
from aesop.official import aesop_psnr_pytorch, aesop_ssim_pytorch, translate_options
from aesop.options import load_options
from aesop.weights import load_weights

RNG = np.random.default_rng(0)
TINY_DRCT = {
    'type': 'DRCT',
    'upscale': 4,
    'img_size': 16,
    'window_size': 4,
    'embed_dim': 12,
    'depths': [1],
    'num_heads': [2],
    'gc': 4,
    'mlp_ratio': 2,
}


def photo(h: int = 48, w: int = 40) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


# BT.601's Y weights as basicsr's rgb2ycbcr_pt holds them (a float32 tensor cast to the image's float64)
Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float32).astype(np.float64)


def y01(img: np.ndarray) -> np.ndarray:
    """BT.601 Y in [0, 1] of an 8-bit BGR image, in float64, written out."""
    return (img[..., ::-1].astype(np.float64) / 255 @ Y_WEIGHTS + 16) / 255


def psnr01(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(1 / (np.mean((a - b) ** 2) + 1e-8))


# ---------------------------------------------------------------- metrics


def test_psnr_pytorch_is_the_release_formula():
    a, b = photo(), photo()
    expected = psnr01(y01(a)[4:-4, 4:-4], y01(b)[4:-4, 4:-4])
    assert aesop_psnr_pytorch(a, b, crop_border=4) == pytest.approx(expected, abs=1e-9)  # Y by default
    rgb = psnr01(a[..., ::-1] / 255.0, b[..., ::-1] / 255.0)
    assert aesop_psnr_pytorch(a, b, test_y_channel=False) == pytest.approx(rgb, abs=1e-9)
    assert aesop_psnr_pytorch(a, a) == pytest.approx(80.0)  # 10·log10(1 / 1e-8), not basicsr's inf


@pytest.mark.parametrize('y', [False, True])
def test_ssim_pytorch_equals_scikit_image(y):
    from skimage.metrics import structural_similarity

    a, b = photo(), photo()
    noisy = np.clip(a.astype(int) + RNG.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    for other in (b, noisy):
        x1, x2 = (y01(x) * 255 if y else x.astype(np.float64) for x in (a, other))
        expected = structural_similarity(
            x1[3:-3, 3:-3],
            x2[3:-3, 3:-3],
            channel_axis=None if y else 2,
            gaussian_weights=True,  # an 11 × 11 window (truncate 3.5 · σ 1.5), valid part only
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        assert aesop_ssim_pytorch(a, other, crop_border=3, test_y_channel=y) == pytest.approx(expected, abs=1e-9)


def _metrics(**entries) -> dict:
    opt = {'val': {'metrics': {name: {'type': kind} for name, kind in entries.items()}}}
    return translate_options(opt)['val']['metrics']


def test_release_metric_names_resolve_to_the_same_metrics():
    metrics = _metrics(
        lpips='calculate_lpips_pytorch',
        dists='calculate_dists_pytorch',
        niqe='calculate_niqe_pytorch',
        musiq='calculate_musiq_pytorch',
        maniqa='calculate_maniqa_pytorch',
        clipiqa='calculate_clipiqa_resnet_pytorch',
        psnr='calculate_psnr_pytorch',
    )
    assert metrics['niqe'] == {'type': 'calculate_pyiqa', 'metric': 'niqe'}
    assert metrics['musiq'] == {'type': 'calculate_pyiqa', 'metric': 'musiq'}
    assert metrics['maniqa'] == {'type': 'calculate_pyiqa', 'metric': 'maniqa'}
    assert metrics['clipiqa'] == {'type': 'calculate_pyiqa', 'metric': 'clipiqa'}  # pyiqa's CLIP-IQA is RN50
    assert metrics['psnr'] == {'type': 'aesop_psnr_pytorch'}  # the release's float64 PSNR, prefixed
    a, b = photo(), photo()
    assert calculate_metric({'img': a, 'img2': b}, metrics['lpips']) == calculate_lpips(a, b, net='alex')
    assert calculate_metric({'img': a, 'img2': b}, metrics['dists']) == calculate_dists(a, b)


def test_aepsnr_uses_the_training_loss_psi_without_rounding(tmp_path):
    ae = build_network(deepcopy(TINY_AE)).eval()
    torch.save({'params_ema': ae.state_dict()}, tmp_path / 'ae.pth')
    loss = {
        'type': 'AutoEncoderLoss',
        'autoencoder_arch': TINY_AE,
        'autoencoder_load': {'path': str(tmp_path / 'ae.pth')},
    }
    opt = {
        'train': {'aesop_opt': loss},
        'val': {'metrics': {'aepsnr': {'type': 'calculate_aepsnr_pytorch', 'crop_border': 4}}},
    }
    entry = translate_options(opt)['val']['metrics']['aepsnr']
    assert entry['type'] == 'calculate_ae_psnr' and entry['quantize'] is False
    assert entry['pretrained'] == str(tmp_path / 'ae.pth') and entry['param_key'] == 'params_ema'
    sr, hr = photo(32, 24), photo(32, 24)
    with torch.no_grad():  # ψ's float outputs, not rounded to 8 bit
        out = [ae(torch.from_numpy(x[..., ::-1] / 255.0).permute(2, 0, 1)[None].float()).double() for x in (sr, hr)]
    y = [
        (16 + torch.einsum('nchw,c->nhw', o, torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64))) / 255
        for o in out
    ]
    expected = psnr01(y[0][0, 4:-4, 4:-4].numpy(), y[1][0, 4:-4, 4:-4].numpy())
    assert calculate_metric({'img': sr, 'img2': hr}, entry) == pytest.approx(expected, abs=1e-6)
    rounded = calculate_metric({'img': sr, 'img2': hr}, {**entry, 'quantize': True})  # the project's default
    assert rounded != pytest.approx(expected, abs=1e-6)
    with pytest.raises(AesopError, match=r'val\.metrics\.aepsnr \(AE-PSNR\) needs the auto-encoder'):
        translate_options({'val': {'metrics': {'aepsnr': {'type': 'calculate_aepsnr_pytorch'}}}})


# ---------------------------------------------------------------- archs, data, options


def _input_grad(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    x = x.clone().requires_grad_(True)
    out = net(x)
    out.square().mean().backward()
    return out.detach(), x.grad, [p.grad.clone() for p in net.parameters() if p.grad is not None]


def _saved_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of ``net(x)``."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x.requires_grad_(True))
    return sum(storages.values())


@pytest.mark.parametrize('where', ['network_g', 'decoder'])
def test_use_checkpoint_same_outputs_and_gradients_less_memory(where):
    plain_arch = {**TINY_RRDB, 'num_block': 3}
    arch = {**plain_arch, 'use_checkpoint': True}
    if where == 'decoder':  # the release's AE with a checkpointed decoder
        plain_arch = {'type': 'AutoEncoder_RRDBNet', 'dec_opt': plain_arch}
        arch = {'type': 'AutoEncoder_RRDBNet', 'dec_opt': arch, 'enc_opt': {}}
    opt = translate_options({'network_g': deepcopy(arch)})
    net = build_network(opt['network_g'])
    body = (net.decoder if where == 'decoder' else net).body
    assert isinstance(body, CheckpointedSequential)
    plain = build_network(deepcopy(plain_arch))
    plain.load_state_dict(net.state_dict())  # same keys: the checkpoints are interchangeable
    x = torch.rand(2, 3, 32, 32) if where == 'decoder' else torch.rand(2, 3, 8, 8)
    out, dx, grads = _input_grad(net, x)
    ref_out, ref_dx, ref_grads = _input_grad(plain, x)
    assert torch.equal(out, ref_out) and torch.equal(dx, ref_dx)
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads, strict=True))
    assert _saved_bytes(net, x) < 0.6 * _saved_bytes(plain, x)


def test_realesrgan_dataset_without_meta_info_scans_the_gt_folder(tiny_data):
    opt = load_yaml(REPO / 'options' / 'train_aesop_realworld.yml')['datasets']['train']
    opt.update(type='RealESRGANDataset', meta_info=None, dataroot_gt=str(tiny_data / 'train' / 'HR'), gt_size=64)
    opt = translate_options({'datasets': {'train': opt}})['datasets']['train']
    from basicsr.data import build_dataset

    dataset = build_dataset({**opt, 'phase': 'train', 'scale': 4})
    expected = sorted(str(p) for p in (tiny_data / 'train' / 'HR').iterdir())
    assert type(dataset).__name__ == 'AesopRealESRGANDataset' and dataset.paths == expected
    item = dataset[0]
    assert item['gt'].shape[0] == 3 and {'kernel1', 'kernel2', 'sinc_kernel'} <= set(item)


def test_drct_loads_the_release_linear_adjust_layout(tmp_path):
    net = build_network(deepcopy(TINY_DRCT)).eval()
    conv_layout = net.state_dict()
    linear_layout = {k: v[..., 0, 0] if re.search(r'adjust\d\.weight$', k) else v for k, v in conv_layout.items()}
    assert sum(v.dim() == 2 for k, v in linear_layout.items() if 'adjust' in k) == 5
    torch.save({'params_ema': linear_layout}, tmp_path / 'release.pth')
    other = build_network(deepcopy(TINY_DRCT)).eval()
    load_weights(other, tmp_path / 'release.pth', param_key='params_ema', strict=True)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(other(x), net(x))
    assert other.state_dict()['layers.0.adjust1.weight'].dim() == 4  # saved in the DRCT authors' layout
    other.load_state_dict(linear_layout)  # nn.Module's own loading takes it too


def _esrgan_2019(state: dict) -> dict:
    """basicsr's RRDBNet keys → ESRGAN's 2019 layout (RRDB_trunk / trunk_conv / upconv / HRconv)."""
    names = {'body.': 'RRDB_trunk.', 'conv_body.': 'trunk_conv.', 'conv_up1.': 'upconv1.', 'conv_up2.': 'upconv2.'}
    names['conv_hr.'] = 'HRconv.'
    out = {}
    for key, value in state.items():
        for new, old in names.items():
            if key.startswith(new):
                key = old + key.removeprefix(new)
        out[re.sub(r'\.rdb(\d)\.', r'.RDB\1.', key)] = value
    return out


def test_legacy_esrgan_layouts_load_and_match_spandrel(tmp_path):
    from spandrel import ModelLoader

    arch = {'type': 'RRDBNet_LEGACY', 'num_feat': 16, 'num_block': 1, 'num_grow_ch': 32}
    x = torch.rand(1, 3, 10, 12)
    # 2018 layout (model.0 / model.1.sub…): spandrel's ESRGAN keeps it, so its random net is the reference
    reference = ModelLoader().load_from_state_dict(
        _esrgan_2019(build_network(deepcopy(TINY_RRDB) | {'num_grow_ch': 32}).state_dict())
    )
    assert reference.architecture.id == 'ESRGAN'
    model_layout = reference.model.state_dict()
    assert any(k.startswith('model.1.sub.') for k in model_layout)
    torch.save(model_layout, tmp_path / 'RRDB_ESRGAN_x4.pth')
    ours = build_network(deepcopy(arch)).eval()
    load_weights(ours, tmp_path / 'RRDB_ESRGAN_x4.pth', param_key=None, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference.model.eval()(x), rtol=0, atol=1e-6)
    # 2019 layout, and the net saves basicsr's keys
    state_2019 = _esrgan_2019(ours.state_dict())
    again = build_network(deepcopy(arch)).eval()
    again.load_state_dict(state_2019)
    with torch.no_grad():
        assert torch.equal(again(x), ours(x))
    assert set(again.state_dict()) == set(build_network({**TINY_RRDB, 'num_grow_ch': 32}).state_dict())


def test_spsr_has_the_original_key_layout():
    """Checked once against spandrel 0.2's SPSR (removed from later spandrel): strict load, equal outputs
    (see docs/official.md); here the layout that loader detects."""
    net = build_network({'type': 'SPSRNet', 'in_nc': 3, 'out_nc': 3, 'nf': 8, 'nb': 20, 'upscale': 4})
    state = net.state_dict()
    assert state['model.0.weight'].shape == (8, 3, 3, 3) and state['f_HR_conv1.0.weight'].shape == (3, 8, 3, 3)
    assert 'model.1.sub.20.weight' in state and 'model.1.sub.21.weight' not in state  # 20 RRDBs + LR conv
    assert {'get_g_nopadding.weight_h', 'HR_conv0_new.0.weight', 'b_block_4.RDB3.conv5.0.weight'} <= set(state)
    assert net(torch.rand(1, 3, 6, 5)).shape == (1, 3, 24, 20)


def test_wandb_without_the_package_is_one_warning(tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'wandb' else find_spec(name, *a))
    opt = {'name': 'run', 'datasets': {}, 'path': {}, 'logger': {'use_tb_logger': True, 'wandb': {'project': 'aesop'}}}
    load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)
    assert opt['logger']['wandb']['project'] is None
    assert "wandb is not installed (pip install -e '.[wandb]')" in capsys.readouterr().err
    monkeypatch.undo()
    opt['logger'] = {'use_tb_logger': False, 'wandb': {'project': 'aesop'}}
    with pytest.raises(AesopError, match='logger.wandb needs logger.use_tb_logger: true'):
        load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)


def _wandb_opt() -> dict:
    return {'name': 'run', 'datasets': {}, 'path': {}, 'logger': {'use_tb_logger': True, 'wandb': {'project': 'aesop'}}}


HOST = 'wandb.example.org'  # a wandb server of one's own (WANDB_BASE_URL, or `wandb login --host`)
KEY = 'k' * 40  # an API key's length


def netrc_entry(machine: str, key: str = KEY) -> str:
    return f'machine {machine}\n  login user\n  password {key}\n'  # what `wandb login` writes


CLOUD = 'api.wandb.ai'


@pytest.mark.parametrize(
    ('env', 'files', 'logged_in'),
    [
        ({}, {}, False),  # a new user: nothing
        ({'WANDB_API_KEY': KEY}, {}, True),
        ({'WANDB_IDENTITY_TOKEN_FILE': 'token'}, {}, True),
        ({}, {'.netrc': netrc_entry(CLOUD)}, True),  # after `wandb login`
        ({}, {'_netrc': netrc_entry(CLOUD)}, True),
        ({}, {'.netrc': netrc_entry('github.com')}, False),  # another machine only
        ({}, {'.netrc': f'machine {CLOUD} login user\n'}, False),  # an entry without a key
        ({}, {'.netrc': f'machine {CLOUD} login user password\n'}, False),  # an empty key
        ({}, {'.netrc': netrc_entry(CLOUD) + 'bogus\n'}, False),  # a file netrc cannot parse: no login, no crash
        ({}, {'.netrc': netrc_entry('github.com'), '_netrc': netrc_entry(CLOUD)}, False),  # the first file only
        ({'NETRC': '{home}/elsewhere'}, {'elsewhere': netrc_entry(CLOUD)}, True),
        ({'NETRC': '{home}/elsewhere'}, {'.netrc': netrc_entry(CLOUD)}, False),
        ({'WANDB_BASE_URL': f'https://{HOST}'}, {'.netrc': netrc_entry(HOST)}, True),
        ({'WANDB_BASE_URL': f'https://{HOST}'}, {'.netrc': netrc_entry(CLOUD)}, False),
        ({}, {'.config/wandb/settings': f'[default]\nbase_url = https://{HOST}\n', '.netrc': netrc_entry(HOST)}, True),
        ({'WANDB_CONFIG_DIR': '{home}/cfg'}, {'cfg/settings': f'[default]\napi_key = {KEY}\n'}, True),
        ({}, {'.config/wandb/settings': 'not an ini file'}, False),
    ],
)
def test_wandb_credentials_are_wandbs_own_sources(no_wandb_login, monkeypatch, env, files, logged_in):
    """Where ``wandb.init`` finds a login (``WANDB_API_KEY``, the netrc entry ``wandb login`` writes for the
    server, wandb's settings file): the cases by hand, and against wandb's own readers where it has them."""
    from aesop.wandb_login import wandb_host, wandb_login

    home = no_wandb_login
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(home=home))
    assert (wandb_login() is not None) is logged_in
    try:  # wandb's env and netrc readers (not the settings file: wandb caches it per process)
        from wandb.sdk.lib.wbauth import authenticate, wbnetrc
        from wandb.sdk.lib.wbauth.host_url import HostUrl
    except ImportError:  # wandb moved its internals: the hand-written cases still stand
        return
    if 'settings' not in ''.join(files):
        host = HostUrl(f'https://{wandb_host()}')
        try:
            theirs = authenticate._try_env_auth(host=host) or wbnetrc.read_netrc_auth_with_source(host=host)
        except Exception:  # noqa: BLE001  an entry without a key is an error to wandb, no login to us
            theirs = None
        assert (theirs is not None) is logged_in


def test_wandb_without_a_login_is_one_warning_and_tensorboard(no_wandb_login, tmp_path, capsys, monkeypatch):
    opt = _wandb_opt()
    load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)
    assert opt['logger']['wandb']['project'] is None  # basicsr's init_tb_loggers then skips wandb
    err = capsys.readouterr().err
    assert err.count('aesop: warning: logger.wandb is set but wandb is not logged in') == 1
    assert 'no entry for api.wandb.ai' in err and 'WANDB_MODE=offline' in err
    for name, value in (('WANDB_MODE', 'offline'), ('WANDB_MODE', 'disabled'), ('WANDB_DISABLED', 'true')):
        with monkeypatch.context() as env:
            env.setenv(name, value)  # wandb needs no login in these modes: left to wandb, as before
            opt = _wandb_opt()
            load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)
            assert opt['logger']['wandb']['project'] == 'aesop'
            assert not capsys.readouterr().err
    opt['logger']['use_tb_logger'] = False  # a file error whatever the machine: refused before the login check
    with pytest.raises(AesopError, match='logger.wandb needs logger.use_tb_logger: true'):
        load_options(opt, is_train=opt.get('is_train', True), root_path=tmp_path)


def test_a_failing_wandb_init_is_one_warning(tmp_path, capsys, monkeypatch):
    """The last guard (``WANDB_MODE=online`` without a login, a server that cannot be reached)."""
    wandb = pytest.importorskip('wandb')
    from aesop.compat import init_wandb_logger

    def init(**kwargs):
        raise wandb.errors.UsageError('No API key configured. Use `wandb login` to log in.\nmore')

    monkeypatch.setattr(wandb, 'init', init)
    opt = {'name': 'run', 'logger': {'wandb': {'project': 'aesop'}}, 'path': {'experiments_root': str(tmp_path)}}
    init_wandb_logger(opt)
    assert opt['logger']['wandb']['project'] is None
    assert capsys.readouterr().err == (
        'aesop: warning: wandb.init failed (No API key configured. Use `wandb login` to log in.): tensorboard only\n'
    )


def test_a_release_file_with_a_pyiqa_metric_stops_before_training_without_pyiqa(tiny_data, tmp_path, no_wandb_login):
    """The release's name of MUSIQ, without pyiqa (as in CI): one line at start-up, not at the first validation."""
    if importlib.util.find_spec('pyiqa') is not None:
        pytest.skip('pyiqa is installed here')
    ae = _release_ae(tiny_data)
    ae['val']['metrics']['musiq'] = {'type': 'calculate_musiq_pytorch'}
    proc = run_entry('train', write_yaml(ae, tmp_path / 'ae.yml'), tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        'aesop: error: calculate_pyiqa (option val.metrics.musiq) needs the optional package pyiqa: '
        "pip install -e '.[iqa]'"
    )
    assert not (tmp_path / 'experiments' / 'release_ae' / 'models').exists()


def test_discriminator_batchnorm_sees_real_then_fake_as_the_release(tmp_path):
    """D's running statistics after one step equal those of the release's order of D passes:
    G step real, fake; D step fake (relativistic mean), real, fake."""
    disc = {'type': 'VGGStyleDiscriminator128', 'num_in_ch': 3, 'num_feat': 4}
    opt = {
        'name': 'unit', 'is_train': True, 'dist': False, 'num_gpu': 0, 'rank': 0, 'world_size': 1, 'scale': 4,
        'model_type': 'AesopESRGANArtifactsDisModel', 'network_g': deepcopy(TINY_RRDB), 'network_d': disc,
        'path': {'models': str(tmp_path), 'training_states': str(tmp_path)},
        'train': {
            'total_iter': 10, 'optim_g': {'type': 'Adam', 'lr': 1e-3}, 'optim_d': {'type': 'Adam', 'lr': 1e-3},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 0.01},
            'gan_opt': {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.005},
        },
    }  # fmt: skip
    model = build_model(opt)
    reference = deepcopy(model.net_d).train()
    model.feed_data({'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 128, 128)})
    model.optimize_parameters(1)
    with torch.no_grad():
        for img in (model.gt, model.output, model.output, model.gt, model.output):
            reference(img)
    ours, theirs = model.net_d.state_dict(), reference.state_dict()
    stats = [k for k in ours if k.endswith(('running_mean', 'running_var'))]
    assert stats and all(torch.equal(ours[k], theirs[k]) for k in stats)


# ---------------------------------------------------------------- the release's schema end to end


def _release_ae(data: Path) -> dict:
    """An AE option file in the release's schema: its names and keys, tiny sizes."""
    return {
        'name': 'release_ae',
        'model_type': 'AEModel',
        'scale': 4,
        'num_gpu': 1,  # a GPU file run on a machine without one
        'manual_seed': 0,
        'datasets': {
            'train': {
                'name': 'DF2K', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                'dataroot_gt': str(data / 'train' / 'HR'), 'dataroot_lq': str(data / 'train' / 'LR_bicubic' / 'X4'),
                'gt_size': 64, 'use_flip': True, 'use_rot': True, 'num_worker_per_gpu': 0, 'batch_size_per_gpu': 1,
                'dataset_enlarge_ratio': 1, 'prefetch_mode': 'cuda', 'pin_memory': True,
            },
            'val': {
                'name': 'DIV2K', 'type': 'PairedImageDataset', 'io_backend': {'type': 'disk'},
                'dataroot_gt': str(data / 'val' / 'HR'), 'dataroot_lq': str(data / 'val' / 'LR_bicubic' / 'X4'),
            },
        },
        'network_g': {'type': 'AutoEncoder_RRDBNet', 'enc_opt': {}, 'dec_opt': {**TINY_RRDB, 'use_checkpoint': True}},
        'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
        'train': {
            'ema_decay': 0.999,
            'optim_g': {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]},
            'scheduler': {'type': 'MultiStepLR', 'milestones': [100000], 'gamma': 1},
            'total_iter': 2, 'warmup_iter': -1,
            'pixel_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
            'pixel_at_LR_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
        },
        'val': {
            'val_freq': 2, 'save_img': False,
            'metrics': {
                'psnr': {'type': 'calculate_psnr_pytorch', 'crop_border': 4, 'test_y_channel': True},
                'ssim': {'type': 'calculate_ssim_pytorch', 'crop_border': 4, 'test_y_channel': True},
            },
        },
        'logger': {
            'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': True,
            'wandb': {'project': 'aesop', 'resume_id': None},
        },
        'dist_params': {'backend': 'nccl', 'port': 29500},
    }  # fmt: skip


NO_LOGIN = 'aesop: warning: logger.wandb is set but wandb is not logged in'


def assert_tensorboard_only(proc, root: Path, name: str) -> None:
    """The run warned once that wandb has no login, wrote tensorboard events, and started no wandb run."""
    assert (proc.stdout + proc.stderr).count(NO_LOGIN) == 1, proc.stderr[-2000:]
    assert list((root / 'tb_logger' / name).glob('events.out.tfevents.*')), 'tensorboard events'
    assert not (root / 'experiments' / name / 'wandb').exists()


@pytest.mark.heavy
@pytest.mark.parametrize('mode', ['offline', 'online'])
def test_wandb_mode_set_is_left_to_wandb(tiny_data, tmp_path, no_wandb_login, monkeypatch, mode):
    """WANDB_MODE=offline: a local wandb run beside tensorboard, as before; WANDB_MODE=online without a
    login: wandb.init refuses, and the run goes on with one warning and tensorboard."""
    monkeypatch.setenv('WANDB_MODE', mode)
    ae = _release_ae(tiny_data)
    ae['train']['total_iter'] = ae['val']['val_freq'] = ae['logger']['save_checkpoint_freq'] = 1
    # a process of its own: wandb.init patches tensorboard's writer and the console for the rest of its process
    proc = run_entry('train', write_yaml(ae, tmp_path / 'ae.yml'), tmp_path, process=True)
    out = proc.stdout + proc.stderr
    assert NO_LOGIN not in out
    assert list((tmp_path / 'tb_logger' / 'release_ae').glob('events.out.tfevents.*')), 'tensorboard events'
    offline_runs = list((tmp_path / 'experiments' / 'release_ae' / 'wandb').glob('offline-run-*'))
    if mode == 'offline':
        assert offline_runs and 'wandb.init failed' not in out
    else:
        assert not offline_runs
        assert out.count('aesop: warning: wandb.init failed (No API key configured.') == 1, out[-2000:]
    assert (tmp_path / 'experiments' / 'release_ae' / 'models' / 'net_g_1.pth').is_file()


@pytest.mark.heavy
def test_release_schema_files_train_and_test(tiny_data, tmp_path, no_wandb_login):
    """A new user's machine: wandb installed (the dev extra) and nobody logged in, as in CI. Every
    training file of the release sets logger.wandb: each trains, with tensorboard only."""
    ae = _release_ae(tiny_data)
    proc = run_entry('train', write_yaml(ae, tmp_path / 'ae.yml'), tmp_path)
    log = next((tmp_path / 'experiments' / 'release_ae').glob('train_release_ae_*.log')).read_text()
    for metric in ('psnr', 'ssim', 'psnr_lr', 'ssim_lr'):
        assert re.search(rf'# {metric}: [\d.]+', log), metric
    assert_tensorboard_only(proc, tmp_path, 'release_ae')
    ae_ckpt = tmp_path / 'experiments' / 'release_ae' / 'models' / 'net_g_latest.pth'

    gan = deepcopy(ae)
    gan['name'] = 'release_aesop'
    gan['model_type'] = 'AesopESRGANArtifactsDisModel'
    gan['network_g'] = {**TINY_RRDB, 'use_checkpoint': True}
    gan['network_d'] = {'type': 'VGGStyleDiscriminator128', 'num_in_ch': 3, 'num_feat': 4}
    gan['datasets']['train']['gt_size'] = 128
    gan['datasets']['train']['dataroot_lq'] = str(tiny_data / 'train' / 'LR_bicubic' / 'X4')
    del gan['train']['pixel_opt'], gan['train']['pixel_at_LR_opt']
    gan['train'].update(
        optim_d=dict(gan['train']['optim_g']),
        net_d_iters=1,
        net_d_init_iters=0,
        aesop_opt={
            'type': 'AutoEncoderLoss',
            'autoencoder_arch': ae['network_g'],
            'autoencoder_load': {'path': str(ae_ckpt), 'key': 'params_ema'},
        },
        artifacts_opt={'type': 'L1Loss', 'loss_weight': 1.0},
        perceptual_opt={'type': 'PerceptualLoss', 'layer_weights': {'conv2_2': 0.1}, 'vgg_type': 'vgg19'},
        gan_opt={'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 5e-3},
    )
    gan['val']['metrics'].update(
        lpips={'type': 'calculate_lpips_pytorch', 'crop_border': 4, 'better': 'lower'},
        dists={'type': 'calculate_dists_pytorch', 'crop_border': 4, 'better': 'lower'},
        aepsnr={'type': 'calculate_aepsnr_pytorch', 'crop_border': 4},
    )
    proc = run_entry('train', write_yaml(gan, tmp_path / 'gan.yml'), tmp_path)
    assert_tensorboard_only(proc, tmp_path, 'release_aesop')
    log = next((tmp_path / 'experiments' / 'release_aesop').glob('train_release_aesop_*.log')).read_text()
    for metric in ('psnr', 'lpips (random AlexNet)', 'dists (random VGG16)', 'aepsnr'):  # random backbones: labelled
        assert re.search(rf'# {re.escape(metric)}: [\d.]+', log), metric
    assert 'l_g_aesop' in log
    assert (tmp_path / 'experiments' / 'release_aesop' / 'models' / 'net_g_2.pth').is_file()

    # real-world: Real-ESRGAN's names, meta_info: ~ (the GT folder is scanned), a checkpointed RRDBNet
    rw = load_yaml(REPO / 'options' / 'train_aesop_realworld.yml')
    rw.update(name='release_realworld', model_type='AesopRealESRGANArtifactsDisModel', gt_size=64, queue_size=2)
    rw['datasets']['train'].update(
        type='RealESRGANDataset', meta_info=None, dataroot_gt=str(tiny_data / 'train' / 'HR'), gt_size=64
    )
    rw['datasets']['train'].update(batch_size_per_gpu=1, num_worker_per_gpu=0, use_flip=True)
    del rw['datasets']['train']['use_hflip']
    rw['datasets']['val'] = ae['datasets']['val']
    rw['network_g'] = {**TINY_RRDB, 'use_checkpoint': True}
    rw['network_d'] = {'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4, 'skip_connection': True}
    rw['path']['pretrain_network_g'] = None
    rw['train'].update(total_iter=1, aesop_opt=gan['train']['aesop_opt'])
    rw['train']['perceptual_opt']['layer_weights'] = {'conv2_2': 0.1}
    rw['val'].update(val_freq=1, metrics={'psnr': ae['val']['metrics']['psnr']})
    rw['logger'].update(print_freq=1, save_checkpoint_freq=1, wandb=ae['logger']['wandb'])  # as the release's
    proc = run_entry('train', write_yaml(rw, tmp_path / 'rw.yml'), tmp_path)
    assert_tensorboard_only(proc, tmp_path, 'release_realworld')
    log = next((tmp_path / 'experiments' / 'release_realworld').glob('train_*.log')).read_text()
    assert re.search(r'# psnr: [\d.]+', log) and 'AesopRealESRGANDataset' in log

    # a test file naming basicsr's ESRGANModel, with a SwinIR whose window does not divide the LR size
    swinir = {
        'type': 'SwinIR', 'upscale': 4, 'in_chans': 3, 'img_size': 12, 'window_size': 6, 'img_range': 1.0,
        'depths': [1], 'embed_dim': 12, 'num_heads': [2], 'mlp_ratio': 2, 'upsampler': 'pixelshuffle',
        'resi_connection': '1conv',
    }  # fmt: skip
    torch.save({'params_ema': build_network(deepcopy(swinir)).state_dict()}, tmp_path / 'swinir.pth')
    test = {
        'name': 'release_test',
        'model_type': 'ESRGANModel',
        'scale': 4,
        'num_gpu': 1,
        'datasets': {'test_1': {**ae['datasets']['val'], 'name': 'val'}},
        'network_g': swinir,
        'path': {
            'pretrain_network_g': str(tmp_path / 'swinir.pth'),
            'param_key_g': 'params_ema',
            'strict_load_g': True,
        },
        'val': {'save_img': True, 'suffix': None, 'metrics': {k: ae['val']['metrics'][k] for k in ('psnr', 'ssim')}},
    }
    assert 16 % swinir['window_size']  # the 64-px val crop's LR is 16 px
    run_entry('test', write_yaml(test, tmp_path / 'test.yml'), tmp_path)
    table = (tmp_path / 'results' / 'release_test' / 'metrics.csv').read_text().splitlines()
    assert table[0] == 'method,dataset,psnr,ssim' and len(table) == 2

    # the ESRGAN baseline in its 2019 layout (RRDB_trunk …)
    legacy = build_network({**TINY_RRDB, 'num_grow_ch': 32})
    torch.save(_esrgan_2019(legacy.state_dict()), tmp_path / 'RRDB_ESRGAN_x4.pth')
    baseline = deepcopy(test)  # the release's baseline file: ESRGAN's option names, params_ema on a bare file
    baseline['name'] = 'release_esrgan'
    baseline['network_g'] = {'type': 'RRDBNet_LEGACY', 'in_nc': 3, 'out_nc': 3, 'nf': 16, 'nb': 1, 'gc': 32}
    baseline['path']['pretrain_network_g'] = str(tmp_path / 'RRDB_ESRGAN_x4.pth')
    run_entry('test', write_yaml(baseline, tmp_path / 'baseline.yml'), tmp_path)
    assert (tmp_path / 'results' / 'release_esrgan' / 'metrics.md').is_file()


def test_an_autoencoder_tested_as_a_network_takes_any_size(tmp_path):
    """The release's AE test file runs ψ through ESRGANModel: inputs are padded to ψ's scale, cropped back."""
    opt = {
        'name': 'ae_test', 'model_type': 'ESRGANModel', 'is_train': False, 'dist': False, 'num_gpu': 0, 'rank': 0,
        'world_size': 1, 'scale': 4, 'network_g': {'type': 'AutoEncoder_RRDBNet', 'dec_opt': TINY_RRDB},
        'path': {}, 'val': {},
    }  # fmt: skip
    model = build_model(translate_options(opt))
    lq = torch.rand(1, 3, 34, 30)
    model.feed_data({'lq': lq})
    model.test()
    assert model.output.shape == lq.shape  # ψ alone refuses 34 × 30: not a multiple of its scale
    with pytest.raises(ValueError, match='not a multiple of scale 4'):
        model.net_g(lq)


OTHER_PLUGIN_FIRST = """
import sys
from torchvision.transforms import functional
sys.modules['torchvision.transforms.functional_tensor'] = functional  # as aesop.compat does
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

class Theirs: pass
for registry, name in ((MODEL_REGISTRY, 'ESRGANArtifactsDisModel'), (ARCH_REGISTRY, 'DRCT'),
                       (LOSS_REGISTRY, 'AutoEncoderLoss'), (METRIC_REGISTRY, 'calculate_psnr_pytorch')):
    registry._do_register(name, Theirs)  # e.g. the LDL or DRCT package, imported before aesop
import aesop
from aesop.official import translate_options
assert MODEL_REGISTRY.get('ESRGANArtifactsDisModel') is Theirs and ARCH_REGISTRY.get('DRCT') is Theirs
opt = translate_options({
    'model_type': 'ESRGANArtifactsDisModel', 'network_g': {'type': 'DRCT'},
    'train': {'aesop_opt': {'type': 'AutoEncoderLoss', 'autoencoder_arch': {'type': 'AesopAutoEncoder'},
                            'autoencoder_load': {'path': 'ae.pth', 'key': 'params'}}},
    'val': {'metrics': {'psnr': {'type': 'calculate_psnr_pytorch'}}},
})
assert opt['model_type'] == 'AesopGANModel' and opt['network_g'] == {'type': 'AesopDRCT'}, opt
assert opt['train']['aesop_opt'] == {'type': 'AesopLoss', 'autoencoder': {'type': 'AesopAutoEncoder'},
                                     'pretrained': 'ae.pth', 'param_key': 'params'}, opt
assert opt['val']['metrics']['psnr'] == {'type': 'aesop_psnr_pytorch'}, opt
print('ok')
"""


@pytest.mark.heavy
def test_release_names_taken_by_another_plugin_neither_crash_nor_break_release_files():
    proc = run_subprocess([sys.executable, '-c', OTHER_PLUGIN_FIRST])  # a fresh interpreter: another plugin first
    assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]


def test_the_release_256_px_discriminator_synchronises_its_batch_norms_and_128_does_not():
    """The release's VGGStyleDiscriminator256 is built with nn.SyncBatchNorm, its 128-px one with BatchNorm2d."""
    from aesop.official import translate_options

    for size, synchronised in ((128, None), (256, True)):
        opt = {'network_d': {'type': f'VGGStyleDiscriminator{size}', 'num_in_ch': 3, 'num_feat': 64}, 'train': {}}
        translate_options(opt)
        assert opt['network_d'] == {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 64, 'input_size': size}
        assert opt['train'].get('sync_bn_d') is synchronised
