"""Crop previews before whole images: while any region preview is pending, whole-image work
gives the CPU up to it. On 2 cores a 1-3 s preview competing with two network threads and
CBM3D's worker at 200 % would take several times as long.

- A network's whole-image run waits at its next layer (the engine's forward pre-hook reads
  ``full_may_run``); a stop still ends it there.
- The worker processes (CBM3D's whole images) are suspended (SIGSTOP) and continued (SIGCONT)
  when the last pending preview is done. Before a pool is stopped its workers are continued,
  so that they can take the signal that ends them.

Where signals cannot suspend a process (not POSIX) only the networks wait.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

log = logging.getLogger(__name__)

_CAN_SUSPEND = hasattr(signal, "SIGSTOP") and hasattr(signal, "SIGCONT")


def worker_pids(pool: ProcessPoolExecutor | None) -> list[int]:
    """The pool's worker processes (``ProcessPoolExecutor`` keeps them in ``_processes``)."""
    processes = getattr(pool, "_processes", None) or {}
    return [p.pid for p in list(processes.values()) if p.pid is not None]


class Priority:
    def __init__(self, pool_of: Callable[[], ProcessPoolExecutor | None]) -> None:
        self._pool_of = pool_of  # the engine's current worker pool (it is replaced when stopped)
        self._lock = threading.Lock()
        self._pending = 0
        self._suspended: set[int] = set()
        self._suspended_total = 0.0  # seconds the workers have spent suspended, all told
        self._suspended_since: float | None = None
        self.full_may_run = threading.Event()
        self.full_may_run.set()

    @property
    def pending(self) -> int:
        return self._pending

    def hold(self) -> None:
        """One more preview is pending: whole-image work waits."""
        with self._lock:
            self._pending += 1
            self.full_may_run.clear()
            self._suspend_workers()

    def release(self, *_) -> None:
        """A preview is done (or cancelled); usable as a future's done callback."""
        with self._lock:
            self._pending = max(0, self._pending - 1)
            if self._pending == 0:
                self._continue_workers()
                self.full_may_run.set()

    def suspend_new_workers(self) -> None:
        """A worker started while previews are pending (a new pool) waits too."""
        with self._lock:
            if self._pending:
                self._suspend_workers()

    def suspended_seconds(self) -> float:
        """How long the workers have been suspended so far, all told (a job's run time is
        its wall time less what this grew by while it ran)."""
        with self._lock:
            now = time.perf_counter()
            return self._suspended_total + (now - self._suspended_since if self._suspended_since else 0.0)

    def continue_workers(self) -> None:
        """Continue every suspended worker now (before its pool is stopped or closed)."""
        with self._lock:
            self._continue_workers()

    def _suspend_workers(self) -> None:
        if not _CAN_SUSPEND:
            return
        for pid in worker_pids(self._pool_of()):
            if pid not in self._suspended:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    self._suspended.add(pid)
                except ProcessLookupError:
                    pass
        if self._suspended and self._suspended_since is None:
            self._suspended_since = time.perf_counter()

    def _continue_workers(self) -> None:
        for pid in self._suspended:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._suspended.clear()
        if self._suspended_since is not None:
            self._suspended_total += time.perf_counter() - self._suspended_since
            self._suspended_since = None
