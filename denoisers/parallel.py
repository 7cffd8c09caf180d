"""Running a denoiser in worker processes (CBM3D beside the networks)."""
from __future__ import annotations

import multiprocessing
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


def process_pool(workers: int = 1) -> ProcessPoolExecutor:
    """A pool of ``workers`` fresh ("spawn") processes; safe beside threads and torch. Each
    loads the plugins loaded here, so that their methods can run there too."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=load_plugins, initargs=(plugins(),))


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
