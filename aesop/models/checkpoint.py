"""Safe saving: what a checkpoint may hold (finite weights, optimiser states and outputs), the frozen files a
resumed run must find unchanged (ψ's digest), and the newest finite checkpoint the messages that stop a run name.
The files themselves are written atomically (:func:`aesop.weights.atomic_save`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from basicsr.utils import get_root_logger
from torch import nn

from aesop.errors import AesopError
from aesop.weights import read_checkpoint


def _finite(tensor) -> bool:
    return not (torch.is_tensor(tensor) and tensor.is_floating_point()) or bool(torch.isfinite(tensor).all())


def first_nonfinite(
    nets: Mapping[str, nn.Module], optimizers: Iterable[torch.optim.Optimizer], probe: torch.Tensor | None
) -> str | None:
    """The first non-finite thing a checkpoint would contain, described; ``None`` if all is finite: the weights and
    buffers of ``nets`` (bare, by name), the optimisers' states, and G's (and its EMA's) output on ``probe``
    (weights of 1e6 are finite but their forward is not)."""
    for name, net in nets.items():
        for key, tensor in net.state_dict().items():
            if not _finite(tensor):
                return f'{name}.{key}'
    for i, optimizer in enumerate(optimizers):
        for state in optimizer.state.values():
            for key, tensor in state.items():
                if not _finite(tensor):
                    return f'optimizer {i} state {key}'
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


def check_frozen_files(recorded: Mapping[str, dict], now: Mapping[str, dict], allow: bool) -> None:
    """Refuse (or, with ``allow``, warn about) a frozen file (``{key: {'path', 'sha256', 'what'?}}``) whose digest
    differs from the one the training state ``recorded``; one the state does not know passes."""
    for key, file in now.items():
        before = recorded.get(key)
        if before is None or before['sha256'] == file['sha256']:
            continue
        what = file.get('what', 'ψ')
        message = (
            f'{what} of {key} changed since the training state was written: {before["path"]} had sha256 '
            f'{before["sha256"][:16]}…, {file["path"]} has {file["sha256"][:16]}…'
        )
        if not allow:
            raise AesopError(f'{message}; restore that file or set train.allow_psi_change: true')
        get_root_logger().warning(f'{message} (train.allow_psi_change: true)')


def where_to_resume(opt: dict) -> str:
    """The end of a 'training stopped' message: the newest ``models/net_g_<iter>.pth`` (or ``.safetensors``) whose
    tensors are all finite, or that there is none."""
    models = opt['path'].get('models')
    found = [
        (int(m.group(1)), p)
        for p in (Path(models).glob('net_g_*') if models else [])
        if (m := re.fullmatch(r'net_g_(\d+)\.(?:pth|safetensors)', p.name))
    ]
    for _, path in sorted(found, reverse=True):
        try:
            checkpoint = read_checkpoint(path)
        except AesopError:
            continue
        if all(_finite(t) for params in checkpoint.values() if isinstance(params, dict) for t in params.values()):
            return f'the newest finite checkpoint is {path}'
    return 'no finite checkpoint of this run exists'
