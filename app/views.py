"""View models of the compare view: the per-session comparison and what each panel shows.

A ``Comparison`` is one user's current result set (kept in that user's ``gr.State``). The
render functions take it plus the view settings and return uint8 arrays and labels; they
never touch gradio, files or shared state.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from denoisers import metrics, registry

from . import crops, errormap
from .engine import NOISY, MethodResult, perceptual_distance

CLEAN = "clean"
BEST_MARK = "★ best"


@dataclass
class Comparison:
    """One input and the results computed for it so far."""

    source: str  # a Kodak24 name ("kodim05") or "upload-<file name>"
    image_id: str  # content hash of the input pixels
    clean: np.ndarray | None  # HxWx3 uint8 ground truth; None when the upload was already noisy
    noisy: MethodResult  # the noisy input as displayed, with its scores when there is ground truth
    sigma: float
    seed: int | None  # None when the upload was already noisy
    methods: list[str] = field(default_factory=list)  # requested, in display order
    results: dict[str, MethodResult] = field(default_factory=dict)
    done: bool = False  # every method has finished, or Stop ended the run: the summary replaces the progress
    elapsed: float | None = None  # wall time of the whole run (seconds), once done; 0 after a Stop
    stopped: tuple[str, ...] = ()  # methods that Stop left unfinished (no longer in ``methods``)
    note: str = ""  # a preview's status line ("Loaded kodim05 ... Press Compare."), which its render writes;
    # while methods run, the run-time estimate
    # Crop previews by method: a method's crop region computed before its whole image
    # (``MethodResult.preview``, with its ``box``), shown until the whole image comes. Never results.
    previews: dict[str, MethodResult] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.noisy.output.shape

    @property
    def has_truth(self) -> bool:
        return self.clean is not None

    def finished(self) -> list[MethodResult]:
        """Results that have an output, in display order."""
        return [self.results[m] for m in self.methods if m in self.results and self.results[m].output is not None]


@dataclass(frozen=True)
class Panel:
    key: str  # "clean", "noisy" or a method name
    title: str  # short name
    label: str  # name with numbers, for the panel caption
    image: np.ndarray | None  # full-size uint8, None while pending or on error
    short: str = ""  # name and PSNR only, for the narrow full views (the scores table has the rest)
    psnr: float | None = None  # the whole image's, against the ground truth
    lpips: float | None = None
    best: bool = False

    def __post_init__(self) -> None:
        if not self.short:
            object.__setattr__(self, "short", self.label)  # frozen


def best_method(comparison: Comparison) -> str | None:
    """The method with the highest PSNR (None without ground truth or results)."""
    scored = [r for r in comparison.finished() if r.psnr is not None]
    if not scored:
        return None
    return max(scored, key=lambda r: r.psnr).name


def fmt_psnr(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf dB" if math.isinf(value) else f"{value:.2f} dB"


def result_label(result: MethodResult, best: bool = False) -> str:
    """``DnCNN · 29.66 dB · SSIM 0.870 · detail 0.71 · 1.6 s ★ best`` (or the error, or 'running…')."""
    if result.error:
        return f"{result.label} · {result.error}"
    if result.output is None:
        return f"{result.label} · running…"
    parts = [result.label]
    if result.psnr is not None:
        parts.append(fmt_psnr(result.psnr))
    if result.ssim is not None:
        parts.append(f"SSIM {result.ssim:.3f}")
    if result.lpips is not None:
        parts.append(f"LPIPS {result.lpips:.3f}")
    if result.detail is not None:
        parts.append(f"detail {result.detail:.2f}")
    if result.seconds is not None:
        parts.append(f"{result.seconds:.1f} s" + (" (cached)" if result.cached else ""))
    text = " · ".join(parts)
    return f"{text} {BEST_MARK}" if best else text


def panels(comparison: Comparison) -> list[Panel]:
    """Ground truth (if any), noisy, then every requested method, with captions."""
    best = best_method(comparison)
    out: list[Panel] = []
    if comparison.clean is not None:
        out.append(Panel(CLEAN, "Ground truth", "Ground truth", comparison.clean))
    noisy = comparison.noisy
    sigma = f"σ={comparison.sigma:g}" + ("" if comparison.seed is None else f", seed {comparison.seed}")
    if comparison.has_truth:
        noisy_short = f"Noisy ({sigma}) · {fmt_psnr(noisy.psnr)}"
        noisy_label = f"{noisy_short} · SSIM {noisy.ssim:.3f}"
    else:
        noisy_label = noisy_short = f"Input, already noisy (σ={comparison.sigma:g} used)"
    out.append(Panel(NOISY, "Noisy" if comparison.has_truth else "Input", noisy_label, noisy.output, noisy_short,
                     noisy.psnr, lpips_of(comparison.clean, noisy.output) if noisy.psnr is not None else None))
    for name in comparison.methods:
        result = comparison.results.get(name)
        if result is None:
            label = registry.label(name)  # "DnCNN", as once it has finished
            out.append(Panel(name, label, f"{label} · running…", None))
            continue
        short = ""
        if result.output is not None and not result.error and result.psnr is not None:
            short = f"{result.label} · {fmt_psnr(result.psnr)}" + (f" {BEST_MARK}" if best == name else "")
        out.append(Panel(name, result.label, result_label(result, best == name), result.output, short,
                         result.psnr, result.lpips, best == name))
    return out


_LPIPS_KEPT = 4096
_lpips_seen: OrderedDict[bytes, float | None] = OrderedDict()
_lpips_lock = threading.Lock()


def lpips_of(truth: np.ndarray | None, shown: np.ndarray) -> float | None:
    """``perceptual_distance``, remembered by content: every render shows the same crops again
    (a new result, a dial move), and only the images that changed are scored anew."""
    if truth is None:
        return None
    digest = hashlib.blake2b(digest_size=16)
    for image in (truth, shown):
        digest.update(str(image.shape).encode())
        digest.update(np.ascontiguousarray(image).data)
    key = digest.digest()
    with _lpips_lock:
        if key in _lpips_seen:
            _lpips_seen.move_to_end(key)
            return _lpips_seen[key]
    value = perceptual_distance(truth, shown)
    with _lpips_lock:
        _lpips_seen[key] = value
        while len(_lpips_seen) > _LPIPS_KEPT:
            _lpips_seen.popitem(last=False)
    return value


def crop_label(panel: Panel, clean: np.ndarray | None, box: crops.Box) -> str:
    """A crop's caption: its name, then PSNR and LPIPS of the crop and of the whole image, each
    labelled (one line each); a panel without numbers (the ground truth, a running or failed
    method, an input without ground truth) keeps its own caption."""
    if clean is None or panel.image is None or panel.psnr is None:
        return panel.label
    truth, shown = crops.crop(clean, box), crops.crop(panel.image, box)
    crop_lpips = lpips_of(truth, shown)

    def scores(p: float | None, lp: float | None) -> str:
        return fmt_psnr(p) + ("" if lp is None else f" · LPIPS {lp:.3f}")

    title = panel.title + (f" {BEST_MARK}" if panel.best else "")
    return (f"{title}\ncrop {scores(metrics.psnr(truth, shown), crop_lpips)}"
            f"\nimage {scores(panel.psnr, panel.lpips)}")


def preview_crop(comparison: Comparison, key: str, box: crops.Box, zoom: int) -> tuple[np.ndarray, str] | None:
    """The zoomed crop preview of method ``key`` and its caption, if one was computed for
    exactly ``box`` and the whole image has not come yet; else None."""
    result = comparison.results.get(key)
    preview = comparison.previews.get(key)
    if (result is not None and result.output is not None) or preview is None or preview.output is None:
        return None
    if preview.box != (box.y0, box.x0, box.height, box.width):
        return None
    scores = "" if preview.psnr is None else f"\ncrop {fmt_psnr(preview.psnr)}" + (
        "" if preview.lpips is None else f" · LPIPS {preview.lpips:.3f}")
    return crops.zoom_nearest(preview.output, zoom), f"{preview.label} · crop preview (whole image running…){scores}"


def full_view(image: np.ndarray | None, box: crops.Box) -> np.ndarray | None:
    """A panel's full view (its image or error map) with the crop box drawn; None while pending."""
    return None if image is None else crops.draw_box(image, box)


def crop_view(image: np.ndarray | None, box: crops.Box, zoom: int) -> np.ndarray | None:
    """The zoomed crop of a panel's image or error map; None while pending."""
    return None if image is None else crops.zoomed_crop(image, box, zoom)


def error_views(comparison: Comparison) -> tuple[dict[str, np.ndarray], float]:
    """|output - ground truth| heatmaps for the noisy input and every finished method, all on
    one colour scale (0..vmax on the 0-255 scale, mean over RGB). Empty without ground truth.

    The scale comes from the methods' errors only (the noisy input, much larger, saturates),
    so that differences between methods stay visible.
    """
    if comparison.clean is None:
        return {}, 1.0
    errors = {r.name: errormap.abs_error(comparison.clean, r.output) for r in comparison.finished()}
    vmax = errormap.shared_scale(list(errors.values())) if errors else float(math.ceil(comparison.sigma))
    errors[NOISY] = errormap.abs_error(comparison.clean, comparison.noisy.output)
    return {k: errormap.colourize(e, vmax) for k, e in errors.items()}, vmax


def slider_choices(comparison: Comparison) -> list[tuple[str, str]]:
    """(caption, key) for everything the A/B slider can show."""
    return [(p.title, p.key) for p in panels(comparison) if p.image is not None]


def slider_pair(comparison: Comparison, a: str, b: str, box: crops.Box | None = None,
                zoom: int = 1) -> tuple[np.ndarray, np.ndarray] | None:
    """The A/B slider's two images: whole, or with ``box`` the zoomed crops (as the crop panels
    show them). None while either is missing."""
    images = {p.key: p.image for p in panels(comparison) if p.image is not None}
    if a not in images or b not in images:
        return None
    if box is None:
        return images[a], images[b]
    return crops.zoomed_crop(images[a], box, zoom), crops.zoomed_crop(images[b], box, zoom)


SCORE_COLUMNS = ["method", "PSNR (dB)", "SSIM", "LPIPS ↓", "detail", "seconds", "note"]
SCORE_FORMATS = {"PSNR (dB)": ".2f", "SSIM": ".3f", "LPIPS ↓": ".3f", "detail": ".2f", "seconds": ".1f"}  # as rounded


def scores_table(comparison: Comparison) -> list[list]:
    """The numbers of the panel captions as rows of ``SCORE_COLUMNS`` (noisy input first, then
    each requested method in display order), rounded as the captions show them; pending and
    failed methods say so in ``note``."""
    best = best_method(comparison)

    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None or math.isinf(value) else round(value, digits)

    rows = []
    if comparison.has_truth:
        n = comparison.noisy
        rows.append(["Noisy input", rounded(n.psnr, 2), rounded(n.ssim, 3), None, None, None, ""])
    for name in comparison.methods:
        r = comparison.results.get(name)
        if r is None:
            rows.append([registry.label(name), None, None, None, None, None, "running…"])
            continue
        if r.error:
            rows.append([r.label, None, None, None, None, None, r.error])
            continue
        low = r.numerics if r.numerics and not r.numerics.startswith("fp32") else ""  # bf16: say so
        note = "; ".join(t for t in (BEST_MARK if name == best else "", "cached" if r.cached else "", low, r.note) if t)
        rows.append([r.label, rounded(r.psnr, 2), rounded(r.ssim, 3), rounded(r.lpips, 3), rounded(r.detail, 2),
                     rounded(r.seconds, 1), note])
    return rows


def metrics_rows(comparison: Comparison) -> list[dict]:
    """One row per shown image: the numbers behind the labels (for tables and CSV)."""
    rows = []
    common = {"image": comparison.source, "sigma": comparison.sigma, "seed": comparison.seed}
    if comparison.has_truth:
        rows.append({**common, "method": NOISY, "psnr": comparison.noisy.psnr, "ssim": comparison.noisy.ssim,
                     "lpips": None, "detail": None, "seconds": None, "cached": None, "error": None, "weights": None,
                     "numerics": None, "note": None})
    for name in comparison.methods:
        r = comparison.results.get(name)
        if r is None:
            continue
        rows.append({**common, "method": name, "psnr": r.psnr, "ssim": r.ssim, "lpips": r.lpips, "detail": r.detail,
                     "seconds": r.seconds, "cached": r.cached, "error": r.error, "weights": r.weights,
                     "numerics": r.numerics, "note": r.note or None})
    return rows


class Props(dict):
    """New properties for one component (``value``, ``visible``, ``label``...): what an event
    returns for a component whose other properties change too; the wiring hands it to gradio
    as an update. A plain value sets only the component's value."""


HIDDEN = Props(value=None, visible=False)
