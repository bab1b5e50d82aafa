"""How the package's commands present themselves: the name they were run by, and their ``--help``.

argparse names a command ``os.path.basename(sys.argv[0])``: ``demo.py`` for ``python
scripts/demo.py``, which is not a command anyone can type. :func:`command_name` is the name as
invoked (``aesop-infer`` for the console script, ``scripts/demo.py`` for a file, ``python -m
aesop.launch`` for a module), and :func:`command_help` gives every parser that name, a one-paragraph
description and examples.

``aesop-train`` and ``aesop-test`` read basicsr's command line (the same flags, defaults and choices as its
``parse_options``, which had no description and no examples): :func:`pipeline_parser`.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Sequence

__all__ = ['command_help', 'command_name', 'pipeline_parser']

WIDTH = 79  # argparse's own width on an 80-column terminal


def command_name(argv0: str | None = None) -> str:
    """The command as the user ran it (argparse's ``prog``).

    A module run with ``python -m`` is ``python -m <module>``; a ``.py`` file is its path as typed
    (``scripts/demo.py``, ``aesop/train.py``); anything else (a console script such as
    ``aesop-infer``) is its file name.
    """
    spec = getattr(sys.modules.get('__main__'), '__spec__', None)
    if argv0 is None and spec is not None and spec.name != '__main__':
        return f'python -m {spec.name.removesuffix(".__main__")}'
    arg0 = sys.argv[0] if argv0 is None else argv0
    return arg0 if arg0.endswith('.py') else os.path.basename(arg0) or 'aesop'


def command_help(description: str, examples: Sequence[str], details: str = '') -> dict:
    """``ArgumentParser`` keywords: ``prog`` (:func:`command_name`), ``description`` (one paragraph, wrapped),
    and an epilog of ``details`` (kept as written) and ``examples``, one command line each, where ``{prog}``
    is the command as it was run (``python scripts/demo.py`` for a file, ``aesop-infer`` for the console
    script)."""
    prog = command_name()
    run = f'python {prog}' if prog.endswith('.py') else prog
    epilog = [textwrap.dedent(details).strip('\n')] if details else []
    epilog.append('examples:\n' + '\n'.join(f'  {line.replace("{prog}", run)}' for line in examples))
    return {
        'prog': prog,
        'description': textwrap.fill(' '.join(description.split()), WIDTH, break_on_hyphens=False),
        'epilog': '\n\n'.join(epilog),
        'formatter_class': argparse.RawDescriptionHelpFormatter,
    }


PIPELINES = {
    'train': (
        'Train a model from a BasicSR option file (AE pretraining, PSNR-oriented or GAN SR with the AESOP loss, '
        'HR-aware finetuning): checkpoints, training states and the log go to experiments/<name>/, tensorboard '
        'events to tb_logger/<name>/. Under torchrun (aesop-torchrun) add --launcher pytorch. A bad option file '
        'or missing data or weights stops the run at start-up with one line "aesop: error: ..." (exit status 2).',
        (
            '{prog} -opt options/demo/train_psnr.yml',
            '{prog} -opt options/train_aesop_rrdb.yml --auto_resume',
            '{prog} -opt options/train_ae.yml --force_yml train:total_iter=1000 name=ae_short',
            'aesop-torchrun --nproc_per_node=4 aesop/train.py -opt options/train_aesop_rrdb.yml --launcher pytorch',
        ),
    ),
    'test': (
        'Test (evaluate) a model from a BasicSR option file: for every test set, the SR images '
        '(results/<name>/visualization/<dataset>/), a per-image CSV (results/<name>/<dataset>.csv) and the '
        'metric table results/<name>/metrics.md and metrics.csv. Metrics whose backbone is random '
        '(AESOP_RANDOM_BACKBONES=1) are labelled so in every table.',
        (
            '{prog} -opt options/demo/test_aesop.yml',
            '{prog} -opt options/test_rrdb.yml --force_yml path:pretrain_network_g=experiments/X/models/net_g_best.pth',
        ),
    ),
}


def pipeline_parser(stage: str) -> argparse.ArgumentParser:
    """The command line of ``aesop-train`` (``stage='train'``) or ``aesop-test``: basicsr 1.4.2's
    ``parse_options`` flags, plus ``--local-rank`` (``torch.distributed.launch`` in PyTorch ≥ 2.0)."""
    if stage not in PIPELINES:
        raise ValueError(f'stage must be one of {", ".join(PIPELINES)}, got {stage!r}')
    description, examples = PIPELINES[stage]
    parser = argparse.ArgumentParser(**command_help(description, examples))
    parser.add_argument('-opt', required=True, metavar='OPTION_FILE', help='the option file (YAML)')
    parser.add_argument(
        '--launcher',
        choices=('none', 'pytorch', 'slurm'),
        default='none',
        help='how the processes were started: pytorch under torchrun, slurm under srun (default: none)',
    )
    parser.add_argument(
        '--auto_resume', action='store_true', help="resume from the experiment's latest training state, if any"
    )
    parser.add_argument(
        '--debug',
        action='store_true',
        help="basicsr's debug mode: the experiment is named debug_<name>, logs every iteration, validates and "
        'saves every 8, no tensorboard',
    )
    parser.add_argument(
        '--local_rank', '--local-rank', type=int, default=0, help='set by torch.distributed.launch (default: 0)'
    )
    parser.add_argument(
        '--force_yml',
        nargs='+',
        metavar='KEY=VALUE',
        help='override options, nested keys joined by ":", e.g. train:ema_decay=0.999 name=run2',
    )
    return parser
