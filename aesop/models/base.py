"""The model base of this package: basicsr's ``BaseModel`` policies it overrides, in one mixin."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aesop.errors import AesopError
from aesop.models.checkpoint import where_to_resume
from aesop.schema import declare_options
from aesop.weights import atomic_save, load_weights

declare_options(
    'train',
    'AesopModelMixin',
    "Every model of this project that trains on ψ (its file's digest is kept in the training state).",
    {
        'allow_psi_change': (
            bool,
            "Resume although ψ's file changed since the training state was written.",
            {'default': False},
        )
    },
)

__all__ = ['AesopModelMixin']


class AesopModelMixin:
    """What every model of this package does differently from basicsr's ``BaseModel`` (first in the bases).

    - :meth:`model_to_device`: DDP without ``device_ids`` on CPU (gloo), DataParallel for several GPUs;
    - :meth:`load_network`: ``weights_only=True`` and one-line errors for a checkpoint that does not
      fit (:func:`aesop.weights.load_weights`, which also reads the layouts an arch declares);
    - :meth:`save_network` / :meth:`save_training_state`: written atomically (a kill mid-write never
      leaves a truncated file for ``--auto_resume``), write errors loud;
    - :meth:`reduce_loss_dict`: a NaN or inf loss stops the run, naming the iteration and the loss
      term, before anything containing it is saved;
    - :meth:`save` refuses to write anything non-finite: every network's weights and buffers, the
      optimisers' states, and G's (and its EMA's) output on the last training batch (weights of
      1e6 are finite but their forward is not). The error names the newest finite checkpoint.
    - the training state records the file and SHA-256 of every frozen auto-encoder ψ (L_AESOP), and
      :meth:`resume_training` refuses a ψ whose file changed since (``train.allow_psi_change: true``
      allows it), so a resumed run never trains against another ψ without saying so; a learning
      rate changed in the option file is reported (the saved optimiser state keeps the old one);
    - the training state also keeps ``val.save_best``'s record (:meth:`ValidationMixin.keep_best`).
    """

    def frozen_autoencoders(self) -> dict[str, dict[str, str]]:
        """``{key: {'path': …, 'sha256': …}}`` for every frozen network read from a file: here the losses
        with a frozen ψ (a model with other frozen networks adds them, with ``'what'`` naming them)."""
        losses = getattr(self, 'cri_fidelity', {})
        return {
            key: {'path': cri.pretrained, 'sha256': cri.digest} for key, cri in losses.items() if hasattr(cri, 'digest')
        }

    def extra_training_state(self) -> dict:
        """What the training state stores beyond basicsr's (see :meth:`save_training_state`)."""
        return {'autoencoders': self.frozen_autoencoders(), 'best_checkpoint': getattr(self, 'best_checkpoint', None)}

    def _nonfinite(self) -> str | None:
        """The first non-finite thing a checkpoint would contain, described; ``None`` if all is finite."""
        nets = {name: getattr(self, name) for name in ('net_g', 'net_g_ema', 'net_d') if hasattr(self, name)}
        for name, net in nets.items():
            for key, tensor in self.get_bare_model(net).state_dict().items():
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    return f'{name}.{key}'
        for i, optimizer in enumerate(self.optimizers):
            for state in optimizer.state.values():
                for key, tensor in state.items():
                    if torch.is_tensor(tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
                        return f'optimizer {i} state {key}'
        probe = self.probe_input()
        if probe is not None:
            with torch.no_grad():
                for name in ('net_g', 'net_g_ema'):
                    if name in nets:
                        was_training = nets[name].training
                        nets[name].eval()
                        output = nets[name](probe)
                        nets[name].train(was_training)
                        if not torch.isfinite(output).all():
                            return f"{name}'s output on the last training batch"
        return None

    def probe_input(self) -> torch.Tensor | None:
        """One image of the last training batch, as G takes it (the LR image here)."""
        return self.lq[:1] if hasattr(self, 'lq') else None

    def save(self, epoch, current_iter):
        """basicsr's ``save`` (networks, then the training state), only if everything is finite."""
        bad = self._nonfinite()
        if self.opt.get('dist') and dist.is_initialized():  # each rank checked its own batch: all agree
            everyone = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, bad)
            bad = next((b for b in everyone if b is not None), None)
        if bad is not None:
            label = 'latest' if current_iter == -1 else current_iter
            raise AesopError(
                f'{bad} is not finite at iteration {label}: training stopped and nothing was saved; '
                f'{where_to_resume(self.opt)}'
            )
        super().save(epoch, current_iter)

    def resume_training(self, resume_state):
        """basicsr's ``resume_training``, after checking ψ is the one the state was trained with."""
        recorded = resume_state.get('autoencoders') or {}
        allow = bool(self.opt['train'].get('allow_psi_change', False))
        for key, now in self.frozen_autoencoders().items():
            before = recorded.get(key)
            if before is None or before['sha256'] == now['sha256']:
                continue
            what = now.get('what', 'ψ')
            message = (
                f'{what} of {key} changed since the training state was written: {before["path"]} had sha256 '
                f'{before["sha256"][:16]}…, {now["path"]} has {now["sha256"][:16]}…'
            )
            if not allow:
                raise AesopError(f'{message}; restore that file or set train.allow_psi_change: true')
            get_root_logger().warning(f'{message} (train.allow_psi_change: true)')
        for i, (optimizer, saved) in enumerate(zip(self.optimizers, resume_state['optimizers'], strict=False)):
            now = optimizer.param_groups[0].get('initial_lr', optimizer.param_groups[0]['lr'])
            before = saved['param_groups'][0].get('initial_lr', saved['param_groups'][0]['lr'])
            if now != before:
                get_root_logger().warning(
                    f'optimizer {i}: lr {now} in the option file but {before} in the training state: the resumed '
                    f'run keeps {before} and its schedule (basicsr restores the optimizer and scheduler states)'
                )
        self.restore_best(resume_state)
        super().resume_training(resume_state)

    def model_to_device(self, net: nn.Module) -> nn.Module:
        """basicsr's, without ``device_ids=[torch.cuda.current_device()]`` on CPU (DDP over gloo); a network with
        no parameters (``AesopBicubic``) is not wrapped (DDP refuses one)."""
        net = net.to(self.device)
        if next(net.parameters(), None) is None:
            return net
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            find_unused = self.opt.get('find_unused_parameters', False)
            net = DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused)
        elif self.opt['num_gpu'] > 1:
            net = nn.DataParallel(net)
        return net

    def load_network(self, net: nn.Module, load_path: str, strict: bool = True, param_key: str = 'params') -> None:
        """basicsr's, through :func:`aesop.weights.load_weights` (``weights_only=True``, clear mismatches)."""
        net = self.get_bare_model(net)
        get_root_logger().info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
        option = next((f'path.{k}' for k, v in self.opt['path'].items() if v == load_path), None)
        load_weights(net, load_path, param_key=param_key, strict=strict, fallback=True, option=option)

    @master_only
    def save_network(self, net, net_label: str, current_iter, param_key='params') -> None:
        """``models/<net_label>_<iter>.pth`` with one state dict per ``param_key``, atomically."""
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        checkpoint = {
            key: {k.removeprefix('module.'): v.cpu() for k, v in self.get_bare_model(n).state_dict().items()}
            for n, key in zip(nets, keys, strict=True)
        }
        label = 'latest' if current_iter == -1 else current_iter
        atomic_save(checkpoint, Path(self.opt['path']['models']) / f'{net_label}_{label}.pth')

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        """``training_states/<iter>.state`` (optimisers, schedulers, :meth:`extra_training_state`), atomically."""
        if current_iter == -1:
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            **self.extra_training_state(),
        }
        atomic_save(state, Path(self.opt['path']['training_states']) / f'{current_iter}.state')

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        """basicsr's; also remembers the iteration for :meth:`reduce_loss_dict` (called once per iteration)."""
        self.current_iter = current_iter
        super().update_learning_rate(current_iter, warmup_iter)

    def reduce_loss_dict(self, loss_dict):
        """basicsr's, stopping on a non-finite loss before anything containing it is saved."""
        log_dict = super().reduce_loss_dict(loss_dict)
        for name, value in log_dict.items():
            if not math.isfinite(value):
                raise AesopError(
                    f'loss {name} is {value} at iteration {getattr(self, "current_iter", "?")}: training stopped; '
                    f'{where_to_resume(self.opt)}'
                )
        return log_dict
