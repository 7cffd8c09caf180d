"""Running the chosen methods on one input: cache first, then networks in threads and
process-bound methods (CBM3D) in their own process, all in parallel, fastest first; results
are yielded as each method finishes. With a crop box, each method's crop preview comes first
(``crop_first``, ``priority``; docs/region.md). The pools and stopping are ``workers``'.

One ``Engine`` is built at start-up and shared by every request: it holds the denoiser
instances (models load once), the worker pools (which bound the heavy work running at
once) and the result cache. It keeps no per-user data.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

import denoisers
from denoisers.base import model_id
from denoisers.registry import MethodError, status_and_model
from denoisers.io import to_float, to_uint8
from denoisers import metrics
from denoisers.metrics import add_noise, detail_ratio, high_frequency_energy, psnr, ssim
from denoisers.fetch import FetchError
from denoisers.parallel import denoise_by_name
from denoisers.weights import WeightsError

from . import speeds
from .cache import ResultCache, result_key
from .crop_first import parse_box, preview_result
from .workers import Stopped, Workers, install_stop_hook, stop_flag

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
    # A crop preview (``run(..., box=...)``, ``previews``): ``output`` is the region only (the
    # box's size), the scores are the crop's against the clean crop, ``detail`` None; never cached.
    preview: bool = False
    box: tuple[int, int, int, int] | None = None  # (top, left, height, width) of a preview


def timed_until_stopped(denoise, noisy: np.ndarray, sigma: float, stop: threading.Event,
                        gate: threading.Event | None = None) -> tuple[np.ndarray, float]:
    """``timed`` on this thread, ended early (``Stopped``) once ``stop`` is set; with ``gate``,
    a network waits at its next layer while the gate is closed (that wait is not counted)."""
    if stop.is_set():
        raise Stopped("stopped before it started")
    stop_flag.event, stop_flag.gate, stop_flag.paused = stop, gate, 0.0
    try:
        out, seconds = timed(denoise, noisy, sigma)
        return out, max(0.0, seconds - stop_flag.paused)
    finally:
        stop_flag.event = stop_flag.gate = None


def timed(denoise, noisy: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
    """``denoise(noisy, sigma)`` as (uint8 output, seconds)."""
    start = time.perf_counter()
    out = denoise(noisy, sigma)
    return to_uint8(out), time.perf_counter() - start


def timed_denoise_by_name(name: str, noisy: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
    """``timed`` for method ``name``, in a worker process (picklable by name)."""
    return timed(lambda x, s: denoise_by_name(name, x, s), noisy, sigma)


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


class Engine(Workers):
    def __init__(self, cache: ResultCache | None = None, methods: list[str] | None = None,
                 thread_workers: int = 2, process_workers: int = 1) -> None:
        install_stop_hook()
        self.cache = cache
        self.denoisers = {name: denoisers.get(name) for name in (methods or denoisers.names())}
        self.warming: threading.Thread | None = None  # the warm-up ``start`` began, if any
        super().__init__(thread_workers, process_workers)

    def start(self, warm_sigma: float | None = 25.0) -> None:
        """Start the worker process now (it takes seconds to import torch), not on first use,
        and warm every ready method up in the background (``Denoiser.warm``: networks loaded,
        bm3d imported), so that the first crop previews do not pay for it. ``warm_sigma``
        None: no warm-up."""
        if any(d.separate_process for d in self.denoisers.values()):
            super().start()
        if warm_sigma is not None:
            self.warming = threading.Thread(target=self.warm, args=(warm_sigma,), name="warm-up", daemon=True)
            self.warming.start()

    def warm(self, sigma: float) -> None:
        """``Denoiser.warm`` for every method ready at ``sigma``, one after another; a failure
        is logged and left to the method's first run to report."""
        for name, d in list(self.denoisers.items()):
            try:
                if d.readiness(sigma).ready:
                    d.warm(sigma)
            except Exception as exc:  # noqa: BLE001  (a warm-up never stops the app)
                log.warning("%s: not warmed up: %s: %s", name, type(exc).__name__, exc)

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

    def cached(self, name: str, clean_u8: np.ndarray | None, image_id: str, sigma: float, seed: int | None,
               shape: tuple[int, ...]) -> MethodResult | None:
        """``name``'s result for this input (of ``shape``) if the results cache holds it, as
        ``run`` serves it; nothing is computed (a method unknown, not ready or failing has none)."""
        if name not in self.denoisers or not self.cache:
            return None
        try:
            status, weights = status_and_model(self.denoisers[name], sigma)
        except (WeightsError, FetchError, MethodError):
            return None
        if not status.ready:
            return None
        job = _Job(clean_u8, np.broadcast_to(np.float32(0), shape), image_id, sigma, seed,
                   notes={name: status.outside_training or ""})
        return self._cached(name, self._key(name, image_id, sigma, seed, weights), job, weights)

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
            seed: int | None, methods: list[str], heartbeat: float | None = None,
            box: tuple[int, int, int, int] | None = None) -> Iterator[MethodResult | None]:
        """Yield one ``MethodResult`` per method in ``methods``: errors and cached ones first,
        then in the order they finish, the whole images submitted fastest first (``speeds``).
        ``noisy`` is the unclipped float input every method gets; ``seed`` None means it was
        uploaded already noisy (``clean_u8`` is then None).

        With ``box`` (top, left, height, width), every method not cached first yields a crop
        preview of that region (``preview`` True, see ``crop_first``), computed ahead of the
        whole images (which wait for it), then its whole result; a cached method yields only
        its whole result. A preview never comes after its method's whole result.

        With ``heartbeat`` (seconds), ``None`` is also yielded whenever that long passes with no
        method finishing, so that a caller that is cancelled between yields (a web request)
        ends within a heartbeat instead of when the slowest method finishes. A method still
        running when the caller goes away is cached when it finishes (its work is not lost);
        its queued previews are dropped."""
        box = None if box is None else parse_box(box, noisy.shape)
        job = _Job(clean_u8, noisy, image_id, sigma, seed)
        pending: dict[Future, tuple[str, str | None, bool]] = {}
        try:  # from the first yield on: a caller that leaves at any of them abandons what was submitted
            at_once, todo = self._triage(job, methods)
            if box is not None:
                for name, _ in todo:
                    pending[self._submit_preview(name, job, box)] = (name, None, True)
            for name, key in todo:  # submitted before the first yield: a caller may dwell on it
                pending[self._submit_full(name, key, job)] = (name, key, False)
            yield from at_once
            yield from self._collect(job, pending, heartbeat, box)
        finally:
            self._leave(job, pending)

    def previews(self, clean_u8: np.ndarray | None, noisy: np.ndarray, image_id: str, sigma: float,
                 seed: int | None, methods: list[str], box: tuple[int, int, int, int],
                 heartbeat: float | None = None) -> Iterator[MethodResult | None]:
        """Crop previews of ``box`` for ``methods`` at once, for a crop moved while whole images
        still run: ahead of all whole-image work (which waits for them), fastest first. Errors
        and cached whole results are yielded as ``run`` does (cut the crop from a whole result);
        nothing else is submitted. A caller that leaves drops the previews not yet done."""
        box = parse_box(box, noisy.shape)
        job = _Job(clean_u8, noisy, image_id, sigma, seed)
        pending: dict[Future, tuple[str, str | None, bool]] = {}
        try:
            at_once, todo = self._triage(job, methods)
            for name, _ in todo:
                pending[self._submit_preview(name, job, box)] = (name, None, True)
            yield from at_once
            yield from self._collect(job, pending, heartbeat, box)
        finally:
            self._leave(job, pending)

    def estimate(self, methods: list[str], shape: tuple[int, ...], image_id: str | None = None,
                 sigma: float | None = None, seed: int | None = None) -> dict[str, float]:
        """Seconds each method would take alone on an image of ``shape`` (``speeds``); with the
        input's ``image_id``, ``sigma`` and ``seed``, a method whose result is cached counts 0.
        ``speeds.estimate_text`` makes the status line of it."""
        figures = {}
        for name in methods:
            figures[name] = speeds.estimate(name, shape)
            if image_id is not None and sigma is not None and self.cache and name in self.denoisers:
                try:
                    key = self._key(name, image_id, sigma, seed)
                except Exception:  # not ready or failing: its run will say why
                    continue
                if key is not None and self.cache.contains(key):
                    figures[name] = 0.0
        return figures

    def _key(self, name: str, image_id: str, sigma: float, seed: int | None, weights: str | None = None) -> str | None:
        """The cache key of ``name``'s result (None where the method is not ready)."""
        d = self.denoisers[name]
        if weights is None:
            status, weights = status_and_model(d, sigma)
            if not status.ready:
                return None
        how = numerics(d)
        # The precision is part of the key: a bf16 output is not an fp32 one.
        return result_key(image_id, sigma, seed, name, weights + (f"|{how}" if how else ""))

    def _triage(self, job: "_Job", methods: list[str]) -> tuple[list[MethodResult], list[tuple[str, str | None]]]:
        """What needs no work (an unknown or unready method, a cached result) as results, and
        the rest as (name, cache key), fastest first."""
        at_once, todo = [], []
        for name in methods:
            if name not in self.denoisers:
                at_once.append(MethodResult(name, name, None, error=f"unknown method {name!r}"))
                continue
            d = self.denoisers[name]
            try:  # a method of one's own (a plugin) may fail here; the others still run
                status, weights = status_and_model(d, job.sigma)
            except (WeightsError, FetchError) as exc:  # its text names the server's folders
                log.warning("%s: %s", name, exc)
                at_once.append(MethodResult(name, d.label, None, error=WEIGHTS_UNAVAILABLE))
                continue
            except MethodError as exc:
                at_once.append(MethodResult(name, d.label, None, error=exc.reason))
                continue
            if not status.ready:
                at_once.append(MethodResult(name, d.label, None, error=f"not ready: {status.reason}"))
                continue
            if status.outside_training:
                job.notes[name] = status.outside_training
            key = self._key(name, job.image_id, job.sigma, job.seed, weights) if self.cache else None
            hit = self._cached(name, key, job, weights)
            if hit is not None:
                at_once.append(hit)
            else:
                todo.append((name, key))
        return at_once, sorted(todo, key=lambda item: speeds.seconds_per_mp(item[0]))

    def _cached(self, name: str, key: str | None, job: "_Job", weights: str) -> MethodResult | None:
        hit = self.cache.get(key) if key else None
        if hit is None or hit.image.shape != job.noisy.shape:
            return None
        clean_u8, d = job.clean_u8, self.denoisers[name]
        return MethodResult(name, d.label, hit.image, hit.meta.get("psnr"), hit.meta.get("ssim"),
                            hit.meta.get("seconds"), cached=True,
                            detail=None if clean_u8 is None else detail_ratio(clean_u8, hit.image, job.clean_energy),
                            weights=weights, numerics=numerics(d), note=job.notes.get(name, ""),
                            lpips=hit.meta["lpips"] if hit.meta.get("lpips") is not None
                            else perceptual_distance(clean_u8, hit.image))

    def _submit_full(self, name: str, key: str | None, job: "_Job") -> Future:
        d, noisy, sigma = self.denoisers[name], job.noisy, job.sigma
        if d.separate_process:
            return self._shared(key, lambda: self._submit_to_process(timed_denoise_by_name, name, noisy, sigma))
        gate = self._priority.full_may_run  # whole images wait while crop previews are pending
        return self._shared(key, lambda: self._submit_stoppable(
            self._threads, lambda stop: timed_until_stopped(d.denoise, noisy, sigma, stop, gate)))

    def _submit_preview(self, name: str, job: "_Job", box: tuple[int, int, int, int]) -> Future:
        """The region of ``box`` for method ``name`` on the preview thread, ahead of whole images:
        they wait (``Priority``) until no preview is pending. CBM3D's region runs on this thread
        too: bm3d's compiled code lets go of the interpreter lock (measured on kodim05, loaded
        CPU: during an 11 s region another thread waited at most 0.37 s), while the worker
        process is busy with whole images and a second one would cost seconds to start."""
        d = self.denoisers[name]
        region = lambda x, s: d.denoise_region(x, s, box)  # noqa: E731
        self._priority.hold()
        try:
            future = self._submit_stoppable(self._preview_threads,
                                            lambda stop: timed_until_stopped(region, job.noisy, job.sigma, stop))
        except RuntimeError:  # the engine was closed
            self._priority.release()
            raise
        future.add_done_callback(self._priority.release)
        return future

    def _collect(self, job: "_Job", pending: dict, heartbeat: float | None,
                 box: tuple[int, int, int, int] | None) -> Iterator[MethodResult | None]:
        """Yield ``pending``'s results as they finish, previews first when several are done; a
        preview still pending when its whole result arrives is dropped."""
        while pending:
            done, _ = wait(pending, timeout=heartbeat, return_when=FIRST_COMPLETED)
            if not done:
                yield None
            for future in sorted(done, key=lambda f: not pending[f][2]):
                if future not in pending:  # dropped: its whole result came first
                    continue
                name, key, preview = pending.pop(future)
                if preview:
                    result = self._preview(name, future, job, box)
                    if result is not None:
                        yield result
                    continue
                result = self._finish(name, key, future, job)
                self._forget(key, future)  # cached now: a later request reads it from there
                result.note = job.notes.get(name, "")
                for other in [f for f, (n, _, p) in pending.items() if p and n == name]:
                    del pending[other]
                    self._drop_preview(other)
                yield result

    def _preview(self, name: str, future: Future, job: "_Job", box) -> MethodResult | None:
        """The finished preview as a result, or None where it failed (its whole run says why)."""
        d = self.denoisers[name]
        try:
            out, seconds = future.result()
        except Exception as exc:  # the whole run reports the error; a preview only shows pixels
            log.info("%s: no crop preview: %s: %s", name, type(exc).__name__, exc)
            return None
        result = MethodResult(name, d.label, out, seconds=seconds, weights=model_id(d, job.sigma),
                              numerics=numerics(d), note=job.notes.get(name, ""))
        return preview_result(result, job.clean_u8, box)

    def _leave(self, job: "_Job", pending: dict) -> None:
        for future, (name, key, preview) in pending.items():
            if preview:
                self._drop_preview(future)
                continue
            # The caller went away: drop work not yet started, keep what is already running
            # (cached when it finishes), leave alone what another comparison waits on.
            self._abandon(key, future, lambda f, n=name, k=key: (self._finish(n, k, f, job), self._forget(k, f)))

    def _finish(self, name: str, key: str | None, future: Future, job: "_Job") -> MethodResult:
        label, d, sigma, clean_u8 = self.label(name), self.denoisers[name], job.sigma, job.clean_u8
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
        seconds = max(0.0, seconds - self._suspended_while(future))
        p = s = detail = None
        if clean_u8 is not None:
            p, s, detail = psnr(clean_u8, out), ssim(clean_u8, out), detail_ratio(clean_u8, out, job.clean_energy)
        lp = perceptual_distance(clean_u8, out)
        if self.cache and key:
            meta = {"psnr": p, "ssim": s, "lpips": lp, "seconds": seconds, "method": name, "sigma": sigma, "seed": job.seed,
                    "weights": weights, "numerics": how}
            try:
                self.cache.put(key, out, meta)
            except OSError as exc:  # a full or read-only disk: the result is still good, only not kept
                log.warning("result not cached: %s", exc)
        return MethodResult(name, label, out, p, s, seconds, detail=detail, weights=weights, numerics=how, lpips=lp)


@dataclass
class _Job:
    """One comparison's input, as every step of ``Engine.run`` needs it."""

    clean_u8: np.ndarray | None
    noisy: np.ndarray
    image_id: str
    sigma: float
    seed: int | None
    notes: dict[str, str] = field(default_factory=dict)  # e.g. "not trained for sigma 70: ..."
    clean_energy: float | None = None

    def __post_init__(self) -> None:
        if self.clean_u8 is not None:  # once for all methods
            self.clean_energy = high_frequency_energy(self.clean_u8)
