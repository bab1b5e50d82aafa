"""The checkpoints of a run that can be trusted: the newest finite one, for the messages that stop a run."""

from __future__ import annotations

import re
from pathlib import Path

import torch

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
