"""Fixes that make ``basicsr==1.4.2`` run on today's PyTorch, on CPU and GPU alike.

Importing :mod:`aesop` applies them, in this order, before anything else imports basicsr.
Each fix is small, named after what it repairs, and tested in ``tests/test_compat.py``:

1. ``torchvision.transforms.functional_tensor`` was removed from torchvision (0.17); basicsr's
   ``degradations.py`` imports ``rgb_to_grayscale`` from it. We alias the module to
   ``torchvision.transforms.functional``, which has the same function.
2. ``init_dist`` always used NCCL and ``torch.cuda.set_device``: we use gloo without CUDA or
   with ``num_gpu: 0`` (read from the option file before basicsr initialises the process
   group) and pick the GPU from ``LOCAL_RANK`` (torchrun) rather than the global rank.
3. ``BaseModel.model_to_device`` passed ``device_ids=[torch.cuda.current_device()]`` to DDP,
   which fails on CPU.
4. ``BaseModel.load_network`` used ``torch.load`` without ``weights_only`` and printed
   mismatches instead of failing clearly: we load through :func:`aesop.weights.load_weights`.
5. ``basicsr.train.load_resume_state`` called ``torch.cuda.current_device()`` (fails on CPU)
   and looked for ``--auto_resume`` states under the *working directory*; ours looks in the
   experiment's ``training_states`` folder, loads with ``weights_only=True`` and skips a
   corrupt newest state with a warning.
6. ``VGGFeatureExtractor`` read ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` relative to
   the working directory and otherwise downloaded ImageNet weights via the removed
   ``pretrained=`` argument: see :class:`OfflineVGGZoo`.
7. ``parse_options``: accepts ``--local-rank`` (``torch.distributed.launch`` in PyTorch ≥ 2.0),
   reads option files with YAML's safe loader (basicsr's full loader ran ``!!python/…`` tags) and
   ``--force_yml`` values without ``eval`` (after checking their keys, which basicsr ``exec``-s),
   and then normalises the options (:func:`aesop.options.normalize_options`); a training run holds
   its experiment folder (:mod:`aesop.runlock`) and a torchrun worker stops when its agent dies.
8. ``save_network`` / ``save_training_state`` wrote in place (a kill mid-write left a truncated
   file that auto-resume then picked) and ignored write errors: ours write atomically
   (:func:`aesop.weights.atomic_save`) and fail loudly.
9. A NaN or inf loss went on training and got saved: ``reduce_loss_dict`` now stops the run,
   naming the iteration and the loss term, before the next checkpoint.
10. ``PairedImageDataset`` failed on a corrupt image or an LR/GT pair of the wrong sizes with an
    ``AttributeError`` or a bare ``ValueError``: now one line naming the files and sizes; in
    training an image that does not decode is skipped with a warning naming it.
11. ``filter2D`` (the Real-ESRGAN blurs) flattened its input with ``.view``, which fails on the
    channels-last-strided tensors ``DiffJPEG`` returns on current PyTorch: it now gets a
    contiguous input (same values), in ``img_process_util`` and the modules that imported it.
12. ``init_wandb_logger`` called ``wandb.util.generate_id``, which current wandb removed, and let
    wandb write to the working directory: ours lets ``wandb.init`` make the id and writes under
    the experiment folder (``experiments/<name>/wandb``).
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import math
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist


def install_functional_tensor_alias() -> None:
    """Fix 1: alias the removed ``torchvision.transforms.functional_tensor`` module."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    from torchvision.transforms import functional

    sys.modules[name] = functional


install_functional_tensor_alias()

import basicsr.archs.vgg_arch as _vgg_arch  # noqa: E402
import basicsr.models.realesrgan_model as _bsr_realesrgan  # noqa: E402
import basicsr.models.realesrnet_model as _bsr_realesrnet  # noqa: E402
import basicsr.test as _bsr_test  # noqa: E402
import basicsr.train as _bsr_train  # noqa: E402
import basicsr.utils.img_process_util as _bsr_img_process  # noqa: E402
import basicsr.utils.options as _bsr_options  # noqa: E402
import cv2  # noqa: E402
from basicsr.data.paired_image_dataset import PairedImageDataset  # noqa: E402
from basicsr.models.base_model import BaseModel  # noqa: E402
from basicsr.utils.dist_util import master_only  # noqa: E402
from basicsr.utils.misc import check_resume  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from aesop.errors import AesopError  # noqa: E402
from aesop.options import ordered_yaml, parse_override_value  # noqa: E402
from aesop.runlock import exit_with_parent, hold_experiment, remove_stale_temporaries  # noqa: E402
from aesop.utils import find_pretrained_file, random_backbones  # noqa: E402
from aesop.weights import atomic_save, load_weights, read_checkpoint  # noqa: E402

logger = logging.getLogger('basicsr')

# Training states hold basicsr's MultiStepRestartLR, whose milestones are a Counter.
torch.serialization.add_safe_globals([collections.Counter])


_CPU_ONLY = False  # set by parse_options from the option file's num_gpu, before init_dist runs


def init_dist(launcher: str, backend: str | None = None, **kwargs) -> None:
    """Fix 2: NCCL on GPUs, gloo on CPU (no CUDA, or ``num_gpu: 0``); GPU chosen by ``LOCAL_RANK``."""
    if launcher not in ('pytorch', 'slurm'):
        raise AesopError(f'unknown --launcher {launcher!r}; use one of: none, pytorch, slurm')
    if launcher == 'pytorch' and not {'RANK', 'WORLD_SIZE', 'MASTER_ADDR'} <= set(os.environ):
        raise AesopError(
            '--launcher pytorch needs the process group torchrun sets up: '
            'torchrun --nproc_per_node=N aesop/train.py -opt … --launcher pytorch (or drop --launcher)'
        )
    cuda = torch.cuda.is_available() and not _CPU_ONLY
    backend = backend if cuda and backend else ('nccl' if cuda else 'gloo')
    if launcher == 'slurm':
        from basicsr.utils.dist_util import _init_dist_slurm

        if cuda:
            _init_dist_slurm(backend, **kwargs)
            return
        raise AesopError('--launcher slurm needs GPUs; on CPU use torchrun with --launcher pytorch')
    if cuda:
        local_rank = int(os.environ.get('LOCAL_RANK', os.environ.get('RANK', '0')))
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, **kwargs)


def model_to_device(self: BaseModel, net: torch.nn.Module) -> torch.nn.Module:
    """Fix 3: DDP without ``device_ids`` on CPU."""
    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(
            net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False)
        )
    elif self.opt['num_gpu'] > 1:
        net = torch.nn.DataParallel(net)
    return net


def load_network(self: BaseModel, net: torch.nn.Module, load_path: str, strict: bool = True, param_key='params'):
    """Fix 4: ``weights_only=True``, and a clear error for a checkpoint that doesn't fit."""
    net = self.get_bare_model(net)
    logger.info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
    option = next((f'path.{k}' for k, v in self.opt['path'].items() if v == load_path), None)
    load_weights(net, load_path, param_key=param_key, strict=strict, fallback=True, option=option)


def load_resume_state(opt: dict):
    """Fix 5: resume on CPU, auto-resume from the experiment folder, skip a corrupt newest state."""
    if opt['auto_resume']:
        state_dir = Path(opt['path']['training_states'])
        states = sorted(state_dir.glob('*.state'), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
        for path in reversed(states):
            try:
                state = read_checkpoint(path, option='--auto_resume')
            except AesopError as err:
                logger.warning(f'skipping training state: {err}')
                print(f'aesop: warning: skipping training state: {err}', file=sys.stderr)
                continue
            opt['path']['resume_state'] = str(path)
            break
        else:
            if states:  # restarting from iteration 0 would archive the run's folder: say so instead
                raise AesopError(
                    f'--auto_resume: no readable training state in {state_dir} (skipped, all truncated or corrupt: '
                    f'{", ".join(p.name for p in states)}); remove them to start over, or drop --auto_resume'
                )
            return None
    elif opt['path'].get('resume_state'):
        state = read_checkpoint(opt['path']['resume_state'], option='path.resume_state')
    else:
        return None
    check_resume(opt, state['iter'])
    return state


class OfflineVGGZoo:
    """Fix 6: stands in for ``torchvision.models.vgg`` inside ``basicsr.archs.vgg_arch``.

    ``vgg19(pretrained=True)`` loads the ImageNet file (``vgg19-dcbb9e9d.pth``) from the first of
    :func:`aesop.utils.pretrained_search_dirs` holding it (``$AESOP_PRETRAINED_DIR``, the
    project's ``experiments/pretrained_models/``, torch's hub cache), never downloads, and names
    the missing file otherwise. With ``AESOP_RANDOM_BACKBONES=1`` the weights stay random.
    """

    def __getattr__(self, name: str):
        from torchvision.models import vgg as tv_vgg

        builder = getattr(tv_vgg, name)

        def build(pretrained: bool = False) -> torch.nn.Module:
            with torch.random.fork_rng(devices=[]):
                if pretrained and random_backbones():
                    torch.manual_seed(0)  # the same random backbone in every run: comparable numbers
                net = builder(weights=None)
            if pretrained and random_backbones():
                logger.warning(f'{name}: random weights (AESOP_RANDOM_BACKBONES is set, seed 0)')
            elif pretrained:
                url = getattr(tv_vgg, f'{name.upper()}_Weights').IMAGENET1K_V1.url
                path = find_pretrained_file(url.rsplit('/', 1)[-1], url=url, what=f'{name.upper()} (perceptual loss)')
                net.load_state_dict(read_checkpoint(path))
            return net

        return build


@master_only
def save_network(self: BaseModel, net, net_label: str, current_iter, param_key='params') -> None:
    """Fix 8: ``models/<net_label>_<iter>.pth`` with one state dict per ``param_key``, atomically."""
    nets = net if isinstance(net, list) else [net]
    keys = param_key if isinstance(param_key, list) else [param_key]
    checkpoint = {
        key: {k.removeprefix('module.'): v.cpu() for k, v in self.get_bare_model(n).state_dict().items()}
        for n, key in zip(nets, keys, strict=True)
    }
    label = 'latest' if current_iter == -1 else current_iter
    atomic_save(checkpoint, Path(self.opt['path']['models']) / f'{net_label}_{label}.pth')


@master_only
def save_training_state(self: BaseModel, epoch: int, current_iter: int) -> None:
    """Fix 8: ``training_states/<iter>.state`` (optimisers, schedulers), atomically."""
    if current_iter == -1:
        return
    state = {
        'epoch': epoch,
        'iter': current_iter,
        'optimizers': [o.state_dict() for o in self.optimizers],
        'schedulers': [s.state_dict() for s in self.schedulers],
        **(self.extra_training_state() if hasattr(self, 'extra_training_state') else {}),  # e.g. ψ's digest
    }
    atomic_save(state, Path(self.opt['path']['training_states']) / f'{current_iter}.state')


def update_learning_rate(self: BaseModel, current_iter: int, warmup_iter: int = -1) -> None:
    """Remembers the iteration for fix 9 (BasicSR's loop calls this once per iteration)."""
    self.current_iter = current_iter
    _basicsr_update_learning_rate(self, current_iter, warmup_iter)


def reduce_loss_dict(self: BaseModel, loss_dict):
    """Fix 9: stop on a non-finite loss before anything containing it is saved."""
    log_dict = _basicsr_reduce_loss_dict(self, loss_dict)
    for name, value in log_dict.items():
        if not math.isfinite(value):
            from aesop.models.checkpoint import where_to_resume

            raise AesopError(
                f'loss {name} is {value} at iteration {getattr(self, "current_iter", "?")}: training stopped; '
                f'{where_to_resume(self.opt)}'
            )
    return log_dict


def paired_getitem(self: PairedImageDataset, index: int) -> dict:
    """Fix 10: name the unreadable file, or the LR/GT pair whose sizes don't fit ``scale``. In training,
    a pair that does not decode is skipped (the next one is used) with a warning naming it."""
    from aesop.data.scan import first_decodable

    return first_decodable(self, index, lambda i: _paired_getitem(self, i), skip=self.opt['phase'] == 'train')


def _paired_getitem(self: PairedImageDataset, index: int) -> dict:
    paths = self.paths[index]
    try:
        item = _basicsr_paired_getitem(self, index)
    except Exception as err:
        shapes = {}
        for key in ('gt_path', 'lq_path'):
            img = cv2.imread(paths[key], cv2.IMREAD_UNCHANGED)
            if img is None:
                from aesop.data.scan import UndecodableImageError

                raise UndecodableImageError(f'cannot read image {paths[key]}: missing, unreadable or corrupt') from err
            shapes[key] = img.shape[:2]
        if shapes:
            _check_pair_sizes(paths, shapes['gt_path'], shapes['lq_path'], self.opt)
        raise
    _check_pair_sizes(paths, tuple(item['gt'].shape[-2:]), tuple(item['lq'].shape[-2:]), self.opt)
    return item


def _check_pair_sizes(paths: dict, gt: tuple, lq: tuple, opt: dict) -> None:
    """GT must be exactly ``scale`` × LR (after BasicSR's validation crop) and fit ``gt_size``."""
    scale = opt['scale']
    pair = f'{paths["gt_path"]} ({gt[0]}×{gt[1]}) and {paths["lq_path"]} ({lq[0]}×{lq[1]})'
    if tuple(gt) != (lq[0] * scale, lq[1] * scale):
        raise AesopError(f'GT/LR sizes do not match scale {scale}: {pair}')
    gt_size = opt.get('gt_size') if opt['phase'] == 'train' else None
    if gt_size and min(gt) < gt_size:
        raise AesopError(f'images smaller than gt_size {gt_size}: {pair}')


def parse_options(root_path: str, is_train: bool = True):
    """Fix 7: accept ``--local-rank``; read the option file safely first (one-line errors for a missing,
    empty, malformed or code-running file, missing sections, bad ``--force_yml`` entries); then
    basicsr's parser, and the options normalised."""
    from aesop.options import REQUIRED_SECTIONS, check_force_yml, coerce_numbers, load_option_file, normalize_options
    from aesop.schema import check_schema

    global _CPU_ONLY
    sys.argv = normalize_argv(sys.argv)
    if '-opt' in sys.argv[:-1]:
        file_opt = load_option_file(sys.argv[sys.argv.index('-opt') + 1], required=REQUIRED_SECTIONS[is_train])
        overrides = force_yml_entries(sys.argv)
        check_force_yml(file_opt, overrides)
        coerce_numbers(file_opt)
        check_schema(file_opt)  # before basicsr's parser, which fails on a missing name with a KeyError
        _CPU_ONLY = requested_num_gpu(file_opt, overrides) == 0
    opt, args = _basicsr_parse_options(root_path, is_train=is_train)
    normalize_options(opt, root_path=root_path)
    if opt['dist'] and 'TORCHELASTIC_RUN_ID' in os.environ:
        exit_with_parent()  # a killed torchrun agent must not leave its workers training
    where = Path(root_path) / ('experiments' if is_train else 'results')
    writable = where if where.exists() else Path(root_path)
    if not os.access(writable, os.W_OK):  # every rank: they all stop, none waits for rank 0
        raise AesopError(f'cannot write to {writable}: run from a writable folder or set AESOP_ROOT to one')
    if is_train:
        _hold_experiment(opt)
    return opt, args


def _hold_experiment(opt: dict) -> None:
    """Rank 0 takes the experiment's lock; under DDP every rank learns whether it could."""
    message = None
    if opt['rank'] == 0:
        try:
            hold_experiment(opt['path']['experiments_root'])
        except AesopError as err:
            message = str(err)
        else:
            remove_stale_temporaries(opt['path']['experiments_root'])
    if opt['dist']:
        shared = [message]
        dist.broadcast_object_list(shared, src=0)
        message = shared[0]
    if message:
        raise AesopError(message)


def force_yml_entries(argv: list[str]) -> list[str]:
    """The ``key=value`` entries after ``--force_yml`` (up to the next flag)."""
    if '--force_yml' not in argv:
        return []
    entries = []
    for arg in argv[argv.index('--force_yml') + 1 :]:
        if arg.startswith('-'):  # the next flag (-opt, --debug, …); an entry starts with its key
            break
        entries.append(arg)
    return entries


def requested_num_gpu(file_opt: dict, overrides: list[str]):
    """``num_gpu`` of the option file, or of a ``--force_yml num_gpu=…`` entry (0 as an int)."""
    value = file_opt.get('num_gpu')
    for entry in overrides:
        if entry.replace(' ', '').startswith('num_gpu='):
            value = entry.split('=', 1)[1].strip()
    return 0 if str(value) == '0' else value


def filter2D(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # noqa: N802  (basicsr's name)
    """Fix 11: basicsr's ``filter2D`` on a contiguous copy of ``img`` (B, C, H, W)."""
    return _basicsr_filter2d(img.contiguous(), kernel)


@master_only
def init_wandb_logger(opt: dict) -> None:
    """Fix 12: wandb syncing the tensorboard log, on current wandb (``logger.wandb.project``, ``resume_id``)."""
    import wandb

    wandb_opt = opt['logger']['wandb']
    resume_id = wandb_opt.get('resume_id')
    run = wandb.init(
        id=resume_id,
        resume='allow' if resume_id else None,
        name=opt['name'],
        config=opt,
        project=wandb_opt['project'],
        dir=opt['path']['experiments_root'],
        sync_tensorboard=True,
    )
    logger.info(f'Use wandb logger with id={run.id}; project={wandb_opt["project"]}.')


def normalize_argv(argv: list[str]) -> list[str]:
    """``--local-rank`` (``torch.distributed.launch``) → ``--local_rank`` (basicsr's flag)."""
    return [a.replace('--local-rank', '--local_rank', 1) if a.startswith('--local-rank') else a for a in argv]


_basicsr_parse_options = _bsr_options.parse_options
_basicsr_filter2d = _bsr_img_process.filter2D
_basicsr_update_learning_rate = BaseModel.update_learning_rate
_basicsr_reduce_loss_dict = BaseModel.reduce_loss_dict
_basicsr_paired_getitem = PairedImageDataset.__getitem__
_bsr_options.init_dist = init_dist
BaseModel.model_to_device = model_to_device
BaseModel.load_network = load_network
_bsr_train.load_resume_state = load_resume_state
_bsr_train.parse_options = parse_options
_bsr_options.ordered_yaml = ordered_yaml  # the option file: YAML's safe loader (no code-running tags)
_bsr_options._postprocess_yml_value = parse_override_value  # --force_yml values without eval
_bsr_train.init_wandb_logger = init_wandb_logger
_bsr_test.parse_options = parse_options
_vgg_arch.vgg = OfflineVGGZoo()
_vgg_arch.VGG_PRETRAIN_PATH = ''  # never look relative to the working directory
BaseModel.save_network = save_network
BaseModel.save_training_state = save_training_state
BaseModel.update_learning_rate = update_learning_rate
BaseModel.reduce_loss_dict = reduce_loss_dict
PairedImageDataset.__getitem__ = paired_getitem
for _module in (_bsr_img_process, _bsr_realesrgan, _bsr_realesrnet):
    _module.filter2D = filter2D
