"""What a training run writes and reads back: only finite checkpoints, and the same frozen ψ on resume."""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger

from aesop.errors import AesopError
from aesop.weights import read_checkpoint


def newest_finite_checkpoint(models_dir: str | Path) -> Path | None:
    """The newest ``net_g_<iter>.pth`` in ``models_dir`` whose tensors are all finite (``None``: none)."""
    found = [
        (int(m.group(1)), p)
        for p in Path(models_dir).glob('net_g_*.pth')
        if (m := re.fullmatch(r'net_g_(\d+)\.pth', p.name))
    ]
    for _, path in sorted(found, reverse=True):
        try:
            checkpoint = read_checkpoint(path)
        except AesopError:
            continue
        tensors = [t for params in checkpoint.values() if isinstance(params, dict) for t in params.values()]
        if all(torch.isfinite(t).all() for t in tensors if torch.is_tensor(t) and t.is_floating_point()):
            return path
    return None


def where_to_resume(opt: dict) -> str:
    """The end of a 'training stopped' message: the newest finite checkpoint of the run, or that there is none."""
    models = opt['path'].get('models')
    newest = newest_finite_checkpoint(models) if models else None
    if newest is None:
        return 'no finite checkpoint of this run exists'
    return f'the newest finite checkpoint is {newest}'


class CheckpointMixin:
    """Checkpoint policies of the AESOP models (before basicsr's ``SRModel`` in the bases).

    - :meth:`save` refuses to write anything non-finite: every network's weights and buffers, the
      optimisers' states, and G's (and its EMA's) output on the last training batch (weights of
      1e6 are finite but their forward is not). The error names the newest finite checkpoint.
    - the training state records the file and SHA-256 of every frozen auto-encoder ψ (L_AESOP), and
      :meth:`resume_training` refuses a ψ whose file changed since (``train.allow_psi_change: true``
      allows it), so a resumed run never trains against another ψ without saying so; a learning
      rate changed in the option file is reported (the saved optimiser state keeps the old one).
    """

    def frozen_autoencoders(self) -> dict[str, dict[str, str]]:
        """``{loss key: {'path': …, 'sha256': …}}`` for the losses with a frozen ψ."""
        losses = getattr(self, 'cri_fidelity', {})
        return {
            key: {'path': cri.pretrained, 'sha256': cri.digest} for key, cri in losses.items() if hasattr(cri, 'digest')
        }

    def extra_training_state(self) -> dict:
        """What the training state stores beyond basicsr's (see ``aesop.compat.save_training_state``)."""
        return {'autoencoders': self.frozen_autoencoders()}

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
            message = (
                f'ψ of {key} changed since the training state was written: {before["path"]} had sha256 '
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
        super().resume_training(resume_state)
