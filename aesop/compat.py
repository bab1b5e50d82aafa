"""Patches that make ``basicsr==1.4.2`` run on today's PyTorch, on CPU and GPU alike.

Only what no subclass or hook of this package can do is patched here: a module basicsr imports
at module level, and its free functions that this package's code still reaches. Importing
:mod:`aesop` applies them, before anything else imports basicsr. basicsr's option parser, training
and test pipelines and resume are not patched but owned (:func:`aesop.options.load_options`,
:mod:`aesop.pipeline`); the policies of this package's models (CPU DDP, ``weights_only`` loading,
atomic and finite saves, the NaN stop) are in :class:`aesop.models.base.AesopModel`; those of ``PairedImageDataset``
are :class:`aesop.data.paired_dataset.AesopPairedImageDataset`. Each fix is tested in
``tests/test_compat.py``:

1. ``torchvision.transforms.functional_tensor`` was removed from torchvision (0.17); basicsr's
   ``degradations.py`` imports ``rgb_to_grayscale`` from it. We alias the module to
   ``torchvision.transforms.functional``, which has the same function.
2. ``VGGFeatureExtractor`` read ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` relative to
   the working directory and otherwise downloaded ImageNet weights via the removed
   ``pretrained=`` argument: see :class:`aesop.backbones.OfflineZoo`.
3. ``filter2D`` (the Real-ESRGAN blurs) flattened its input with ``.view``, which fails on the
   channels-last-strided tensors ``DiffJPEG`` returns on current PyTorch: it now gets a
   contiguous input (same values), in ``img_process_util`` and the modules that imported it.
4. ``init_wandb_logger`` (called by basicsr's ``init_tb_loggers``) called ``wandb.util.generate_id``,
   which current wandb removed, and let wandb write to the working directory: ours lets ``wandb.init``
   make the id and writes under the experiment folder (``experiments/<name>/wandb``); a failing
   ``wandb.init`` (no login, no network) is one warning and the run goes on with tensorboard.
5. SwinIR's ``window_reverse`` computed the batch size as ``int(windows / (h * w / ws / ws))``, a
   float division that ``torch.export`` (ONNX export, ``torch.compile`` with dynamic shapes)
   turns into a fixed batch size: ours divides integers (the same values). DRCT imports it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

import torch


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
import basicsr.train as _bsr_train  # noqa: E402
import basicsr.utils.img_process_util as _bsr_img_process  # noqa: E402
from basicsr.utils.dist_util import master_only  # noqa: E402

from aesop.backbones import OfflineZoo  # noqa: E402
from aesop.utils import warn  # noqa: E402

logger = logging.getLogger('basicsr')


def filter2D(img: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:  # noqa: N802  (basicsr's name)
    """Fix 3: basicsr's ``filter2D`` on a contiguous copy of ``img`` (B, C, H, W)."""
    return _basicsr_filter2d(img.contiguous(), kernel)


@master_only
def init_wandb_logger(opt: dict) -> None:
    """Fix 4: wandb syncing the tensorboard log, on current wandb (``logger.wandb.project``, ``resume_id``)."""
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
    """Fix 5: basicsr's ``window_reverse`` ((num_windows·b, ws, ws, c) → (b, h, w, c)) in integer arithmetic."""
    b = windows.shape[0] // ((h // window_size) * (w // window_size))
    x = windows.view(b, h // window_size, w // window_size, window_size, window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


_basicsr_filter2d = _bsr_img_process.filter2D
_bsr_train.init_wandb_logger = init_wandb_logger
_vgg_arch.vgg = OfflineZoo('perceptual loss')
_bsr_swinir.window_reverse = window_reverse
_vgg_arch.VGG_PRETRAIN_PATH = ''  # never look relative to the working directory
for _module in (_bsr_img_process, _bsr_realesrgan, _bsr_realesrnet):
    _module.filter2D = filter2D
