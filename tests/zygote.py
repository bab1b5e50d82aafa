"""Entry-point runs without paying for ``import torch`` each time: a fork server for the tests.

Every ``python aesop/train.py …`` a test starts spends ~8 s importing torch, torchvision (which
imports torch._dynamo) and basicsr before its first line of work, which made those imports the
largest part of the suite's time. The zygote is a Python process that imports all of that once
(per pytest worker) and then forks one child per run. A child starts from the state right after
those imports, exactly where a fresh interpreter running the script would be, and then takes the
run's argv, environment, working directory and output files, reseeds ``random``/NumPy from the OS
as a new process would, and runs the script, ``-m`` module or ``-c`` code as ``__main__``; its
exit status (or signal) is the run's. It ends as an interpreter does in what a run can observe
(threads joined, ``atexit`` handlers, buffers flushed, an uncaught exception printed, status 1)
but skips tearing down the modules, which in a forked child costs ~2.7 s of copy-on-write.
``tests/test_zygote.py`` checks all of that against real subprocesses.

Only Python runs on Linux whose import-time environment (``IMPORT_ENV``) equals the zygote's go
through it (``conftest.forkable``); anything else is a plain subprocess, and so is every run when
``AESOP_TEST_NO_ZYGOTE=1``. torchrun launches its workers itself: those stay subprocesses.

Protocol (JSON lines): a request ``{argv, cwd, env, stdout, stderr}`` on the zygote's stdin is
answered ``{"pid": …}`` at the fork and ``{"exit": pid, "rc": …}`` when the child is reaped (the
zygote polls, so several children may run at once). EOF on stdin ends the zygote.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

IMPORT_ENV = ('AESOP_RANDOM_BACKBONES', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'CUDA_VISIBLE_DEVICES', 'PYTHONPATH')
PRELOAD = ('aesop', 'aesop.train', 'aesop.test', 'torch.utils.tensorboard', 'lpips', 'DISTS_pytorch')


# ----------------------------------------------------------------------------------------------- server


def _send(out, message: dict) -> None:
    out.write(json.dumps(message) + '\n')
    out.flush()


def _child(request: dict) -> NoReturn:
    """In the forked child: become the requested run, run the script as ``__main__`` and exit with its status."""
    import atexit
    import io
    import random
    import runpy
    import threading
    import types

    import numpy as np

    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    out = os.open(request['stdout'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request['stderr'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if request['stderr'] else out
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
    for fd in {null, out, err}:
        os.close(fd)
    unbuffered = bool(request['env'].get('PYTHONUNBUFFERED'))  # as a new interpreter sets up its streams

    def stream(fd: int, **kw) -> io.TextIOWrapper:
        raw = io.FileIO(fd, 'w', closefd=False)
        return io.TextIOWrapper(raw if unbuffered else io.BufferedWriter(raw), encoding='utf-8', **kw)

    sys.stdout = sys.__stdout__ = stream(1, write_through=unbuffered)
    sys.stderr = sys.__stderr__ = stream(2, line_buffering=True, errors='backslashreplace')
    sys.stdin = sys.__stdin__ = open(0, closefd=False)  # noqa: SIM115  (lives as long as the process)
    random.seed()  # a new process draws fresh seeds (basicsr picks manual_seed with random when unset)
    np.random.seed()
    what, *args = request['argv'][1:]
    try:
        if what == '-c':  # python -c CODE ARGS…
            main = types.ModuleType('__main__')
            sys.modules['__main__'], sys.argv, sys.path[0] = main, ['-c', *args[1:]], ''
            exec(compile(args[0], '<string>', 'exec'), main.__dict__)
        elif what == '-m':  # python -m MODULE ARGS…
            sys.argv, sys.path[0] = args, os.getcwd()
            runpy.run_module(args[0], run_name='__main__', alter_sys=True)
        else:  # python path/to/script.py ARGS…
            sys.argv, sys.path[0] = [what, *args], str(Path(what).resolve().parent)
            runpy.run_path(what, run_name='__main__')
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    except BaseException:
        sys.excepthook(*sys.exc_info())
        status = 1
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    # What the interpreter's shutdown does that a run can observe: join threads, run atexit, flush.
    # Not the teardown of every module after that: in a forked child it writes to each of ~4 M
    # objects copied-on-write from the zygote, which took ~2.7 s per run.
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status or 0)


def serve() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    reply = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)  # stray prints of the zygote itself must not corrupt the replies
    _send(reply, {'ready': os.getpid(), 'threads': len(os.listdir('/proc/self/task'))})
    pending = b''
    while True:
        readable, _, _ = select.select([0], [], [], 0.02)
        if readable:
            chunk = os.read(0, 1 << 16)
            if not chunk:  # the pytest worker is gone
                return
            pending += chunk
            while b'\n' in pending:
                line, pending = pending.split(b'\n', 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    reply.close()
                    _child(request)  # never returns
                _send(reply, {'pid': pid})
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            _send(reply, {'exit': pid, 'rc': os.waitstatus_to_exitcode(status)})


# ----------------------------------------------------------------------------------------------- client


class ForkedRun:
    """A run forked by the zygote, with the part of :class:`subprocess.Popen` the tests use."""

    def __init__(self, zygote: Zygote, pid: int, stdout: Path, stderr: Path | None, text: bool) -> None:
        self.zygote, self.pid, self.returncode = zygote, pid, None
        self._files, self._text = (stdout, stderr), text

    def poll(self) -> int | None:
        if self.returncode is None:
            self.zygote.pump(0)
            self.returncode = self.zygote.exits.pop(self.pid, None)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            self.zygote.pump(0.5 if left is None else min(left, 0.5))
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple:
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        return tuple(None if path is None else self._read(path) for path in self._files)

    def _read(self, path: Path):
        data = path.read_bytes()
        return data.decode(errors='replace') if self._text else data


class Zygote:
    """The client: starts the server once, then :meth:`popen` forks runs from it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env
        )
        self.exits: dict[int, int] = {}
        self._started: list[int] = []
        self._pending = b''
        self._tmp = tempfile.TemporaryDirectory(prefix='zygote-')
        self._count = 0
        self.ready = self._next(lambda m: 'ready' in m, timeout=300)
        if self.ready['threads'] != 1:  # fork copies only the calling thread: another one's locks stay held
            self.close()
            threads = self.ready['threads']
            raise RuntimeError(f'the test zygote runs {threads} threads after its imports: unsafe to fork')

    def accepts(self, env: dict[str, str]) -> bool:
        """Whether a run with ``env`` would start from the same imports as the zygote did."""
        return all(env.get(key) == self.env.get(key) for key in IMPORT_ENV)

    def popen(self, cmd: list[str], *, cwd: str | Path, env: dict[str, str], merge_stderr: bool, text: bool = True):
        if cmd[0] != sys.executable:
            raise ValueError(f'the zygote runs {sys.executable} only, not {cmd[0]}')
        self._count += 1
        stdout = Path(self._tmp.name) / f'{self._count}.out'
        stderr = None if merge_stderr else Path(self._tmp.name) / f'{self._count}.err'
        request = {'argv': cmd, 'cwd': str(cwd), 'env': env, 'stdout': str(stdout), 'stderr': stderr and str(stderr)}
        self.proc.stdin.write((json.dumps(request) + '\n').encode())
        self.proc.stdin.flush()
        pid = self._next(lambda m: 'pid' in m, timeout=60)['pid']
        return ForkedRun(self, pid, stdout, stderr, text)

    def run(self, cmd, *, cwd, env, timeout: float) -> subprocess.CompletedProcess:
        """``subprocess.run(cmd, capture_output=True, text=True, timeout=…)`` through the zygote."""
        proc = self.popen(cmd, cwd=cwd, env=env, merge_stderr=False)
        stdout, stderr = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)

    def pump(self, timeout: float) -> None:
        """Read what the server has said within ``timeout`` seconds."""
        fd = self.proc.stdout.fileno()
        if select.select([fd], [], [], timeout)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f'the test zygote exited ({self.proc.wait()}); see the stderr above')
            self._pending += chunk
            while b'\n' in self._pending:
                line, self._pending = self._pending.split(b'\n', 1)
                message = json.loads(line)
                if 'exit' in message:
                    self.exits[message['exit']] = message['rc']
                else:
                    self._started.append(message)

    def _next(self, match, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while not any(match(m) for m in self._started):
            if time.monotonic() > deadline:
                raise RuntimeError(f'the test zygote did not answer within {timeout} s')
            self.pump(min(1.0, max(0.0, deadline - time.monotonic())))
        index = next(i for i, m in enumerate(self._started) if match(m))
        return self._started.pop(index)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._tmp.cleanup()


if __name__ == '__main__':
    serve()
