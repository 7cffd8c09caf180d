"""The fidelity ↔ detail dial in the compare view: the IDGAN panel shows ``idgan@A``.

Moving the dial shows at once a pixel-space blend of the dial's two ends, (1 − A)·IDResNet +
A·IDGAN (their outputs, from this comparison or the results cache), labelled as a preview;
the network blend (weights interpolated: ``denoisers.dial``) replaces it once computed. Pure:
no gradio, no engine.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from denoisers import metrics
from denoisers.dial import FAMILY, dial_name

from .engine import MethodResult
from .views import Comparison

START = "idresnet"  # the dial's A = 0 end (FAMILY, "idgan", is its A = 1 end)
PREVIEW = "pixel-blend preview; the network's output follows"
PREVIEW_NOTE = ("The instant preview blends IDResNet's and IDGAN's outputs pixel by pixel; the network blend "
                "follows.")


def preview_accuracy(plane_csv: Path) -> str:
    """The preview's note, with how far the pixel blend is from the network blend as measured
    in ``plane_csv`` (scripts/perception_distortion.py: network minus pixel blend at the same A,
    mean over the A in (0, 1) that both have, per sigma); the note alone where there is none."""
    try:
        table = pd.read_csv(plane_csv)
    except (OSError, ValueError):
        return PREVIEW_NOTE
    if not {"sigma", "method", "alpha", "psnr", "lpips"} <= set(table.columns):
        return PREVIEW_NOTE
    methods = table["method"].astype(str)
    net, pixel = table[methods.str.startswith(FAMILY + "@")], table[methods.str.startswith("pixel@")]
    pairs = net.merge(pixel, on=["sigma", "alpha"], suffixes=("_net", "_pixel"))
    gaps = pairs.assign(psnr=pairs["psnr_net"] - pairs["psnr_pixel"], lpips=pairs["lpips_net"] - pairs["lpips_pixel"])
    gaps = gaps.groupby("sigma")[["psnr", "lpips"]].mean().dropna()
    if gaps.empty:
        return PREVIEW_NOTE
    sigmas = " / ".join(f"{s:g}" for s in gaps.index)
    psnrs = " / ".join(f"{v:+.3f}" for v in gaps["psnr"])
    lpipses = " / ".join(f"{v:+.4f}" for v in gaps["lpips"])
    return (f"{PREVIEW_NOTE} On the whole Kodak24 images (mean over A) the network blend scores {psnrs} dB PSNR "
            f"and {lpipses} LPIPS against the pixel blend at sigma {sigmas}.")


def member(alpha: float | None) -> str:
    """The method the IDGAN slot runs at dial ``alpha``: ``idgan`` at 1 (or no dial)."""
    return FAMILY if alpha is None or alpha >= 1 else dial_name(alpha)


def slot(comp: Comparison) -> str | None:
    """The dial's member in ``comp`` (``idgan`` or ``idgan@A``), if IDGAN is being compared."""
    return next((m for m in comp.methods if m == FAMILY or m.startswith(FAMILY + "@")), None)


def swap(comp: Comparison, old: str, result: MethodResult | None, new: str) -> Comparison:
    """``comp`` with method ``old`` replaced, in place in the display order, by ``new`` (with
    ``result`` if given, else running); a new object, so that renders queued for the old one
    cannot land after this one."""
    results = {k: v for k, v in comp.results.items() if k != old}
    if result is not None:
        results[new] = result
    return dataclasses.replace(comp, methods=[new if m == old else m for m in comp.methods], results=results)


def blend(start: np.ndarray, end: np.ndarray, alpha: float) -> np.ndarray:
    """(1 − alpha)·start + alpha·end of two uint8 outputs, rounded to uint8."""
    mixed = (1.0 - alpha) * start.astype(np.float32) + alpha * end.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def preview(comp: Comparison, alpha: float, ends: tuple[np.ndarray, np.ndarray] | None) -> Comparison | None:
    """``comp`` with the IDGAN slot at ``member(alpha)``: the pixel blend of ``ends`` (IDResNet's
    and IDGAN's outputs) as its result while the network runs, else running; None when IDGAN
    is not in ``comp`` or already at ``alpha``. PSNR only: SSIM and LPIPS follow with the
    network's output (they would make the preview slower than the 0.5 s it is allowed)."""
    old, new = slot(comp), member(alpha)
    if old is None or old == new:
        return None
    result = None
    if ends is not None and new != FAMILY:  # IDGAN itself: its result comes from the cache at once
        image = blend(ends[0], ends[1], alpha)
        score = None if comp.clean is None else metrics.psnr(comp.clean, image)
        result = MethodResult(new, f"IDGAN@{alpha:g} (pixel-blend preview)", image, score, note=PREVIEW)
    return swap(comp, old, result, new)


def ends(comp: Comparison, lookup: Callable[[str], np.ndarray | None]) -> tuple[np.ndarray, np.ndarray] | None:
    """The dial's two end outputs for ``comp``'s input: from its results, else ``lookup(name)``
    (the results cache); None unless both are there."""
    found = []
    for name in (START, FAMILY):
        r = comp.results.get(name)
        image = r.output if r is not None and r.output is not None and not r.error else lookup(name)
        if image is None or image.shape != comp.shape:
            return None
        found.append(image)
    return found[0], found[1]


def is_preview(result: MethodResult | None) -> bool:
    return result is not None and result.note == PREVIEW
