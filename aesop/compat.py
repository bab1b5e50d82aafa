"""Patches that make ``basicsr==1.4.2`` run on today's PyTorch, on CPU and GPU alike.

Only what no subclass or hook of this package can do is patched here: a module basicsr imports
at module level, and its free functions (the training loop's helpers, the option parser).
Importing :mod:`aesop` applies them, before anything else imports basicsr. The policies of this
package's models (CPU DDP, ``weights_only`` loading, atomic saves, the NaN stop) are overrides in
:class:`aesop.models.base.AesopModel`; those of ``PairedImageDataset`` (one-line errors,
undecodable pairs skipped) are :class:`aesop.data.paired_dataset.AesopPairedImageDataset`.
Each fix is tested in ``tests/test_compat.py``:

1. ``torchvision.transforms.functional_tensor`` was removed from torchvision (0.17); basicsr's
   ``degradations.py`` imports ``rgb_to_grayscale`` from it. We alias the module to
   ``torchvision.transforms.functional``, which has the same function.
2. ``init_dist`` always used NCCL and ``torch.cuda.set_device``: we use gloo without CUDA or
   with ``num_gpu: 0`` (read from the option file on the command line, before basicsr
   initialises the process group) and pick the GPU from ``LOCAL_RANK`` (torchrun) rather than
   the global rank.
3. ``basicsr.train.load_resume_state`` called ``torch.cuda.current_device()`` (fails on CPU)
   and looked for ``--auto_resume`` states under the *working directory*; ours looks in the
   experiment's ``training_states`` folder, loads with ``weights_only=True`` and skips a
   corrupt newest state with a warning.
4. ``VGGFeatureExtractor`` read ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` relative to
   the working directory and otherwise downloaded ImageNet weights via the removed
   ``pretrained=`` argument: see :class:`aesop.backbones.OfflineZoo`.
5. ``parse_options``: accepts ``--local-rank`` (``torch.distributed.launch`` in PyTorch ≥ 2.0),
   reads option files with YAML's safe loader (basicsr's full loader ran ``!!python/…`` tags) and
   ``--force_yml`` values without ``eval`` (after checking their keys, which basicsr ``exec``-s),
   and then normalises the options (:func:`aesop.options.normalize_options`); a training run holds
   its experiment folder (:mod:`aesop.runlock`) and a torchrun worker stops when its agent dies.
6. ``filter2D`` (the Real-ESRGAN blurs) flattened its input with ``.view``, which fails on the
   channels-last-strided tensors ``DiffJPEG`` returns on current PyTorch: it now gets a
   contiguous input (same values), in ``img_process_util`` and the modules that imported it.
7. ``init_wandb_logger`` called ``wandb.util.generate_id``, which current wandb removed, and let
   wandb write to the working directory: ours lets ``wandb.init`` make the id and writes under
   the experiment folder (``experiments/<name>/wandb``); a failing ``wandb.init`` (no login, no
   network) is one warning and the run goes on with tensorboard.
8. SwinIR's ``window_reverse`` computed the batch size as ``int(windows / (h * w / ws / ws))``, a
   float division that ``torch.export`` (ONNX export, ``torch.compile`` with dynamic shapes)
   turns into a fixed batch size: ours divides integers (the same values). DRCT imports it.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

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

import basicsr.archs.swinir_arch as _bsr_swinir  # noqa: E402
import basicsr.archs.vgg_arch as _vgg_arch  # noqa: E402
import basicsr.models.realesrgan_model as _bsr_realesrgan  # noqa: E402
import basicsr.models.realesrnet_model as _bsr_realesrnet  # noqa: E402
import basicsr.test as _bsr_test  # noqa: E402
import basicsr.train as _bsr_train  # noqa: E402
import basicsr.utils.img_process_util as _bsr_img_process  # noqa: E402
import basicsr.utils.options as _bsr_options  # noqa: E402
from basicsr.utils.dist_util import master_only  # noqa: E402
from basicsr.utils.misc import check_resume  # noqa: E402

from aesop.backbones import OfflineZoo  # noqa: E402
from aesop.errors import AesopError  # noqa: E402
from aesop.options import (  # noqa: E402
    REQUIRED_SECTIONS,
    OptionDumper,
    OptionLoader,
    apply_force_yml,
    load_option_file,
    normalize_options,
    ordered_yaml,
    parse_override_value,
    prepare_options,
)
from aesop.runlock import exit_with_parent, hold_experiment, remove_stale_temporaries  # noqa: E402
from aesop.utils import warn  # noqa: E402
from aesop.weights import read_checkpoint  # noqa: E402

logger = logging.getLogger('basicsr')

# Training states hold basicsr's MultiStepRestartLR, whose milestones are a Counter.
torch.serialization.add_safe_globals([collections.Counter])


def init_dist(launcher: str, backend: str | None = None, **kwargs) -> None:
    """Fix 2: NCCL on GPUs, gloo on CPU (no CUDA, or ``num_gpu: 0``); GPU chosen by ``LOCAL_RANK``."""
    if launcher not in ('pytorch', 'slurm'):
        raise AesopError(f'unknown --launcher {launcher!r}; use one of: none, pytorch, slurm')
    if launcher == 'pytorch' and not {'RANK', 'WORLD_SIZE', 'MASTER_ADDR'} <= set(os.environ):
        raise AesopError(
            '--launcher pytorch needs the process group torchrun sets up: '
            'torchrun --nproc_per_node=N aesop/train.py -opt … --launcher pytorch (or drop --launcher)'
        )
    cuda = torch.cuda.is_available() and not cpu_only_requested()
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


def load_resume_state(opt: dict):
    """Fix 3: resume on CPU, auto-resume from the experiment folder, skip a corrupt newest state."""
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


def parse_options(root_path: str, is_train: bool = True):
    """Fix 5: accept ``--local-rank``; read the option file safely first (one-line errors for a missing,
    empty, malformed or code-running file, missing sections, bad ``--force_yml`` entries); then
    basicsr's parser, and the options normalised."""
    sys.argv = normalize_argv(sys.argv)
    if '-opt' not in sys.argv[:-1]:  # basicsr's parser says what is missing
        _basicsr_parse_options(root_path, is_train=is_train)
    file_opt = load_option_file(sys.argv[sys.argv.index('-opt') + 1], required=REQUIRED_SECTIONS[is_train])
    overrides = force_yml_entries(sys.argv)
    file_opt['is_train'] = is_train  # as basicsr's parser sets it (the release's names depend on it)
    prepare_options(apply_force_yml(file_opt, overrides))  # before basicsr's parser: it reads these options
    argv, sys.argv = sys.argv, without_force_yml(sys.argv, overrides)  # applied above, values checked
    try:
        with _PreparedLoader.holding(file_opt):
            opt, args = _basicsr_parse_options(root_path, is_train=is_train)
    finally:
        sys.argv = argv
    normalize_options(opt, root_path=root_path, prepared=True)
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


class _PreparedLoader(OptionLoader):
    """basicsr's parser loads the option file with ``yaml.load(f, Loader=ordered_yaml()[0])``: while
    :meth:`holding` options, that load gives it a copy of them (read, checked and completed once by
    :func:`aesop.options.prepare_options`) instead of the file's text read again."""

    options: ClassVar[dict | None] = None

    def get_single_data(self) -> dict:
        return copy.deepcopy(type(self).options)

    @classmethod
    @contextlib.contextmanager
    def holding(cls, options: dict) -> Iterator[None]:
        cls.options = options
        _bsr_options.ordered_yaml = lambda: (cls, OptionDumper)
        try:
            yield
        finally:
            cls.options = None
            _bsr_options.ordered_yaml = ordered_yaml


def without_force_yml(argv: list[str], entries: list[str]) -> list[str]:
    """``argv`` without ``--force_yml`` and its ``entries`` (:func:`force_yml_entries`)."""
    if '--force_yml' not in argv:
        return list(argv)
    start = argv.index('--force_yml')
    return [*argv[:start], *argv[start + 1 + len(entries) :]]


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


def cpu_only_requested() -> bool:
    """Whether the run asks for the CPU (``num_gpu: 0``, in the file or a ``--force_yml`` entry): basicsr
    initialises the process group inside its parser, which reads the prepared options (:class:`_PreparedLoader`)."""
    return (_PreparedLoader.options or {}).get('num_gpu') == 0


def filter2D(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # noqa: N802  (basicsr's name)
    """Fix 6: basicsr's ``filter2D`` on a contiguous copy of ``img`` (B, C, H, W)."""
    return _basicsr_filter2d(img.contiguous(), kernel)


@master_only
def init_wandb_logger(opt: dict) -> None:
    """Fix 7: wandb syncing the tensorboard log, on current wandb (``logger.wandb.project``, ``resume_id``)."""
    import wandb

    wandb_opt = opt['logger']['wandb']
    resume_id = wandb_opt.get('resume_id')
    try:
        run = wandb.init(
            id=resume_id,
            resume='allow' if resume_id else None,
            name=opt['name'],
            config=opt,
            project=wandb_opt['project'],
            dir=opt['path']['experiments_root'],
            sync_tensorboard=True,
        )
    except Exception as err:  # noqa: BLE001  a run never dies in a logger's set-up
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        warn(opt, f'wandb.init failed ({reason}): tensorboard only')
        wandb_opt['project'] = None
        return
    logger.info(f'Use wandb logger with id={run.id}; project={wandb_opt["project"]}.')


def window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Fix 8: basicsr's ``window_reverse`` ((num_windows·b, ws, ws, c) → (b, h, w, c)) in integer arithmetic."""
    b = windows.shape[0] // ((h // window_size) * (w // window_size))
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


def normalize_argv(argv: list[str]) -> list[str]:
    """``--local-rank`` (``torch.distributed.launch``) → ``--local_rank`` (basicsr's flag)."""
    return [a.replace('--local-rank', '--local_rank', 1) if a.startswith('--local-rank') else a for a in argv]


_basicsr_parse_options = _bsr_options.parse_options
_basicsr_filter2d = _bsr_img_process.filter2D
_bsr_options.init_dist = init_dist
_bsr_train.load_resume_state = load_resume_state
_bsr_train.parse_options = parse_options
_bsr_options.ordered_yaml = ordered_yaml  # the option file: YAML's safe loader (no code-running tags)
_bsr_options._postprocess_yml_value = parse_override_value  # --force_yml values without eval
_bsr_train.init_wandb_logger = init_wandb_logger
_bsr_test.parse_options = parse_options
_vgg_arch.vgg = OfflineZoo('perceptual loss')
_bsr_swinir.window_reverse = window_reverse
_vgg_arch.VGG_PRETRAIN_PATH = ''  # never look relative to the working directory
for _module in (_bsr_img_process, _bsr_realesrgan, _bsr_realesrnet):
    _module.filter2D = filter2D
