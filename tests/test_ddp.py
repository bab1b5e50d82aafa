"""DDP: one AE pretraining step on 2 CPU processes (gloo), one sample each, equals one step of a
single process on both samples (the losses are per-sample means, so DDP's gradient averaging
reproduces the global mean). The relativistic GAN's batch mean, in contrast, is per process,
as in BasicSR. Validation under DDP is sharded over the ranks and gives one process's means.
``train.accumulate`` (k micro-batches, one step) equals one step on the whole batch. Run by
pytest, which starts this file under torchrun."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

import aesop  # noqa: F401  (before basicsr)

TINY_AE = {
    'type': 'AesopAutoEncoder',
    'scale': 4,
    'num_block': 1,
    'decoder': {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 1, 'num_grow_ch': 8},
}


def ae_opt(folder: str, *, dist: bool, rank: int = 0, world_size: int = 1) -> dict:
    adam = {'type': 'Adam', 'lr': 1e-2, 'betas': [0.9, 0.99]}
    return {
        'name': 'ddp', 'model_type': 'AesopAEModel', 'is_train': True, 'dist': dist, 'num_gpu': 0,
        'rank': rank, 'world_size': world_size, 'scale': 4, 'network_g': TINY_AE,
        'path': {'models': folder, 'training_states': folder},
        'train': {'total_iter': 100, 'optim_g': adam,
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5},
                  'pixel_opt': {'type': 'L1Loss'}, 'pixel_at_LR_opt': {'type': 'L1Loss'}},
    }  # fmt: skip


VAL = {'metrics': {'psnr': {'type': 'calculate_psnr', 'crop_border': 4}}}


class TinyPairs(torch.utils.data.Dataset):
    """5 LR/HR pairs (an odd count: the two ranks' shards differ in size)."""

    opt = {'name': 'tiny'}

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> dict:
        generator = torch.Generator().manual_seed(10 + i)
        lq, gt = torch.rand(3, 8, 8, generator=generator), torch.rand(3, 32, 32, generator=generator)
        return {'lq': lq, 'gt': gt, 'lq_path': f'img{i}.png'}


def validate(opt: dict) -> dict[str, float]:
    """The means of a validation of the freshly built (seeded) model."""
    from conftest import build_model

    torch.manual_seed(0)
    model = build_model({**opt, 'val': VAL})
    model.validation(torch.utils.data.DataLoader(TinyPairs(), batch_size=1), 1, None, False)
    return dict(model.validator.metric_results)


def batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    return {'lq': torch.rand(2, 3, 8, 8, generator=generator), 'gt': torch.rand(2, 3, 32, 32, generator=generator)}


def one_step(opt: dict, data: dict) -> dict:
    from conftest import build_model

    torch.manual_seed(0)
    model = build_model(opt)
    model.feed_data(data)
    model.optimize_parameters(1)
    net = model.get_bare_model(model.net_g)
    weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
    grads = {f'grad.{k}': p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    return {**weights, **grads}  # the gradients too: Adam's first step is ≈ lr·sign(g), blind to their scale


def worker(out: str) -> None:
    torch.distributed.init_process_group('gloo')
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    data = {k: v[rank : rank + 1] for k, v in batch().items()}
    opt = ae_opt(os.path.dirname(out), dist=True, rank=rank, world_size=world)
    weights = one_step(opt, data)
    metrics = validate(opt)
    if rank == 0:
        torch.save({'weights': weights, 'metrics': metrics}, out)
    torch.distributed.destroy_process_group()


@pytest.mark.ddp
def test_two_processes_one_sample_each_equal_one_process_two_samples(tmp_path):
    from conftest import run_subprocess  # here: torchrun's workers run this file, without pytest

    torchrun = shutil.which('torchrun', path=str(Path(sys.executable).parent))
    out = tmp_path / 'ddp.pth'
    cmd = [torchrun, '--nproc_per_node=2', '--rdzv_backend=c10d', '--rdzv_endpoint=localhost:0', __file__, str(out)]
    proc = run_subprocess(cmd, timeout=180)  # torchrun starts the two processes itself
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = torch.load(out, weights_only=True)
    ddp = result['weights']
    single = one_step(ae_opt(str(tmp_path), dist=False), batch())
    assert result['metrics'] == validate(ae_opt(str(tmp_path), dist=False))  # sharded: the same means
    assert set(result['metrics']) == {'psnr', 'psnr_lr'}
    torch.manual_seed(0)
    from basicsr.archs import build_network

    initial = build_network(TINY_AE).state_dict()  # same seed: the weights before the step
    assert ddp.keys() == single.keys()
    assert any(not torch.equal(initial[k], single[k]) for k in initial)  # the step moved the weights
    for key in single:
        assert torch.allclose(ddp[key], single[key], atol=1e-6), key


def test_accumulation_equals_the_whole_batch(tmp_path):
    """train.accumulate: 2 micro-batches of one image, one step = one step on both images (per-sample means)."""
    whole = one_step(ae_opt(str(tmp_path), dist=False), batch())
    opt = ae_opt(str(tmp_path), dist=False)
    opt['train']['accumulate'] = 2
    accumulated = one_step(opt, batch())
    for key in whole:
        assert torch.allclose(accumulated[key], whole[key], atol=1e-6), key
    opt['train']['accumulate'] = 3
    with pytest.raises(aesop.errors.AesopError, match='must divide the batch'):
        one_step(opt, batch())


if __name__ == '__main__':
    worker(sys.argv[1])
