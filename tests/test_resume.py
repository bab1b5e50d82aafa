"""The parts of a stop and its resume (aesop.resume), one at a time; the whole: test_robustness's stop tests."""

from __future__ import annotations

import os
import random
import signal

import numpy as np
import pytest
import torch
from basicsr.data.data_sampler import EnlargedSampler

from aesop.resume import ResumableSampler, StopSignals, preserved_random_state, random_state, set_random_state
from aesop.weights import atomic_save, read_checkpoint


def test_stop_signals_record_the_first_signal_and_a_second_ctrl_c_stops_at_once():
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as signals:
        assert signals.received == 0 and signals.agreed(torch.device('cpu')) == 0
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)  # a later signal changes nothing: the first one is the reason
        assert signals.received == signal.SIGUSR1 and signals.agreed(torch.device('cpu')) == signal.SIGUSR1
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # the handlers of before are back


def test_the_random_streams_survive_a_training_state_and_validation_leaves_them_alone(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    atomic_save({'random': [random_state()]}, tmp_path / '1.state')
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_random_state(read_checkpoint(tmp_path / '1.state')['random'][0])  # weights_only=True reads it
    with preserved_random_state():
        random.random(), np.random.rand(3), torch.rand(5)  # what a validation draws
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_the_sampler_starts_its_next_epoch_part_way_once():
    data = list(range(7))
    plain, resumable = EnlargedSampler(data, 2, 1, ratio=3), ResumableSampler(data, 2, 1, ratio=3)
    for sampler in (plain, resumable):
        sampler.set_epoch(4)
    whole = list(plain)
    assert list(resumable) == whole  # basicsr's indices for the same epoch
    resumable.start_at(5)
    assert list(resumable) == whole[5:] and list(resumable) == whole  # skipped once
