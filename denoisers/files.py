"""Writing files so that no reader, and no crash, ever sees half of one.

``atomic_write(path)`` is the one way this project replaces a file: the new content goes to a
temporary file of a unique name in the same folder, is flushed and fsynced, made readable like
an ordinary file, and renamed over ``path`` (an atomic step on POSIX); the folder is fsynced
too, so that after a power cut the name points at the old file or the whole new one. If
anything fails, or the process is interrupted before the rename, ``path`` is left as it was
and the temporary file is removed.

Temporary files are named ``.<name>.<random>.part``; ``remove_stale_parts`` clears those left
by a process killed outright (no ``finally`` ran).
"""
from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

PART_SUFFIX = ".part"


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, encoding: str | None = None,
                 newline: str | None = None, mkdir: bool = True) -> Iterator[IO]:
    """Open a temporary file to write in place of ``path``; on a clean exit of the block it
    replaces ``path`` whole. ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8 unless given)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes new files only (mode 'w' or 'wb'), not {mode!r}")
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PART_SUFFIX)
    tmp = Path(tmp_name)
    try:
        if mode == "w":
            f = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        else:
            f = os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; caches and results may be shared
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def remove_stale_parts(target: str | Path, older_than_s: float) -> int:
    """Remove the temporary files of writes to ``target`` older than ``older_than_s`` (a younger
    one may be a write going on beside this one); returns how many went."""
    target = Path(target)
    cutoff = time.time() - older_than_s
    removed = 0
    for part in target.parent.glob(f".{glob.escape(target.name)}.*{PART_SUFFIX}"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
        except OSError:
            pass
    return removed


class FolderBusy(RuntimeError):
    """Another process holds the folder (``only_writer``)."""


@contextlib.contextmanager
def only_writer(folder: str | Path, what: str) -> Iterator[None]:
    """Hold ``folder`` for this process alone while the block runs: a second process (two
    evaluations given one ``--out``) gets ``FolderBusy`` at once instead of appending its rows
    into the same file. An advisory lock on the folder itself (no lock file is left behind);
    it ends with the process, however it ends. Where the system has no such locks, nothing is held."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(f"{folder}: another {what} is writing there now; wait for it to end "
                             "or choose another folder") from None
        yield
    finally:
        os.close(fd)
