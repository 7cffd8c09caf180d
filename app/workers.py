"""The engine's work machinery, apart from what a comparison is: the thread pools (whole
images of networks; crop previews), the worker process pool (CBM3D), work shared by several
comparisons (by cache key), and stopping work nobody waits for any more. ``Engine`` builds on
it; see ``engine`` for the comparison itself and ``priority`` for previews going first."""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

import torch

from denoisers.parallel import process_pool, stop_workers

from .priority import Priority

log = logging.getLogger(__name__)


class Stopped(Exception):
    """A method's run was stopped because nobody waits for its result any more."""


stop_flag = threading.local()  # the stop event of the run on this thread, if any


def _stop_between_layers(module, inputs) -> None:
    """A forward pre-hook on every torch module: a network run whose stop event is set ends at
    its next layer (well under a second), instead of running on for its whole image. A run
    with a gate (a whole image) also waits there while the gate is closed (crop previews run)."""
    event = getattr(stop_flag, "event", None)
    if event is None:
        return
    gate = getattr(stop_flag, "gate", None)
    if gate is not None and not gate.is_set():
        start = time.perf_counter()
        while not event.is_set() and not gate.wait(0.05):
            pass
        stop_flag.paused += time.perf_counter() - start  # not the method's own time
    if event.is_set():
        raise Stopped("stopped: nobody waits for this result any more")


_hook_lock = threading.Lock()
_hook_installed = False


def install_stop_hook() -> None:
    """Install ``_stop_between_layers`` once, when the first engine is made (not on import: a
    process that only imports this module, a training run say, keeps torch's modules as they
    are). It stays installed: removing a global hook while another thread runs a network
    could change the hooks under that run."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            torch.nn.modules.module.register_module_forward_pre_hook(_stop_between_layers)
            _hook_installed = True


def _warm_worker() -> bool:
    """Import torch and warm up the methods that run in this worker (bm3d's import, 0.8 s)."""
    import denoisers

    for name in denoisers.names():
        d = denoisers.get(name)
        if d.separate_process and d.readiness(25).ready:
            d.warm(25)
    return True


class Workers:
    def __init__(self, thread_workers: int = 2, process_workers: int = 1) -> None:
        self._threads = ThreadPoolExecutor(max_workers=thread_workers, thread_name_prefix="denoise")
        # Crop previews, one at a time (each uses both cores), never queued behind a whole image.
        self._preview_threads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
        self._priority = Priority(lambda: self._pool)
        self._process_workers = process_workers
        self._pool: ProcessPoolExecutor | None = None
        # Work under way by cache key, with how many comparisons wait on it: a second request
        # for the same result (a reload mid-run, two visitors of one link) waits on the same
        # computation instead of starting another.
        self._inflight: dict[str, tuple[Future, int]] = {}
        self._inflight_lock = threading.RLock()
        # How to stop work nobody waits for: a thread job's stop event; which jobs are a
        # worker process's.
        self._stops: dict[Future, threading.Event] = {}
        self._process_futures: set[Future] = set()
        self._suspended_at: dict[Future, float] = {}  # a worker job's start on Priority's clock

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker process now (it takes seconds to import torch), not on first use."""
        if self._pool is None:
            self._pool = process_pool(self._process_workers)
            self._pool.submit(_warm_worker)

    def close(self) -> None:
        """Stop: queued work is dropped and the worker processes end now (an exit would
        otherwise wait for a CBM3D job still running)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._preview_threads.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            self._priority.continue_workers()  # a suspended worker would not take its end
            stop_workers(self._pool)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _submit_stoppable(self, executor: ThreadPoolExecutor, work: Callable[[threading.Event], object]) -> Future:
        """``work(stop)`` on ``executor``; ``_stop_running`` sets ``stop`` (a network then ends
        at its next layer)."""
        stop = threading.Event()
        future = executor.submit(work, stop)
        with self._inflight_lock:
            self._stops[future] = stop
        future.add_done_callback(self._drop_stop)
        return future

    def _drop_stop(self, future: Future) -> None:
        with self._inflight_lock:
            self._stops.pop(future, None)

    def _stop_running(self, future: Future) -> None:
        """Stop ``future``'s work, which nobody waits for any more: a network ends at its next
        layer; a worker process is ended (a new one starts for the next job) unless another
        comparison waits on a job of the same pool. Called under ``_inflight_lock``."""
        stop = self._stops.get(future)
        if stop is not None:
            stop.set()
            return
        if future not in self._process_futures or self._pool is None:
            return
        waited = [f for f, count in self._inflight.values()
                  if f is not future and count > 0 and f in self._process_futures and not f.done()]
        if waited:
            return
        pool, self._pool = self._pool, None
        log.info("stopping the worker process: nobody waits for its job any more")
        self._priority.continue_workers()  # a suspended worker would not take its end
        stop_workers(pool)
        pool.shutdown(wait=False, cancel_futures=True)

    def _submit_to_process(self, *args) -> Future:
        future = self._submit_to_process_pool(*args)
        self._priority.suspend_new_workers()  # a pool started now waits for pending previews too
        with self._inflight_lock:
            self._process_futures.add(future)
            self._suspended_at[future] = self._priority.suspended_seconds()
        future.add_done_callback(self._drop_process_future)
        return future

    def _drop_process_future(self, future: Future) -> None:
        with self._inflight_lock:
            self._process_futures.discard(future)

    def _suspended_while(self, future: Future) -> float:
        """How long the workers were suspended while ``future`` was submitted (0 for a thread's
        job): not the method's own time. A job queued behind another may count some of it."""
        with self._inflight_lock:
            at = self._suspended_at.pop(future, None)
        return 0.0 if at is None else self._priority.suspended_seconds() - at

    def _submit_to_process_pool(self, *args) -> Future:
        """Submit to the worker pool; a pool broken by a worker that died (out of memory, a
        crash in native code) is replaced, so that one crash does not end that method for
        every later comparison."""
        try:
            return self._process_pool().submit(*args)
        except BrokenProcessPool:
            log.warning("the worker process pool was broken (a worker died); starting a new one")
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            return self._process_pool().submit(*args)

    def _process_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self.start()
        assert self._pool is not None
        return self._pool

    def under_way(self) -> list[tuple[bool, int]]:
        """The results being computed now, each as (started, how many comparisons wait on it):
        a read-only look for monitoring and tests."""
        with self._inflight_lock:
            return [(future.running() or future.done(), count) for future, count in self._inflight.values()]

    def _shared(self, key: str | None, submit) -> Future:
        """The future computing ``key`` if one is under way, or finished and not yet forgotten
        (one more comparison waits on it), else ``submit()``."""
        if key is None:
            return submit()
        with self._inflight_lock:
            entry = self._inflight.get(key)
            if entry is not None and not entry[0].cancelled():
                self._inflight[key] = (entry[0], entry[1] + 1)
                return entry[0]
            future = submit()
            self._inflight[key] = (future, 1)
        return future

    def _forget(self, key: str | None, future: Future) -> None:
        """``key``'s result is in the cache: later requests read it there."""
        if key is None:
            return
        with self._inflight_lock:
            if key in self._inflight and self._inflight[key][0] is future:
                del self._inflight[key]

    def _abandon(self, key: str | None, future: Future, finish_late) -> None:
        """One comparison stops waiting on ``future``. If another still waits, nothing changes;
        else it is cancelled if it has not started, or else stopped (a network at its next
        layer, a worker process ended), with ``finish_late`` run when it ends (a result that
        was already complete is still cached). Decided under the lock, so that no request
        joins a future being cancelled or stopped."""
        with self._inflight_lock:
            entry = self._inflight.get(key) if key is not None else None
            ours = entry is not None and entry[0] is future
            if ours and entry[1] > 1:
                self._inflight[key] = (future, entry[1] - 1)
                return
            if future.cancel():  # not started: nobody gets it (callbacks: none on a queued one)
                if ours:
                    del self._inflight[key]
                return
            if ours:
                del self._inflight[key]  # a new request starts afresh rather than join a stopped run
            self._stop_running(future)
        future.add_done_callback(finish_late)

    def _drop_preview(self, future: Future) -> None:
        """Nobody waits for this preview: cancelled if queued, else its network stops at the
        next layer (a CBM3D region, a second or two, runs to its end)."""
        with self._inflight_lock:
            if not future.cancel():
                self._stop_running(future)

