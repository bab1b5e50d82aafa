"""HR-aware self-supervised finetuning (paper 003): FAR, HQI, the controller, L_rec and the networks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import aesop  # noqa: F401
from aesop.archs.hraware_arch import AesopClipImageEncoder, AesopHRAwareReconstructor
from aesop.errors import AesopError
from aesop.losses.hraware_loss import (
    AesopFeatureAlignmentLoss,
    AesopLRReconstructionLoss,
    controller,
    far_descriptors,
    high_frequency_map,
    hqi,
)
from aesop.metrics.metrics import lpips_net

TINY = {'scale': 2, 'num_feat': 8, 'num_block_img': 1, 'num_feat_deg': 8, 'num_block_deg': 1, 'deg_dim': 16,
        'num_block_rec': 1, 'clip_channels': 128}  # TINY_CLIP's third stage: 16 × width  # fmt: skip
TINY_CLIP = {'layers': (1, 1, 1, 1), 'width': 8, 'layer': 3, 'input_size': 32}


def test_descriptors_are_the_gram_rows_means_and_maxima():
    e = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    avg, peak = far_descriptors(e)
    for n in range(2):
        f = e[n].reshape(3, 20).numpy()
        gram = np.array([[sum(f[i, k] * f[j, k] for k in range(20)) / 20 for j in range(3)] for i in range(3)])
        np.testing.assert_allclose(avg[n].numpy(), gram.mean(axis=1), rtol=1e-6)
        np.testing.assert_allclose(peak[n].numpy(), gram.max(axis=1), rtol=1e-6)


def test_far_is_zero_for_equal_features_and_identity_maps_and_positive_otherwise():
    identity = nn.Linear(6, 6, bias=False)
    nn.init.eye_(identity.weight)
    e = torch.rand(2, 6, 8, 8)
    far = AesopFeatureAlignmentLoss(loss_weight=2.0)
    assert far(e, e, identity, identity).item() == pytest.approx(0.0, abs=1e-6)
    avg_a, max_a = far_descriptors(e)
    avg_b, max_b = far_descriptors(e * 2)
    expected = 2.0 * ((avg_a - avg_b).norm(dim=1) + (max_a - max_b).norm(dim=1)).mean()
    assert far(e, e * 2, identity, identity).item() == pytest.approx(expected.item(), rel=1e-5)


def test_hqi_is_one_minus_lpips_of_the_bicubic_upsampled_lr():
    rng = np.random.default_rng(0)
    hr = rng.random((2, 32, 32, 3)).astype(np.float32)
    lr = np.stack([cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA) for img in hr])
    up = np.stack([cv2.resize(img, (32, 32), interpolation=cv2.INTER_CUBIC) for img in lr]).clip(0, 1)
    net = lpips_net('alex', torch.device('cpu'), True)
    as_tensor = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    expected = 1 - net(as_tensor(up), as_tensor(hr), normalize=True).reshape(-1)
    torch.testing.assert_close(hqi(as_tensor(lr), as_tensor(hr), net), expected, atol=2e-3, rtol=0)


def test_both_controller_forms_and_the_noise():
    q = torch.tensor([0.2, 0.9])
    torch.testing.assert_close(controller(q), q[:, None])  # finetuning: n + HQI
    torch.testing.assert_close(controller(q, form='pretrain'), 1 - q[:, None])  # pretraining: n + (1 − HQI)
    torch.testing.assert_close(controller(q, form='inverse'), 1 - q[:, None])  # Tab. 4's inverted finetuning
    torch.manual_seed(0)
    noisy = controller(q, noise_std=1.0, channels=4)  # the paper's n: a C_d-vector ~ N(0, I) per image
    torch.manual_seed(0)
    n = torch.randn(2, 4)
    expected = torch.tensor([[0.2 + n[0, c].item() for c in range(4)], [0.9 + n[1, c].item() for c in range(4)]])
    torch.testing.assert_close(noisy, expected)
    torch.manual_seed(0)
    scalar = controller(q, noise_std=0.1)  # one n per image (this project's scalar form)
    torch.manual_seed(0)
    torch.testing.assert_close(scalar, (q + 0.1 * torch.randn(2))[:, None])
    with pytest.raises(AesopError, match='controller form'):
        controller(q, form='both')


def test_high_frequency_map_and_the_reconstruction_loss():
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert high_frequency_map(flat).abs().max() == 0
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 3:] = 1.0  # a vertical edge inside the 2×2 cells of columns 2–3
    hf = high_frequency_map(edge)
    assert hf.max() == 1 and hf[..., 2:4].min() == 1 and hf[..., :2].max() == 0 and hf[..., 4:].max() == 0
    pred, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    assert AesopLRReconstructionLoss()(pred, target).item() == pytest.approx((pred - target).abs().mean().item())
    weighted = AesopLRReconstructionLoss(hf_weight=2.0)(pred, target)
    expected = ((1 + 2.0 * high_frequency_map(target)) * (pred - target).abs()).mean()
    assert weighted.item() == pytest.approx(expected.item())
    pred, target = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    lpips = lpips_net('alex', torch.device('cpu'), True)
    with_lpips = AesopLRReconstructionLoss(lpips_weight=0.5)(pred, target)
    expected = (pred - target).abs().mean() + 0.5 * lpips(pred, target, normalize=True).mean()
    assert with_lpips.item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_reconstructor_maps_hr_to_lr_size_styled_by_s():
    net = AesopHRAwareReconstructor(**TINY)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    out = net(lr, hr, s=torch.tensor([0.5, 1.5]))
    assert out.shape == (2, 3, 8, 8)
    assert not torch.allclose(net(lr, hr, s=0.5), net(lr, hr, s=1.5))  # s scales the style
    e_d = net.degradation(lr)
    vector = torch.rand(2, TINY['deg_dim'])  # the paper's s: one value per channel of e_d (Sec. 4.3)
    for b in range(2):
        for c in range(TINY['deg_dim']):
            assert net.style(vector, e_d)[b, c].item() == pytest.approx(vector[b, c].item() * e_d[b, c].item())
    torch.testing.assert_close(net(lr, hr, s=torch.full((2, TINY['deg_dim']), 0.5)), net(lr, hr, s=0.5))
    assert not torch.allclose(net(lr, hr, s=vector), net(lr, hr, s=vector.mean(1)))
    with pytest.raises(AesopError, match=r'the controller s has shape \(2, 3\)'):
        net(lr, hr, s=torch.rand(2, 3))
    with pytest.raises(AesopError, match='not a multiple of scale 2'):
        net(lr, torch.rand(2, 3, 15, 16))


def test_clip_encoder_tiny_random_and_a_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '1')
    clip = AesopClipImageEncoder(**TINY_CLIP)
    feature = clip(torch.rand(2, 3, 20, 24))
    assert feature.shape[:2] == (2, clip.channels) and not any(p.requires_grad for p in clip.parameters())
    assert not clip.train().training  # frozen in eval mode
    with pytest.raises(AesopError, match=r'CLIP weights not found: .*nope\.safetensors'):
        AesopClipImageEncoder(**TINY_CLIP, pretrained=str(tmp_path / 'nope.safetensors'))
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    with pytest.raises(AesopError, match=r"CLIP RN50 .* weights 'open_clip_model\.safetensors' not found"):
        AesopClipImageEncoder(**TINY_CLIP)


def test_clip_encoder_reads_open_clip_weights(monkeypatch, tmp_path):
    from safetensors.torch import save_file

    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '1')
    source = AesopClipImageEncoder(**TINY_CLIP)
    state = {f'visual.{k}': v + 0.01 if v.is_floating_point() else v for k, v in source.visual.state_dict().items()}
    save_file(state, str(tmp_path / 'clip.safetensors'))
    loaded = AesopClipImageEncoder(**TINY_CLIP, pretrained=str(tmp_path / 'clip.safetensors'))
    for key, value in loaded.visual.state_dict().items():
        torch.testing.assert_close(value, state[f'visual.{key}'])


def test_lr_patch_dataset_crops_flips_and_names_a_small_image(tiny_data, tmp_path):
    from basicsr.data import build_dataset

    folder = tiny_data / 'val' / 'LR_bicubic' / 'X4'
    opt = {'type': 'AesopLRPatchDataset', 'name': 'lr', 'dataroot_lq': str(folder), 'phase': 'train', 'scale': 4}
    dataset = build_dataset({**opt, 'lq_size': 8, 'use_hflip': True, 'use_rot': True, 'io_backend': {'type': 'disk'}})
    item = dataset[0]
    assert item['lq'].shape == (3, 8, 8) and 0 <= item['lq'].min() and item['lq'].max() <= 1
    whole = build_dataset({**opt, 'phase': 'val', 'io_backend': {'type': 'disk'}})[0]['lq']
    image = cv2.imread(str(sorted(folder.iterdir())[0]))
    assert whole.shape == (3, *image.shape[:2])
    torch.testing.assert_close(whole, torch.from_numpy(image[..., ::-1] / 255.0).permute(2, 0, 1).float())
    with pytest.raises(AesopError, match=r'is smaller than lq_size 4096'):
        build_dataset({**opt, 'lq_size': 4096, 'io_backend': {'type': 'disk'}})[0]


def tiny_stage(name: str, data, tmp_path) -> dict:
    """options/<name>.yml on tiny networks and the tiny dataset, 2 iterations with validation and saves."""
    from conftest import REPO, load_yaml

    opt = load_yaml(REPO / 'options' / f'{name}.yml')
    opt.update(num_gpu=0, name=name)
    for key in ('network_g', 'network_recon'):
        if opt.get(key, {}).get('type') == 'AesopHRAwareReconstructor':
            opt[key] = {**opt[key], **TINY, 'scale': 4}
    if opt['network_g']['type'] == 'RRDBNet':
        opt['network_g'].update(num_feat=8, num_block=1, num_grow_ch=4)
    if 'network_clip' in opt:
        opt['network_clip'] = {**opt['network_clip'], **TINY_CLIP, 'pretrained': None}
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(num_worker_per_gpu=0, batch_size_per_gpu=2, dataset_enlarge_ratio=1)
    if train['type'] == 'AesopLRPatchDataset':
        train.update(dataroot_lq=str(data / 'val' / 'LR_bicubic' / 'X4'), lq_size=16, dataset_enlarge_ratio=4)
    else:
        train.update(dataroot_gt=str(data / 'train' / 'HR'), gt_size=64)
        opt['gt_size'] = 64
    val.update(dataroot_gt=str(data / 'val' / 'HR'), dataroot_lq=str(data / 'val' / 'LR_bicubic' / 'X4'))
    val.pop('meta_info_file', None)  # the split of the paper's test set: every tiny validation image here
    opt['train'].update(total_iter=2)
    opt['train']['rec_opt']['lpips_weight'] = 0  # AlexNet-LPIPS needs more than the tiny 16-px LR images
    opt['val'].update(val_freq=2)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    return opt


@pytest.mark.heavy
def test_both_stages_train_two_iterations_and_finetuning_reads_the_pretrained_network(tiny_data, tmp_path):
    from conftest import run_entry, write_yaml

    recon = tiny_stage('train_hraware_recon', tiny_data, tmp_path)
    run_entry('train', write_yaml(recon, tmp_path / 'recon.yml'), tmp_path)
    checkpoint = tmp_path / 'experiments' / 'train_hraware_recon' / 'models' / 'net_g_latest.pth'
    assert set(torch.load(checkpoint, weights_only=True)) == {'params', 'params_ema'}

    finetune = tiny_stage('finetune_hraware_realesrgan', tiny_data, tmp_path)
    from basicsr.archs import build_network

    m = build_network(dict(finetune['network_g']))  # M's initial weights
    torch.save({'params_ema': m.state_dict()}, tmp_path / 'm.pth')
    finetune['path'].update(pretrain_network_g=str(tmp_path / 'm.pth'), pretrain_network_recon=str(checkpoint))
    proc = run_entry('train', write_yaml(finetune, tmp_path / 'ft.yml'), tmp_path)
    assert 'l_rec' in proc.stdout + proc.stderr and 'l_far' in proc.stdout + proc.stderr
    models = tmp_path / 'experiments' / 'finetune_hraware_realesrgan' / 'models'
    saved = torch.load(models / 'net_g_latest.pth')
    assert set(saved['params']) == set(m.state_dict())  # M only: nothing of R, E_deg, E_img or CLIP
    best = torch.load(models / 'net_g_best.pth')  # early stopping on the validation split (val.save_best: lpips)
    assert set(best) == {'params', 'params_ema'} and set(best['params']) == set(m.state_dict())
    log = next((tmp_path / 'experiments' / 'finetune_hraware_realesrgan').glob('train_*.log')).read_text()
    assert 'Best lpips on RealSR_Canon_val' in log and 'saved net_g_best.pth' in log


def finetune_model(tiny_data, tmp_path, **train):
    """AesopHRAwareFinetuneModel of the anchor file on tiny networks (random R and ψ weights saved)."""
    from basicsr.archs import build_network
    from conftest import build_model

    opt = tiny_stage('finetune_hraware_anchor_realesrgan', tiny_data, tmp_path)
    recon = build_network(dict(opt['network_recon']))
    torch.save({'params_ema': recon.state_dict()}, tmp_path / 'recon.pth')
    opt['path'] = {'pretrain_network_recon': str(tmp_path / 'recon.pth'), 'param_key_recon': 'params_ema'}
    anchor = opt['train']['anchor_opt']
    anchor['autoencoder']['decoder'].update(num_feat=8, num_block=1, num_grow_ch=4)
    anchor['autoencoder'].update(num_feat=16, num_block=1, num_grow_ch=4)
    torch.save({'params_ema': build_network(dict(anchor['autoencoder'])).state_dict()}, tmp_path / 'psi.pth')
    anchor['pretrained'] = str(tmp_path / 'psi.pth')
    opt['train']['optim_g']['lr'] = 1e-3
    opt['train'].update(train)
    opt.update(is_train=True, dist=False, rank=0, world_size=1)
    return build_model(opt)  # the options as a run reads them (the controller's defaults written)


def test_a_finetuning_step_changes_m_only(tiny_data, tmp_path):
    model = finetune_model(tiny_data, tmp_path)
    frozen = {'recon': model.recon, 'clip': model.clip, 'start': model.net_start}
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in frozen.items()}
    m_before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.feed_data({'lq': torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_rec', 'l_far', 'l_anchor'}
    for name, net in frozen.items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, before[name][key]), f'{name}.{key} changed'
        assert all(p.grad is None and not p.requires_grad for p in net.parameters()), name
        assert not net.training, name
    assert any(not torch.equal(v, m_before[k]) for k, v in model.net_g.state_dict().items())
    optimised = {id(p) for group in model.optimizer_g.param_groups for p in group['params']}
    assert optimised == {id(p) for p in model.net_g.parameters()}


def test_controller_noise_once_or_every_step_and_its_gradient(tiny_data, tmp_path):
    lr, sr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 64, 64, requires_grad=True)
    model = finetune_model(tiny_data, tmp_path, controller={'form': 'finetune', 'noise_std': 0.5, 'redraw': False})
    first, second = model.controller_value(lr, sr), model.controller_value(lr, sr)
    torch.testing.assert_close(first, second)  # one n for the run
    assert not first.requires_grad  # s carries no gradient by default
    quality = hqi(lr, sr.detach(), model.lpips)
    assert first.shape == (2, TINY['deg_dim']) and model.fixed_noise.shape == (1, TINY['deg_dim'])
    torch.testing.assert_close(first - quality[:, None], model.fixed_noise.expand(2, -1))
    model = finetune_model(tiny_data, tmp_path, controller={'form': 'finetune', 'noise_std': 0.5})
    assert not torch.equal(model.controller_value(lr, sr), model.controller_value(lr, sr))  # redrawn
    model = finetune_model(tiny_data, tmp_path, controller={'form': 'finetune', 'grad': True})
    model.controller_value(lr, sr).sum().backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0


def test_the_controllers_default_is_the_papers_vector_noise_of_std_1(tiny_data, tmp_path):
    """Sec. 4.3: "the vector n is a C_d-dimensional random vector and n ∼ N(0, I)"."""
    lr, sr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 64, 64)
    model = finetune_model(tiny_data, tmp_path, controller={'form': 'finetune'})
    assert (model.control['noise'], model.control['noise_std'], model.control['channels']) == ('vector', 1.0, 16)
    quality = hqi(lr, sr, model.lpips)
    torch.manual_seed(3)
    s = model.controller_value(lr, sr)
    torch.manual_seed(3)
    torch.testing.assert_close(s, quality[:, None] + torch.randn(2, TINY['deg_dim']))
    model = finetune_model(tiny_data, tmp_path, controller={'noise': 'scalar', 'noise_std': 0.25})
    torch.manual_seed(3)
    s = model.controller_value(lr, sr)
    torch.manual_seed(3)
    torch.testing.assert_close(s, quality[:, None] + 0.25 * torch.randn(2, 1))
    model.feed_data({'lq': lr})
    model.optimize_parameters(1)  # an (N, 1) s styles e_d too


def test_the_demos_target_domain_is_a_fixed_degradation(tiny_data, tmp_path):
    import shutil

    from aesop.data import make_degraded_lr

    outs = []
    for run in ('a', 'b'):
        root = tmp_path / run
        shutil.copytree(tiny_data / 'val' / 'HR', root / 'val' / 'HR')
        outs.append(make_degraded_lr(root))
    (name,) = [p.name for p in outs[0].iterdir()]
    hr = cv2.imread(str(tiny_data / 'val' / 'HR' / name))
    a, b = (cv2.imread(str(out / name)) for out in outs)
    assert a.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3) and np.array_equal(a, b)  # the same every time
    bicubic = cv2.imread(str(tiny_data / 'val' / 'LR_bicubic' / 'X4' / name))
    assert np.abs(a.astype(int) - bicubic).mean() > 1  # not the bicubic LR


def test_a_resumed_finetuning_refuses_a_changed_reconstruction_network(tiny_data, tmp_path):
    from aesop.weights import file_digest

    model = finetune_model(tiny_data, tmp_path)
    recorded = model.extra_training_state()['autoencoders']
    assert recorded['network_recon']['sha256'] == file_digest(tmp_path / 'recon.pth')
    assert recorded['anchor_opt']['sha256'] == file_digest(tmp_path / 'psi.pth')
    recorded['network_recon'] = {**recorded['network_recon'], 'sha256': '0' * 64}  # trained against another R
    state = {'autoencoders': recorded, 'optimizers': [o.state_dict() for o in model.optimizers], 'schedulers': []}
    with pytest.raises(AesopError, match=r'^the reconstruction network of network_recon changed since the training'):
        model.resume_training(state)


def test_the_hraware_models_take_the_step_options(tiny_data, tmp_path):
    """The base's train step: micro-batches (``accumulate``), clipping (logged) and bf16 autocast, as the GAN models;
    none of them is refused at start-up."""
    from aesop.models import AesopHRAwareFinetuneModel, AesopHRAwareReconModel
    from aesop.models.train_step import check_step_options

    for model_type in (AesopHRAwareFinetuneModel, AesopHRAwareReconModel):
        check_step_options(model_type, {'train': {'accumulate': 2, 'grad_clip': 1.0, 'amp': 'bf16'}})
    model = finetune_model(tiny_data, tmp_path, accumulate=2, grad_clip=1e-4, amp='bf16')
    lq = torch.rand(2, 3, 16, 16)
    model.feed_data({'lq': lq})
    model.optimize_parameters(1)
    assert {'l_rec', 'l_far', 'l_anchor', 'grad_norm_g', 'grad_clipped_g'} <= set(model.log_dict)
    assert model.log_dict['grad_clipped_g'] == 1.0 and torch.equal(model.lq, lq) and model.output.shape[0] == 2
