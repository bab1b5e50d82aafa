"""The GPU: each CUDA path against an independent reference (the CPU's result, or fp32's).

Every test here is marked ``cuda`` and skipped without a CUDA device (``make gpu-check`` runs them, see
``docs/gpu.md``). The networks are the tiny ones of the CPU tests, so the group takes a minute or two on one
GPU (most of it ``torch.compile`` and the NCCL run with its resume). cuDNN's TF32 convolutions are off
(autouse fixture): "fp32 on the GPU" then means fp32, and the GPU's results can be held to the
CPU's within float32 rounding. The optimisers are Adam with ``eps`` far above the gradients, so
that a step is ``≈ (lr / eps) · g``, proportional to the gradient (with the usual tiny ``eps``, Adam's
first step is ``lr · sign(g)``, which turns rounding noise in a near-zero gradient into a full step;
basicsr 1.4.2's models take no other optimiser).
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Iterator
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils import set_random_seed
from conftest import REPO, TINY_AE, TINY_RRDB, build_model, load_yaml, point_at, run_entry, write_yaml
from test_degradations import GT_SIZE, SCALE, VARIANTS, X4PLUS, _kernels
from test_degradations import data as data  # noqa: F401 (a fixture: Real-ESRGAN's batch of 2 and its kernels)
from test_drct_arch import TINY as TINY_DRCT
from test_infer import ARCH as INFER_ARCH
from test_infer import RECEPTIVE_RADIUS, SWINIR, tiny_net
from test_models import base_opt, batch, gan_opt
from test_official import _input_grad
from torch import nn

from aesop.archs import DRCT
from aesop.data import RealESRGANDegradation
from aesop.data import degradations as degradations_module
from aesop.inference import upscale
from aesop.metrics.fid import frechet_distance, inception_features
from aesop.metrics.metrics import metric_device

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device'),
]

DEVICE = torch.device('cuda')  # the device under test; every reference is computed on the CPU or in fp32
CPU = torch.device('cpu')
LINEAR_ADAM = {'type': 'Adam', 'lr': 0.3, 'eps': 10.0, 'betas': [0.9, 0.99]}  # a step of ≈ 0.03 · g
NETS = ('net_g', 'net_d', 'net_g_ema')
AMP = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@pytest.fixture(autouse=True)
def _fp32_is_fp32(monkeypatch):
    """No TF32 in cuDNN convolutions (on by default); random VGG19/AlexNet, nothing downloaded."""
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', False)
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '1')


@pytest.fixture
def psi(tmp_path) -> Path:
    """A tiny ψ (``TINY_AE``) with PyTorch's default init, saved as ``params_ema``: its outputs vary, so
    L_AESOP is ~1e-2 (basicsr's 0.1-scaled init makes ψ nearly constant and L_AESOP ~1e-6)."""
    torch.manual_seed(1)
    ae = build_network(dict(TINY_AE))
    for module in ae.modules():
        if isinstance(module, nn.Conv2d):
            module.reset_parameters()
    torch.save({'params_ema': ae.state_dict()}, tmp_path / 'psi.pth')
    return tmp_path / 'psi.pth'


# --------------------------------------------------------------------------------------------- helpers


def num_gpu(device: torch.device) -> int:
    """The ``num_gpu`` option that puts a model on ``device``."""
    return 1 if device.type == 'cuda' else 0


def bare(net: nn.Module) -> nn.Module:
    """``net`` without DataParallel/DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while isinstance(getattr(net, 'module', None), nn.Module) or isinstance(getattr(net, '_orig_mod', None), nn.Module):
        net = getattr(net, 'module', None) or net._orig_mod
    return net


def is_compiled(net: nn.Module) -> bool:
    """Whether ``torch.compile`` wraps ``net`` or a module it wraps (either form of compiling a module)."""
    from torch._dynamo.eval_frame import OptimizedModule

    while True:
        if isinstance(net, OptimizedModule) or getattr(net, '_compiled_call_impl', None):
            return True
        inner = getattr(net, 'module', None)
        if not isinstance(inner, nn.Module):
            return False
        net = inner


def build(opt: dict, device: torch.device):
    """``build_model`` on ``device``, seeded (the networks are initialised on the CPU, then moved)."""
    torch.manual_seed(0)
    return build_model({**deepcopy(opt), 'num_gpu': num_gpu(device)})


def copy_weights(src, dst) -> None:
    """Give ``dst``'s networks ``src``'s weights and buffers (in ``dst``'s memory layout)."""
    for name in NETS:
        if hasattr(src, name) and hasattr(dst, name):
            bare(getattr(dst, name)).load_state_dict(bare(getattr(src, name)).state_dict())


def pair(ref_opt: dict, opt: dict, ref_device: torch.device = CPU):
    """The reference model (``ref_opt`` on ``ref_device``) and the one under test (``opt`` on the GPU),
    with the same weights."""
    ref, model = build(ref_opt, ref_device), build(opt, DEVICE)
    copy_weights(ref, model)
    return ref, model


def train(model, inputs: dict, iters: range) -> list[dict[str, float]]:
    """``optimize_parameters`` for each iteration of ``iters`` on the same batch; the logged values."""
    logs = []
    for it in iters:
        model.feed_data({k: v.clone() for k, v in inputs.items()})
        model.optimize_parameters(it)
        logs.append(dict(model.log_dict))
    return logs


def state(model, name: str = 'net_g') -> dict[str, torch.Tensor]:
    """A network's state dict, on the CPU."""
    return {k: v.detach().float().cpu().clone() for k, v in bare(getattr(model, name)).state_dict().items()}


def flat_update(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> torch.Tensor:
    """What a step changed in a network's floating-point weights, as one vector."""
    return torch.cat([(after[k] - before[k]).flatten() for k in before if before[k].is_floating_point()])


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rel: float) -> None:
    """Elementwise within ``rel`` of ``expected`` or of its largest magnitude (small elements: absolute)."""
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * float(expected.abs().max()))


def states(model) -> dict[str, dict[str, torch.Tensor]]:
    """The state dicts of the model's G, D and EMA G (those it has), on the CPU."""
    return {name: state(model, name) for name in NETS if hasattr(model, name)}


def assert_same_steps(model, ref, initial: dict[str, dict[str, torch.Tensor]], rel: float) -> None:
    """``model``'s networks moved from ``initial`` as ``ref``'s did (the updates compared, not the weights,
    which are mostly the initial ones)."""
    for name, before in initial.items():
        expected = flat_update(before, state(ref, name))
        assert expected.abs().max() > 0, f'{name} did not move'
        assert_close(flat_update(before, state(model, name)), expected, rel)


def assert_logs_close(actual: dict, expected: dict, *, rel: float, losses_only: bool = False) -> None:
    """The same logged keys, each value within ``rel`` (``losses_only``: the ``l_*`` terms only)."""
    assert set(actual) == set(expected)
    keys = [k for k in expected if k.startswith('l_') or not losses_only]
    assert {k: actual[k] for k in keys} == pytest.approx({k: expected[k] for k in keys}, rel=rel, abs=1e-6)


def aesop_gan(tmp_path: Path, psi: Path, **train_opt) -> dict:
    """The AESOP GAN of the CPU tests (tiny RRDB G, L_AESOP with a tiny ψ, VGG19, GAN, LDL), linear Adam."""
    aesop = {'type': 'AesopLoss', 'autoencoder': TINY_AE, 'pretrained': str(psi)}
    opt = gan_opt(tmp_path, {'aesop_opt': aesop}, artifacts_opt={'type': 'L1Loss'}, **train_opt)
    opt['train'].update(optim_g=dict(LINEAR_ADAM), optim_d=dict(LINEAR_ADAM))
    return opt


class Recorder:
    """Records what a module saw: the dtype of its outputs and whether its inputs were channels_last."""

    def __init__(self, module: nn.Module) -> None:
        self.dtypes: set[torch.dtype] = set()
        self.channels_last: set[bool] = set()
        self.handles = [module.register_forward_hook(self._hook)]

    def _hook(self, module, inputs, output) -> None:
        self.dtypes.add(output.dtype)
        self.channels_last.add(inputs[0].is_contiguous(memory_format=torch.channels_last))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


# --------------------------------------------------------------------------------------------- training steps


def test_ae_training_step_on_the_gpu_equals_the_cpu(tmp_path):
    """ψ's pretraining (Eq. 4 + Eq. 5), 2 steps: the GPU's losses, weights and EMA equal the CPU's."""
    opt = base_opt(tmp_path, pixel_opt={'type': 'L1Loss'}, pixel_at_LR_opt={'type': 'L1Loss'}, ema_decay=0.9)
    opt.update(model_type='AesopAEModel', network_g=TINY_AE)
    opt['train']['optim_g'] = dict(LINEAR_ADAM)
    cpu, gpu = pair(opt, opt)
    inputs = {'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 32, 32)}
    initial = states(cpu)
    expected, actual = train(cpu, inputs, range(1, 3)), train(gpu, inputs, range(1, 3))
    assert next(bare(gpu.net_g).parameters()).device.type == DEVICE.type
    for got, want in zip(actual, expected, strict=True):
        assert_logs_close(got, want, rel=1e-4)
    assert_same_steps(gpu, cpu, initial, rel=1e-3)


def test_aesop_gan_step_fp32_on_the_gpu_equals_the_cpu(tmp_path, psi):
    """The AESOP GAN (L_AESOP + VGG + relativistic GAN + LDL), 2 steps: losses, G, D and EMA equal the CPU's."""
    opt = aesop_gan(tmp_path, psi)
    cpu, gpu = pair(opt, opt)
    inputs = batch()
    initial = states(cpu)
    expected, actual = train(cpu, inputs, range(1, 3)), train(gpu, inputs, range(1, 3))
    assert next(gpu.cri_fidelity['l_g_aesop'].autoencoder.parameters()).device.type == DEVICE.type  # ψ too
    for got, want in zip(actual, expected, strict=True):
        assert_logs_close(got, want, rel=1e-4)
    assert_same_steps(gpu, cpu, initial, rel=1e-3)


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_aesop_gan_step_under_amp_is_close_to_fp32(tmp_path, psi, amp):
    """``train.amp``: G runs in bf16/fp16 and the step's losses are fp32's within the format's precision;
    bf16's weight update points where fp32's does; fp16 has a GradScaler per optimiser, which either
    takes the same step or (an overflow in the scaled gradients) skips it and backs its scale off."""
    ref, model = pair(aesop_gan(tmp_path, psi), aesop_gan(tmp_path, psi, amp=amp), ref_device=DEVICE)
    inputs = batch()
    initial = state(ref)
    seen = Recorder(bare(model.net_g).conv_first)
    (expected,), (actual,) = train(ref, inputs, range(1, 2)), train(model, inputs, range(1, 2))
    seen.remove()
    assert seen.dtypes == {AMP[amp]}
    assert_logs_close(actual, expected, rel=5e-2 if amp == 'bf16' else 1e-2, losses_only=True)
    reference_update, update = flat_update(initial, state(ref)), flat_update(initial, state(model))
    if amp == 'bf16':
        assert torch.cosine_similarity(update, reference_update, dim=0) > 0.99
    else:
        scalers = model.train_step.grad_scalers
        assert len(scalers) == 2 and id(model.optimizer_g) in scalers and id(model.optimizer_d) in scalers
        scale = scalers[id(model.optimizer_g)].get_scale()
        if update.abs().max() > 0:
            assert torch.cosine_similarity(update, reference_update, dim=0) > 0.99
        else:  # the step was skipped: the scaler saw inf/NaN gradients and halved its scale
            assert scale < torch.amp.GradScaler(DEVICE.type).get_scale()
        train(model, inputs, range(2, 6))
        after = state(model)
        assert flat_update(initial, after).abs().max() > 0 and all(torch.isfinite(v).all() for v in after.values())
        assert all(0 < s.get_scale() < float('inf') for s in scalers.values())


def test_channels_last_step_equals_the_contiguous_one(tmp_path, psi):
    """``train.channels_last``: G's weights and batches in NHWC, and 2 steps equal the NCHW model's."""
    ref, model = pair(aesop_gan(tmp_path, psi), aesop_gan(tmp_path, psi, channels_last=True), ref_device=DEVICE)
    conv = bare(model.net_g).conv_first
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    inputs = batch()
    initial = states(ref)
    seen = Recorder(conv)
    expected, actual = train(ref, inputs, range(1, 3)), train(model, inputs, range(1, 3))
    seen.remove()
    assert seen.channels_last == {True} and model.lq.is_contiguous(memory_format=torch.channels_last)
    for got, want in zip(actual, expected, strict=True):
        assert_logs_close(got, want, rel=1e-4)
    assert_same_steps(model, ref, initial, rel=1e-3)


def test_rrdb_gradient_checkpointing_same_output_and_gradients_less_memory():
    """``use_checkpoint: true`` on the GPU: the plain RRDBNet's output and gradients, a lower memory peak."""
    arch = {**TINY_RRDB, 'type': 'AesopRRDBNet', 'num_feat': 32, 'num_block': 6, 'num_grow_ch': 16}
    plain = build_network({**arch, 'use_checkpoint': False}).to(DEVICE)
    checkpointed = build_network({**arch, 'use_checkpoint': True}).to(DEVICE)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(4, 3, 48, 48, device=DEVICE)
    peaks = []
    results = []
    for net in (plain, checkpointed):
        torch.cuda.synchronize(DEVICE)
        torch.cuda.reset_peak_memory_stats(DEVICE)
        start = torch.cuda.memory_allocated(DEVICE)
        results.append(_input_grad(net, x))
        torch.cuda.synchronize(DEVICE)
        peaks.append(torch.cuda.max_memory_allocated(DEVICE) - start)
    (out, dx, grads), (ref_out, ref_dx, ref_grads) = results[1], results[0]
    assert_close(out, ref_out, 1e-5)
    assert_close(dx, ref_dx, 1e-4)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert_close(grad, ref_grad, 1e-4)
    assert peaks[1] < 0.75 * peaks[0], (
        f'peak memory: plain {peaks[0] / 2**20:.0f} MiB, checkpointed {peaks[1] / 2**20:.0f}'
    )


# --------------------------------------------------------------------------------------------- data


def cpu_noise(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Draw the degradation's Gaussian/Poisson noise on the CPU, each call from its own seed.

    Noise and JPEG qualities are the only draws from the *device's* generator (CUDA's differs from
    the CPU's); with noise from the CPU and fixed JPEG qualities, a seed gives the same draws on both.
    Returns a function that restarts the per-call seeds (call it before each run).
    """
    calls = itertools.count()

    def restart() -> None:
        nonlocal calls
        calls = itertools.count()

    def on_cpu(draw: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def wrapped(img: torch.Tensor, **kwargs) -> torch.Tensor:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(next(calls))
                return draw(img.cpu(), **kwargs).to(img.device)

        return wrapped

    for name in ('random_add_gaussian_noise_pt', 'random_add_poisson_noise_pt'):
        monkeypatch.setattr(degradations_module, name, on_cpu(getattr(degradations_module, name)))
    return restart


def test_realworld_degradation_on_the_gpu_equals_the_cpu(data, monkeypatch):
    """Real-ESRGAN's second-order degradation (each branch) from the same seed and kernels: the GPU's
    GT crop is the CPU's, its LQ the CPU's up to a rare JPEG rounding flip (8-bit levels)."""
    restart = cpu_noise(monkeypatch)
    for seed, variant in enumerate(VARIANTS.values()):
        opt = {
            **X4PLUS,
            **variant,
            'gt_size': GT_SIZE,
            'queue_size': 0,
            'jpeg_range': [60, 60],
            'jpeg_range2': [75, 75],
        }
        outs = []
        for device in (CPU, DEVICE):
            degrade = RealESRGANDegradation.from_options(opt)
            restart()
            set_random_seed(seed)
            outs.append(degrade(*(t.to(device) for t in _kernels(data))))
        (lq_cpu, gt_cpu, usm_cpu), (lq, gt, usm) = outs
        assert lq.device.type == gt.device.type == DEVICE.type
        assert lq.shape == lq_cpu.shape == (2, 3, GT_SIZE // SCALE, GT_SIZE // SCALE)
        assert torch.equal(gt.cpu(), gt_cpu)
        torch.testing.assert_close(usm.cpu(), usm_cpu, rtol=0, atol=1e-5)
        diff = (lq.cpu() - lq_cpu).abs()
        assert diff.mean() < 0.5 / 255 and (diff > 2.5 / 255).float().mean() < 0.02, (seed, diff.max() * 255)


def test_cuda_prefetcher_delivers_the_loaders_batches(tiny_data):
    """``datasets.train.prefetch_mode: cuda`` (basicsr's ``CUDAPrefetcher``, pinned memory): the
    loader's batches, same seed, on the GPU."""
    from basicsr.data import build_dataloader, build_dataset
    from basicsr.data.data_sampler import EnlargedSampler
    from basicsr.data.prefetch_dataloader import CUDAPrefetcher

    opt = point_at(load_yaml(REPO / 'options' / 'demo' / 'train_aesop.yml'), tiny_data)
    dataset_opt = {**opt['datasets']['train'], 'phase': 'train', 'scale': 4, 'gt_size': 64}
    dataset_opt.update(prefetch_mode='cuda', pin_memory=True, num_worker_per_gpu=0, batch_size_per_gpu=2)
    dataset = build_dataset(dataset_opt)
    sampler = EnlargedSampler(dataset, 1, 0, 1)
    loader = build_dataloader(dataset, dataset_opt, num_gpu=1, dist=False, sampler=sampler, seed=0)

    def batches(source: Iterator[dict] | CUDAPrefetcher, n: int = 3) -> list[dict]:
        out = []
        for _ in range(n):
            item = source.next() if isinstance(source, CUDAPrefetcher) else next(source)
            out.append(item)
        return out

    set_random_seed(0)
    expected = batches(iter(loader))
    set_random_seed(0)
    actual = batches(CUDAPrefetcher(loader, {'num_gpu': num_gpu(DEVICE)}))
    for got, want in zip(actual, expected, strict=True):
        assert set(got) == set(want) and got['gt_path'] == want['gt_path']
        for key in ('lq', 'gt'):
            assert got[key].device.type == DEVICE.type and want[key].device.type == 'cpu'
            assert torch.equal(got[key].cpu(), want[key]), key


# --------------------------------------------------------------------------------------------- networks, inference, FID


@pytest.mark.parametrize('arch', ['SwinIR', 'DRCT'])
def test_transformer_forward_on_the_gpu_equals_the_cpu(arch):
    """SwinIR and DRCT (tiny, windows of 4), eval: the GPU's output equals the CPU's (DRCT on an odd
    size, which it reflect-pads itself)."""
    if arch == 'SwinIR':
        net, x = build_network(dict(SWINIR)).eval(), torch.rand(2, 3, 12, 16)
    else:
        net, x = DRCT(**TINY_DRCT, upscale=4).eval(), torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        expected = net(x)
        actual = deepcopy(net).to(DEVICE)(x.to(DEVICE))
    assert actual.shape == expected.shape == (2, 3, x.shape[2] * 4, x.shape[3] * 4)
    assert expected.abs().max() > 0
    torch.testing.assert_close(actual.cpu(), expected, rtol=1e-4, atol=1e-5)


def test_tiled_half_inference_is_close_to_fp32_untiled():
    """``upscale(tile=…, half=True)`` on the GPU: fp16 autocast, tiles with context covering the
    receptive field; the result is the CPU's fp32 untiled one within fp16 rounding (and equal in fp32)."""
    net = tiny_net(INFER_ARCH)
    img = torch.rand(1, 3, 40, 52)
    reference = upscale(net, img, scale=4)  # CPU, fp32, whole image
    gpu = deepcopy(net).to(DEVICE)
    seen = Recorder(gpu.conv_first)
    tiled = upscale(gpu, img, scale=4, tile=16, tile_pad=RECEPTIVE_RADIUS, half=True)
    seen.remove()
    assert seen.dtypes == {torch.float16}
    assert tiled.dtype == torch.float32 and tiled.device == img.device and tiled.shape == reference.shape
    assert 0.05 < reference.mean() < 0.95  # not all clamped
    torch.testing.assert_close(tiled, reference, rtol=0, atol=1e-2)
    assert (tiled - reference).abs().mean() < 1e-3
    fp32 = upscale(gpu, img, scale=4, tile=16, tile_pad=RECEPTIVE_RADIUS)
    torch.testing.assert_close(fp32, reference, rtol=0, atol=1e-5)


def test_fid_on_the_gpu_equals_the_cpu():
    """FID's Inception features (random, seeded weights) and the Fréchet distance: the GPU's are the CPU's."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 80, dtype=np.float64)[None, :, None]
    smooth = [np.clip(ramp * (i + 1) / 6 + rng.normal(0, 4, (64, 80, 3)), 0, 255).astype(np.uint8) for i in range(4)]
    noisy = [rng.integers(0, 256, (64, 80, 3), dtype=np.uint8) for _ in range(4)]
    features = {}
    for device in (CPU, DEVICE):
        with metric_device(device):
            features[device.type] = [inception_features(images) for images in (smooth, noisy)]
    for got, want in zip(features[DEVICE.type], features['cpu'], strict=True):
        assert got.shape == want.shape == (4, 2048)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
    expected = frechet_distance(*features['cpu'])
    assert expected > 0
    assert frechet_distance(*features[DEVICE.type]) == pytest.approx(expected, rel=1e-3)


# --------------------------------------------------------------------------------------------- NCCL


def test_nccl_training_run_and_its_resume(tiny_data, tmp_path):
    """An AESOP GAN run (tiny G, D and ψ; the demo's option file; the CUDA prefetcher) under ``aesop.launch``
    with the NCCL backend: 4 iterations with checkpoints every 2 and validation, then ``--auto_resume`` to 8."""
    torch.manual_seed(0)
    g = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8}
    psi = {'type': 'AesopAutoEncoder', 'scale': 4, 'decoder': dict(g), 'num_block': 1}
    torch.save({'params_ema': build_network(dict(psi)).state_dict()}, tmp_path / 'psi.pth')
    opt = point_at(load_yaml(REPO / 'options' / 'demo' / 'train_aesop.yml'), tiny_data)
    opt.update(name='gpu_check_nccl', num_gpu=1, dist_params={'backend': 'nccl'}, network_g=g)
    opt['network_d'] = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 8, 'input_size': 128}
    opt['datasets']['train'].update(prefetch_mode='cuda', pin_memory=True)
    opt['path']['pretrain_network_g'] = None
    opt['train']['aesop_opt'].update(autoencoder=psi, pretrained=str(tmp_path / 'psi.pth'))
    opt['train']['perceptual_opt']['layer_weights'] = {'conv1_2': 0.1, 'conv2_2': 1.0}  # a truncated VGG19
    opt['val'].update(val_freq=4, save_img=False)
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2, use_tb_logger=False)
    launch = [sys.executable, '-m', 'aesop.launch', '--nproc_per_node=1', '--rdzv_backend=c10d']
    launch.append('--rdzv_endpoint=localhost:0')
    logs = []
    for total_iter, name, extra in ((4, 'first.yml', ()), (8, 'resumed.yml', ('--auto_resume',))):
        opt['train']['total_iter'] = total_iter
        proc = run_entry(
            'train', write_yaml(opt, tmp_path / name), tmp_path, '--launcher', 'pytorch', *extra, launcher=launch
        )
        logs.append(proc.stdout + proc.stderr)
    assert 'backend: nccl' in logs[0] and 'Use cuda prefetch dataloader' in logs[0]
    assert re.search(r'Resuming training from epoch: \d+, iter: 4\.', logs[1]) and 'End of training' in logs[1]
    exp = tmp_path / 'experiments' / 'gpu_check_nccl'
    assert (exp / 'models' / 'net_g_8.pth').is_file() and (exp / 'training_states' / '8.state').is_file()


# ------------------------------------------------------------------------------------ torch.compile (last: slowest)


def test_train_compile_true_compiles_g_and_d_and_steps_as_eager(tmp_path, psi):
    """``train.compile: true``: G and D go through ``torch.compile`` and 2 steps give the eager model's
    losses and weights."""
    pytest.importorskip('triton')  # inductor's GPU code generator
    from torch._dynamo.utils import counters

    from aesop.schema import apply_schema

    apply_schema({'name': 'x', 'datasets': {}, 'train': {'total_iter': 1, 'compile': True}})  # the schema takes it
    torch._dynamo.reset()
    counters.clear()
    ref, model = pair(aesop_gan(tmp_path, psi), aesop_gan(tmp_path, psi, compile=True), ref_device=DEVICE)
    assert is_compiled(model.net_g) and is_compiled(model.net_d) and not is_compiled(ref.net_g)
    inputs = batch()
    initial = states(ref)
    expected, actual = train(ref, inputs, range(1, 3)), train(model, inputs, range(1, 3))
    assert counters['stats']['unique_graphs'] >= 2, dict(counters['stats'])
    for got, want in zip(actual, expected, strict=True):
        assert_logs_close(got, want, rel=1e-3)
    assert_same_steps(model, ref, initial, rel=1e-2)
    torch._dynamo.reset()
