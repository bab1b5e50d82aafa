"""Shared body of ``aesop/train.py`` and ``aesop/test.py``: errors as one line, not tracebacks."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from aesop.errors import AesopError
from aesop.pipeline import test_pipeline, train_pipeline
from aesop.utils import project_root

TRACEBACK_ENV = 'AESOP_TRACEBACK'
ERROR_STATUS = 2  # the exit status of a one-line error (argparse's, too)
RANK_GRACE_S = 5.0  # under torchrun, how long a rank > 0 leaves rank 0 to report the same error


def run(stage: str, argv: Sequence[str] | None = None) -> None:
    """Run the ``train`` or ``test`` pipeline (``stage``, :mod:`aesop.pipeline`: basicsr's, with nothing made on
    disk before the model is built) on the project root, with the command line ``argv`` (default: ``sys.argv[1:]``).

    Importing this module imported :mod:`aesop`, so basicsr is already fixed and our names
    registered. An :class:`~aesop.errors.AesopError` is printed as ``aesop: error: …`` with exit
    status 2; ``AESOP_TRACEBACK=1`` re-raises it with the full traceback.
    """
    pipelines = {'train': train_pipeline, 'test': test_pipeline}
    if stage not in pipelines:
        raise ValueError(f"stage must be 'train' or 'test', got {stage!r}")
    pipeline = pipelines[stage]
    status = None
    try:
        status = cli_main(lambda args: pipeline(str(project_root()), args), argv)
    finally:
        import torch.distributed as dist

        distributed = dist.is_available() and dist.is_initialized()
        if distributed:  # basicsr never ends its group; torch asks callers to
            if status is not None and status != ERROR_STATUS:  # every rank finished (or stopped) alike: no rank
                dist.barrier()  # tears its connections down while another still saves
            dist.destroy_process_group()
    if distributed:  # a worker leaves without the interpreter's teardown, where a gloo rank aborted at times
        atexit._run_exitfuncs()  # ("terminate called without an active exception", SIGABRT); Python's exit work
        logging.shutdown()  # (the experiment's lock, the log files) is done first, everything flushed
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def stage_command(stage: str) -> tuple[Callable[[], argparse.ArgumentParser], Callable[..., None]]:
    """``(build_parser, main)`` of ``aesop-train`` / ``aesop-test`` (``stage``): the command line's ``--help``
    (:func:`aesop.commands.pipeline_parser`) and the entry point (:func:`run`)."""
    from aesop.commands import pipeline_parser

    def build_parser() -> argparse.ArgumentParser:
        return pipeline_parser(stage)

    def main(argv: Sequence[str] | None = None) -> None:
        run(stage, argv)

    return build_parser, main


def cli_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` of a command; an :class:`AesopError` becomes one line and status 2.

    The line is ``aesop: error: <message>`` (a message that lists several things, such as the missing files,
    goes on with one line each). Under torchrun every rank meets the same start-up errors (options, data,
    the experiment lock and the model's build are checked alike): rank 0 prints the line at once; another
    rank waits :data:`RANK_GRACE_S` first, so that when rank 0 failed too the agent stops it before it prints
    (the line appears once), and when only that rank failed the line still appears, naming the rank.
    ``AESOP_TRACEBACK=1`` re-raises it with the full traceback instead. Returns ``main``'s status (0 when it
    returns ``None``).
    """
    try:
        return main(argv) or 0
    except AesopError as err:
        if os.environ.get(TRACEBACK_ENV):
            raise
        message = error_message(err)
        rank = os.environ.get('RANK', '0') if 'TORCHELASTIC_RUN_ID' in os.environ else '0'
        if rank != '0':
            time.sleep(RANK_GRACE_S)  # stopped here by torchrun's agent if rank 0 failed too
            message = f'(rank {rank}) {message}'
        print(f'aesop: error: {message}', file=sys.stderr)
        return ERROR_STATUS


def error_message(err: AesopError) -> str:
    """The message of ``err`` as the user reads it: whole (a list of missing files is one line each), except
    that an error raised in a DataLoader worker comes with the worker's traceback, which is dropped."""
    message = str(err).strip()
    if 'Traceback (most recent call last)' in message:  # its last entry: "aesop.errors.AesopError: <message>"
        raised = list(re.finditer(rf'^{re.escape(AesopError.__module__)}\.\w+: ', message, re.MULTILINE))
        message = message[raised[-1].end() :] if raised else message.splitlines()[-1]
    return message


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors raise :class:`AesopError` (one line and status 2 via :func:`cli_main`)."""

    def error(self, message: str):
        raise AesopError(message)


def add_autoencoder_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--ae CKPT --ae-opt OPTION_FILE --ae-key KEY``: the frozen ψ of the tools (figures, evaluator)."""
    parser.add_argument('--ae', type=Path, required=required, help='auto-encoder checkpoint (AE pretraining output)')
    parser.add_argument(
        '--ae-opt', type=Path, default=Path('options/train_ae.yml'), help="option file with ψ's arch (%(default)s)"
    )
    parser.add_argument('--ae-key', default='params_ema', help='key of the AE weights in the checkpoint (%(default)s)')
