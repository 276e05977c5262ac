"""Durable files: written atomically, never readable by others while being written; and the
lock that keeps one process per state directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["LockedError", "hold_lock", "write_atomically"]


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` in one step (a crash leaves the old or the new file),
    created with `mode`."""
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(partial, mode)
    os.replace(partial, path)


class LockedError(Exception):
    """Another process holds the lock; `holder` is the PID it wrote ("" if not yet)."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"locked by {holder or 'another process'}")
        self.holder = holder


def hold_lock(path: Path) -> None:
    """Lock `path` (created 0600) for the rest of this process's life and write our PID in
    it; raises `LockedError` when another process holds it.

    The descriptor is never closed: the kernel drops the lock when the process ends,
    however it ends, so a crash leaves no stale lock behind.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip()
        os.close(fd)
        raise LockedError(holder) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
