"""DDP: one AE pretraining step on 2 CPU processes (gloo), one sample each, equals one step of a
single process on both samples (the losses are per-sample means, so DDP's gradient averaging
reproduces the global mean). The relativistic GAN's batch mean, in contrast, is per process,
as in BasicSR. Validation under DDP is sharded over the ranks and gives one process's means, and one process's
FID and patch-FID (every rank's Inception features gathered, in dataset order).
With ``train.sync_bn_d`` D's batch norms see both processes' batches (one process: untouched).
``train.accumulate`` (k micro-batches, one step) equals one step on the whole batch. Run by
pytest, which starts this file under torchrun."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import aesop  # noqa: F401  (before basicsr)
from aesop.models.sync_bn import CPUSyncBatchNorm, sync_batch_norms

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


TINY_D = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 4, 'input_size': 128}


def gan_opt(folder: str, *, dist: bool, rank: int = 0, world_size: int = 1) -> dict:
    """A tiny AESOP-GAN training whose D synchronises its batch norms (``train.sync_bn_d``)."""
    opt = ae_opt(folder, dist=dist, rank=rank, world_size=world_size)
    del opt['train']['pixel_at_LR_opt']
    gan = {'type': 'GANLoss', 'gan_type': 'vanilla'}
    opt['train'].update(optim_d=dict(opt['train']['optim_g']), gan_opt=gan, sync_bn_d=True)
    generator = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_block': 1, 'num_grow_ch': 4}
    return {**opt, 'model_type': 'AesopGANModel', 'network_g': generator, 'network_d': TINY_D}


def d_batch() -> torch.Tensor:
    """4 HR images; rank r gets [2r, 2r + 2], the second pair brighter (the ranks' statistics differ)."""
    images = torch.rand(4, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    images[2:] += 1
    return images


def batch_norm_kinds(net: nn.Module) -> set[type]:
    return {type(m) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


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


def validate(opt: dict, val: dict = VAL, pairs: torch.utils.data.Dataset | None = None) -> dict[str, float]:
    """The means (and set-level values) of a validation of the freshly built (seeded) model on ``pairs``."""
    from conftest import build_model

    torch.manual_seed(0)
    model = build_model({**opt, 'val': val})
    model.validation(torch.utils.data.DataLoader(pairs or TinyPairs(), batch_size=1), 1, None, False)
    return dict(model.validator.metric_results)


FID_VAL = {
    'metrics': {
        'psnr': {'type': 'calculate_psnr', 'crop_border': 4},
        'fid': {'type': 'calculate_fid'},
        'patch_fid': {'type': 'calculate_patch_fid'},
    },
    'save_best': {'metric': 'fid'},  # lower is better: FID's own direction
}


class FidPairs(TinyPairs):
    """3 pairs, the second 600 px wide: 1, 2 and 1 patches of 299 px (rank 0 scores images 0 and 2, rank 1 image 1:
    the ranks' feature arrays differ in length)."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        if i == 1:
            generator = torch.Generator().manual_seed(20)
            item.update(lq=torch.rand(3, 8, 150, generator=generator), gt=torch.rand(3, 32, 600, generator=generator))
        return item


def fid_opt(folder: str, *, dist: bool, rank: int = 0, world_size: int = 1) -> dict:
    """A tiny SR model (no tagged pairs) whose validation set is named ``tiny`` (``val.save_best`` decides on it)."""
    opt = ae_opt(folder, dist=dist, rank=rank, world_size=world_size)
    del opt['train']['pixel_at_LR_opt']
    generator = {'type': 'RRDBNet', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_block': 1, 'num_grow_ch': 4}
    val_set = {'name': 'tiny', 'type': 'PairedImageDataset', 'dataroot_gt': folder, 'dataroot_lq': folder}
    val_set['io_backend'] = {'type': 'disk'}
    return {**opt, 'model_type': 'AesopSRModel', 'network_g': generator, 'datasets': {'val': val_set}}


def fid_worker(out: str) -> None:
    """This rank's validation results (``<out>.<rank>``); rank 0 writes ``net_g_best.json`` beside them."""
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    opt = fid_opt(os.path.dirname(out), dist=True, rank=rank, world_size=world)
    torch.save(validate(opt, FID_VAL, FidPairs()), f'{out}.{rank}')


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


def step_worker(out: str) -> None:
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    data = {k: v[rank : rank + 1] for k, v in batch().items()}
    opt = ae_opt(os.path.dirname(out), dist=True, rank=rank, world_size=world)
    weights = one_step(opt, data)
    metrics = validate(opt)
    if rank == 0:
        torch.save({'weights': weights, 'metrics': metrics}, out)


def sync_bn_worker(out: str) -> None:
    """D of the GAN model with ``train.sync_bn_d`` (the model's code path): one forward in train mode on this rank's
    pair and a backward; rank r writes ``<out>.<r>``, rank 0 also D's checkpoint (``net_d_1.pth``)."""
    from conftest import build_model

    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    torch.manual_seed(0)
    model = build_model(gan_opt(os.path.dirname(out), dist=True, rank=rank, world_size=world))
    net = model.get_bare_model(model.net_d)
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    images = d_batch()[2 * rank : 2 * rank + 2].requires_grad_()
    score = model.net_d(images)
    score.sum().backward()
    model.save_network(model.net_d, 'net_d', 1)
    kinds = sorted(kind.__name__ for kind in batch_norm_kinds(net))
    grads = {k: p.grad for k, p in net.named_parameters()}
    result = {'kinds': kinds, 'initial': initial, 'state': net.state_dict(), 'score': score.detach()}
    torch.save({**result, 'input_grad': images.grad, 'grads': grads}, f'{out}.{rank}')


WORKERS = {  # folder: (output, worker)
    'step': ('ddp.pth', step_worker),
    'fid': ('ddp/fid.pth', fid_worker),
    'sync_bn': ('sync.pth', sync_bn_worker),
}


def run_workers(root: str) -> None:
    """Every worker of :data:`WORKERS` in turn on one gloo process group, each in its folder under ``root``."""
    torch.distributed.init_process_group('gloo')
    for name, (out, worker) in WORKERS.items():
        worker(os.path.join(root, name, out))
        torch.distributed.barrier()
    torch.distributed.destroy_process_group()


@pytest.mark.ddp
def test_two_gloo_processes_equal_one(tmp_path, subtests):
    """One torchrun of 2 gloo processes (this file: :func:`run_workers`, a folder per worker), whose results each
    ``check_*`` below compares with one process's, as a subtest of its own (one launch: each costs seconds)."""
    from conftest import run_subprocess

    root = tmp_path / 'ddp'
    for name, (out, _) in WORKERS.items():
        (root / name / out).parent.mkdir(parents=True)
    torchrun = shutil.which('torchrun', path=str(Path(sys.executable).parent))
    cmd = [torchrun, '--nproc_per_node=2', '--rdzv_backend=c10d', '--rdzv_endpoint=localhost:0', __file__, str(root)]
    proc = run_subprocess(cmd, timeout=240)  # torchrun starts the two processes itself
    assert proc.returncode == 0, proc.stderr[-3000:]
    for check in (check_one_sample_each_equals_one_process_two_samples, check_fid, check_sync_bn_d):
        with subtests.test(check.__name__):
            (tmp_path / check.__name__).mkdir()
            check(root, tmp_path / check.__name__)


def check_one_sample_each_equals_one_process_two_samples(root: Path, tmp_path: Path) -> None:
    """One AE step, one sample per process, equals one process's step on both; the sharded validation its means."""
    out = root / 'step' / 'ddp.pth'
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


def check_fid(root: Path, tmp_path: Path) -> None:
    """FID and patch-FID of a validation sharded over 2 gloo processes (3 images: 2 and 1; patches 1 + 1 and 2)
    equal one process's, on both ranks; ``val.save_best: {metric: fid}`` records it as lower-is-better."""
    import json

    out = root / 'fid' / 'ddp' / 'fid.pth'
    ranks = [torch.load(f'{out}.{rank}', weights_only=True) for rank in range(2)]
    single = validate(fid_opt(str(tmp_path), dist=False), FID_VAL, FidPairs())
    assert list(single) == ['psnr', 'fid', 'patch_fid'] and single['fid'] > 0 and single['patch_fid'] > 0
    assert ranks[0] == ranks[1]  # every rank computed the same values from the same gathered features
    for name, value in single.items():
        assert ranks[0][name] == pytest.approx(value, rel=1e-5), name  # 1 thread per process here: last bits
    for folder, fid in ((tmp_path, single['fid']), (out.parent, ranks[0]['fid'])):
        record = json.loads((folder / 'net_g_best.json').read_text())
        assert record['metric'] == 'fid' and record['better'] == 'lower' and record['value'] == fid


def test_the_gathered_shards_are_in_dataset_order(monkeypatch):
    """Rank r's j-th image is the dataset's (j · world + r)-th: rows and features (any number of rows per image) of
    both ranks back in dataset order, on every rank, and a rank's failure reaches all."""
    from aesop.models import validation

    def pair(n: int) -> tuple:
        return np.full((n, 2), float(n)), np.zeros((n, 2))

    rank_0 = ({'a': {'psnr': 1.0}, 'c': {'psnr': 3.0}}, {'a': {'fid': pair(1)}, 'c': {'fid': pair(3)}}, None)
    rank_1 = ({'b': {'psnr': 2.0}}, {'b': {'fid': pair(2)}}, 'rank 1 failed')
    monkeypatch.setattr(
        validation.dist, 'all_gather_object', lambda parts, _: parts.__setitem__(slice(None), [rank_0, rank_1])
    )
    rows, features, failure = validation.gather_shards(*rank_0, world=2)
    assert list(rows) == list(features) == ['a', 'b', 'c'] and failure == 'rank 1 failed'
    assert [len(features[name]['fid'][0]) for name in features] == [1, 2, 3]


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


def check_sync_bn_d(root: Path, tmp_path: Path) -> None:
    """``train.sync_bn_d`` under DDP (gloo, CPU: this package's all-reduce forward): each rank's D normalises with the
    statistics of both ranks' pairs. A plain D (BatchNorm2d, loading the synchronised D's initial state) on the 4
    images in one process is the reference: the same running statistics, scores and input gradients on both ranks
    and, DDP averaging, half its parameter gradients; a per-rank batch norm's running mean differs. The checkpoint
    rank 0 saved has the bare module's keys and loads into a plain D."""
    from basicsr.archs import build_network

    out = root / 'sync_bn' / 'sync.pth'
    ranks = [torch.load(f'{out}.{rank}', weights_only=True) for rank in range(2)]
    whole = build_network(TINY_D)
    whole.load_state_dict(ranks[0]['initial'])
    images = d_batch().requires_grad_()
    score = whole(images)
    score.sum().backward()
    running = [key for key in whole.state_dict() if 'running' in key]
    assert len(running) == 2 * 9  # running_mean and _var of the 9 batch norms of a 128-px D
    close = {'rtol': 1e-4, 'atol': 1e-5}
    for rank, result in enumerate(ranks):
        assert result['kinds'] == ['CPUSyncBatchNorm']
        part = slice(2 * rank, 2 * rank + 2)
        for key in running:
            torch.testing.assert_close(result['state'][key], whole.state_dict()[key], **close, msg=key)
        torch.testing.assert_close(result['score'], score[part].detach(), **close)
        torch.testing.assert_close(result['input_grad'], images.grad[part], **close)
        for key, param in whole.named_parameters():
            torch.testing.assert_close(result['grads'][key], param.grad / 2, **close, msg=key)
    per_rank = build_network(TINY_D)
    per_rank.load_state_dict(ranks[0]['initial'])
    per_rank(d_batch()[:2])
    assert not torch.allclose(per_rank.bn0_1.running_mean, ranks[0]['state']['bn0_1.running_mean'], atol=1e-3)
    saved = torch.load(out.parent / 'net_d_1.pth', weights_only=True)['params']
    assert list(saved) == list(whole.state_dict())
    build_network(TINY_D).load_state_dict(saved)  # strict


def test_sync_bn_d_is_off_by_default_and_leaves_one_process_alone(tmp_path):
    """Unset, ``train.sync_bn_d`` is false; set on one process, D keeps its BatchNorm2d (nothing to synchronise)."""
    from conftest import build_model

    for sync in (None, True):
        opt = gan_opt(str(tmp_path), dist=False)
        if sync is None:
            del opt['train']['sync_bn_d']
        model = build_model(opt)
        assert model.opt['train']['sync_bn_d'] is bool(sync)
        assert batch_norm_kinds(model.net_d) == {nn.BatchNorm2d}


@pytest.mark.parametrize('device', ['cpu', 'cuda'])  # converted only: torch's SyncBatchNorm for CUDA
def test_a_synchronised_d_keeps_its_state_dict_keys(device):
    """:func:`sync_batch_norms` keeps the parameters and buffers: the same keys, a checkpoint loads either way
    (strict); without a process group D normalises as with BatchNorm2d."""
    from basicsr.archs import build_network

    torch.manual_seed(0)
    plain = build_network(TINY_D)
    synced = sync_batch_norms(build_network(TINY_D), device=torch.device(device))
    kind = CPUSyncBatchNorm if device == 'cpu' else nn.SyncBatchNorm
    assert batch_norm_kinds(synced) == {kind} and batch_norm_kinds(plain) == {nn.BatchNorm2d}
    assert list(synced.state_dict()) == list(plain.state_dict())
    synced.load_state_dict(plain.state_dict())
    plain.load_state_dict(synced.state_dict())
    if device == 'cpu':
        images = d_batch()
        torch.testing.assert_close(synced(images), plain(images))
        torch.testing.assert_close(synced.state_dict(), plain.state_dict())


if __name__ == '__main__':
    run_workers(sys.argv[1])
