"""Running a denoiser in worker processes (CBM3D beside the networks)."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np

from .base import Denoiser
from .registry import get, load_plugins, plugins


@lru_cache(maxsize=None)
def _instance(name: str) -> Denoiser:
    # One instance per worker process, so models load once per worker.
    return get(name)


def denoise_by_name(name: str, noisy: np.ndarray, sigma: float) -> np.ndarray:
    """``get(name).denoise(noisy, sigma)``, picklable for a process pool."""
    return _instance(name).denoise(noisy, sigma)


PARENT_CHECK_S = 0.5  # how often a worker checks that the process that started it still lives


def _exit_when_orphaned(parent: int) -> None:
    """End this worker once the process that started it is gone, whatever ended that one
    (SIGKILL included, which runs no clean-up): a CBM3D job would otherwise run on for a minute
    with nobody to take its result, and keep the pool's resource tracker alive."""
    while os.getppid() == parent:
        threading.Event().wait(PARENT_CHECK_S)
    os._exit(1)


def _start_worker(parent: int, plugin_specs: list[str]) -> None:
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="orphan-watch").start()
    load_plugins(plugin_specs)


def process_pool(workers: int = 1) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh ("spawn") processes; safe beside threads and torch. Each
    loads the plugins loaded here, so that their methods can run there too, and ends itself
    within a second of this process ending."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(), plugins()))


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM (a scheduler's or ``kill``'s polite stop) raises
    ``KeyboardInterrupt`` as Ctrl-C does, so that the same clean-up runs: workers stopped,
    files left whole. Only the main thread can set a handler; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """End ``pool``'s worker processes now, with the jobs they are running, so that an exit
    does not wait for them (a CBM3D job of a large image runs for a minute).
    ``ProcessPoolExecutor`` has no public way to do this before Python 3.14 (``terminate_workers``)."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
