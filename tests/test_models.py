"""One optimisation step of each model on CPU: what changes, what must not, and the loss terms."""

from __future__ import annotations

from copy import deepcopy

import pytest
import torch
from basicsr.archs import build_network
from basicsr.losses.loss_util import get_refined_artifact_map
from conftest import TINY_AE, TINY_RRDB, build_model

from aesop.errors import AesopError
from aesop.models import FIDELITY_TERMS

DISC = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 128}
ADAM = {'type': 'Adam', 'lr': 1e-3, 'betas': [0.9, 0.99]}
SCHEDULER = {'type': 'MultiStepLR', 'milestones': [100], 'gamma': 0.5}
PERCEPTUAL = {'type': 'PerceptualLoss', 'layer_weights': {'conv1_2': 0.1, 'conv2_2': 1.0}, 'vgg_type': 'vgg19'}
GAN = {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 5e-3}


def base_opt(tmp_path, **train) -> dict:
    return {
        'name': 'unit',
        'is_train': True,
        'dist': False,
        'num_gpu': 0,
        'rank': 0,
        'world_size': 1,
        'scale': 4,
        'path': {'models': str(tmp_path), 'training_states': str(tmp_path)},
        'train': {
            'total_iter': 100,
            'optim_g': dict(ADAM),
            'optim_d': dict(ADAM),
            'scheduler': dict(SCHEDULER),
            **train,
        },
    }


@pytest.fixture
def ae_ckpt(tmp_path):
    ae = build_network(TINY_AE)
    torch.save({'params_ema': ae.state_dict()}, tmp_path / 'ae.pth')
    return tmp_path / 'ae.pth'


def gan_opt(tmp_path, fidelity: dict, **extra) -> dict:
    opt = base_opt(tmp_path, perceptual_opt=PERCEPTUAL, gan_opt=GAN, ema_decay=0.9, **fidelity, **extra)
    return {**opt, 'model_type': 'AesopGANModel', 'network_g': TINY_RRDB, 'network_d': DISC}


def batch():
    return {'lq': torch.rand(2, 3, 32, 32), 'gt': torch.rand(2, 3, 128, 128)}


def params(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before, net):
    return {k for k, v in net.state_dict().items() if not torch.equal(before[k], v)}


def test_ae_model_step_trains_encoder_and_decoder_with_eq4_and_eq5(tmp_path):
    opt = base_opt(tmp_path, pixel_opt={'type': 'L1Loss'}, pixel_at_LR_opt={'type': 'L1Loss'}, ema_decay=0.9)
    model = build_model({**opt, 'model_type': 'AesopAEModel', 'network_g': TINY_AE})
    before = params(model.net_g)
    data = {'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 32, 32)}
    with torch.no_grad():  # Eq. 5: ‖D(E(HR)) − HR‖₁; Eq. 4: ‖E(HR) − LR‖₁, before the step
        expected = {
            'l_pix': (model.net_g(data['gt']) - data['gt']).abs().mean().item(),
            'l_pix_at_LR': (model.net_g.encode(data['gt']) - data['lq']).abs().mean().item(),
        }
    model.feed_data(data)
    model.optimize_parameters(1)
    assert model.log_dict == pytest.approx(expected, rel=1e-5)
    diff = changed(before, model.net_g)
    assert any(k.startswith('decoder.') for k in diff) and any(k.startswith('encoder.') for k in diff)


def test_ae_model_loads_the_decoder_and_freezes_it_until_iteration_n(tmp_path):
    decoder = build_network(TINY_RRDB)
    torch.save({'params': decoder.state_dict()}, tmp_path / 'psnr.pth')
    opt = base_opt(tmp_path, pixel_opt={'type': 'L1Loss'}, freeze_decoder=2)  # no pixel_at_LR_opt: Tab. 3(b)
    opt['path'].update(pretrain_network_decoder=str(tmp_path / 'psnr.pth'), param_key_decoder='params_ema')
    model = build_model({**opt, 'model_type': 'AesopAEModel', 'network_g': TINY_AE})
    assert torch.equal(model.net_g.decoder.conv_first.weight, decoder.conv_first.weight)  # params_ema → params
    data = {'lq': torch.rand(1, 3, 8, 8), 'gt': torch.rand(1, 3, 32, 32)}
    for it in (1, 2):
        before = params(model.net_g)
        model.feed_data(data)
        model.optimize_parameters(it)
        diff = changed(before, model.net_g)
        assert diff and not any(k.startswith('decoder.') for k in diff)
    assert set(model.log_dict) == {'l_pix'}
    model.optimize_parameters(3)
    assert any(k.startswith('decoder.') for k in changed(before, model.net_g))


def test_ae_model_resumed_after_the_freeze_trains_the_decoder(tmp_path):
    opt = base_opt(tmp_path, pixel_opt={'type': 'L1Loss'}, freeze_decoder=2)
    model = build_model({**opt, 'model_type': 'AesopAEModel', 'network_g': TINY_AE})
    before = params(model.net_g)
    model.feed_data({'lq': torch.rand(1, 3, 8, 8), 'gt': torch.rand(1, 3, 32, 32)})
    model.optimize_parameters(5)  # the first iteration after resuming at 4
    assert any(k.startswith('decoder.') for k in changed(before, model.net_g))


@pytest.mark.parametrize('slot', sorted(FIDELITY_TERMS))
def test_each_fidelity_option_changes_only_the_fidelity_term(tmp_path, ae_ckpt, slot):
    losses = {
        'pixel_opt': {'type': 'L1Loss', 'loss_weight': 0.01},
        'aesop_opt': {'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(ae_ckpt)},
        'lr_opt': {'type': 'AesopLRConsistencyLoss', 'scale': 4, 'target': 'lq'},
        'lowpass_opt': {'type': 'AesopLowPassLoss'},
    }
    model = build_model(gan_opt(tmp_path, {slot: losses[slot]}, artifacts_opt={'type': 'L1Loss'}))
    model.feed_data(batch())
    model.optimize_parameters(1)
    common = {'l_g_percep', 'l_g_gan', 'l_g_artifacts', 'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'}
    assert set(model.log_dict) == common | {FIDELITY_TERMS[slot]}


def test_aesop_gan_step_updates_g_and_d_and_never_psi(tmp_path, ae_ckpt):
    aesop = {'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(ae_ckpt)}
    model = build_model(gan_opt(tmp_path, {'aesop_opt': aesop}, artifacts_opt={'type': 'L1Loss'}))
    psi = model.cri_fidelity['l_g_aesop'].autoencoder
    g, d, ema, psi_before = params(model.net_g), params(model.net_d), params(model.net_g_ema), params(psi)
    for it in (1, 2):
        model.feed_data(batch())
        model.optimize_parameters(it)
    assert changed(g, model.net_g) and changed(d, model.net_d) and changed(ema, model.net_g_ema)
    assert not changed(psi_before, psi)
    on_disk = torch.load(ae_ckpt, weights_only=True)['params_ema']
    assert all(torch.equal(on_disk[k], v) for k, v in psi.state_dict().items())  # bit-identical to the file
    optimised = {id(p) for o in model.optimizers for group in o.param_groups for p in group['params']}
    assert not optimised & {id(p) for p in psi.parameters()}
    model.save(0, 2)
    saved = torch.load(tmp_path / 'net_g_2.pth', weights_only=True)
    assert set(saved) == {'params', 'params_ema'} and not any('autoencoder' in k for k in saved['params'])


def artifact_map(gt, sr, ema, k=7):
    """LDL's refined artifact map (Liang et al. 2022, Eq. 6–8), written out from the paper."""
    res_sr = (gt - sr).abs().sum(1, keepdim=True)
    res_ema = (gt - ema).abs().sum(1, keepdim=True)
    patch = res_sr.flatten(1).var(dim=1, unbiased=True).view(-1, 1, 1, 1) ** 0.2
    padded = torch.nn.functional.pad(res_sr, [k // 2] * 4, mode='reflect')
    windows = padded.unfold(2, k, 1).unfold(3, k, 1).flatten(-2)
    local = windows.var(dim=-1, unbiased=True)
    return torch.where(res_sr < res_ema, torch.zeros_like(local), patch * local)


def test_ldl_artifact_loss_equals_the_map_applied_by_hand(tmp_path):
    model = build_model(
        gan_opt(tmp_path, {'pixel_opt': {'type': 'L1Loss', 'loss_weight': 0.01}}, artifacts_opt={'type': 'L1Loss'})
    )
    with torch.no_grad():  # make the EMA copy differ from G so the mask res_SR < res_EMA matters
        for p in model.net_g_ema.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.feed_data(batch())
    model.output = model.net_g(model.lq)
    _, losses = model.generator_losses()
    with torch.no_grad():
        weight = artifact_map(model.gt, model.output, model.net_g_ema(model.lq))
        expected = (weight * model.output - weight * model.gt).abs().mean()
        assert 0 < (weight == 0).float().mean() < 1
        assert torch.allclose(weight, get_refined_artifact_map(model.gt, model.output, model.net_g_ema(model.lq), 7))
    assert torch.allclose(losses['l_g_artifacts'], expected)
    assert torch.allclose(losses['l_g_pix'], 0.01 * (model.output - model.gt).abs().mean())


def test_net_d_init_iters_trains_only_d_first(tmp_path):
    model = build_model(gan_opt(tmp_path, {'pixel_opt': {'type': 'L1Loss'}}, net_d_init_iters=1))
    g, d = params(model.net_g), params(model.net_d)
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert not changed(g, model.net_g) and changed(d, model.net_d)
    assert set(model.log_dict) == {'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'}
    model.optimize_parameters(2)
    assert changed(g, model.net_g) and 'l_g_gan' in model.log_dict


def test_discriminator_loads_with_its_own_param_key(tmp_path):
    disc = build_network(DISC)
    torch.save({'params': build_network(DISC).state_dict(), 'params_d': disc.state_dict()}, tmp_path / 'd.pth')
    opt = gan_opt(tmp_path, {'pixel_opt': {'type': 'L1Loss'}})
    opt['path'].update(pretrain_network_d=str(tmp_path / 'd.pth'), param_key_d='params_d', param_key_g='params')
    model = build_model(opt)
    assert torch.equal(model.net_d.conv0_0.weight, disc.conv0_0.weight)


def test_config_mistakes_fail_clearly(tmp_path):
    with pytest.raises(AesopError, match='gan_opt'):
        build_model(
            {
                **gan_opt(tmp_path, {'pixel_opt': {'type': 'L1Loss'}}),
                'train': {**base_opt(tmp_path)['train'], 'pixel_opt': {'type': 'L1Loss'}},
            }
        )
    no_ema = gan_opt(tmp_path, {'pixel_opt': {'type': 'L1Loss'}}, artifacts_opt={'type': 'L1Loss'})
    no_ema['train']['ema_decay'] = 0
    with pytest.raises(AesopError, match='ema_decay'):
        build_model(deepcopy(no_ema))
    per_pixel = gan_opt(tmp_path, {'pixel_opt': {'type': 'AesopLowPassLoss', 'reduction': 'none'}})
    with pytest.raises(AesopError, match='reduction none'):
        build_model(per_pixel)
    x1 = gan_opt(tmp_path, {'pixel_opt': {'type': 'L1Loss'}})  # e.g. SwinIR without an upsampler: ×1
    x1['network_g'] = {**TINY_RRDB, 'scale': 1}
    model = build_model(x1)
    model.feed_data({'lq': torch.rand(1, 3, 32, 32), 'gt': torch.rand(1, 3, 128, 128)})
    with pytest.raises(AesopError, match=r'network_g \(RRDBNet\) maps \(32, 32\) to \(32, 32\) but the GT is'):
        model.optimize_parameters(1)


def test_swinir_inputs_are_padded_to_the_window(tmp_path):
    swinir = {
        'type': 'SwinIR',
        'upscale': 4,
        'img_size': 16,
        'window_size': 4,
        'img_range': 1.0,
        'depths': [1],
        'embed_dim': 8,
        'num_heads': [2],
        'mlp_ratio': 2,
        'upsampler': 'pixelshuffle',
    }
    model = build_model({**base_opt(tmp_path), 'is_train': False, 'model_type': 'AesopSRModel', 'network_g': swinir})
    lq = torch.rand(1, 3, 10, 7)
    model.feed_data({'lq': lq})
    model.test()
    assert model.output.shape == (1, 3, 40, 28) and torch.equal(model.lq, lq)
    padded = torch.cat([lq, lq.flip(2)], 2)[..., :12, :]
    padded = torch.cat([padded, padded.flip(3)], 3)[..., :8]
    with torch.no_grad():
        assert torch.allclose(model.output, model.net_g(padded)[..., :40, :28])


@pytest.mark.heavy
@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_mixed_precision_and_channels_last_on_cpu(tmp_path, ae_ckpt, amp):
    aesop = {'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(ae_ckpt)}
    model = build_model(
        gan_opt(tmp_path, {'aesop_opt': aesop}, artifacts_opt={'type': 'L1Loss'}, amp=amp, channels_last=True)
    )
    assert model.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    g, d = params(model.net_g), params(model.net_d)
    model.feed_data(batch())
    model.optimize_parameters(1)
    assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    assert changed(g, model.net_g) and changed(d, model.net_d)
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())  # weights stay fp32
    ae = build_model(
        {
            **base_opt(tmp_path, pixel_opt={'type': 'L1Loss'}, pixel_at_LR_opt={'type': 'L1Loss'}, amp=amp),
            'model_type': 'AesopAEModel',
            'network_g': TINY_AE,
        }
    )
    ae.feed_data({'lq': torch.rand(1, 3, 8, 8), 'gt': torch.rand(1, 3, 32, 32)})
    ae.optimize_parameters(1)
    assert set(ae.log_dict) == {'l_pix', 'l_pix_at_LR'} and all(v > 0 for v in ae.log_dict.values())


def test_amp_loss_is_close_to_fp32(tmp_path):
    """bf16 autocast changes the losses only by rounding (same weights, same batch)."""
    data = {'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 32, 32)}
    values = {}
    for amp in ('none', 'bf16'):
        torch.manual_seed(0)
        opt = base_opt(tmp_path, pixel_opt={'type': 'L1Loss'}, pixel_at_LR_opt={'type': 'L1Loss'}, amp=amp)
        model = build_model({**opt, 'model_type': 'AesopAEModel', 'network_g': TINY_AE})
        model.feed_data(data)
        model.optimize_parameters(1)
        values[amp] = model.log_dict
    assert values['bf16'] == pytest.approx(values['none'], rel=0.02)
    assert values['bf16'] != values['none']  # autocast was on


def test_a_network_without_parameters_is_not_wrapped_in_ddp(monkeypatch):
    """``AesopBicubic`` under torchrun: DDP refuses a module without parameters, so it runs unwrapped; a network
    with parameters is still wrapped (DDP stubbed: no process group here)."""
    from types import SimpleNamespace

    import aesop.models.base as base

    wrapped = []
    monkeypatch.setattr(base, 'DistributedDataParallel', lambda net, **_: wrapped.append(net) or ('ddp', net))
    opt = {'dist': True, 'num_gpu': 0, 'find_unused_parameters': False}  # the schema's default written
    model = SimpleNamespace(device=torch.device('cpu'), opt=opt)
    bicubic = build_network({'type': 'AesopBicubic', 'scale': 4})
    assert base.AesopModel.model_to_device(model, bicubic) is bicubic and not wrapped
    rrdb = build_network(deepcopy(TINY_RRDB))
    assert base.AesopModel.model_to_device(model, rrdb) == ('ddp', rrdb) and wrapped == [rrdb]
