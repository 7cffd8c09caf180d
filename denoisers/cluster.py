"""Running the CLIs' (image, method, sigma) jobs on a Dask ``distributed`` cluster.

``--cluster ADDRESS`` (or ``$DENOISERS_CLUSTER``) of ``denoisers.evaluate`` and
``denoisers.denoise``: ``tcp://HOST:PORT`` (or ``tls://``) is a running scheduler, ``local:N``
starts a ``LocalCluster`` of N one-thread worker processes on this machine. ``distributed`` is
imported only then.

The client (the CLI) does everything but the denoising: it reads the images, makes the noisy
inputs (a worker's noise generator is never used), scores the outputs and writes every file.
A worker gets the method's name, the noisy array, sigma, the precision and the model id the run
expects; it builds the method (the project must be importable there, with the same plugins),
refuses before any work when its own model id differs, and returns the output with the time it
took. The client checks the output's shape and the model id again, so a worker with other
weights is refused (a failed job, listed and retried by the same command), never mixed in.
A worker that dies mid-job: the scheduler gives its job to another worker.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
import warnings
from functools import lru_cache
from typing import Callable, Iterator

import numpy as np

ENV = "DENOISERS_CLUSTER"
FORMS = "tcp://HOST:PORT (a running scheduler; or tls://), or local:N (N worker processes here)"
CONNECT_TIMEOUT_S = 30
_ADDRESS = re.compile(r"(tcp|tls)://[^\s/:]+(:\d{1,5})?")
_LOCAL = re.compile(r"local:(\d+)")
_PLUGINS_LOCK = threading.Lock()
INSTALL = "pip install 'dask[distributed]==2026.8.0' (the version in requirements.txt)"


class WorkerMismatch(RuntimeError):
    """A worker's result that cannot stand: other weights, or an output of the wrong shape."""


def parse_address(text: str) -> str:
    """``text`` checked to be a scheduler address or ``local:N``; ValueError naming the forms."""
    text = text.strip()
    local = _LOCAL.fullmatch(text)
    if local:
        if int(local.group(1)) < 1:
            raise ValueError(f"--cluster {text}: local:N needs at least one worker")
        return text
    if _ADDRESS.fullmatch(text):
        return text
    raise ValueError(f"--cluster {text!r}: expected {FORMS}")


def add_cluster_argument(parser) -> None:
    """The ``--cluster`` option both CLIs share."""
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help=f"run the jobs on a Dask cluster: {FORMS} (default: ${ENV}, else this machine)")


def address(given: str | None) -> str | None:
    """The cluster to use: ``--cluster``, else ``$DENOISERS_CLUSTER``, else None (run here).
    SystemExit naming the accepted forms for a bad one."""
    text = given if given is not None else os.environ.get(ENV, "")
    if not text.strip():
        return None
    try:
        return parse_address(text)
    except ValueError as exc:
        where = "" if given is not None else f" (from ${ENV})"
        raise SystemExit(f"{exc}{where}") from None


@contextlib.contextmanager
def connect(where: str) -> Iterator[object]:
    """A ``distributed.Client`` of the cluster at ``where`` (``local:N``: one started here,
    stopped on leaving); SystemExit saying why when there is none."""
    try:
        import distributed
    except ImportError:
        raise SystemExit(f"--cluster needs Dask's distributed scheduler: {INSTALL}") from None
    local = _LOCAL.fullmatch(where)
    cluster = None
    try:
        if local:
            cluster = distributed.LocalCluster(n_workers=int(local.group(1)), threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(where, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise SystemExit(f"--cluster {where}: cannot reach the scheduler ({exc})") from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=10)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=10)


def describe(client) -> str:
    """"2 workers, 2 threads" for the start of a run; a note when there are none yet."""
    threads = client.nthreads()
    if not threads:
        return "no workers yet: the jobs wait for the first one to join"
    return f"{len(threads)} worker{'s' * (len(threads) != 1)}, {sum(threads.values())} threads"


@lru_cache(maxsize=None)
def _instance(method: str, precision: str | None):
    """The worker's denoiser ``method``, one per process (its models load once)."""
    from .base import TorchDenoiser
    from .registry import get

    denoiser = get(method)
    if precision and isinstance(denoiser, TorchDenoiser):
        denoiser = get(method, precision=precision)
    return denoiser


def denoise_job(method: str, noisy: np.ndarray, sigma: float, weights: str, precision: str | None,
                plugins: tuple[str, ...], strict_fp32: bool) -> dict:
    """Runs on a worker: ``method`` on ``noisy`` at ``sigma``, unless this worker's model id
    for it is not ``weights`` (then no output: the client refuses it)."""
    from .base import model_id
    from .registry import load_plugins

    with _PLUGINS_LOCK:  # a worker of several threads: two first jobs would both import a plugin
        load_plugins(list(plugins))
    if strict_fp32:  # as the evaluation does locally: no TF32 on a GPU
        import torch

        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    denoiser = _instance(method, precision)
    found = model_id(denoiser, sigma)
    where = _worker_name()
    if found != weights:
        return {"weights": found, "worker": where, "output": None, "seconds": 0.0}
    start = time.perf_counter()
    output = denoiser.denoise(noisy, sigma)
    return {"weights": found, "worker": where, "output": output, "seconds": time.perf_counter() - start}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "this process"


def checked(result: dict, method: str, sigma: float, weights: str, shape: tuple) -> tuple[np.ndarray, float]:
    """A worker's ``(output, seconds)`` once its model id and output are the ones asked for;
    ``WorkerMismatch`` saying what differs otherwise."""
    if result.get("weights") != weights:
        raise WorkerMismatch(f"worker {result.get('worker')} has {method} at sigma {sigma:g} as "
                             f"{result.get('weights')!r}, this run uses {weights!r}: refused (give the "
                             "workers the same project version and weights as this machine)")
    output = result.get("output")
    if not isinstance(output, np.ndarray) or output.shape != tuple(shape) or output.dtype != np.float32:
        got = f"{output.dtype} {output.shape}" if isinstance(output, np.ndarray) else type(output).__name__
        raise WorkerMismatch(f"worker {result.get('worker')} returned {got} for a float32 {tuple(shape)} input: "
                             "refused")
    return output, float(result["seconds"])


class Runner:
    """Jobs submitted to a cluster, at most ``window`` in flight (the noisy inputs stay in this
    process and the scheduler until done); each job's callback runs here, in the calling thread,
    as it finishes, given a function that returns ``(output, seconds)`` or raises the job's error."""

    def __init__(self, client, plugins: list[str], strict_fp32: bool = False, window: int | None = None) -> None:
        from distributed import as_completed

        self.client, self.plugins, self.strict_fp32 = client, tuple(plugins), strict_fp32
        self.window = window or max(2, 2 * sum(client.nthreads().values()))
        self.pending = as_completed()
        self.callbacks: dict = {}

    def submit(self, method: str, noisy: np.ndarray, sigma: float, weights: str, precision: str | None,
               done: Callable[[Callable[[], tuple[np.ndarray, float]]], None]) -> None:
        while len(self.callbacks) >= self.window:
            self._finish_one()
        with warnings.catch_warnings():  # a large image travels in the task itself, on purpose: if its
            warnings.simplefilter("ignore", UserWarning)  # worker dies, the scheduler can send it to another
            future = self.client.submit(denoise_job, method, noisy, float(sigma), weights, precision,
                                        self.plugins, self.strict_fp32, pure=False)
        shape = noisy.shape
        self.callbacks[future] = lambda f: done(lambda: checked(f.result(), method, sigma, weights, shape))
        self.pending.add(future)

    def _finish_one(self) -> None:
        future = next(self.pending)
        callback = self.callbacks.pop(future)
        try:
            callback(future)
        finally:
            future.release()

    def drain(self) -> None:
        """Wait for every job submitted, running each one's callback."""
        while self.callbacks:
            self._finish_one()

    def cancel(self) -> None:
        """Drop the jobs still pending (Ctrl-C): no callback runs for them."""
        futures = list(self.callbacks)
        self.callbacks.clear()
        if futures:
            with contextlib.suppress(Exception):
                self.client.cancel(futures, force=True)
