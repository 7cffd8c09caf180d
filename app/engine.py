"""Running the chosen methods on one input: cache first, then networks in threads and
process-bound methods (CBM3D) in their own process, all in parallel; results are yielded
as each method finishes.

One ``Engine`` is built at start-up and shared by every request: it holds the denoiser
instances (models load once), the worker pools (which bound the heavy work running at
once) and the result cache. It keeps no per-user data.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

import denoisers
from denoisers.base import model_id
from denoisers.registry import MethodError, status_and_model
from denoisers.io import to_float, to_uint8
from denoisers import metrics
from denoisers.metrics import add_noise, detail_ratio, high_frequency_energy, psnr, ssim
from denoisers.fetch import FetchError
from denoisers.parallel import denoise_by_name, process_pool, stop_workers
from denoisers.weights import WeightsError

from .cache import ResultCache, result_key

log = logging.getLogger(__name__)

NOISY = "noisy"
WEIGHTS_UNAVAILABLE = "its weights could not be had (the server's log says why)"


@dataclass
class MethodResult:
    """One method's output on one input; ``output`` is HxWx3 uint8 (None on error)."""

    name: str
    label: str
    output: np.ndarray | None
    psnr: float | None = None  # None without ground truth
    ssim: float | None = None
    seconds: float | None = None  # the method's own run time (also when served from the cache)
    cached: bool = False
    error: str | None = None
    detail: float | None = None  # high-frequency energy over the ground truth's (metrics.detail_ratio)
    weights: str | None = None  # the exact model (``Denoiser.weights_id``: a sha256, a package version)
    numerics: str | None = None  # how a network ran: "bf16 on cpu", "fp32 on cuda" (None: not a network)
    note: str = ""  # e.g. that the method ran outside its training range
    lpips: float | None = None  # LPIPS (AlexNet) to the ground truth, lower is closer; None without one


class Stopped(Exception):
    """A method's run was stopped because nobody waits for its result any more."""


_stop_flag = threading.local()  # the stop event of the run on this thread, if any


def _stop_between_layers(module, inputs) -> None:
    """A forward pre-hook on every torch module: a network run whose stop event is set ends at
    its next layer (well under a second), instead of running on for its whole image."""
    event = getattr(_stop_flag, "event", None)
    if event is not None and event.is_set():
        raise Stopped("stopped: nobody waits for this result any more")


_hook_lock = threading.Lock()
_hook_installed = False


def _install_stop_hook() -> None:
    """Install ``_stop_between_layers`` once, when the first engine is made (not on import: a
    process that only imports this module, a training run say, keeps torch's modules as they
    are). It stays installed: removing a global hook while another thread runs a network
    could change the hooks under that run."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            torch.nn.modules.module.register_module_forward_pre_hook(_stop_between_layers)
            _hook_installed = True


def timed_until_stopped(denoise, noisy: np.ndarray, sigma: float, stop: threading.Event) -> tuple[np.ndarray, float]:
    """``timed`` on this thread, ended early (``Stopped``) once ``stop`` is set."""
    if stop.is_set():
        raise Stopped("stopped before it started")
    _stop_flag.event = stop
    try:
        return timed(denoise, noisy, sigma)
    finally:
        _stop_flag.event = None


def timed(denoise, noisy: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
    """``denoise(noisy, sigma)`` as (uint8 output, seconds)."""
    start = time.perf_counter()
    out = denoise(noisy, sigma)
    return to_uint8(out), time.perf_counter() - start


def timed_denoise_by_name(name: str, noisy: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
    """``timed`` for method ``name``, in a worker process (picklable by name)."""
    return timed(lambda x, s: denoise_by_name(name, x, s), noisy, sigma)


def _warm_worker() -> bool:
    import denoisers  # noqa: F401  (imports torch and bm3d once in the worker)

    return True


def numerics(d: denoisers.Denoiser) -> str | None:
    """How ``d`` computes, where that can move its output: the precision and device of a
    network (the evaluation CLI runs every network in fp32), None for anything else."""
    if not isinstance(d, denoisers.TorchDenoiser):
        return None
    return f"{'bf16' if d.uses_bf16 else 'fp32'} on {d.device.type}"


def perceptual_distance(clean_u8: np.ndarray | None, out: np.ndarray) -> float | None:
    """LPIPS (AlexNet) of ``out`` to the ground truth: None without one, for an image under
    the metric's 32x32, or where its weights cannot be had (said once in the log; the PSNR and
    the panel stand without it)."""
    if clean_u8 is None or min(clean_u8.shape[:2]) < 32:
        return None
    try:
        return metrics.lpips(clean_u8, out)
    except (WeightsError, FetchError, OSError) as exc:
        global _lpips_warned
        if not _lpips_warned:
            log.warning("LPIPS is not shown: %s", exc)
            _lpips_warned = True
        return None


_lpips_warned = False


def synthetic_noisy(clean_u8: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """The protocol's noisy input: clean/255 plus seeded Gaussian noise, NOT clipped."""
    return add_noise(to_float(clean_u8), sigma, seed)


class Engine:
    def __init__(self, cache: ResultCache | None = None, methods: list[str] | None = None,
                 thread_workers: int = 2, process_workers: int = 1) -> None:
        _install_stop_hook()
        self.cache = cache
        self.denoisers = {name: denoisers.get(name) for name in (methods or denoisers.names())}
        self._threads = ThreadPoolExecutor(max_workers=thread_workers, thread_name_prefix="denoise")
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

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker process now (it takes seconds to import torch), not on first use."""
        if any(d.separate_process for d in self.denoisers.values()) and self._pool is None:
            self._pool = process_pool(self._process_workers)
            self._pool.submit(_warm_worker)

    def close(self) -> None:
        """Stop: queued work is dropped and the worker processes end now (an exit would
        otherwise wait for a CBM3D job still running)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            stop_workers(self._pool)
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _submit_to_thread(self, d: denoisers.Denoiser, noisy: np.ndarray, sigma: float) -> Future:
        stop = threading.Event()
        future = self._threads.submit(timed_until_stopped, d.denoise, noisy, sigma, stop)
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
        stop_workers(pool)
        pool.shutdown(wait=False, cancel_futures=True)

    def _submit_to_process(self, *args) -> Future:
        future = self._submit_to_process_pool(*args)
        with self._inflight_lock:
            self._process_futures.add(future)
        future.add_done_callback(self._drop_process_future)
        return future

    def _drop_process_future(self, future: Future) -> None:
        with self._inflight_lock:
            self._process_futures.discard(future)

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

    # -- queries ------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self.denoisers)

    #: Settings of a method family (the dial ``idgan@A``) kept built at once; the oldest goes.
    FAMILY_KEPT = 8

    def resolve(self, names: list[str]) -> list[str]:
        """``names`` as this engine knows them: a family member such as ``idgan@0.30`` is built
        on first use and kept under its canonical name (``idgan@0.3``). ValueError naming
        the unknown ones and the accepted forms."""
        resolved, unknown = [], []
        for name in names:
            if name in self.denoisers:
                resolved.append(name)
                continue
            try:
                canonical = denoisers.registry.canonical(name)
            except ValueError as exc:
                unknown.append((name, str(exc)))
                continue
            with self._inflight_lock:
                if canonical not in self.denoisers:
                    family = [n for n in self.denoisers if "@" in n]
                    if len(family) >= self.FAMILY_KEPT:
                        del self.denoisers[family[0]]
                    self.denoisers[canonical] = denoisers.get(canonical)
            resolved.append(canonical)
        if unknown:
            reasons = "; ".join(reason for name, reason in unknown if "@" in name)
            raise ValueError(f"unknown methods: {', '.join(name for name, _ in unknown)}; known: "
                             f"{', '.join(self.names())}" + (f" ({reasons})" if reasons else ""))
        return list(dict.fromkeys(resolved))

    def label(self, name: str) -> str:
        return self.denoisers[name].label if name in self.denoisers else name

    def readiness(self, sigma: float | None = None) -> dict[str, denoisers.Readiness]:
        return {name: d.readiness(sigma) for name, d in self.denoisers.items()}

    def lookup(self, name: str, image_id: str, sigma: float, seed: int | None) -> np.ndarray | None:
        """``name``'s output for this input if the results cache holds it; never computes (the
        dial's instant preview blends the two ends it finds here)."""
        d = self.denoisers.get(name)
        if d is None or not self.cache:
            return None
        try:
            status, weights = status_and_model(d, sigma)
        except (WeightsError, FetchError, MethodError):
            return None
        if not status.ready:
            return None
        how = numerics(d)
        hit = self.cache.get(result_key(image_id, sigma, seed, name, weights + (f"|{how}" if how else "")))
        return None if hit is None else hit.image

    # -- work ---------------------------------------------------------------------------
    def noisy_result(self, clean_u8: np.ndarray | None, noisy: np.ndarray) -> MethodResult:
        """The noisy image as displayed (clipped, rounded) and, with ground truth, its scores.

        Computed every time, never cached: PSNR/SSIM of one image take a fraction of a
        second, while a cache entry would store the whole image (and scan the cache to
        evict) on every preview.
        """
        shown = to_uint8(noisy)
        if clean_u8 is None:
            return MethodResult(NOISY, "Noisy", shown)
        return MethodResult(NOISY, "Noisy", shown, psnr(clean_u8, shown), ssim(clean_u8, shown))

    def run(self, clean_u8: np.ndarray | None, noisy: np.ndarray, image_id: str, sigma: float,
            seed: int | None, methods: list[str], heartbeat: float | None = None) -> Iterator[MethodResult | None]:
        """Yield one ``MethodResult`` per method in ``methods``, cached ones first, then in
        the order they finish. ``noisy`` is the unclipped float input every method gets;
        ``seed`` None means it was uploaded already noisy (``clean_u8`` is then None).

        With ``heartbeat`` (seconds), ``None`` is also yielded whenever that long passes with no
        method finishing, so that a caller that is cancelled between yields (a web request)
        ends within a heartbeat instead of when the slowest method finishes. A method still
        running when the caller goes away is cached when it finishes (its work is not lost)."""
        pending: dict[Future, tuple[str, str | None]] = {}
        notes: dict[str, str] = {}  # what a result should say, e.g. "not trained for sigma 70: ..."
        clean_energy = None if clean_u8 is None else high_frequency_energy(clean_u8)  # once for all methods
        try:  # from the first yield on: a caller that leaves at any of them abandons what was submitted
            for name in methods:
                if name not in self.denoisers:
                    yield MethodResult(name, name, None, error=f"unknown method {name!r}")
                    continue
                d = self.denoisers[name]
                try:  # a method of one's own (a plugin) may fail here; the others still run
                    status, weights = status_and_model(d, sigma)
                except (WeightsError, FetchError) as exc:  # its text names the server's folders
                    log.warning("%s: %s", name, exc)
                    yield MethodResult(name, d.label, None, error=WEIGHTS_UNAVAILABLE)
                    continue
                except MethodError as exc:
                    yield MethodResult(name, d.label, None, error=exc.reason)
                    continue
                if not status.ready:
                    yield MethodResult(name, d.label, None, error=f"not ready: {status.reason}")
                    continue
                if status.outside_training:
                    notes[name] = status.outside_training
                how = numerics(d)
                # The precision is part of the key: a bf16 output is not an fp32 one.
                key = (result_key(image_id, sigma, seed, name, weights + (f"|{how}" if how else ""))
                       if self.cache else None)
                hit = self.cache.get(key) if key else None
                if hit is not None and hit.image.shape == noisy.shape:
                    yield MethodResult(name, d.label, hit.image, hit.meta.get("psnr"), hit.meta.get("ssim"),
                                       hit.meta.get("seconds"), cached=True,
                                       detail=None if clean_u8 is None else detail_ratio(clean_u8, hit.image,
                                                                                         clean_energy),
                                       weights=weights, numerics=how, note=notes.get(name, ""),
                                       lpips=hit.meta["lpips"] if hit.meta.get("lpips") is not None
                                       else perceptual_distance(clean_u8, hit.image))
                    continue
                if d.separate_process:
                    future = self._shared(key, lambda: self._submit_to_process(timed_denoise_by_name, name, noisy,
                                                                               sigma))
                else:
                    future = self._shared(key, lambda: self._submit_to_thread(d, noisy, sigma))
                pending[future] = (name, key)
            while pending:
                done, _ = wait(pending, timeout=heartbeat, return_when=FIRST_COMPLETED)
                if not done:
                    yield None
                for future in done:
                    name, key = pending.pop(future)
                    result = self._finish(name, key, future, clean_u8, clean_energy, sigma, seed)
                    self._forget(key, future)  # cached now: a later request reads it from there
                    result.note = notes.get(name, "")
                    yield result
        finally:
            for future, (name, key) in pending.items():
                # The caller went away: drop work not yet started, keep what is already running
                # (cached when it finishes), leave alone what another comparison waits on.
                self._abandon(key, future, lambda f, n=name, k=key: (
                    self._finish(n, k, f, clean_u8, clean_energy, sigma, seed), self._forget(k, f)))

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

    def _finish(self, name: str, key: str | None, future: Future, clean_u8: np.ndarray | None,
                clean_energy: float | None, sigma: float, seed: int | None) -> MethodResult:
        label = self.label(name)
        d = self.denoisers[name]
        try:
            weights, how = model_id(d, sigma), numerics(d)
            out, seconds = future.result()
        except (WeightsError, FetchError) as exc:  # its text names the server's folders and sources
            log.warning("%s: %s", name, exc)
            return MethodResult(name, label, None, error=WEIGHTS_UNAVAILABLE)
        except (ValueError, denoisers.NotReadyError) as exc:
            return MethodResult(name, label, None, error=str(exc))
        except Exception as exc:  # a crashed worker must not take the whole comparison down
            return MethodResult(name, label, None, error=f"{type(exc).__name__}: {exc}")
        p = s = detail = None
        if clean_u8 is not None:
            p, s, detail = psnr(clean_u8, out), ssim(clean_u8, out), detail_ratio(clean_u8, out, clean_energy)
        lp = perceptual_distance(clean_u8, out)
        if self.cache and key:
            meta = {"psnr": p, "ssim": s, "lpips": lp, "seconds": seconds, "method": name, "sigma": sigma, "seed": seed,
                    "weights": weights, "numerics": how}
            try:
                self.cache.put(key, out, meta)
            except OSError as exc:  # a full or read-only disk: the result is still good, only not kept
                log.warning("result not cached: %s", exc)
        return MethodResult(name, label, out, p, s, seconds, detail=detail, weights=weights, numerics=how, lpips=lp)
