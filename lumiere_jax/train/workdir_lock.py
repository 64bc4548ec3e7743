"""One training run per workdir: `<workdir>/lock` holds the owner's host, pid and start time.

A second run in the same workdir refuses, naming the owner. A lock left by a process that no
longer runs on this host (killed, crashed machine restarted) is stale: it is replaced, and the
takeover is logged. A lock from another host cannot be checked from here; it is honoured until
removed by hand (the message says which file).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

from absl import logging

LOCK_FILE = "lock"


class WorkdirLocked(RuntimeError):
    """Another run owns the workdir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def acquire(workdir: str) -> str:
    """Take the workdir's lock (creating the workdir); return the lock file's path."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_FILE)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _read(path)
            if owner.get("host") == me["host"] and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]):
                logging.warning("removing the stale lock %s of pid %d (no longer running)", path, owner["pid"])
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            if not owner:  # being written right now, or unreadable: look again
                time.sleep(0.2)
                owner = _read(path)
            raise WorkdirLocked(
                f"workdir {workdir} is in use by another run (host {owner.get('host', '?')}, pid "
                f"{owner.get('pid', '?')}, started {owner.get('started', '?')}): wait for it to finish, use "
                f"another --workdir, or delete {path} if that run is gone"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return path
    raise WorkdirLocked(f"could not take the lock {path}")


def release(path: str) -> None:
    """Remove the lock if this process still owns it."""
    if _read(path).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def held(workdir: str, enabled: bool = True):
    """`with held(workdir):` the workdir is this run's (`enabled=False`: no lock, e.g. on processes
    other than 0 of a multi-process run, which share process 0's)."""
    if not enabled:
        yield None
        return
    path = acquire(workdir)
    try:
        yield path
    finally:
        release(path)
