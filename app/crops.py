"""Crop geometry for the synchronized zoom crops: boxes, nearest-neighbour zoom, drawn boxes.

Coordinates are pixels of the full image: ``x`` is the column, ``y`` the row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CROP_MIN, CROP_MAX, CROP_DEFAULT = 32, 256, 96
ZOOM_MIN, ZOOM_MAX, ZOOM_DEFAULT = 1, 8, 2
BOX_COLOUR = (0, 255, 64)  # bright green inside a black ring: visible on any image
BOX_RING = (0, 0, 0)


@dataclass(frozen=True)
class Box:
    """A crop: columns x0..x1-1 and rows y0..y1-1 (half-open)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def centre(self) -> tuple[int, int]:
        return (self.x0 + self.width // 2, self.y0 + self.height // 2)


def _finite(value: object) -> float:
    """``value`` as a float; ValueError for NaN and infinities (``?crop=inf`` in a link)."""
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {value!r}")
    return v


def clamp_size(size: object) -> int:
    """A crop size inside CROP_MIN..CROP_MAX; an empty box (None) is the default."""
    return CROP_DEFAULT if size is None else int(min(CROP_MAX, max(CROP_MIN, round(_finite(size)))))


def clamp_zoom(zoom: object) -> int:
    """A magnification inside ZOOM_MIN..ZOOM_MAX; an empty box (None) is the default."""
    return ZOOM_DEFAULT if zoom is None else int(min(ZOOM_MAX, max(ZOOM_MIN, round(_finite(zoom)))))


def crop_box(centre: tuple[int, int] | None, size: int, shape: tuple[int, ...]) -> Box:
    """The ``size`` x ``size`` box centred on ``centre`` (x, y), moved inside the image.

    ``centre`` None means the image centre. A box larger than the image is cut to it.
    """
    h, w = int(shape[0]), int(shape[1])
    cw, ch = min(int(size), w), min(int(size), h)
    cx, cy = centre if centre is not None else (w // 2, h // 2)
    x0 = int(min(max(int(cx) - cw // 2, 0), w - cw))
    y0 = int(min(max(int(cy) - ch // 2, 0), h - ch))
    return Box(x0, y0, x0 + cw, y0 + ch)


def clamp_centre(centre: tuple[int, int], shape: tuple[int, ...]) -> tuple[int, int]:
    """``centre`` (x, y) moved inside an image of ``shape`` (a link may hold any numbers)."""
    h, w = int(shape[0]), int(shape[1])
    return int(min(max(int(centre[0]), 0), w - 1)), int(min(max(int(centre[1]), 0), h - 1))


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    return image[box.y0:box.y1, box.x0:box.x1]


def zoom_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Magnify by an integer ``factor``, each pixel a ``factor`` x ``factor`` block."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def zoomed_crop(image: np.ndarray, box: Box, factor: int) -> np.ndarray:
    return zoom_nearest(crop(image, box), factor)


def draw_box(image: np.ndarray, box: Box, colour: tuple[int, int, int] = BOX_COLOUR, width: int | None = None,
             ring: tuple[int, int, int] | None = BOX_RING) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with the outline of ``box`` drawn just outside it:
    ``width`` pixels of ``colour`` next to the box, then (if ``ring``) as many of ``ring``.

    The outline sits outside the crop where there is room, so the cropped pixels themselves
    stay untouched in the full view.
    """
    out = image.copy()
    h, w = out.shape[:2]
    if width is None:
        width = max(2, round(max(h, w) / 250))
    layers = [(colour, 0)] + ([(ring, width)] if ring is not None else [])
    for c, offset in reversed(layers):  # the outer ring first, the colour over it
        _outline(out, box, offset + width, np.asarray(c, dtype=out.dtype))
    return out


def _outline(out: np.ndarray, box: Box, width: int, c: np.ndarray) -> None:
    """Paint the ``width``-pixel band around ``box`` (outside it) with colour ``c``."""
    h, w = out.shape[:2]
    x0, y0 = max(box.x0 - width, 0), max(box.y0 - width, 0)
    x1, y1 = min(box.x1 + width, w), min(box.y1 + width, h)
    out[y0:box.y0, x0:x1] = c
    out[box.y1:y1, x0:x1] = c
    out[y0:y1, x0:box.x0] = c
    out[y0:y1, box.x1:x1] = c


def parse_click(index: object, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """A click position from gradio's select event (``[x, y]``) if it lies inside the image."""
    try:
        x, y = (int(round(float(v))) for v in index)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if 0 <= x < shape[1] and 0 <= y < shape[0]:
        return (x, y)
    return None
