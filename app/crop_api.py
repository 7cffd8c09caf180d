"""The ``/compare_crop`` endpoint: every method's crop of one region, computed crop first.

A method whose whole result is in the cache gives its crop cut from that result (``source``
"full": the same pixels and numbers as the whole image's crop); any other method runs on the
region alone (``Engine.previews``, ``source`` "region": a network's region equals the whole
run's crop up to float rounding, CBM3D's is within 0.02 dB on Kodak24, docs/region.md). No
whole image is computed and nothing is cached. Scores are the crop's against the clean crop.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from denoisers.files import write_bytes

from . import export, session
from .convert import InputError
from .crop_first import crop_of_full, crop_scores, cut, parse_box
from .engine import Engine, MethodResult

HEARTBEAT_S = 1.0


def compare_crop(engine: Engine, image, sigma: object, seed: object, methods, box: object,
                 max_pixels: int) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON record and the crops by key ("noisy", then each method in display order).
    ``box``: "top,left,height,width" or four whole numbers, inside the image."""
    methods = session.api_methods(methods)
    source = session.source_from_upload(image, max_pixels=max_pixels, ui_hint=False)
    start = time.perf_counter()
    comparison, noisy = session.new_comparison(engine, source, sigma, seed, False, methods)
    try:
        box = parse_box(box, noisy.shape)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    results: dict[str, MethodResult] = {}
    for r in engine.previews(comparison.clean, noisy, source.image_id, comparison.sigma, comparison.seed,
                             comparison.methods, box, HEARTBEAT_S):
        if r is not None:
            results[r.name] = r if r.preview else crop_of_full(r, comparison.clean, box)
    noisy_crop = cut(comparison.noisy.output, box)
    p, s, lp = crop_scores(cut(comparison.clean, box), noisy_crop)
    record = {"sigma": comparison.sigma, "seed": comparison.seed, "box": list(box),
              "noisy": {"psnr": session._json_number(p), "ssim": s, "lpips": lp}, "methods": {},
              "seconds_total": time.perf_counter() - start}
    crops = {"noisy": noisy_crop}
    for name in comparison.methods:
        r = results.get(name) or MethodResult(name, engine.label(name), None, error="no crop was computed")
        record["methods"][name] = _entry(r)
        if r.output is not None:
            crops[name] = r.output
    return record, crops


def _entry(r: MethodResult) -> dict:
    if r.error or r.output is None:
        return {"psnr": None, "ssim": None, "lpips": None, "seconds": None, "source": None,
                "error": r.error or "no crop was computed"}
    return {"psnr": session._json_number(r.psnr), "ssim": r.ssim, "lpips": r.lpips, "seconds": r.seconds,
            "source": "region" if r.preview else "full", "cached": r.cached, "weights": r.weights,
            "numerics": r.numerics, "note": r.note}


def write_crops(crops: dict[str, np.ndarray], folder: Path) -> list[str]:
    """The crops as lossless PNG files in ``folder``, in ``crops``' order; their paths."""
    files = []
    for key, img in crops.items():
        files.append(str(write_bytes(folder / f"{key}_crop.png", export.png_bytes(img))))
    return files
