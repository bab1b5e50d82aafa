"""One run per experiment folder, and no training process outliving its torchrun agent.

basicsr renames an existing ``experiments/<name>`` to ``<name>_archived_<time>`` when a run starts:
started twice, the second run archives the live one's folder and both write into the new one.
:func:`hold_experiment` makes the first run hold ``experiments/.<name>.lock`` (pid and host) for
its whole life (a kernel file lock); a second run on the same name is refused with one line
saying who holds it. The lock of a process that died (kill -9) is gone with it: its file is
taken over. A start-up that fails gives the lock up at once (:func:`release_experiment`), leaving
nothing behind.
:func:`exit_with_parent` stops a torchrun worker whose agent was killed.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
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


_HELD: dict[Path, int] = {}  # lock file -> its descriptor (holding its flock where files lock), until released
_MADE: dict[Path, bool] = {}  # lock file -> whether taking it made its folder (experiments/)
_SIGTERM_BEFORE: list = []  # the SIGTERM handler that hold_experiment replaced, restored once no lock is held


def hold_experiment(experiments_root: str | Path) -> Path:
    """Hold ``<experiments>/.<name>.lock`` for this process (an exclusive ``flock``, released at exit and
    by the kernel when the process dies); returns the lock file.

    The file records the holder's pid, host and start time. A second run is refused with one
    :class:`AesopError` naming them. A file left by a dead run holds no lock: it is taken over with
    a warning. Two runs taking over the same stale lock cannot both win (the lock is the kernel's,
    not the file's content). A file system without locks (``flock`` unsupported) gets a warning and
    no lock (the file is still removed at exit or by :func:`release_experiment`).
    """
    folder = Path(experiments_root)
    lock = folder.parent / f'.{folder.name}.lock'
    if lock in _HELD:
        return lock  # this process holds it already (a second run in the same process)
    made = False
    for _ in range(3):
        made = made or not lock.parent.is_dir()  # (re-)made by this try: a failed start-up's release removed it
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        except FileNotFoundError:  # the folder removed by a run that failed to start (release_experiment)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = (os.read(fd, 200).decode(errors='replace').split() + ['?', '?'])[:2]
            os.close(fd)
            raise AesopError(
                f'experiment {folder.name} is in use by pid {holder[0]} on {holder[1]} (lock {lock}): '
                'wait for that run, stop it, or give this one another name'
            ) from None
        except OSError as err:  # e.g. a network file system mounted without locks
            logger.warning(f'{lock}: the file system does not lock files ({err.strerror}): experiment not locked')
            _record(lock, fd, made)  # not a lock, but the file and folder go as a held lock's do
            return lock
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # released (unlinked) by its holder between our open and our flock: try again
            os.close(fd)
            continue
        previous = os.read(fd, 200).decode(errors='replace').split()
        if previous:
            host = previous[1] if len(previous) > 1 else '?'
            logger.warning(f'{lock}: stale lock of pid {previous[0]} on {host} (no longer running) taken over')
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()} {socket.gethostname()} {time.strftime("%Y-%m-%dT%H:%M:%S")}\n'.encode(), 0)
        _record(lock, fd, made)
        return lock
    raise AesopError(f'could not take the lock {lock}: another run keeps taking it')


def _record(lock: Path, fd: int, made: bool) -> None:
    """Keep ``fd`` (open on ``lock``) until :func:`_release` (at exit, or :func:`release_experiment`), with whether
    taking it ``made`` the folder; SIGTERM (kill, docker stop, preemption) exits through that release too."""
    _HELD[lock] = fd
    _MADE[lock] = made
    atexit.register(_release, lock)
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        _SIGTERM_BEFORE.append(signal.signal(signal.SIGTERM, _exit_on_sigterm))


def _exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the run through ``SystemExit``, so that exit handlers (the lock's release) run."""
    raise SystemExit(128 + signum)


def _release(lock: Path) -> None:
    """Unlink the lock file while still holding it, then unlock (a waiting run sees the file gone and retries)."""
    fd = _HELD.pop(lock, None)
    if fd is not None:
        lock.unlink(missing_ok=True)
        os.close(fd)


def release_experiment(experiments_root: str | Path) -> None:
    """Give up this process's lock of ``experiments_root`` now (a run whose start-up failed): the lock file
    goes, and so does ``experiments/`` if taking the lock made it and nothing else is in it; with no lock left,
    SIGTERM's handler is the one before :func:`hold_experiment`. A no-op for a lock this process does not hold (a
    rank > 0 of torchrun)."""
    folder = Path(experiments_root)
    lock = folder.parent / f'.{folder.name}.lock'
    _release(lock)
    if _MADE.pop(lock, False):
        with contextlib.suppress(OSError):  # not empty: another run's lock or folder is there now
            lock.parent.rmdir()
    if not _HELD and _SIGTERM_BEFORE and threading.current_thread() is threading.main_thread():
        previous = _SIGTERM_BEFORE.pop()
        if signal.getsignal(signal.SIGTERM) is _exit_on_sigterm:  # not replaced by another handler since
            signal.signal(signal.SIGTERM, previous)


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
