"""One run per experiment folder, and no training process outliving its torchrun agent.

basicsr renames an existing ``experiments/<name>`` to ``<name>_archived_<time>`` when a run starts:
started twice, the second run archives the live one's folder and both write into the new one.
:func:`hold_experiment` makes the first run hold ``experiments/.<name>.lock`` (pid and host) for
its whole life; a second run on the same name is refused with one line saying who holds it. A
lock left by a process that died (kill -9) is detected by its pid on this host and taken over.
:func:`exit_with_parent` stops a torchrun worker whose agent was killed.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

from aesop.errors import AesopError

logger = logging.getLogger('basicsr')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hold_experiment(experiments_root: str | Path) -> Path:
    """Take ``<experiments>/.<name>.lock`` for this process (released at exit); returns the lock file.

    Raises :class:`AesopError` naming the pid and host of a live holder.
    """
    folder = Path(experiments_root)
    lock = folder.parent / f'.{folder.name}.lock'
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = f'{os.getpid()} {socket.gethostname()}'
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid_text, host = (lock.read_text().split() + ['', ''])[:2]
            except FileNotFoundError:
                continue  # released in between
            if host == socket.gethostname() and pid_text == str(os.getpid()):
                return lock  # this process holds it already (a second run in the same process)
            if host == socket.gethostname() and pid_text.isdigit() and not _alive(int(pid_text)):
                logger.warning(f'{lock}: stale lock of pid {pid_text} (no longer running) taken over')
                lock.unlink(missing_ok=True)
                continue
            raise AesopError(
                f'experiment {folder.name} is in use by pid {pid_text} on {host or "?"} (lock {lock}): '
                'wait for that run, stop it, or give this one another name (if that run is gone, on another '
                'host or container, delete the lock)'
            ) from None
        with os.fdopen(fd, 'w') as f:
            f.write(f'{me} {time.strftime("%Y-%m-%dT%H:%M:%S")}\n')
        atexit.register(_release, lock, me)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _exit_on_sigterm)  # kill, docker stop, preemption: release too
        return lock
    raise AesopError(f'could not take the lock {lock}: another run keeps taking it')


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the run through ``SystemExit``, so that exit handlers (the lock's release) run."""
    raise SystemExit(128 + signum)


def _release(lock: Path, me: str) -> None:
    try:
        if lock.read_text().startswith(me + ' '):
            lock.unlink()
    except FileNotFoundError:
        pass


def exit_with_parent(period_s: float = 2.0) -> threading.Thread:
    """Watch this process's parent (the torchrun agent); when it is gone, stop this worker (SIGTERM).

    A killed agent leaves its workers re-parented (to init or a subreaper): they notice within
    ``period_s`` and exit instead of training on for good.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent:
                logger.error(f'the torchrun agent (pid {parent}) is gone: stopping this worker (pid {os.getpid()})')
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(30)  # still here (e.g. blocked in a collective with a dead peer): leave now
                os._exit(128 + signal.SIGTERM)

    thread = threading.Thread(target=watch, name='aesop-exit-with-parent', daemon=True)
    thread.start()
    return thread


def remove_stale_temporaries(experiments_root: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint saves interrupted by a kill (``.<name>.tmp<pid>`` of a
    dead pid, see :func:`aesop.weights.atomic_save`) in the experiment's folders; returns them."""
    removed = []
    for folder in ('models', 'training_states'):
        for tmp in (Path(experiments_root) / folder).glob('.*.tmp*'):
            pid = tmp.name.rsplit('.tmp', 1)[-1]
            if pid.isdigit() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    if removed:
        logger.warning(f'removed {len(removed)} temporary file(s) of interrupted saves: {", ".join(map(str, removed))}')
    return removed
