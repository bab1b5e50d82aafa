"""What a stopped training run needs to go on exactly where it stopped.

- :class:`StopSignals`: SIGTERM (Slurm's and the clouds' preemption signal), SIGINT (Ctrl-C) and SIGUSR1 (Slurm's
  ``--signal=USR1@<seconds>``) ask the run to stop after the iteration under way; every rank learns the request
  at the same iteration (:meth:`StopSignals.agreed`), the loop saves the networks and a training state there
  through the atomic path and the process exits with ``128 + signal``. A second Ctrl-C stops at once.
- The random streams (Python's ``random``, NumPy's, torch's CPU and CUDA generators) of every rank, saved in the
  training state and restored on resume, and :func:`preserved_random_state`, which keeps validation from
  drawing on them (so that a run does not depend on when it validated).
- :class:`ResumableSampler`: basicsr's ``EnlargedSampler`` that starts its first epoch after a resume at the
  batch the stopped run would have drawn next.

With these a resumed run equals the uninterrupted one when the data are loaded in the main process
(``num_worker_per_gpu: 0``). With worker processes it sees the same images in the same order, but their random
crops and flips are drawn anew: basicsr seeds each worker the same way at every epoch's start, and a resumed
epoch's workers start from that seed on other images.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from basicsr.data.data_sampler import EnlargedSampler

__all__ = [
    'STOP_SIGNALS',
    'ResumableSampler',
    'StopSignals',
    'preserved_random_state',
    'random_state',
    'set_random_state',
]

STOP_SIGNALS = ('SIGTERM', 'SIGINT', 'SIGUSR1')


class StopSignals:
    """While entered (in the main thread), the :data:`STOP_SIGNALS` ask for a stop instead of ending the process.

    :attr:`received` is the first signal's number, or 0. A second SIGINT while a stop is pending raises
    ``KeyboardInterrupt`` (Ctrl-C twice: stop now, nothing saved). The handlers in place before are put back
    on exit. In another thread (a test's in-process run) nothing is installed and nothing is asked.
    """

    def __init__(self) -> None:
        self.received = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._ask)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _ask(self, number: int, frame) -> None:
        """The handler: it only records the signal (logging from a handler can re-enter the log's stream)."""
        if self.received and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = self.received or number

    def agreed(self, device: torch.device) -> int:
        """The signal every rank stops for (0: go on). Under DDP a collective, called by every rank at every
        iteration: the largest signal number any rank received, so that all stop at the same iteration."""
        if not (dist.is_available() and dist.is_initialized()):
            return self.received
        flag = torch.tensor([self.received], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())


def random_state() -> dict:
    """This process's random streams, in types that ``torch.load(weights_only=True)`` reads back."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        'python': random.getstate(),
        'numpy': (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Put back the streams of :func:`random_state` (CUDA's only where this process uses CUDA)."""
    random.setstate(state['python'])
    kind, keys, position, has_gauss, cached = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """The random streams as they were on entry, whatever the block draws (a validation's dataloader draws a
    seed from torch's generator each time it is iterated)."""
    state = random_state()
    try:
        yield
    finally:
        set_random_state(state)


class ResumableSampler(EnlargedSampler):
    """basicsr's ``EnlargedSampler`` (the same indices for the same epoch), whose next epoch can start part-way:
    :meth:`start_at` drops that epoch's first ``n`` indices of this rank, once."""

    def __init__(self, dataset, num_replicas: int, rank: int, ratio: int = 1) -> None:
        super().__init__(dataset, num_replicas, rank, ratio)
        self._skip = 0

    def start_at(self, samples: int) -> None:
        self._skip = samples

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self._skip = self._skip, 0
        return iter(indices[skip:])
