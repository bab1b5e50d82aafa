"""The training loop's options: ``train.grad_clip``, ``train.compile``, ``train.accumulate`` (GAN), ``val.tile``."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_AE, TINY_RRDB, build_model
from test_ddp import ae_opt, batch
from test_infer import RECEPTIVE_RADIUS, tiny_net
from test_models import ae_ckpt, base_opt, gan_opt  # noqa: F401  (ae_ckpt: a fixture)
from test_models import batch as gan_batch


def grad_norm(net: torch.nn.Module) -> float:
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None])))


def light_gan(tmp_path, ckpt, **train) -> dict:
    """The AESOP GAN's options without the VGG19 perceptual loss (the step's other terms are enough here)."""
    aesop = {'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(ckpt)}
    opt = gan_opt(tmp_path, {'aesop_opt': aesop}, **train)
    del opt['train']['perceptual_opt']
    return opt


def test_grad_clip_clips_g_and_d_and_logs_it(tmp_path, ae_ckpt):  # noqa: F811
    model = build_model(light_gan(tmp_path, ae_ckpt, grad_clip={'g': 1e-4, 'd': 1e6}))
    model.feed_data(gan_batch())
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert log['grad_clipped_g'] == 1.0 and log['grad_norm_g'] > 1e-4  # the norm before clipping
    assert grad_norm(model.net_g) == pytest.approx(1e-4, rel=1e-3)  # what the optimiser stepped with
    assert log['grad_clipped_d'] == 0.0 and grad_norm(model.net_d) == pytest.approx(log['grad_norm_d'], rel=1e-5)

    model.train_step.grad_clip = {'g': None, 'd': None}  # no clipping: nothing logged
    model.optimize_parameters(2)
    assert not any(k.startswith('grad_') for k in model.get_current_log())


def test_gan_accumulation_runs_in_micro_batches(tmp_path, ae_ckpt):  # noqa: F811
    """Two micro-batches: G and D each step once; the log is their mean; the whole batch is restored."""
    model = build_model(light_gan(tmp_path, ae_ckpt, accumulate=2, artifacts_opt={'type': 'L1Loss'}))
    data = gan_batch()
    model.feed_data(data)
    seen = []
    forward = model.net_g.forward
    model.net_g.forward = lambda x: seen.append(x.shape[0]) or forward(x)
    model.optimize_parameters(1)
    assert seen.count(1) == 2 and 2 not in seen  # G ran on one image at a time
    assert model.lq.shape[0] == 2 and model.output.shape == data['gt'].shape
    assert all(len(o.state) > 0 for o in model.optimizers)  # each optimiser stepped
    assert {'l_g_aesop', 'l_g_artifacts', 'l_d_real'} <= set(model.get_current_log())


@pytest.mark.heavy
def test_compile_equals_eager(tmp_path):
    """``train.compile``: the compiled AE step's losses and gradients equal the eager ones, and the state
    dict keeps its keys."""
    backend = 'aot_eager'  # the traced graph and AOT autograd; inductor's C++ build takes ~90 s here (CUDA test)
    results = []
    for compile_opt in (False, {'backend': backend}):
        opt = ae_opt(str(tmp_path), dist=False)
        opt['train']['compile'] = compile_opt
        torch.manual_seed(0)
        model = build_model(opt)
        model.feed_data(batch())
        model.optimize_parameters(1)
        net = model.get_bare_model(model.net_g)
        results.append(
            (
                {k: float(v) for k, v in model.get_current_log().items()},
                {k: p.grad for k, p in net.named_parameters() if p.grad is not None},
                list(net.state_dict()),
            )
        )
    (eager_log, eager_grads, eager_keys), (log, grads, keys) = results
    assert keys == eager_keys  # no _orig_mod. prefix in checkpoints
    assert log == pytest.approx(eager_log, rel=1e-5)
    for key in eager_grads:
        assert torch.allclose(grads[key], eager_grads[key], rtol=1e-4, atol=1e-6), key


def test_val_tile_equals_whole_image_validation(tmp_path):
    """``val.tile``: tile by tile with context covering the receptive field gives the whole image's output."""
    outputs, state = [], tiny_net(TINY_RRDB).state_dict()  # outputs inside [0, 1] that vary
    for val in ({}, {'tile': 16, 'tile_pad': RECEPTIVE_RADIUS + 1}):
        opt = {
            **base_opt(tmp_path),
            'is_train': False,
            'model_type': 'AesopSRModel',
            'network_g': TINY_RRDB,
            'val': val,
        }
        model = build_model(opt)
        model.net_g.load_state_dict(state)
        model.feed_data({'lq': torch.rand(1, 3, 40, 37, generator=torch.Generator().manual_seed(0))})
        model.test()
        outputs.append(model.output.clamp(0, 1))
    assert outputs[1].shape == (1, 3, 160, 148)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)
