"""Crop-first results: a method's region preview (``Engine.run(..., box=...)`` and
``Engine.previews``) scored on its crop, and the same crop cut from a whole result.

A preview's ``output`` is the region only (the box's height x width x 3, uint8); its PSNR, SSIM
and LPIPS are the crop's against the clean crop (SSIM needs 7 pixels a side, LPIPS 32; smaller
crops get None); ``detail`` is None. Previews never enter the results cache.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from denoisers.base import check_box
from denoisers.metrics import psnr, ssim

SSIM_MIN_SIDE = 7  # skimage's SSIM window
LPIPS_MIN_SIDE = 32  # the metric's own smallest input (engine.perceptual_distance)


def parse_box(box: object, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` as four ints (top, left, height, width) inside an image of ``shape``: a sequence
    of four whole numbers or the text "top,left,height,width". ``ValueError`` naming the form."""
    if isinstance(box, str):
        parts = [p.strip() for p in box.split(",")]
        try:
            box = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"box must be \"top,left,height,width\" (four whole numbers), got {box!r}") from None
    elif isinstance(box, (list, tuple)) and box and all(isinstance(v, float) and v.is_integer() for v in box):
        box = [int(v) for v in box]  # whole numbers sent as JSON floats by an API client
    return check_box(box, shape)


def cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, height, width = box
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def crop_scores(clean_crop: np.ndarray | None, out: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(PSNR, SSIM, LPIPS) of the crop ``out`` against ``clean_crop``; None where not defined."""
    if clean_crop is None:
        return None, None, None
    from .engine import perceptual_distance  # the engine imports this module

    side = min(out.shape[:2])
    s = ssim(clean_crop, out) if side >= SSIM_MIN_SIDE else None
    lp = perceptual_distance(clean_crop, out) if side >= LPIPS_MIN_SIDE else None
    return psnr(clean_crop, out), s, lp


def preview_result(result, clean_u8: np.ndarray | None, box: tuple[int, int, int, int]):
    """``result`` (a ``MethodResult`` whose output is already the region) scored on the crop
    and marked as a preview of ``box``."""
    clean_crop = None if clean_u8 is None else cut(clean_u8, box)
    p, s, lp = crop_scores(clean_crop, result.output)
    return replace(result, psnr=p, ssim=s, lpips=lp, detail=None, preview=True, box=tuple(box), cached=False)


def crop_of_full(result, clean_u8: np.ndarray | None, box: tuple[int, int, int, int]):
    """The crop of a whole result, scored like a preview (``preview`` stays False: it is the
    whole run's own pixels); for the API and any caller wanting crop numbers of a full result."""
    if result.output is None:
        return result
    clean_crop = None if clean_u8 is None else cut(clean_u8, box)
    out = cut(result.output, box)
    p, s, lp = crop_scores(clean_crop, out)
    return replace(result, output=out, psnr=p, ssim=s, lpips=lp, detail=None, box=tuple(box))
