"""Run a fully convolutional model over a large image in overlapping tiles.

Each tile is run with ``margin`` pixels of context on every side (clipped at the image
border) and only its inner window is kept; where windows overlap they are blended with
linear ramps. With ``margin`` at least the model's receptive radius every kept pixel sees
exactly the context it would see untiled, so the result equals the untiled run up to
floating-point rounding; the blend hides any residual seam for models with a wider reach.
"""
from __future__ import annotations

from collections.abc import Callable

import torch


def _windows(length: int, tile: int, stride: int, align: int) -> list[tuple[int, int]]:
    """[start, end) windows covering ``length``; starts are multiples of ``align``."""
    if length <= tile:
        return [(0, length)]
    last = length - tile
    starts = sorted(set(range(0, last, stride)) | {last - last % align})
    return [(s, min(s + tile, length)) for s in starts[:-1]] + [(starts[-1], length)]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    w = torch.ones(length)
    if overlap > 0:
        ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
        if ramp_start:
            w[:overlap] = ramp
        if ramp_end:
            w[-overlap:] = ramp.flip(0)
    return w


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int = 512,
    overlap: int = 32,
    margin: int = 32,
    align: int = 1,
) -> torch.Tensor:
    """Apply ``fn`` ([1, C, h, w] -> [1, C, h, w]) to ``x`` [1, C, H, W] tile by tile.

    Memory is bounded by one tile of ``(tile + 2 * margin)`` pixels a side plus the output.
    ``align``: every tile input starts at a multiple of it (2 for models that work on a
    pixel-unshuffled grid, whose output changes if the grid is shifted by one pixel).
    """
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    if (tile - overlap) % align or margin % align:
        raise ValueError(f"tile - overlap and margin must be multiples of align ({align})")
    _, _, height, width = x.shape
    if height <= tile and width <= tile:
        return fn(x)
    out = torch.zeros_like(x, dtype=torch.float32)
    weight = torch.zeros((1, 1, height, width), dtype=torch.float32, device=x.device)
    rows = _windows(height, tile, tile - overlap, align)
    cols = _windows(width, tile, tile - overlap, align)
    for top, bottom in rows:
        for left, right in cols:
            th, tw = bottom - top, right - left
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            t1, l1 = min(top + th + margin, height), min(left + tw + margin, width)
            result = fn(x[:, :, t0:t1, l0:l1])  # [1, C, t1-t0, l1-l0]
            result = result[:, :, top - t0 : top - t0 + th, left - l0 : left - l0 + tw].float()
            wy = _ramp(th, overlap, top > 0, top + th < height).to(x.device)
            wx = _ramp(tw, overlap, left > 0, left + tw < width).to(x.device)
            w = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, top : top + th, left : left + tw] += result * w
            weight[:, :, top : top + th, left : left + tw] += w
    return out / weight
