"""The steps of one user's session as plain functions: load an input, start a comparison,
run it, answer the API. They take the shared ``Engine`` and return plain values; the gradio
wiring in ``ui`` only moves these values in and out of components and ``gr.State``."""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from denoisers import registry
from denoisers.base import GREY_NOISE_NOTE, is_grey
from denoisers.io import to_float
from denoisers.metrics import estimate_noise_sigma

from . import kodak
from .convert import GREYSCALE, InputError, check_seed, check_sigma, grey_noisy, image_id, load_image
from .engine import Engine, MethodResult, synthetic_noisy
from .text import plain
from .views import Comparison, best_method


@dataclass
class Source:
    """The chosen input: a Kodak24 image or an upload, as checked 8-bit RGB."""

    name: str  # "kodim05", or "upload-<file name>" (never a Kodak name: links name Kodak images only)
    image: np.ndarray  # HxWx3 uint8
    image_id: str
    notes: tuple[str, ...] = ()  # what the upload's conversion changed (``convert.load_image``)
    grey: bool | None = None  # the three channels are equal (then its synthetic noise is grey too); None: find out

    def __post_init__(self) -> None:
        self.notes = tuple(self.notes)
        if self.grey is None:
            self.grey = is_grey(self.image)

    @property
    def note(self) -> str:
        """The notes as one phrase, for a status line."""
        return ", ".join(self.notes)


class Turn:
    """How many inputs one visitor has chosen (a per-session state, mutated in place). A
    comparison remembers the count it started with and yields nothing once it has moved on:
    gradio's ``cancels`` ends its run, but a result the run was already sending could otherwise
    land after the new input's preview and bring the old image back."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> None:
        self.count += 1


def source_from_kodak(name: str) -> Source:
    image, _ = load_image(kodak.path(name))
    return Source(name, image, image_id(image))


def source_from_upload(path: str | Path | bytes | None, max_pixels: int, downscale: bool = False,
                       ui_hint: bool = True) -> Source:
    if path is None:
        raise InputError("no file was uploaded")
    image, notes = load_image(path, max_pixels=max_pixels, downscale=downscale, ui_hint=ui_hint)
    return Source(upload_name(path), image, image_id(image), tuple(notes), GREYSCALE in notes)


def upload_name(path: str | Path | bytes) -> str:
    """``upload-<file stem>`` (safe in export file names), or ``upload`` for raw bytes."""
    if isinstance(path, bytes):
        return "upload"
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).strip("._")[:40]
    return f"upload-{stem}" if stem else "upload"


def suggested_sigma(source: Source) -> tuple[float, str]:
    """The estimated noise sigma of an already-noisy input, put in the slider's range, and a note."""
    from .convert import SIGMA_MAX, SIGMA_MIN

    estimate = estimate_noise_sigma(source.image)
    chosen = float(min(SIGMA_MAX, max(SIGMA_MIN, round(estimate))))
    note = f"estimated noise σ ≈ {estimate:.1f}" + ("" if chosen == round(estimate) else f" (using {chosen:g}, the nearest allowed)")
    note += "; override it with the σ slider if you know better"
    if is_grey(source.image):
        note += ". Note: " + GREY_NOISE_NOTE
    return chosen, note


#: Added to a grey image's id when its noise is grey: the id is the cache key's image part.
GREY_NOISE_KEY = "+grey-noise"


def new_comparison(engine: Engine, source: Source, sigma: object, seed: object, already_noisy: bool,
                   methods: list[str]) -> tuple[Comparison, np.ndarray]:
    """Check the settings, make the noisy input and score it. Returns the comparison (no
    method results yet) and the unclipped float input every method gets."""
    sigma = check_sigma(sigma)
    if already_noisy:
        clean, seed_value = None, None
        noisy = to_float(source.image)
    else:
        seed_value = check_seed(seed)
        clean = source.image
        noisy = (grey_noisy if source.grey else synthetic_noisy)(clean, sigma, seed_value)
    try:
        methods = engine.resolve(methods)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    ordered = display_order(engine.names(), methods)
    noisy_result = engine.noisy_result(clean, noisy)
    # Grey noise is another input than colour noise on the same pixels: another cache key.
    key = source.image_id + (GREY_NOISE_KEY if clean is not None and source.grey else "")
    comparison = Comparison(source.name, key, clean, noisy_result, sigma, seed_value, ordered)
    return comparison, noisy


def display_order(names: list[str], methods: list[str]) -> list[str]:
    """``methods`` in the order of ``names``, a family member (``idgan@0.3``) where its family
    stands (IDGAN's place), after the family's own name."""
    place = {n: i for i, n in enumerate(names)}
    return sorted(dict.fromkeys(methods), key=lambda m: (place.get(m.partition("@")[0], len(place)), m))


def noisy_input(comparison: Comparison) -> np.ndarray:
    """The unclipped float input the methods got for ``comparison``: the seeded noise again,
    or the already-noisy upload (shown as it came, so its 8-bit pixels are the input)."""
    if comparison.clean is None:
        return to_float(comparison.noisy.output)
    grey = comparison.image_id.endswith(GREY_NOISE_KEY)
    return (grey_noisy if grey else synthetic_noisy)(comparison.clean, comparison.sigma, comparison.seed)


def cached_results(engine: Engine, comparison: Comparison) -> list[MethodResult]:
    """The results of ``comparison.methods`` that the engine's cache already holds, as
    ``Engine.run`` would serve them; nothing is computed, and a method not ready or not cached
    is left out."""
    c = comparison
    found = (engine.cached(name, c.clean, c.image_id, c.sigma, c.seed, c.shape) for name in c.methods)
    return [r for r in found if r is not None]


def run(engine: Engine, comparison: Comparison, noisy: np.ndarray, heartbeat: float | None = None,
        box: tuple[int, int, int, int] | None = None, previews: dict | None = None) -> Iterator[Comparison | None]:
    """Fill ``comparison.results`` method by method, yielding after each one (and ``None`` for
    each ``heartbeat`` that passes with nothing new: see ``Engine.run``). With ``box``, each
    uncached method's crop preview comes first: it goes into ``previews`` (a dict by method
    name that the caller keeps; never ``comparison.results``) and is yielded after as well."""
    results = engine.run(comparison.clean, noisy, comparison.image_id, comparison.sigma, comparison.seed,
                         comparison.methods, heartbeat, box=box)
    yield from _routed(results, comparison, previews)


def moved_crop(engine: Engine, comparison: Comparison, noisy: np.ndarray, box: tuple[int, int, int, int],
               previews: dict, heartbeat: float | None = None) -> Iterator[Comparison | None]:
    """The crop previews of ``box`` for the comparison's methods that have no whole result yet
    (``Engine.previews``), into ``previews``, for a crop moved while whole images still run."""
    methods = [m for m in comparison.methods if m not in comparison.results]
    results = engine.previews(comparison.clean, noisy, comparison.image_id, comparison.sigma, comparison.seed,
                              methods, box, heartbeat)
    yield from _routed(results, comparison, previews)


def _routed(results, comparison: Comparison, previews: dict | None) -> Iterator[Comparison | None]:
    for result in results:
        if result is None:
            yield None
            continue
        if result.preview:
            if previews is not None:
                previews[result.name] = result
        else:
            comparison.results[result.name] = result
        yield comparison


def summary(comparison: Comparison, seconds: float) -> str:
    done = comparison.finished()
    cached = sum(r.cached for r in done)
    errors = [f"{r.label}: {r.error}" for r in comparison.results.values() if r.error]
    if comparison.stopped:
        text = (f"Stopped: {len(done)} of {len(comparison.methods) + len(comparison.stopped)} methods done "
                f"({', '.join(map(registry.label, comparison.stopped))} not run)")
    else:
        text = f"Done: {len(done)} of {len(comparison.methods)} methods in {seconds:.1f} s"
    if cached:
        text += f" ({cached} from the cache)"
    text += f" on {plain(comparison.source)}, σ {comparison.sigma:g}" + (
        "" if comparison.seed is None else f", seed {comparison.seed}")  # the page names its input nowhere else
    best = best_method(comparison)
    if best:
        text += f". Best PSNR: {comparison.results[best].label}"
    if errors:
        text += ". Problems: " + "; ".join(errors)
    if not comparison.has_truth and is_grey(comparison.noisy.output):
        text += ". Note: " + GREY_NOISE_NOTE
    return text + "."


def _json_number(value: float | None) -> float | None:
    """JSON has no infinity: the PSNR of an output identical to the ground truth becomes null."""
    return None if value is None or not math.isfinite(value) else value


def api_methods(methods: list[str] | str | None) -> list[str]:
    """An API call's ``methods`` as a list of names (see ``api_compare``); ``InputError`` else."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    elif methods is not None and not isinstance(methods, (list, tuple)):
        raise InputError(f"methods must be a list of method names, got {type(methods).__name__}")
    methods = [str(m) for m in methods or []]
    if not methods:
        raise InputError("choose at least one method")
    return methods


def api_compare(engine: Engine, image: str | Path | bytes | None, sigma: object, seed: object,
                methods: list[str] | str | None, max_pixels: int) -> tuple[dict, Comparison]:
    """The ``/compare`` endpoint's work: the JSON record and the finished comparison.

    ``methods`` is a list of method names, e.g. ``["dncnn", "ffdnet"]``. Through the endpoint
    a single name may also come as a plain string (``"dncnn"``: its dropdown passes a lone
    choice on as is), but a comma-separated string is refused there ("dncnn,ffdnet" is not one
    of its choices); called directly, a string is split at commas.
    """
    methods = api_methods(methods)
    source = source_from_upload(image, max_pixels=max_pixels, ui_hint=False)
    start = time.perf_counter()
    comparison, noisy = new_comparison(engine, source, sigma, seed, False, methods)
    for _ in run(engine, comparison, noisy):
        pass
    record = {
        "sigma": comparison.sigma,
        "seed": comparison.seed,
        "noisy": {"psnr": _json_number(comparison.noisy.psnr), "ssim": comparison.noisy.ssim},
        "methods": {},
        "seconds_total": time.perf_counter() - start,
    }
    for name in comparison.methods:
        r = comparison.results[name]
        entry = {"psnr": _json_number(r.psnr), "ssim": r.ssim, "lpips": r.lpips, "detail": r.detail, "seconds": r.seconds,
                 "cached": r.cached, "weights": r.weights, "numerics": r.numerics, "note": r.note}
        if r.error:
            entry = {"psnr": None, "ssim": None, "lpips": None, "detail": None, "seconds": None, "error": r.error}
        record["methods"][name] = entry
    return record, comparison
