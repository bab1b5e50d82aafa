"""``aesop-torchrun`` (``python -m aesop.launch``): torchrun, quiet about errors already reported, and ready for
preemption.

It takes torchrun's arguments and runs torchrun's own launcher. The differences:

- When the workers stop with a start-up error: ``aesop/train.py`` and ``aesop/test.py`` print it as one
  ``aesop: error: …`` line (from rank 0) and exit with status 2. Plain torchrun then adds its agent's log
  lines and a ``ChildFailedError`` traceback with a failure table. This launcher exits with status 2 and
  prints nothing more.
- Stop signals (:mod:`aesop.resume`): the agent forwards SIGUSR1 too (Slurm's ``--signal=USR1@<s>``;
  torchrun's default list is SIGTERM, SIGINT, SIGHUP, SIGQUIT, and an unhandled SIGUSR1 ends the agent at
  once), and gives its workers :data:`SHUTDOWN_TIMEOUT_S` to finish their iteration and save before it kills
  them (torchrun's default: 30). When a stop signal ended the run, whether it reached the agent or only the
  workers, this launcher says so in one line and exits with ``128 + signal``, without torchrun's traceback.

Any other failure (a crash, another signal or exit status) is reported by torchrun as usual.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import get_args_parser, run

from aesop.cli import ERROR_STATUS
from aesop.commands import command_help
from aesop.resume import STOP_SIGNALS

__all__ = ['build_parser', 'main']

AGENT_LOGGER = 'torch.distributed.elastic.multiprocessing.api'
SIGNALS_TO_HANDLE = 'SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1'  # torchrun's, and Slurm's early warning
SHUTDOWN_TIMEOUT_S = 120  # for the workers' last iteration and checkpoint (torchrun's default: 30)
STOP_STATUSES = {128 + getattr(signal, name): name for name in STOP_SIGNALS}


class _Reported(logging.Filter):
    """Drops the agent's lines about workers that stopped with :data:`ERROR_STATUS` (and the SIGTERM
    it then sends the others); the failure table of any other exit is still raised."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (f'failed (exitcode: {ERROR_STATUS})' in text or 'closing signal' in text)


def build_parser() -> argparse.ArgumentParser:
    """torchrun's own parser (every torchrun flag, then the script and its arguments), with this command's name,
    description and examples."""
    parser = get_args_parser()
    help_text = command_help(
        "torchrun, quiet about errors already reported: it takes torchrun's arguments and runs torchrun's "
        'launcher. When the workers stop with a start-up error that aesop/train.py or aesop/test.py printed as one '
        'line "aesop: error: ..." (status 2), it exits with status 2 and adds nothing, where torchrun adds its '
        "agent's log and a ChildFailedError traceback with a failure table. Any other failure is reported as "
        'torchrun reports it.',
        (
            '{prog} --nproc_per_node=4 aesop/train.py -opt options/train_aesop_rrdb.yml --launcher pytorch',
            '{prog} --nproc_per_node=4 aesop/train.py -opt options/train_aesop_rrdb.yml --launcher pytorch '
            '--auto_resume',
            '# two nodes: the same command on each (HOST: one of them; the same --rdzv_id on both)',
            '{prog} --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 --rdzv_id=ae_run '
            'aesop/train.py -opt options/train_ae.yml --launcher pytorch',
            '# a Slurm job, one agent per node (head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1))',
            'srun --ntasks-per-node=1 {prog} --nnodes=$SLURM_NNODES --nproc_per_node=4 --rdzv_backend=c10d '
            '--rdzv_endpoint=$head:29500 --rdzv_id=$SLURM_JOB_ID aesop/train.py -opt options/train_ae.yml '
            '--launcher pytorch',
        ),
    )
    for key, value in help_text.items():
        setattr(parser, key, value)
    defaults = {'signals_to_handle': SIGNALS_TO_HANDLE, 'shutdown_timeout': SHUTDOWN_TIMEOUT_S}
    parser.set_defaults(**{k: v for k, v in defaults.items() if f'PET_{k.upper()}' not in os.environ})
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.getLogger(AGENT_LOGGER).addFilter(_Reported())
    try:
        run(build_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))
    except ChildFailedError as err:
        _, failure = err.get_first_failure()
        if failure.exitcode == ERROR_STATUS:  # the worker printed its one line
            return ERROR_STATUS
        if failure.exitcode in STOP_STATUSES:  # the workers stopped for a signal, each after its checkpoint
            print(f'aesop-torchrun: the workers stopped for {STOP_STATUSES[failure.exitcode]}', file=sys.stderr)
            return failure.exitcode
        raise
    except SignalException as err:  # the agent got it and forwarded it to the workers
        name = signal.Signals(err.sigval).name
        print(f'aesop-torchrun: stopped by {name}, forwarded to the workers', file=sys.stderr)
        return 128 + err.sigval
    return 0


if __name__ == '__main__':
    sys.exit(main())
