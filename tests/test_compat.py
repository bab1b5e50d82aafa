"""basicsr 1.4.2 on today's torch/torchvision: each fix of aesop.compat."""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import run_subprocess
from torchvision.models import vgg as tv_vgg

from aesop import compat
from aesop.backbones import OfflineZoo
from aesop.errors import AesopError
from aesop.options import load_option_file
from aesop.pipeline import load_resume_state
from aesop.weights import read_checkpoint


@pytest.mark.heavy
def test_basicsr_imports_on_this_torchvision_in_a_fresh_interpreter():
    code = 'import aesop, basicsr.data.degradations as d; print(d.rgb_to_grayscale.__module__)'
    proc = run_subprocess([sys.executable, '-c', code])  # a fresh interpreter: the import order is the point
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == 'torchvision.transforms.functional'


def test_registries_hold_ours_and_the_official_names():
    from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY

    for name in ('AesopAutoEncoder', 'AutoEncoder_RRDBNet', 'BicubicDown_RRDBNet', 'VGGStyleDiscriminator256'):
        assert name in ARCH_REGISTRY
    for name in ('AesopLoss', 'AesopLRConsistencyLoss', 'AesopLowPassLoss', 'AutoEncoderLoss', 'LRL1Loss'):
        assert name in LOSS_REGISTRY
    for name in ('AesopAEModel', 'AesopGANModel', 'AEModel', 'AesopESRGANArtifactsDisModel', 'ESRGANArtifactsDisModel'):
        assert name in MODEL_REGISTRY


def test_the_command_line_takes_basicsrs_flags_and_both_local_rank_spellings():
    from aesop.commands import pipeline_parser

    parser = pipeline_parser('train')
    for argv, rank in ((['--local-rank=1'], 1), (['--local-rank', '2'], 2), (['--local_rank=3'], 3)):
        assert parser.parse_args(['-opt', 'x.yml', *argv]).local_rank == rank
    args = parser.parse_args(['-opt', 'x.yml', '--force_yml', 'a=1', 'b:c=2', '--debug'])
    assert args.force_yml == ['a=1', 'b:c=2'] and args.debug


@pytest.mark.parametrize(
    ('num_gpu', 'overrides', 'cpu'), [(0, [], True), ('auto', [], False), ('auto', ['num_gpu=0'], True)]
)
def test_num_gpu_is_read_before_the_process_group_starts(num_gpu, overrides, cpu, tmp_path, monkeypatch):
    from aesop import options
    from aesop.utils import project_root

    seen = []

    def init_dist(launcher, *, cpu=False, **kwargs):
        seen.append(cpu)
        raise KeyboardInterrupt  # stop here: the process group is what this test is about

    monkeypatch.setattr(options, 'init_dist', init_dist)
    opt = load_option_file(project_root() / 'options/demo/train_psnr.yml')
    opt['num_gpu'] = num_gpu
    with pytest.raises(KeyboardInterrupt):
        options.load_options(opt, is_train=True, overrides=overrides, root_path=tmp_path, launcher='pytorch')
    assert seen == [cpu]


def test_random_backbones_are_seeded_he_normal_and_leave_the_global_rng_alone():
    """AESOP_RANDOM_BACKBONES (set by the tests): the same weights every time, He-normal convolutions
    (torchvision's VGG init), zero classifier (never run by the feature extractors)."""
    state = torch.random.get_rng_state()
    a, b = OfflineZoo().vgg19(pretrained=True), OfflineZoo().alexnet(pretrained=True)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.features[0].weight, OfflineZoo().vgg19(pretrained=True).features[0].weight)
    for net in (a, b):
        for conv in (m for m in net.features if isinstance(m, torch.nn.Conv2d)):
            fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
            assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.1)
            assert not conv.bias.any()
        assert all(not m.weight.any() for m in net.classifier if isinstance(m, torch.nn.Linear))
        assert not any(p.is_meta for p in net.parameters())


def test_offline_vgg_names_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('AESOP_ROOT', str(tmp_path))
    with pytest.raises(AesopError, match=r'vgg19-dcbb9e9d\.pth.*download\.pytorch\.org/models/vgg19-dcbb9e9d\.pth'):
        OfflineZoo().vgg19(pretrained=True)


@pytest.mark.heavy
def test_offline_vgg_loads_a_local_file_into_the_perceptual_loss(monkeypatch, tmp_path):
    from basicsr.losses.basic_loss import PerceptualLoss

    reference = tv_vgg.vgg19(weights=None)
    torch.save(reference.state_dict(), tmp_path / 'vgg19-dcbb9e9d.pth')
    monkeypatch.setenv('AESOP_RANDOM_BACKBONES', '0')
    monkeypatch.setenv('AESOP_PRETRAINED_DIR', str(tmp_path))
    loss = PerceptualLoss(layer_weights={'conv1_2': 1.0})
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, reference.features[0].weight)


def test_resume_state_loads_on_cpu_from_the_experiment_folder_and_skips_a_corrupt_one(tmp_path, monkeypatch):
    from basicsr.models.lr_scheduler import MultiStepRestartLR

    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters())
    scheduler = MultiStepRestartLR(optimizer, milestones=[10])
    states = tmp_path / 'exp' / 'training_states'
    states.mkdir(parents=True)
    state = {'epoch': 0, 'iter': 4, 'optimizers': [optimizer.state_dict()], 'schedulers': [scheduler.state_dict()]}
    torch.save(state, states / '4.state')
    (states / '8.state').write_bytes(b'truncated')
    monkeypatch.chdir(tmp_path)  # not the experiment folder: basicsr looked under ./experiments
    opt = {
        'auto_resume': True,
        'path': {'training_states': str(states), 'models': str(tmp_path / 'exp' / 'models'), 'resume_state': None},
    }
    resumed = load_resume_state(opt)
    assert resumed['iter'] == 4 and opt['path']['resume_state'].endswith('4.state')
    (states / '4.state').write_bytes(b'also truncated')
    opt['path']['resume_state'] = None
    with pytest.raises(AesopError, match=r'--auto_resume: no readable training state in .*training_states \(skipped'):
        load_resume_state(opt)  # not a silent restart from iteration 0


def test_a_pickled_callable_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    torch.save({'params': Payload()}, tmp_path / 'evil.pth')
    with pytest.raises(AesopError, match='arbitrary unpickling'):
        read_checkpoint(tmp_path / 'evil.pth')
    assert not marker.exists()


def test_ddp_wrapping_works_on_cpu():
    """AesopModel.model_to_device: DDP without device_ids on CPU (gloo, world size 1)."""
    from types import SimpleNamespace

    import torch.distributed as dist

    from aesop.models.base import AesopModel

    if not dist.is_available():
        pytest.skip('torch.distributed unavailable')
    dist.init_process_group('gloo', init_method='tcp://127.0.0.1:0', rank=0, world_size=1)
    try:
        opt = {'num_gpu': 0, 'is_train': True, 'dist': True, 'find_unused_parameters': False}  # the schema's default
        net = AesopModel.model_to_device(SimpleNamespace(device=torch.device('cpu'), opt=opt), torch.nn.Linear(2, 2))
        assert isinstance(net, torch.nn.parallel.DistributedDataParallel)
        net(torch.ones(1, 2)).sum().backward()
    finally:
        dist.destroy_process_group()


def test_filter2d_takes_channels_last_inputs():
    """Fix 6: the Real-ESRGAN blur works on DiffJPEG's strided outputs, with unchanged values."""
    import torch.nn.functional as F
    from basicsr.models import realesrgan_model
    from basicsr.utils import img_process_util

    img = torch.rand(2, 3, 12, 10).contiguous(memory_format=torch.channels_last)
    kernel = torch.rand(2, 5, 5)
    out = img_process_util.filter2D(img, kernel)
    assert realesrgan_model.filter2D is img_process_util.filter2D is compat.filter2D
    padded = F.pad(img.contiguous(), (2, 2, 2, 2), mode='reflect')  # basicsr's definition, written out
    for b in range(2):
        expected = F.conv2d(padded[b : b + 1].transpose(0, 1), kernel[b][None, None]).transpose(0, 1)
        torch.testing.assert_close(out[b : b + 1], expected)
