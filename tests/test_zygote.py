"""The test zygote (``tests/zygote.py``) runs a script as a fresh ``python`` process would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from conftest import zygote

SCRIPT = r"""
import atexit, os, random, sys, threading, time
print('argv', sys.argv[1:], 'cwd', os.getcwd(), 'env', os.environ.get('ZYGOTE_PROBE'), 'main', __name__)
print('to stderr', file=sys.stderr)
atexit.register(lambda: print('atexit ran'))
threading.Thread(target=lambda: (time.sleep(0.2), print('thread joined'))).start()
print('random', random.random())
how = sys.argv[1]
if how == 'raise':
    raise ValueError('boom')
if how == 'sleep':
    time.sleep(60)
sys.exit(int(how) if how.isdigit() else how)
"""


def _both(tmp_path, how: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    script = tmp_path / 'probe.py'
    script.write_text(SCRIPT)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'ZYGOTE_PROBE': 'x'}
    cmd = [sys.executable, str(script), how]
    real = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert zygote().accepts(env)
    return real, zygote().run(cmd, cwd=tmp_path, env=env, timeout=120)


def _without_random(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith('random ')]


@pytest.mark.parametrize('how', ['0', '3', 'a message', 'raise'])
def test_a_forked_run_looks_like_a_subprocess(how, tmp_path):
    real, forked = _both(tmp_path, how)
    assert forked.returncode == real.returncode == {'0': 0, '3': 3}.get(how, 1)
    assert _without_random(forked.stdout) == _without_random(real.stdout)
    assert forked.stdout.splitlines()[-2:] == ['thread joined', 'atexit ran']
    last = forked.stderr.splitlines()[-1]
    assert (
        last
        == real.stderr.splitlines()[-1]
        == {'a message': 'a message', 'raise': 'ValueError: boom'}.get(how, 'to stderr')
    )


def test_forked_runs_draw_their_own_random_numbers_and_can_be_killed(tmp_path):
    outs = [_both(tmp_path, '0')[1].stdout for _ in range(2)]
    draws = [next(line for line in out.splitlines() if line.startswith('random ')) for out in outs]
    assert draws[0] != draws[1]
    script = tmp_path / 'probe.py'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = zygote().popen([sys.executable, str(script), 'sleep'], cwd=tmp_path, env=env, merge_stderr=True)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
