"""Option normalisation, applied right after BasicSR parses an option file.

Runs before any dataset or network is built, so a wrong path fails at start-up with the option
key that holds it, not an hour into training.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from aesop.errors import AesopError


def normalize_options(opt: dict, *, root_path: str | Path) -> dict:
    """Normalise ``opt`` in place and return it.

    - official AESOP option names are translated (:func:`aesop.official.translate_options`);
    - without CUDA, ``num_gpu`` becomes 0 so the run happens on the CPU;
    - relative data and weight paths are resolved against the project root (BasicSR resolves
      them against the working directory, so a run started elsewhere silently missed them);
    - every data folder and weight file the run needs must exist (resume states excepted).
    """
    from aesop.official import translate_options

    translate_options(opt)
    if not torch.cuda.is_available():
        opt['num_gpu'] = 0
    root = Path(root_path)
    for key, container, name, kind in file_options(opt):
        value = container[name]
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = root / path
        container[name] = str(path)
        if kind == 'dir' and not path.is_dir():
            raise AesopError(
                f'dataset folder not found: {path} (option {key}): edit the option file to point at your data'
            )
        if kind == 'file' and not path.is_file():
            raise AesopError(f'file not found: {path} (option {key}): edit the option file or put the file there')
    return opt


def file_options(opt: dict) -> Iterator[tuple[str, dict, str, str]]:
    """Yield ``(dotted key, container, name, 'dir' | 'file')`` for every path the run reads."""
    for phase, dataset in opt.get('datasets', {}).items():
        for name in ('dataroot_gt', 'dataroot_lq'):
            if dataset.get(name) is not None:
                yield f'datasets.{phase}.{name}', dataset, name, 'dir'
        if dataset.get('meta_info_file') is not None:
            yield f'datasets.{phase}.meta_info_file', dataset, 'meta_info_file', 'file'
    for name, value in opt.get('path', {}).items():
        if value is not None and name.startswith('pretrain_network'):
            yield f'path.{name}', opt['path'], name, 'file'
    for section in ('train', 'val'):
        yield from _loss_files(opt.get(section) or {}, section)


def _loss_files(node: dict, prefix: str) -> Iterator[tuple[str, dict, str, str]]:
    """Checkpoint paths in loss/metric options: ``pretrained`` (ours), ``autoencoder_load.path`` (official)."""
    for name, value in node.items():
        if isinstance(value, dict):
            yield from _loss_files(value, f'{prefix}.{name}')
        elif isinstance(value, str) and (
            name == 'pretrained' or (name == 'path' and prefix.endswith('autoencoder_load'))
        ):
            yield f'{prefix}.{name}', node, name, 'file'
